#!/usr/bin/env python3
"""Golden fixtures from real TensorFlow / TF-Slim for pyconv's replay tests.

Run by hand inside the reference venv (see ENVIRONMENT.md in this folder)::

    TF_CPP_MIN_LOG_LEVEL=2 /work/venvs/tf/bin/python tools/tf_reference/generate_fixtures.py \
        --seed 20240601 --out tests/fixtures/tf

or import it (a live ``pytest -m tf`` tier) and call ``generate(seed)``, which
returns the same data in memory without writing files.  TensorFlow is imported
only inside the functions that need it; importing this module without
TensorFlow works, and calling ``generate`` then raises ``ImportError`` with a
pointer to ENVIRONMENT.md.

Fixture format (FORMAT_VERSION = 1)
===================================
One compressed ``.npz`` per family: ``conv2d.npz``, ``conv2d_same.npz``,
``subsample.npz``, ``pool.npz``, ``full_explicit.npz``, ``batch_norm.npz``,
``sequences.npz``, ``errors.npz``.  Every file holds

* ``configs`` -- a 0-d unicode array with ``json.dumps(list_of_config_dicts)``;
* ``meta``    -- a 0-d unicode array with JSON: format version, family, seed,
  versions of TensorFlow / tf-slim / tf-keras / NumPy / Python;
* per config ``id`` (``"c0"``, ``"c1"``, ...) these arrays:

  ``<id>/input``          the input, in the layout the *pyconv* call uses
                          (NCHW configs store the NCHW array);
  ``<id>/expected``       TF's output, in the pyconv call's layout;
  ``<id>/var/<name>``     initial value of every variable the call creates,
                          ``<name>`` as TF names it without ``:0``
                          (e.g. ``net/conv3/BatchNorm/moving_mean``);
  ``<id>/after/<name>``   value after the call *and* TF's UPDATE_OPS ran once
                          (only for variables that change: batch-norm moving
                          statistics in training mode);
  ``<id>/reg/<k>``        k-th entry of REGULARIZATION_LOSSES (scalar);
  extra arrays named in the config (``companions``, ``arrays``).

Config dict fields (JSON):

  id, family, function        pyconv function to call: ``conv2d``,
                              ``conv2d_same``, ``subsample``, ``max_pool2d``,
                              ``avg_pool2d``, ``batch_norm``, ``nn.conv2d``
  kwargs                      keyword arguments of that call (input excluded).
                              Special JSON values, to be resolved by the
                              replay (``resolve()`` below does it):
                                {"__array__": "var/Conv/weights"} -> the array
                                    ``<id>/var/Conv/weights`` (used wherever an
                                    initializer is expected: SPEC says an
                                    ndarray is accepted as an initializer);
                                {"__fn__": "relu"|"relu6"|"batch_norm"} ->
                                    the pyconv function of that name;
                                {"__regularizer__": ["l2", s]} /
                                    ["l1", s] / ["l1_l2", s1, s2] ->
                                    pyconv.l2_regularizer(s) etc.
                              JSON ``null`` is Python ``None`` (e.g.
                              ``activation_fn: null`` = linear,
                              ``biases_initializer: null`` = no biases).
                              Lists stay lists (kernel_size [3, 2]; explicit
                              padding [[t, b], [l, r]]).
  arg_scope                   optional list of {"ops": [names], "kwargs": {...}}
                              to enter (outermost first) around the call
  variable_scope              optional name of an enclosing variable_scope
  dtype, data_format          of the input / the pyconv call
  input_shape, expected_shape
  variables                   every variable in the graph after the call, in
                              creation order: {name, shape, dtype, trainable,
                              collections} (collections among
                              global_variables, model_variables,
                              trainable_variables, or custom names)
  updated                     names with an ``after/`` array
  n_update_ops                len(UPDATE_OPS) after the call
  regularization_losses       [{"key": "reg/0", "tf_name": op name}] in
                              collection order
  rtol, atol                  suggested tolerances for the replay
  ref_max_abs_err             max |TF - float64 NumPy reference| seen here
                              (sanity check of the formulas; see ENVIRONMENT.md)
  tf                          how TF computed it: {"call": readable call,
                              "ran_as": "NCHW" | "NHWC+transpose" | "NHWC",
                              "fused_batch_norm": bool (if any), ...}
  note                        free text (optional)
  companions                  conv2d_same only: {"conv2d_stride1_same_then_subsample":
                              key, "conv2d_strided_same": key or null,
                              "strided_same_differs": bool,
                              "equals_stride1_then_subsample": bool}; both
                              companions are computed under the config's
                              arg_scope (same activation_fn and variables)
  steps                       sequences/errors only, instead of
                              function/kwargs: a list of calls run one after
                              the other in one graph/store.  Each step has
                              function, kwargs, optional arg_scope,
                              optional variable_scope ({"name", "reuse"}),
                              input (an array key such as "input" or
                              "step0" = output of step 0), expected (array
                              key of its output, or null).  Errors configs:
                              the last step raises ``error``:
                              {"type", "tf_message", "pyconv_expected_type"}.

NCHW: TF's CPU kernels do NCHW for float32 conv/pool/batch-norm in TF 2.21
but not float64 conv; the generator runs NCHW natively where TF can and
otherwise runs the NHWC equivalent and transposes (``tf.ran_as``).  Where it
ran natively it also checks the NHWC equivalent agrees.

FULL and explicit paddings (no TF equivalent in slim): TF runs
``slim.conv2d(..., padding='VALID')`` / ``tf.nn.conv2d(..., 'VALID')`` on
``np.pad``-ed input and the result is stored as the expectation of the pyconv
call with ``padding='FULL'`` or ``[[t, b], [l, r]]``; explicit pads are also
checked against TF's native explicit padding of ``tf.nn.conv2d``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

FORMAT_VERSION = 1
FAMILIES = ('conv2d', 'conv2d_same', 'subsample', 'pool', 'full_explicit',
            'batch_norm', 'sequences', 'errors', 'corners')
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           '..', '..', 'tests', 'fixtures', 'tf')


# ---------------------------------------------------------------------------
# pure-Python helpers (usable by the replay test without TensorFlow)
# ---------------------------------------------------------------------------

def resolve(obj, array, fn, regularizer):
    """Replace the special JSON values of a config with real objects.

    array(key) -> object for {"__array__": key}; fn(name) for {"__fn__": name};
    regularizer(kind, *scales) for {"__regularizer__": [kind, *scales]}.
    """
    if isinstance(obj, dict):
        if set(obj) == {'__array__'}:
            return array(obj['__array__'])
        if set(obj) == {'__fn__'}:
            return fn(obj['__fn__'])
        if set(obj) == {'__regularizer__'}:
            spec = obj['__regularizer__']
            return regularizer(spec[0], *spec[1:])
        if set(obj) == {'__np__'}:  # a NumPy scalar: ["float64", 0.9] -> np.float64(0.9)
            return np.dtype(obj['__np__'][0]).type(obj['__np__'][1])
        if set(obj) == {'__set__'}:  # a Python set (of collection names)
            return set(obj['__set__'])
        return {k: resolve(v, array, fn, regularizer) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, array, fn, regularizer) for v in obj]
    return obj


def load_family(path):
    """(configs, meta, npz) of one fixture file."""
    data = np.load(path, allow_pickle=False)
    return (json.loads(str(data['configs'])), json.loads(str(data['meta'])),
            data)


def _pair(v):
    if isinstance(v, (list, tuple)):
        return int(v[0]), int(v[1])
    return int(v), int(v)


def same_pads(n, k, s, r=1):
    keff = k + (k - 1) * (r - 1)
    out = -(-n // s)
    total = max((out - 1) * s + keff - n, 0)
    return total // 2, total - total // 2


def _geometry(shape_hw, kernel, stride, rate, padding):
    """Explicit ((t, b), (l, r)) pads for the SPEC's padding names."""
    pads = []
    for n, k, s, r in zip(shape_hw, kernel, stride, rate):
        keff = k + (k - 1) * (r - 1)
        if isinstance(padding, str):
            p = padding.upper()
            if p == 'SAME':
                pads.append(same_pads(n, k, s, r))
            elif p == 'VALID':
                pads.append((0, 0))
            elif p == 'FULL':
                pads.append((keff - 1, keff - 1))
            else:
                raise ValueError(padding)
        else:
            pads = [tuple(p) for p in padding]
            break
    return pads


# ---------------------------------------------------------------------------
# float64 NumPy reference (only a sanity check of the generated numbers)
# ---------------------------------------------------------------------------

def _ref_conv(x, w, stride, rate, pads, bias=None, act=None):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    (t, b), (l, r) = pads
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    kh, kw = w.shape[:2]
    sh, sw = stride
    rh, rw = rate
    oh = (xp.shape[1] - (kh - 1) * rh - 1) // sh + 1
    ow = (xp.shape[2] - (kw - 1) * rw - 1) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, w.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * rh: i * rh + (oh - 1) * sh + 1: sh,
                       j * rw: j * rw + (ow - 1) * sw + 1: sw, :]
            out += patch @ w[i, j]
    if bias is not None:
        out += bias
    return _ref_act(out, act)


def _ref_act(out, act):
    if act == 'relu':
        return np.maximum(out, 0)
    if act == 'relu6':
        return np.clip(out, 0, 6)
    return out


def _ref_pool(x, kind, kernel, stride, pads):
    x = np.asarray(x, np.float64)
    (t, b), (l, r) = pads
    fill = -np.inf if kind == 'max' else 0.0
    xp = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=fill)
    ones = np.pad(np.ones(x.shape[1:3]), ((t, b), (l, r)))
    kh, kw = kernel
    sh, sw = stride
    oh = (xp.shape[1] - kh) // sh + 1
    ow = (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    cnt = np.zeros((oh, ow))
    if kind == 'max':
        out[:] = -np.inf
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i: i + (oh - 1) * sh + 1: sh, j: j + (ow - 1) * sw + 1: sw]
            if kind == 'max':
                out = np.maximum(out, patch)
            else:
                out += patch
                cnt += ones[i: i + (oh - 1) * sh + 1: sh, j: j + (ow - 1) * sw + 1: sw]
    if kind == 'avg':
        out /= cnt[None, :, :, None]
    return out


def _ref_bn(x, axis_c, training, decay, eps, beta, gamma, mm, mv, bessel):
    """Returns (y, new_mm, new_mv) for NHWC (axis_c=3) or NCHW (axis_c=1)."""
    x = np.asarray(x, np.float64)
    red = tuple(a for a in range(4) if a != axis_c)
    shp = [1, 1, 1, 1]
    shp[axis_c] = x.shape[axis_c]
    if training:
        m = x.mean(red)
        v = x.var(red)
        n = x.size // x.shape[axis_c]
        vu = v * (n / max(n - 1, 1)) if bessel else v
        # TF (fused and non-fused) turns (1 - decay) into a float32 scalar,
        # also for float64 variables, and updates as  var -= (var - stat) * f
        f = float(np.float32(1.0 - decay))
        new_mm = mm - (mm - m) * f
        new_mv = mv - (mv - vu) * f
    else:
        m, v, new_mm, new_mv = mm, mv, mm, mv
    y = (x - m.reshape(shp)) / np.sqrt(v.reshape(shp) + eps)
    if gamma is not None:
        y = y * gamma.reshape(shp)
    if beta is not None:
        y = y + beta.reshape(shp)
    return y, new_mm, new_mv


# ---------------------------------------------------------------------------
# TensorFlow side
# ---------------------------------------------------------------------------

class _TF:
    """Lazily imported TensorFlow + TF-Slim, with the tf_keras shim."""

    def __init__(self):
        os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
        # oneDNN's float32 Conv2D in TF 2.21 returns wrong numbers for
        # batch > 1, in_channels == 1, stride (1, >1) (ENVIRONMENT.md); the
        # Eigen kernels are the reference.  Only effective before TF loads.
        os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '0')
        self.tf_was_loaded = 'tensorflow' in sys.modules
        try:
            import tensorflow as tf
        except ImportError as e:  # pragma: no cover
            raise ImportError(
                'generate_fixtures needs TensorFlow + tf-slim; see '
                'tools/tf_reference/ENVIRONMENT.md for the venv recipe') from e
        # TF >= 2.13 loads tf.compat.v1.layers.BatchNormalization (used by
        # slim.batch_norm) lazily from 'tf_keras.legacy_tf_layers', a module
        # path no tf-keras release has; tf-keras ships the same module as
        # 'tf_keras.src.legacy_tf_layers'.  Alias it (see ENVIRONMENT.md).
        import importlib
        try:
            importlib.import_module('tf_keras.legacy_tf_layers.normalization')
        except ImportError:
            try:
                pkg = importlib.import_module('tf_keras.src.legacy_tf_layers')
                mod = importlib.import_module(
                    'tf_keras.src.legacy_tf_layers.normalization')
                sys.modules['tf_keras.legacy_tf_layers'] = pkg
                sys.modules['tf_keras.legacy_tf_layers.normalization'] = mod
            except ImportError:
                pass  # older TF vendors it; else batch_norm fails loudly
        # tf-slim 1.1's own fused and legacy batch-norm paths use ops.Tensor, which
        # TF 2.21's ops module no longer exports (it is tf.Tensor)
        from tensorflow.python.framework import ops as _ops
        if not hasattr(_ops, 'Tensor'):
            _ops.Tensor = tf.Tensor
        try:
            import tf_slim as slim
            from tf_slim.nets import resnet_utils
            from tf_slim.layers import utils as slim_utils
        except ImportError as e:  # pragma: no cover
            raise ImportError('tf-slim is missing; see ENVIRONMENT.md') from e
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
        tf.get_logger().setLevel('ERROR')
        self.tf = tf
        self.v1 = tf.compat.v1
        self.slim = slim
        self.resnet_utils = resnet_utils
        self.slim_utils = slim_utils
        self.fns = {
            'relu': tf.nn.relu, 'relu6': tf.nn.relu6, 'leaky_relu': tf.nn.leaky_relu,
            'batch_norm': slim.batch_norm,
        }
        self.ops = {
            'conv2d': slim.conv2d, 'conv2d_same': resnet_utils.conv2d_same,
            'subsample': resnet_utils.subsample,
            'max_pool2d': slim.max_pool2d, 'avg_pool2d': slim.avg_pool2d,
            'batch_norm': slim.batch_norm,
        }

    def versions(self):
        import tf_slim
        out = {'TF_ENABLE_ONEDNN_OPTS': os.environ.get('TF_ENABLE_ONEDNN_OPTS'),
               'tf_imported_before_generator': self.tf_was_loaded,
               'tensorflow': self.tf.__version__,
               'tf_slim': getattr(tf_slim, '__version__', None),
               'numpy': np.__version__, 'python': sys.version.split()[0]}
        try:
            from importlib.metadata import version
            out['tf_slim'] = version('tf-slim')
            out['tf_keras'] = version('tf-keras')
        except Exception:
            pass
        return out

    def regularizer(self, kind, *scales):
        s = self.slim
        return {'l1': s.l1_regularizer, 'l2': s.l2_regularizer,
                'l1_l2': s.l1_l2_regularizer}[kind](*scales)

    def kwargs(self, kw, arrays, prefix):
        """Resolve a JSON kwargs dict for TF: arrays become constant
        initializers (every __array__ in these families is an initializer)."""
        init = self.v1.constant_initializer
        return resolve(kw, lambda k: init(arrays[prefix + k]),
                       lambda n: self.fns[n], self.regularizer)



