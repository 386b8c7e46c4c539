#!/usr/bin/env python3
"""TF fixtures for transposed convolution: ``tests/fixtures/tf/transpose.npz``.

Run inside the reference venv (ENVIRONMENT.md)::

    TF_CPP_MIN_LOG_LEVEL=2 /work/venvs/tfextra/bin/python tools/tf_reference/gen_transpose.py \
        --seed 20261201 --out tests/fixtures/tf

or import it and call ``generate(seed, scale)`` (the live ``-m tf`` tier does).
The file has ``generate_fixtures.py``'s format (configs/meta JSON, arrays
``<id>/...``) with three kinds of configs:

* ``function`` ``nn.conv2d_transpose`` / ``nn.conv2d_backprop_input``:
  ``tf.nn.conv2d_transpose`` / ``tf.compat.v1.nn.conv2d_backprop_input`` on
  random shapes, kernels, strides, paddings (SAME, VALID, TF's 4-pair
  explicit form) and every ``output_shape`` TF accepts for them (not only the
  smallest or largest), float16/32/64, batch 1..3. ``input_arg`` names the
  argument the stored ``input`` is passed as (``input`` / ``out_backprop``);
  the other arguments are ``kwargs`` (``{"__array__": "filters"}`` = the
  array ``<id>/filters``). TF's CPU kernel runs only NHWC: NCHW configs store
  NCHW arrays and the NHWC result transposed (``tf.ran_as``).
* ``function`` ``conv2d_transpose``: ``slim.conv2d_transpose`` in a TF1 graph,
  with and without ``slim.batch_norm`` (training and inference), biases or
  none, activations, scopes, regularizers; variable names, shapes,
  collections and initial values are stored as ``generate_fixtures`` does.
* ``steps`` + ``error``: calls TF refuses, with TF's exception type and
  message; ``match`` lists the phrases pyconv's message must contain.

Every output is also compared here with a float64 NumPy reference written
from the definition (each input pixel times the kernel added into its output
window): ``ref_max_abs_err``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate_fixtures as G

FAMILY = "transpose"


def ref_deconv(x, w, strides, pads, out_hw):
    """float64 NHWC transposed convolution by scattering: input pixel (i, j)
    times w[:, :, o, c] is added to the output window at (i*s - pad_top, j*s - pad_left)."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, h, wd, _ = x.shape
    kh, kw, cout, _ = w.shape
    (pt, _), (pl, _) = pads
    big = np.zeros((n, (h - 1) * strides[0] + kh + out_hw[0] + pt,
                    (wd - 1) * strides[1] + kw + out_hw[1] + pl, cout))
    for i in range(h):
        for j in range(wd):
            y0, x0 = i * strides[0], j * strides[1]
            big[:, y0:y0 + kh, x0:x0 + kw, :] += np.einsum("nc,hwoc->nhwo", x[:, i, j, :], w)
    return big[:, pt:pt + out_hw[0], pl:pl + out_hw[1], :]


