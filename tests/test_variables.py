"""Variables, stores, scopes and collections: TF 1.x's documented rules.

Expected names and errors follow tf.compat.v1.variable_scope / get_variable
and TF-Slim's variables_test / layers_test.
"""

import threading

import numpy as np
import pytest

import pyconv as slim
from pyconv import GraphKeys


@pytest.fixture(autouse=True)
def fresh_store():
    with slim.VariableStore(seed=1234) as store:
        yield store


# --------------------------------------------------------------------------- Variable


def test_variable_attributes(fresh_store):
    v = slim.get_variable("w", [2, 3], initializer=slim.zeros_initializer())
    assert isinstance(v, slim.Variable)
    assert v.name == "w"
    assert v.shape == (2, 3)
    assert v.dtype == np.float32
    assert v.trainable is True
    assert isinstance(v.value, np.ndarray)
    np.testing.assert_array_equal(np.asarray(v), np.zeros((2, 3)))
    assert np.asarray(v) is v.value
    assert np.asarray(v, dtype=np.float64).dtype == np.float64
    assert fresh_store["w"] is v.value


def test_assign_in_place_and_shape_error():
    v = slim.get_variable("conv1/weights", [2, 2], initializer=slim.zeros_initializer())
    arr = v.value
    v.assign([[1, 2], [3, 4]])
    assert v.value is arr
    np.testing.assert_array_equal(arr, [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match=r"conv1/weights.*\(2, 2\)") as exc:
        v.assign(np.zeros((3, 2)))
    assert "(3, 2)" in str(exc.value)
    v.value = np.ones((2, 2))
    np.testing.assert_array_equal(v.value, 1)


def test_assign_refuses_unsafe_cast():
    v = slim.get_variable("i", initializer=np.zeros(2, np.int32), dtype=np.int32)
    with pytest.raises(TypeError, match="'i'"):
        v.assign(np.array([0.5, 1.5]))


def test_array_copy_false_with_other_dtype_raises():
    v = slim.get_variable("w", [2])
    with pytest.raises(ValueError, match="copy"):
        v.__array__(np.float64, copy=False)


# --------------------------------------------------------------------------- stores


def test_store_context_makes_default_and_restores():
    outer = slim.get_default_store()
    with slim.VariableStore(seed=0) as inner:
        assert slim.get_default_store() is inner
        slim.get_variable("x", [1])
    assert slim.get_default_store() is outer
    assert "x" in inner and "x" not in outer


def test_reset_default_store_outside_and_inside_with():
    # Step out of the autouse fixture's store to reach the process-wide default.
    stack = slim.variables._store_stack.stack
    saved = list(stack)
    stack.clear()
    try:
        store = slim.reset_default_store(seed=5)
        assert slim.get_default_store() is store and store.seed == 5
        slim.get_variable("a", [1])
        assert "a" in store
        fresh = slim.reset_default_store()
        assert slim.get_default_store() is fresh and "a" not in fresh
    finally:
        stack.extend(saved)
    with pytest.raises(RuntimeError, match="reset_default_store"):
        slim.reset_default_store()


def test_getitem_and_contains_accept_tf_names(fresh_store):
    slim.get_variable("conv1/weights", [1])
    assert "conv1/weights:0" in fresh_store
    assert fresh_store["conv1/weights:0"].shape == (1,)
    assert "nope" not in fresh_store
    with pytest.raises(KeyError, match="nope"):
        fresh_store["nope"]


def test_store_seed_must_be_int():
    with pytest.raises(TypeError, match="seed"):
        slim.VariableStore(seed=1.5)


# --------------------------------------------------------------------------- reuse rules


def test_recreating_existing_variable_is_error_naming_it():
    with slim.variable_scope("foo"):
        slim.get_variable("v", [1])
    with pytest.raises(ValueError, match=r"Variable foo/v already exists"), (
        slim.variable_scope("foo")
    ):
        slim.get_variable("v", [1])


def test_reusing_missing_variable_is_error_naming_it():
    with pytest.raises(ValueError, match=r"Variable foo/v does not exist"), (
        slim.variable_scope("foo", reuse=True)
    ):
        slim.get_variable("v", [1])


def test_reuse_true_returns_same_object():
    with slim.variable_scope("foo"):
        v = slim.get_variable("v", [1])
    with slim.variable_scope("foo", reuse=True):
        v1 = slim.get_variable("v", [1])
    assert v1 is v
    assert len(slim.get_variables()) == 1


def test_auto_reuse_creates_then_gets():
    def foo():
        with slim.variable_scope("foo", reuse=slim.AUTO_REUSE):
            return slim.get_variable("v", [1])

    assert foo() is foo()
    assert [v.name for v in slim.get_variables()] == ["foo/v"]


def test_reuse_is_inherited_and_cannot_be_switched_off():
    with slim.variable_scope("root"), slim.variable_scope("a"):
        slim.get_variable("v", [1])
    with slim.variable_scope("root", reuse=True) as sc:
        assert sc.reuse is True
        with slim.variable_scope("a", reuse=False) as inner:
            assert inner.reuse is True
            slim.get_variable("v", [1])


def test_reuse_variables_on_scope_object():
    with slim.variable_scope("foo") as scope:
        v = slim.get_variable("v", [1])
        scope.reuse_variables()
        assert slim.get_variable("v", [1]) is v


def test_reuse_true_needs_a_name():
    with pytest.raises(ValueError, match="reuse=True cannot be used without a name_or_scope"), (
        slim.variable_scope(None, default_name="Conv", reuse=True)
    ):
        pass
    with pytest.raises(ValueError, match="without a name_or_scope"), (
        slim.variable_scope(None, default_name="Conv", reuse=slim.AUTO_REUSE)
    ):
        pass


def test_bad_reuse_value_and_missing_names():
    with pytest.raises(ValueError, match="reuse"):
        slim.variable_scope("a", reuse="yes")
    with pytest.raises(TypeError, match="default_name"):
        slim.variable_scope(None)
    with pytest.raises(TypeError, match="name_or_scope"), slim.variable_scope(3):
        pass


def test_shape_and_dtype_mismatch_on_share():
    with slim.variable_scope("s"):
        slim.get_variable("v", [2, 3])
    with slim.variable_scope("s", reuse=True):
        with pytest.raises(ValueError, match=r"s/v.*\(4, 3\).*\(2, 3\)"):
            slim.get_variable("v", [4, 3])
        with pytest.raises(ValueError, match=r"s/v.*float64.*float32"):
            slim.get_variable("v", [2, 3], dtype=np.float64)


def test_nested_scope_names():
    with slim.variable_scope("foo"), slim.variable_scope("bar") as sc:
        v = slim.get_variable("v", [1])
    assert v.name == "foo/bar/v"
    assert sc.name == "foo/bar"
    assert sc.original_name_scope == "foo/bar/"


def test_scope_object_jumps_back_absolutely():
    with slim.variable_scope("foo") as foo_scope:
        v = slim.get_variable("v", [1])
    with slim.variable_scope("other"):
        with slim.variable_scope(foo_scope, reuse=True) as again:
            assert again.name == "foo"
            assert slim.get_variable("v", [1]) is v
        with slim.variable_scope(foo_scope):
            w = slim.get_variable("w", [1])
    assert w.name == "foo/w"


def test_default_names_made_unique_at_top_level():
    names = []
    for _ in range(3):
        with slim.variable_scope(None, default_name="Conv") as sc:
            names.append(sc.name)
    assert names == ["Conv", "Conv_1", "Conv_2"]


def test_default_names_restart_when_parent_scope_reentered():
    # TF forgets the counts of sub-scopes when their parent is left, which is
    # what lets `with variable_scope('net', reuse=True)` find 'net/Conv' again.
    with slim.variable_scope("net"):
        with slim.variable_scope(None, default_name="Conv") as a:
            pass
        with slim.variable_scope(None, default_name="Conv") as b:
            pass
    with slim.variable_scope("net", reuse=True), slim.variable_scope(None, "Conv") as c:
        pass
    assert (a.name, b.name, c.name) == ("net/Conv", "net/Conv_1", "net/Conv")


def test_root_scope_reentered_keeps_top_level_counts():
    with slim.variable_scope(None, default_name="Conv"):
        pass
    root = slim.get_variable_scope()
    with slim.variable_scope(root), slim.variable_scope(None, default_name="Conv") as inner:
        assert inner.name == "Conv_1"
    with slim.variable_scope(""):
        pass
    with slim.variable_scope(None, default_name="Conv") as after:
        pass
    assert after.name == "Conv_1"  # leaving the scope object restored the counts


def test_explicit_name_counts_for_default_uniquifying():
    with slim.variable_scope("Conv"):
        pass
    with slim.variable_scope(None, default_name="Conv") as sc:
        pass
    assert sc.name == "Conv_1"


def test_scope_initializer_and_regularizer_defaults():
    init = slim.constant_initializer(3.0)
    reg = slim.l2_regularizer(0.5)
    with slim.variable_scope("s", initializer=init, regularizer=reg), slim.variable_scope("inner"):
        v = slim.get_variable("v", [2])
    np.testing.assert_array_equal(v.value, [3.0, 3.0])
    assert [float(x) for x in slim.get_regularization_losses()] == [0.5 * 18 / 2]


def test_get_variable_scope_is_per_thread():
    seen = {}

    def worker():
        seen["thread"] = slim.get_variable_scope().name

    with slim.variable_scope("main"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["main"] = slim.get_variable_scope().name
    assert seen == {"thread": "", "main": "main"}


def test_improper_nesting_detected():
    a = slim.variable_scope("a")
    b = slim.variable_scope("b")
    a.__enter__()
    b.__enter__()
    with pytest.raises(RuntimeError, match="nesting"):
        a.__exit__(None, None, None)
    b.__exit__(None, None, None)
    a.__exit__(None, None, None)


def test_name_scope_uniquifies():
    with slim.name_scope("block") as n1:
        pass
    with slim.name_scope("block") as n2, slim.name_scope(None, "MaxPool2D") as n3:
        pass
    assert (n1, n2, n3) == ("block/", "block_1/", "block_1/MaxPool2D/")


# --------------------------------------------------------------------------- creation


def test_collections_of_plain_and_model_variables():
    v = slim.get_variable("v", [1])
    m = slim.model_variable("m", [1])
    nt = slim.get_variable("nt", [1], trainable=False)
    c = slim.variable("c", [1], collections=["mine", "mine"])
    assert slim.get_variables() == [v, m, nt]
    assert slim.get_model_variables() == [m]
    assert slim.get_trainable_variables() == [v, m, c]
    assert slim.get_collection("mine") == [c]
    assert c not in slim.get_collection(GraphKeys.GLOBAL_VARIABLES)
    slim.add_model_variable(v)
    slim.add_model_variable(v)
    assert slim.get_model_variables() == [m, v]


def test_get_variable_needs_shape_unless_array_initializer():
    with pytest.raises(ValueError, match="w"):
        slim.get_variable("w")
    v = slim.get_variable("a", initializer=np.arange(3.0))
    assert v.shape == (3,) and v.dtype == np.float64
    with pytest.raises(ValueError, match=r"b.*\(2,\).*\(3,\)"):
        slim.get_variable("b", [3], initializer=np.zeros(2))


def test_array_initializer_is_copied():
    init = np.arange(4.0, dtype=np.float32)
    v = slim.get_variable("a", [4], initializer=init)
    init[:] = -1
    np.testing.assert_array_equal(v.value, [0, 1, 2, 3])


def test_custom_callable_initializer_tf_signature():
    calls = []

    def init(shape, dtype=None, partition_info=None):
        calls.append((list(shape), np.dtype(dtype)))
        return np.full(shape, 7.0)

    v = slim.get_variable("w", [2, 1], initializer=init)
    assert calls == [([2, 1], np.dtype(np.float32))]
    np.testing.assert_array_equal(v.value, [[7.0], [7.0]])
    with pytest.raises(ValueError, match="returned shape"):
        slim.get_variable("bad", [3], initializer=lambda shape, dtype=None: np.zeros(2))


def test_default_initializer_is_glorot_uniform():
    v = slim.get_variable("w", [3, 3, 16, 32])
    limit = np.sqrt(6.0 / (9 * 16 + 9 * 32))
    assert np.abs(v.value).max() <= limit
    assert np.abs(v.value).max() > 0.9 * limit


# --------------------------------------------------------------------------- seeds


def _values_in_order(order, seed=7):
    with slim.VariableStore(seed=seed):
        out = {}
        for name in order:
            out[name] = slim.get_variable(name, [4, 5]).value.copy()
    return out


def test_initial_values_depend_on_seed_and_name_not_order():
    a = _values_in_order(["x", "y/z", "w"])
    b = _values_in_order(["w", "x", "y/z"])
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["x"], a["w"])
    c = _values_in_order(["x"], seed=8)
    assert not np.array_equal(a["x"], c["x"])


def test_same_values_across_dtypes_up_to_rounding():
    with slim.VariableStore(seed=3):
        v64 = slim.get_variable("w", [10], dtype=np.float64).value
    with slim.VariableStore(seed=3):
        v32 = slim.get_variable("w", [10], dtype=np.float32).value
    np.testing.assert_array_equal(v64.astype(np.float32), v32)


def test_initializer_seed_overrides_store_seed():
    init = slim.truncated_normal_initializer(seed=42)
    with slim.VariableStore(seed=1):
        a = slim.get_variable("a", [6], initializer=init).value
        b = slim.get_variable("b", [6], initializer=init).value
    with slim.VariableStore(seed=2):
        c = slim.get_variable("other", [6], initializer=init).value
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_unseeded_stores_differ():
    with slim.VariableStore():
        a = slim.get_variable("w", [8]).value
    with slim.VariableStore():
        b = slim.get_variable("w", [8]).value
    assert not np.array_equal(a, b)


# --------------------------------------------------------------------------- save / load


def test_save_load_roundtrip(tmp_path, fresh_store):
    with slim.variable_scope("conv1"):
        slim.get_variable("weights", [3, 3, 1, 2])
        slim.get_variable("biases", [2], dtype=np.float64)
    path = tmp_path / "ckpt"
    fresh_store.save(str(path))
    assert (tmp_path / "ckpt.npz").exists()
    with np.load(tmp_path / "ckpt.npz") as npz:
        assert sorted(npz.files) == ["conv1/biases", "conv1/weights"]
    with slim.VariableStore(seed=999) as other:
        with slim.variable_scope("conv1"):
            slim.get_variable("weights", [3, 3, 1, 2])
        assert not np.array_equal(other["conv1/weights"], fresh_store["conv1/weights"])
        other.load(tmp_path / "ckpt.npz")
        np.testing.assert_array_equal(other["conv1/weights"], fresh_store["conv1/weights"])
        # Loaded before creation: taken by the variable when it is created.
        with slim.variable_scope("conv1", reuse=slim.AUTO_REUSE):
            b = slim.get_variable("biases", [2], dtype=np.float64)
        np.testing.assert_array_equal(b.value, fresh_store["conv1/biases"])


def test_load_mapping_with_tf_names_and_pending_values(fresh_store):
    w = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    names = fresh_store.load({"conv1/weights:0": w, "conv1/biases:0": np.ones(3)})
    assert names == ["conv1/weights", "conv1/biases"]
    # pending until a layer asks for them: not variables yet
    assert "conv1/weights" not in fresh_store and len(fresh_store) == 0
    assert fresh_store.unused_values() == ["conv1/weights", "conv1/biases"]
    assert slim.get_variables() == []
    with slim.variable_scope("conv1"):
        v = slim.get_variable("weights", [1, 1, 2, 3])
    np.testing.assert_array_equal(v.value, w)
    assert slim.get_variables() == [v]


def test_load_shape_mismatch_names_variable_and_shapes(fresh_store):
    slim.get_variable("w", [2, 2])
    with pytest.raises(ValueError, match=r"\(3,\).*'w'.*\(2, 2\)"):
        fresh_store.load({"w:0": np.zeros(3)})
    fresh_store.load({"p": np.zeros(3)})
    with pytest.raises(ValueError, match=r"p.*\(3,\).*\(4,\)"):
        slim.get_variable("p", [4])


# --------------------------------------------------------------------------- lookups


def test_get_variables_scope_and_suffix_filters():
    for scope in ("conv1", "conv1_1", "conv2"):
        with slim.variable_scope(scope):
            slim.get_variable("weights", [1])
            slim.get_variable("biases", [1])
    names = lambda vs: [v.name for v in vs]
    assert names(slim.get_variables("conv1")) == [
        "conv1/weights", "conv1/biases", "conv1_1/weights", "conv1_1/biases"]
    assert names(slim.get_variables("conv1/")) == ["conv1/weights", "conv1/biases"]
    assert names(slim.get_variables(suffix="biases")) == [
        "conv1/biases", "conv1_1/biases", "conv2/biases"]
    assert names(slim.get_variables_by_name("weights")) == [
        "conv1/weights", "conv1_1/weights", "conv2/weights"]
    assert names(slim.get_variables_by_name("weights", scope="conv2")) == ["conv2/weights"]
    assert slim.get_unique_variable("conv1/weights").name == "conv1/weights"
    with pytest.raises(ValueError, match="Couldn't find variable"):
        slim.get_unique_variable("conv9/weights")
    restore = names(slim.get_variables_to_restore(include=["conv1"], exclude=["conv1_1"]))
    assert restore == ["conv1/weights", "conv1/biases"]
    with pytest.raises(TypeError, match="include"):
        slim.get_variables_to_restore(include="conv1")


def test_get_variables_accepts_scope_object():
    with slim.variable_scope("a") as sc:
        slim.get_variable("v", [1])
    with slim.variable_scope("ab"):
        slim.get_variable("v", [1])
    # TF's scope filter is a regex matched at the start: 'a' also matches 'ab/v'.
    assert [x.name for x in slim.get_variables(sc)] == ["a/v", "ab/v"]
    assert [x.name for x in slim.get_variables("a/")] == ["a/v"]


# --------------------------------------------------------------------------- regularization


def test_l2_loss_registered_once_and_evaluated_on_current_value():
    reg = slim.l2_regularizer(0.01)
    with slim.variable_scope("s"):
        v = slim.get_variable("w", initializer=np.array([1.0, 2.0, 3.0]), regularizer=reg)
    with slim.variable_scope("s", reuse=True):
        slim.get_variable("w", [3], dtype=np.float64, regularizer=reg)
    losses = slim.get_regularization_losses()
    assert len(losses) == 1
    assert losses[0] == pytest.approx(0.01 * 14 / 2)
    v.assign([2.0, 0.0, 0.0])
    assert slim.get_regularization_losses()[0] == pytest.approx(0.01 * 4 / 2)
    assert slim.get_regularization_loss() == pytest.approx(0.02)
    item = slim.get_collection(GraphKeys.REGULARIZATION_LOSSES)[0]
    assert item.name == "s/w/Regularizer/l2_regularizer"
    assert slim.get_regularization_losses(scope="t") == []


def test_zero_scale_regularizer_adds_nothing():
    slim.get_variable("w", [2], regularizer=slim.l2_regularizer(0.0))
    assert slim.get_regularization_losses() == []
    assert float(slim.get_regularization_loss()) == 0.0


# --------------------------------------------------------------------------- named outputs


def test_collect_named_outputs_and_convert_collection_to_dict():
    a = np.zeros(2)
    b = np.ones(2)
    assert slim.collect_named_outputs("end_points", "net/a/", a) is a
    slim.collect_named_outputs(["end_points"], "net/b", b)
    slim.collect_named_outputs(None, "ignored", b)
    d = slim.convert_collection_to_dict("end_points")
    assert list(d) == ["net/a", "net/b"]
    assert d["net/a"] is a and d["net/b"] is b
    assert slim.get_tensor_aliases(a) == ["net/a"]
    assert [x is a for x in slim.get_collection("end_points", scope="net/a")] == [True]
    d = slim.convert_collection_to_dict("end_points", clear_collection=True)
    assert len(d) == 2
    assert slim.get_collection("end_points") == []


def test_add_to_collections_string_or_list():
    slim.add_to_collections("one", 1)
    slim.add_to_collections(["two", "three"], 2)
    slim.add_to_collection("one", 3)
    assert slim.get_collection("one") == [1, 3]
    assert slim.get_collection("three") == [2]
    ref = slim.get_collection_ref("one")
    ref.append(4)
    assert slim.get_collection("one") == [1, 3, 4]


def test_name_scopes_are_made_unique_as_tf_graph_unique_name():
    """Aliases of pools follow TF's graph.unique_name, also for names that were
    generated before (requesting 'p_1' after 'p' twice gives 'p_1_1').
    Expected list computed with TensorFlow 2.21 + tf-slim 1.1 (graph mode)."""
    import pyconv as slim

    x = np.zeros((1, 4, 4, 1), np.float32)
    with slim.VariableStore():
        for scope in ["p", "p", "p", "p_1", "p_3", "p"]:
            slim.max_pool2d(x, 1, outputs_collections="o", scope=scope)
        for _ in range(3):
            with slim.variable_scope("net", reuse=slim.AUTO_REUSE):
                slim.max_pool2d(x, 1, outputs_collections="o", scope="q")
        aliases = list(slim.convert_collection_to_dict("o"))
    assert aliases == ["p", "p_1", "p_2", "p_1_1", "p_3", "p_4", "net/q", "net_1/q", "net_2/q"]