def _var_records(T, graph):
    v1 = T.v1
    keys = {'global_variables': v1.GraphKeys.GLOBAL_VARIABLES,
            'model_variables': v1.GraphKeys.MODEL_VARIABLES,
            'trainable_variables': v1.GraphKeys.TRAINABLE_VARIABLES,
            'moving_average_variables': v1.GraphKeys.MOVING_AVERAGE_VARIABLES}
    member = {}
    for nice, key in keys.items():
        for v in graph.get_collection(key):
            member.setdefault(v.op.name, []).append(nice)
    for key in graph.get_all_collection_keys():
        if key in keys.values() or key.startswith('__') or key in (
                'variables', 'cond_context', 'while_context'):
            continue
        for v in graph.get_collection(key):
            if hasattr(v, 'op') and v.op.name in member and hasattr(v, 'trainable'):
                member[v.op.name].append(key)
    recs = []
    for v in graph.get_collection(v1.GraphKeys.GLOBAL_VARIABLES):
        recs.append({'name': v.op.name, 'shape': [int(d) for d in v.shape],
                     'dtype': v.dtype.base_dtype.name,
                     'trainable': 'trainable_variables' in member[v.op.name],
                     'collections': member[v.op.name]})
    return recs


def _custom_collection_order(T, graph):
    """{key: [variable names in collection order]} of the non-standard collections
    that hold variables."""
    v1 = T.v1
    standard = {v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES,
                v1.GraphKeys.TRAINABLE_VARIABLES, v1.GraphKeys.MOVING_AVERAGE_VARIABLES,
                v1.GraphKeys.UPDATE_OPS, v1.GraphKeys.REGULARIZATION_LOSSES,
                'cond_context', 'while_context'}
    out = {}
    for key in graph.get_all_collection_keys():
        if key in standard or key.startswith('__'):
            continue
        items = graph.get_collection(key)
        if items and all(hasattr(v, 'trainable') and hasattr(v, 'op') for v in items):
            out[key] = [v.op.name for v in items]
    return out


def _enter_scopes(T, stack, cfg_or_step):
    """Enter name_scope, arg_scopes and variable_scope of a config/step on an ExitStack.

    A variable_scope dict may carry "reuse" (true or "AUTO_REUSE") and
    "regularizer" ({"__regularizer__": [...]})."""
    if cfg_or_step.get('name_scope'):
        stack.enter_context(T.v1.name_scope(cfg_or_step['name_scope']))
    for a in cfg_or_step.get('arg_scope') or []:
        ops = [T.ops[n] for n in a['ops']]
        stack.enter_context(T.slim.arg_scope(ops, **a['_tf_kwargs']))
    vs = cfg_or_step.get('variable_scope')
    if vs:
        if isinstance(vs, str):
            stack.enter_context(T.v1.variable_scope(vs))
        else:
            reuse = T.v1.AUTO_REUSE if vs.get('reuse') == 'AUTO_REUSE' else vs.get('reuse')
            reg = vs.get('regularizer')
            reg = T.regularizer(*reg['__regularizer__']) if reg else None
            stack.enter_context(T.v1.variable_scope(vs['name'], reuse=reuse, regularizer=reg))


def _prepare_arg_scope(T, cfg, arrays, prefix):
    for a in cfg.get('arg_scope') or []:
        a['_tf_kwargs'] = T.kwargs(a['kwargs'], arrays, prefix)


def _strip_private(cfg):
    for a in cfg.get('arg_scope') or []:
        a.pop('_tf_kwargs', None)
    for s in cfg.get('steps') or []:
        _strip_private(s)
    return cfg


def _nchw_to_nhwc_kwargs(kwargs):
    kw = dict(kwargs)
    if kw.get('data_format') in ('NCHW', 'NCW', 'NCDHW'):
        kw['data_format'] = 'NHWC'
    if isinstance(kw.get('normalizer_params'), dict):
        kw['normalizer_params'] = _nchw_to_nhwc_kwargs(kw['normalizer_params'])
    return kw


def _run_single(T, cfg, arrays, prefix, x_tf, tf_kwargs, extra=None):
    """Build one graph: the call (and `extra(graph, y)` companions), run it,
    then UPDATE_OPS once.  Returns a dict of results."""
    import contextlib
    tf, v1 = T.tf, T.v1
    g = tf.Graph()
    with g.as_default():
        x = tf.constant(x_tf)
        with contextlib.ExitStack() as st:
            _enter_scopes(T, st, cfg)
            y = T.ops[cfg['function']](x, **tf_kwargs)
            # companions run under the same arg_scope/variable_scope as the
            # call (they share its activation_fn, initializers, ...)
            more = extra(x, y) if extra else {}
        ups = g.get_collection(v1.GraphKeys.UPDATE_OPS)
        regs = g.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
        variables = g.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
        fused = any(op.type.startswith('FusedBatchNorm') for op in g.get_operations())
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            init_vals = sess.run({v.op.name: v for v in variables})
            out, reg_vals, more_vals = sess.run([y, regs, more])
            if ups:
                sess.run(ups)
            after_vals = sess.run({v.op.name: v for v in variables})
        return {'y': out, 'vars': _var_records(T, g), 'init': init_vals,
                'after': after_vals, 'n_update_ops': len(ups),
                'collection_order': _custom_collection_order(T, g),
                'regs': [(r.op.name, v) for r, v in zip(regs, reg_vals)],
                'fused': fused, 'more': more_vals, 'returned_input': y is x}


def _finish(cfg, arrays, prefix, res, expected, ref=None, base_tol=None):
    """Store results of a single-call run into arrays/cfg."""
    arrays[prefix + 'expected'] = expected
    cfg['expected_shape'] = list(expected.shape)
    cfg['variables'] = res['vars']
    for name, val in res['init'].items():
        key = prefix + 'var/' + name
        if key in arrays:  # the initializer's array, as TF cast it to the variable's dtype
            assert np.array_equal(np.asarray(arrays[key]).astype(np.asarray(val).dtype), val), name
        arrays[key] = np.asarray(val)
    cfg['updated'] = []
    for name, val in res['after'].items():
        if not np.array_equal(val, res['init'][name]):
            arrays[prefix + 'after/' + name] = np.asarray(val)
            cfg['updated'].append(name)
    cfg['n_update_ops'] = res['n_update_ops']
    if res.get('collection_order'):
        cfg['collection_order'] = res['collection_order']
    cfg['regularization_losses'] = []
    for k, (name, val) in enumerate(res['regs']):
        arrays[prefix + 'reg/%d' % k] = np.asarray(val)
        cfg['regularization_losses'].append({'key': 'reg/%d' % k, 'tf_name': name})
    cfg.setdefault('tf', {})['fused_batch_norm'] = res['fused']
    f64 = cfg['dtype'] == 'float64'
    rtol, atol = base_tol or ((1e-10, 1e-10) if f64 else (1e-4, 1e-4))
    if ref is not None:
        err = float(np.max(np.abs(expected.astype(np.float64) - ref))) if expected.size else 0.0
        cfg['ref_max_abs_err'] = err
        atol = max(atol, 4 * err)
        lim = 1e-8 if f64 else 5e-2 if cfg['dtype'] == 'float16' else 5e-3
        if err > lim * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0):
            print('WARNING: %s %s differs from the NumPy reference by %g'
                  % (cfg['family'], cfg['id'], err), file=sys.stderr)
            cfg['ref_mismatch'] = True
    cfg['rtol'], cfg['atol'] = rtol, float('%.3g' % atol)


def _to_nchw(a):
    return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))


def _to_nhwc(a):
    return np.ascontiguousarray(np.transpose(a, (0, 2, 3, 1)))


def _run_layer(T, cfg, arrays, prefix, x_nhwc, extra=None):
    """Run cfg (layer call) honouring data_format; returns (res, y_pyconv_layout)."""
    nchw = cfg.get('data_format') == 'NCHW'
    _prepare_arg_scope(T, cfg, arrays, prefix)
    if not nchw:
        res = _run_single(T, cfg, arrays, prefix, x_nhwc,
                          T.kwargs(cfg['kwargs'], arrays, prefix), extra)
        cfg.setdefault('tf', {})['ran_as'] = 'NHWC'
        return res, res['y']
    res_h = _run_single(T, cfg, arrays, prefix, x_nhwc,
                        T.kwargs(_nchw_to_nhwc_kwargs(cfg['kwargs']), arrays, prefix), extra)
    try:
        res = _run_single(T, cfg, arrays, prefix, _to_nchw(x_nhwc),
                          T.kwargs(cfg['kwargs'], arrays, prefix), extra)
        ok = np.allclose(res['y'], _to_nchw(res_h['y']), rtol=1e-4, atol=1e-4)
        if not ok:
            print('WARNING: %s %s: TF NCHW and NHWC disagree'
                  % (cfg['family'], cfg['id']), file=sys.stderr)
        cfg.setdefault('tf', {})['ran_as'] = 'NCHW'
        cfg['tf']['nhwc_check'] = bool(ok)
        return res, res['y']
    except Exception as e:  # TF CPU lacks this NCHW kernel
        cfg.setdefault('tf', {})['ran_as'] = 'NHWC+transpose'
        cfg['tf']['nchw_error'] = type(e).__name__
        return res_h, _to_nchw(res_h['y'])


def _tf_call_text(cfg, tfname):
    kw = ', '.join('%s=%s' % (k, json.dumps(v)) for k, v in cfg['kwargs'].items())
    return '%s(inputs, %s)' % (tfname, kw)


# ---------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------

_CHANNELS = [1, 1, 2, 3, 3, 4, 5, 7, 8, 16, 17]


def _ch(rng):
    return int(rng.choice(_CHANNELS)) if rng.rand() < 0.7 else int(rng.randint(1, 18))


def _maybe_pair(rng, a, b, p_int=0.6):
    if a == b and rng.rand() < p_int:
        return int(a)
    return [int(a), int(b)]


def _rand_input(rng, shape, dtype):
    amp = float(rng.choice([1.0, 3.0, 8.0]))
    x = rng.uniform(-1, 1, size=shape) * amp
    if rng.rand() < 0.15:
        x = -np.abs(x) - 0.1   # all negative: relu / max-pool padding visible
    return x.astype(dtype)


