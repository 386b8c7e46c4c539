"""Raw Snappy decompression (google/snappy ``format_description.txt``), for
the Snappy-compressed table blocks of V1 checkpoints written by TF 2015-16.

Why no package: reading checkpoints must work with NumPy alone, and only the
few V1 files of that era need it; a decoder is a few dozen lines. This is the
readable reference: the readers use its C twin (``csrc/snappy.c``,
``_conv.snappy_decompress``; this loop decodes compressible data at ~3 MB/s).
The tests check both against an independent compressor (cramjam, a test
extra), hand-made vectors and each other.

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
    # grown as real output is produced, not allocated at the length the stream
    # claims (a claim may be up to ~22x the input's size, then fail early)
    out = bytearray()
    while pos < end:
        o = len(out)
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
            out += src[pos:pos + length]
            pos += length
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
            out += out[start:start + length]
        else:  # overlapping: the pattern of `offset` bytes repeats
            reps = -(-length // offset)
            out += (out[start:o] * reps)[:length]
    if len(out) != n:
        raise FormatError(f"snappy block decodes to {len(out)} bytes, it declares {n}")
    return out
