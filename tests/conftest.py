import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile("long", max_examples=3000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_collection_modifyitems(config, items):
    """The live TensorFlow tier (-m tf) runs only where TensorFlow is installed."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is not None:
        return
    skip = pytest.mark.skip(reason="TensorFlow is not installed: the live tier (-m tf) needs "
                                   "`pip install .[tf]` (see tools/tf_reference/ENVIRONMENT.md)")
    for item in items:
        if item.get_closest_marker("tf") is not None:
            item.add_marker(skip)


def _isas():
    from pyconv import _conv

    return list(_conv.available_isas())


@pytest.fixture(params=_isas())
def each_isa(request):
    """Runs a test once per instruction set this CPU supports, then restores the default."""
    from pyconv import _conv

    before = _conv.isa()
    _conv.set_isa(request.param)
    try:
        yield request.param
    finally:
        _conv.set_isa(before)


def pytest_terminal_summary(terminalreporter):
    """Reports the largest error against the float64 reference per dtype, and
    against TensorFlow (fixture replay and live tier) per dtype."""
    mod = sys.modules.get("test_nn")
    errors = getattr(mod, "MAX_ERROR", None)
    if errors:
        parts = ", ".join(f"{k} {v:.2e}" for k, v in sorted(errors.items()))
        terminalreporter.write_line(
            f"largest error vs the float64 reference, relative to sum|x||w|: {parts}")
    replay = sys.modules.get("slim_replay")
    tf_errors = getattr(replay, "MAX_ERROR", None)
    for tier in ("replay", "live"):
        found = {d: v for (t, d), v in sorted((tf_errors or {}).items()) if t == tier}
        if not found:
            continue
        parts = ", ".join(f"{d} {e:.2e} (tolerance {replay.TOLERANCE[d]:g}; {where})"
                          for d, (e, where) in found.items())
        source = "TF fixtures" if tier == "replay" else "live TensorFlow"
        terminalreporter.write_line(
            f"largest error vs {source}, max|diff| / max(1, max|TF|): {parts}")
    dw = sys.modules.get("test_depthwise")
    if dw is not None and getattr(dw, "MAX_ERROR", None):
        parts = ", ".join(f"{k} {v:.2e}" for k, v in sorted(dw.MAX_ERROR.items()))
        terminalreporter.write_line(
            f"depthwise/separable: largest error vs the float64 reference, relative to "
            f"sum|x||w|: {parts}")
    for tier in ("depthwise replay", "depthwise live"):
        found = {d: v for (t, d), v in sorted((tf_errors or {}).items()) if t == tier}
        if found:
            parts = ", ".join(f"{d} {e:.2e} (tolerance {replay.TOLERANCE[d]:g}; {where})"
                              for d, (e, where) in found.items())
            terminalreporter.write_line(
                f"{tier} vs TensorFlow, max|diff| / max(1, max|TF|): {parts}")
    live = sys.modules.get("test_tf_live")
    if live is not None and getattr(live, "GENERATED", None):
        terminalreporter.write_line(
            f"live TF tier: seed {live.SEED} (repeat with PYCONV_TF_SEED={live.SEED}), "
            f"{live.GENERATED}")
    nets = sys.modules.get("nets_replay")
    for tier in ("replay", "live"):
        found = sorted((net, e, cid) for (t, net), (e, cid) in
                       (getattr(nets, "MAX_ERROR", None) or {}).items() if t == tier)
        if found:
            source = "TF net fixtures" if tier == "replay" else "live TensorFlow checkpoints"
            terminalreporter.write_line(
                f"largest error per net vs {source}, max|diff| / max(1, max|TF|) over output, "
                f"sampled end points and moving statistics (tolerance {nets.TOLERANCE:g}):")
            terminalreporter.write_line(
                "  " + ", ".join(f"{net} {e:.1e}" for net, e, _ in found))
    nets_live = sys.modules.get("test_nets_live")
    if nets_live is not None and (getattr(nets, "MAX_ERROR", None) or {}) and any(
            t == "live" for t, _ in nets.MAX_ERROR):
        terminalreporter.write_line(f"live net tier: seed {nets_live.SEED} (repeat with "
                                    f"PYCONV_TF_SEED={nets_live.SEED})")
    transpose = sys.modules.get("test_transpose")
    for name, what in (("MAX_ERROR", "transposed conv vs TF, max|diff| / max(1, max|TF|)"),
                       ("MAX_REF_ERROR", ("transposed conv vs the float64 definition, "
                                          "relative to sum|x||w|"))):
        found = getattr(transpose, name, None) if transpose is not None else None
        if found:
            parts = ", ".join(f"{k if isinstance(k, str) else '/'.join(k)} "
                              f"{v if isinstance(v, float) else v[0]:.2e}"
                              for k, v in sorted(found.items()))
            terminalreporter.write_line(f"largest error, {what}: {parts}")
