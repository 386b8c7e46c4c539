"""TensorFlow's immutable sorted table (LevelDB's format with TF's options):
the ``.index`` file of a V2 checkpoint and every file of a V1 checkpoint.

Layout (FACTS A2): data blocks, an empty metaindex block, an index block that
maps a separator key to each data block's handle, and a 48-byte footer with
the two handles and the magic number. A block is ``entries, restarts[],
num_restarts`` followed by a trailer: the compression type (0 none, 1 Snappy)
and the masked CRC-32C of the stored contents plus that type byte.

Every offset and length read from the file is checked against the file's real
size before anything is read or allocated, every block's checksum is verified,
and malformed structures raise :class:`FormatError` (a ``ValueError``) naming
the file and what is wrong.
"""

import bisect
import mmap
import os
import struct

import numpy as np

from . import _conv
from ._ckpt_proto import FormatError, encode_varint, read_varint

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
BLOCK_SIZE = 262144          # TF's table_options.h (LevelDB's is 4 KiB)
RESTART_INTERVAL = 16
_MASK_DELTA = 0xA282EAD8
_CHUNK = 8 << 20             # read and checksum large ranges 8 MiB at a time
# Blocks at least this large hold one record (TF flushes a block before a record
# of 2 * BLOCK_SIZE): they are read with the caller's payload aligned and not
# cached, so an array may be a view of them. Smaller blocks are cached (shared).
_ALIGN_FROM = 2 * BLOCK_SIZE
# Checksums are always verified; only the fuzz harness turns this off, to reach
# the parsers behind them with mutated structures.
VERIFY_CHECKSUMS = True
_OWN_MAPPING_FROM = 1 << 20


def alloc(nbytes):
    """A writable, zero-filled uint8 array of ``nbytes`` for tensor data.

    From 1 MiB on it is an anonymous memory mapping of its own, populated at
    once (MAP_POPULATE), rather than NumPy's allocation: NumPy advises the
    kernel to back large arrays with transparent huge pages, and on a busy
    machine (THP defrag "madvise") the compaction that needs stalled the first
    touch of those pages, making a 553 MB read take 2-5 s instead of ~0.6 s;
    and pages faulted in one by one inside read() cost more than populating
    them in one call. Freed with the array.
    """
    if nbytes < _OWN_MAPPING_FROM:
        return np.empty(nbytes, np.uint8)
    flags = (mmap.MAP_PRIVATE | getattr(mmap, "MAP_ANONYMOUS", 0x20)
             | getattr(mmap, "MAP_POPULATE", 0))
    return np.frombuffer(mmap.mmap(-1, nbytes, flags=flags), np.uint8)


def crc32c(data, value=0):
    return _conv.crc32c(data, value)


def mask(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked):
    r = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((r >> 17) | (r << 15)) & 0xFFFFFFFF


def _pread_into(fd, buf, offset, f):
    """One read at ``offset`` without moving a shared file position (preadv), so
    that threads may read one checkpoint at once."""
    if _HAVE_PREADV:
        return os.preadv(fd, [buf], offset)
    f.seek(offset)  # pragma: no cover - platforms without preadv
    return f.readinto(buf)


_HAVE_PREADV = hasattr(os, "preadv")


