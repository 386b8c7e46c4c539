"""pyconv.train against checkpoints TensorFlow 2.21 wrote, replayed without TensorFlow.

Fixtures: tests/fixtures/tf/checkpoints (tools/tf_reference/gen_checkpoints.py):
the files TF wrote and, in values.npz / manifest.json, what TF's reader
returned for them (list_variables, dtypes, debug_string, every tensor).
Independent references elsewhere: a bitwise pure-Python CRC-32C and the check
values of FACTS A3/A8, the Snappy format description (hand-made vectors) and
an independent Snappy compressor (cramjam).
"""

import json
import os
import shutil
import struct

import numpy as np
import pytest

import ckpt_util
from ckpt_util import FIXTURES, bitwise_crc32c
from pyconv import _ckpt_proto, _ckpt_table, _conv, _snappy, train

with open(os.path.join(FIXTURES, "manifest.json")) as _f:
    MANIFEST = json.load(_f)
CASES = MANIFEST["cases"]
VALUES = np.load(os.path.join(FIXTURES, "values.npz"))


def fixture(*parts):
    return os.path.join(FIXTURES, *parts)


def copy_case(tmp_path, case):
    dst = tmp_path / case
    shutil.copytree(fixture(case), dst)
    return dst


def assert_same_tensor(value, entry):
    ckpt_util.assert_same_tensor(value, entry, VALUES)


# --------------------------------------------------------------------------- CRC-32C


def test_crc32c_check_values():
    assert _conv.crc32c(b"123456789") == 0xE3069283          # FACTS A3 [TF 2.21]
    assert _conv.crc32c(b"") == 0
    # FACTS A8: the masked CRC TF stored for global_step = int64 7
    assert _ckpt_table.mask(_conv.crc32c(struct.pack("<q", 7))) == 0x119FD7BB
    assert _ckpt_table.unmask(0x119FD7BB) == _conv.crc32c(struct.pack("<q", 7))


@pytest.mark.parametrize("portable", [False, True])
def test_crc32c_against_bitwise_reference(portable):
    rng = np.random.default_rng(1)
    before = _conv.crc32c_impl(None)
    _conv.crc32c_impl(portable)
    try:
        if portable:
            assert _conv.crc32c_impl(None) == "slice-by-8"
        for n in [0, 1, 3, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 4095, 4096, 12287, 12288, 12289,
                  12296, 24577, 40000]:
            data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
            ref = bitwise_crc32c(data) if n <= 4096 else ckpt_util.slow_crc32c(data)
            assert _conv.crc32c(data) == ref, n
            for cut in (0, 1, n // 3, n):           # continuing from a previous value
                assert _conv.crc32c(data[cut:], _conv.crc32c(data[:cut])) == ref
            # an unaligned start
            assert _conv.crc32c(memoryview(b"x" + data)[1:]) == ref
    finally:
        _conv.crc32c_impl(before == "slice-by-8")


def test_crc32c_buffers_and_errors():
    arr = np.arange(50000, dtype=np.float32)                # >= 64 KiB: GIL released
    assert _conv.crc32c(arr) == ckpt_util.slow_crc32c(arr.tobytes())
    assert _conv.crc32c(bytearray(b"123456789")) == 0xE3069283
    with pytest.raises(ValueError, match="value must be"):
        _conv.crc32c(b"", 1 << 32)
    with pytest.raises(ValueError, match="value must be"):
        _conv.crc32c(b"", -1)
    with pytest.raises(ValueError, match="not C-contiguous"):
        _conv.crc32c(arr[::2])
    with pytest.raises(TypeError):
        _conv.crc32c("text")


# --------------------------------------------------------------------------- replay


@pytest.mark.parametrize("case", sorted(CASES))
def test_replay_against_tf(case):
    ckpt_util.assert_case_matches(FIXTURES, CASES[case], VALUES)


def test_fixture_coverage():
    """The fixtures hold what the issue asks for (so the replay proves it)."""
    formats = {c["format"] for c in CASES.values()}
    assert formats == {"V1", "V2"}
    for fmt in ("V1", "V2"):
        dts = {d for c in CASES.values() if c["format"] == fmt for d in c["dtypes"].values()}
        want = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                "uint16", "bool", "string"} | ({"bfloat16"} if fmt == "V2" else set())
        assert want <= dts, fmt
    assert CASES["v2_sharded"]["num_shards"] == 3
    assert len(os.listdir(fixture("v1_sharded"))) == 3
    refused = [t["tf_refused"] for c in CASES.values() for t in c["tensors"].values()
               if "tf_refused" in t]
    assert any("Sliced" in r for r in refused) and any("Data type" in r for r in refused)
    names = [n for n, _ in CASES["tf2_object"]["list_variables"]]
    assert "_CHECKPOINTABLE_OBJECT_GRAPH" in names
    assert any(n.endswith(".ATTRIBUTES/VARIABLE_VALUE") for n in names)


