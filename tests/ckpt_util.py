"""Helpers for the checkpoint tests and the checkpoint fuzz harness.

``snappy_reencode`` turns a TF-written V1 checkpoint into the Snappy-compressed
V1 file TF of 2015-16 would have written: every data block's contents are
compressed with an independent Snappy compressor (cramjam, a test extra),
stored with compression type 1 and a recomputed masked CRC-32C, and the index
block is rewritten with the new block handles (the keys stay). Only the table
framing is rewritten here, by code of its own (struct + zlib-free CRC from
``slow_crc32c``'s table), so the file does not depend on pyconv's writer.
"""

import os
import struct

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tf", "checkpoints")
_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (_POLY if _c & 1 else 0)
    _TABLE.append(_c)


def slow_crc32c(data, crc=0):
    """Bitwise-table CRC-32C in pure Python (independent of pyconv's C code)."""
    c = crc ^ 0xFFFFFFFF
    for b in bytes(data):
        c = (c >> 8) ^ _TABLE[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


def bitwise_crc32c(data):
    """The slowest, most literal CRC-32C: one bit at a time."""
    c = 0xFFFFFFFF
    for b in bytes(data):
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ (_POLY if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def mask(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _read_varint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _block_entries(block):
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end = len(block) - 4 * (n_restarts + 1)
    pos, key = 0, b""
    while pos < end:
        shared, pos = _read_varint(block, pos)
        non_shared, pos = _read_varint(block, pos)
        value_len, pos = _read_varint(block, pos)
        key = key[:shared] + block[pos:pos + non_shared]
        pos += non_shared
        yield key, block[pos:pos + value_len]
        pos += value_len


def _raw_block(contents, kind):
    trailer = bytes([kind])
    return contents + trailer + struct.pack("<I", mask(slow_crc32c(contents + trailer)))


def snappy_reencode(src, dst, compress_raw=None):
    """Writes ``dst``: the V1 table ``src`` with every data block Snappy-compressed."""
    if compress_raw is None:
        import cramjam

        def compress_raw(b):
            return bytes(cramjam.snappy.compress_raw(b))
    data = open(src, "rb").read()
    footer = data[-48:]
    pos = 0
    handles = []
    for _ in range(2):
        off, pos = _read_varint(footer, pos)
        size, pos = _read_varint(footer, pos)
        handles.append((off, size))
    (meta_off, meta_size), (index_off, index_size) = handles
    index = data[index_off:index_off + index_size]
    out = bytearray()
    new_index = []
    for key, handle in _block_entries(index):
        off, p = _read_varint(handle, 0)
        size, _ = _read_varint(handle, p)
        compressed = compress_raw(data[off:off + size])
        new_index.append((key, (len(out), len(compressed))))
        out += _raw_block(compressed, 1)
    meta = (len(out), meta_size)
    out += data[meta_off:meta_off + meta_size + 5]
    # index block: restart interval 1, so every entry is written whole
    block = bytearray()
    restarts = []
    for key, (off, size) in new_index:
        restarts.append(len(block))
        value = _varint(off) + _varint(size)
        block += _varint(0) + _varint(len(key)) + _varint(len(value)) + key + value
    block += struct.pack(f"<{len(restarts)}I", *restarts) + struct.pack("<I", len(restarts))
    index_handle = (len(out), len(block))
    out += _raw_block(bytes(block), 0)
    foot = _varint(meta[0]) + _varint(meta[1]) + _varint(index_handle[0]) + \
        _varint(index_handle[1])
    out += foot + b"\x00" * (40 - len(foot)) + footer[40:]
    with open(dst, "wb") as f:
        f.write(out)
    return len(new_index)


# -- replaying a fixture case (committed: tests/test_checkpoints.py; live:
#    tests/test_checkpoints_tf_live.py)

NP_NAME = {"bfloat16": "float32", "string": "object"}


def assert_same_tensor(value, entry, values):
    """``value`` (from pyconv) is what TF read (``entry`` of the manifest, arrays
    in ``values``): same type, dtype, shape and bytes."""
    import numpy as np

    if "strings" in entry:
        if entry["is_numpy_scalar"]:
            assert isinstance(value, bytes)
            got = [value.hex()]
        else:
            assert isinstance(value, np.ndarray) and value.dtype == object
            assert list(value.shape) == entry["shape"]
            assert all(isinstance(s, bytes) for s in value.reshape(-1))
            got = [s.hex() for s in value.reshape(-1)]
        assert got == entry["strings"]
        return
    expected = values[entry["npz"]]
    if entry["is_numpy_scalar"]:
        assert isinstance(value, np.generic) and not isinstance(value, np.ndarray)
    else:
        assert isinstance(value, np.ndarray) and value.flags.writeable
    got = np.asarray(value)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()    # bit for bit (NaN, -0.0 included)


def assert_case_matches(root, entry, values):
    """Every reader answer of pyconv for one case equals TF's."""
    import numpy as np
    from pyconv import train

    path = os.path.join(root, *entry["path"].split("/"))
    assert [[n, s] for n, s in train.list_variables(path)] == entry["list_variables"]
    with train.load_checkpoint(path) as reader:
        assert reader.format == entry["format"]
        dtypes = reader.get_variable_to_dtype_map()
        assert {n: d.name for n, d in dtypes.items()} == {
            n: NP_NAME.get(d, d) for n, d in entry["dtypes"].items()}
        shapes = reader.get_variable_to_shape_map()
        assert shapes == {n: t["shape"] for n, t in entry["tensors"].items()}
        for name, t in entry["tensors"].items():
            assert reader.has_tensor(name)
            value = reader.get_tensor(name)
            assert_same_tensor(value, t, values)
            if not t["is_numpy_scalar"] and "strings" not in t:
                assert np.asarray(value).dtype == dtypes[name]
        # TF lists V1 entries in hash order: compare as sets
        got = reader.debug_string().decode("latin-1").splitlines()
        assert sorted(got) == sorted(entry["debug_string"].splitlines())