class File:
    """A file opened for random access: its real size is known, reads beyond it
    are refused before anything is allocated, and large reads go straight into
    the caller's buffer."""

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._f = open(self.path, "rb", buffering=0)
        except IsADirectoryError:
            raise FormatError(f"{self.path!r} is a directory, not a checkpoint file") from None
        self.size = os.fstat(self._f.fileno()).st_size

    def close(self):
        self._f.close()

    def error(self, msg):
        return FormatError(f"checkpoint file {self.path!r}: {msg}")

    def check_range(self, offset, n, what):
        if offset < 0 or n < 0 or offset > self.size or n > self.size - offset:
            raise self.error(f"{what} (offset {offset}, {n} bytes) runs past the end of the "
                             f"file ({self.size} bytes): truncated or corrupt")

    def read(self, offset, n, what):
        self.check_range(offset, n, what)
        buf = bytearray(n)
        self.read_into(offset, memoryview(buf), what)
        return buf

    def read_into(self, offset, dest, what, crc=None):
        """Fills the writable byte buffer ``dest`` from ``offset``; with ``crc``
        (an initial CRC value) returns the CRC-32C extended over what was read,
        computed chunk by chunk while the bytes are still in cache."""
        dest = memoryview(dest).cast("B")
        n = len(dest)
        self.check_range(offset, n, what)
        fd = self._f.fileno()
        done = 0
        while done < n:
            step = min(_CHUNK, n - done)
            part = dest[done:done + step]
            got = _pread_into(fd, part, offset + done, self._f)
            if not got:
                raise self.error(f"{what}: the file ended after {offset + done} bytes "
                                 "(it shrank while being read?)")
            if crc is not None:
                crc = crc32c(part[:got], crc)
            done += got
        return crc


