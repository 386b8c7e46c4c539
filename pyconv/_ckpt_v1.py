"""Checkpoint format V1 (TensorSliceWriter): one table file per shard holding
both the metadata and the data (the single-file ``model.ckpt`` of the 2016
TF-Slim model zoo).

Key ``""`` of every file holds a SavedTensorSliceMeta (each tensor's name,
shape, dtype and slices); each slice is a record under the OrderedCode key of
(name, slice) whose value is a TensorProto with the numbers in its typed
``*_val`` field (FACTS B). A sharded checkpoint is several such files, read
through a pattern (``model.ckpt-7-?????-of-00002``). Blocks may be
Snappy-compressed (TF 2015-16 wrote them so by default).
"""

import glob
import math
import os

import numpy as np

from . import _ckpt_proto as pb
from ._ckpt_proto import FormatError
from ._ckpt_table import File, Table, alloc
from ._ckpt_v2 import (
    STRING, check_coverage, check_tiling, dtype_name, finish_value, parse_shape, parse_slice,
    slice_key, storage_dtype,
)

# DataType -> (TensorProto field, how it is encoded)
_VAL_FIELDS = {
    1: (5, "<f4"), 2: (6, "<f8"), 3: (7, "varint"), 4: (7, "varint"), 5: (7, "varint"),
    6: (7, "varint"), 9: (10, "varint"), 10: (11, "varint"), 17: (7, "varint"),
    19: (13, "varint"), 22: (16, "varint"), 23: (17, "varint"),
    8: (9, "<f4"), 18: (12, "<f8"),
}


def matching_files(pattern):
    """The files a V1 path names: itself, or every match of a glob pattern."""
    if any(c in pattern for c in "*?["):
        found = sorted(p for p in glob.glob(pattern) if not p.endswith(".tempstate"))
        if found:
            return found
    return [pattern] if os.path.isfile(pattern) else []


class V1Reader:
    format = "V1"

    def __init__(self, pattern, paths):
        self.prefix = pattern
        self._files = []
        self._tables = []
        try:
            for path in paths:
                f = File(path)
                self._files.append(f)
                self._tables.append(Table(f))
            self._read_meta()
        except BaseException:
            self.close()
            raise

    def close(self):
        for f in self._files:
            f.close()
        self._files = []

    def _read_meta(self):
        self._vars = {}    # name -> [dtype, shape, [(extents, table index)]]
        self.names = {}
        for t, (f, table) in enumerate(zip(self._files, self._tables)):
            value = table.get(b"")
            if value is None:
                raise f.error("no SavedTensorSlices metadata record (key \"\"): not a V1 "
                              "checkpoint")
            try:
                meta = pb.get_message(pb.parse(value), 1)
                if meta is None:
                    raise FormatError("the record \"\" holds no metadata")
                for tensor in pb.get_messages(meta, 1):
                    raw = bytes(pb.get_bytes(tensor, 1))
                    what = f"tensor {raw!r}"
                    shape = parse_shape(pb.get_message(tensor, 2), what)
                    dtype = pb.get_int(tensor, 3)
                    slices = [parse_slice(s, shape, what) for s in pb.get_messages(tensor, 4)]
                    if not slices:
                        raise FormatError(f"{what} has no slices")
                    try:
                        name = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        name = raw.decode("latin-1")
                    known = self._vars.get(name)
                    if known is None:
                        known = self._vars[name] = [dtype, shape, []]
                        self.names[name] = raw
                    elif known[0] != dtype or known[1] != shape:
                        raise FormatError(f"{what} is {dtype_name(dtype)} {list(shape)} here and "
                                          f"{dtype_name(known[0])} {list(known[1])} in another "
                                          "file")
                    known[2].extend((extents, t) for extents in slices)
            except FormatError as exc:
                raise f.error(f"metadata: {exc}") from None

    def shape(self, name):
        return self._vars[name][1]

    def dtype_enum(self, name):
        return self._vars[name][0]

    def debug_lines(self):
        for name in sorted(self._vars):
            dtype, shape, slices = self._vars[name]
            line = f" ({dtype_name(dtype)}) [{','.join(str(d) for d in shape)}]"
            if len(slices) > 1:
                line += f", {len(slices)} slices"
            yield self.names[name] + line.encode()

    def read(self, name):
        dtype, shape, slices = self._vars[name]
        raw = self.names[name]
        what = f"tensor {name!r}"
        storage_dtype(dtype, what)
        exact = True
        if len(slices) > 1:
            try:
                exact = check_tiling(shape, [e for e, _ in slices], what)
            except FormatError as exc:
                raise self._files[slices[0][1]].error(str(exc)) from None
        parts = [(extents, self._read_slice(raw, dtype, extents, t)) for extents, t in slices]
        if not exact:
            try:
                check_coverage(shape, [e for e, _ in slices], what)
            except FormatError as exc:
                raise self._files[slices[0][1]].error(str(exc)) from None
        if len(parts) == 1 and all(full for _, _, full in parts[0][0]):
            return finish_value(parts[0][1], dtype)
        dt = parts[0][1].dtype                           # the slices tile it: checked above
        full_arr = (np.empty(shape, dt) if dt == object else
                    alloc(math.prod(shape) * dt.itemsize).view(dt).reshape(shape))
        for extents, part in parts:
            full_arr[tuple(slice(s, s + n) for s, n, _ in extents)] = part
        return finish_value(full_arr, dtype)

    def _read_slice(self, raw, dtype, extents, t):
        f, table = self._files[t], self._tables[t]
        key = slice_key(raw, extents)
        what = f"tensor {raw.decode('utf-8', 'replace')!r}"
        if len(extents) > 0 and not all(full for _, _, full in extents):
            what += f" slice {[(s, n) for s, n, _ in extents]}"
        value = table.get(key, payload_offset=_payload_offset)
        if value is None:
            raise f.error(f"{what}: its data record is missing")
        shape = tuple(n for _, n, _ in extents)
        try:
            saved = pb.get_message(pb.parse(value), 2)
            if saved is None:
                raise FormatError("the record holds no data")
            proto = pb.get_message(saved, 3)
            if proto is None:
                proto = {}
            return _tensor_values(proto, dtype, shape, table.owns_block(value))
        except FormatError as exc:
            raise f.error(f"{what}: {exc}") from None


