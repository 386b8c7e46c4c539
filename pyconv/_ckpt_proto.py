"""The few protobuf wire-format pieces TF's checkpoint files need.

No generated code and no ``protobuf`` package: messages are decoded into
``{field_number: [values]}`` (varints as ints, length-delimited fields as
memoryview slices of the input, fixed32/fixed64 as ints), and the caller
picks the fields it knows. Every length is checked against the bytes that
are there: a malformed message raises :class:`FormatError`, which the
checkpoint readers turn into a ``ValueError`` naming the file.
"""

import struct

import numpy as np


class FormatError(ValueError):
    """A malformed structure inside a checkpoint file (the readers add the file name)."""


_MAX_VARINT_BYTES = 10


def read_varint(buf, pos, end=None):
    """(value, new_pos) of the LEB128 varint at ``buf[pos]`` (at most 10 bytes,
    value < 2**64)."""
    if end is None:
        end = len(buf)
    result = 0
    shift = 0
    for i in range(_MAX_VARINT_BYTES):
        if pos >= end:
            raise FormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            if result >> 64:
                raise FormatError("varint larger than 64 bits")
            return result, pos
        shift += 7
    raise FormatError("varint longer than 10 bytes")


def to_signed64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def parse(buf):
    """``{field: [values]}`` of a serialized message (a bytes-like object)."""
    mv = memoryview(buf)
    if mv.ndim != 1 or mv.itemsize != 1:
        mv = mv.cast("B")
    end = len(mv)
    pos = 0
    fields = {}
    while pos < end:
        key, pos = read_varint(mv, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise FormatError("field number 0")
        if wire == 0:
            value, pos = read_varint(mv, pos, end)
        elif wire == 2:
            n, pos = read_varint(mv, pos, end)
            if n > end - pos:
                raise FormatError(f"field {field}: length {n} runs past the end of the "
                                  f"message ({end - pos} bytes left)")
            value = mv[pos:pos + n]
            pos += n
        elif wire == 5:
            if end - pos < 4:
                raise FormatError(f"field {field}: truncated fixed32")
            value = int.from_bytes(mv[pos:pos + 4], "little")
            pos += 4
        elif wire == 1:
            if end - pos < 8:
                raise FormatError(f"field {field}: truncated fixed64")
            value = int.from_bytes(mv[pos:pos + 8], "little")
            pos += 8
        else:  # groups (3, 4) and 6, 7 never occur in TF's messages
            raise FormatError(f"field {field}: unsupported wire type {wire}")
        fields.setdefault(field, []).append((wire, value))
    return fields


def get_int(fields, number, default=0, signed=True):
    """The last varint value of field ``number`` (proto3: absent means 0)."""
    values = fields.get(number)
    if not values:
        return default
    wire, value = values[-1]
    if wire != 0:
        raise FormatError(f"field {number}: expected a varint, got wire type {wire}")
    return to_signed64(value) if signed else value


def get_bytes(fields, number, default=b""):
    values = fields.get(number)
    if not values:
        return default
    wire, value = values[-1]
    if wire != 2:
        raise FormatError(f"field {number}: expected bytes, got wire type {wire}")
    return value


def get_message(fields, number):
    """The sub-message of field ``number`` parsed, or None if absent (repeated
    occurrences of a singular message are merged, as protobuf does)."""
    values = fields.get(number)
    if not values:
        return None
    merged = {}
    for wire, value in values:
        if wire != 2:
            raise FormatError(f"field {number}: expected a message, got wire type {wire}")
        for k, v in parse(value).items():
            merged.setdefault(k, []).extend(v)
    return merged


def get_messages(fields, number):
    """Every occurrence of a repeated message field, each parsed."""
    out = []
    for wire, value in fields.get(number, ()):
        if wire != 2:
            raise FormatError(f"field {number}: expected a message, got wire type {wire}")
        out.append(parse(value))
    return out


def get_fixed32(fields, number, default=None):
    values = fields.get(number)
    if not values:
        return default
    wire, value = values[-1]
    if wire != 5:
        raise FormatError(f"field {number}: expected a fixed32, got wire type {wire}")
    return value


# -- packed repeated scalars (TensorProto's *_val fields)

def varints(data, count_limit=None):
    """All varints of a packed field, as a uint64 array (vectorised: the
    last byte of each varint is the one below 0x80)."""
    b = np.frombuffer(data, np.uint8)
    if b.size == 0:
        return np.zeros(0, np.uint64)
    if b[-1] >= 0x80:
        raise FormatError("truncated varint in a packed field")
    last = np.flatnonzero(b < 0x80)
    if count_limit is not None and last.size > count_limit:
        raise FormatError(f"packed field holds {last.size} values, expected {count_limit}")
    starts = np.empty_like(last)
    starts[0] = 0
    starts[1:] = last[:-1] + 1
    lengths = last - starts + 1
    if lengths.max() > _MAX_VARINT_BYTES:
        raise FormatError("varint longer than 10 bytes in a packed field")
    if np.any((lengths == _MAX_VARINT_BYTES) & (b[last] > 1)):
        raise FormatError("varint larger than 64 bits in a packed field")
    if lengths.max() == 1:
        return b.astype(np.uint64)
    pos_in = np.arange(b.size) - np.repeat(starts, lengths)
    parts = (b & 0x7F).astype(np.uint64) << (7 * pos_in).astype(np.uint64)
    return np.bitwise_or.reduceat(parts, starts)


def repeated_scalars(fields, number, kind):
    """Packed or unpacked occurrences of a repeated scalar field, joined in
    order: ``kind`` is 'varint', '<f4' or '<f8'."""
    chunks = []
    for wire, value in fields.get(number, ()):
        if kind == "varint":
            if wire == 2:
                chunks.append(varints(value))
            elif wire == 0:
                chunks.append(np.array([value], np.uint64))
            else:
                raise FormatError(f"field {number}: wire type {wire} for a varint field")
        else:
            size = np.dtype(kind).itemsize
            if wire == 2:
                if len(value) % size:
                    raise FormatError(f"field {number}: packed length {len(value)} is not a "
                                      f"multiple of {size}")
                chunks.append(np.frombuffer(value, kind))
            elif wire == (5 if size == 4 else 1):
                chunks.append(np.array([value], f"<u{size}").view(kind))
            else:
                raise FormatError(f"field {number}: wire type {wire} for a fixed field")
    if not chunks:
        return np.zeros(0, np.uint64 if kind == "varint" else kind)
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


# -- encoding (for the V2 writer)

def encode_varint(v):
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_varint(number, value):
    return encode_varint(number << 3) + encode_varint(value)


def field_bytes(number, data):
    return encode_varint((number << 3) | 2) + encode_varint(len(data)) + bytes(data)


def field_fixed32(number, value):
    return encode_varint((number << 3) | 5) + struct.pack("<I", value)