class Table:
    """Reads a table: ``entries()`` walks every key in order, ``get(key)`` finds one."""

    def __init__(self, file):
        self.file = file
        size = file.size
        if size < FOOTER_SIZE:
            raise file.error(f"{size} bytes is too short for a TensorFlow table "
                             f"(its footer alone is {FOOTER_SIZE}); not a checkpoint, or truncated")
        footer = file.read(size - FOOTER_SIZE, FOOTER_SIZE, "footer")
        magic = struct.unpack_from("<Q", footer, 40)[0]
        if magic != MAGIC:
            raise file.error(f"bad magic number 0x{magic:016x} in the footer (a TensorFlow "
                             f"table ends with 0x{MAGIC:016x}): not a checkpoint, or truncated")
        try:
            meta_off, pos = read_varint(footer, 0, 40)
            meta_size, pos = read_varint(footer, pos, 40)
            index_off, pos = read_varint(footer, pos, 40)
            index_size, pos = read_varint(footer, pos, 40)
        except FormatError as exc:
            raise file.error(f"footer: {exc}") from None
        self._data_end = size - FOOTER_SIZE
        self._check_handle(meta_off, meta_size, "metaindex block")
        self._check_handle(index_off, index_size, "index block")
        # TF never reads the (always empty) metaindex block; its checksum is
        # verified anyway, so that no corrupt byte of the file goes unnoticed
        for _ in self._block_entries(self.read_block(meta_off, meta_size, "metaindex block"),
                                     "metaindex block"):
            pass
        index = self.read_block(index_off, index_size, "index block")
        self._index_keys = []
        self._index_handles = []
        for key, value in self._block_entries(index, "index block"):
            try:
                off, p = read_varint(value, 0)
                n, p = read_varint(value, p)
            except FormatError as exc:
                raise file.error(f"index entry {bytes(key)!r}: bad block handle: {exc}") from None
            self._check_handle(off, n, f"data block of index entry {bytes(key)!r}")
            if self._index_keys and key <= self._index_keys[-1]:
                raise file.error("index block keys are not in increasing order")
            self._index_keys.append(key)
            self._index_handles.append((off, n))
        self._cache = (None, None)   # the last data block read: (offset, contents)

    def owns_block(self, value):
        """Whether ``value`` (from :meth:`get`) lies in a block no later call
        returns again: only large blocks, which are never cached."""
        return value.obj is not None and len(value.obj) >= _ALIGN_FROM

    def _check_handle(self, off, n, what):
        if off > self._data_end or n + TRAILER_SIZE > self._data_end - off:
            raise self.file.error(f"{what} at offset {off} of {n} bytes lies outside the "
                                  f"file's {self._data_end} bytes of blocks: corrupt")

    def read_block(self, off, n, what, payload_offset=None):
        """The verified (and decompressed) contents of the block at ``off``.

        ``payload_offset(prefix)``, optional, tells where in a large
        uncompressed block the caller's array data starts (from the block's
        first bytes); the block is then read into a buffer that puts that
        position on a 64-byte boundary, so the array can be a view of it.
        """
        f = self.file
        total = n + TRAILER_SIZE
        start = None
        if payload_offset is not None and n >= _ALIGN_FROM:
            prefix = f.read(off, min(total, 4096), what)
            try:
                start = payload_offset(prefix)
            except FormatError:  # checked again, with the checksum, when parsed
                start = None
        if start is not None:
            raw = alloc(total + 64)
            shift = (-(raw.ctypes.data + start)) % 64
            buf = memoryview(raw[shift:shift + total])
        else:
            buf = memoryview(alloc(total))
        crc = f.read_into(off, buf[:n + 1], what, crc=0)
        stored = int.from_bytes(f.read(off + n + 1, 4, what), "little")
        if unmask(stored) != crc and VERIFY_CHECKSUMS:
            raise f.error(f"{what} at offset {off} ({n} bytes): checksum mismatch (stored "
                          f"0x{unmask(stored):08x}, computed 0x{crc:08x}): the file is corrupt")
        kind = buf[n]
        contents = buf[:n]
        if kind == 0:
            return contents
        if kind == 1:
            # in C (pyconv/_snappy.py is its readable twin); Snappy expands at most
            # ~21x (a 3-byte copy of 64 bytes), so a longer claim is corrupt
            try:
                return memoryview(_conv.snappy_decompress(contents, 22 * n + 64))
            except ValueError as exc:
                raise f.error(f"{what} at offset {off}: corrupt Snappy data: {exc}") from None
        raise f.error(f"{what} at offset {off}: unknown compression type {kind} "
                      "(0 = none, 1 = Snappy)")

    def _block_entries(self, block, what):
        """(key bytes, value memoryview) of every entry of a block."""
        n = len(block)
        if n < 4:
            raise self.file.error(f"{what}: {n} bytes is too short for a block")
        num_restarts = int.from_bytes(block[n - 4:], "little")
        if num_restarts > (n - 4) // 4:
            raise self.file.error(f"{what}: {num_restarts} restart points do not fit in its "
                                  f"{n} bytes")
        end = n - 4 * (num_restarts + 1)
        pos = 0
        key = b""
        try:
            while pos < end:
                b0 = block[pos]
                if pos + 3 <= end and b0 < 128 and block[pos + 1] < 128 and block[pos + 2] < 128:
                    shared, non_shared, value_len = b0, block[pos + 1], block[pos + 2]
                    pos += 3
                else:
                    shared, pos = read_varint(block, pos, end)
                    non_shared, pos = read_varint(block, pos, end)
                    value_len, pos = read_varint(block, pos, end)
                if (shared > len(key) or non_shared > end - pos
                        or value_len > end - pos - non_shared):
                    raise FormatError(f"entry at offset {pos} (shared {shared}, key "
                                      f"{non_shared}, value {value_len} bytes) does not fit")
                key = key[:shared] + bytes(block[pos:pos + non_shared])
                pos += non_shared
                yield key, block[pos:pos + value_len]
                pos += value_len
        except FormatError as exc:
            raise self.file.error(f"{what}: {exc}") from None

    def _data_block(self, i, payload_offset=None):
        off, n = self._index_handles[i]
        cached = self._cache          # one read: another thread may replace it
        if cached[0] == off:
            return cached[1]
        contents = self.read_block(off, n, f"data block {i}", payload_offset)
        if len(contents.obj) < _ALIGN_FROM:      # see owns_block
            self._cache = (off, contents)
        return contents

    def entries(self):
        """Every (key, value) of the table in key order."""
        last = None
        for i in range(len(self._index_handles)):
            for key, value in self._block_entries(self._data_block(i), f"data block {i}"):
                if last is not None and key <= last:
                    raise self.file.error(f"keys are not in increasing order at {key!r}")
                last = key
                yield key, value

    def get(self, key, payload_offset=None):
        """The value of ``key``, or None (the first block whose separator is >= key).

        ``owns_block(value)`` then tells whether the value may be kept as is
        (its block is not cached, so no later call sees the same memory)."""
        i = bisect.bisect_left(self._index_keys, key)
        if i >= len(self._index_keys):
            return None
        block = self._data_block(i, payload_offset)
        for k, value in self._block_entries(block, f"data block {i}"):
            if k == key:
                return value
            if k > key:
                return None
        return None


