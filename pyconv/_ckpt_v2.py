"""Checkpoint format V2 (TensorBundle): ``<prefix>.index`` + ``<prefix>.data-i-of-N``.

The ``.index`` is a table (``_ckpt_table``) whose key ``""`` holds a
BundleHeaderProto and every other key a BundleEntryProto: dtype, shape, data
shard, offset, size and the masked CRC-32C of the bytes (FACTS A). Tensors
are read straight into their arrays; the checksum is computed while reading.
Also here: what V1 shares with V2 (dtypes, shapes, slices and the OrderedCode
keys of slices).
"""

import math
import os
import re
import struct

import numpy as np

from . import _ckpt_proto as pb
from ._ckpt_proto import FormatError
from . import _ckpt_table
from ._ckpt_table import File, Table, TableWriter, crc32c, mask, unmask

# DataType enum (types.proto) -> (TF name, NumPy dtype or None if unreadable)
DTYPES = {
    1: ("DT_FLOAT", np.dtype("<f4")), 2: ("DT_DOUBLE", np.dtype("<f8")),
    3: ("DT_INT32", np.dtype("<i4")), 4: ("DT_UINT8", np.dtype("u1")),
    5: ("DT_INT16", np.dtype("<i2")), 6: ("DT_INT8", np.dtype("i1")),
    7: ("DT_STRING", np.dtype(object)), 8: ("DT_COMPLEX64", np.dtype("<c8")),
    9: ("DT_INT64", np.dtype("<i8")), 10: ("DT_BOOL", np.dtype("?")),
    11: ("DT_QINT8", None), 12: ("DT_QUINT8", None), 13: ("DT_QINT32", None),
    14: ("DT_BFLOAT16", np.dtype("<u2")), 15: ("DT_QINT16", None), 16: ("DT_QUINT16", None),
    17: ("DT_UINT16", np.dtype("<u2")), 18: ("DT_COMPLEX128", np.dtype("<c16")),
    19: ("DT_HALF", np.dtype("<f2")), 20: ("DT_RESOURCE", None), 21: ("DT_VARIANT", None),
    22: ("DT_UINT32", np.dtype("<u4")), 23: ("DT_UINT64", np.dtype("<u8")),
}
BFLOAT16 = 14
STRING = 7


def dtype_name(enum):
    entry = DTYPES.get(enum)
    return entry[0] if entry else f"DataType({enum})"


def numpy_dtype(enum):
    """What get_tensor returns for ``enum`` (bfloat16 -> float32; object for
    strings and for types NumPy cannot hold)."""
    if enum == BFLOAT16:
        return np.dtype(np.float32)
    entry = DTYPES.get(enum)
    if entry is None or entry[1] is None:
        return np.dtype(object)
    return entry[1].newbyteorder("=") if entry[1].byteorder == "<" else entry[1]


def storage_dtype(enum, what):
    entry = DTYPES.get(enum)
    if entry is None or entry[1] is None:
        raise FormatError(f"{what} has dtype {dtype_name(enum)}, which pyconv cannot read "
                          "(numbers, bool and strings only)")
    return entry[1]


def bfloat16_to_float32(bits):
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def finish_value(arr, enum):
    """TF's get_tensor result: bfloat16 widened, scalars as NumPy scalars (bytes
    for a string)."""
    if enum == BFLOAT16:
        arr = bfloat16_to_float32(arr)
    elif arr.dtype.byteorder not in "=|":
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.ndim == 0:
        return arr[()]
    return arr


def parse_shape(fields, what):
    """Dims of a TensorShapeProto message (fields), refusing unknown ones."""
    if fields is None:
        return ()
    if pb.get_int(fields, 3):
        raise FormatError(f"{what} has an unknown rank")
    dims = []
    for dim in pb.get_messages(fields, 2):
        size = pb.get_int(dim, 1)
        if size < 0:
            raise FormatError(f"{what} has an unknown or negative dimension ({size})")
        dims.append(size)
    if math.prod(dims) >= 1 << 62:
        raise FormatError(f"{what} claims shape {dims}, more than 2**62 elements")
    return tuple(dims)


def parse_slice(fields, shape, what):
    """[(start, length)] of a TensorSliceProto against ``shape`` (an absent length
    is the whole dimension); checked to lie inside it."""
    extents = pb.get_messages(fields, 1)
    if len(extents) != len(shape):
        raise FormatError(f"{what}: a slice of rank {len(extents)} for shape {list(shape)}")
    out = []
    for ext, dim in zip(extents, shape):
        start = pb.get_int(ext, 1)
        length = pb.get_int(ext, 2, default=None) if 2 in ext else None
        full = length is None
        if full:
            start, length = 0, dim
        if start < 0 or length < 0 or start + length > dim:
            raise FormatError(f"{what}: slice [{start}, {start + length}) outside dimension "
                              f"{dim}")
        out.append((start, length, full))
    return out


