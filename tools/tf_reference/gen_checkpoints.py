#!/usr/bin/env python3
"""Small TensorFlow checkpoints, and what TensorFlow reads back from them, for
pyconv.train's replay tests (tests/test_checkpoints.py).

Run by hand inside the reference venv (tools/tf_reference/ENVIRONMENT.md)::

    TF_CPP_MIN_LOG_LEVEL=2 /work/venvs/tfextra/bin/python \
        tools/tf_reference/gen_checkpoints.py --seed 20261201 --out tests/fixtures/tf/checkpoints

or import it (the live tier, tests/test_checkpoints_tf_live.py) and call
``generate(seed, out_dir)``. TensorFlow is imported inside the functions.

Every checkpoint is written by TensorFlow's own writers:

* ``tf.raw_ops.SaveV2`` (format V2, the writer behind every Saver and
  tf.train.Checkpoint), with ``shape_and_slices`` for partitioned variables
  (``v2_sorted`` adds the tensors in name order, as pyconv's writer does, so
  the replay can compare pyconv's files with TF's byte for byte);
  ``tf.raw_ops.MergeV2Checkpoints`` joins per-device bundles into a sharded
  checkpoint, as ``Saver(sharded=True)`` does;
* ``tf.raw_ops.SaveSlices`` (format V1, the TensorSliceWriter of the 2016
  model zoo's single-file ``model.ckpt``); two files named
  ``<prefix>-0000i-of-00002`` are a sharded V1 checkpoint, read through the
  pattern ``<prefix>-?????-of-00002``;
* ``tf.compat.v1.train.Saver(write_version=V1)`` in graph mode (with the
  ``checkpoint`` state file) and ``tf.train.Checkpoint`` (TF2 object-based,
  ``.ATTRIBUTES/VARIABLE_VALUE`` keys and ``_CHECKPOINTABLE_OBJECT_GRAPH``).

``manifest.json`` holds per case: the path a user passes, the format,
``tf.train.list_variables``, the dtype map (NumPy names; bfloat16 listed as
``bfloat16``), ``debug_string()``, and per tensor the npz key of the values
``reader.get_tensor`` returned (bfloat16 converted exactly to float32). Where
TF 2.21's reader refuses a tensor (V1 partitioned: "Sliced checkpoints are not
supported"; V1 float16 and uint16: "Data type not supported") the values are those that
were saved, and ``"tf_refused"`` records TF's message. String tensors are kept
in the manifest as hex, with their shape. Values: ``values.npz``.
"""

import argparse
import json
import os
import shutil
import sys

import numpy as np

FORMAT_VERSION = 1


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover
        raise ImportError("gen_checkpoints needs TensorFlow: see "
                          "tools/tf_reference/ENVIRONMENT.md") from exc
    return tf


def _values(rng):
    """{name: ndarray} of every dtype the issue lists, with scalars, empty and
    odd shapes. bfloat16 is kept as float32 values exactly representable in it."""
    def floats(shape, dtype):
        return rng.standard_normal(shape).astype(dtype)

    bf16 = floats((3, 5), np.float32)
    bf16 = (bf16.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)
    vals = {
        "dtypes/float16": floats((2, 3), np.float16),
        "dtypes/float32": floats((3, 3, 2, 4), np.float32),
        "dtypes/float64": floats((5,), np.float64),
        "dtypes/bfloat16": bf16,
        "dtypes/int8": rng.integers(-128, 128, (7,)).astype(np.int8),
        "dtypes/int16": rng.integers(-2 ** 15, 2 ** 15, (2, 2)).astype(np.int16),
        "dtypes/int32": rng.integers(-2 ** 31, 2 ** 31, (4,), dtype=np.int64).astype(np.int32),
        "dtypes/int64": rng.integers(-2 ** 63, 2 ** 63 - 1, (3,), dtype=np.int64),
        "dtypes/uint8": rng.integers(0, 256, (2, 5)).astype(np.uint8),
        "dtypes/uint16": rng.integers(0, 2 ** 16, (6,)).astype(np.uint16),
        "dtypes/bool": rng.integers(0, 2, (3, 2)).astype(bool),
        "global_step": np.int64(rng.integers(1, 10 ** 6)),
        "scalars/float32": np.float32(rng.standard_normal()),
        "scalars/bool": np.bool_(True),
        "empty/float32": np.zeros((0, 3), np.float32),
        "empty/int64": np.zeros((2, 0), np.int64),
        "net/conv1/weights": floats((3, 3, 3, 8), np.float32),
        "net/conv1/biases": floats((8,), np.float32),
        "net/logits/weights": floats((8, 10), np.float32),
        "strings/vector": np.array([b"hello", b"", b"w\x00rld\xff",
                                    bytes(rng.integers(0, 256, 300, dtype=np.uint8))],
                                   dtype=object),
        "strings/scalar": np.array(b"a scalar string", dtype=object),
        "strings/matrix": np.array([[b"a", b"bc"], [b"", b"def"]], dtype=object),
    }
    return vals


