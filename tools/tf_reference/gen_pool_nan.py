"""TF fixtures for max pooling over NaN and infinities (issue 14 A5).

    TF_ENABLE_ONEDNN_OPTS=0 /work/venvs/tfextra/bin/python tools/tf_reference/gen_pool_nan.py

writes tests/fixtures/tf/pool_nan.npz, replayed by tests/test_pool_nan_fixtures.py.
Each case: an input with NaN, +inf and -inf sprinkled at random (and whole
windows of -inf or NaN), `slim.max_pool2d` and `slim.avg_pool2d` on it in
graph mode, with the arguments stored beside the TF output. Channel counts
cover TF's vectorised and scalar remainders (1..33), float32 and float64,
NHWC, SAME and VALID, windows up to 4 x 4 and strides 1..3.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from generate_fixtures import _TF  # noqa: E402  (the tf_keras shim, versions)

OUT = os.path.join(HERE, "..", "..", "tests", "fixtures", "tf", "pool_nan.npz")


def cases(rng, n=48):
    for i in range(n):
        c = int(rng.choice([1, 3, 4, 5, 8, 9, 16, 17, 33]))
        h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = str(rng.choice(["SAME", "VALID"]))
        if padding == "VALID" and (h < k[0] or w < k[1]):
            padding = "SAME"
        dtype = np.float32 if i % 3 else np.float64
        x = rng.standard_normal((int(rng.integers(1, 3)), h, w, c)).astype(dtype)
        u = rng.random(x.shape)
        x[u < 0.1] = np.nan
        x[(u >= 0.1) & (u < 0.2)] = -np.inf
        x[(u >= 0.2) & (u < 0.25)] = np.inf
        if i % 4 == 0:  # a block of only -inf (some windows see nothing else)
            x[:, : max(1, h // 2), : max(1, w // 2)] = -np.inf
        if i % 8 == 1:
            x[:, : max(1, h // 2), : max(1, w // 2)] = np.nan
        yield dict(kind="max" if i % 5 else "avg", k=k, s=s, padding=padding), x


def main():
    t = _TF()
    tf, v1, slim = t.tf, t.v1, t.slim
    rng = np.random.default_rng(2026)
    payload, meta = {}, []
    for i, (args, x) in enumerate(cases(rng)):
        g = tf.Graph()
        with g.as_default():
            ph = v1.placeholder(tf.as_dtype(x.dtype), x.shape)
            op = slim.max_pool2d if args["kind"] == "max" else slim.avg_pool2d
            y = op(ph, list(args["k"]), stride=list(args["s"]), padding=args["padding"])
            with v1.Session(graph=g) as sess:
                out = sess.run(y, {ph: x})
        payload[f"x{i}"] = x
        payload[f"y{i}"] = out
        meta.append(args)
    payload["meta"] = np.array(json.dumps({"cases": meta, "versions": t.versions()}))
    np.savez_compressed(OUT, **payload)
    print(f"{len(meta)} cases -> {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
