"""The repeated-call fast paths (pyconv/_fastpath.py): a net or layer called
again in the same store must give what the slow path gives, notice every
change that makes a remembered call stale, and keep the scope bookkeeping.

Expected values come from TF (the net fixtures, replayed several times in one
store) or from the float64 reference (tests/reference.py) on the store's
current variables, never from pyconv's own earlier outputs alone."""

import importlib

import nets_replay
import numpy as np
import pytest
from reference import conv2d_reference, same_pads

import pyconv as slim
from pyconv import _fastpath


@pytest.fixture
def hits(monkeypatch):
    """Counts the calls answered by the conv2d fast path."""
    counter = {"conv2d": 0}
    real = _fastpath._conv2d_hit

    def counted(*args):
        out = real(*args)
        if out is not _fastpath._MISS:
            counter["conv2d"] += 1
        return out

    monkeypatch.setattr(_fastpath, "_conv2d_hit", counted)
    return counter


# ---- whole nets: TF's numbers on every repeat


NET_IDS = ["resnet_v1_50", "resnet_v1_50_97x129_os8", "resnet_v2_50_161_os16",
           "mobilenet_v1_025", "resnet_v1_custom_noroot", "alexnet_v2"]


@pytest.mark.parametrize("config_id", NET_IDS)
def test_repeated_net_matches_tf(config_id, hits):
    record, arrays = nets_replay.load_fixture(config_id)
    assert not record["train"]
    module = importlib.import_module(f"pyconv.nets.{record['module']}")
    fn = getattr(module, record["fn"])
    kwargs = nets_replay.resolve_kwargs(module, record["kwargs"])
    blocks = kwargs.pop("blocks", None)
    x = nets_replay.net_input(record["input_shape"], record["seed"])
    want = arrays["output"]
    with slim.VariableStore(seed=0) as store:
        store.load(nets_replay.net_weights(record["variables"], record["seed"]))
        outputs = []
        for call in range(3):
            scope = getattr(module, record["arg_scope"])(**record["arg_scope_kwargs"])
            with slim.arg_scope(scope), slim.variable_scope(slim.get_variable_scope(),
                                                            reuse=call > 0 or None):
                if blocks is not None:
                    out, end_points = fn(x, blocks, **kwargs)
                else:
                    out, end_points = fn(x, **kwargs)
            assert nets_replay.relative_error(out, want) <= nets_replay.TOLERANCE
            assert [[k, list(v.shape)] for k, v in end_points.items()] == record["end_points"]
            for k in record["sampled"]:
                flat = np.asarray(end_points[k]).ravel()
                assert nets_replay.relative_error(
                    flat[arrays[f"sample/{k}/index"]],
                    arrays[f"sample/{k}/value"]) <= nets_replay.TOLERANCE, (call, k)
            outputs.append(out)
        assert sorted(v.name for v in store.variables()) == sorted(
            v[0] for v in record["variables"])
    # the repeats ran through the fast path and gave the slow path's bits
    assert hits["conv2d"] > 0
    np.testing.assert_array_equal(outputs[1], outputs[0])
    np.testing.assert_array_equal(outputs[2], outputs[0])


# ---- one layer: every change that makes a remembered call stale


def _bn_expected(x, store, scope="c", eps=0.001, relu=True, pads=None, train=False):
    """float64: conv (SAME, stride 1) then inference (or training) batch norm, relu."""
    w = store[f"{scope}/weights"]
    kh, kw = w.shape[:2]
    if pads is None:
        pads = (same_pads(x.shape[1], kh, 1), same_pads(x.shape[2], kw, 1))
    out = conv2d_reference(x, w, pads=pads)
    if train:
        mean, var = out.mean(axis=(0, 1, 2)), out.var(axis=(0, 1, 2))
    else:
        mean = store[f"{scope}/BatchNorm/moving_mean"].astype(np.float64)
        var = store[f"{scope}/BatchNorm/moving_variance"].astype(np.float64)
    gamma = store[f"{scope}/BatchNorm/gamma"].astype(np.float64) \
        if f"{scope}/BatchNorm/gamma" in store else 1.0
    beta = store[f"{scope}/BatchNorm/beta"].astype(np.float64)
    y = (out - mean) / np.sqrt(var + eps) * gamma + beta
    return np.maximum(y, 0) if relu else y