def _tf_dtype(tf, name, arr):
    if name.endswith("bfloat16"):
        return tf.bfloat16
    if arr.dtype == object:
        return tf.string
    return tf.as_dtype(arr.dtype)


def _tensor(tf, name, arr):
    return tf.constant(arr, dtype=_tf_dtype(tf, name, arr))


def _slice_spec(full_shape, starts, lengths):
    """SaveV2/SaveSlices shape_and_slices: 'd0 d1 s0,l0:s1,l1'."""
    return (" ".join(str(d) for d in full_shape) + " "
            + ":".join(f"{s},{n}" for s, n in zip(starts, lengths)))


def _partitions(rng):
    """(name, full array, [(starts, lengths)]) of partitioned variables."""
    a = rng.standard_normal((6, 3)).astype(np.float32)
    b = rng.standard_normal((4, 9)).astype(np.float64)
    c = rng.integers(-100, 100, (5, 2, 2)).astype(np.int32)
    return [
        ("part/rows", a, [((0, 0), (3, 3)), ((3, 0), (3, 3))]),
        ("part/cols3", b, [((0, 0), (4, 2)), ((0, 2), (4, 4)), ((0, 6), (4, 3))]),
        ("part/uneven", c, [((0, 0, 0), (2, 2, 2)), ((2, 0, 0), (3, 2, 2))]),
    ]


def _save_v2(tf, prefix, items, slices=()):
    names, specs, tensors = [], [], []
    for name, arr in items.items():
        names.append(name)
        specs.append("")
        tensors.append(_tensor(tf, name, arr))
    for name, full, parts in slices:
        for starts, lengths in parts:
            sel = tuple(slice(s, s + n) for s, n in zip(starts, lengths))
            names.append(name)
            specs.append(_slice_spec(full.shape, starts, lengths))
            tensors.append(tf.constant(full[sel]))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=specs,
                      tensors=tensors)


def _save_v1(tf, path, items, slices=()):
    names, specs, tensors = [], [], []
    for name, arr in items.items():
        names.append(name)
        specs.append("")
        tensors.append(_tensor(tf, name, arr))
    for name, full, parts in slices:
        for starts, lengths in parts:
            sel = tuple(slice(s, s + n) for s, n in zip(starts, lengths))
            names.append(name)
            specs.append(_slice_spec(full.shape, starts, lengths))
            tensors.append(tf.constant(full[sel]))
    tf.raw_ops.SaveSlices(filename=path, tensor_names=names, shapes_and_slices=specs,
                          data=tensors)


def _v1_supported(name, arr):
    # TensorSliceWriter has no bfloat16 (it refuses it: "Unimplemented"); it
    # writes uint16, which TF 2.21's reader then refuses ("Data type not supported").
    return not name.endswith("bfloat16")


def _read_back(tf, path, saved):
    """What TF's reader returns, as the manifest entry of one case."""
    reader = tf.train.load_checkpoint(path)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    out = {"list_variables": [[n, list(s)] for n, s in tf.train.list_variables(path)],
           "dtypes": {n: dtypes[n].name for n in shapes},
           "debug_string": reader.debug_string().decode("latin-1"),
           "tensors": {}, "arrays": {}}
    for name in sorted(shapes):
        entry = {"shape": list(shapes[name]), "dtype": dtypes[name].name}
        try:
            value = reader.get_tensor(name)
        except tf.errors.OpError as exc:
            entry["tf_refused"] = f"{type(exc).__name__}: {exc.message.splitlines()[0]}"
            value = saved[name]
        if isinstance(value, bytes) or (isinstance(value, np.ndarray) and value.dtype == object):
            arr = np.asarray(value, dtype=object)
            entry["strings"] = [bytes(s).hex() for s in arr.reshape(-1)]
            entry["is_numpy_scalar"] = isinstance(value, bytes)
        else:
            entry["is_numpy_scalar"] = np.isscalar(value) and not isinstance(value, np.ndarray)
            arr = np.asarray(value)
            if arr.dtype.name == "bfloat16":
                arr = arr.astype(np.float32)
            entry["npz_dtype"] = str(arr.dtype)
            out["arrays"][name] = arr
        out["tensors"][name] = entry
    return out