_PAIRWISE_LIMIT = 256


def check_tiling(shape, slices, what):
    """The slices (lists of (start, length, full)) tile ``shape``: inside it (parse_slice)
    and as many elements as it has; for up to 256 slices also pairwise disjoint
    (together: an exact tiling). Returns False if :func:`check_coverage` must
    finish the check once the slices' data is read (more slices: a count per
    element, allocated only after the data proved real)."""
    total = sum(math.prod(n for _, n, _ in s) for s in slices)
    if total != math.prod(shape):
        raise FormatError(f"{what}: its {len(slices)} slices cover {total} elements of "
                          f"shape {list(shape)} ({math.prod(shape)} elements)")
    if len(slices) > _PAIRWISE_LIMIT:
        return False
    for i in range(len(slices)):
        for j in range(i):
            if all(a0 < b0 + bn and b0 < a0 + an
                   for (a0, an, _), (b0, bn, _) in zip(slices[i], slices[j])):
                raise FormatError(f"{what}: slices {j} and {i} overlap")
    return True


def check_coverage(shape, slices, what):
    count = np.zeros(shape, np.uint8)
    for extents in slices:
        view = count[tuple(slice(s, s + n) for s, n, _ in extents)]
        np.minimum(view + 1, 2, out=view)
    if not (count == 1).all():
        raise FormatError(f"{what}: its slices overlap")


# -- OrderedCode keys of slices (FACTS B3)

def _num_increasing(v):
    raw = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big") if v else b""
    return bytes([len(raw)]) + raw


def _signed_num_increasing(v):
    for n in range(1, 11):
        if -(1 << (7 * n - 1)) <= v < (1 << (7 * n - 1)):
            break
    raw = (v % (1 << (8 * n))) ^ (((1 << n) - 1) << (7 * n))
    return raw.to_bytes(n, "big")


def slice_key(name, extents):
    """EncodeTensorNameSlice(name, slice): ``extents`` = [(start, length, full)]."""
    escaped = re.sub(rb"[\x00\xff]", lambda m: b"\x00\xff" if m.group() == b"\x00" else b"\xff\x00",
                     name)
    parts = [_num_increasing(0), escaped, b"\x00\x01", _num_increasing(len(extents))]
    for start, length, full in extents:
        parts.append(_signed_num_increasing(0 if full else start))
        parts.append(_signed_num_increasing(-1 if full else length))
    return b"".join(parts)


# --------------------------------------------------------------------------- reading


class _Entry:
    __slots__ = ("dtype", "shape", "shard", "offset", "size", "crc", "slices")


