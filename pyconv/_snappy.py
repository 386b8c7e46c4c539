"""Raw Snappy decompression (google/snappy ``format_description.txt``), for
the Snappy-compressed table blocks of V1 checkpoints written by TF 2015-16.

Why no package: reading checkpoints must work with NumPy alone, and only the
few V1 files of that era need it (their blocks are at most a few hundred KB,
except a large tensor's block of its own); a decoder is a few dozen lines.
The tests check it against an independent compressor (cramjam, a test extra)
and hand-made vectors.

Every length and offset is checked: the output never grows beyond the length
the stream declares (itself bounded by the caller), and a copy may not reach
before the start of the output.
"""

from ._ckpt_proto import FormatError, read_varint


def uncompressed_length(data):
    n, _ = read_varint(data, 0)
    return n


def decompress(data, max_length):
    """The bytes of a raw Snappy stream; ``max_length`` bounds what the stream
    may claim (a FormatError if it claims more or is malformed)."""
    src = memoryview(data)
    if src.ndim != 1 or src.itemsize != 1:
        src = src.cast("B")
    end = len(src)
    n, pos = read_varint(src, 0, end)
    if n > max_length:
        raise FormatError(f"snappy block claims {n} uncompressed bytes, more than the "
                          f"{max_length} allowed")
    out = bytearray(n)
    o = 0
    while pos < end:
        tag = src[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                extra = length - 59
                if end - pos < extra:
                    raise FormatError("snappy literal length runs past the end")
                length = int.from_bytes(src[pos:pos + extra], "little")
                pos += extra
            length += 1
            if length > end - pos or length > n - o:
                raise FormatError("snappy literal runs past the end of its input or output")
            out[o:o + length] = src[pos:pos + length]
            pos += length
            o += length
            continue
        if kind == 1:
            if pos >= end:
                raise FormatError("snappy copy runs past the end")
            length = 4 + ((tag >> 2) & 7)
            offset = ((tag >> 5) << 8) | src[pos]
            pos += 1
        else:
            width = 2 if kind == 2 else 4
            if end - pos < width:
                raise FormatError("snappy copy runs past the end")
            length = 1 + (tag >> 2)
            offset = int.from_bytes(src[pos:pos + width], "little")
            pos += width
        if offset == 0 or offset > o:
            raise FormatError(f"snappy copy offset {offset} at output position {o} is invalid")
        if length > n - o:
            raise FormatError("snappy copy runs past the declared length")
        start = o - offset
        if offset >= length:
            out[o:o + length] = out[start:start + length]
        else:  # overlapping: the pattern of `offset` bytes repeats
            pattern = bytes(out[start:o])
            reps = -(-length // offset)
            out[o:o + length] = (pattern * reps)[:length]
        o += length
    if o != n:
        raise FormatError(f"snappy block decodes to {o} bytes, it declares {n}")
    return out