def _layer(x, reuse, params=None, **kw):
    params = {"is_training": False, "scale": True} if params is None else params
    return slim.conv2d(x, 4, [3, 3], normalizer_fn=slim.batch_norm, normalizer_params=params,
                       scope="c", reuse=reuse, **kw)


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def _image(shape=(2, 6, 6, 3), seed=1, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _randomize_bn(store, scope="c", seed=5):
    rng = np.random.default_rng(seed)
    for name in ("beta", "gamma", "moving_mean"):
        if f"{scope}/BatchNorm/{name}" in store:
            store.variable(f"{scope}/BatchNorm/{name}").assign(rng.standard_normal(4))
    store.variable(f"{scope}/BatchNorm/moving_variance").assign(rng.uniform(0.5, 2, 4))


def test_fast_path_follows_weights_and_statistics(hits):
    x = _image()
    with slim.VariableStore(seed=0) as store:
        _layer(x, None)
        _randomize_bn(store)
        for _ in range(2):
            _close(_layer(x, True), _bn_expected(x, store))
        assert hits["conv2d"] >= 1
        # the fast path keeps no reference to the weights: their pin is trusted
        # (read-only, Variable._pinned), as after the slow path
        assert not store["c/weights"].flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            store["c/weights"][0, 0, 0, :] = 7.0
        # assign, in-place writes through a view held before the next use, load:
        # each seen at the next call
        store.variable("c/weights").assign(np.random.default_rng(2).standard_normal((3, 3, 3, 4)))
        _close(_layer(x, True), _bn_expected(x, store))
        store.variable("c/weights").assign(np.random.default_rng(3).standard_normal((3, 3, 3, 4)))
        held = store["c/weights"]  # held: the pin is not trusted, the array stays writeable
        _close(_layer(x, True), _bn_expected(x, store))
        held[0, 0, 0, :] = 7.0
        _close(_layer(x, True), _bn_expected(x, store))
        del held
        store.load({"c/weights": np.full((3, 3, 3, 4), 0.25, np.float32),
                    "c/BatchNorm/moving_variance": np.full(4, 3.0, np.float32)})
        _close(_layer(x, True), _bn_expected(x, store))
        store["c/BatchNorm/moving_mean"][...] = -1.5  # in place
        _close(_layer(x, True), _bn_expected(x, store))
        # a replaced array (what claiming a loaded value does) is not the remembered one
        var = store.variable("c/weights")
        var._value = np.ascontiguousarray(var._value[::-1])
        _close(_layer(x, True), _bn_expected(x, store))


def test_fast_path_follows_arguments_and_arg_scope(hits):
    x = _image()
    with slim.VariableStore(seed=0) as store:
        _layer(x, None)
        _randomize_bn(store)
        _layer(x, True)
        # activation from an arg_scope, then from the call, then back
        with slim.arg_scope([slim.conv2d], activation_fn=None):
            _close(_layer(x, True), _bn_expected(x, store, relu=False))
        _close(_layer(x, True), _bn_expected(x, store))
        _close(_layer(x, True, activation_fn=None), _bn_expected(x, store, relu=False))
        # batch norm's own arg_scope and normalizer_params (same dict, changed in place)
        params = {"is_training": False, "scale": True}
        _close(_layer(x, True, params), _bn_expected(x, store))
        params["epsilon"] = 0.5
        _close(_layer(x, True, params), _bn_expected(x, store, eps=0.5))
        with slim.arg_scope([slim.batch_norm], epsilon=0.25):
            _close(_layer(x, True), _bn_expected(x, store, eps=0.25))
        # is_training: batch statistics and queued updates, not the remembered terms
        updates = len(slim.get_collection(slim.GraphKeys.UPDATE_OPS))
        _close(_layer(x, True, {"is_training": True, "scale": True}),
               _bn_expected(x, store, train=True))
        assert len(slim.get_collection(slim.GraphKeys.UPDATE_OPS)) == updates + 2
        # another shape and another dtype (float64 input, float32 variables: cast)
        x2 = _image((1, 5, 7, 3), seed=3)
        _close(_layer(x2, True), _bn_expected(x2, store))
        _close(_layer(x2, True), _bn_expected(x2, store))
        x3 = _image(dtype=np.float64)
        y3 = _layer(x3, True)
        assert y3.dtype == np.float32
        _close(y3, _bn_expected(x3, store))
        # padding / stride given explicitly
        y4 = _layer(x, True, padding="VALID")
        _close(y4, _bn_expected(x, store, pads=((0, 0), (0, 0))))
        _close(_layer(x, True, padding="VALID"), y4)
        assert hits["conv2d"] == 5  # the repeats of a call already seen


def test_fast_path_keeps_reuse_rules_and_stores():
    x = _image()
    with slim.VariableStore(seed=0) as store:
        _layer(x, None)
        _layer(x, True)
        _layer(x, True)
        for reuse in (None, False):
            with pytest.raises(ValueError, match="already exists"):
                _layer(x, reuse)
        with slim.variable_scope("", reuse=True):
            _layer(x, None)  # reuse inherited from the enclosing scope
        with pytest.raises(TypeError, match="weights_regularizer"):
            _layer(x, True, weights_regularizer=3)
        first = store["c/weights"].copy()
    with slim.VariableStore(seed=7) as other:
        with pytest.raises(ValueError, match="does not exist"):
            _layer(x, True)
        y = _layer(x, None)  # a new store: new variables
        assert not np.array_equal(other["c/weights"], first)
        _randomize_bn(other)
        _close(_layer(x, True), _bn_expected(x, other))
        assert y.shape == (2, 6, 6, 4)
    assert sorted(store.keys()) == sorted(other.keys())


def test_fast_path_keeps_names_and_collections(hits):
    x = _image()
    with slim.VariableStore(seed=0) as store:
        with slim.variable_scope("net"):
            _layer(x, None, outputs_collections="ep")
        names = []
        for _ in range(3):
            with slim.variable_scope("net", reuse=True) as sc:
                y = _layer(x, None, outputs_collections="ep")
                with slim.name_scope("after") as ns:
                    names.append((sc.original_name_scope, ns))
            assert slim.get_tensor_aliases(y) == ["net/c"]
        assert hits["conv2d"] >= 2
        # TF's unique name scopes: net, net_1, net_2, ... and the layer's
        # output is the Relu of the layer's name scope
        assert [n[0] for n in names] == ["net_1/", "net_2/", "net_3/"]
        assert [n[1] for n in names] == ["net_1/after/", "net_2/after/", "net_3/after/"]
        for i in range(1, 4):
            found = slim.get_collection("ep", f"net_{i}/c/Relu")
            assert len(found) == 1
        assert len(slim.get_collection("ep")) == 4
        # the BatchNorm scope is opened as the slow path opens it (no BatchNorm_1)
        with slim.variable_scope("net", reuse=True):
            _layer(x, None)
        assert sorted(store.keys()) == sorted(
            ["net/c/weights", "net/c/BatchNorm/beta", "net/c/BatchNorm/gamma",
             "net/c/BatchNorm/moving_mean", "net/c/BatchNorm/moving_variance"])


def test_fast_path_without_normalizer(hits):
    """A layer with biases (a net's logits) and a linear output."""
    x = _image()
    with slim.VariableStore(seed=0) as store:
        slim.conv2d(x, 5, [1, 1], activation_fn=None, scope="logits")
        store.variable("logits/biases").assign(np.arange(5, dtype=np.float32))
        for _ in range(3):
            y = slim.conv2d(x, 5, [1, 1], activation_fn=None, scope="logits", reuse=True)
            _close(y, conv2d_reference(x, store["logits/weights"], bias=store["logits/biases"]))
        assert not store["logits/biases"].flags.writeable  # trusted pin (no reference kept)
        store.variable("logits/biases").assign(np.full(5, -2.0, np.float32))
        y = slim.conv2d(x, 5, [1, 1], activation_fn=None, scope="logits", reuse=True)
        _close(y, conv2d_reference(x, store["logits/weights"], bias=store["logits/biases"]))
        y = slim.conv2d(x, 5, [1, 1], scope="logits", reuse=True)  # relu
        _close(y, conv2d_reference(x, store["logits/weights"], bias=store["logits/biases"],
                                   activation="relu"))
        assert hits["conv2d"] >= 3


def _bookkeeping(store):
    state = store._state()
    return {"names_in_use": dict(store._names_in_use),
            "generated_max": dict(store._generated_max),
            "names_inside": {k: set(v) for k, v in store._names_inside.items()},
            "counts": dict(state.counts),
            "children": {k: set(v) for k, v in state.children.items()},
            "collections": {k: [slim.get_tensor_aliases(v) if isinstance(v, np.ndarray)
                                else getattr(v, "name", v) for v in c]
                            for k, c in store._collections.items()},
            "tensor names": sorted(e[2] or "" for e in store._aliases.values())}


def _sequence(store, record):
    """Layers and nets called again and again, in scopes that make their names
    unique in every way TF does; ``record(label)`` after each step."""
    from pyconv.nets import nets_factory

    x = _image((1, 6, 6, 3))
    net = nets_factory.get_network_fn("resnet_v1_50", 10)
    image = _image((1, 64, 64, 3), seed=4)
    for i in range(3):
        with slim.variable_scope("outer", reuse=i > 0 or None):
            _layer(x, None, outputs_collections="ep")
            record(f"layer {i}")
            with slim.variable_scope("inner"):
                _layer(x, None)
                _layer(x, True)  # the same name scope again: c_1
            record(f"inner {i}")
        with slim.name_scope(None, default_name="blk"):  # blk, blk_1, ...: names only
            with slim.variable_scope("shared", reuse=i > 0 or None):
                with slim.name_scope("c/BatchNorm"):  # taken: the layer's is BatchNorm_1
                    pass
                _layer(x, None, outputs_collections="ep")
            record(f"default name scope {i}")
        out, end_points = net(image)
        record(f"net {i}")
        record(("net output", out.tobytes(), sorted(end_points)))


def test_fast_path_keeps_every_name_and_count(monkeypatch):
    """The fast path's scope bookkeeping (_fastpath._layer_scopes) against the
    slow path's frames: after every step the stores' unique names, scope
    counts, children, collections and tensor names are the same."""
    logs = []
    for fast in (True, False):
        if not fast:
            monkeypatch.setattr(_fastpath, "_conv2d_hit", lambda *a: _fastpath._MISS)
        log = []
        with slim.VariableStore(seed=0) as store:
            _sequence(store, lambda label, log=log, store=store:
                      log.append((label, _bookkeeping(store))))
            assert bool(store.__dict__.get("_fast_cache")) or not fast
        logs.append(log)
    for (label, fast), (_, slow) in zip(*logs):
        assert fast == slow, label


def test_clearing_a_collection_keeps_aliases_of_items_held_elsewhere():
    """An output's aliases go with the last collection holding it (end points
    are cleared after every call of a net)."""
    with slim.VariableStore(seed=0) as store:
        a, b, c = np.zeros(2), np.ones(2), np.full(2, 2.0)
        slim.collect_named_outputs(["ep", "other"], "a", a)
        slim.collect_named_outputs("ep", "b", b)
        slim.collect_named_outputs("ep", "c1", c)
        slim.collect_named_outputs("ep", "c2", c)  # twice in the cleared collection
        store.clear_collection("ep")
        assert slim.get_tensor_aliases(a) == ["a"]
        assert slim.get_tensor_aliases(b) == []
        assert slim.get_tensor_aliases(c) == []
        store.clear_collection("other")
        assert slim.get_tensor_aliases(a) == []
