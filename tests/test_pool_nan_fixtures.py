"""Replays tests/fixtures/tf/pool_nan.npz (tools/tf_reference/gen_pool_nan.py):
TF 2.21's slim.max_pool2d / avg_pool2d over inputs with NaN, +inf and -inf.
Max pooling must agree bit for bit (NaN never wins; windows of only -inf or
NaN give the lowest finite value); average pooling where NaN and inf
propagate, and within float rounding elsewhere."""
import json
import os

import numpy as np
import pytest

import pyconv as slim

PATH = os.path.join(os.path.dirname(__file__), "fixtures", "tf", "pool_nan.npz")
with np.load(PATH) as _npz:
    DATA = {k: _npz[k] for k in _npz.files}
CASES = json.loads(str(DATA["meta"]))["cases"]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_pool_nan_fixture(i):
    args, x, want = CASES[i], DATA[f"x{i}"], DATA[f"y{i}"]
    op = slim.max_pool2d if args["kind"] == "max" else slim.avg_pool2d
    got = op(x, args["k"], stride=args["s"], padding=args["padding"])
    assert got.dtype == want.dtype and got.shape == want.shape
    if args["kind"] == "max":
        np.testing.assert_array_equal(got, want)
    else:
        tol = 1e-6 if x.dtype == np.float32 else 1e-14
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)  # NaN == NaN, inf == inf


def test_fixture_covers_the_nan_rule():
    maxes = [i for i, a in enumerate(CASES) if a["kind"] == "max"]
    lowest = sum(int((DATA[f"y{i}"] == np.finfo(DATA[f"y{i}"].dtype).min).sum()) for i in maxes)
    nan_in = sum(int(np.isnan(DATA[f"x{i}"]).sum()) for i in maxes)
    assert lowest > 0 and nan_in > 0
    assert not any(np.isnan(DATA[f"y{i}"]).any() for i in maxes)
