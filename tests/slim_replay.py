"""Replays one TF/TF-Slim configuration through pyconv and compares: the one
comparison used by both the fixture replay (tests/test_slim_fixtures.py) and
the live tier (tests/test_tf_live.py).

A configuration is a dict in the format of
``tools/tf_reference/generate_fixtures.py`` (its module docstring); ``data``
maps ``'<id>/<key>'`` to arrays: an opened ``.npz`` fixture for the replay,
the ``arrays`` dict of ``generate()`` for the live tier.

Tolerance (the only place it is set; README "Fidelity" quotes it): an array
matches when

    max |pyconv - TF| / max(1, max |TF|)  <=  TOLERANCE[dtype]

with TOLERANCE float32 1e-5, float64 1e-12 (float16 1e-2). That scale is the
output's own magnitude, floored at 1 so that outputs which are (nearly) all
zero, e.g. after relu, are held to an absolute bound. The same rule covers
layer outputs, batch-norm moving statistics after the update and
regularization losses. One widening: where TF's own output is further from
the exact (float64 NumPy) formula than that, by ``ref_max_abs_err`` which the
generator stores, a layer output may differ from TF by up to 4 times that
(the generator's own rule). Only ill-conditioned cases need it, e.g. a
training-mode batch norm of two nearly equal float32 conv outputs, where
rounding is amplified by 1/sqrt(variance + epsilon); TF's distance from the
formula is itself checked (``tf_self_check``). The per-config
``rtol``/``atol`` the generator writes are not used. Shapes must match
exactly.

``MAX_ERROR[(tier, dtype)]`` keeps the largest scaled error seen (and where);
tests/conftest.py prints it in the terminal summary.
"""

import numpy as np
import pytest

import pyconv as slim

TOLERANCE = {"float16": 1e-2, "float32": 1e-5, "float64": 1e-12}

# (tier, dtype) -> (largest scaled error, "family/id what")
MAX_ERROR = {}

COLLECTION_KEYS = {
    "global_variables": slim.GraphKeys.GLOBAL_VARIABLES,
    "model_variables": slim.GraphKeys.MODEL_VARIABLES,
    "trainable_variables": slim.GraphKeys.TRAINABLE_VARIABLES,
}

# The messages TF-Slim users grep for; they survive verbatim where slim owns them.
SLIM_PHRASES = ("Convolution expects input with rank", "already exists", "does not exist",
                "cannot be used without a name_or_scope", "Trying to share variable",
                "data_format has to be either")


def _scale(expected):
    e = np.asarray(expected, np.float64)
    return max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0


def scaled_error(actual, expected):
    """max |actual - expected| / max(1, max |expected|) in float64."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    if e.size == 0:
        return 0.0
    return float(np.max(np.abs(a - e)) / _scale(e))


def close(actual, expected, dtype, what, tier, tf_error=0.0):
    """Asserts the shape and TOLERANCE[dtype] (widened to 4 * tf_error, TF's own
    max distance from the float64 formula, where that is larger); records the
    error in MAX_ERROR."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != TF {expected.shape}"
    if dtype not in TOLERANCE:  # integers: exact, in TF's dtype
        assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != TF's"
        np.testing.assert_array_equal(actual, expected, err_msg=what)
        return
    err = scaled_error(actual, expected)
    key = (tier, dtype)
    if err > MAX_ERROR.get(key, (-1.0,))[0]:
        MAX_ERROR[key] = (err, what)
    tol = max(TOLERANCE[dtype], 4 * tf_error / _scale(expected))
    if not err <= tol:  # also catches NaN
        bad = np.unravel_index(
            np.argmax(np.abs(actual.astype(np.float64) - expected)), expected.shape)
        raise AssertionError(
            f"{what}: scaled error {err:.3g} > {tol:.3g} ({dtype}); first worst element {bad}: "
            f"pyconv {actual[bad]!r}, TF {expected[bad]!r}")


def function(name):
    if name.startswith("nn."):
        return getattr(slim.nn, name[3:])
    return getattr(slim, name)


def regularizer(kind, *scales):
    return {"l1": slim.l1_regularizer, "l2": slim.l2_regularizer,
            "l1_l2": slim.l1_l2_regularizer}[kind](*scales)


def resolve(obj, data, cid):
    """The config's special JSON values as pyconv objects (format: generate_fixtures)."""
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return data[f"{cid}/{obj['__array__']}"]
        if set(obj) == {"__fn__"}:
            return function(obj["__fn__"])
        if set(obj) == {"__regularizer__"}:
            return regularizer(*obj["__regularizer__"])
        if set(obj) == {"__np__"}:  # a NumPy scalar argument, e.g. decay=np.float64(0.9)
            return np.dtype(obj["__np__"][0]).type(obj["__np__"][1])
        if set(obj) == {"__set__"}:
            return set(obj["__set__"])
        return {k: resolve(v, data, cid) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, data, cid) for v in obj]
    return obj