def _small_nc(N, H, W, C, limit=1200):
    """Shrink batch, then channels, until N*H*W*C <= limit (file size)."""
    while N * H * W * C > limit:
        if N > 1:
            N -= 1
        else:
            C = max(1, C // 2)
    return N, C


def _weights(rng, kh, kw, cin, cout, dtype):
    return (rng.randn(kh, kw, cin, cout) / math.sqrt(kh * kw * cin)).astype(dtype)


def _bn_params(rng, c, dtype, center, scale):
    p = {}
    if center:
        p['beta'] = (rng.randn(c) * 0.5).astype(dtype)
    if scale:
        p['gamma'] = rng.uniform(0.5, 2.0, c).astype(dtype)
    p['moving_mean'] = (rng.randn(c) * 0.5).astype(dtype)
    p['moving_variance'] = rng.uniform(0.5, 2.5, c).astype(dtype)
    return p


def _sample_conv_geometry(rng, i):
    # deterministic sweep first so every kernel/stride/rate/size is covered
    kh = 1 + i % 7
    kw = kh if rng.rand() < 0.55 else int(rng.randint(1, 8))
    if rng.rand() < 0.5:
        s = (1 + (i // 7) % 3, ) * 2 if rng.rand() < 0.75 else (
            int(rng.randint(1, 4)), int(rng.randint(1, 4)))
    else:
        s = (1, 1) if rng.rand() < 0.4 else ((int(rng.randint(2, 4)),) * 2)
    r = (1, 1)
    if s == (1, 1) and rng.rand() < 0.45:
        rr = int(rng.randint(2, 5))
        r = (rr, rr) if rng.rand() < 0.75 else (int(rng.randint(1, 5)), int(rng.randint(1, 5)))
    return (kh, kw), s, r


def _fit_valid(rng, k, r, limit=12):
    keff = k + (k - 1) * (r - 1)
    return int(rng.randint(keff, limit + 1)) if keff <= limit else None


def _conv2d_configs(T, rng, n, arrays, family='conv2d'):
    cfgs = []
    i = 0
    attempts = 0
    while len(cfgs) < n:
        attempts += 1
        (kh, kw), s, r = _sample_conv_geometry(rng, attempts - 1)
        padding = 'SAME' if rng.rand() < 0.5 else 'VALID'
        if padding == 'VALID':
            H, W = _fit_valid(rng, kh, r[0]), _fit_valid(rng, kw, r[1])
            if H is None or W is None:
                continue
        else:
            H, W = int(rng.randint(1, 13)), int(rng.randint(1, 13))
        if rng.rand() < 0.1:
            padding = padding.lower() if rng.rand() < 0.7 else padding.capitalize()
        N = int(rng.randint(1, 4))
        cin, cout = _ch(rng), _ch(rng)
        while kh * kw * cin * cout > 1500 or N * H * W * cin > 1200:  # keep files small
            if N > 1 and N * H * W * cin > 1200:
                N -= 1
            elif cin >= cout:
                cin = max(1, cin // 2)
            else:
                cout = max(1, cout // 2)
        dtype = 'float32' if rng.rand() < 0.6 else 'float64'
        df = 'NCHW' if rng.rand() < 0.35 else 'NHWC'
        pinned = None
        if i == 0:
            # TF 2.21's oneDNN float32 Conv2D is wrong here (batch > 1,
            # in_channels 1, stride (1, 2)); the fixture holds the Eigen
            # (TF_ENABLE_ONEDNN_OPTS=0) result, which is the right one.
            (kh, kw), s, r, padding, H, W, N, cin, cout = (2, 2), (1, 2), (1, 1), 'VALID', 8, 3, 2, 1, 17
            dtype, df = 'float32', 'NHWC'
            pinned = ('pinned: TF 2.21 with oneDNN on (its default) returns wrong numbers for this '
                      'shape (batch>1, in_channels=1, stride (1, 2)); expected is the Eigen/NumPy answer')
        act = [None, 'relu', 'relu6'][int(rng.randint(0, 3))]
        use_bn = rng.rand() < 0.3 and pinned is None
        use_bias = rng.rand() < 0.75
        cid = 'c%d' % i
        prefix = cid + '/'
        scope = None if rng.rand() < 0.5 else 'conv%d' % int(rng.randint(1, 6))
        outer = 'net' if rng.rand() < 0.15 else None
        base = ((outer + '/') if outer else '') + (scope or 'Conv')
        kw_ = {'num_outputs': cout, 'kernel_size': _maybe_pair(rng, kh, kw)}
        if s != (1, 1) or rng.rand() < 0.3:
            kw_['stride'] = _maybe_pair(rng, *s)
        kw_['padding'] = padding
        if df == 'NCHW' or rng.rand() < 0.2:
            kw_['data_format'] = df
        if r != (1, 1) or rng.rand() < 0.1:
            kw_['rate'] = _maybe_pair(rng, *r)
        kw_['activation_fn'] = {'__fn__': act} if act else None
        W_ = _weights(rng, kh, kw, cin, cout, dtype)
        arrays[prefix + 'var/' + base + '/weights'] = W_
        kw_['weights_initializer'] = {'__array__': 'var/%s/weights' % base}
        bias = None
        bn = None
        if use_bn:
            center = rng.rand() < 0.8
            scl = rng.rand() < 0.6
            p = _bn_params(rng, cout, dtype, center, scl)
            np_ = {'is_training': bool(rng.rand() < 0.5)}
            if rng.rand() < 0.7:
                np_['decay'] = float(rng.choice([0.9, 0.5, 0.99]))
            if rng.rand() < 0.3:
                np_['epsilon'] = float(rng.choice([1e-5, 0.01]))
            np_['center'], np_['scale'] = center, scl
            if df == 'NCHW':
                np_['data_format'] = 'NCHW'
            np_['param_initializers'] = {}
            for k_, v_ in p.items():
                arrays[prefix + 'var/%s/BatchNorm/%s' % (base, k_)] = v_
                np_['param_initializers'][k_] = {'__array__': 'var/%s/BatchNorm/%s' % (base, k_)}
            kw_['normalizer_fn'] = {'__fn__': 'batch_norm'}
            kw_['normalizer_params'] = np_
            bn = (np_, p)
        elif use_bias:
            bias = (rng.randn(cout) * 0.5).astype(dtype)
            arrays[prefix + 'var/' + base + '/biases'] = bias
            kw_['biases_initializer'] = {'__array__': 'var/%s/biases' % base}
        else:
            kw_['biases_initializer'] = None
        if rng.rand() < 0.15:
            kind = str(rng.choice(['l1', 'l2', 'l1_l2']))
            kw_['weights_regularizer'] = {'__regularizer__': [kind, 0.01] + ([0.02] if kind == 'l1_l2' else [])}
            if bias is not None and rng.rand() < 0.5:
                kw_['biases_regularizer'] = {'__regularizer__': ['l2', 0.5]}
        if scope:
            kw_['scope'] = scope
        x = _rand_input(rng, (N, H, W, cin), dtype)
        cfg = {'id': cid, 'family': family, 'function': 'conv2d', 'kwargs': kw_,
               'dtype': dtype, 'data_format': df}
        if pinned:
            cfg['note'] = pinned
        if outer:
            cfg['variable_scope'] = outer
        cfg['input_shape'] = list(_to_nchw(x).shape if df == 'NCHW' else x.shape)
        cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.conv2d')}
        res, y = _run_layer(T, cfg, arrays, prefix, x)
        arrays[prefix + 'input'] = _to_nchw(x) if df == 'NCHW' else x
        # reference
        pads = _geometry((H, W), (kh, kw), s, r, padding)
        ref = _ref_conv(x, W_, s, r, pads, bias, None if bn else act)
        tol = None
        if bn:
            np_, p = bn
            ref, mm, mv = _ref_bn(ref, 3, np_['is_training'], np_.get('decay', 0.999),
                                  np_.get('epsilon', 0.001), p.get('beta'), p.get('gamma'),
                                  p['moving_mean'].astype(np.float64),
                                  p['moving_variance'].astype(np.float64), res['fused'])
            ref = _ref_act(ref, act)
            tol = (1e-9, 1e-9) if dtype == 'float64' else (1e-4, 5e-4)
            if np_['is_training']:
                cfg['tf']['moving_variance_bessel'] = bool(res['fused'])
                _check_after(cfg, res, base + '/BatchNorm', mm, mv)
        if df == 'NCHW':
            ref = _to_nchw(ref)
        _finish(cfg, arrays, prefix, res, y, ref, tol)
        cfgs.append(cfg)
        i += 1
    return cfgs


def _check_after(cfg, res, bnscope, mm, mv):
    a = res['after']
    tol = 1e-9 if cfg['dtype'] == 'float64' else 1e-4
    ok = (np.allclose(a[bnscope + '/moving_mean'], mm, rtol=tol, atol=tol) and
          np.allclose(a[bnscope + '/moving_variance'], mv, rtol=tol, atol=tol))
    cfg['tf']['moving_stats_match_formula'] = bool(ok)
    if not ok:
        print('WARNING: %s %s moving statistics differ from the formula'
              % (cfg['family'], cfg['id']), file=sys.stderr)


def _create_input(n, h, w, c):
    """tf-slim resnet tests' create_input: x[i, j] = i + j."""
    g = np.add.outer(np.arange(h), np.arange(w)).astype(np.float32)
    return np.tile(g.reshape(1, h, w, 1), (n, 1, 1, c))


def _conv2d_same_configs(T, rng, n, arrays):
    cfgs = []
    specs = [(4, 4, 1, 1, 3, 2, 1, 'canonical'), (5, 5, 1, 1, 3, 2, 1, 'canonical')]
    while len(specs) < n:
        stride = int(rng.randint(1, 4))
        rate = int(rng.randint(1, 3)) if stride == 1 else 1
        k = int(rng.randint(1, 8))
        H, W = int(rng.randint(1, 13)), int(rng.randint(1, 13))
        specs.append((H, W, _ch(rng) % 9 or 1, int(rng.randint(1, 9)), k, stride, rate, None))
    for i, (H, W, cin, cout, k, stride, rate, tag) in enumerate(specs):
        cid = 'c%d' % i
        prefix = cid + '/'
        dtype = 'float32' if (tag or rng.rand() < 0.6) else 'float64'
        scope = 'Conv' if tag else (None if rng.rand() < 0.5 else 'conv%d' % int(rng.randint(1, 6)))
        base = scope or 'Conv'
        N = 1 if tag else int(rng.randint(1, 3))
        if tag:
            x = _create_input(1, H, W, 1)
            Wt = _create_input(1, 3, 3, 1).reshape(3, 3, 1, 1)
            b = np.zeros(1, np.float32)
            act = 'relu'
        else:
            x = _rand_input(rng, (N, H, W, cin), dtype)
            Wt = _weights(rng, k, k, cin, cout, dtype)
            b = (rng.randn(cout) * 0.5).astype(dtype)
            act = [None, 'relu', 'relu6'][int(rng.randint(0, 3))]
        arrays[prefix + 'var/%s/weights' % base] = Wt
        arrays[prefix + 'var/%s/biases' % base] = b
        kw_ = {'num_outputs': cout, 'kernel_size': k, 'stride': stride}
        if rate != 1 or rng.rand() < 0.2:
            kw_['rate'] = rate
        if scope:
            kw_['scope'] = scope
        cfg = {'id': cid, 'family': 'conv2d_same', 'function': 'conv2d_same',
               'kwargs': kw_, 'dtype': dtype, 'data_format': 'NHWC',
               'arg_scope': [{'ops': ['conv2d'], 'kwargs': {
                   'weights_initializer': {'__array__': 'var/%s/weights' % base},
                   'biases_initializer': {'__array__': 'var/%s/biases' % base},
                   'activation_fn': {'__fn__': act} if act else None}}],
               'input_shape': list(x.shape)}
        if tag:
            cfg['note'] = ('tf-slim ResnetUtilsTest.testConv2DSame%s: input and '
                           'kernel from create_input (x[i,j] = i + j), zero bias'
                           % ('Even' if H == 4 else 'Odd'))
        cfg['tf'] = {'call': "with slim.arg_scope([slim.conv2d], ...): " +
                     _tf_call_text(cfg, 'resnet_utils.conv2d_same')}
        sc = base
        slim, v1, ru = T.slim, T.v1, T.resnet_utils

        def extra(xt, y, sc=sc, cout=cout, k=k, stride=stride, rate=rate):
            with v1.variable_scope(v1.get_variable_scope(), reuse=True):
                y1 = slim.conv2d(xt, cout, k, stride=1, rate=rate, padding='SAME', scope=sc)
                out = {'sub': ru.subsample(y1, stride)}
                if rate == 1:
                    out['strided'] = slim.conv2d(xt, cout, k, stride=stride, padding='SAME', scope=sc)
            return out
        res, y = _run_layer(T, cfg, arrays, prefix, x, extra)
        arrays[prefix + 'input'] = x
        arrays[prefix + 'conv2d_stride1_same_then_subsample'] = res['more']['sub']
        comp = {'conv2d_stride1_same_then_subsample': 'conv2d_stride1_same_then_subsample',
                'conv2d_strided_same': None, 'strided_same_differs': None,
                'equals_stride1_then_subsample': bool(np.allclose(y, res['more']['sub'], rtol=1e-5, atol=1e-5))}
        if 'strided' in res['more']:
            arrays[prefix + 'conv2d_strided_same'] = res['more']['strided']
            comp['conv2d_strided_same'] = 'conv2d_strided_same'
            comp['strided_same_differs'] = bool(not np.allclose(y, res['more']['strided'], rtol=1e-5, atol=1e-5))
        cfg['companions'] = comp
        keff = k + (k - 1) * (rate - 1)
        if stride == 1:
            pads = _geometry((H, W), (k, k), (1, 1), (rate, rate), 'SAME')
        else:
            pads = [((keff - 1) // 2, keff - 1 - (keff - 1) // 2)] * 2
        ref = _ref_conv(x, Wt, (stride, stride), (rate, rate), pads, b, act)
        _finish(cfg, arrays, prefix, res, y, ref)
        cfgs.append(cfg)
    return cfgs


def _subsample_configs(T, rng, n, arrays):
    cfgs = []
    for i in range(n):
        cid = 'c%d' % i
        prefix = cid + '/'
        factor = [1, 2, 3, 4][i % 4]
        H, W = int(rng.randint(1, 13)), int(rng.randint(1, 13))
        if i == 0:
            factor, H, W = 2, 3, 3
        if i == 1:
            factor, H, W = 2, 4, 4
        dtype = 'float32' if rng.rand() < 0.6 else 'float64'
        if i < 2:
            x = np.arange(H * W, dtype=np.float32).reshape(1, H, W, 1)
            dtype = 'float32'
        else:
            N_, C_ = _small_nc(int(rng.randint(1, 4)), H, W, _ch(rng), 800)
            x = _rand_input(rng, (N_, H, W, C_), dtype)
        kw_ = {'factor': factor}
        if rng.rand() < 0.3:
            kw_['scope'] = 'sub%d' % i
        cfg = {'id': cid, 'family': 'subsample', 'function': 'subsample',
               'kwargs': kw_, 'dtype': dtype, 'data_format': 'NHWC',
               'input_shape': list(x.shape)}
        if i < 2:
            cfg['note'] = 'tf-slim ResnetUtilsTest.testSubsample%s' % ('ThreeByThree' if H == 3 else 'FourByFour')
        cfg['tf'] = {'call': _tf_call_text(cfg, 'resnet_utils.subsample')}
        res, y = _run_layer(T, cfg, arrays, prefix, x)
        cfg['returns_input_object'] = bool(res['returned_input'])
        arrays[prefix + 'input'] = x
        _finish(cfg, arrays, prefix, res, y, x.astype(np.float64)[:, ::factor, ::factor, :])
        cfgs.append(cfg)
    return cfgs


def _pool_configs(T, rng, n, arrays):
    cfgs = []
    i = 0
    while len(cfgs) < n:
        kind = 'max' if i % 2 == 0 else 'avg'
        kh = 1 + (i // 2) % 4
        kw = kh if rng.rand() < 0.6 else int(rng.randint(1, 5))
        s = (1 + (i // 8) % 3,) * 2 if rng.rand() < 0.7 else (int(rng.randint(1, 4)), int(rng.randint(1, 4)))
        padding = 'SAME' if rng.rand() < 0.5 else 'VALID'
        if padding == 'VALID':
            H, W = int(rng.randint(kh, 13)), int(rng.randint(kw, 13))
        else:
            H, W = int(rng.randint(1, 13)), int(rng.randint(1, 13))
        dtype = 'float32' if rng.rand() < 0.6 else 'float64'
        df = 'NCHW' if rng.rand() < 0.3 else 'NHWC'
        N_, C_ = _small_nc(int(rng.randint(1, 4)), H, W, _ch(rng), 1000)
        x = _rand_input(rng, (N_, H, W, C_), dtype)
        cid = 'c%d' % i
        prefix = cid + '/'
        fn = kind + '_pool2d'
        kw_ = {'kernel_size': _maybe_pair(rng, kh, kw)}
        if s != (2, 2) or rng.rand() < 0.5:
            kw_['stride'] = _maybe_pair(rng, *s)
        if padding != 'VALID' or rng.rand() < 0.5:
            kw_['padding'] = padding if rng.rand() < 0.9 else padding.lower()
        if df == 'NCHW' or rng.rand() < 0.2:
            kw_['data_format'] = df
        if rng.rand() < 0.2:
            kw_['scope'] = 'pool%d' % i
        cfg = {'id': cid, 'family': 'pool', 'function': fn, 'kwargs': kw_,
               'dtype': dtype, 'data_format': df,
               'input_shape': list(_to_nchw(x).shape if df == 'NCHW' else x.shape)}
        cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.' + fn)}
        try:
            res, y = _run_layer(T, cfg, arrays, prefix, x)
        except Exception as e:
            print('skip pool', cfg, type(e).__name__, str(e)[:200], file=sys.stderr)
            i += 1
            continue
        arrays[prefix + 'input'] = _to_nchw(x) if df == 'NCHW' else x
        pads = _geometry((H, W), (kh, kw), s, (1, 1), padding)
        ref = _ref_pool(x, kind, (kh, kw), s, pads)
        if df == 'NCHW':
            ref = _to_nchw(ref)
        _finish(cfg, arrays, prefix, res, y, ref)
        cfgs.append(cfg)
        i += 1
    return cfgs


def _full_explicit_configs(T, rng, n, arrays):
    """pyconv padding='FULL' / explicit pads; TF: VALID on np.pad-ed input."""
    tf, v1, slim = T.tf, T.v1, T.slim
    cfgs = []
    i = 0
    while len(cfgs) < n:
        lowlevel = i % 3 == 2
        full = i % 3 == 0 if not lowlevel else rng.rand() < 0.3
        kh, kw = int(rng.randint(1, 8)), int(rng.randint(1, 8))
        if rng.rand() < 0.5:
            kw = kh
        s = (int(rng.randint(1, 4)), int(rng.randint(1, 4))) if rng.rand() < 0.3 else ((int(rng.randint(1, 4)),) * 2)
        r = (1, 1)
        if (s == (1, 1) or lowlevel) and rng.rand() < 0.4:
            r = (int(rng.randint(1, 4)), int(rng.randint(1, 4)))
        H, W = int(rng.randint(1, 13)), int(rng.randint(1, 13))
        if full:
            pads = _geometry((H, W), (kh, kw), s, r, 'FULL')
            padding = 'FULL' if rng.rand() < 0.8 else 'full'
        else:
            pads = [(int(rng.randint(0, 5)), int(rng.randint(0, 5))) for _ in range(2)]
            padding = [list(p) for p in pads]
        keffh, keffw = kh + (kh - 1) * (r[0] - 1), kw + (kw - 1) * (r[1] - 1)
        if H + sum(pads[0]) < keffh or W + sum(pads[1]) < keffw:
            i += 1
            continue
        dtype = 'float32' if rng.rand() < 0.6 else 'float64'
        df = 'NCHW' if rng.rand() < 0.3 else 'NHWC'
        N, cin, cout = int(rng.randint(1, 4)), _ch(rng), _ch(rng)
        N, cin = _small_nc(N, H, W, cin, 1000)
        while kh * kw * cin * cout > 1500:
            cout = max(1, cout // 2)
        x = _rand_input(rng, (N, H, W, cin), dtype)
        xp = np.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
        Wt = _weights(rng, kh, kw, cin, cout, dtype)
        act = [None, 'relu', 'relu6'][int(rng.randint(0, 3))]
        b = (rng.randn(cout) * 0.5).astype(dtype) if rng.rand() < 0.7 else None
        cid = 'c%d' % len(cfgs)
        prefix = cid + '/'
        cfg = {'id': cid, 'family': 'full_explicit', 'dtype': dtype, 'data_format': df,
               'input_shape': list(_to_nchw(x).shape if df == 'NCHW' else x.shape),
               'explicit_pads': [list(p) for p in pads]}
        if lowlevel:
            arrays[prefix + 'filters'] = Wt
            kw_ = {'filters': {'__array__': 'filters'}}
            st = [_maybe_pair(rng, *s), [1, s[0], s[1], 1] if df == 'NHWC' else [1, 1, s[0], s[1]]][int(rng.rand() < 0.25)]
            kw_['strides'] = st
            kw_['padding'] = padding
            kw_['data_format'] = df
            if r != (1, 1) or rng.rand() < 0.2:
                kw_['dilations'] = _maybe_pair(rng, *r)
            if b is not None:
                arrays[prefix + 'bias'] = b
                kw_['bias'] = {'__array__': 'bias'}
            kw_['activation'] = act
            cfg['function'] = 'nn.conv2d'
            cfg['kwargs'] = kw_
            cfg['note'] = ('filters/bias are arrays here (not initializers); '
                           'strides/dilations may both exceed 1 at this level')
            g = tf.Graph()
            with g.as_default():
                yv = tf.nn.conv2d(tf.constant(xp), tf.constant(Wt), strides=[1, s[0], s[1], 1],
                                  dilations=[1, r[0], r[1], 1], padding='VALID')
                if b is not None:
                    yv = tf.nn.bias_add(yv, tf.constant(b))
                if act:
                    yv = T.fns[act](yv)
                yn = tf.nn.conv2d(tf.constant(x), tf.constant(Wt), strides=[1, s[0], s[1], 1],
                                  dilations=[1, r[0], r[1], 1],
                                  padding=[[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
                if b is not None:
                    yn = tf.nn.bias_add(yn, tf.constant(b))
                if act:
                    yn = T.fns[act](yn)
                with v1.Session(graph=g) as sess:
                    y, y_native = sess.run([yv, yn])
            res = {'y': y, 'vars': [], 'init': {}, 'after': {}, 'n_update_ops': 0,
                   'regs': [], 'fused': False}
            cfg['tf'] = {'call': 'tf.nn.conv2d(np.pad(x, pads), filters, strides, '
                                 "dilations, padding='VALID') + bias_add + activation",
                         'ran_as': 'NHWC' if df == 'NHWC' else 'NHWC+transpose'}
        else:
            arrays[prefix + 'var/Conv/weights'] = Wt
            kw_ = {'num_outputs': cout, 'kernel_size': _maybe_pair(rng, kh, kw)}
            if s != (1, 1):
                kw_['stride'] = _maybe_pair(rng, *s)
            kw_['padding'] = padding
            if df == 'NCHW':
                kw_['data_format'] = df
            if r != (1, 1):
                kw_['rate'] = _maybe_pair(rng, *r)
            kw_['activation_fn'] = {'__fn__': act} if act else None
            kw_['weights_initializer'] = {'__array__': 'var/Conv/weights'}
            if b is not None:
                arrays[prefix + 'var/Conv/biases'] = b
                kw_['biases_initializer'] = {'__array__': 'var/Conv/biases'}
            else:
                kw_['biases_initializer'] = None
            cfg['function'] = 'conv2d'
            cfg['kwargs'] = kw_
            tfkw = dict(kw_)
            tfkw['padding'] = 'VALID'
            tfkw.pop('data_format', None)
            g = tf.Graph()
            with g.as_default():
                yv = slim.conv2d(tf.constant(xp), **T.kwargs(tfkw, arrays, prefix))
                yn = tf.nn.conv2d(tf.constant(x), tf.constant(Wt),
                                  strides=[1, s[0], s[1], 1], dilations=[1, r[0], r[1], 1],
                                  padding=[[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
                if b is not None:
                    yn = tf.nn.bias_add(yn, tf.constant(b))
                if act:
                    yn = T.fns[act](yn)
                variables = g.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
                with v1.Session(graph=g) as sess:
                    sess.run(v1.global_variables_initializer())
                    init = sess.run({v.op.name: v for v in variables})
                    y, y_native = sess.run([yv, yn])
                vrec = _var_records(T, g)
            res = {'y': y, 'vars': vrec, 'init': init, 'after': init, 'n_update_ops': 0,
                   'regs': [], 'fused': False}
            cfg['tf'] = {'call': "slim.conv2d(np.pad(x, pads), ..., padding='VALID')",
                         'ran_as': 'NHWC' if df == 'NHWC' else 'NHWC+transpose'}
        cfg['tf']['native_explicit_padding_agrees'] = bool(np.allclose(y, y_native, rtol=1e-4, atol=1e-4))
        arrays[prefix + 'input'] = _to_nchw(x) if df == 'NCHW' else x
        ref = _ref_conv(x, Wt, s, r, pads, b, act)
        if df == 'NCHW':
            y, ref = _to_nchw(y), _to_nchw(ref)
        _finish(cfg, arrays, prefix, res, y, ref)
        cfgs.append(cfg)
        i += 1
    return cfgs


def _batch_norm_configs(T, rng, n, arrays):
    cfgs = []
    for i in range(n):
        cid = 'c%d' % i
        prefix = cid + '/'
        dtype = 'float32' if i % 5 < 3 else 'float64'
        df = 'NCHW' if rng.rand() < 0.3 else 'NHWC'
        N = int(rng.choice([1, 2, 3, 10])) if i >= 2 else 1
        H, W = int(rng.randint(1, 7)), int(rng.randint(1, 7))
        if i < 2:
            H = W = 1   # n = 1: unbiased variance would divide by zero
        C = _ch(rng)
        center = rng.rand() < 0.8
        scale = rng.rand() < 0.5
        is_training = bool(i % 2 == 0) if i < 4 else bool(rng.rand() < 0.6)
        x = _rand_input(rng, (N, H, W, C), dtype) + float(rng.choice([0.0, 3.0]))
        x = x.astype(dtype)
        scope = None if rng.rand() < 0.6 else 'bn%d' % int(rng.randint(1, 5))
        base = scope or 'BatchNorm'
        p = _bn_params(rng, C, dtype, center, scale)
        kw_ = {}
        if rng.rand() < 0.7:
            kw_['decay'] = float(rng.choice([0.9, 0.5, 0.99, 0.1]))
        kw_['center'], kw_['scale'] = center, scale
        if rng.rand() < 0.4:
            kw_['epsilon'] = float(rng.choice([1e-5, 0.01, 0.5]))
        if rng.rand() < 0.2:
            kw_['activation_fn'] = {'__fn__': 'relu'}
        if rng.rand() < 0.25:
            p.pop('moving_mean')
            p.pop('moving_variance')
        note = None
        if i in (1, 2):
            # float32 fused path (eval, train) with epsilon below cuDNN's
            # 1.001e-5 and variances ~1e-6: TF's CPU kernel uses epsilon as
            # given (pyconv once clamped it; found by the live tier)
            kw_['epsilon'] = 1e-7
            x = (x * 1e-3).astype(dtype)
            p['moving_mean'] = (p.get('moving_mean', np.zeros(C)) * 1e-3).astype(dtype)
            p['moving_variance'] = (p.get('moving_variance', np.ones(C)) * 1e-6).astype(dtype)
            note = 'epsilon 1e-7 < 1.001e-5 on the fused path, tiny variances: epsilon is not clamped'
        kw_['param_initializers'] = {}
        for k_, v_ in p.items():
            arrays[prefix + 'var/%s/%s' % (base, k_)] = v_
            kw_['param_initializers'][k_] = {'__array__': 'var/%s/%s' % (base, k_)}
        kw_['is_training'] = is_training
        if df == 'NCHW' or rng.rand() < 0.2:
            kw_['data_format'] = df
        if scope:
            kw_['scope'] = scope
        cfg = {'id': cid, 'family': 'batch_norm', 'function': 'batch_norm', 'kwargs': kw_,
               'dtype': dtype, 'data_format': df,
               'input_shape': list(_to_nchw(x).shape if df == 'NCHW' else x.shape)}
        if note:
            cfg['note'] = note
        cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.batch_norm')}
        res, y = _run_layer(T, cfg, arrays, prefix, x)
        arrays[prefix + 'input'] = _to_nchw(x) if df == 'NCHW' else x
        init = {k.split('/')[-1]: np.asarray(v, np.float64) for k, v in res['init'].items()}
        yr, mm, mv = _ref_bn(x, 3, is_training, kw_.get('decay', 0.999), kw_.get('epsilon', 0.001),
                             init.get('beta'), init.get('gamma'), init['moving_mean'],
                             init['moving_variance'], res['fused'])
        if kw_.get('activation_fn'):
            yr = _ref_act(yr, 'relu')
        if is_training:
            cfg['tf']['moving_variance_bessel'] = bool(res['fused'])
            _check_after(cfg, res, base, mm, mv)
        if df == 'NCHW':
            yr = _to_nchw(yr)
        _finish(cfg, arrays, prefix, res, y, yr,
                (1e-9, 1e-9) if dtype == 'float64' else (1e-4, 2e-4))
        cfgs.append(cfg)
    return cfgs


# --------------------------- multi-step programs ---------------------------

def _run_steps(T, cfg, arrays, prefix):
    """Run cfg['steps'] in one graph.  Returns (outputs, graph records, error)."""
    import contextlib
    tf, v1 = T.tf, T.v1
    g = tf.Graph()
    err = None
    outs = {}
    with g.as_default():
        tensors = {}
        for k, step in enumerate(cfg['steps']):
            src = step['input']
            xin = tensors[src] if src in tensors else tf.constant(arrays[prefix + src])
            _prepare_arg_scope(T, step, arrays, prefix)
            try:
                with contextlib.ExitStack() as st:
                    _enter_scopes(T, st, step)
                    tensors['step%d' % k] = T.ops[step['function']](
                        xin, **T.kwargs(step['kwargs'], arrays, prefix))
            except Exception as e:
                err = e
                break
        ups = g.get_collection(v1.GraphKeys.UPDATE_OPS)
        regs = g.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
        variables = g.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
        colls = {}
        for key in ('outputs', 'end_points'):
            if g.get_collection(key):
                colls[key] = list(T.slim_utils.convert_collection_to_dict(key).keys())
        if err is None:
            with v1.Session(graph=g) as sess:
                sess.run(v1.global_variables_initializer())
                init = sess.run({v.op.name: v for v in variables})
                vals = sess.run({k: t for k, t in tensors.items()})
                regv = sess.run(regs)
                if ups:
                    sess.run(ups)
                after = sess.run({v.op.name: v for v in variables})
            outs = {'vals': vals, 'init': init, 'after': after, 'regs': list(zip([r.op.name for r in regs], regv)),
                    'n_update_ops': len(ups), 'vars': _var_records(T, g), 'collections': colls,
                    'fused': any(op.type.startswith('FusedBatchNorm') for op in g.get_operations())}
        else:
            outs = {'vars': _var_records(T, g), 'n_update_ops': len(ups)}
    return outs, err


def _program(T, arrays, cid, steps, inputs, note, dtype='float32', error_expected=None):
    prefix = cid + '/'
    for k, v in inputs.items():
        arrays[prefix + k] = v
    cfg = {'id': cid, 'steps': steps, 'dtype': dtype, 'note': note,
           'input_shape': list(inputs['input'].shape)}
    res, err = _run_steps(T, cfg, arrays, prefix)
    for s in steps:
        s['expected'] = None
    if err is not None:
        cfg['error'] = {'type': type(err).__name__, 'tf_message': str(err).splitlines()[0][:400],
                        'pyconv_expected_type': error_expected or type(err).__name__}
        cfg['variables_before_error'] = res['vars']
        return cfg
    if error_expected:
        raise RuntimeError('%s: expected an error, TF raised none' % cid)
    for k, s in enumerate(steps):
        key = 'step%d' % k
        arrays[prefix + key] = np.asarray(res['vals'][key])
        s['expected'] = key
    cfg['variables'] = res['vars']
    for name, val in res['init'].items():
        arrays[prefix + 'var/' + name] = np.asarray(val)
    cfg['updated'] = []
    for name, val in res['after'].items():
        if not np.array_equal(val, res['init'][name]):
            arrays[prefix + 'after/' + name] = np.asarray(val)
            cfg['updated'].append(name)
    cfg['n_update_ops'] = res['n_update_ops']
    cfg['regularization_losses'] = []
    for k, (name, val) in enumerate(res['regs']):
        arrays[prefix + 'reg/%d' % k] = np.asarray(val)
        cfg['regularization_losses'].append({'key': 'reg/%d' % k, 'tf_name': name})
    cfg['collections'] = res['collections']
    cfg['tf'] = {'fused_batch_norm': res['fused']}
    cfg['rtol'], cfg['atol'] = (1e-4, 2e-4) if dtype == 'float32' else (1e-10, 1e-10)
    return cfg


def _A(key):
    return {'__array__': key}


def _conv_kw(rng, arrays, prefix, base, cin, cout, k, **extra):
    arrays[prefix + 'var/%s/weights' % base] = _weights(rng, k, k, cin, cout, np.float32)
    kw = {'num_outputs': cout, 'kernel_size': k,
          'weights_initializer': _A('var/%s/weights' % base)}
    if not extra.get('normalizer_fn'):
        arrays[prefix + 'var/%s/biases' % base] = (rng.randn(cout) * 0.5).astype(np.float32)
        kw['biases_initializer'] = _A('var/%s/biases' % base)
    kw.update(extra)
    return kw


def _bn_kw(rng, arrays, prefix, base, c, **extra):
    p = _bn_params(rng, c, np.float32, True, True)
    pi = {}
    for k_, v_ in p.items():
        arrays[prefix + 'var/%s/%s' % (base, k_)] = v_
        pi[k_] = _A('var/%s/%s' % (base, k_))
    kw = {'scale': True, 'param_initializers': pi}
    kw.update(extra)
    return kw


def _sequence_configs(T, rng, arrays):
    cfgs = []

    def add(steps, inputs, note, **kw):
        cid = 'c%d' % len(cfgs)
        # arrays for initializers must be created with the right prefix: the
        # step builders below receive the prefix through closure.
        cfg = _program(T, arrays, cid, steps, inputs, note, **kw)
        cfg['family'] = 'sequences'
        cfgs.append(cfg)

    def P():
        return 'c%d/' % len(cfgs)

    x = _rand_input(rng, (2, 7, 6, 3), np.float32)
    p = P()
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': _conv_kw(rng, arrays, p, 'Conv', 3, 4, 3)},
         {'function': 'conv2d', 'input': 'step0', 'kwargs': _conv_kw(rng, arrays, p, 'Conv_1', 4, 5, 3)}],
        {'input': x}, 'two unnamed conv2d -> Conv and Conv_1 (testNonReuseVars: 4 variables)')
    p = P()
    x = _rand_input(rng, (3, 7, 9, 4), np.float32)
    add([{'function': 'conv2d', 'input': 'input',
          'kwargs': _conv_kw(rng, arrays, p, 'Conv', 4, 4, 3, normalizer_fn={'__fn__': 'batch_norm'},
                             normalizer_params=_bn_kw(rng, arrays, p, 'Conv/BatchNorm', 4, decay=0.9))},
         {'function': 'conv2d', 'input': 'step0',
          'kwargs': _conv_kw(rng, arrays, p, 'Conv_1', 4, 4, 3, normalizer_fn={'__fn__': 'batch_norm'},
                             normalizer_params=_bn_kw(rng, arrays, p, 'Conv_1/BatchNorm', 4, decay=0.9))}],
        {'input': x}, 'testConvWithBatchNorm analogue (scale=True, so 4 BN variables per layer here)')
    p = P()
    x = _rand_input(rng, (2, 6, 6, 3), np.float32)
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': _conv_kw(rng, arrays, p, 'conv1', 3, 3, 3, scope='conv1')},
         {'function': 'conv2d', 'input': 'step0', 'kwargs': {'num_outputs': 3, 'kernel_size': 3, 'scope': 'conv1', 'reuse': True}}],
        {'input': x}, 'reuse=True shares conv1/weights and conv1/biases (testReuseVars: still 2 variables)')
    p = P()
    x = _rand_input(rng, (1, 8, 8, 2), np.float32)
    sc0 = _conv_kw(rng, arrays, p, 'Conv', 2, 3, 3, activation_fn=None)
    sc1 = _conv_kw(rng, arrays, p, 'Conv_1', 3, 2, 3, activation_fn=None)
    for d in (sc0, sc1):
        d.pop('num_outputs')
        d.pop('kernel_size')
    add([{'function': 'conv2d_same', 'input': 'input', 'kwargs': {'num_outputs': 3, 'kernel_size': 3, 'stride': 2},
          'arg_scope': [{'ops': ['conv2d'], 'kwargs': sc0}]},
         {'function': 'conv2d_same', 'input': 'step0', 'kwargs': {'num_outputs': 2, 'kernel_size': 3, 'stride': 1},
          'arg_scope': [{'ops': ['conv2d'], 'kwargs': sc1}]}],
        {'input': x}, 'conv2d_same unnamed twice -> Conv, Conv_1; initializers and activation_fn=None '
                      'come from arg_scope([conv2d]), which conv2d_same inherits')
    p = P()
    x = _rand_input(rng, (2, 7, 7, 3), np.float32)
    add([{'function': 'max_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 2}},
         {'function': 'avg_pool2d', 'input': 'step0', 'kwargs': {'kernel_size': 2, 'stride': 1, 'padding': 'SAME'}},
         {'function': 'batch_norm', 'input': 'step1', 'kwargs': _bn_kw(rng, arrays, p, 'BatchNorm', 3)},
         {'function': 'batch_norm', 'input': 'step2', 'kwargs': _bn_kw(rng, arrays, p, 'BatchNorm_1', 3, is_training=False)}],
        {'input': x}, 'pools create no variables; unnamed batch_norm twice -> BatchNorm, BatchNorm_1; '
                      'only the training one adds 2 UPDATE_OPS')
    p = P()
    x = _rand_input(rng, (2, 6, 5, 3), np.float32)
    add([{'function': 'conv2d', 'input': 'input', 'variable_scope': {'name': 'net'},
          'kwargs': _conv_kw(rng, arrays, p, 'net/Conv', 3, 4, 3, outputs_collections='outputs')},
         {'function': 'conv2d', 'input': 'step0',
          'kwargs': _conv_kw(rng, arrays, p, 'Conv', 4, 2, 1, outputs_collections='outputs')},
         {'function': 'conv2d', 'input': 'step1',
          'kwargs': _conv_kw(rng, arrays, p, 'Conv_1', 2, 2, 3, outputs_collections='outputs')},
         {'function': 'max_pool2d', 'input': 'step2', 'variable_scope': {'name': 'net', 'reuse': True},
          'kwargs': {'kernel_size': 2, 'padding': 'SAME', 'outputs_collections': 'outputs'}}],
        {'input': x}, "unnamed conv2d inside variable_scope('net') -> net/Conv; unnamed at top level -> "
                      "Conv, Conv_1 (the count is per enclosing scope); outputs_collections aliases "
                      "recorded in 'collections'")
    p = P()
    x = _rand_input(rng, (4, 3, 3, 3), np.float32) + 1.0
    add([{'function': 'batch_norm', 'input': 'input', 'kwargs': _bn_kw(rng, arrays, p, 'BN', 3, decay=0.1, scope='BN')},
         {'function': 'batch_norm', 'input': 'input', 'kwargs': {'decay': 0.1, 'scale': True, 'is_training': False, 'scope': 'BN', 'reuse': True}}],
        {'input': x}, 'testReuseVars analogue: training and eval batch_norm share BN/*; eval output uses the '
                      'moving statistics as they were before the update ops ran')
    p = P()
    x = _rand_input(rng, (2, 5, 5, 2), np.float32)
    add([{'function': 'conv2d', 'input': 'input',
          'kwargs': _conv_kw(rng, arrays, p, 'conv1', 2, 3, 3, scope='conv1',
                             weights_regularizer={'__regularizer__': ['l2', 0.01]})},
         {'function': 'conv2d', 'input': 'input',
          'kwargs': {'num_outputs': 3, 'kernel_size': 3, 'scope': 'conv1', 'reuse': True,
                     'weights_regularizer': {'__regularizer__': ['l2', 0.01]}}}],
        {'input': x}, 'testReuseConvWithWD analogue: one regularization loss (added at creation only); '
                      'l2 loss = 0.01 * sum(w**2) / 2')
    return cfgs


def _error_configs(T, rng, arrays):
    cfgs = []

    def add(steps, inputs, note, pyconv_type=None):
        cfg = _program(T, arrays, 'c%d' % len(cfgs), steps, inputs, note,
                       error_expected=pyconv_type or 'ValueError')
        cfg['family'] = 'errors'
        if 'error' not in cfg:
            raise RuntimeError('no error: %s' % note)
        cfgs.append(cfg)

    x4 = np.ones((1, 8, 8, 2), np.float32)
    x5 = np.ones((1, 2, 8, 8, 2), np.float32)
    cv = {'num_outputs': 3, 'kernel_size': 3}
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': cv}], {'input': x5},
        'rank-5 input to conv2d')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': cv}], {'input': np.ones((8, 8, 2), np.float32)},
        'rank-3 input to conv2d')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, data_format='CHWN')}], {'input': x4},
        'bad data_format for conv2d')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, stride=2, rate=2)}], {'input': x4},
        'stride > 1 with rate > 1')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, stride=[1, 2], rate=[2, 1])}], {'input': x4},
        'stride > 1 in one dimension with rate > 1 in the other is also refused')
    add([{'function': 'conv2d_same', 'input': 'input', 'kwargs': dict(cv, stride=2, rate=2)}], {'input': x4},
        'conv2d_same with stride 2 and rate 2 (the VALID conv it issues gets both)')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, kernel_size=9, padding='VALID')}], {'input': x4},
        'VALID with kernel 9 on an 8x8 input: empty output')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, padding='VAILD')}], {'input': x4},
        'misspelled padding')
    add([{'function': 'max_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 2, 'data_format': 'CHWN'}}], {'input': x4},
        'bad data_format for max_pool2d')
    add([{'function': 'avg_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 2, 'data_format': 'CHWN'}}], {'input': x4},
        'bad data_format for avg_pool2d')
    add([{'function': 'max_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 9}}], {'input': x4},
        'VALID pool with kernel 9 on 8x8 input')
    add([{'function': 'batch_norm', 'input': 'input', 'kwargs': {'data_format': 'CHWN'}}], {'input': x4},
        'bad data_format for batch_norm')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, scope='conv1')},
         {'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, scope='conv1')}], {'input': x4},
        'creating conv1 twice without reuse')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, scope='conv1', reuse=True)}], {'input': x4},
        'reuse=True of a variable that does not exist')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, reuse=True)}], {'input': x4},
        'reuse=True without a scope name')
    add([{'function': 'conv2d', 'input': 'input', 'variable_scope': {'name': 'net'}, 'kwargs': cv},
         {'function': 'conv2d', 'input': 'input', 'variable_scope': {'name': 'net'}, 'kwargs': cv}], {'input': x4},
        "TF quirk: re-entering variable_scope('net') (a second `with`) resets the unique-name counts "
        "below it, so a second unnamed conv2d is net/Conv again and collides with the first")
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, scope='conv1')},
         {'function': 'conv2d', 'input': 'input2', 'kwargs': dict(cv, scope='conv1', reuse=True)}],
        {'input': x4, 'input2': np.ones((1, 8, 8, 3), np.float32)},
        'reusing conv1 with a different number of input channels (weights 3x3x2x3 vs 3x3x3x3)')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': cv}], {'input': np.ones((1, 4, 4, 2), np.int32)},
        'integer input: TF refuses (no initializer for int variables); so does pyconv',
        pyconv_type='TypeError')
    # issue 14: where both refuse, TF's exception type (pyconv raises a subclass of both)
    for dt in ('int32', 'uint8', 'bool'):
        add([{'function': 'batch_norm', 'input': 'input', 'kwargs': {}}],
            {'input': np.ones((2, 2, 2, 2), dt)}, 'integer/bool batch_norm input', 'TypeError')
        add([{'function': 'avg_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 2}}],
            {'input': np.ones((1, 4, 4, 2), dt)}, 'integer/bool avg_pool2d input', 'TypeError')
    add([{'function': 'max_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 2}}],
        {'input': np.ones((1, 4, 4, 2), np.bool_)}, 'bool max_pool2d input', 'TypeError')
    for bad in (3.0, None, [3.0, 3]):
        add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, kernel_size=bad)}],
            {'input': x4}, 'kernel_size %r: TF ValueError' % (bad,))
    add([{'function': 'max_pool2d', 'input': 'input', 'kwargs': {'kernel_size': None}}],
        {'input': x4}, 'pool kernel_size None: TF ValueError')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, num_outputs=None)}],
        {'input': x4}, 'num_outputs None: TF ValueError')
    add([{'function': 'conv2d', 'input': 'input', 'kwargs': dict(cv, weights_regularizer=0.1)}],
        {'input': x4}, 'a non-callable regularizer: TF ValueError')
    add([{'function': 'batch_norm', 'input': 'input', 'kwargs': {'param_regularizers': {'beta': 0.5}}}],
        {'input': x4}, 'a non-callable param regularizer on the layer path: TF ValueError')
    add([{'function': 'batch_norm', 'input': 'input', 'kwargs': {'param_initializers': [1]}}],
        {'input': x4}, 'param_initializers a list: TF AttributeError', 'AttributeError')
    return cfgs