# --------------------------------------------------------------------------- writing


def _shortest_separator(start, limit):
    """A short key >= start and < limit (LevelDB's bytewise FindShortestSeparator)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n:
        b = start[i]
        if b < 0xFF and b + 1 < limit[i]:
            return start[:i] + bytes([b + 1])
    return start


def _short_successor(key):
    for i, b in enumerate(key):
        if b != 0xFF:
            return key[:i] + bytes([b + 1])
    return key


class _BlockBuilder:
    def __init__(self, restart_interval):
        self.interval = restart_interval
        self.reset()

    def reset(self):
        self.buf = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""
        self.empty = True

    def add(self, key, value):
        shared = 0
        if self.counter < self.interval:
            n = min(len(key), len(self.last_key))
            while shared < n and key[shared] == self.last_key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.counter = 0
        self.buf += encode_varint(shared) + encode_varint(len(key) - shared)
        self.buf += encode_varint(len(value))
        self.buf += key[shared:]
        self.buf += value
        self.last_key = key
        self.counter += 1
        self.empty = False

    def size_estimate(self):
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self):
        return bytes(self.buf) + struct.pack(f"<{len(self.restarts)}I", *self.restarts) + \
            struct.pack("<I", len(self.restarts))


class TableWriter:
    """Writes a table exactly as TF's TableBuilder does with TF's options and no
    compression (the bytes of a TF-written ``.index`` for the same entries)."""

    def __init__(self, f):
        self.f = f
        self.offset = 0
        self.data = _BlockBuilder(RESTART_INTERVAL)
        self.index = _BlockBuilder(1)
        self.last_key = None
        self.pending = None   # handle of the last flushed data block, not yet indexed

    def add(self, key, value):
        if self.last_key is not None:
            if key <= self.last_key:
                raise ValueError(f"table keys must be added in increasing order: {key!r} "
                                 f"after {self.last_key!r}")
            if len(key) + len(value) >= 2 * BLOCK_SIZE:
                self._flush()
        if self.pending is not None:
            self.index.add(_shortest_separator(self.last_key, key), self._handle(self.pending))
            self.pending = None
        self.last_key = key
        self.data.add(key, value)
        if self.data.size_estimate() >= BLOCK_SIZE:
            self._flush()

    @staticmethod
    def _handle(h):
        return encode_varint(h[0]) + encode_varint(h[1])

    def _write_block(self, contents):
        handle = (self.offset, len(contents))
        crc = mask(crc32c(b"\x00", crc32c(contents)))
        self.f.write(contents)
        self.f.write(b"\x00" + struct.pack("<I", crc))
        self.offset += len(contents) + TRAILER_SIZE
        return handle

    def _flush(self):
        if self.data.empty:
            return
        self.pending = self._write_block(self.data.finish())
        self.data.reset()

    def finish(self):
        self._flush()
        meta = self._write_block(_BlockBuilder(RESTART_INTERVAL).finish())
        if self.pending is not None:
            self.index.add(_short_successor(self.last_key), self._handle(self.pending))
            self.pending = None
        index = self._write_block(self.index.finish())
        footer = self._handle(meta) + self._handle(index)
        footer += b"\x00" * (40 - len(footer)) + struct.pack("<Q", MAGIC)
        self.f.write(footer)
        self.offset += len(footer)