def test_scalars_strings_and_copies():
    path = fixture("v2_dtypes", "model.ckpt")
    reader = train.load_checkpoint(path)
    step = reader.get_tensor("global_step")
    assert type(step) is np.int64
    assert type(reader.get_tensor("scalars/bool")) is np.bool_
    assert reader.get_tensor("strings/scalar") == b"a scalar string"
    assert reader.get_tensor("empty/float32").shape == (0, 3)
    a = reader.get_tensor("net/conv1/weights")
    a[...] = 0
    assert reader.get_tensor("net/conv1/weights").any()    # each call gives its own copy
    assert reader.get_tensor("dtypes/bfloat16").dtype == np.float32


def test_large_v1_record_is_read_aligned_and_owned():
    reader = train.load_checkpoint(fixture("v1_partitioned", "model.ckpt"))
    big = reader.get_tensor("net/big")
    assert big.ctypes.data % 64 == 0 and big.flags.writeable and big.flags.c_contiguous
    big[:] = -1
    again = reader.get_tensor("net/big")
    assert again[0] == 0 and again[1] == 0.25


def test_chunked_reads(monkeypatch):
    """Multi-GB tensors are read and checksummed in chunks: the same bytes."""
    monkeypatch.setattr(_ckpt_table, "_CHUNK", 7)
    monkeypatch.setattr(_ckpt_table, "_OWN_MAPPING_FROM", 16)   # mapped arrays too
    entry = CASES["v2_sharded"]
    reader = train.load_checkpoint(fixture("v2_sharded"))
    for name, t in entry["tensors"].items():
        assert_same_tensor(reader.get_tensor(name), t)


# --------------------------------------------------------------------------- paths


def test_paths_as_tf_takes_them(tmp_path):
    want = train.list_variables(fixture("v2_dtypes", "model.ckpt"))
    for p in ("v2_dtypes/model.ckpt.index", "v2_dtypes/model.ckpt.data-00000-of-00001"):
        assert train.list_variables(fixture(*p.split("/"))) == want
    # a directory: its latest checkpoint
    assert train.latest_checkpoint(fixture("v2_sharded")) == fixture("v2_sharded",
                                                                     "model.ckpt-42")
    assert train.latest_checkpoint(fixture("v1_saver")) == fixture("v1_saver", "model.ckpt")
    assert train.latest_checkpoint(fixture("tf2_object")) == fixture("tf2_object", "ckpt-1")
    assert train.latest_checkpoint(fixture("v1_sharded")).endswith("model.ckpt-7-?????-of-00002")
    assert train.list_variables(fixture("v1_sharded")) == \
        [tuple(x) for x in CASES["v1_sharded"]["list_variables"]]
    # one V1 shard alone is a V1 checkpoint of its own tensors
    one = train.list_variables(fixture("v1_sharded", "model.ckpt-7-00000-of-00002"))
    assert 0 < len(one) < len(CASES["v1_sharded"]["list_variables"])
    assert train.load_variable(fixture("v1_saver"), "global_step:0") == \
        VALUES["v1_saver/global_step"]
    assert train.NewCheckpointReader(fixture("v1_dtypes", "model.ckpt")).has_tensor("global_step")
    assert train.latest_checkpoint(str(tmp_path)) is None


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Failed to find any matching files"):
        train.load_checkpoint(str(tmp_path / "nope.ckpt"))
    with pytest.raises(ValueError, match="Couldn't find 'checkpoint' file or checkpoints in "
                                         "given directory"):
        train.load_checkpoint(str(tmp_path))
    with pytest.raises(TypeError, match="must be a path"):
        train.load_checkpoint(3)
    reader = train.load_checkpoint(fixture("v2_dtypes", "model.ckpt"))
    with pytest.raises(KeyError) as info:
        reader.get_tensor("nope")
    assert str(info.value) == "Key nope not found in checkpoint"
    assert not reader.has_tensor("nope") and not reader.has_tensor(3)
    # the state file names a checkpoint that is gone
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "gone.ckpt"\n')
    with pytest.warns(UserWarning, match="Couldn't match files"):
        assert train.latest_checkpoint(str(tmp_path)) is None
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "unterminated\n')
    with pytest.warns(UserWarning, match="checkpoint ignored"):
        assert train.latest_checkpoint(str(tmp_path)) is None
    # a missing data shard
    d = copy_case(tmp_path, "v2_sharded")
    os.remove(d / "model.ckpt-42.data-00001-of-00003")
    with train.load_checkpoint(str(d)) as reader, pytest.raises(FileNotFoundError,
                                                                match="shard 1 of 3"):
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)


def test_state_file_escapes(tmp_path):
    d = tmp_path / 'we"ird\\dir'
    prefix = train.save_checkpoint(str(d / "m\u00e9.ckpt"), {"a": np.ones(2)})
    assert train.latest_checkpoint(str(d)) == prefix
    (d / "checkpoint").write_text('model_checkpoint_path: "m\\303\\251.ckpt"\n'
                                  'all_model_checkpoint_timestamps: 1.5e9\n')
    assert train.latest_checkpoint(str(d)) == prefix


# --------------------------------------------------------------------------- writing