# --------------------------- issue 14's corners, drawn again ---------------------------

_INT_POOL_DTYPES = ('int8', 'int16', 'int32', 'int64', 'uint8', 'uint16')


def _np_scalar(value, dtype):
    """JSON for a NumPy scalar argument (resolved by resolve())."""
    v = np.dtype(dtype).type(value)
    return {'__np__': [np.dtype(dtype).name, float(v)]}


def _ref_bn_any(x, channel_axis, training, eps, beta, gamma, mm, mv):
    x = np.asarray(x, np.float64)
    axes = tuple(a for a in range(x.ndim) if a != channel_axis)
    shp = [1] * x.ndim
    shp[channel_axis] = x.shape[channel_axis]
    if training:
        m = x.mean(axes) if axes else x.copy()
        v = x.var(axes) if axes else np.zeros_like(m)
    else:
        m, v = mm, mv
    y = (x - m.reshape(shp)) / np.sqrt(v.reshape(shp) + eps)
    if gamma is not None:
        y = y * gamma.reshape(shp)
    if beta is not None:
        y = y + beta.reshape(shp)
    return y


def _corner_batch_norm(T, rng, cid, arrays, pin=None):
    """A1/A2 (decay rounding per path and decay type), A3 (trainable=False), A7
    (large means), B2 (custom collection order), B3 (legacy path and
    param_regularizers), rank 1-5, updates_collections default / None / custom.
    ``pin`` 'R1' / 'R2' draws the classes of repros R1 and R2, where the rounding
    of ``1 - decay`` is larger than the replay's tolerance."""
    prefix = cid + '/'
    dtype = str(rng.choice(['float32', 'float32', 'float64', 'float16']))
    rank = int(rng.choice([1, 2, 3, 4, 4, 5]))
    if pin:
        dtype, rank = ('float32' if pin == 'R1' else 'float64'), 4
    nchw = rank == 4 and rng.rand() < 0.25
    shape = [int(rng.randint(1, 4)) if d < rank - 1 else _ch(rng) % 6 + 1 for d in range(rank)]
    if rank >= 2:
        shape[0] = int(rng.choice([2, 3, 5]))
    while int(np.prod(shape)) > 600:
        shape[int(np.argmax(shape[:-1]))] -= 1
    kind = int(rng.randint(0, 3))
    if pin:
        kind = 1
    if kind == 1:
        nchw = False  # TF's NCHW and NHWC float32 sums differ by more than its check allows
    if dtype == 'float16' and (kind == 1 or rank == 1):
        dtype = 'float32'  # TF's float16 arithmetic (legacy path) is the error there
    x = _rand_input(rng, tuple(shape), 'float64')
    if kind == 1:  # A7: a large mean, small spread
        x = 1000.0 + 0.5 * x
    x = x.astype(dtype)
    c = shape[-1]
    center, scale = bool(rng.rand() < 0.8), bool(rng.rand() < 0.5)
    base = 'BatchNorm' if rng.rand() < 0.6 else 'bn%d' % int(rng.randint(1, 5))
    p = _bn_params(rng, c, np.float32 if dtype != 'float64' else np.float64, center, scale)
    decay = float(rng.choice([0.9, 0.99, 0.999, 0.9999, rng.uniform(0.5, 0.99999)]))
    kw_ = {'decay': decay if rng.rand() < 0.4 else _np_scalar(
        decay, str(rng.choice(['float16', 'float32', 'float64'])))}
    kw_['center'], kw_['scale'] = center, scale
    kw_['is_training'] = bool(rng.rand() < 0.85)
    uc = int(rng.randint(0, 3))
    if pin:
        kw_['decay'] = (float(rng.choice([0.9999, 0.99995])) if pin == 'R1'
                        else _np_scalar(rng.uniform(0.5, 0.99), 'float64'))
        kw_['is_training'], uc = True, 0
    if uc == 1:
        kw_['updates_collections'] = None
    elif uc == 2:
        kw_['updates_collections'] = 'my_updates'
    fused = [None, False, True][int(rng.randint(0, 3))] if not pin else None
    if fused is not None:
        kw_['fused'] = fused
    if rng.rand() < 0.3 and not pin:
        kw_['trainable'] = False  # A3: TF's layer path (default updates_collections) skips them
        if rng.rand() < 0.6:
            kw_.pop('updates_collections', None)
    if rng.rand() < 0.25:
        kw_['param_regularizers'] = {'beta': {'__regularizer__': ['l2', 0.1]},
                                     'gamma': {'__regularizer__': ['l1', 0.2]}}
    if rng.rand() < 0.3:
        kw_['variables_collections'] = ['c1'] if rng.rand() < 0.5 else {
            'moving_mean': ['m'], 'beta': ['b', 'c1'], 'gamma': 'g'}
    if rng.rand() < 0.3:
        kw_['epsilon'] = 0.01 if dtype == 'float16' else float(rng.choice([1e-5, 0.01]))
    kw_['param_initializers'] = {}
    for k_, v_ in p.items():
        arrays[prefix + 'var/%s/%s' % (base, k_)] = v_
        kw_['param_initializers'][k_] = {'__array__': 'var/%s/%s' % (base, k_)}
    if nchw:
        kw_['data_format'] = 'NCHW'
    if base != 'BatchNorm':
        kw_['scope'] = base
    cfg = {'id': cid, 'family': 'corners', 'corner': 'batch_norm' + (' ' + pin if pin else ''),
           'function': 'batch_norm',
           'kwargs': kw_, 'dtype': dtype, 'data_format': 'NCHW' if nchw else 'NHWC',
           'input_shape': list(_to_nchw(x).shape if nchw else x.shape)}
    cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.batch_norm')}
    res, y = _run_layer(T, cfg, arrays, prefix, x)
    arrays[prefix + 'input'] = _to_nchw(x) if nchw else x
    init = {k.split('/')[-1]: np.asarray(v, np.float64) for k, v in res['init'].items()}
    yr = _ref_bn_any(x, rank - 1, kw_['is_training'], kw_.get('epsilon', 0.001),
                     init.get('beta'), init.get('gamma'), init['moving_mean'],
                     init['moving_variance'])
    if nchw:
        yr = _to_nchw(yr)
    tol = {'float64': (1e-9, 1e-9), 'float16': (1e-2, 1e-2)}.get(dtype, (1e-4, 2e-4))
    _finish(cfg, arrays, prefix, res, y, yr, tol)
    return cfg