def _tensor_values(proto, dtype, shape, may_view=False):
    """The array of a TensorProto written by TensorSliceWriter (typed *_val fields)."""
    count = math.prod(shape)
    content = pb.get_bytes(proto, 4, None)
    if dtype == STRING:
        values = [bytes(v) for w, v in proto.get(8, ()) if w == 2]
        if len(values) != count:
            raise FormatError(f"holds {len(values)} strings, its shape {list(shape)} needs "
                              f"{count}")
        out = np.empty(count, object)
        out[:] = values
        return out.reshape(shape)
    target = storage_dtype(dtype, "tensor")
    if content is not None and len(content):   # never written by TF's V1 writer; allowed
        if len(content) != count * target.itemsize:
            raise FormatError(f"tensor_content holds {len(content)} bytes, shape "
                              f"{list(shape)} needs {count * target.itemsize}")
        return np.frombuffer(content, target).reshape(shape).copy()
    if dtype not in _VAL_FIELDS:
        raise FormatError(f"dtype {dtype_name(dtype)} is not stored by the V1 writer")
    field, kind = _VAL_FIELDS[dtype]
    vals = pb.repeated_scalars(proto, field, kind)
    if dtype in (8, 18):
        count2 = 2 * count
    else:
        count2 = count
    if vals.size != count2:
        raise FormatError(f"holds {vals.size} values, its shape {list(shape)} needs {count2}")
    if kind == "varint":
        if dtype == 10:
            arr = vals != 0
        elif dtype == 19:
            arr = vals.astype(np.uint16).view(np.float16)
        else:  # ints: sign-extended to 64 bits, truncated to the target as C++ does
            arr = vals.view(np.int64).astype(target)
    elif dtype in (8, 18):
        arr = vals.view(target)
    else:
        arr = vals
        # A view of the block is kept only for a large record alone in its block
        # (read aligned, never cached); small blocks are cached and shared.
        if not may_view or not arr.flags.writeable or arr.ctypes.data % 16:
            arr = arr.copy()
    return arr.reshape(shape)


def _payload_offset(prefix):
    """Where a large float/double record's packed values start inside its block
    (the block holds only that record: TF puts records of 512 KiB and more in a
    block of their own). Raises FormatError if the prefix does not show it."""
    mv = memoryview(prefix)
    shared, pos = pb.read_varint(mv, 0)
    non_shared, pos = pb.read_varint(mv, pos)
    value_len, pos = pb.read_varint(mv, pos)
    pos += non_shared
    # SavedTensorSlices.data (2) -> SavedSlice.data (3) -> TensorProto float/double_val
    for wanted in (2, 3, None):
        while True:
            tag, pos = pb.read_varint(mv, pos)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _, pos = pb.read_varint(mv, pos)
                continue
            if wire != 2:
                raise FormatError("unexpected wire type")
            n, pos = pb.read_varint(mv, pos)
            if wanted is None:
                if field in (5, 6):
                    return pos
            elif field == wanted:
                break
            pos += n
            if pos >= len(mv):
                raise FormatError("not in the prefix")
    raise FormatError("not found")