class Scopes:
    """Enter a config's variable_scope and arg_scope list around a call."""

    def __init__(self, arg_scopes, variable_scope, data, cid, name_scope=None):
        self.managers = []
        if name_scope:
            self.managers.append(slim.name_scope(name_scope))
        if variable_scope:
            if isinstance(variable_scope, dict):
                reuse = variable_scope.get("reuse")
                reuse = slim.AUTO_REUSE if reuse == "AUTO_REUSE" else reuse
                reg = variable_scope.get("regularizer")
                self.managers.append(slim.variable_scope(
                    variable_scope["name"], reuse=reuse,
                    regularizer=resolve(reg, data, cid) if reg else None))
            else:
                self.managers.append(slim.variable_scope(variable_scope))
        for entry in arg_scopes or []:
            ops = [function(name) for name in entry["ops"]]
            self.managers.append(slim.arg_scope(ops, **resolve(entry["kwargs"], data, cid)))

    def __enter__(self):
        for m in self.managers:
            m.__enter__()

    def __exit__(self, *exc):
        for m in reversed(self.managers):
            m.__exit__(*exc)


def call(name, inputs, kwargs, data, cid, arg_scopes=None, variable_scope=None,
         name_scope=None):
    kwargs = resolve(kwargs, data, cid)
    with Scopes(arg_scopes, variable_scope, data, cid, name_scope):
        return function(name)(inputs, **kwargs)


def check_variables(cfg):
    created = slim.get_variables()
    expected = cfg["variables"]
    assert [v.name for v in created] == [e["name"] for e in expected]
    for var, e in zip(created, expected):
        assert var.shape == tuple(e["shape"]), var.name
        assert var.dtype == np.dtype(e["dtype"]), var.name
        assert var.trainable == e["trainable"], var.name
        for coll in e["collections"]:
            key = COLLECTION_KEYS.get(coll, coll)
            assert any(v is var for v in slim.get_collection(key)), (var.name, coll)
        for coll, key in COLLECTION_KEYS.items():
            if coll not in e["collections"]:
                assert not any(v is var for v in slim.get_collection(key)), (var.name, coll)


def check_collection_order(cfg):
    """Custom variable collections hold TF's variables in TF's order."""
    for key, names in (cfg.get("collection_order") or {}).items():
        assert [v.name for v in slim.get_collection(key)] == names, key


def check_after(cfg, data, store, tier):
    """Batch-norm moving statistics after the call vs TF after its UPDATE_OPS:
    as many updates queued as TF's, then run as TF's generator ran them."""
    if "n_update_ops" in cfg:
        assert len(slim.get_collection(slim.GraphKeys.UPDATE_OPS)) == cfg["n_update_ops"]
    slim.run_update_ops()
    for name in cfg.get("updated", []):
        expected = data[f"{cfg['id']}/after/{name}"]
        close(store[name], expected, str(expected.dtype), f"{_where(cfg)} after/{name}", tier)


def check_regularization(cfg, data, tier):
    items = slim.get_collection(slim.GraphKeys.REGULARIZATION_LOSSES)
    expected = cfg["regularization_losses"]
    assert len(items) == len(expected)
    for item, e in zip(items, expected):
        value = np.asarray(data[f"{cfg['id']}/{e['key']}"])
        close(np.asarray(float(item), value.dtype), value, str(value.dtype),
              f"{_where(cfg)} {e['key']}", tier)
        assert item.name == e["tf_name"]


def _where(cfg):
    return f"{cfg.get('family', '?')}/{cfg['id']}"


def _single(cfg, data, tier):
    cid = cfg["id"]
    x = data[f"{cid}/input"]
    with slim.VariableStore(seed=0) as store:
        if cfg["function"].startswith("nn."):
            out = function(cfg["function"])(x, **resolve(cfg["kwargs"], data, cid))
            close(out, data[f"{cid}/expected"], cfg["dtype"], _where(cfg), tier,
                  cfg.get("ref_max_abs_err", 0.0))
            return out
        out = call(cfg["function"], x, cfg["kwargs"], data, cid, cfg.get("arg_scope"),
                   cfg.get("variable_scope"))
        if cfg.get("returns_input_object"):
            assert out is x
        assert out.dtype == np.dtype(cfg["dtype"])
        close(out, data[f"{cid}/expected"], cfg["dtype"], _where(cfg), tier,
              cfg.get("ref_max_abs_err", 0.0))
        check_variables(cfg)
        check_collection_order(cfg)
        check_after(cfg, data, store, tier)
        check_regularization(cfg, data, tier)
        if cfg["function"] == "conv2d_same":
            _conv2d_same_companions(cfg, data, x, out, tier)
        return out