class BundleReader:
    """A V2 checkpoint: ``prefix.index`` and its data files."""

    format = "V2"

    def __init__(self, prefix):
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._index_file = File(self.index_path)
        try:
            self._open()
        except BaseException:
            self._index_file.close()
            raise

    def _open(self):
        f = self._index_file
        table = Table(f)
        self._entries = {}     # every key (slice keys too) -> _Entry
        header = None
        for key, value in table.entries():
            try:
                fields = pb.parse(value)
                if key == b"":
                    header = fields
                    continue
                self._entries[key] = self._parse_entry(fields, key)
            except FormatError as exc:
                raise f.error(f"entry {key!r}: {exc}") from None
        if header is None:
            raise f.error("no bundle header (the key \"\" that every V2 index starts with): "
                          "not a V2 checkpoint index")
        self.num_shards = pb.get_int(header, 1)
        if not 1 <= self.num_shards <= 100000:
            raise f.error(f"bundle header claims {self.num_shards} data shards")
        self.big_endian = pb.get_int(header, 2) == 1
        for key, e in self._entries.items():
            if not e.slices and not 0 <= e.shard < self.num_shards:
                raise f.error(f"entry {key!r} is in data shard {e.shard} of {self.num_shards}")
        self._shards = {}
        self.names = {}
        for key, e in self._entries.items():
            if key.startswith(b"\x00"):
                continue
            try:
                name = key.decode("utf-8")
            except UnicodeDecodeError:
                name = key.decode("latin-1")
            self.names[name] = key

    @staticmethod
    def _parse_entry(fields, key):
        e = _Entry()
        e.dtype = pb.get_int(fields, 1)
        e.shape = parse_shape(pb.get_message(fields, 2), f"tensor {key!r}")
        e.shard = pb.get_int(fields, 3)
        e.offset = pb.get_int(fields, 4)
        e.size = pb.get_int(fields, 5)
        e.crc = pb.get_fixed32(fields, 6, 0)
        e.slices = [parse_slice(s, e.shape, f"tensor {key!r}") for s in pb.get_messages(fields, 7)]
        if e.offset < 0 or e.size < 0:
            raise FormatError(f"negative offset {e.offset} or size {e.size}")
        return e

    def close(self):
        self._index_file.close()
        for shard in self._shards.values():
            shard.close()
        self._shards = {}

    def shape(self, name):
        return self._entries[self.names[name]].shape

    def dtype_enum(self, name):
        return self._entries[self.names[name]].dtype

    def debug_lines(self):
        for key, e in self._entries.items():
            if e.slices:
                continue
            shape = ",".join(str(d) for d in e.shape)
            yield key + f" ({dtype_name(e.dtype)}) [{shape}]".encode()

    def _shard(self, i):
        f = self._shards.get(i)
        if f is None:
            path = f"{self.prefix}.data-{i:05d}-of-{self.num_shards:05d}"
            if not os.path.exists(path):
                raise FileNotFoundError(f"data file {path!r} of checkpoint {self.prefix!r} is "
                                        f"missing (shard {i} of {self.num_shards})")
            f = self._shards[i] = File(path)
        return f

    def read(self, name):
        key = self.names[name]
        e = self._entries[key]
        if not e.slices:
            return finish_value(self._read_entry(key, e), e.dtype)
        what = f"tensor {name!r}"
        storage_dtype(e.dtype, what)
        try:
            exact = check_tiling(e.shape, e.slices, what)
        except FormatError as exc:
            raise self._index_file.error(str(exc)) from None
        parts = []
        for extents in e.slices:
            skey = slice_key(key, extents)
            se = self._entries.get(skey)
            if se is None:
                raise self._index_file.error(f"{what}: the entry of its slice "
                                             f"{[(s, n) for s, n, _ in extents]} is missing")
            want = tuple(n for _, n, _ in extents)
            if se.shape != want or se.dtype != e.dtype:
                raise self._index_file.error(f"{what}: its slice entry has shape "
                                             f"{list(se.shape)} ({dtype_name(se.dtype)}), "
                                             f"expected {list(want)}")
            parts.append((extents, self._read_entry(skey, se)))
        if not exact:
            try:
                check_coverage(e.shape, e.slices, what)
            except FormatError as exc:
                raise self._index_file.error(str(exc)) from None
        dt = parts[0][1].dtype                        # covered exactly: checked above
        full = (np.empty(e.shape, dt) if dt == object else
                _ckpt_table.alloc(math.prod(e.shape) * dt.itemsize).view(dt).reshape(e.shape))
        for extents, part in parts:
            full[tuple(slice(s, s + n) for s, n, _ in extents)] = part
        return finish_value(full, e.dtype)

    def _read_entry(self, key, e):
        what = f"tensor {key!r}"
        dt = storage_dtype(e.dtype, what)
        count = math.prod(e.shape)
        if e.dtype == STRING:
            return self._read_strings(key, e, count)
        if e.size != count * dt.itemsize:
            raise self._index_file.error(f"{what} of shape {list(e.shape)} "
                                         f"({dtype_name(e.dtype)}) needs "
                                         f"{count * dt.itemsize} bytes, its entry says {e.size}")
        f = self._shard(e.shard)
        f.check_range(e.offset, e.size, what)
        if self.big_endian:
            dt = dt.newbyteorder(">")
        raw = _ckpt_table.alloc(e.size)
        crc = f.read_into(e.offset, raw, what, crc=0)
        arr = raw.view(dt).reshape(e.shape)
        if crc != unmask(e.crc) and _ckpt_table.VERIFY_CHECKSUMS:
            raise f.error(f"{what} (offset {e.offset}, {e.size} bytes): checksum mismatch "
                          f"(stored 0x{unmask(e.crc):08x}, computed 0x{crc:08x}): corrupt data")
        return arr

    def _read_strings(self, key, e, count):
        what = f"string tensor {key!r}"
        f = self._shard(e.shard)
        if count > e.size:
            raise self._index_file.error(f"{what} claims {count} strings in {e.size} bytes")
        data = f.read(e.offset, e.size, what)
        try:
            lengths = []
            pos = 0
            for _ in range(count):
                n, pos = pb.read_varint(data, pos)
                lengths.append(n)
            if len(data) - pos < 4:
                raise FormatError("the checksum of the lengths is missing")
            stored = int.from_bytes(data[pos:pos + 4], "little")
            crc_pos = pos
            pos += 4
            if sum(lengths) != len(data) - pos:
                raise FormatError(f"string lengths add up to {sum(lengths)} bytes, the entry "
                                  f"holds {len(data) - pos}")
        except FormatError as exc:
            raise f.error(f"{what}: {exc}") from None
        len_bytes = b"".join(struct.pack("<I", n) if n <= 0xFFFFFFFF else struct.pack("<Q", n)
                             for n in lengths)
        if unmask(stored) != crc32c(len_bytes) and _ckpt_table.VERIFY_CHECKSUMS:
            raise f.error(f"{what}: checksum mismatch in the string lengths: corrupt data")
        crc = crc32c(data[pos:], crc32c(data[crc_pos:crc_pos + 4], crc32c(len_bytes)))
        if crc != unmask(e.crc) and _ckpt_table.VERIFY_CHECKSUMS:
            raise f.error(f"{what}: checksum mismatch: corrupt data")
        out = np.empty(count, object)
        mv = memoryview(data)
        for i, n in enumerate(lengths):
            out[i] = bytes(mv[pos:pos + n])
            pos += n
        return out.reshape(e.shape)