def _corner_conv2d(T, rng, cid, arrays):
    """A4 (leaky_relu on float64), float and zero num_outputs, SAME on an empty
    height/width, slim's data_format names of other ranks, variables/outputs
    collections as strings, sets and dicts (B1), trainable=False batch norm
    inside conv2d (A3)."""
    prefix = cid + '/'
    dtype = 'float32' if rng.rand() < 0.5 else 'float64'
    H, W = int(rng.randint(1, 7)), int(rng.randint(1, 7))
    if rng.rand() < 0.15:
        H = 0
    elif rng.rand() < 0.15:
        W = 0
    k = int(rng.randint(1, 4))
    s = int(rng.randint(1, 3))
    N, cin = int(rng.randint(1, 3)), int(rng.randint(1, 4))
    cout = 0 if rng.rand() < 0.1 else int(rng.randint(1, 5))
    df = str(rng.choice(['NHWC', 'NWC', 'NDHWC', 'NCHW', 'NCW', 'NCDHW']))
    base = 'Conv' if rng.rand() < 0.5 else 'c%d' % int(rng.randint(1, 5))
    x = _rand_input(rng, (N, H, W, cin), dtype)
    W_ = _weights(rng, k, k, cin, cout, dtype) if cout else np.zeros((k, k, cin, 0), dtype)
    arrays[prefix + 'var/%s/weights' % base] = W_
    kw_ = {'num_outputs': float(cout) if rng.rand() < 0.3 else cout, 'kernel_size': k,
           'weights_initializer': {'__array__': 'var/%s/weights' % base}}
    if s != 1:
        kw_['stride'] = s
    if df != 'NHWC' or rng.rand() < 0.3:
        kw_['data_format'] = df
    act = str(rng.choice(['leaky_relu', 'leaky_relu', 'relu', 'none']))
    kw_['activation_fn'] = None if act == 'none' else {'__fn__': act}
    bn = rng.rand() < 0.3 and cout > 0 and H > 0 and W > 0
    if bn:
        p = _bn_params(rng, cout, dtype, True, False)
        pi = {}
        for k2, v2 in p.items():
            arrays[prefix + 'var/%s/BatchNorm/%s' % (base, k2)] = v2
            pi[k2] = {'__array__': 'var/%s/BatchNorm/%s' % (base, k2)}
        kw_['normalizer_fn'] = {'__fn__': 'batch_norm'}
        kw_['normalizer_params'] = {'param_initializers': pi, 'decay': 0.9,
                                    'is_training': True}
        if df.startswith('NC'):
            kw_['normalizer_params']['data_format'] = 'NCHW'
        if rng.rand() < 0.5:
            kw_['trainable'] = False
    else:
        b = (rng.randn(cout) * 0.5).astype(dtype)
        arrays[prefix + 'var/%s/biases' % base] = b
        kw_['biases_initializer'] = {'__array__': 'var/%s/biases' % base}
    vc = int(rng.randint(0, 5))
    if vc == 1:
        kw_['variables_collections'] = 'ab'
    elif vc == 2:
        kw_['variables_collections'] = {'__set__': ['s1', 's2']}
    elif vc == 3:
        kw_['variables_collections'] = {'weights': ['w1'], 'biases': 'xy'}
    if base != 'Conv':
        kw_['scope'] = base
    nchw = df.startswith('NC')
    cfg = {'id': cid, 'family': 'corners', 'corner': 'conv2d', 'function': 'conv2d',
           'kwargs': kw_, 'dtype': dtype, 'data_format': 'NCHW' if nchw else 'NHWC',
           'input_shape': list(_to_nchw(x).shape if nchw else x.shape)}
    cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.conv2d')}
    res, y = _run_layer(T, cfg, arrays, prefix, x)
    arrays[prefix + 'input'] = _to_nchw(x) if nchw else x
    _finish(cfg, arrays, prefix, res, y)
    return cfg


