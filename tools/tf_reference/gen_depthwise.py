#!/usr/bin/env python3
"""TF-computed fixtures for pyconv's depthwise and separable convolutions.

Run by hand in the reference venv (ENVIRONMENT.md)::

    TF_CPP_MIN_LOG_LEVEL=2 TF_ENABLE_ONEDNN_OPTS=0 /work/venvs/tfextra/bin/python \\
        tools/tf_reference/gen_depthwise.py --seed 9 --out tests/fixtures/tf

or import it (the live ``pytest -m tf`` tier) and call ``generate(seed, n)``,
which returns ``(configs, arrays)`` in memory. TensorFlow is imported only by
``generate``.

Format: ``depthwise.npz`` holds ``configs`` (0-d unicode array, JSON list of
config dicts), ``meta`` (JSON: seed, versions) and per config id ``cN``:

``cN/input``              the input in the pyconv call's layout (NCHW configs
                          hold the NCHW array);
``cN/expected``           TF's output in that layout (absent for error configs);
``cN/depthwise``, ``cN/pointwise``, ``cN/biases``   the filters / biases (the
                          ``nn.*`` calls' arguments; for the slim layer the
                          variables' initial values, given to TF as constant
                          initializers and to pyconv as arrays);
``cN/reg/K``              K-th regularization loss of the slim layer.

Config fields: ``id``, ``function`` (``nn.depthwise_conv2d``,
``nn.separable_conv2d`` or ``separable_conv2d``), ``dtype``,
``data_format``, ``input_shape``, ``kwargs`` (JSON; ``{"__fn__": name}`` is
pyconv's function of that name, ``{"__regularizer__": ["l2", s]}`` a
regularizer, ``{"__array__": key}`` the array ``cN/key``), and for the slim
layer ``variables`` (every variable after the call, in creation order:
name, shape, dtype, trainable, collections), ``regularization_losses``
([{"key": "reg/K", "tf_name": TF's op name}], collection order); ``ref_max_abs_err`` (TF's distance from a float64 NumPy
formula, checked here); ``tf_ran_as`` ('NHWC' or 'NHWC+transpose': TF's CPU
depthwise kernel has no NCHW, so NCHW configs run as NHWC and are
transposed); ``error`` ({"type", "tf_message"}) for configs where TF raises.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate_fixtures import _TF, _var_records

FAMILY = "depthwise"
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                           "fixtures", "tf")


# ----------------------------------------------------------------- float64 formula

def _pads(n, k, s, r, padding):
    k_eff = (k - 1) * r + 1
    if padding == "VALID":
        return 0, 0
    if padding == "SAME":
        out = -(-n // s)
        total = max((out - 1) * s + k_eff - n, 0)
        return total // 2, total - total // 2
    return tuple(padding)


def ref_depthwise(x, w, strides, pads, rates):
    """float64 NHWC depthwise convolution, output channel c * m + j."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    (pt, pb), (pl, pr) = pads
    n, h, wd, c = x.shape
    kh, kw, _, dm = w.shape
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh = (h + pt + pb - (kh - 1) * rates[0] - 1) // strides[0] + 1
    ow = (wd + pl + pr - (kw - 1) * rates[1] - 1) // strides[1] + 1
    out = np.zeros((n, oh, ow, c, dm))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * rates[0]: i * rates[0] + (oh - 1) * strides[0] + 1: strides[0],
                       j * rates[1]: j * rates[1] + (ow - 1) * strides[1] + 1: strides[1]]
            out += patch[..., None] * w[i, j]
    return out.reshape(n, oh, ow, c * dm)


# ----------------------------------------------------------------- sampling

