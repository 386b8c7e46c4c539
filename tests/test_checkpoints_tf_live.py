"""Live tier for checkpoints: TensorFlow writes fresh ones, pyconv reads them; pyconv
writes, TensorFlow reads.

Runs only with ``-m tf`` where TensorFlow is installed (tests/conftest.py)::

    python -m pytest -m tf tests/test_checkpoints_tf_live.py
    PYCONV_TF_SEED=1234 python -m pytest -m tf tests/test_checkpoints_tf_live.py

1. ``tools/tf_reference/gen_checkpoints.py`` writes every fixture case again
   with a fresh seed (``PYCONV_TF_SEED``, else time-based; in every failure)
   into a temporary directory, and the same comparison as the committed
   replay (tests/ckpt_util.py) runs on it.
2. ``pyconv.train.save_checkpoint`` writes random tensors of every dtype it
   writes (scalars, empty, strings, a tensor over two table blocks' worth of
   bytes, hundreds of names); ``tf.train.load_checkpoint`` must return every
   tensor bit for bit, and TF1's ``Saver.restore`` must restore them into
   graph variables; the ``.index`` and data files must equal what
   ``tf.raw_ops.SaveV2`` writes for the same tensors in name order.
"""

import os
import sys
import time

import numpy as np
import pytest

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ckpt_util
from pyconv import train

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools", "tf_reference"))
import gen_checkpoints

pytestmark = pytest.mark.tf

SEED = int(os.environ.get("PYCONV_TF_SEED") or (time.time_ns() // 1000) % (2 ** 31))


def _note():
    return f"(seed {SEED}; repeat with PYCONV_TF_SEED={SEED} python -m pytest -m tf {__file__})"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tf_checkpoints"))
    manifest = gen_checkpoints.generate(SEED, root)
    values = np.load(os.path.join(root, "values.npz"))
    return root, manifest, values


def test_pyconv_reads_fresh_tf_checkpoints(fresh):
    root, manifest, values = fresh
    failures = []
    for name, entry in manifest["cases"].items():
        try:
            ckpt_util.assert_case_matches(root, entry, values)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
    assert not failures, f"{failures} {_note()}"


def _random_tensors(rng):
    def f(shape, dt):
        return rng.standard_normal(shape).astype(dt)

    special = np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, 3.4e38], np.float32)
    out = {
        "f16": f((3, 4), np.float16), "f32": f((2, 3, 4), np.float32), "f64": f((5,), np.float64),
        "special": special,
        "i8": rng.integers(-128, 128, 9).astype(np.int8),
        "i16": rng.integers(-2 ** 15, 2 ** 15, 9).astype(np.int16),
        "i32": rng.integers(-2 ** 31, 2 ** 31, 9, dtype=np.int64).astype(np.int32),
        "i64": rng.integers(-2 ** 63, 2 ** 63 - 1, 9, dtype=np.int64),
        "u8": rng.integers(0, 256, 9).astype(np.uint8),
        "u16": rng.integers(0, 2 ** 16, 9).astype(np.uint16),
        "u32": rng.integers(0, 2 ** 32, 9, dtype=np.uint64).astype(np.uint32),
        "u64": rng.integers(0, 2 ** 63, 9, dtype=np.uint64),
        "bool": rng.integers(0, 2, (2, 2)).astype(bool),
        "c64": (f(3, np.float32) + 1j * f(3, np.float32)).astype(np.complex64),
        "c128": f(3, np.float64) + 1j * f(3, np.float64),
        "scalar": np.float32(rng.standard_normal()), "step": np.int64(rng.integers(1 << 40)),
        "empty": np.zeros((0, 5), np.float32),
        "strings": np.array([bytes(rng.integers(0, 256, int(n), dtype=np.uint8))
                             for n in rng.integers(0, 50, 7)], dtype=object),
        "string_scalar": b"\x00\xff pyconv",
        "big": f((700, 200), np.float32),       # 560 KB: a table block of its own
        "net/a b/c:d": f((2,), np.float32),
    }
    for i in range(int(rng.integers(100, 400))):
        out[f"many/v{i}/weights"] = f((int(rng.integers(1, 4)),), np.float32)
    return out


def _tf_value_equal(tf_value, value):
    if isinstance(value, (bytes, np.ndarray)) and np.asarray(value).dtype == object:
        return (np.asarray(tf_value, dtype=object).reshape(-1).tolist()
                == np.asarray(value, dtype=object).reshape(-1).tolist())
    a, b = np.asarray(tf_value), np.asarray(value)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_tf_reads_pyconv_checkpoints(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(SEED)
    values = _random_tensors(rng)
    prefix = train.save_checkpoint(str(tmp_path / "new" / "model.ckpt-3"), values)
    reader = tf.train.load_checkpoint(str(tmp_path / "new"))      # through the state file
    assert sorted(reader.get_variable_to_shape_map()) == sorted(values), _note()
    bad = [n for n, v in values.items() if not _tf_value_equal(reader.get_tensor(n), v)]
    assert not bad, f"TF read other values for {bad[:10]} {_note()}"
    # the files TF writes for the same tensors, added in name order
    names = sorted(values)
    tensors = [tf.constant(values[n], dtype=tf.string) if isinstance(values[n], bytes)
               or getattr(values[n], "dtype", None) == object else tf.constant(values[n])
               for n in names]
    tf.raw_ops.SaveV2(prefix=str(tmp_path / "tf.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    for ext in (".index", ".data-00000-of-00001"):
        with open(prefix + ext, "rb") as a, open(str(tmp_path / "tf.ckpt") + ext, "rb") as b:
            assert a.read() == b.read(), f"{ext} differs from TF's {_note()}"


def test_tf1_saver_restores_pyconv_checkpoint(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(SEED + 1)
    values = {"vgg/conv1/weights": rng.standard_normal((3, 3, 3, 4)).astype(np.float32),
              "vgg/conv1/biases": rng.standard_normal(4).astype(np.float32),
              "global_step": np.int64(77)}
    prefix = train.save_checkpoint(str(tmp_path / "model.ckpt"), values)
    with tf.Graph().as_default():
        tvars = [tf.compat.v1.get_variable(n, shape=np.shape(v), dtype=tf.as_dtype(
            np.asarray(v).dtype)) for n, v in values.items()]
        saver = tf.compat.v1.train.Saver(tvars)
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, prefix)
            got = sess.run(tvars)
    for (name, v), g in zip(values.items(), got):
        assert np.asarray(g).tobytes() == np.asarray(v).tobytes(), f"{name} {_note()}"