def _corner_int_pool(T, rng, cid, arrays):
    """A8: slim.max_pool2d keeps every integer dtype (exact maximum)."""
    prefix = cid + '/'
    dtype = str(rng.choice(_INT_POOL_DTYPES))
    info = np.iinfo(dtype)
    H, W = int(rng.randint(1, 8)), int(rng.randint(1, 8))
    k = int(rng.randint(1, 4))
    padding = 'SAME' if rng.rand() < 0.6 or H < k or W < k else 'VALID'
    x = rng.randint(max(info.min, -2**62), min(info.max, 2**62),
                    size=(int(rng.randint(1, 3)), H, W, int(rng.randint(1, 4))), dtype=np.int64)
    if dtype in ('int32', 'int64') and rng.rand() < 0.5:
        x = x + (2**24 + 1)  # beyond float32's exact integers
    x = np.clip(x, info.min, info.max).astype(dtype)
    kw_ = {'kernel_size': k, 'stride': int(rng.randint(1, 3)), 'padding': padding}
    cfg = {'id': cid, 'family': 'corners', 'corner': 'int_pool', 'function': 'max_pool2d',
           'kwargs': kw_, 'dtype': dtype, 'data_format': 'NHWC', 'input_shape': list(x.shape)}
    cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.max_pool2d')}
    res, y = _run_layer(T, cfg, arrays, prefix, x)
    assert y.dtype == np.dtype(dtype), (y.dtype, dtype)
    arrays[prefix + 'input'] = x
    _finish(cfg, arrays, prefix, res, y, None, (0.0, 0.0))
    return cfg


def _corner_nn_conv(T, rng, cid, arrays):
    """A8: tf.nn.conv2d on int32 (exact, with wrap-around), and nn.conv2d's None
    defaults; float configs here also use them, and half of them are grouped
    (input channels a multiple of the filters')."""
    prefix = cid + '/'
    tf, v1 = T.tf, T.v1
    dtype = 'int32' if rng.rand() < 0.5 else str(rng.choice(['float32', 'float64']))
    H, W = int(rng.randint(1, 7)), int(rng.randint(1, 7))
    kh, kw = int(rng.randint(1, 4)), int(rng.randint(1, 4))
    N, cin, cout = int(rng.randint(1, 3)), int(rng.randint(1, 4)), int(rng.randint(1, 4))
    groups = int(rng.choice([2, 3, 4])) if dtype != 'int32' and rng.rand() < 0.5 else 1
    cout *= groups
    padding = 'SAME' if rng.rand() < 0.6 or H < kh or W < kw else 'VALID'
    s = int(rng.randint(1, 3))
    if dtype == 'int32':
        hi = int(rng.choice([10, 2**12, 2**31]))
        x = rng.randint(-hi, hi, size=(N, H, W, cin), dtype=np.int64).astype(np.int32)
        Wt = rng.randint(-hi, hi, size=(kh, kw, cin, cout), dtype=np.int64).astype(np.int32)
        b = rng.randint(-hi, hi, size=cout, dtype=np.int64).astype(np.int32)
    else:
        x = _rand_input(rng, (N, H, W, cin * groups), dtype)
        Wt = _weights(rng, kh, kw, cin, cout, dtype)
        b = (rng.randn(cout) * 0.5).astype(dtype)
    use_bias = rng.rand() < 0.5
    act = [None, 'relu', 'relu6'][int(rng.randint(0, 3))]
    arrays[prefix + 'filters'] = Wt
    kw_ = {'filters': {'__array__': 'filters'}, 'padding': padding}
    if s != 1 or rng.rand() < 0.5:
        kw_['strides'] = s
    else:
        kw_['strides'] = None
    if rng.rand() < 0.5:
        kw_['dilations'] = None
        kw_['data_format'] = None
    if use_bias:
        arrays[prefix + 'bias'] = b
        kw_['bias'] = {'__array__': 'bias'}
    if act:
        kw_['activation'] = act
    g = tf.Graph()
    with g.as_default():
        yt = tf.nn.conv2d(tf.constant(x), tf.constant(Wt), strides=kw_['strides'],
                          padding=padding, data_format=kw_.get('data_format', 'NHWC'),
                          dilations=kw_.get('dilations'))
        if use_bias:
            yt = tf.nn.bias_add(yt, tf.constant(b))
        if act:
            yt = T.fns[act](yt)
        with v1.Session(graph=g) as sess:
            y = sess.run(yt)
    assert y.dtype == np.dtype(dtype)
    cfg = {'id': cid, 'family': 'corners',
           'corner': 'nn_conv2d' + (' grouped' if groups > 1 else ''), 'function': 'nn.conv2d',
           'kwargs': kw_, 'dtype': dtype, 'data_format': 'NHWC', 'input_shape': list(x.shape),
           'tf': {'call': 'tf.nn.conv2d(x, filters, strides, padding, data_format, dilations)'
                          ' + bias_add + activation', 'ran_as': 'NHWC'}}
    arrays[prefix + 'input'] = x
    res = {'y': y, 'vars': [], 'init': {}, 'after': {}, 'n_update_ops': 0, 'regs': [],
           'fused': False}
    _finish(cfg, arrays, prefix, res, y, None, (0.0, 0.0) if dtype == 'int32' else None)
    return cfg


