"""Live tier: pyconv against the installed TensorFlow + TF-Slim, on fresh configurations.

Runs only with ``-m tf`` where TensorFlow is installed (``pip install .[tf]``;
tests/conftest.py skips it otherwise)::

    python -m pytest -m tf tests/test_tf_live.py
    PYCONV_TF_SEED=1234 python -m pytest -m tf tests/test_tf_live.py   # repeat a run

The generator of the committed fixtures (tools/tf_reference/generate_fixtures.py)
is called with a fresh seed (``PYCONV_TF_SEED``, else time-based; printed in
the terminal summary and in every failure) for every family, and each
configuration is compared on the spot by the same code as the fixture replay
(tests/slim_replay.py: outputs, variables, collections, moving statistics,
losses, errors; same per-dtype tolerances). ``PYCONV_TF_LIVE_N`` sets the
number of conv2d configurations (default 160; the other families scale with it).

TensorFlow runs with ``TF_ENABLE_ONEDNN_OPTS=0`` (set here before TF is
imported, unless already set): TF 2.21's oneDNN float32 Conv2D gives wrong
numbers for batch > 1, in_channels == 1, stride (1, >1)
(tools/tf_reference/ENVIRONMENT.md).
"""

import os
import sys
import time

import pytest

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import slim_replay

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "tf_reference"))
import generate_fixtures

pytestmark = pytest.mark.tf

SEED = int(os.environ.get("PYCONV_TF_SEED") or (time.time_ns() // 1000) % (2 ** 31))
N_CONV = int(os.environ.get("PYCONV_TF_LIVE_N", "160"))
COUNTS = {"n_conv": N_CONV, "n_conv_same": max(4, N_CONV // 4),
          "n_subsample": max(4, N_CONV // 10), "n_pool": max(4, N_CONV * 3 // 8),
          "n_full_explicit": max(3, N_CONV * 3 // 16), "n_batch_norm": max(4, N_CONV * 3 // 16),
          "n_corners": max(18, N_CONV * 9 // 16)}
GENERATED = None  # summary line for the terminal report (tests/conftest.py)


@pytest.fixture(scope="module")
def families():
    global GENERATED
    start = time.perf_counter()
    fams = generate_fixtures.generate(SEED, **COUNTS)
    versions = next(iter(fams.values()))["meta"]["versions"]
    GENERATED = (
        f"{sum(len(d['configs']) for d in fams.values())} configurations ("
        + ", ".join(f"{f} {len(d['configs'])}" for f, d in fams.items())
        + f") from TensorFlow {versions.get('tensorflow')}, tf-slim {versions.get('tf_slim')}, "
        f"TF_ENABLE_ONEDNN_OPTS={versions.get('TF_ENABLE_ONEDNN_OPTS')}, "
        f"generated in {time.perf_counter() - start:.0f} s")
    print(f"\nlive TF tier: seed {SEED}: {GENERATED}")
    return fams


def _seed_note():
    return f"(seed {SEED}; repeat with PYCONV_TF_SEED={SEED} python -m pytest -m tf {__file__})"


def test_reference_environment(families):
    versions = next(iter(families.values()))["meta"]["versions"]
    assert versions["TF_ENABLE_ONEDNN_OPTS"] == "0", (
        "TensorFlow's oneDNN float32 conv is wrong for some shapes; run with "
        "TF_ENABLE_ONEDNN_OPTS=0 " + _seed_note())
    assert not versions["tf_imported_before_generator"] or \
        os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0", _seed_note()


@pytest.mark.parametrize("family", generate_fixtures.FAMILIES)
def test_tf_agrees_with_the_formulas(families, family):
    """TF itself against the generator's float64 NumPy formulas: a failure here
    is TensorFlow's (or the formulas'), not pyconv's."""
    problems = {c["id"]: p for c in families[family]["configs"]
                for p in [slim_replay.tf_self_check(c)] if p}
    assert not problems, f"{family}: {problems} {_seed_note()}"


@pytest.mark.parametrize("family", generate_fixtures.FAMILIES)
def test_pyconv_matches_live_tf(families, family):
    data = families[family]["arrays"]
    configs = families[family]["configs"]
    assert configs
    failures = []
    for cfg in configs:
        try:
            slim_replay.replay(cfg, data, tier="live")
        except Exception as e:  # noqa: BLE001 - collect all, report with the seed
            call = cfg.get("tf", {}).get("call") or cfg.get("note", "")
            failures.append(f"{family}/{cfg['id']}: {type(e).__name__}: "
                            f"{str(e).strip()[:600]}\n    TF call: {call}")
    assert not failures, (f"{len(failures)} of {len(configs)} {family} configurations differ "
                          f"from TensorFlow {_seed_note()}:\n" + "\n".join(failures[:10]))
