"""Replay of the golden fixtures computed by real TensorFlow / TF-Slim.

``tests/fixtures/tf/*.npz`` are written by ``tools/tf_reference/generate_fixtures.py``
(its module docstring describes the format; ``tools/tf_reference/FIXTURES.md``
counts what they cover). Each configuration is replayed through pyconv's slim
layers in a fresh ``VariableStore``: outputs, variable names/shapes/dtypes/
trainable flags/collections in creation order, batch-norm moving statistics
after the call, regularization losses, errors and their messages, and for
``conv2d_same`` the seed's identity (== conv2d(stride 1, SAME) + subsample;
plain conv2d(stride s, SAME) differs where TF's does), in TF and in pyconv.

The comparison is ``tests/slim_replay.py``, shared with the live tier
(``tests/test_tf_live.py``). Tolerance, per dtype and relative to the output's
scale:

    max |pyconv - TF| / max(1, max |TF|)  <=  1e-5 (float32), 1e-12 (float64)

for outputs, moving statistics and regularization losses; a layer output may
also differ by up to 4 times TF's own distance from the float64 formula where
that is larger (ill-conditioned cases only; no committed fixture needs it).
The largest error seen per dtype is printed at the end of the pytest run.
"""

import os
import sys

import numpy as np
import pytest
import slim_replay

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tf")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "tf_reference"))
import generate_fixtures  # pure Python until generate() is called

_CACHE = {}


def _family(family):
    if family not in _CACHE:
        path = os.path.join(FIXTURES, family + ".npz")
        if os.path.exists(path):
            configs, _, data = generate_fixtures.load_family(path)
            # np.load is lazy: decompress every array once, not on each access
            _CACHE[family] = ({k: data[k] for k in data.files}, configs)
        else:
            _CACHE[family] = (None, [])
    return _CACHE[family]


def _params(family):
    _, configs = _family(family)
    if not configs:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {family}.npz fixture"))]
    return [pytest.param(c, id=c["id"]) for c in configs]


@pytest.mark.parametrize("family", generate_fixtures.FAMILIES)
def test_fixtures_are_tf_verified(family):
    """The generator's own checks of TF against the float64 formulas passed."""
    _, configs = _family(family)
    assert configs, f"no {family}.npz fixture"
    problems = {c["id"]: p for c in configs for p in [slim_replay.tf_self_check(c)] if p}
    assert not problems


def test_fixture_coverage():
    """The axes promised in issue 3 (and listed in tools/tf_reference/FIXTURES.md)."""
    families = generate_fixtures.load_all(FIXTURES)
    assert generate_fixtures.check_coverage(families) == []


@pytest.mark.parametrize("cfg", _params("conv2d"))
def test_conv2d_fixtures(cfg):
    slim_replay.replay(cfg, _family("conv2d")[0])


@pytest.mark.parametrize("cfg", _params("conv2d_same"))
def test_conv2d_same_fixtures(cfg):
    slim_replay.replay(cfg, _family("conv2d_same")[0])


@pytest.mark.parametrize("cfg", _params("subsample"))
def test_subsample_fixtures(cfg):
    slim_replay.replay(cfg, _family("subsample")[0])


@pytest.mark.parametrize("cfg", _params("pool"))
def test_pool_fixtures(cfg):
    slim_replay.replay(cfg, _family("pool")[0])


@pytest.mark.parametrize("cfg", _params("full_explicit"))
def test_full_and_explicit_padding_fixtures(cfg):
    slim_replay.replay(cfg, _family("full_explicit")[0])


@pytest.mark.parametrize("cfg", _params("batch_norm"))
def test_batch_norm_fixtures(cfg):
    slim_replay.replay(cfg, _family("batch_norm")[0])


@pytest.mark.parametrize("cfg", _params("sequences"))
def test_sequence_fixtures(cfg):
    slim_replay.replay(cfg, _family("sequences")[0])


@pytest.mark.parametrize("cfg", _params("errors"))
def test_error_fixtures(cfg):
    slim_replay.replay(cfg, _family("errors")[0])


@pytest.mark.parametrize("cfg", _params("corners"))
def test_corner_fixtures(cfg):
    """Issue 14's corners (and batch norm's update paths) with fresh values."""
    slim_replay.replay(cfg, _family("corners")[0])


def test_tolerance_rule_is_scaled_by_the_output():
    # an error of 1e-6 on outputs of size ~100 is 1e-8 relative; on outputs <= 1, absolute
    assert slim_replay.scaled_error(np.array([100.0 + 1e-6]), np.array([100.0])) == \
        pytest.approx(1e-8)
    assert slim_replay.scaled_error(np.array([1e-6]), np.array([0.0])) == pytest.approx(1e-6)
    with pytest.raises(AssertionError, match="scaled error"):
        slim_replay.close(np.float32([1.0 + 1e-4]), np.float32([1.0]), "float32", "x", "selftest")
    # TF itself 1e-4 away from the exact formula: 4e-4 is allowed, 5e-4 is not
    slim_replay.close(np.float32([1.0 + 4e-4]), np.float32([1.0]), "float32", "x", "selftest",
                      tf_error=1e-4)
    with pytest.raises(AssertionError, match="scaled error"):
        slim_replay.close(np.float32([1.0 + 5e-4]), np.float32([1.0]), "float32", "x", "selftest",
                          tf_error=1e-4)
    slim_replay.MAX_ERROR.pop(("selftest", "float32"), None)