def _corner_empty_pool(T, rng, cid, arrays):
    """SAME pooling of an empty height or width gives an empty output."""
    prefix = cid + '/'
    dtype = 'float32' if rng.rand() < 0.6 else 'float64'
    H, W = (0, int(rng.randint(1, 6))) if rng.rand() < 0.5 else (int(rng.randint(1, 6)), 0)
    x = np.zeros((1, H, W, int(rng.randint(1, 3))), dtype)
    fn = 'max_pool2d' if rng.rand() < 0.5 else 'avg_pool2d'
    kw_ = {'kernel_size': int(rng.randint(1, 4)), 'stride': int(rng.randint(1, 3)),
           'padding': 'SAME'}
    cfg = {'id': cid, 'family': 'corners', 'corner': 'empty_pool', 'function': fn,
           'kwargs': kw_, 'dtype': dtype, 'data_format': 'NHWC', 'input_shape': list(x.shape)}
    cfg['tf'] = {'call': _tf_call_text(cfg, 'slim.' + fn)}
    res, y = _run_layer(T, cfg, arrays, prefix, x)
    arrays[prefix + 'input'] = x
    _finish(cfg, arrays, prefix, res, y)
    return cfg


def _corner_subsample(T, arrays, rng, cid):
    """B10: subsample(x, (1, 1)) still pools (and shows in outputs_collections)."""
    x = _rand_input(rng, (1, int(rng.randint(1, 6)), int(rng.randint(1, 6)), 2), np.float32)
    factor = [1, 1] if rng.rand() < 0.7 else int(rng.choice([1, 2]))
    steps = [{'function': 'subsample', 'input': 'input', 'kwargs': {'factor': factor},
              'arg_scope': [{'ops': ['max_pool2d'], 'kwargs': {'outputs_collections': 'outputs'}}]},
             {'function': 'max_pool2d', 'input': 'input', 'kwargs': {'kernel_size': 1,
                                                                     'outputs_collections': 'outputs'}}]
    cfg = _program(T, arrays, cid, steps, {'input': x},
                   'subsample(x, %r) under arg_scope([max_pool2d], outputs_collections)' % (factor,))
    cfg['family'] = 'corners'
    cfg['corner'] = 'subsample'
    return cfg


def _corner_loss_names(T, arrays, rng, cid):
    """B4/B5: regularization-loss names follow the layer's name scope (name_scope,
    re-entered variable_scope, a name scope taken by the user), and a scope-level
    regularizer's losses are named after the variables."""
    prefix = cid + '/'
    x = _rand_input(rng, (1, int(rng.randint(2, 6)), int(rng.randint(2, 6)), 2), np.float32)
    reg = {'__regularizer__': [str(rng.choice(['l1', 'l2'])), float(rng.choice([0.1, 0.5]))]}
    kind = int(rng.randint(0, 5))
    ns = str(rng.choice(['foo', 'block', 'ns1']))
    sc = str(rng.choice(['c', 'conv', 'a1']))

    def conv(base, scope=None, **extra):
        kw = _conv_kw(rng, arrays, prefix, base, 2, 2, 1, **extra)
        if scope:
            kw['scope'] = scope
        return kw

    if kind == 0:
        steps = [{'function': 'conv2d', 'input': 'input', 'name_scope': ns,
                  'kwargs': conv(sc, sc, weights_regularizer=reg, biases_regularizer=reg)}]
    elif kind == 1:
        steps = [{'function': 'conv2d', 'input': 'input', 'variable_scope': {'name': 'net'},
                  'kwargs': conv('net/a', 'a')},
                 {'function': 'conv2d', 'input': 'input',
                  'variable_scope': {'name': 'net', 'reuse': 'AUTO_REUSE'},
                  'kwargs': conv('net/' + sc, sc, weights_regularizer=reg)}]
    elif kind == 2:
        steps = [{'function': 'conv2d', 'input': 'input',
                  'variable_scope': {'name': ns, 'regularizer': reg}, 'kwargs': conv(ns + '/' + sc, sc)}]
    elif kind == 3:
        steps = [{'function': 'conv2d', 'input': 'input', 'kwargs': conv('Conv')},
                 {'function': 'max_pool2d', 'input': 'input', 'name_scope': 'Conv_1',
                  'kwargs': {'kernel_size': 1}},
                 {'function': 'conv2d', 'input': 'input', 'kwargs': conv('Conv_1', None,
                                                                          weights_regularizer=reg)}]
    else:
        steps = [{'function': 'batch_norm', 'input': 'input', 'name_scope': ns,
                  'kwargs': _bn_kw(rng, arrays, prefix, sc, 2, scope=sc,
                                   param_regularizers={'beta': reg, 'gamma': reg})}]
    cfg = _program(T, arrays, cid, steps, {'input': x},
                   'regularization-loss names (issue 14 B4/B5), program %d' % kind)
    cfg['family'] = 'corners'
    cfg['corner'] = 'loss_names'
    return cfg


_CORNERS = ('batch_norm', 'batch_norm', 'batch_norm', 'conv2d', 'conv2d', 'int_pool',
            'nn_conv2d', 'empty_pool', 'subsample', 'loss_names')


def _corner_configs(T, rng, n, arrays):
    """Every class of issue 14 (and batch norm's update paths), drawn with fresh values."""
    cfgs = []
    tries = 0
    while len(cfgs) < n:
        kind = _CORNERS[len(cfgs) % len(_CORNERS)]
        cid = 'c%d' % len(cfgs)
        tries += 1
        try:
            if kind == 'subsample':
                cfg = _corner_subsample(T, arrays, rng, cid)
            elif kind == 'loss_names':
                cfg = _corner_loss_names(T, arrays, rng, cid)
            elif kind == 'batch_norm' and len(cfgs) < 2 * len(_CORNERS):
                cfg = _corner_batch_norm(T, rng, cid, arrays, ('R1', 'R2')[len(cfgs) % 2])
            else:
                cfg = {'batch_norm': _corner_batch_norm, 'conv2d': _corner_conv2d,
                       'int_pool': _corner_int_pool, 'nn_conv2d': _corner_nn_conv,
                       'empty_pool': _corner_empty_pool}[kind](T, rng, cid, arrays)
        except Exception as e:  # TF refuses this draw (e.g. float64 on slim's fused op)
            for key in [k for k in arrays if k.startswith(cid + '/')]:
                del arrays[key]
            if tries > 20 * n:
                raise
            print('skip corner %s: %s %s' % (kind, type(e).__name__, str(e)[:120]),
                  file=sys.stderr)
            continue
        cfgs.append(cfg)
    return cfgs


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def generate(seed=0, n_conv=320, n_conv_same=80, n_subsample=30, n_pool=120,
             n_full_explicit=60, n_batch_norm=60, n_corners=200, families=FAMILIES):
    """Run TensorFlow on seeded random configurations.

    Returns {family: {'configs': [dict, ...], 'arrays': {key: ndarray},
    'meta': dict}}.  Keys of 'arrays' are '<id>/...' as described in the
    module docstring.  Nothing is written to disk.
    """
    T = _TF()
    meta_base = {'format_version': FORMAT_VERSION, 'seed': int(seed),
                 'versions': T.versions()}
    out = {}
    builders = {
        'conv2d': lambda r, a: _conv2d_configs(T, r, n_conv, a),
        'conv2d_same': lambda r, a: _conv2d_same_configs(T, r, n_conv_same, a),
        'subsample': lambda r, a: _subsample_configs(T, r, n_subsample, a),
        'pool': lambda r, a: _pool_configs(T, r, n_pool, a),
        'full_explicit': lambda r, a: _full_explicit_configs(T, r, n_full_explicit, a),
        'batch_norm': lambda r, a: _batch_norm_configs(T, r, n_batch_norm, a),
        'sequences': lambda r, a: _sequence_configs(T, r, a),
        'errors': lambda r, a: _error_configs(T, r, a),
        'corners': lambda r, a: _corner_configs(T, r, n_corners, a),
    }
    for k, fam in enumerate(FAMILIES):
        if fam not in families:
            continue
        rng = np.random.RandomState([int(seed) % (2 ** 32), k])
        arrays = {}
        cfgs = [_strip_private(c) for c in builders[fam](rng, arrays)]
        meta = dict(meta_base, family=fam, count=len(cfgs))
        out[fam] = {'configs': cfgs, 'arrays': arrays, 'meta': meta}
    return out


def save(families, out_dir):
    """Write one compressed npz per family; returns {path: bytes}."""
    os.makedirs(out_dir, exist_ok=True)
    sizes = {}
    for fam, d in families.items():
        path = os.path.join(out_dir, fam + '.npz')
        payload = dict(d['arrays'])
        payload['configs'] = np.array(json.dumps(d['configs'], sort_keys=False))
        payload['meta'] = np.array(json.dumps(d['meta']))
        np.savez_compressed(path, **payload)
        sizes[path] = os.path.getsize(path)
    return sizes


def load_all(fixtures_dir=DEFAULT_OUT, families=FAMILIES):
    """{family: {'configs', 'meta'}} of the fixture files on disk (no arrays,
    no TensorFlow); the shape coverage() and check_coverage() take."""
    out = {}
    for fam in families:
        path = os.path.join(fixtures_dir, fam + '.npz')
        if os.path.exists(path):
            configs, meta, _ = load_family(path)
            out[fam] = {'configs': configs, 'meta': meta}
    return out


def _spatial(c):
    shp = c['input_shape']
    return (shp[2], shp[3]) if c.get('data_format') == 'NCHW' else (shp[1], shp[2])


def _channels(c):
    shp = c['input_shape']
    return shp[1] if c.get('data_format') == 'NCHW' else shp[3]


def _act(kw, key='activation_fn'):
    a = kw.get(key)
    return a['__fn__'] if isinstance(a, dict) else (a or 'none')