def forward_pads(out, k, s, padding):
    """(before, after) of the forward conv from out to in (TF's rule)."""
    if padding == "SAME":
        n_in = -(-out // s)
        total = max((n_in - 1) * s + k - out, 0)
        return total // 2, total - total // 2
    if padding == "VALID":
        return 0, 0
    return tuple(padding)


def valid_outputs(n_in, k, s, padding):
    """Every output size TF accepts for an input of n_in along one dimension."""
    if padding == "SAME":
        return list(range(max(1, (n_in - 1) * s + 1), n_in * s + 1))
    before, after = (0, 0) if padding == "VALID" else padding
    lo = (n_in - 1) * s + k - before - after
    return [o for o in range(max(1, lo), lo + s)]


def _nn_configs(T, rng, n, arrays, start):
    tf = T.tf
    cfgs = []
    i = start
    while len(cfgs) < n:
        kh = int(rng.randint(1, 7))
        kw = kh if rng.rand() < 0.6 else int(rng.randint(1, 7))
        s = (int(rng.randint(1, 4)),) * 2 if rng.rand() < 0.75 else (
            int(rng.randint(1, 4)), int(rng.randint(1, 4)))
        H, W = int(rng.randint(1, 7)), int(rng.randint(1, 7))
        kind = rng.rand()
        if kind < 0.4:
            padding = "SAME"
        elif kind < 0.75:
            padding = "VALID"
        else:
            padding = [[int(rng.randint(0, kh + 1)), int(rng.randint(0, kh + 1))],
                       [int(rng.randint(0, kw + 1)), int(rng.randint(0, kw + 1))]]
        pad_hw = padding if isinstance(padding, str) else [tuple(p) for p in padding]
        outs_h = valid_outputs(H, kh, s[0], pad_hw if isinstance(pad_hw, str) else pad_hw[0])
        outs_w = valid_outputs(W, kw, s[1], pad_hw if isinstance(pad_hw, str) else pad_hw[1])
        if not outs_h or not outs_w:
            continue
        oh, ow = int(rng.choice(outs_h)), int(rng.choice(outs_w))
        N = int(rng.randint(1, 4))
        cin, cout = G._ch(rng), G._ch(rng)
        while kh * kw * cin * cout > 1500 or N * oh * ow * cout > 2000 or N * H * W * cin > 1200:
            if N > 1:
                N -= 1
            elif cin >= cout:
                cin = max(1, cin // 2)
            else:
                cout = max(1, cout // 2)
        r = rng.rand()
        dtype = "float32" if r < 0.5 else ("float64" if r < 0.85 else "float16")
        df = "NCHW" if rng.rand() < 0.3 else "NHWC"
        backprop = rng.rand() < 0.3
        x = G._rand_input(rng, (N, H, W, cin), dtype)
        w = (rng.randn(kh, kw, cout, cin) / math.sqrt(kh * kw * cin)).astype(dtype)
        if not isinstance(padding, str):
            tf_padding = [[0, 0], padding[0], padding[1], [0, 0]]
        else:
            tf_padding = padding
        shape_nhwc = [N, oh, ow, cout]
        strides4 = [1, s[0], s[1], 1]
        if backprop:
            y = tf.compat.v1.nn.conv2d_backprop_input(shape_nhwc, w, x, strides=strides4,
                                                      padding=tf_padding).numpy()
            call = "tf.compat.v1.nn.conv2d_backprop_input"
        else:
            y = tf.nn.conv2d_transpose(x, w, shape_nhwc, strides=list(s) if s[0] != s[1] or
                                       rng.rand() < 0.5 else s[0], padding=tf_padding).numpy()
            call = "tf.nn.conv2d_transpose"
        pads = tuple(forward_pads((oh, ow)[d], (kh, kw)[d], s[d],
                                  pad_hw if isinstance(pad_hw, str) else pad_hw[d])
                     for d in range(2))
        ref = ref_deconv(x, w, s, pads, (oh, ow))
        cid = "c%d" % i
        prefix = cid + "/"
        if df == "NCHW":
            shape = [N, cout, oh, ow]
            pyconv_padding = ([[0, 0], [0, 0], padding[0], padding[1]]
                              if not isinstance(padding, str) else padding)
            strides_arg = [1, 1, s[0], s[1]] if rng.rand() < 0.5 else list(s)
        else:
            shape = shape_nhwc
            pyconv_padding = tf_padding if rng.rand() < 0.7 else padding
            strides_arg = strides4 if rng.rand() < 0.5 else list(s)
        kwargs = {("filter" if backprop else "filters"): {"__array__": "filters"},
                  ("input_sizes" if backprop else "output_shape"): shape,
                  "strides": strides_arg, "padding": pyconv_padding}
        if df == "NCHW" or rng.rand() < 0.2:
            kwargs["data_format"] = df
        arrays[prefix + "input"] = G._to_nchw(x) if df == "NCHW" else x
        arrays[prefix + "filters"] = w
        arrays[prefix + "expected"] = G._to_nchw(y) if df == "NCHW" else y
        err = float(np.max(np.abs(y.astype(np.float64) - ref))) if y.size else 0.0
        cfg = {"id": cid, "family": FAMILY,
               "function": "nn.conv2d_backprop_input" if backprop else "nn.conv2d_transpose",
               "input_arg": "out_backprop" if backprop else "input",
               "kwargs": kwargs, "dtype": dtype, "data_format": df,
               "input_shape": list(arrays[prefix + "input"].shape),
               "expected_shape": list(arrays[prefix + "expected"].shape),
               "ref_max_abs_err": err,
               "tf": {"call": call, "ran_as": "NHWC+transpose" if df == "NCHW" else "NHWC",
                      "padding": tf_padding, "strides": strides4}}
        lim = {"float64": 1e-10, "float32": 1e-4, "float16": 5e-2}[dtype]
        if err > lim * max(1.0, float(np.max(np.abs(ref)))):
            print("WARNING: %s differs from the NumPy reference by %g" % (cid, err),
                  file=sys.stderr)
            cfg["ref_mismatch"] = True
        cfgs.append(cfg)
        i += 1
    return cfgs


def _slim_configs(T, rng, n, arrays, start):
    cfgs = []
    i = start
    while len(cfgs) < n:
        kh = int(rng.randint(1, 6))
        kw = kh if rng.rand() < 0.6 else int(rng.randint(1, 6))
        s = (int(rng.randint(1, 4)),) * 2 if rng.rand() < 0.8 else (
            int(rng.randint(1, 4)), int(rng.randint(1, 4)))
        padding = "SAME" if rng.rand() < 0.5 else "VALID"
        H, W = int(rng.randint(1, 7)), int(rng.randint(1, 7))
        N = int(rng.randint(1, 4))
        cin, cout = G._ch(rng), G._ch(rng)
        oh = H * s[0] + (max(kh - s[0], 0) if padding == "VALID" else 0)
        ow = W * s[1] + (max(kw - s[1], 0) if padding == "VALID" else 0)
        while kh * kw * cin * cout > 1500 or N * oh * ow * cout > 2000 or N * H * W * cin > 1200:
            if N > 1:
                N -= 1
            elif cin >= cout:
                cin = max(1, cin // 2)
            else:
                cout = max(1, cout // 2)
        dtype = "float32" if rng.rand() < 0.6 else "float64"
        df = "NCHW" if rng.rand() < 0.3 else "NHWC"
        act = [None, "relu", "relu6"][int(rng.randint(0, 3))]
        use_bn = rng.rand() < 0.3
        use_bias = rng.rand() < 0.75
        cid = "c%d" % i
        prefix = cid + "/"
        scope = None if rng.rand() < 0.5 else "deconv%d" % int(rng.randint(1, 6))
        outer = "gen" if rng.rand() < 0.2 else None
        base = ((outer + "/") if outer else "") + (scope or "Conv2d_transpose")
        kw_ = {"num_outputs": cout, "kernel_size": G._maybe_pair(rng, kh, kw)}
        if s != (1, 1) or rng.rand() < 0.3:
            kw_["stride"] = G._maybe_pair(rng, *s)
        kw_["padding"] = padding
        if df == "NCHW" or rng.rand() < 0.2:
            kw_["data_format"] = df
        kw_["activation_fn"] = {"__fn__": act} if act else None
        w = (rng.randn(kh, kw, cout, cin) / math.sqrt(kh * kw * cin)).astype(dtype)
        arrays[prefix + "var/" + base + "/weights"] = w
        kw_["weights_initializer"] = {"__array__": "var/%s/weights" % base}
        bias = None
        bn = None
        if use_bn:
            center, scl = rng.rand() < 0.8, rng.rand() < 0.6
            p = G._bn_params(rng, cout, dtype, center, scl)
            np_ = {"is_training": bool(rng.rand() < 0.5), "center": center, "scale": scl}
            if rng.rand() < 0.7:
                np_["decay"] = float(rng.choice([0.9, 0.5, 0.99]))
            if df == "NCHW":
                np_["data_format"] = "NCHW"
            np_["param_initializers"] = {}
            for k_, v_ in p.items():
                arrays[prefix + "var/%s/BatchNorm/%s" % (base, k_)] = v_
                np_["param_initializers"][k_] = {"__array__": "var/%s/BatchNorm/%s" % (base, k_)}
            kw_["normalizer_fn"] = {"__fn__": "batch_norm"}
            kw_["normalizer_params"] = np_
            bn = (np_, p)
        elif use_bias:
            bias = (rng.randn(cout) * 0.5).astype(dtype)
            arrays[prefix + "var/" + base + "/biases"] = bias
            kw_["biases_initializer"] = {"__array__": "var/%s/biases" % base}
        else:
            kw_["biases_initializer"] = None
        if rng.rand() < 0.15:
            kw_["weights_regularizer"] = {"__regularizer__": ["l2", 0.01]}
        if scope:
            kw_["scope"] = scope
        x = G._rand_input(rng, (N, H, W, cin), dtype)
        cfg = {"id": cid, "family": FAMILY, "function": "conv2d_transpose", "kwargs": kw_,
               "dtype": dtype, "data_format": df}
        if outer:
            cfg["variable_scope"] = outer
        cfg["input_shape"] = list(G._to_nchw(x).shape if df == "NCHW" else x.shape)
        cfg["tf"] = {"call": G._tf_call_text(cfg, "slim.conv2d_transpose")}
        res, y = G._run_layer(T, cfg, arrays, prefix, x)
        arrays[prefix + "input"] = G._to_nchw(x) if df == "NCHW" else x
        pads = tuple(forward_pads((oh, ow)[d], (kh, kw)[d], s[d], padding) for d in range(2))
        ref = ref_deconv(x, w, s, pads, (oh, ow))
        if bias is not None:
            ref = ref + bias.astype(np.float64)
        tol = None
        if bn:
            np_, p = bn
            ref, mm, mv = G._ref_bn(ref, 3, np_["is_training"], np_.get("decay", 0.999), 0.001,
                                    p.get("beta"), p.get("gamma"),
                                    p["moving_mean"].astype(np.float64),
                                    p["moving_variance"].astype(np.float64), res["fused"])
            tol = (1e-9, 1e-9) if dtype == "float64" else (1e-4, 5e-4)
            if np_["is_training"]:
                G._check_after(cfg, res, base + "/BatchNorm", mm, mv)
        ref = G._ref_act(ref, act)
        if df == "NCHW":
            ref = G._to_nchw(ref)
        G._finish(cfg, arrays, prefix, res, y, ref, tol)
        cfgs.append(cfg)
        i += 1
    return cfgs


def _strip_tf(message):
    """TF's message without the '{{function_node ...}} ' prefix and ' [Op:...]' suffix."""
    if message.startswith("{{function_node"):
        message = message.split("}} ", 1)[-1]
    return message.split(" [Op:")[0].strip()


def _error_configs(T, rng, arrays, start):
    tf = T.tf
    x = np.random.RandomState(7).uniform(-1, 1, (1, 4, 4, 2)).astype(np.float32)
    w = np.random.RandomState(8).uniform(-1, 1, (3, 3, 5, 2)).astype(np.float32)
    cases = [
        # (note, kwargs for pyconv (filters = the array), tf call, phrases pyconv must contain;
        #  None = TF's own message)
        ("output_shape too large for SAME", {"output_shape": [1, 9, 9, 5], "strides": 2},
         None),
        ("output_shape too small for SAME", {"output_shape": [1, 6, 8, 5], "strides": 2}, None),
        ("output_shape too large for VALID",
         {"output_shape": [1, 11, 9, 5], "strides": 2, "padding": "VALID"}, None),
        ("output_shape too small for VALID",
         {"output_shape": [1, 9, 8, 5], "strides": 2, "padding": "VALID"}, None),
        ("explicit pads that do not fit the output_shape",
         {"output_shape": [1, 4, 4, 5], "strides": 1,
          "padding": [[0, 0], [5, 5], [5, 5], [0, 0]]}, None),
        ("zero output height", {"output_shape": [1, 0, 8, 5], "strides": 2}, None),
        ("negative output height", {"output_shape": [1, -8, 8, 5], "strides": 2}, None),
        ("output channels differ from the filters'",
         {"output_shape": [1, 8, 8, 4], "strides": 2}, None),
        ("output batch differs from the input's", {"output_shape": [2, 8, 8, 5], "strides": 2},
         None),
        ("output_shape of 3 values", {"output_shape": [8, 8, 5], "strides": 2}, None),
        ("dilations > 1", {"output_shape": [1, 4, 4, 5], "strides": 1, "dilations": 2}, None),
        ("strides in the batch dimension",
         {"output_shape": [1, 8, 8, 5], "strides": [2, 2, 2, 2]}, ["strides"]),
        ("negative explicit pad",
         {"output_shape": [1, 8, 8, 5], "strides": 2,
          "padding": [[0, 0], [-1, 1], [1, 0], [0, 0]]}, ["padding", "-1"]),
        ("padding FULLY", {"output_shape": [1, 8, 8, 5], "strides": 2, "padding": "FULLY"},
         ["padding"]),
        ("filters of rank 3", {"output_shape": [1, 8, 8, 5], "strides": 2, "_w": "rank3"},
         None),
        ("filters' in channels differ from the input's",
         {"output_shape": [1, 8, 8, 5], "strides": 2, "_w": "cin1"}, None),
    ]
    cfgs = []
    for k, (note, kwargs, phrases) in enumerate(cases):
        cid = "c%d" % (start + k)
        prefix = cid + "/"
        kw = dict(kwargs)
        which = kw.pop("_w", None)
        wk = w if which is None else (w[0] if which == "rank3" else w[:, :, :, :1])
        arrays[prefix + "input"] = x
        arrays[prefix + "filters"] = wk
        try:
            tf.nn.conv2d_transpose(x, wk, **kw)
        except Exception as e:  # noqa: BLE001
            tf_type, tf_message = type(e).__name__, _strip_tf(str(e))
        else:
            raise AssertionError("TF accepted %s" % note)
        pyconv_type = "TypeError" if tf_type == "TypeError" else "ValueError"
        cfg = {"id": cid, "family": FAMILY, "note": note,
               "function": "nn.conv2d_transpose", "input_arg": "input",
               "kwargs": dict(kw, filters={"__array__": "filters"}), "dtype": "float32",
               "error": {"type": tf_type, "tf_message": tf_message,
                         "pyconv_expected_type": pyconv_type,
                         "match": phrases if phrases is not None else [tf_message]}}
        cfgs.append(cfg)
    # the slim layer: TF's data_format message
    cid = "c%d" % (start + len(cases))
    arrays[cid + "/input"] = x
    g = tf.Graph()
    with g.as_default():
        try:
            T.slim.conv2d_transpose(tf.constant(x), 3, 3, data_format="NHCW")
        except Exception as e:  # noqa: BLE001
            tf_type, tf_message = type(e).__name__, str(e)
    cfgs.append({"id": cid, "family": FAMILY, "note": "slim layer: bad data_format",
                 "function": "conv2d_transpose", "input_arg": "inputs",
                 "kwargs": {"num_outputs": 3, "kernel_size": 3, "data_format": "NHCW"},
                 "dtype": "float32",
                 "error": {"type": tf_type, "tf_message": tf_message,
                           "pyconv_expected_type": "ValueError",
                           "match": ["data_format has to be either NCHW or NHWC"]}})
    return cfgs


def generate(seed=20261201, n_nn=140, n_slim=80, errors=True):
    """(configs, arrays, meta) computed by TensorFlow now."""
    T = G._TF()
    T.ops["conv2d_transpose"] = T.slim.conv2d_transpose
    rng = np.random.RandomState(seed)
    arrays = {}
    configs = _nn_configs(T, rng, n_nn, arrays, 0)
    configs += _slim_configs(T, rng, n_slim, arrays, len(configs))
    if errors:
        configs += _error_configs(T, rng, arrays, len(configs))
    for c in configs:
        G._strip_private(c)
    meta = {"format_version": G.FORMAT_VERSION, "family": FAMILY, "seed": seed,
            "versions": T.versions()}
    return configs, arrays, meta


def save(configs, arrays, meta, out_dir):
    path = os.path.join(out_dir, FAMILY + ".npz")
    np.savez_compressed(path, configs=np.array(json.dumps(configs)),
                        meta=np.array(json.dumps(meta)), **arrays)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--out", default=G.DEFAULT_OUT)
    args = ap.parse_args(argv)
    configs, arrays, meta = generate(args.seed)
    path = save(configs, arrays, meta, args.out)
    kinds = {}
    for c in configs:
        key = "error" if "error" in c else c["function"]
        kinds[key] = kinds.get(key, 0) + 1
    print("wrote %s: %s" % (path, kinds))
    bad = [c["id"] for c in configs if c.get("ref_mismatch")]
    if bad:
        print("TF differs from the float64 reference in: %s" % bad, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