# --------------------------------------------------------------------------- writing

_WRITE_DTYPES = {
    np.dtype(np.float32): 1, np.dtype(np.float64): 2, np.dtype(np.int32): 3,
    np.dtype(np.uint8): 4, np.dtype(np.int16): 5, np.dtype(np.int8): 6,
    np.dtype(np.complex64): 8, np.dtype(np.int64): 9, np.dtype(np.bool_): 10,
    np.dtype(np.uint16): 17, np.dtype(np.complex128): 18, np.dtype(np.float16): 19,
    np.dtype(np.uint32): 22, np.dtype(np.uint64): 23,
}


def _shape_proto(shape):
    return b"".join(pb.field_bytes(2, pb.field_varint(1, d) if d else b"") for d in shape)


def _string_bytes(arr):
    items = []
    for s in arr.reshape(-1):
        if isinstance(s, str):
            s = s.encode("utf-8")
        elif not isinstance(s, (bytes, bytearray, memoryview, np.bytes_)):
            raise TypeError(f"a string tensor holds bytes or str, got {type(s).__name__}")
        items.append(bytes(s))
    lengths = [len(s) for s in items]
    len_bytes = b"".join(struct.pack("<I", n) if n <= 0xFFFFFFFF else struct.pack("<Q", n)
                         for n in lengths)
    len_crc = struct.pack("<I", mask(crc32c(len_bytes)))
    body = b"".join(items)
    data = b"".join(pb.encode_varint(n) for n in lengths) + len_crc + body
    crc = crc32c(body, crc32c(len_crc, crc32c(len_bytes)))
    return data, crc


def write_bundle(prefix, tensors):
    """Writes ``prefix.index`` and ``prefix.data-00000-of-00001`` from
    ``tensors`` = [(name str, ndarray)] (any order; names unique). Files are
    written under temporary names and renamed into place at the end."""
    items = sorted(((name.encode("utf-8"), arr) for name, arr in tensors), key=lambda t: t[0])
    data_path = f"{prefix}.data-00000-of-00001"
    index_path = f"{prefix}.index"
    tmp_data = data_path + ".tempstate"
    tmp_index = index_path + ".tempstate"
    entries = []
    try:
        with open(tmp_data, "wb") as f:
            offset = 0
            for key, arr in items:
                if arr.dtype == object or arr.dtype.kind in "SU":
                    data, crc = _string_bytes(arr)
                    enum = STRING
                    f.write(data)
                    size = len(data)
                else:
                    enum = _WRITE_DTYPES[arr.dtype.newbyteorder("=")]
                    le = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
                    raw = le.reshape(-1).view(np.uint8)
                    crc = crc32c(raw)
                    f.write(raw)
                    size = raw.size
                fields = pb.field_varint(1, enum) + pb.field_bytes(2, _shape_proto(arr.shape))
                if offset:
                    fields += pb.field_varint(4, offset)
                if size:
                    fields += pb.field_varint(5, size)
                fields += pb.field_fixed32(6, mask(crc))
                entries.append((key, fields))
                offset += size
        header = pb.field_varint(1, 1) + pb.field_bytes(3, pb.field_varint(1, 1))
        with open(tmp_index, "wb") as f:
            table = TableWriter(f)
            table.add(b"", header)
            for key, fields in entries:
                table.add(key, fields)
            table.finish()
        os.replace(tmp_data, data_path)
        os.replace(tmp_index, index_path)
    finally:
        for tmp in (tmp_data, tmp_index):
            if os.path.exists(tmp):
                os.remove(tmp)
