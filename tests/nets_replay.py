"""Replays a TF run of a whole net (``tools/tf_reference/gen_nets.py``) on
pyconv: the weights are regenerated from the seed (``net_weights``), loaded
into a store before the net is built (the user's path), and the output, end
points, variables and (training) moving statistics compared with TF's."""

import importlib
import json
import os

import numpy as np

import pyconv as slim
from net_weights import net_input, net_weights

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tf", "nets")
TOLERANCE = 1e-4  # max|pyconv - TF| / max(1, max|TF|), float32
# Deep end points in training mode: batch norm re-normalises every layer with
# its batch statistics, amplifying float32 rounding; at ResNet-50's block4 both
# TF and pyconv differ from a float64 computation by ~1e-4 (pyconv the less).
TRAIN_END_POINT_TOLERANCE = 1e-3
MAX_ERROR = {}    # (tier, net) -> (error, config id)


def fixture_ids():
    if not os.path.isdir(FIXTURES):
        return []
    return sorted(f[:-4] for f in os.listdir(FIXTURES) if f.endswith(".npz"))


def load_fixture(config_id):
    with np.load(os.path.join(FIXTURES, config_id + ".npz"), allow_pickle=False) as z:
        record = json.loads(str(z["config"]))
        arrays = {k: z[k] for k in z.files if k != "config"}
    return record, arrays


def resolve_kwargs(module, kwargs):
    kwargs = dict(kwargs)
    if "blocks" in kwargs:
        block_fn = getattr(module, module.__name__.rsplit(".", 1)[-1] + "_block")
        kwargs["blocks"] = [block_fn(s, base_depth=b, num_units=n, stride=st)
                            for s, b, n, st in kwargs["blocks"]]
    return kwargs


def build(record, store_values):
    """Builds the config's net in a fresh store holding ``store_values`` (a
    mapping or a checkpoint path) as pending values; returns (out, end_points, store)."""
    module = importlib.import_module(f"pyconv.nets.{record['module']}")
    fn = getattr(module, record["fn"])
    kwargs = resolve_kwargs(module, record["kwargs"])
    x = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore(seed=0) as store:
        store.load(store_values)
        with slim.arg_scope(getattr(module, record["arg_scope"])(**record["arg_scope_kwargs"])):
            if "blocks" in kwargs:
                out, end_points = fn(x, kwargs.pop("blocks"), **kwargs)
            else:
                out, end_points = fn(x, **kwargs)
        if record["train"]:  # as TF ran UPDATE_OPS once after the forward pass
            assert len(slim.get_collection(slim.GraphKeys.UPDATE_OPS)) == record["n_update_ops"]
            slim.run_update_ops()
    return out, end_points, store


def relative_error(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / max(1.0, float(np.max(np.abs(want)))))


def check(record, arrays, store_values=None, tier="replay"):
    """Builds and compares; returns the largest relative error. Raises AssertionError."""
    if store_values is None:
        store_values = net_weights(record["variables"], record["seed"])
    out, end_points, store = build(record, store_values)
    want = arrays["output"]
    assert out.shape == want.shape, f"output shape {out.shape}, TF {want.shape}"
    assert out.dtype == np.float32, out.dtype
    errors = {"output": relative_error(out, want)}
    assert [[k, list(v.shape)] for k, v in end_points.items()] == record["end_points"]
    for k in record["sampled"]:
        flat = np.asarray(end_points[k]).ravel()
        errors[k] = relative_error(flat[arrays[f"sample/{k}/index"]],
                                   arrays[f"sample/{k}/value"])
    # the net has exactly TF's variables, each taken from the loaded values
    got_vars = [[v.name, list(v.shape), v.trainable] for v in store.variables()]
    assert sorted(got_vars) == sorted(record["variables"])
    assert store.unused_values() == [], "loaded values no variable took"
    assert store.variables_not_loaded() == [], "variables not from the loaded values"
    for name in (k[len("after/"):] for k in arrays if k.startswith("after/")):
        errors[name] = relative_error(store[name], arrays["after/" + name])
    worst = max(errors, key=errors.get)
    net = record["fn"] + (" (training)" if record["train"] else "")
    if errors[worst] > MAX_ERROR.get((tier, net), (-1.0, ""))[0]:
        MAX_ERROR[(tier, net)] = (errors[worst], record["id"])
    for what, error in errors.items():
        tolerance = (TRAIN_END_POINT_TOLERANCE if record["train"] and what in record["sampled"]
                     else TOLERANCE)
        assert error <= tolerance, (
            f"{record['id']}: {what} differs from TF by {error:.2e} (relative to "
            f"max(1, max|TF|)), tolerance {tolerance:g}")
    return errors[worst]