def _conv2d_same_companions(cfg, data, x, out, tier):
    """The seed's identity, both in TF and in pyconv, under the config's arg_scope:
    conv2d_same == conv2d(stride 1, SAME) + subsample, and plain
    conv2d(stride s, SAME) differs exactly where TF's differs."""
    cid, kw = cfg["id"], cfg["kwargs"]
    comp = cfg["companions"]
    stride, rate = kw["stride"], kw.get("rate", 1)
    scope = cfg["variables"][0]["name"].rsplit("/", 1)[0]
    dense_tf = data[f"{cid}/{comp['conv2d_stride1_same_then_subsample']}"]
    assert comp["equals_stride1_then_subsample"], "TF: conv2d_same != conv2d + subsample"
    close(dense_tf, data[f"{cid}/expected"], cfg["dtype"],
          f"{_where(cfg)} TF conv2d_same vs TF conv2d(stride 1)+subsample", tier)
    with Scopes(cfg.get("arg_scope"), None, data, cid):
        dense = slim.subsample(slim.conv2d(x, kw["num_outputs"], kw["kernel_size"], stride=1,
                                           rate=rate, padding="SAME", scope=scope, reuse=True),
                               stride)
        close(dense, dense_tf, cfg["dtype"], f"{_where(cfg)} conv2d(stride 1)+subsample", tier)
        if comp.get("conv2d_strided_same"):
            strided_tf = data[f"{cid}/{comp['conv2d_strided_same']}"]
            strided = slim.conv2d(x, kw["num_outputs"], kw["kernel_size"], stride=stride,
                                  padding="SAME", scope=scope, reuse=True)
            close(strided, strided_tf, cfg["dtype"], f"{_where(cfg)} conv2d(stride s, SAME)",
                  tier)
            differs = scaled_error(strided, out) > TOLERANCE[cfg["dtype"]]
            assert differs == comp["strided_same_differs"], _where(cfg)


def _sequence(cfg, data, tier):
    cid = cfg["id"]
    outputs = {"input": data[f"{cid}/input"]}
    with slim.VariableStore(seed=0) as store:
        for i, step in enumerate(cfg["steps"]):
            inputs = outputs.get(step["input"])
            if inputs is None:
                inputs = data[f"{cid}/{step['input']}"]
            out = call(step["function"], inputs, step["kwargs"], data, cid,
                       step.get("arg_scope"), step.get("variable_scope"), step.get("name_scope"))
            outputs[f"step{i}"] = out
            if step.get("expected"):
                close(out, data[f"{cid}/{step['expected']}"], cfg["dtype"],
                      f"{_where(cfg)} step {i}", tier)
        check_variables(cfg)
        check_after(cfg, data, store, tier)
        check_regularization(cfg, data, tier)
        for coll, aliases in (cfg.get("collections") or {}).items():
            assert list(slim.convert_collection_to_dict(coll)) == aliases


def _error(cfg, data, tier):
    cid = cfg["id"]
    outputs = {}
    error = cfg["error"]

    def inputs(key):
        return outputs[key] if key in outputs else data[f"{cid}/{key}"]

    with slim.VariableStore(seed=0):
        *setup, last = cfg["steps"]
        for i, step in enumerate(setup):
            outputs[f"step{i}"] = call(step["function"], inputs(step["input"]), step["kwargs"],
                                       data, cid, step.get("arg_scope"),
                                       step.get("variable_scope"))
        before = [v.name for v in slim.get_variables()]
        args = (last["function"], inputs(last["input"]), last["kwargs"], data, cid,
                last.get("arg_scope"), last.get("variable_scope"))
        if error["pyconv_expected_type"].startswith("none"):
            call(*args)  # pyconv computes what TF refuses (SPEC: integers as float32)
            return
        exc_type = {"ValueError": ValueError, "TypeError": TypeError,
                    "AttributeError": AttributeError,
                    "UnimplementedError": NotImplementedError}[error["pyconv_expected_type"]]
        with pytest.raises(exc_type) as exc:
            call(*args)
        message, tf_message = str(exc.value), error["tf_message"]
        for phrase in SLIM_PHRASES:
            if phrase in tf_message:
                assert phrase in message, (phrase, message)
        if tf_message.startswith("Invalid data_format"):
            assert "data_format" in message
        if "dilation_rate" in tf_message:
            assert "dilation_rate" in message and "stride" in message
        if "padding" in tf_message and "Received: vaild" in tf_message:
            assert "VALID" in message
        # TF creates a layer's variables before some of its checks fail
        # (stride with rate, negative output size); pyconv checks first, so a
        # refused call leaves the store as it was.
        assert [v.name for v in slim.get_variables()] == before
        assert set(before) <= {v["name"] for v in cfg["variables_before_error"]}


def replay(cfg, data, tier="replay"):
    """Runs one configuration of any family through pyconv and compares it with TF."""
    if "steps" in cfg:
        return (_error if "error" in cfg else _sequence)(cfg, data, tier)
    return _single(cfg, data, tier)


def tf_self_check(cfg):
    """The generator's own checks of TF against the float64 NumPy formulas
    (a failure here is TF's, or the formulas', not pyconv's)."""
    tf = cfg.get("tf", {})
    problems = []
    if cfg.get("ref_mismatch"):
        problems.append("TF differs from the float64 NumPy reference")
    for key, text in (("moving_stats_match_formula", "moving statistics differ from the formula"),
                      ("nhwc_check", "TF NCHW and NHWC disagree"),
                      ("native_explicit_padding_agrees",
                       "TF's native explicit padding differs from np.pad + VALID")):
        if tf.get(key) is False:
            problems.append(text)
    if (cfg.get("companions") or {}).get("equals_stride1_then_subsample") is False:
        problems.append("TF conv2d_same != conv2d(stride 1) + subsample")
    return problems
