#!/usr/bin/env python3
"""Golden fixtures from TF 2.21 / tf-slim 1.1 for slim's non-convolution layers
(pyconv/core_layers.py) and pyconv.nn.softmax / dropout.

Run inside the reference venv (ENVIRONMENT.md)::

    TF_ENABLE_ONEDNN_OPTS=0 TF_CPP_MIN_LOG_LEVEL=2 /work/venvs/tfextra/bin/python \\
        tools/tf_reference/gen_glue.py --seed 20261201 --out tests/fixtures/tf

or import it and call ``generate(seed, n)`` (the live ``-m tf`` tier of
tests/test_glue_layers.py). TensorFlow is imported only inside ``generate``.

Format (``glue.npz``; FORMAT_VERSION 1): ``configs`` and ``meta`` as 0-d
unicode arrays of JSON, as generate_fixtures.py's families, and per config id:

  ``<id>/input``        the input (labels for one_hot_encoding, logits, ...)
  ``<id>/expected``     TF's output
  ``<id>/var/<name>``   every variable's value when TF computed the output:
                        TF's default initializers ran, then every variable was
                        overwritten with random values (biases and batch-norm
                        statistics non-zero); the replay loads them into the
                        store before the call, so the names must match TF's
  ``<id>/reg/<k>``      the k-th REGULARIZATION_LOSSES value

Config fields: ``id``, ``function`` (pyconv name: ``fully_connected``,
``dropout``, ``flatten``, ``softmax``, ``one_hot_encoding``, ``bias_add``,
``layer_norm``, ``repeat``, ``stack``, ``nn.softmax``, ``nn.dropout``),
``args`` (positional arguments after the input; ``repeat``/``stack`` take a
layer as ``{"__fn__": name}``), ``kwargs`` (special values as
generate_fixtures: ``{"__fn__": "relu"}``, ``{"__regularizer__": ["l2", s]}``),
``variable_scope`` (optional name), ``dtype``, ``input_shape``,
``expected_shape``, ``variables`` (name, shape, dtype, trainable,
collections, in creation order), ``var_names`` (the ``var/`` arrays),
``regularization_losses`` ([{key, tf_name}]), ``collection`` /
``aliases`` (the keys of ``convert_collection_to_dict('end_points')`` after
the call, when ``outputs_collections`` was given), ``ref_max_abs_err`` and
``ref_mismatch`` (TF's distance from the float64 formula of fully_connected,
softmax, bias_add and layer_norm, and whether it exceeds 1e-8 (float64) or
5e-3 (float16/32) of the output's scale), ``tf`` (the call as text,
TF's output op), ``dropout`` (training dropout: ``scale`` TF applied, whether
a mask was drawn; the masks themselves cannot match: TF draws with Philox).
Error configs have ``error``: {type, tf_message, pyconv_type, phrase} (the
replay expects ``pyconv_type`` with ``phrase`` in its message).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate_fixtures as gf

FORMAT_VERSION = 1
DEFAULT_OUT = gf.DEFAULT_OUT
COLLECTION = 'end_points'


class _GlueTF(gf._TF):
    def __init__(self):
        super().__init__()
        tf, slim = self.tf, self.slim
        self.fns.update({'tanh': tf.nn.tanh, 'sigmoid': tf.nn.sigmoid, 'softmax': slim.softmax,
                         'conv2d': slim.conv2d, 'fully_connected': slim.fully_connected,
                         'bias_add': slim.bias_add, 'layer_norm': slim.layer_norm})
        self.ops.update({'fully_connected': slim.fully_connected, 'dropout': slim.dropout,
                         'flatten': slim.flatten, 'softmax': slim.softmax,
                         'one_hot_encoding': slim.one_hot_encoding, 'bias_add': slim.bias_add,
                         'layer_norm': slim.layer_norm, 'repeat': slim.repeat,
                         'stack': slim.stack, 'nn.softmax': tf.nn.softmax,
                         'nn.dropout': tf.nn.dropout})

    def resolve(self, obj):
        return gf.resolve(obj, lambda k: None, lambda n: self.fns[n], self.regularizer)


def _random_value(rng, name, shape, dtype):
    v = rng.standard_normal(shape) * 0.7
    if name.endswith('moving_variance'):
        v = np.abs(v) + 0.5
    if name.endswith('gamma'):
        v = v + 1.0
    return v.astype(dtype)


def _run(T, cfg, rng, x):
    """Build cfg's call in a fresh graph, give every variable random values,
    run it. Returns (output, values, records, regs, aliases, op) or raises."""
    import contextlib
    tf, v1 = T.tf, T.v1
    g = tf.Graph()
    with g.as_default():
        xt = tf.constant(x)
        args = T.resolve(cfg.get('args', []))
        kwargs = T.resolve(cfg['kwargs'])
        with contextlib.ExitStack() as st:
            if cfg.get('variable_scope'):
                st.enter_context(v1.variable_scope(cfg['variable_scope']))
            y = T.ops[cfg['function']](xt, *args, **kwargs)
        variables = g.get_collection(v1.GraphKeys.GLOBAL_VARIABLES)
        regs = g.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
        assigns = []
        for v in variables:
            ph = v1.placeholder(v.dtype.base_dtype, v.shape)
            assigns.append((v, ph, v.assign(ph)))
        aliases = None
        if 'outputs_collections' in cfg['kwargs']:
            aliases = list(T.slim_utils.convert_collection_to_dict(COLLECTION))
        with v1.Session(graph=g) as sess:
            sess.run(v1.global_variables_initializer())
            values = {}
            for v, ph, op in assigns:
                val = _random_value(rng, v.op.name, [int(d) for d in v.shape],
                                    v.dtype.base_dtype.as_numpy_dtype)
                sess.run(op, {ph: val})
                values[v.op.name] = val
            out, reg_vals = sess.run([y, regs])
        return (np.asarray(out), values, gf._var_records(T, g),
                [(r.op.name, v) for r, v in zip(regs, reg_vals)], aliases,
                y.op.type if hasattr(y, 'op') else None, y is xt)


def _add(T, cfgs, arrays, rng, cfg, x, error=None):
    cid = 'c%d' % len(cfgs)
    cfg = dict(cfg, id=cid, family='glue', input_shape=list(x.shape), dtype=str(x.dtype))
    arrays[cid + '/input'] = x
    kw = ', '.join('%s=%s' % (k, json.dumps(v)) for k, v in cfg['kwargs'].items())
    cfg['tf'] = {'call': '%s(inputs%s%s)' % (cfg['function'], ''.join(
        ', ' + json.dumps(a) for a in cfg.get('args', [])), ', ' + kw if kw else '')}
    try:
        out, values, records, regs, aliases, op, same = _run(T, cfg, rng, x)
    except Exception as e:  # recorded for the error configs
        if error is None:
            raise
        cfg['error'] = {'type': type(e).__name__,
                        'tf_message': str(e).splitlines()[0][:400],
                        'pyconv_type': error[0], 'phrase': error[1]}
        if error[1] not in cfg['error']['tf_message'] and error[2]:
            raise RuntimeError('%s: TF message %r lacks %r' % (cid, str(e), error[1]))
        cfgs.append(cfg)
        return cfg
    if error is not None:
        raise RuntimeError('%s: TF raised no error for %s' % (cid, cfg['tf']['call']))
    arrays[cid + '/expected'] = out
    cfg['expected_shape'] = list(out.shape)
    cfg['tf']['op'] = op
    cfg['tf']['returned_input'] = bool(same)
    cfg['variables'] = records
    cfg['var_names'] = sorted(values)
    for name, val in values.items():
        arrays['%s/var/%s' % (cid, name)] = val
    cfg['regularization_losses'] = []
    for k, (name, val) in enumerate(regs):
        arrays['%s/reg/%d' % (cid, k)] = np.asarray(val)
        cfg['regularization_losses'].append({'key': 'reg/%d' % k, 'tf_name': name})
    if aliases is not None:
        cfg['collection'] = COLLECTION
        cfg['aliases'] = aliases
    ref = _reference(cfg['function'], x, cfg['kwargs'], values)
    if ref is not None:
        cfg['ref_max_abs_err'] = float(np.max(np.abs(out.astype(np.float64) - ref))) \
            if out.size else 0.0
        lim = 1e-8 if out.dtype == np.float64 else 5e-3
        scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
        cfg['ref_mismatch'] = cfg['ref_max_abs_err'] > lim * scale
        if cfg['ref_mismatch']:
            print('WARNING: glue %s %s differs from the float64 formula by %g'
                  % (cid, cfg['tf']['call'], cfg['ref_max_abs_err']), file=sys.stderr)
    cfgs.append(cfg)
    return cfg


def _act(out, act):
    if not act:
        return out
    return {'relu': lambda a: np.maximum(a, 0), 'relu6': lambda a: np.clip(a, 0, 6),
            'tanh': np.tanh}[act['__fn__']](out)


def _var(values, suffix):
    found = [v for k, v in values.items() if k.endswith('/' + suffix)]
    return found[0].astype(np.float64) if found else None


def _reference(function, x, kw, values):
    """TF's output by the float64 formula (None where there is nothing to round):
    a check of TF and of the generator, independent of pyconv."""
    y = x.astype(np.float64)
    if function == 'layer_norm':
        return _layer_norm_reference(x, kw, values)
    if function in ('softmax', 'nn.softmax'):
        axis = kw.get('axis', -1)
        e = np.exp(y - y.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)
    if function == 'bias_add':
        b = _var(values, 'biases')
        if kw.get('data_format') == 'NCHW':
            b = b[:, None, None]
        return _act(y + b, kw.get('activation_fn'))
    if function == 'fully_connected':
        out = np.einsum('...i,io->...o', y, _var(values, 'weights'))
        if kw.get('normalizer_fn'):
            params = kw['normalizer_params']
            out = (out - _var(values, 'moving_mean')) / np.sqrt(
                _var(values, 'moving_variance') + 0.001)
            if params.get('scale'):
                out = out * _var(values, 'gamma')
            if params.get('center', True):
                out = out + _var(values, 'beta')
        elif kw.get('biases_initializer', True) is not None:
            out = out + _var(values, 'biases')
        return _act(out, kw.get('activation_fn', {'__fn__': 'relu'}))
    return None


def _layer_norm_reference(x, kw, values):
    """The float64 formula of slim.layer_norm with TF's variable values: how far
    TF itself is from it (large when a normalised axis has one element: TF's
    float32 x * 1e6 + (beta - mean * 1e6) cancels)."""
    rank = x.ndim
    axis = kw.get('begin_norm_axis', 1) % rank
    axes = tuple(range(axis, rank))
    y = x.astype(np.float64)
    mean = y.mean(axis=axes, keepdims=True)
    var = ((y - mean) ** 2).mean(axis=axes, keepdims=True)
    eps = 1e-3 if x.dtype == np.float16 else 1e-12
    out = (y - mean) / np.sqrt(var + eps)
    for name, op in (('gamma', np.multiply), ('beta', np.add)):
        v = [val for key, val in values.items() if key.endswith('/' + name)]
        if v:
            out = op(out, v[0].astype(np.float64))
    return _act(out, kw.get('activation_fn'))


def _dtype(rng, p16=0.1, p64=0.3):
    u = rng.random()
    return np.float16 if u < p16 else np.float64 if u < p16 + p64 else np.float32


def _x(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _shape(rng, rank, lo=1, hi=6):
    return tuple(int(rng.integers(lo, hi + 1)) for _ in range(rank))


_ACTS = [{'__fn__': 'relu'}, {'__fn__': 'relu6'}, None, {'__fn__': 'tanh'}]


def _maybe(rng, p):
    return rng.random() < p


def _fc_configs(T, rng, n, cfgs, arrays):
    for i in range(n):
        rank = int(rng.choice([2, 2, 2, 3, 4, 5]))
        shape = _shape(rng, rank - 1, 1, 5 if rank > 3 else 9) + (int(rng.integers(1, 40)),)
        dtype = _dtype(rng)
        kw = {'num_outputs': int(rng.integers(1, 33))}
        act = _ACTS[int(rng.integers(len(_ACTS)))]
        if act != {'__fn__': 'relu'} or _maybe(rng, 0.3):
            kw['activation_fn'] = act
        if _maybe(rng, 0.3):
            kw['normalizer_fn'] = {'__fn__': 'batch_norm'}
            kw['normalizer_params'] = {'is_training': False, 'scale': bool(_maybe(rng, 0.5)),
                                       'center': bool(_maybe(rng, 0.8))}
            if rank == 2:  # slim 1.1's own fused op needs ops.Tensor, gone in TF 2.21
                kw['normalizer_params']['fused'] = False
        elif _maybe(rng, 0.15):
            kw['biases_initializer'] = None
        if _maybe(rng, 0.2):
            kw['weights_regularizer'] = {'__regularizer__': ['l2', 0.01]}
        if _maybe(rng, 0.4):
            kw['scope'] = 'fc%d' % i
        if _maybe(rng, 0.3):
            kw['outputs_collections'] = COLLECTION
        if _maybe(rng, 0.15):
            kw['trainable'] = False
        cfg = {'function': 'fully_connected', 'kwargs': kw}
        if _maybe(rng, 0.3):
            cfg['variable_scope'] = 'net'
        _add(T, cfgs, arrays, rng, cfg, _x(rng, shape, dtype, 2.0))


def _dropout_configs(T, rng, n, cfgs, arrays):
    for i in range(n):
        rank = int(rng.integers(1, 5))
        shape = _shape(rng, rank, 1, 7)
        dtype = _dtype(rng)
        training = _maybe(rng, 0.4)
        keep = float(rng.choice([0.5, 0.8, 0.999, 1.0, 0.25]))
        kw = {'keep_prob': keep, 'is_training': bool(training)}
        if training and rank >= 2 and _maybe(rng, 0.5):
            noise = list(shape)
            noise[int(rng.integers(rank))] = 1
            kw['noise_shape'] = noise
        if _maybe(rng, 0.4):
            kw['scope'] = 'Dropout_%db' % i
        if _maybe(rng, 0.4):
            kw['outputs_collections'] = COLLECTION
        cfg = {'function': 'dropout', 'kwargs': kw}
        if _maybe(rng, 0.3):
            cfg['variable_scope'] = 'Logits'
        if training:
            cfg['dropout'] = {'scale': 1.0 / (1.0 - (1.0 - keep)), 'mask': keep < 1.0}
        _add(T, cfgs, arrays, rng, cfg, _x(rng, shape, dtype, 3.0))
    for rate in (0.0, 0.3, 0.75):
        shape = _shape(rng, 3, 2, 6)
        kw = {'rate': rate}
        if rate and _maybe(rng, 0.5):
            kw['noise_shape'] = [shape[0], 1, shape[2]]
        cfg = {'function': 'nn.dropout', 'kwargs': kw,
               'dropout': {'scale': 1.0 / (1.0 - rate), 'mask': rate > 0}}
        _add(T, cfgs, arrays, rng, cfg, _x(rng, shape, _dtype(rng, 0.0), 3.0))


def _flatten_configs(T, rng, n, cfgs, arrays):
    dtypes = [np.float32, np.float64, np.float16, np.int32, np.uint8]
    for i in range(n):
        rank = int(rng.integers(1, 6))
        shape = _shape(rng, rank, 1, 5)
        if _maybe(rng, 0.1):  # an empty batch; empty inner dimensions: see _flatten_note
            shape = (0,) + shape[1:]
        dtype = dtypes[int(rng.integers(len(dtypes)))]
        x = (rng.standard_normal(shape) * 10).astype(dtype)
        kw = {}
        if _maybe(rng, 0.4):
            kw['scope'] = 'flat%d' % i
        if _maybe(rng, 0.5):
            kw['outputs_collections'] = COLLECTION
        cfg = {'function': 'flatten', 'kwargs': kw}
        if _maybe(rng, 0.3):
            cfg['variable_scope'] = 'net'
        _add(T, cfgs, arrays, rng, cfg, x)


def _softmax_configs(T, rng, n, cfgs, arrays):
    for i in range(n):
        rank = int(rng.integers(2, 5))
        shape = _shape(rng, rank, 1, 7)
        dtype = _dtype(rng, 0.15)
        scale = float(rng.choice([1.0, 5.0, 30.0]))
        kw = {}
        if _maybe(rng, 0.5):
            kw['scope'] = 'Predictions'
        _add(T, cfgs, arrays, rng, {'function': 'softmax', 'kwargs': kw},
             _x(rng, shape, dtype, scale))
    for i in range(max(4, n // 2)):
        rank = int(rng.integers(1, 5))
        shape = _shape(rng, rank, 1, 7)
        kw = {}
        if _maybe(rng, 0.6):
            kw['axis'] = int(rng.integers(-rank, rank))
        _add(T, cfgs, arrays, rng, {'function': 'nn.softmax', 'kwargs': kw},
             _x(rng, shape, _dtype(rng, 0.15), 4.0))


def _one_hot_configs(T, rng, n, cfgs, arrays):
    dtypes = [np.int32, np.int64, np.uint8, np.int8]
    for i in range(n):
        rank = int(rng.integers(1, 4))
        shape = _shape(rng, rank, 1, 5)
        classes = int(rng.integers(0, 9))
        dtype = dtypes[int(rng.integers(len(dtypes)))]
        lo = 0 if dtype == np.uint8 else -2
        labels = rng.integers(lo, classes + 2, size=shape).astype(dtype)
        kw = {'num_classes': classes}
        u = rng.random()
        if u < 0.3:
            kw.update(on_value=0.9, off_value=0.1 / max(classes, 1))
        elif u < 0.45:
            kw.update(on_value=5, off_value=-1)
        if _maybe(rng, 0.4):
            kw['scope'] = 'labels%d' % i
        if _maybe(rng, 0.4):
            kw['outputs_collections'] = COLLECTION
        _add(T, cfgs, arrays, rng, {'function': 'one_hot_encoding', 'kwargs': kw}, labels)


def _bias_add_configs(T, rng, n, cfgs, arrays):
    for i in range(n):
        nchw = _maybe(rng, 0.3)
        rank = 4 if nchw else int(rng.integers(2, 6))
        shape = _shape(rng, rank, 1, 5)
        dtype = _dtype(rng)
        kw = {}
        if nchw:
            kw['data_format'] = 'NCHW'
        if _maybe(rng, 0.4):
            kw['activation_fn'] = _ACTS[int(rng.integers(len(_ACTS)))]
        if _maybe(rng, 0.25):
            kw['regularizer'] = {'__regularizer__': ['l1', 0.1]}
        if _maybe(rng, 0.4):
            kw['scope'] = 'bias%d' % i
        if _maybe(rng, 0.3):
            kw['outputs_collections'] = COLLECTION
        if _maybe(rng, 0.15):
            kw['trainable'] = False
        cfg = {'function': 'bias_add', 'kwargs': kw}
        _add(T, cfgs, arrays, rng, cfg, _x(rng, shape, dtype, 2.0))


def _layer_norm_configs(T, rng, n, cfgs, arrays):
    for i in range(n):
        rank = int(rng.integers(2, 6))
        shape = _shape(rng, rank, 1, 6)
        dtype = _dtype(rng, 0.15)
        kw = {}
        if _maybe(rng, 0.5):
            kw['begin_norm_axis'] = int(rng.integers(-rank, rank))
        if _maybe(rng, 0.5):
            kw['begin_params_axis'] = int(rng.integers(-rank, rank))
        if _maybe(rng, 0.3):
            kw['center'] = False
        if _maybe(rng, 0.3):
            kw['scale'] = False
        if _maybe(rng, 0.3):
            kw['activation_fn'] = _ACTS[int(rng.integers(len(_ACTS)))]
        if _maybe(rng, 0.4):
            kw['scope'] = 'ln%d' % i
        if _maybe(rng, 0.3):
            kw['outputs_collections'] = COLLECTION
        norm = kw.get('begin_norm_axis', 1) % rank
        while int(np.prod(shape[norm:])) < 2:
            # one value per row: TF's float32 output is cancellation noise
            # (x * 1e6 + (beta - mean * 1e6)); a unit test covers that case
            shape = _shape(rng, rank, 1, 6)
        shift = float(rng.choice([0.0, 3.0]))
        x = (rng.standard_normal(shape) * 2 + shift).astype(dtype)
        _add(T, cfgs, arrays, rng, {'function': 'layer_norm', 'kwargs': kw}, x)


def _repeat_stack_configs(T, rng, n, cfgs, arrays):
    for i in range(n):
        conv = _maybe(rng, 0.5)
        dtype = _dtype(rng, 0.0)
        kw = {}
        if _maybe(rng, 0.6):
            kw['scope'] = 'conv%d' % (i + 1) if conv else 'fc'
        if _maybe(rng, 0.4):
            kw['outputs_collections'] = COLLECTION
        if conv:
            x = _x(rng, (int(rng.integers(1, 3)),) + _shape(rng, 2, 3, 7)
                   + (int(rng.integers(1, 5)),), dtype)
            kw['padding'] = 'SAME'
        else:
            x = _x(rng, (int(rng.integers(1, 4)), int(rng.integers(1, 9))), dtype)
        if i % 2 == 0:
            reps = int(rng.integers(1, 4))
            args = [reps, {'__fn__': 'conv2d' if conv else 'fully_connected'},
                    int(rng.integers(1, 9))] + ([[3, 3]] if conv else [])
            cfg = {'function': 'repeat', 'args': args, 'kwargs': kw}
        else:
            layers = int(rng.integers(1, 4))
            if conv:
                stack = [[int(rng.integers(1, 9)), int(rng.choice([1, 3]))]
                         for _ in range(layers)]
            else:
                stack = [int(rng.integers(1, 9)) for _ in range(layers)]
            cfg = {'function': 'stack',
                   'args': [{'__fn__': 'conv2d' if conv else 'fully_connected'}, stack],
                   'kwargs': kw}
        if _maybe(rng, 0.4):
            cfg['variable_scope'] = 'vgg_16'
        _add(T, cfgs, arrays, rng, cfg, x)


def _error_configs(T, rng, cfgs, arrays):
    f32 = np.float32
    cases = [
        ('fully_connected', [], {'num_outputs': 3}, np.ones(3, f32),
         ('ValueError', 'expected min_ndim=2, found ndim=1', True)),
        ('fully_connected', [], {'num_outputs': 3.0}, np.ones((2, 3), f32),
         ('ValueError', 'num_outputs type should be one of', True)),
        ('fully_connected', [], {'num_outputs': -2}, np.ones((2, 3), f32),
         ('ValueError', 'expected a positive integer', True)),
        ('softmax', [], {}, np.ones(3, f32),
         ('ValueError', 'rank of shape must be at least 2 not: 1', True)),
        ('stack', [{'__fn__': 'fully_connected'}, 3], {}, np.ones((2, 3), f32),
         ('ValueError', 'stack_args need to be a list or tuple', True)),
        ('layer_norm', [], {'begin_norm_axis': 4}, np.ones((2, 3, 4, 5), f32),
         ('ValueError', 'must be < rank(inputs) (4)', True)),
        ('layer_norm', [], {'begin_params_axis': 2}, np.ones((2, 3), f32),
         ('ValueError', 'must be < rank(inputs) (2)', True)),
        ('bias_add', [], {'data_format': 'NCHW'}, np.ones((2, 3, 4), f32),
         ('ValueError', 'Data format NCHW only supports 4D Tensor', True)),
        ('bias_add', [], {'data_format': 'NCWH'}, np.ones((2, 3, 4, 5), f32),
         ('ValueError', 'data_format has to be either NCHW or NHWC', True)),
        ('bias_add', [], {}, np.ones(3, f32),
         ('ValueError', 'Shape must be at least rank 2 but is rank 1', True)),
        ('dropout', [], {'keep_prob': 1.5}, np.ones((2, 3), f32),
         ('ValueError', 'Invalid value -0.5 received for `rate`', True)),
        ('dropout', [], {'keep_prob': -0.5, 'is_training': False}, np.ones((2, 3), f32),
         ('ValueError', 'Invalid value 1.5 received for `rate`', True)),
        ('dropout', [], {'keep_prob': 0.0}, np.ones((2, 3), f32),
         ('ValueError', 'must be a scalar tensor or a float in the range [0, 1)', True)),
        ('dropout', [], {'noise_shape': [2, 2]}, np.ones((2, 3), f32),
         ('ValueError', 'noise_shape', False)),
        ('flatten', [], {}, np.array(1.0, f32),
         ('ValueError', 'expected min_ndim=1, found ndim=0', True)),
        ('one_hot_encoding', [], {'num_classes': 3}, np.array([0.0, 1.0], f32),
         ('TypeError', 'float32', True)),
        ('one_hot_encoding', [], {'num_classes': 3, 'on_value': 5}, np.array([0, 1]),
         ('TypeError', 'does not match', True)),
        ('nn.dropout', [], {'rate': 1.0}, np.ones((2, 3), f32),
         ('ValueError', 'must be a scalar tensor or a float in the range [0, 1)', True)),
        ('nn.softmax', [], {'axis': 2}, np.ones((2, 3), f32),
         ('ValueError', 'axis', False)),
    ]
    for fn, args, kw, x, err in cases:
        _add(T, cfgs, arrays, rng, {'function': fn, 'args': args, 'kwargs': kw}, x, err)


def generate(seed=0, n=40):
    """{'configs', 'arrays', 'meta'} for ``glue.npz`` (nothing written).
    ``n`` scales the number of configurations (n fully_connected ones)."""
    T = _GlueTF()
    rng = np.random.default_rng([int(seed) % (2 ** 32), 9])
    cfgs, arrays = [], {}
    _fc_configs(T, rng, n, cfgs, arrays)
    _dropout_configs(T, rng, max(6, n // 2), cfgs, arrays)
    _flatten_configs(T, rng, max(4, n // 4), cfgs, arrays)
    _softmax_configs(T, rng, max(4, n // 4), cfgs, arrays)
    _one_hot_configs(T, rng, max(4, n // 4), cfgs, arrays)
    _bias_add_configs(T, rng, max(4, n // 3), cfgs, arrays)
    _layer_norm_configs(T, rng, max(6, n // 2), cfgs, arrays)
    _repeat_stack_configs(T, rng, max(4, n // 4), cfgs, arrays)
    _error_configs(T, rng, cfgs, arrays)
    meta = {'format_version': FORMAT_VERSION, 'family': 'glue', 'seed': int(seed),
            'count': len(cfgs), 'versions': T.versions()}
    return {'configs': cfgs, 'arrays': arrays, 'meta': meta}


def save(glue, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'glue.npz')
    payload = dict(glue['arrays'])
    payload['configs'] = np.array(json.dumps(glue['configs']))
    payload['meta'] = np.array(json.dumps(glue['meta']))
    np.savez_compressed(path, **payload)
    return path, os.path.getsize(path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seed', type=int, default=20261201)
    p.add_argument('--n', type=int, default=40)
    p.add_argument('--out', default=DEFAULT_OUT)
    a = p.parse_args(argv)
    glue = generate(a.seed, a.n)
    path, size = save(glue, a.out)
    counts = {}
    for c in glue['configs']:
        key = c['function'] + (' (error)' if 'error' in c else '')
        counts[key] = counts.get(key, 0) + 1
    print('%s: %d configurations, %d bytes: %s' % (path, len(glue['configs']), size,
                                                  json.dumps(counts)))


if __name__ == '__main__':
    main()
