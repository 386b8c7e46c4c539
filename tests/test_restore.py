"""TF checkpoints into the VariableStore and slim's restore API (pyconv/_restore.py),
on checkpoints TF 2.21 wrote (tests/fixtures/tf/checkpoints) and the values TF read."""

import os
import warnings

import numpy as np
import pytest

import pyconv as slim
from ckpt_util import FIXTURES
from pyconv import train

VALUES = np.load(os.path.join(FIXTURES, "values.npz"))
SCOPE = "InceptionV3/Conv2d_1a_3x3"
W = VALUES[f"v1_saver/{SCOPE}/weights"]       # [3, 3, 3, 8], what TF read
BETA = VALUES[f"v1_saver/{SCOPE}/BatchNorm/beta"]


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def build(scope=SCOPE):
    x = np.ones((1, 5, 5, 3), np.float32)
    return slim.conv2d(x, 8, 3, scope=scope, normalizer_fn=slim.batch_norm,
                       normalizer_params={"scale": False})


@pytest.mark.parametrize("path", [
    "v1_saver",                                   # a directory (its `checkpoint` file)
    "v1_saver/model.ckpt",                        # a V1 file
])
def test_load_checkpoint_before_building(path):
    with slim.VariableStore(seed=0) as store:
        names = store.load(fixture(*path.split("/")))
        assert sorted(names) == sorted([f"{SCOPE}/weights", f"{SCOPE}/BatchNorm/beta",
                                        "global_step"])
        assert len(store) == 0 and store.unused_values() == names
        assert "unused_values=3" in repr(store) and "variables=0" in repr(store)
        build()
        np.testing.assert_array_equal(store[f"{SCOPE}/weights"], W)
        np.testing.assert_array_equal(store[f"{SCOPE}/BatchNorm/beta"], BETA)
        assert store.unused_values() == ["global_step"]
        assert store.variables_not_loaded() == [f"{SCOPE}/BatchNorm/moving_mean",
                                                f"{SCOPE}/BatchNorm/moving_variance"]
        assert len(store) == 4 and "variables=4 unused_values=1" in repr(store)
        with pytest.raises(ValueError) as info:
            store.check_loaded()
        msg = str(info.value)
        assert "2 variables did not come from the loaded values" in msg
        assert "moving_mean" in msg and "1 loaded values were taken by no variable" in msg
        assert "'global_step'" in msg


def test_v2_paths_and_index_file(tmp_path):
    """Every path a TF user passes (the .index failed with NumPy's pickle message before)."""
    values = {f"{SCOPE}/weights": W, f"{SCOPE}/BatchNorm/beta": BETA,
              f"{SCOPE}/BatchNorm/moving_mean": np.zeros(8, np.float32),
              f"{SCOPE}/BatchNorm/moving_variance": np.ones(8, np.float32)}
    prefix = train.save_checkpoint(str(tmp_path / "model.ckpt-5"), values)
    for path in (prefix, prefix + ".index", str(tmp_path), prefix + ".data-00000-of-00001"):
        with slim.VariableStore(seed=0) as store:
            store.load(path)
            build()
            store.check_loaded()           # everything matched: no error
            np.testing.assert_array_equal(store[f"{SCOPE}/weights"], W)


def test_tf2_object_checkpoint_skips_strings():
    with slim.VariableStore() as store:
        names = store.load(fixture("tf2_object"))
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" not in names
    assert "model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE" in names


def test_other_scope_is_noticed():
    """The user's trap: a net built under another scope name ran on random weights."""
    with slim.VariableStore(seed=0) as store:
        store.load(fixture("v1_saver"))
        with pytest.warns(UserWarning, match=r"'InceptionV4/Conv2d_1a_3x3/weights' was "
                                             r"initialised, not loaded.*another scope"):
            build("InceptionV4/Conv2d_1a_3x3")
        assert len(store.variables_not_loaded()) == 4
        assert sorted(store.unused_values()) == sorted(
            [f"{SCOPE}/weights", f"{SCOPE}/BatchNorm/beta", "global_step"])
        with pytest.raises(ValueError, match="4 variables did not come"):
            store.check_loaded()
        with pytest.raises(ValueError, match="3 loaded values were taken by no variable"):
            store.load(fixture("v1_saver"), strict=True)