def _write_state(directory, rel):
    with open(os.path.join(directory, "checkpoint"), "w") as f:
        f.write(f'model_checkpoint_path: "{rel}"\nall_model_checkpoint_paths: "{rel}"\n')


def generate(seed, out_dir):
    """Writes every case under ``out_dir``; returns the manifest dict."""
    tf = _tf()
    rng = np.random.default_rng(seed)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    vals = _values(rng)
    parts = _partitions(rng)
    full_parts = {name: full for name, full, _ in parts}
    cases = {}

    def case(name, path, fmt, saved, **extra):
        entry = _read_back(tf, os.path.join(out_dir, path), saved)
        entry.update(path=path, format=fmt, **extra)
        cases[name] = entry

    # V2: every dtype, one file
    os.makedirs(os.path.join(out_dir, "v2_dtypes"))
    _save_v2(tf, os.path.join(out_dir, "v2_dtypes", "model.ckpt"), vals)
    case("v2_dtypes", "v2_dtypes/model.ckpt", "V2", vals)

    # V2 with the names added in sorted order (no bfloat16: NumPy has none to
    # write): pyconv's writer must give these very bytes for the same values
    os.makedirs(os.path.join(out_dir, "v2_sorted"))
    sorted_vals = {n: vals[n] for n in sorted(vals) if not n.endswith("bfloat16")}
    _save_v2(tf, os.path.join(out_dir, "v2_sorted", "model.ckpt"), sorted_vals)
    case("v2_sorted", "v2_sorted/model.ckpt", "V2", sorted_vals)

    # V2 partitioned
    os.makedirs(os.path.join(out_dir, "v2_partitioned"))
    plain = {"net/w": vals["net/conv1/biases"]}
    _save_v2(tf, os.path.join(out_dir, "v2_partitioned", "model.ckpt"), plain, parts)
    case("v2_partitioned", "v2_partitioned/model.ckpt", "V2", {**plain, **full_parts})

    # V2 sharded: three per-device bundles merged, a partitioned variable split
    # across shards, and the `checkpoint` state file with a relative path
    d = os.path.join(out_dir, "v2_sharded")
    os.makedirs(d)
    tmp = [os.path.join(d, f"tmp_shard{i}") for i in range(3)]
    names = sorted(vals)
    _save_v2(tf, tmp[0], {n: vals[n] for n in names[0::3]}, [parts[0]])
    _save_v2(tf, tmp[1], {n: vals[n] for n in names[1::3]}, [(parts[1][0], parts[1][1],
                                                               parts[1][2][:2])])
    _save_v2(tf, tmp[2], {n: vals[n] for n in names[2::3]}, [(parts[1][0], parts[1][1],
                                                               parts[1][2][2:])])
    tf.raw_ops.MergeV2Checkpoints(checkpoint_prefixes=tmp,
                                  destination_prefix=os.path.join(d, "model.ckpt-42"))
    _write_state(d, "model.ckpt-42")
    case("v2_sharded", "v2_sharded/model.ckpt-42", "V2",
         {**vals, parts[0][0]: parts[0][1], parts[1][0]: parts[1][1]}, num_shards=3)

    # V1: the dtypes the V1 writer has, one file
    v1_vals = {n: v for n, v in vals.items() if _v1_supported(n, v)}
    os.makedirs(os.path.join(out_dir, "v1_dtypes"))
    _save_v1(tf, os.path.join(out_dir, "v1_dtypes", "model.ckpt"), v1_vals)
    case("v1_dtypes", "v1_dtypes/model.ckpt", "V1", v1_vals)

    # V1 partitioned, and a tensor larger than 2 * block_size (a table block of its own)
    os.makedirs(os.path.join(out_dir, "v1_partitioned"))
    big = (np.arange(131_100) % 97).astype(np.float32) * np.float32(0.25)
    v1p = {"net/big": big, "net/w": vals["net/conv1/biases"]}
    _save_v1(tf, os.path.join(out_dir, "v1_partitioned", "model.ckpt"), v1p, parts)
    case("v1_partitioned", "v1_partitioned/model.ckpt", "V1", {**v1p, **full_parts})

    # V1 sharded: two files, read through the pattern TF's Saver records
    d = os.path.join(out_dir, "v1_sharded")
    os.makedirs(d)
    names = sorted(v1_vals)
    _save_v1(tf, os.path.join(d, "model.ckpt-7-00000-of-00002"),
             {n: v1_vals[n] for n in names[0::2]}, [parts[0]])
    _save_v1(tf, os.path.join(d, "model.ckpt-7-00001-of-00002"),
             {n: v1_vals[n] for n in names[1::2]}, [parts[2]])
    _write_state(d, "model.ckpt-7-?????-of-00002")
    case("v1_sharded", "v1_sharded/model.ckpt-7-?????-of-00002", "V1",
         {**v1_vals, parts[0][0]: parts[0][1], parts[2][0]: parts[2][1]})

    # TF1 Saver, format V1, graph mode (the zoo's layout: one model.ckpt + checkpoint file)
    d = os.path.join(out_dir, "v1_saver")
    os.makedirs(d)
    saver_vals = {"InceptionV3/Conv2d_1a_3x3/weights": vals["net/conv1/weights"],
                  "InceptionV3/Conv2d_1a_3x3/BatchNorm/beta": vals["net/conv1/biases"],
                  "global_step": vals["global_step"]}
    with tf.Graph().as_default():
        tvars = [tf.compat.v1.get_variable(n, initializer=tf.constant(v))
                 for n, v in saver_vals.items()]
        saver = tf.compat.v1.train.Saver(tvars,
                                         write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            saver.save(sess, os.path.join(d, "model.ckpt"))
    _rewrite_state_relative(d)
    case("v1_saver", "v1_saver", "V1", saver_vals, directory=True)

    # TF2 object-based checkpoint
    d = os.path.join(out_dir, "tf2_object")
    module = tf.Module()
    module.dense = tf.Module()
    module.dense.kernel = tf.Variable(vals["net/logits/weights"])
    module.dense.bias = tf.Variable(vals["dtypes/float64"])
    module.step = tf.Variable(vals["global_step"])
    ckpt = tf.train.Checkpoint(model=module)
    ckpt.save(os.path.join(d, "ckpt"))
    obj_vals = {"model/dense/kernel/.ATTRIBUTES/VARIABLE_VALUE": vals["net/logits/weights"],
                "model/dense/bias/.ATTRIBUTES/VARIABLE_VALUE": vals["dtypes/float64"],
                "model/step/.ATTRIBUTES/VARIABLE_VALUE": vals["global_step"]}
    case("tf2_object", "tf2_object", "V2", obj_vals, directory=True)

    arrays = {}
    for cname, entry in cases.items():
        for tname, arr in entry.pop("arrays").items():
            key = f"{cname}/{tname}"
            entry["tensors"][tname]["npz"] = key
            arrays[key] = arr
    manifest = {"format_version": FORMAT_VERSION, "seed": seed,
                "versions": {"tensorflow": tf.__version__, "numpy": np.__version__,
                             "python": sys.version.split()[0]},
                "cases": cases}
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
    np.savez_compressed(os.path.join(out_dir, "values.npz"), **arrays)
    return manifest


def _rewrite_state_relative(directory):
    """The Saver records absolute paths; keep the fixture relocatable (as
    tf.train.Checkpoint's own relative "ckpt-1")."""
    state = os.path.join(directory, "checkpoint")
    with open(state) as f:
        text = f.read()
    text = text.replace(os.path.abspath(directory) + os.sep, "")
    with open(state, "w") as f:
        f.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--out", default=os.path.join("tests", "fixtures", "tf", "checkpoints"))
    args = parser.parse_args(argv)
    manifest = generate(args.seed, args.out)
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(args.out)
                for f in fs)
    print(f"{len(manifest['cases'])} cases, "
          f"{sum(len(c['tensors']) for c in manifest['cases'].values())} tensors, "
          f"{total / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