def coverage(families):
    """[(family, axis, {value: count})] counted from the configs."""
    from collections import Counter
    rows = []

    def add(fam, axis, values):
        rows.append((fam, axis, dict(sorted(Counter(values).items(),
                                             key=lambda kv: (type(kv[0]).__name__, kv[0])))))

    cs = families.get('conv2d', {}).get('configs', [])
    if cs:
        kws = [c['kwargs'] for c in cs]
        ks = [_pair(k['kernel_size']) for k in kws]
        st = [_pair(k.get('stride', 1)) for k in kws]
        rt = [_pair(k.get('rate', 1)) for k in kws]
        hw = [_spatial(c) for c in cs]
        add('conv2d', 'configs', ['total'] * len(cs))
        add('conv2d', 'kernel height', [k[0] for k in ks])
        add('conv2d', 'kernel width', [k[1] for k in ks])
        add('conv2d', 'kernel shape', ['square' if a == b else 'non-square' for a, b in ks])
        add('conv2d', 'stride (per dimension)', [v for p in st for v in p])
        add('conv2d', 'stride shape', ['1x1' if p == (1, 1) else 'square' if p[0] == p[1]
                                       else 'non-square' for p in st])
        add('conv2d', 'rate (per dimension)', [v for p in rt for v in p])
        add('conv2d', 'rate > 1 (all with stride 1)',
            ['stride 1' if s == (1, 1) else 'STRIDE>1' for s, r in zip(st, rt) if max(r) > 1])
        add('conv2d', 'padding', [k['padding'].upper() for k in kws])
        add('conv2d', 'padding spelled', ['upper' if k['padding'].isupper() else 'mixed/lower'
                                          for k in kws])
        add('conv2d', 'input size (per dimension)', [v for p in hw for v in p])
        add('conv2d', 'input size parity', ['odd' if v % 2 else 'even' for p in hw for v in p])
        add('conv2d', 'batch', [c['input_shape'][0] for c in cs])
        add('conv2d', 'in channels', [_channels(c) for c in cs])
        add('conv2d', 'out channels', [k['num_outputs'] for k in kws])
        add('conv2d', 'data_format', [c['data_format'] for c in cs])
        add('conv2d', 'TF ran NCHW as', [c['tf']['ran_as'] for c in cs if c['data_format'] == 'NCHW'])
        add('conv2d', 'activation_fn', [_act(k) for k in kws])
        add('conv2d', 'biases / normalizer', ['batch_norm' if 'normalizer_fn' in k else
                                              'no biases' if k.get('biases_initializer', 1) is None
                                              else 'biases' for k in kws])
        add('conv2d', 'batch_norm is_training', [k['normalizer_params']['is_training']
                                                 for k in kws if 'normalizer_fn' in k])
        add('conv2d', 'moving statistics updated', [bool(c['updated']) for c in cs
                                                    if 'normalizer_fn' in c['kwargs']])
        add('conv2d', 'regularizer', [k['weights_regularizer']['__regularizer__'][0]
                                      if 'weights_regularizer' in k else 'none' for k in kws])
        add('conv2d', 'scope', ['variable_scope + scope' if c.get('variable_scope') and 'scope' in c['kwargs']
                                else 'variable_scope' if c.get('variable_scope')
                                else 'scope' if 'scope' in c['kwargs'] else 'default (Conv)'
                                for c in cs])
        add('conv2d', 'dtype', [c['dtype'] for c in cs])
    cs = families.get('conv2d_same', {}).get('configs', [])
    if cs:
        add('conv2d_same', 'configs', ['total'] * len(cs))
        add('conv2d_same', 'stride x rate', ['s%d r%d' % (c['kwargs']['stride'], c['kwargs'].get('rate', 1))
                                             for c in cs])
        add('conv2d_same', 'kernel', [c['kwargs']['kernel_size'] for c in cs])
        add('conv2d_same', 'input height parity x stride',
            ['%s s%d' % ('odd' if _spatial(c)[0] % 2 else 'even', c['kwargs']['stride']) for c in cs])
        add('conv2d_same', 'activation_fn (arg_scope)', [_act(c['arg_scope'][0]['kwargs']) for c in cs])
        add('conv2d_same', 'TF: == conv2d(stride 1) + subsample',
            [c['companions']['equals_stride1_then_subsample'] for c in cs])
        add('conv2d_same', 'TF: conv2d(stride s, SAME) differs (rate 1, s > 1)',
            [c['companions']['strided_same_differs'] for c in cs
             if c['kwargs']['stride'] > 1 and c['companions']['conv2d_strided_same']])
        add('conv2d_same', 'dtype', [c['dtype'] for c in cs])
    cs = families.get('subsample', {}).get('configs', [])
    if cs:
        add('subsample', 'configs', ['total'] * len(cs))
        add('subsample', 'factor', [c['kwargs']['factor'] for c in cs])
        add('subsample', 'input size parity', ['odd' if v % 2 else 'even' for c in cs for v in _spatial(c)])
        add('subsample', 'dtype', [c['dtype'] for c in cs])
    cs = families.get('pool', {}).get('configs', [])
    if cs:
        add('pool', 'configs', ['total'] * len(cs))
        add('pool', 'function x padding', ['%s %s' % (c['function'], c['kwargs'].get('padding', 'VALID').upper())
                                           for c in cs])
        add('pool', 'kernel (per dimension)', [v for c in cs for v in _pair(c['kwargs']['kernel_size'])])
        add('pool', 'stride (per dimension)', [v for c in cs for v in _pair(c['kwargs'].get('stride', 2))])
        add('pool', 'input size parity', ['odd' if v % 2 else 'even' for c in cs for v in _spatial(c)])
        add('pool', 'data_format', [c['data_format'] for c in cs])
        add('pool', 'dtype', [c['dtype'] for c in cs])
    cs = families.get('full_explicit', {}).get('configs', [])
    if cs:
        add('full_explicit', 'configs', ['total'] * len(cs))
        add('full_explicit', 'call x padding', ['%s %s' % (c['function'], 'FULL' if isinstance(
            c['kwargs']['padding'], str) else 'explicit') for c in cs])
        add('full_explicit', 'stride > 1 with rate > 1', [
            c['function'] for c in cs
            if max(_pair(c['kwargs'].get('stride', c['kwargs'].get('strides', 1))
                         if not isinstance(c['kwargs'].get('strides'), list)
                         or len(c['kwargs']['strides']) == 2 else 2)) > 1
            and max(_pair(c['kwargs'].get('rate', c['kwargs'].get('dilations', 1)))) > 1])
        add('full_explicit', 'TF native explicit padding agrees',
            [c['tf'].get('native_explicit_padding_agrees') for c in cs])
        add('full_explicit', 'data_format', [c['data_format'] for c in cs])
        add('full_explicit', 'dtype', [c['dtype'] for c in cs])
    cs = families.get('batch_norm', {}).get('configs', [])
    if cs:
        add('batch_norm', 'configs', ['total'] * len(cs))
        add('batch_norm', 'is_training', [c['kwargs']['is_training'] for c in cs])
        add('batch_norm', 'moving statistics updated', [bool(c['updated']) for c in cs
                                                        if c['kwargs']['is_training']])
        add('batch_norm', 'TF path (fused: Bessel-corrected moving variance)',
            ['fused' if c['tf']['fused_batch_norm'] else 'non-fused' for c in cs])
        add('batch_norm', 'center/scale', ['%s/%s' % (c['kwargs']['center'], c['kwargs']['scale'])
                                           for c in cs])
        add('batch_norm', 'data_format', [c['data_format'] for c in cs])
        add('batch_norm', 'dtype', [c['dtype'] for c in cs])
    for fam in ('sequences', 'errors'):
        cs = families.get(fam, {}).get('configs', [])
        if cs:
            add(fam, 'configs', ['total'] * len(cs))
    cs = families.get('corners', {}).get('configs', [])
    if cs:
        add('corners', 'configs', ['total'] * len(cs))
        add('corners', 'class (issue 14)', [c.get('corner', '?') for c in cs])
        add('corners', 'dtype', [c['dtype'] for c in cs])
        bn = [c for c in cs if c.get('function') == 'batch_norm']
        add('corners', 'batch_norm TF path', [
            ('fused' if c['tf']['fused_batch_norm'] else 'non-fused') + ' rank %d' % len(c['input_shape'])
            for c in bn])
        add('corners', 'batch_norm decay type', [
            c['kwargs']['decay']['__np__'][0] if isinstance(c['kwargs']['decay'], dict) else 'float'
            for c in bn])
        add('corners', 'batch_norm updates_collections', [
            str(c['kwargs'].get('updates_collections', 'UPDATE_OPS')) for c in bn])
        add('corners', 'batch_norm trainable=False: UPDATE_OPS queued', [
            c['n_update_ops'] for c in bn if c['kwargs'].get('trainable') is False])
    cs = families.get('errors', {}).get('configs', [])
    if cs:
        add('errors', 'TF error type', [c['error']['type'] for c in cs])
    return rows


def coverage_markdown(families):
    """The coverage table as Markdown (tools/tf_reference/FIXTURES.md)."""
    metas = [d['meta'] for d in families.values() if d.get('meta')]
    v = metas[0]['versions'] if metas else {}
    lines = ['# Fixture coverage', '',
             'Generated by `python tools/tf_reference/generate_fixtures.py --coverage > '
             'tools/tf_reference/FIXTURES.md` (the function `coverage_markdown()` of that module, '
             'reading `tests/fixtures/tf/*.npz`; no TensorFlow needed). '
             '`tests/test_slim_fixtures.py::test_fixture_coverage` checks the requirements.', '',
             'Seed %s; TensorFlow %s, tf-slim %s, tf-keras %s, NumPy %s, TF_ENABLE_ONEDNN_OPTS=%s.'
             % (metas[0]['seed'] if metas else '?', v.get('tensorflow'), v.get('tf_slim'),
                v.get('tf_keras'), v.get('numpy'), v.get('TF_ENABLE_ONEDNN_OPTS')), '',
             'Configurations: ' + ', '.join('%s %d' % (f, len(d['configs'])) for f, d in families.items())
             + '; total %d.' % sum(len(d['configs']) for d in families.values()), '',
             '| family | axis | value: count |', '|---|---|---|']
    for fam, axis, counts in coverage(families):
        if axis == 'configs':
            continue
        lines.append('| %s | %s | %s |' % (fam, axis, ', '.join('%s: %d' % kv for kv in counts.items())))
    missing = check_coverage(families)
    lines += ['', 'Requirements (issue 3) checked by `check_coverage()`: '
              + ('all met.' if not missing else 'NOT MET: ' + '; '.join(missing))]
    return '\n'.join(lines) + '\n'


def check_coverage(families):
    """The coverage the fixtures promise (issue 3); returns what is missing."""
    cov = {(f, a): c for f, a, c in coverage(families)}
    missing = []

    def need(fam, axis, values, what=None):
        have = cov.get((fam, axis), {})
        lack = [v for v in values if not have.get(v)]
        if lack:
            missing.append('%s %s: no %s' % (fam, what or axis, lack))

    if cov.get(('conv2d', 'configs'), {}).get('total', 0) < 300:
        missing.append('conv2d: fewer than 300 configs')
    need('conv2d', 'kernel height', range(1, 8))
    need('conv2d', 'kernel width', range(1, 8))
    need('conv2d', 'kernel shape', ['square', 'non-square'])
    need('conv2d', 'stride (per dimension)', [1, 2, 3])
    need('conv2d', 'rate (per dimension)', [1, 2, 3, 4])
    if cov.get(('conv2d', 'rate > 1 (all with stride 1)'), {}).get('STRIDE>1'):
        missing.append('conv2d: a rate > 1 config with stride > 1')
    need('conv2d', 'padding', ['SAME', 'VALID'])
    need('conv2d', 'input size (per dimension)', [1])
    need('conv2d', 'input size parity', ['odd', 'even'])
    need('conv2d', 'batch', [1, 2, 3])
    need('conv2d', 'in channels', [1, 17])
    need('conv2d', 'out channels', [1, 17])
    need('conv2d', 'data_format', ['NHWC', 'NCHW'])
    need('conv2d', 'activation_fn', ['none', 'relu', 'relu6'])
    need('conv2d', 'biases / normalizer', ['biases', 'no biases', 'batch_norm'])
    need('conv2d', 'batch_norm is_training', [True, False])
    need('conv2d', 'moving statistics updated', [True])
    need('conv2d', 'dtype', ['float32', 'float64'])
    need('conv2d_same', 'stride x rate', ['s1 r1', 's1 r2', 's2 r1', 's3 r1'])
    need('conv2d_same', 'input height parity x stride',
         ['odd s1', 'even s1', 'odd s2', 'even s2', 'odd s3', 'even s3'])
    need('conv2d_same', 'TF: == conv2d(stride 1) + subsample', [True])
    if cov.get(('conv2d_same', 'TF: == conv2d(stride 1) + subsample'), {}).get(False):
        missing.append('conv2d_same: TF says conv2d_same != conv2d(stride 1) + subsample')
    need('conv2d_same', 'TF: conv2d(stride s, SAME) differs (rate 1, s > 1)', [True, False])
    need('subsample', 'factor', [1, 2, 3])
    need('subsample', 'input size parity', ['odd', 'even'])
    need('pool', 'function x padding', ['max_pool2d SAME', 'max_pool2d VALID',
                                        'avg_pool2d SAME', 'avg_pool2d VALID'])
    need('full_explicit', 'call x padding', ['conv2d FULL', 'conv2d explicit',
                                             'nn.conv2d FULL', 'nn.conv2d explicit'])
    if cov.get(('full_explicit', 'TF native explicit padding agrees'), {}).get(False):
        missing.append('full_explicit: TF native explicit padding disagrees with np.pad + VALID')
    need('batch_norm', 'is_training', [True, False])
    need('batch_norm', 'dtype', ['float32', 'float64'])
    for fam in FAMILIES:
        if fam not in families:
            missing.append('%s: no fixture file' % fam)
    return missing


def summarize(families):
    lines = []
    for fam, d in families.items():
        c = d['configs']
        warn = sum(1 for x in c if x.get('ref_mismatch'))
        lines.append('%-14s %4d configs  %5d arrays  ref-mismatch %d'
                     % (fam, len(c), len(d['arrays']), warn))
    conv = families.get('conv2d')
    if conv:
        cs = conv['configs']
        ks = sorted({k for c in cs for k in (c['kwargs']['kernel_size'] if isinstance(c['kwargs']['kernel_size'], list) else [c['kwargs']['kernel_size']])})
        st = sorted({s for c in cs for s in _pair(c['kwargs'].get('stride', 1))})
        rt = sorted({s for c in cs for s in _pair(c['kwargs'].get('rate', 1))})
        hw = sorted({d for c in cs for d in (c['input_shape'][1:3] if c['data_format'] == 'NHWC' else c['input_shape'][2:4])})
        lines.append('conv2d coverage: kernels %s strides %s rates %s spatial %s' % (ks, st, rt, hw))
        def cnt(pred):
            return sum(1 for c in cs if pred(c))
        lines.append('  NCHW %d  float64 %d  bn %d (train %d)  no-bias %d  relu %d relu6 %d linear %d  regularized %d'
                     % (cnt(lambda c: c['data_format'] == 'NCHW'), cnt(lambda c: c['dtype'] == 'float64'),
                        cnt(lambda c: 'normalizer_fn' in c['kwargs']),
                        cnt(lambda c: c['kwargs'].get('normalizer_params', {}).get('is_training')),
                        cnt(lambda c: c['kwargs'].get('biases_initializer', 1) is None),
                        cnt(lambda c: (c['kwargs']['activation_fn'] or {}).get('__fn__') == 'relu'),
                        cnt(lambda c: (c['kwargs']['activation_fn'] or {}).get('__fn__') == 'relu6'),
                        cnt(lambda c: c['kwargs']['activation_fn'] is None),
                        cnt(lambda c: 'weights_regularizer' in c['kwargs'])))
    return '\n'.join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--seed', type=int, default=20240601)
    ap.add_argument('--out', default=DEFAULT_OUT)
    ap.add_argument('--families', default=','.join(FAMILIES))
    ap.add_argument('--n-conv', type=int, default=320)
    ap.add_argument('--coverage', action='store_true',
                    help='print the coverage table (Markdown) of the fixtures in --out and exit; '
                         'no TensorFlow needed')
    args = ap.parse_args(argv)
    if args.coverage:
        fams = load_all(os.path.normpath(args.out))
        sys.stdout.write(coverage_markdown(fams))
        return 1 if check_coverage(fams) else 0
    fams = generate(args.seed, n_conv=args.n_conv, families=args.families.split(','))
    print(summarize(fams))
    sizes = save(fams, os.path.normpath(args.out))
    for p, s in sizes.items():
        print('%8.1f KiB  %s' % (s / 1024, p))
    print('total %.1f KiB' % (sum(sizes.values()) / 1024))
    missing = check_coverage(fams) if set(fams) == set(FAMILIES) else []
    for m in missing:
        print('COVERAGE NOT MET: ' + m)
    bad = [(f, c['id']) for f, d in fams.items() for c in d['configs']
           if c.get('ref_mismatch') or c.get('tf', {}).get('moving_stats_match_formula') is False
           or c.get('tf', {}).get('nhwc_check') is False
           or c.get('tf', {}).get('native_explicit_padding_agrees') is False
           or c.get('companions', {}).get('equals_stride1_then_subsample') is False]
    if bad:
        print('CHECK FAILED for %d configs: %s' % (len(bad), bad[:20]))
        return 1
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