def test_strict_load_after_building(tmp_path):
    with slim.VariableStore(seed=0) as store:
        build()
        with pytest.raises(ValueError, match="moving_mean"):
            store.load(fixture("v1_saver"), strict=True)
        # the matching values were assigned anyway (the error comes after loading)
        np.testing.assert_array_equal(store[f"{SCOPE}/weights"], W)
    with slim.VariableStore(seed=0) as store:
        with pytest.raises(ValueError, match="no variable exists yet"):
            store.load(fixture("v1_saver"), strict=True)


def test_save_writes_variables_only(tmp_path):
    with slim.VariableStore(seed=0) as store:
        store.load(fixture("v1_saver"))
        build()
        store.save(str(tmp_path / "w.npz"))
        with np.load(tmp_path / "w.npz") as npz:
            assert "global_step" not in npz.files and len(npz.files) == 4
        assert "global_step" not in store and list(store) == store.keys()
        with pytest.raises(KeyError, match="waits for the layer"):
            store["global_step"]


def test_load_errors(tmp_path):
    with slim.VariableStore() as store:
        with pytest.raises(FileNotFoundError, match="Failed to find any matching files"):
            store.load(str(tmp_path / "nope.ckpt"))
        (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all, just some bytes" * 3)
        with pytest.raises(ValueError, match="junk.ckpt.*bad magic"):
            store.load(str(tmp_path / "junk.ckpt"))
        with pytest.raises(TypeError, match="TensorFlow checkpoint"):
            store.load(3)


# --------------------------------------------------------------------------- slim's API


def test_assign_from_checkpoint_fn():
    with slim.VariableStore(seed=0) as store:
        build()
        var_list = slim.get_variables_to_restore(exclude=[f"{SCOPE}/BatchNorm/moving"])
        assert [v.name for v in var_list] == [f"{SCOPE}/weights", f"{SCOPE}/BatchNorm/beta"]
        fn = slim.assign_from_checkpoint_fn(fixture("v1_saver", "model.ckpt"), var_list)
        assert not np.array_equal(store[f"{SCOPE}/weights"], W)    # nothing read yet
        fn(None)                                                   # a session is ignored
        np.testing.assert_array_equal(store[f"{SCOPE}/weights"], W)
        assert store.variables_not_loaded() == [f"{SCOPE}/BatchNorm/moving_mean",
                                                f"{SCOPE}/BatchNorm/moving_variance"]
        # the whole list: the moving statistics are missing
        fn = slim.assign_from_checkpoint_fn(fixture("v1_saver"), slim.get_variables())
        with pytest.raises(ValueError, match=r"Checkpoint is missing variable "
                                             rf"\[{SCOPE}/BatchNorm/moving_mean\]"):
            fn()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn = slim.assign_from_checkpoint_fn(fixture("v1_saver"), slim.get_variables(),
                                                ignore_missing_vars=True)
        assert [str(w.message).split()[1].rsplit("/", 1)[1] for w in caught] == [
            "moving_mean", "moving_variance"]
        fn()
        with pytest.warns(UserWarning, match="No Variables to restore"), \
                pytest.warns(UserWarning, match="missing in checkpoint"):
            assert slim.assign_from_checkpoint_fn(
                fixture("v1_saver"), slim.get_variables(f"{SCOPE}/BatchNorm/moving"),
                ignore_missing_vars=True) is None
        with pytest.raises(ValueError, match="var_list cannot be empty"):
            slim.assign_from_checkpoint_fn(fixture("v1_saver"), [])
        with pytest.raises(ValueError, match="var_list cannot be empty"):
            slim.assign_from_checkpoint_fn(fixture("v1_saver"), None)


def test_assign_from_checkpoint_fn_dict_and_reshape():
    with slim.VariableStore(seed=0) as store:
        flat = slim.get_variable("flat", [3 * 3 * 3 * 8])
        other = slim.get_variable("other", [8])
        fn = slim.assign_from_checkpoint_fn(fixture("v1_saver"), {f"{SCOPE}/weights": flat})
        with pytest.raises(ValueError, match=rf"Total size of new array must be unchanged "
                                             rf"for {SCOPE}/weights lh_shape: \[\(3, 3, 3, 8\)\],"
                                             r" rh_shape: \[\(216,\)\]"):
            fn()
        slim.assign_from_checkpoint_fn(fixture("v1_saver"), {f"{SCOPE}/weights": flat},
                                       reshape_variables=True)()
        np.testing.assert_array_equal(flat.value, W.reshape(-1))
        # one checkpoint value into several variables
        slim.assign_from_checkpoint_fn(
            fixture("v1_saver"), {f"{SCOPE}/BatchNorm/beta:0": [other]})()
        np.testing.assert_array_equal(other.value, BETA)
        bad = slim.assign_from_checkpoint_fn(fixture("v1_saver"), {f"{SCOPE}/weights": other},
                                             reshape_variables=True)
        with pytest.raises(ValueError, match="Total size"):
            bad()
        assert store.variables_not_loaded() == []
        with pytest.raises(TypeError, match="var_list"):
            slim.assign_from_checkpoint_fn(fixture("v1_saver"), ["flat"])


def test_assign_from_checkpoint():
    with slim.VariableStore(seed=0):
        build()
        var_list = slim.get_variables_to_restore(include=[f"{SCOPE}/weights"])
        op, feed = slim.assign_from_checkpoint(fixture("v1_saver"), var_list)
        assert list(feed) == var_list
        np.testing.assert_array_equal(feed[var_list[0]], W)
        assert not np.array_equal(var_list[0].value, W)          # assigned only when run
        op()
        np.testing.assert_array_equal(var_list[0].value, W)
        with pytest.raises(ValueError, match="Checkpoint is missing variable"):
            slim.assign_from_checkpoint(fixture("v1_saver"), slim.get_variables())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            op, feed = slim.assign_from_checkpoint(fixture("v1_saver"), slim.get_variables(),
                                                   ignore_missing_vars=True)
        assert len(caught) == 2 and len(feed) == 2
        op(None)
        op, feed = slim.assign_from_checkpoint(fixture("v1_saver"), [])
        assert feed == {}
        op()


def test_assign_shape_mismatch():
    with slim.VariableStore(seed=0):
        v = slim.get_variable(f"{SCOPE}/weights", [3, 3, 3, 4])
        with pytest.raises(ValueError, match=r"lh_shape: \[\(3, 3, 3, 8\)\], "
                                             r"rh_shape: \[\(3, 3, 3, 4\)\]"):
            slim.assign_from_checkpoint(fixture("v1_saver"), [v])


def test_get_variables_to_restore_as_slim():
    with slim.VariableStore(seed=0):
        for scope in ("InceptionV3/Logits", "InceptionV3/AuxLogits", "InceptionV3/Conv",
                      "InceptionV3/Logits_extra"):
            slim.get_variable(scope + "/weights", [1])
        names = [v.name for v in slim.get_variables_to_restore(
            exclude=["InceptionV3/Logits", "InceptionV3/AuxLogits"])]
        assert names == ["InceptionV3/Conv/weights"]   # a prefix: Logits_extra goes too
        names = [v.name for v in slim.get_variables_to_restore(include=("InceptionV3/.*s/",))]
        assert names == ["InceptionV3/Logits/weights", "InceptionV3/AuxLogits/weights"]
        with pytest.raises(TypeError, match="exclude is provided but is not a list or a tuple"):
            slim.get_variables_to_restore(exclude="InceptionV3/Logits")


def test_npz_without_its_extension(tmp_path):
    np.savez(tmp_path / "weights.npz", w=np.arange(3.0))
    os.rename(tmp_path / "weights.npz", tmp_path / "weights.bin")
    with slim.VariableStore() as store:
        assert store.load(str(tmp_path / "weights.bin")) == ["w"]