def test_writer_gives_tf_bytes(tmp_path):
    """The same tensors TF wrote in name order: pyconv's files are TF's, byte for byte."""
    entry = CASES["v2_sorted"]
    reader = train.load_checkpoint(fixture("v2_sorted", "model.ckpt"))
    values = {n: reader.get_tensor(n) for n in entry["tensors"]}
    prefix = train.save_checkpoint(str(tmp_path / "out" / "model.ckpt"), values)
    for ext in (".index", ".data-00000-of-00001"):
        with open(prefix + ext, "rb") as a, open(fixture("v2_sorted", "model.ckpt" + ext),
                                                  "rb") as b:
            assert a.read() == b.read(), ext
    assert train.latest_checkpoint(str(tmp_path / "out")) == prefix
    assert sorted(os.listdir(tmp_path / "out")) == [
        "checkpoint", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]


def test_writer_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    values = {
        "a/f32": rng.standard_normal((3, 4)).astype(np.float32),
        "a/f64:0": rng.standard_normal(5),
        "b/u32": np.arange(4, dtype=np.uint32),
        "b/c64": (rng.standard_normal(3) + 1j).astype(np.complex64),
        "c/str": np.array(["x", "\u00e9t\u00e9"]),
        "c/bytes": b"raw",
        "c/big_endian": np.arange(3, dtype=">i4"),
        "c/strided": np.arange(12.0).reshape(3, 4)[:, ::2],
        "d/empty": np.zeros((0,), np.int8),
        "d/long_block": np.zeros(200_000, np.float32),    # keys spread over 2+ blocks
        **{f"many/{i:04d}": np.float32(i) for i in range(300)},
    }
    prefix = train.save_checkpoint(str(tmp_path / "m"), values, write_state=False)
    assert not os.path.exists(tmp_path / "checkpoint")
    r = train.load_checkpoint(prefix)
    assert r.get_tensor("a/f64").tobytes() == values["a/f64:0"].tobytes()
    assert list(r.get_tensor("c/str")) == ["x".encode(), "\u00e9t\u00e9".encode()]
    assert r.get_tensor("c/bytes") == b"raw"
    assert r.get_tensor("c/big_endian").dtype == np.int32
    np.testing.assert_array_equal(r.get_tensor("c/big_endian"), [0, 1, 2])
    np.testing.assert_array_equal(r.get_tensor("c/strided"), values["c/strided"])
    np.testing.assert_array_equal(r.get_tensor("b/c64"), values["b/c64"])
    assert r.get_tensor("many/0123") == np.float32(123)
    assert len(r.get_variable_to_shape_map()) == len(values)


def test_writer_errors(tmp_path):
    p = str(tmp_path / "m")
    with pytest.raises(TypeError, match="object array holding NoneType"):
        train.save_checkpoint(p, {"x": np.array([None, 1], dtype=object)})
    with pytest.raises(TypeError, match="dtype"):
        train.save_checkpoint(p, {"x": np.array(["2020-01-01"], dtype="datetime64[D]")})
    with pytest.raises(ValueError, match="two tensors named"):
        train.save_checkpoint(p, {"x": 1, "x:0": 2})
    with pytest.raises(TypeError, match="mapping must be"):
        train.save_checkpoint(p, 3)
    with pytest.raises(TypeError, match="non-empty strings"):
        train.save_checkpoint(p, {"": 1})
    assert not os.listdir(tmp_path)          # nothing half-written


# --------------------------------------------------------------------------- snappy


def _literal(data):
    n = len(data) - 1
    if n < 60:
        return bytes([n << 2]) + data
    nbytes = (n.bit_length() + 7) // 8
    return bytes([(59 + nbytes) << 2]) + n.to_bytes(nbytes, "little") + data


def _c_snappy(stream, max_length):
    return _conv.snappy_decompress(stream, max_length)


SNAPPY = pytest.mark.parametrize("decompress", [_snappy.decompress, _c_snappy],
                                 ids=["python", "c"])