def _rand(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def _geometry(rng, allow_explicit):
    kh = int(rng.choice([1, 2, 3, 3, 3, 5, 7]))
    kw = kh if rng.random() < 0.7 else int(rng.choice([1, 2, 3, 5]))
    if rng.random() < 0.35:
        rates = [int(rng.choice([2, 3])), int(rng.choice([1, 2, 3]))]
        if rng.random() < 0.5:
            rates = [rates[0], rates[0]]
        strides = [1, 1]
    else:
        rates = [1, 1]
        s = int(rng.choice([1, 1, 2, 2, 3]))
        strides = [s, s]
    r = rng.random()
    if allow_explicit and rates == [1, 1] and r < 0.15:
        padding = [[int(rng.integers(0, 3)), int(rng.integers(0, 3))],
                   [int(rng.integers(0, 3)), int(rng.integers(0, 3))]]
    else:
        padding = "SAME" if r < 0.6 else "VALID"
    k_eff = [(kh - 1) * rates[0] + 1, (kw - 1) * rates[1] + 1]
    h = int(rng.integers(max(1, k_eff[0]), k_eff[0] + 9))
    w = int(rng.integers(max(1, k_eff[1]), k_eff[1] + 9))
    return kh, kw, strides, rates, padding, h, w


def _dtype(rng):
    r = rng.random()
    return "float64" if r < 0.35 else ("float16" if r < 0.42 else "float32")


def _channels(rng):
    return int(rng.choice([1, 2, 3, 4, 5, 8, 16, 17, 33]))


def _multiplier(rng):
    return int(rng.choice([1, 1, 1, 2, 3, 4, 8]))


def _small(c, dm, n, h, w, limit=900):
    """Fewer channels and images while the output would hold more than `limit`
    values (keeps the fixture file small)."""
    while c * dm > 40 and dm > 1:
        dm = max(1, dm // 2)
    while n * h * w * c * dm > limit and (n > 1 or c > 2):
        if n > 1:
            n -= 1
        else:
            c = max(2, c // 2)
    return c, dm, n


def _tf_padding(padding):
    if isinstance(padding, str):
        return padding
    return [[0, 0], padding[0], padding[1], [0, 0]]


def _to_nchw(a):
    return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))


# ----------------------------------------------------------------- configs

def _nn_config(T, rng, cid, arrays, separable):
    tf = T.tf
    kh, kw, strides, rates, padding, h, w = _geometry(rng, allow_explicit=not separable)
    dtype = _dtype(rng)
    n = int(rng.choice([1, 1, 2, 3]))
    c, dm, n = _small(_channels(rng), _multiplier(rng), n, h, w)
    fmt = "NCHW" if rng.random() < 0.3 else "NHWC"
    x = _rand(rng, (n, h, w, c), dtype)
    dw = _rand(rng, (kh, kw, c, dm), dtype, 0.5)
    cfg = {"id": cid, "dtype": dtype, "data_format": fmt, "tf_ran_as": "NHWC"
           if fmt == "NHWC" else "NHWC+transpose"}
    tf_strides = [1, strides[0], strides[1], 1]
    kwargs = {"strides": tf_strides if fmt == "NHWC" else [1, 1] + strides,
              "padding": padding if isinstance(padding, str) else
              ([[0, 0], padding[0], padding[1], [0, 0]] if fmt == "NHWC"
               else [[0, 0], [0, 0], padding[0], padding[1]]),
              "data_format": fmt, "dilations": rates}
    arrays[cid + "/depthwise"] = dw
    if separable:
        cout = int(rng.choice([1, 3, 8, 16, 20]))
        pw = _rand(rng, (1, 1, c * dm, cout), dtype, 0.5)
        arrays[cid + "/pointwise"] = pw
        cfg["function"] = "nn.separable_conv2d"
        y = tf.nn.separable_conv2d(x, dw, pw, tf_strides, _tf_padding(padding),
                                   data_format="NHWC", dilations=rates).numpy()
    else:
        cfg["function"] = "nn.depthwise_conv2d"
        y = tf.nn.depthwise_conv2d(x, dw, tf_strides, _tf_padding(padding), data_format="NHWC",
                                   dilations=rates).numpy()
    pads = tuple(_pads((h, w)[d], (kh, kw)[d], strides[d], rates[d],
                       padding if isinstance(padding, str) else padding[d]) for d in range(2))
    ref = ref_depthwise(x, dw, strides, pads, rates)
    if separable:
        ref = ref @ np.asarray(pw, np.float64)[0, 0]
    cfg["ref_max_abs_err"] = float(np.max(np.abs(y.astype(np.float64) - ref)))
    cfg["kwargs"] = kwargs
    cfg["input_shape"] = list(x.shape if fmt == "NHWC" else _to_nchw(x).shape)
    arrays[cid + "/input"] = x if fmt == "NHWC" else _to_nchw(x)
    arrays[cid + "/expected"] = y if fmt == "NHWC" else _to_nchw(y)
    return cfg, ref


def _slim_config(T, rng, cid, arrays):
    tf, v1, slim = T.tf, T.v1, T.slim
    kh, kw, strides, rates, padding, h, w = _geometry(rng, allow_explicit=False)
    dtype = "float64" if rng.random() < 0.3 else "float32"
    n = int(rng.choice([1, 2, 3]))
    c, dm, n = _small(_channels(rng), _multiplier(rng), n, h, w)
    fmt = "NCHW" if rng.random() < 0.3 else "NHWC"
    num_outputs = None if rng.random() < 0.4 else int(rng.choice([1, 4, 8, 16]))
    normalizer = rng.random() < 0.3
    act = str(rng.choice(["relu", "relu6", "none", "tanh"]))
    regularize = rng.random() < 0.3
    use_bias_init = rng.random() < 0.8
    x = _rand(rng, (n, h, w, c), dtype)
    dw = _rand(rng, (kh, kw, c, dm), dtype, 0.5)
    mid = c * dm
    cout = mid if num_outputs is None else num_outputs
    pw = _rand(rng, (1, 1, mid, num_outputs), dtype, 0.5) if num_outputs else None
    b = _rand(rng, (cout,), dtype)
    stride = strides[0] if rng.random() < 0.5 else list(strides)
    rate = rates if rates[0] != rates[1] or rng.random() < 0.5 else rates[0]
    scope = None if rng.random() < 0.3 else f"sep{int(rng.integers(0, 3))}"
    kwargs = {"num_outputs": num_outputs,
              "kernel_size": [kh, kw] if kh != kw or rng.random() < 0.5 else kh,
              "depth_multiplier": dm, "stride": stride, "padding": padding,
              "data_format": fmt, "rate": rate,
              "activation_fn": None if act == "none" else {"__fn__": act},
              "weights_initializer": {"__array__": "depthwise"}}
    if pw is not None:
        kwargs["pointwise_initializer"] = {"__array__": "pointwise"}
        arrays[cid + "/pointwise"] = pw
    arrays[cid + "/depthwise"] = dw
    if normalizer:
        kwargs["normalizer_fn"] = {"__fn__": "batch_norm"}
        kwargs["normalizer_params"] = {"is_training": True, "scale": True}
        if fmt == "NCHW":  # pyconv runs NCHW; TF the NHWC equivalent
            kwargs["normalizer_params"]["data_format"] = "NCHW"
    elif use_bias_init:
        kwargs["biases_initializer"] = {"__array__": "biases"}
        arrays[cid + "/biases"] = b
    else:
        kwargs["biases_initializer"] = None
    if regularize:
        kwargs["weights_regularizer"] = {"__regularizer__": ["l2", 0.01]}
        kwargs["biases_regularizer"] = {"__regularizer__": ["l1", 0.02]}
    if rng.random() < 0.3:
        kwargs["variables_collections"] = ["extra_vars"]
    if scope is not None:
        kwargs["scope"] = scope
    kwargs["outputs_collections"] = "outs"
    cfg = {"id": cid, "function": "separable_conv2d", "dtype": dtype, "data_format": fmt,
           "kwargs": kwargs, "input_shape": list(x.shape if fmt == "NHWC" else
                                                  _to_nchw(x).shape)}

    def tf_value(v):
        if isinstance(v, dict) and "__fn__" in v:
            return {"relu": tf.nn.relu, "relu6": tf.nn.relu6, "tanh": tf.tanh,
                    "batch_norm": slim.batch_norm}[v["__fn__"]]
        if isinstance(v, dict) and "__array__" in v:
            return v1.constant_initializer(arrays[cid + "/" + v["__array__"]])
        if isinstance(v, dict) and "__regularizer__" in v:
            kind, s = v["__regularizer__"]
            return {"l1": slim.l1_regularizer, "l2": slim.l2_regularizer}[kind](s)
        if isinstance(v, dict):
            return {k: tf_value(u) for k, u in v.items()}
        return v

    tf_kwargs = {k: tf_value(v) for k, v in kwargs.items()}
    tf_kwargs["data_format"] = "NHWC"  # TF's CPU depthwise kernel has no NCHW
    if normalizer:
        tf_kwargs["normalizer_params"] = {"is_training": True, "scale": True}
    g = tf.Graph()
    error = None
    with g.as_default():
        xt = tf.constant(x)
        try:
            y = slim.separable_conv2d(xt, **tf_kwargs)
        except (ValueError, TypeError) as e:
            error = {"type": type(e).__name__, "tf_message": str(e)[:300]}
        if error is None:
            regs = g.get_collection(v1.GraphKeys.REGULARIZATION_LOSSES)
            with v1.Session(graph=g) as sess:
                sess.run(v1.global_variables_initializer())
                out, reg_vals = sess.run([y, regs])
            cfg["variables"] = _var_records(T, g)
            cfg["regularization_losses"] = [{"key": f"reg/{k}", "tf_name": r.op.name}
                                            for k, r in enumerate(regs)]
            for k, v in enumerate(reg_vals):
                arrays[cid + f"/reg/{k}"] = np.asarray(v)
    arrays[cid + "/input"] = x if fmt == "NHWC" else _to_nchw(x)
    cfg["tf_ran_as"] = "NHWC" if fmt == "NHWC" else "NHWC+transpose"
    if error is not None:
        cfg["error"] = error
        return cfg, None
    arrays[cid + "/expected"] = out if fmt == "NHWC" else _to_nchw(out)
    if not normalizer and act in ("relu", "none"):
        pads = tuple(_pads((h, w)[d], (kh, kw)[d], strides[d], rates[d], padding)
                     for d in range(2))
        ref = ref_depthwise(x, dw, strides, pads, rates)
        if pw is not None:
            ref = ref @ np.asarray(pw, np.float64)[0, 0]
        if use_bias_init:
            ref = ref + b.astype(np.float64)
        if act == "relu":
            ref = np.maximum(ref, 0)
        cfg["ref_max_abs_err"] = float(np.max(np.abs(out.astype(np.float64) - ref)))
    return cfg, None


def _error_configs(T, rng, arrays, start):
    """stride > 1 with rate > 1, which pyconv refuses with a ValueError as
    slim.conv2d does. TF 2.21's slim.separable_conv2d does not refuse it: it
    warns ("When dilation rate is greater than 1, then all values of strides
    must be 1") and returns numbers that are not the strided dilated
    convolution; the config stores them and their distance from the formula
    (``tf_wrong_by``) to show it."""
    out = []
    for k, num_outputs in enumerate([None, 4]):
        cid = f"c{start + k}"
        x = _rand(rng, (1, 9, 9, 3), "float32")
        dw = _rand(rng, (3, 3, 3, 1), "float32")
        pw = _rand(rng, (1, 1, 3, 4), "float32")
        kwargs = {"num_outputs": num_outputs, "kernel_size": 3, "stride": 2, "rate": 2,
                  "activation_fn": None, "weights_initializer": {"__array__": "depthwise"},
                  "pointwise_initializer": {"__array__": "pointwise"}}
        g = T.tf.Graph()
        with g.as_default():
            init = T.v1.constant_initializer
            y = T.slim.separable_conv2d(T.tf.constant(x), num_outputs, 3, stride=2, rate=2,
                                        activation_fn=None, weights_initializer=init(dw),
                                        pointwise_initializer=init(pw))
            with T.v1.Session(graph=g) as sess:
                sess.run(T.v1.global_variables_initializer())
                y = sess.run(y)
        ref = ref_depthwise(x, dw, (2, 2), ((2, 2), (2, 2)), (2, 2))
        if num_outputs:
            ref = ref @ pw[0, 0].astype(np.float64)
        arrays[cid + "/input"] = x
        arrays[cid + "/depthwise"] = dw
        arrays[cid + "/pointwise"] = pw
        arrays[cid + "/tf_output"] = y
        out.append({"id": cid, "function": "separable_conv2d", "dtype": "float32",
                    "data_format": "NHWC", "kwargs": kwargs, "input_shape": list(x.shape),
                    "error": {"type": "ValueError", "tf": "warns and computes"},
                    "tf_wrong_by": float(np.max(np.abs(y - ref))) if y.shape == ref.shape
                    else None})
    return out


def generate(seed=0, n_depthwise=120, n_separable=50, n_slim=90):
    """(configs, arrays, meta) computed by TensorFlow."""
    T = _TF()
    rng = np.random.default_rng(seed)
    configs, arrays = [], {}
    i = 0
    for kind, count in (("dw", n_depthwise), ("sep", n_separable), ("slim", n_slim)):
        for _ in range(count):
            cid = f"c{i}"
            i += 1
            if kind == "slim":
                cfg, _ = _slim_config(T, rng, cid, arrays)
            else:
                cfg, _ = _nn_config(T, rng, cid, arrays, kind == "sep")
            lim = {"float64": 1e-9, "float32": 1e-3, "float16": 0.5}[cfg["dtype"]]
            if cfg.get("ref_max_abs_err", 0.0) > lim * max(
                    1.0, float(np.max(np.abs(arrays[cid + "/expected"])))):
                raise AssertionError(f"TF differs from the float64 formula: {cfg}")
            configs.append(cfg)
    configs += _error_configs(T, rng, arrays, i)
    meta = {"family": FAMILY, "seed": seed, "versions": T.versions()}
    return configs, arrays, meta


def save(configs, arrays, meta, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, FAMILY + ".npz")
    np.savez_compressed(path, configs=np.array(json.dumps(configs)),
                        meta=np.array(json.dumps(meta)), **arrays)
    return path


def load(path):
    data = np.load(path, allow_pickle=False)
    return json.loads(str(data["configs"])), {k: data[k] for k in data.files
                                             if k not in ("configs", "meta")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=9)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    configs, arrays, meta = generate(args.seed)
    path = save(configs, arrays, meta, args.out)
    kinds = {}
    for c in configs:
        kinds[c["function"]] = kinds.get(c["function"], 0) + 1
    print(f"{path}: {len(configs)} configs {kinds}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