@SNAPPY
def test_snappy_hand_vectors(decompress):
    """Streams built by hand from format_description.txt, in the Python reference
    and its C twin."""
    _snappy_decompress = decompress
    v = _ckpt_proto.encode_varint
    # literal + copy with 1-byte offset (len 4..11), overlapping (offset 1 = run)
    stream = v(3 + 9) + _literal(b"abc") + bytes([0b000_101_01, 1])   # len 4+5=9, offset 1
    assert bytes(_snappy_decompress(stream, 100)) == b"abc" + b"c" * 9
    # copy with 2-byte offset, len 1..64
    stream = v(8) + _literal(b"wxyz") + bytes([(4 - 1) << 2 | 2]) + (4).to_bytes(2, "little")
    assert bytes(_snappy_decompress(stream, 100)) == b"wxyzwxyz"
    # the 1-byte-offset copy's offset high bits come from the tag: offset 0x103
    stream = v(0x103 + 4) + _literal(bytes(range(256)) + b"abc") + bytes([0b001_000_01, 3])
    assert bytes(_snappy_decompress(stream, 0x107))[-4:] == bytes(range(4))
    # copy with 4-byte offset, overlapping by 2
    stream = v(2 + 7) + _literal(b"ab") + bytes([(7 - 1) << 2 | 3]) + (2).to_bytes(4, "little")
    assert bytes(_snappy_decompress(stream, 100)) == b"ab" + b"abababa"
    # long literals: 1- and 2-byte length fields
    for n in (61, 300, 70000):
        data = bytes(range(256)) * (n // 256) + bytes(n % 256)
        assert bytes(_snappy_decompress(v(n) + _literal(data), n)) == data
    # an empty stream
    assert bytes(_snappy_decompress(v(0), 0)) == b""


@pytest.mark.parametrize("stream, match", [
    (b"\x05" + bytes([2 << 2]) + b"ab", "runs past the end"),           # literal too long
    (b"\x04" + bytes([0 << 2]) + b"a" + bytes([0b000_000_01, 2]), "offset"),  # before start
    (b"\x04" + bytes([0 << 2]) + b"a" + bytes([0b000_000_01, 0]), "offset"),  # offset 0
    (b"\x03" + _literal(b"ab"), "declares 3"),                          # too short
    (b"\x01" + _literal(b"ab"), "runs past"),                           # too long
    (b"\xff\xff\xff\xff\x0f", "more than"),                             # absurd length
    (b"\x80", "truncated varint"),
    (b"\x04" + bytes([0 << 2]) + b"a" + bytes([2]), "runs past the end"),  # cut copy
])
def test_snappy_malformed(stream, match):
    with pytest.raises(_ckpt_proto.FormatError, match=match):
        _snappy.decompress(stream, 1000)
    with pytest.raises(ValueError):            # the C twin refuses it too
        _conv.snappy_decompress(stream, 1000)


def test_snappy_against_cramjam():
    cramjam = pytest.importorskip("cramjam")   # a test extra: installed in CI
    rng = np.random.default_rng(5)
    for n in (0, 1, 10, 100, 5000, 70000):
        for data in (rng.integers(0, 4, n, dtype=np.uint8).tobytes(),
                     rng.integers(0, 256, n, dtype=np.uint8).tobytes(),
                     (b"pyconv checkpoints " * (n // 19 + 1))[:n]):
            comp = bytes(cramjam.snappy.compress_raw(data))
            assert bytes(_snappy.decompress(comp, n)) == data
            assert bytes(_conv.snappy_decompress(comp, n)) == data


@pytest.mark.parametrize("case", ["v1_dtypes", "v1_partitioned", "v1_saver"])
def test_snappy_compressed_v1(tmp_path, case):
    """V1 files as TF 2015-16 wrote them (Snappy blocks), rebuilt from TF's files."""
    pytest.importorskip("cramjam")
    src = fixture(case, "model.ckpt")
    dst = str(tmp_path / "model.ckpt")
    assert ckpt_util.snappy_reencode(src, dst) >= 1
    assert os.path.getsize(dst) < os.path.getsize(src)
    with open(dst, "rb") as f:
        data = f.read()
    entry = CASES[case]
    reader = train.load_checkpoint(dst)
    for name, t in entry["tensors"].items():
        assert_same_tensor(reader.get_tensor(name), t)
    # a corrupt byte inside a compressed block is caught by the block checksum
    bad = bytearray(data)
    bad[10] ^= 0x40
    with open(dst, "wb") as f:
        f.write(bad)
    with pytest.raises(ValueError, match="checksum mismatch"):
        r = train.load_checkpoint(dst)
        for name in r.get_variable_to_shape_map():
            r.get_tensor(name)


# --------------------------------------------------------------------------- bad files


def _read_all(path):
    with train.load_checkpoint(path) as reader:
        reader.get_variable_to_dtype_map()
        reader.debug_string()
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)


@pytest.mark.parametrize("content, match", [
    (b"", "too short"),
    (b"\x00" * 47, "too short"),
    (bytes(range(256)) * 4, "bad magic"),
    (b"\x00" * 40 + struct.pack("<Q", _ckpt_table.MAGIC), "checksum mismatch|outside"),
    (b"\xff" * 40 + struct.pack("<Q", _ckpt_table.MAGIC), "footer: varint"),
    (b"\x80" * 10 + b"\x01" + b"\x00" * 29 + struct.pack("<Q", _ckpt_table.MAGIC),
     "footer: varint longer than 10 bytes"),
    (b"\x00\x08\x10\x08" + b"\x00" * 36 + struct.pack("<Q", _ckpt_table.MAGIC), "outside"),
])
def test_foreign_files(tmp_path, content, match):
    for name in ("model.ckpt", "model.ckpt.index"):
        p = tmp_path / name
        p.write_bytes(content)
        (tmp_path / "model.ckpt.data-00000-of-00001").write_bytes(b"")
        with pytest.raises(ValueError, match=match) as info:
            _read_all(str(tmp_path / "model.ckpt"))
        assert str(p) in str(info.value)
        os.remove(p)


def test_npz_is_not_a_checkpoint(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="bad magic.*not a checkpoint"):
        train.load_checkpoint(str(tmp_path / "w.npz"))


def _corrupt_every_byte(tmp_path, case, filename, step=1):
    d = copy_case(tmp_path, case)
    target = d / filename
    good = target.read_bytes()
    path = str(d / CASES[case]["path"].split("/", 1)[1]) if "/" in CASES[case]["path"] \
        else str(d)
    missed = []
    for i in range(0, len(good), step):
        bad = bytearray(good)
        bad[i] ^= 0x01 << (i % 8)
        target.write_bytes(bad)
        try:
            _read_all(path)
        except ValueError as exc:
            assert str(target) in str(exc) or "checkpoint" in str(exc)
            continue
        except (KeyError, FileNotFoundError):
            continue      # a flipped bit in a name or a shard number
        missed.append(i)
    target.write_bytes(good)
    return missed, good


@pytest.mark.parametrize("case, filename", [
    ("v2_dtypes", "model.ckpt.index"),
    ("v2_dtypes", "model.ckpt.data-00000-of-00001"),
    ("v2_partitioned", "model.ckpt.index"),
    ("v1_dtypes", "model.ckpt"),
    ("v1_sharded", "model.ckpt-7-00001-of-00002"),
])
def test_every_corrupt_byte_is_caught(tmp_path, case, filename):
    """Flipping any bit of any byte gives an error, never wrong values, a crash or a
    hang -- except the padding of the footer, which TF ignores too."""
    missed, good = _corrupt_every_byte(tmp_path, case, filename)
    if ".data-" in filename:
        assert missed == []
        return
    footer = good[-48:]
    pos = 0
    for _ in range(4):
        pos = _ckpt_proto.read_varint(footer, pos)[1]
    padding = range(len(good) - 48 + pos, len(good) - 8)
    assert missed == list(padding)


def test_every_truncation_is_caught(tmp_path):
    for case, filename in (("v2_dtypes", "model.ckpt.index"),
                           ("v2_dtypes", "model.ckpt.data-00000-of-00001"),
                           ("v1_dtypes", "model.ckpt")):
        d = copy_case(tmp_path / "t", case)
        target = d / filename
        good = target.read_bytes()
        for n in range(0, len(good), 7):
            target.write_bytes(good[:n])
            with pytest.raises(ValueError):
                _read_all(str(d / "model.ckpt"))
        shutil.rmtree(tmp_path / "t")


def _write_index(path, entries, header=None):
    """A V2 .index with hand-made entries (fields as raw protobuf bytes)."""
    pb = _ckpt_proto
    if header is None:
        header = pb.field_varint(1, 1) + pb.field_bytes(3, pb.field_varint(1, 1))
    with open(path + ".index", "wb") as f:
        t = _ckpt_table.TableWriter(f)
        t.add(b"", header)
        for key, value in sorted(entries.items()):
            t.add(key, value)
        t.finish()


def _entry(dtype=1, shape=(2,), offset=0, size=8, crc=None, shard=None, extra=b""):
    pb = _ckpt_proto
    dims = b"".join(pb.field_bytes(2, pb.field_varint(1, d)) for d in shape)
    out = pb.field_varint(1, dtype) + pb.field_bytes(2, dims)
    if shard is not None:
        out += pb.field_varint(3, shard)
    out += pb.field_varint(4, offset) + pb.field_varint(5, size)
    if crc is not None:
        out += pb.field_fixed32(6, crc)
    return out + extra


@pytest.mark.parametrize("entry, match", [
    (_entry(size=1 << 60), "needs 8 bytes"),
    (_entry(shape=(1 << 40, 1 << 23), size=4 << 60), "more than 2\\*\\*62"),
    (_entry(shape=(1 << 40, 1 << 20), size=4 << 60), "runs past the end of the file"),
    (_entry(shape=(1 << 28, 4), size=4 << 30), "runs past the end of the file"),
    (_entry(offset=1 << 62), "runs past the end of the file"),
    (_entry(dtype=7, shape=(1 << 40,), size=16), "claims 1099511627776 strings"),
    (_entry(dtype=21), "DT_VARIANT, which pyconv cannot read"),
    (_entry(dtype=99), "DataType\\(99\\)"),
    (_entry(shard=5), "data shard 5 of 1"),
    (_entry(shape=(2,)) + b"\x12\x05\x12\x03\x08", "runs past the end of the message"),
    (_entry(shape=(2,)) + b"\x38" + b"\xff" * 9 + b"\x7f", "varint larger than 64 bits"),
    (_entry(shape=(2,)) + b"\x38" + b"\xff" * 10 + b"\x01", "varint longer than 10"),
    (_entry(shape=()) + b"\x1a\x01", "length"),
    (b"\x0b\x01", "wire type|field"),
])
def test_absurd_entries(tmp_path, entry, match):
    """Sizes, offsets, shapes and lengths a file merely claims are checked against
    the file before anything is allocated (a 2**62-element claim must not be tried)."""
    prefix = str(tmp_path / "m")
    _write_index(prefix, {b"x": entry})
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        f.write(b"\x00" * 8)
    with pytest.raises(ValueError, match=match):
        _read_all(prefix)


def test_bad_header_and_slices(tmp_path):
    pb = _ckpt_proto
    prefix = str(tmp_path / "m")
    open(prefix + ".data-00000-of-00001", "wb").close()
    _write_index(prefix, {b"x": _entry(size=0, shape=(0,))},
                 header=pb.field_varint(1, 1 << 40))
    with pytest.raises(ValueError, match="claims 1099511627776 data shards"):
        _read_all(prefix)
    # a partitioned variable whose slices do not tile it, or are missing
    ext = pb.field_bytes(1, pb.field_varint(2, 1))
    sl = pb.field_bytes(7, ext)
    _write_index(prefix, {b"p": pb.field_varint(1, 1) + pb.field_bytes(
        2, pb.field_bytes(2, pb.field_varint(1, 4))) + sl})
    with pytest.raises(ValueError, match="cover 1 elements"):
        _read_all(prefix)
    _write_index(prefix, {b"p": pb.field_varint(1, 1) + pb.field_bytes(
        2, pb.field_bytes(2, pb.field_varint(1, 1))) + sl})
    with pytest.raises(ValueError, match="slice .* is missing"):
        _read_all(prefix)
    ext = pb.field_bytes(1, pb.field_varint(1, 3) + pb.field_varint(2, 5))
    _write_index(prefix, {b"p": pb.field_varint(1, 1) + pb.field_bytes(
        2, pb.field_bytes(2, pb.field_varint(1, 4))) + pb.field_bytes(7, ext)})
    with pytest.raises(ValueError, match="outside dimension"):
        _read_all(prefix)


def test_block_handles_out_of_range(tmp_path):
    """An index entry pointing past the blocks, into the footer, or at itself."""
    good = open(fixture("v2_dtypes", "model.ckpt.index"), "rb").read()
    d = copy_case(tmp_path, "v2_dtypes")
    size = len(good)
    index_off = _ckpt_proto.read_varint(good[-48:], _ckpt_proto.read_varint(
        good[-48:], _ckpt_proto.read_varint(good[-48:], 0)[1])[1])[0]
    pb = _ckpt_proto
    for off, n in ((size, 10), (size - 40, 20), (0, 1 << 40), (index_off, 4), (1 << 63, 1)):
        # rebuild the index block with one bad handle, with a valid checksum
        block = _ckpt_table._BlockBuilder(1)
        block.add(b"x", pb.encode_varint(off) + pb.encode_varint(n))
        contents = block.finish()
        trailer = b"\x00" + struct.pack("<I", _ckpt_table.mask(
            _conv.crc32c(b"\x00", _conv.crc32c(contents))))
        body = good[:index_off] + contents + trailer
        meta = pb.read_varint(good[-48:], 0)
        foot = pb.encode_varint(meta[0]) + pb.read_varint(good[-48:], meta[1])[0].to_bytes(
            1, "little") + pb.encode_varint(index_off) + pb.encode_varint(len(contents))
        foot += b"\x00" * (40 - len(foot)) + struct.pack("<Q", _ckpt_table.MAGIC)
        (d / "model.ckpt.index").write_bytes(body + foot)
        with pytest.raises(ValueError, match="outside|bundle header|checksum|fit|short"):
            _read_all(str(d / "model.ckpt"))


def test_varint_decoding_limits():
    with pytest.raises(_ckpt_proto.FormatError, match="longer than 10"):
        _ckpt_proto.read_varint(b"\x80" * 11 + b"\x01", 0)
    with pytest.raises(_ckpt_proto.FormatError, match="larger than 64"):
        _ckpt_proto.read_varint(b"\xff" * 9 + b"\x7f", 0)
    assert _ckpt_proto.read_varint(b"\xff" * 9 + b"\x01", 0) == ((1 << 64) - 1, 10)
    got = _ckpt_proto.varints(b"\x01\xff\x01\x80\x80\x01" + b"\xff" * 9 + b"\x01")
    assert list(got) == [1, 255, 1 << 14, (1 << 64) - 1]
    with pytest.raises(_ckpt_proto.FormatError, match="truncated"):
        _ckpt_proto.varints(b"\x01\x80")
    with pytest.raises(_ckpt_proto.FormatError, match="longer than 10"):
        _ckpt_proto.varints(b"\x80" * 11 + b"\x01")


def test_ordered_code_keys():
    """FACTS B3 examples [TF 2.21]."""
    from pyconv._ckpt_v2 import _signed_num_increasing, slice_key

    for v, hexed in [(0, "80"), (3, "83"), (-1, "7f"), (63, "bf"), (64, "c040"), (-64, "40"),
                     (-65, "3fbf"), (1000, "c3e8"), (-1000, "3c18"), (0x424242, "f0424242"),
                     (-0x800, "3800")]:
        assert _signed_num_increasing(v).hex() == hexed, v
    assert slice_key(b"net/part", [(0, 3, False), (0, 3, False)]) == \
        b"\x00net/part\x00\x01\x01\x02\x80\x83\x80\x83"
    assert slice_key(b"w", [(0, 2, True)]) == b"\x00w\x00\x01\x01\x01\x80\x7f"
    assert slice_key(b"a\x00b\xff", []) == b"\x00a\x00\xffb\xff\x00\x00\x01\x00"
    # order is preserved over the whole int64 range
    vals = [-(1 << 63), -(1 << 62) - 1, -(1 << 62), -65, -64, -1, 0, 63, 64, (1 << 62) - 1,
            1 << 62, (1 << 63) - 1]
    enc = [_signed_num_increasing(v) for v in vals]
    assert enc == sorted(enc) and len(set(enc)) == len(enc)


def test_fuzz_harness_and_regressions():
    """The fuzz harness runs (its seeds and 300 of its own mutations), and every input
    it ever found (tools/fuzz/regressions/ckpt-*; none so far) is handled."""
    import importlib.util

    d = os.path.join(os.path.dirname(__file__), "..", "tools", "fuzz")
    spec = importlib.util.spec_from_file_location(
        "fuzz_checkpoint", os.path.join(d, "fuzz_checkpoint.py"))
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        mod._init()
        seeds = sorted(f for f in os.listdir(os.path.join(d, "regressions"))
                       if f.startswith("ckpt-"))
        for s in seeds:
            with open(os.path.join(d, "regressions", s), "rb") as f:
                mod.run_one(f.read())
        for i, (_, _, seed) in mod.SLOTS.items():
            mod.run_one(bytes([i]) + seed)
            mod.run_one(bytes([i | 0x80]) + seed)
        assert mod.own(300, seed=1) == 300
    finally:
        _ckpt_table.VERIFY_CHECKSUMS = True
        shutil.rmtree(mod.WORK, ignore_errors=True)


# ------------------------------------------------------------------ python -m pyconv inspect


def test_inspect_command(capsys):
    from pyconv.__main__ import main

    assert main(["inspect", fixture("v2_dtypes", "model.ckpt")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("format V2, 22 tensors")
    row = next(line for line in out if line.startswith("net/conv1/weights"))
    assert row.split() == ["net/conv1/weights", "float32", "[3,3,3,8]", "216", "864", "B"]
    assert next(line for line in out if line.startswith("dtypes/bfloat16")).split()[1] == \
        "bfloat16"
    assert out[-1].startswith("total: 22 tensors, ")
    assert main(["inspect", fixture("v1_saver"), "--tensor", "global_step"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["tensor_name:  global_step", str(VALUES["v1_saver/global_step"])]
    assert main(["inspect", fixture("tf2_object"), "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("tensor_name:") == len(CASES["tf2_object"]["list_variables"])


@pytest.mark.parametrize("args, message", [
    (["/no/such/ckpt"], "error: Unsuccessful TensorSliceReader constructor: Failed to find"),
    ([os.path.join(FIXTURES, "manifest.json")], "bad magic number"),
    ([FIXTURES], "Couldn't find 'checkpoint' file"),
    ([os.path.join(FIXTURES, "v1_saver"), "--tensor", "nope"],
     "error: Key nope not found in checkpoint"),
])
def test_inspect_errors(capsys, args, message):
    from pyconv.__main__ import main

    assert main(["inspect", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _write_v1(path, meta_tensors, records):
    """A V1 file from hand-made protobuf pieces (meta tensors, {key: SavedSlice bytes})."""
    pb = _ckpt_proto
    meta = b"".join(pb.field_bytes(1, t) for t in meta_tensors)
    with open(path, "wb") as f:
        t = _ckpt_table.TableWriter(f)
        t.add(b"", pb.field_bytes(1, meta))
        for key, saved in sorted(records.items()):
            t.add(key, pb.field_bytes(2, saved))
        t.finish()


@pytest.mark.parametrize("dims, dtype, payload, match", [
    ([1 << 40], 1, b"\x2a\x08" + b"\x00" * 8, "holds 2 values, its shape \\[1099511627776\\]"),
    ([2], 1, b"\x2a\x07" + b"\x00" * 7, "not a multiple of 4"),
    ([2], 3, b"\x3a\x02\x01\x80", "truncated varint"),
    ([2], 7, b"\x42\x01a", "holds 1 strings"),
    ([3], 19, b"\x6a\x02\x01\x02", "holds 2 values"),
    ([2], 20, b"", "DT_RESOURCE, which pyconv cannot read"),
])
def test_v1_bad_records(tmp_path, dims, dtype, payload, match):
    from pyconv._ckpt_v2 import slice_key

    pb = _ckpt_proto
    shape = b"".join(pb.field_bytes(2, pb.field_varint(1, d)) for d in dims)
    extents = b"".join(pb.field_bytes(1, b"") for _ in dims)
    meta = (pb.field_bytes(1, b"x") + pb.field_bytes(2, shape) + pb.field_varint(3, dtype)
            + pb.field_bytes(4, extents))
    key = slice_key(b"x", [(0, d, True) for d in dims])
    saved = pb.field_bytes(1, b"x") + pb.field_bytes(2, extents) + pb.field_bytes(3, payload)
    path = str(tmp_path / "v1.ckpt")
    _write_v1(path, [meta], {key: saved})
    with pytest.raises(ValueError, match=match) as info:
        _read_all(path)
    assert path in str(info.value)
    # the record is missing
    _write_v1(path, [meta], {})
    with pytest.raises(ValueError, match="data record is missing|cannot read"):
        _read_all(path)
    # the same name twice with another shape in a second shard
    _write_v1(str(tmp_path / "s-00000-of-00002"), [meta], {key: saved})
    other = meta.replace(pb.field_varint(3, dtype), pb.field_varint(3, 2))
    _write_v1(str(tmp_path / "s-00001-of-00002"), [other], {})
    with pytest.raises(ValueError, match="in another file"):
        _read_all(str(tmp_path / "s-?????-of-00002"))


def _partitioned_index(prefix, rows, overlap=False):
    """A V2 checkpoint of float32 x[rows, 2] saved as one slice per row (TF's
    layout for partitioned variables), built from hand-made entries."""
    from pyconv._ckpt_v2 import slice_key

    pb = _ckpt_proto
    data = bytearray()
    entries = {}
    slices = b""
    for r in range(rows):
        start = r - 1 if overlap and r == rows - 1 else r
        ext = pb.field_bytes(1, (pb.field_varint(1, start) if start else b"")
                             + pb.field_varint(2, 1)) + pb.field_bytes(1, b"")
        slices += pb.field_bytes(7, ext)
        values = np.array([start, -start], np.float32).tobytes()
        key = slice_key(b"x", [(start, 1, False), (0, 2, True)])
        entries[key] = _entry(shape=(1, 2), offset=len(data), size=8,
                              crc=_ckpt_table.mask(_conv.crc32c(values)))
        data += values
    full = pb.field_varint(1, 1) + pb.field_bytes(
        2, pb.field_bytes(2, pb.field_varint(1, rows)) + pb.field_bytes(2, pb.field_varint(1, 2)))
    entries[b"x"] = full + slices
    _write_index(prefix, entries)
    with open(prefix + ".data-00000-of-00001", "wb") as f:
        f.write(data)


@pytest.mark.parametrize("rows", [3, 300])     # pairwise check, then the per-element count
def test_many_slices(tmp_path, rows):
    prefix = str(tmp_path / "m")
    _partitioned_index(prefix, rows)
    x = train.load_checkpoint(prefix).get_tensor("x")
    np.testing.assert_array_equal(x[:, 0], np.arange(rows))
    np.testing.assert_array_equal(x[:, 1], -np.arange(rows))
    _partitioned_index(prefix, rows, overlap=True)
    with pytest.raises(ValueError, match="overlap|cover"):
        train.load_checkpoint(prefix).get_tensor("x")


@SNAPPY
def test_snappy_claims_are_not_allocated(decompress):
    """A stream claiming 20 MB that fails after a byte allocates nothing like 20 MB."""
    import tracemalloc

    stream = _ckpt_proto.encode_varint(20_000_000) + _literal(b"a") + bytes([1, 9])
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="offset"):
            decompress(stream, 30_000_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_snappy_twins_agree_on_mutated_streams():
    """The C decoder and the Python reference accept and refuse the same streams."""
    cramjam = pytest.importorskip("cramjam")
    rng = np.random.default_rng(9)
    data = (b"abcabcabd" * 50 + bytes(rng.integers(0, 4, 300, dtype=np.uint8))) * 3
    comp = bytearray(cramjam.snappy.compress_raw(data))
    for _ in range(2000):
        bad = bytearray(comp)
        for _ in range(int(rng.integers(1, 4))):
            bad[int(rng.integers(len(bad)))] = int(rng.integers(256))
        if rng.integers(4) == 0:
            del bad[int(rng.integers(len(bad))):]
        try:
            ref = bytes(_snappy.decompress(bytes(bad), 10_000))
        except ValueError:
            ref = None
        try:
            got = bytes(_conv.snappy_decompress(bytes(bad), 10_000))
        except ValueError:
            got = None
        assert got == ref


def test_packed_varint_over_64_bits():
    with pytest.raises(_ckpt_proto.FormatError, match="larger than 64 bits"):
        _ckpt_proto.varints(b"\x01" + b"\xff" * 9 + b"\x02")


def test_threads_share_a_reader():
    from concurrent.futures import ThreadPoolExecutor

    entry = CASES["v1_partitioned"]
    reader = train.load_checkpoint(fixture("v1_partitioned", "model.ckpt"))
    names = list(entry["tensors"]) * 8
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(reader.get_tensor, names))
    for name, value in zip(names, results):
        assert_same_tensor(value, entry["tensors"][name])


def test_snappy_large_block_values_are_not_shared(tmp_path):
    """A Snappy block that decompresses to a large one: every get_tensor owns its array."""
    pytest.importorskip("cramjam")
    dst = str(tmp_path / "model.ckpt")
    ckpt_util.snappy_reencode(fixture("v1_partitioned", "model.ckpt"), dst)
    reader = train.load_checkpoint(dst)
    a = reader.get_tensor("net/big")
    a[:] = 5
    assert reader.get_tensor("net/big")[1] == 0.25
