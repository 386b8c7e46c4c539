#!/usr/bin/env python3
"""Fuzz pyconv.train's checkpoint readers over mutated real checkpoints.

Each input is one byte choosing a slot (its high bit set: checksums are not
verified for this input, so that mutated structures reach the parsers behind
the CRC checks), then the bytes of that slot's file;
the other files of the checkpoint stay the good ones TF wrote
(tests/fixtures/tf/checkpoints):

  0  a V1 file (v1_dtypes)                 3  the .index of a V2 checkpoint (v2_dtypes)
  1  a V1 file with Snappy blocks          4  the data file of that V2 checkpoint
  2  a V1 shard of a sharded checkpoint    5  the .index of a partitioned V2 checkpoint

The target opens the checkpoint, lists it, reads every tensor and the debug
string. Allowed outcomes: success, ``ValueError`` (corrupt file),
``FileNotFoundError``/``KeyError`` (a mutated name). Anything else --
another exception, a MemoryError (the address space is limited to 2 GiB, so
an allocation of what a file merely claims fails loudly), a hang (libFuzzer's
-timeout) or a crash -- is a finding, saved by the fuzzer.

    python tools/fuzz/fuzz_checkpoint.py -atheris_runs=1000000 tools/fuzz/ckpt_corpus
    python tools/fuzz/fuzz_checkpoint.py --own 1000000     # no atheris: own mutator
    python tools/fuzz/fuzz_checkpoint.py --replay DIR_OR_FILE ...

With atheris (``pip install atheris``) the run is coverage-guided over
pyconv's Python modules; ``--own`` is a plain random mutator (byte flips,
varint-sized edits, truncation, splices, copies of other blocks) over the
same seeds. The corpus directory is seeded from the fixtures when empty.
"""

import atexit
import os
import random
import resource
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
FIX = os.path.join(ROOT, "tests", "fixtures", "tf", "checkpoints")

WORK = tempfile.mkdtemp(prefix="fuzz_ckpt_", dir="/dev/shm" if os.path.isdir("/dev/shm")
                        else None)
atexit.register(shutil.rmtree, WORK, True)


def _read(*parts):
    with open(os.path.join(FIX, *parts), "rb") as f:
        return f.read()


def _setup():
    """Writes the good files once; returns {slot: (path to overwrite, path to open, seed)}."""
    import ckpt_util

    slots = {}
    v1 = os.path.join(WORK, "v1.ckpt")
    slots[0] = (v1, v1, _read("v1_dtypes", "model.ckpt"))
    snap = os.path.join(WORK, "snappy.ckpt")
    try:
        ckpt_util.snappy_reencode(os.path.join(FIX, "v1_dtypes", "model.ckpt"), snap)
        with open(snap, "rb") as f:
            slots[1] = (snap, snap, f.read())
    except ImportError:
        pass
    d = os.path.join(WORK, "v1s")
    os.makedirs(d, exist_ok=True)
    for i in range(2):
        name = f"model.ckpt-7-0000{i}-of-00002"
        with open(os.path.join(d, name), "wb") as f:
            f.write(_read("v1_sharded", name))
    slots[2] = (os.path.join(d, "model.ckpt-7-00000-of-00002"),
                os.path.join(d, "model.ckpt-7-?????-of-00002"),
                _read("v1_sharded", "model.ckpt-7-00000-of-00002"))
    for sub, case in (("v2", "v2_dtypes"), ("v2p", "v2_partitioned")):
        d = os.path.join(WORK, sub)
        os.makedirs(d, exist_ok=True)
        for ext in (".index", ".data-00000-of-00001"):
            with open(os.path.join(d, "model.ckpt" + ext), "wb") as f:
                f.write(_read(case, "model.ckpt" + ext))
    p = os.path.join(WORK, "v2", "model.ckpt")
    slots[3] = (p + ".index", p, _read("v2_dtypes", "model.ckpt.index"))
    slots[4] = (p + ".data-00000-of-00001", p, _read("v2_dtypes", "model.ckpt.data-00000-of-00001"))
    p = os.path.join(WORK, "v2p", "model.ckpt")
    slots[5] = (p + ".index", p, _read("v2_partitioned", "model.ckpt.index"))
    return slots


SLOTS = None
train = None


def _init():
    global SLOTS, train
    if SLOTS is None:
        SLOTS = _setup()
        from pyconv import train as _train

        train = _train


def run_one(data):
    """The fuzz target: raises only on a finding."""
    if not data:
        return
    from pyconv import _ckpt_table

    keys = sorted(SLOTS)
    slot = SLOTS[keys[(data[0] & 0x7F) % len(keys)]]
    _ckpt_table.VERIFY_CHECKSUMS = not data[0] & 0x80
    target, path, seed = slot
    with open(target, "wb") as f:
        f.write(data[1:])
    try:
        try:
            with train.load_checkpoint(path) as reader:
                names = reader.get_variable_to_shape_map()
                reader.get_variable_to_dtype_map()
                reader.debug_string()
                for name in names:
                    try:
                        reader.get_tensor(name)
                    except ValueError:
                        pass
        except (ValueError, FileNotFoundError, KeyError):
            pass
    finally:
        with open(target, "wb") as f:
            f.write(seed)


def _seed_corpus(directory):
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory):
        return
    for i, (target, path, seed) in SLOTS.items():
        for fix in (0, 0x80):
            with open(os.path.join(directory, f"seed{i | fix}"), "wb") as f:
                f.write(bytes([i | fix]) + seed)


_INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFFFFFF, 1 << 31, 1 << 32, 1 << 62, (1 << 64) - 1]


def _mutate(rng, seed, others):
    b = bytearray(seed)
    for _ in range(rng.choice((1, 1, 1, 2, 3, 8))):
        op = rng.randrange(8)
        n = len(b)
        if op == 0 and n:
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            b[rng.randrange(n)] = rng.randrange(256)
        elif op == 2 and n:
            del b[rng.randrange(n):]
        elif op == 3 and n:
            i = rng.randrange(n)
            v = rng.choice(_INTERESTING)
            enc = bytearray()
            while True:
                enc.append((v & 0x7F) | (0x80 if v >> 7 else 0))
                v >>= 7
                if not v:
                    break
            b[i:i + rng.randrange(1, 4)] = enc
        elif op == 4 and n:
            i, j = sorted(rng.randrange(n) for _ in range(2))
            del b[i:j]
        elif op == 5 and n:
            i = rng.randrange(n)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif op == 6:
            other = rng.choice(others)
            if other:
                i = rng.randrange(len(other))
                piece = other[i:i + rng.randrange(1, 64)]
                j = rng.randrange(n + 1)
                b[j:j + len(piece)] = piece
        elif op == 7 and n >= 4:
            i = rng.randrange(n - 3)
            b[i:i + 4] = rng.choice(_INTERESTING[:7]).to_bytes(8, "little")[:4]
    return bytes(b)


def own(runs, seed=0):
    """Plain random mutation (no coverage feedback); returns the execution count."""
    import time

    rng = random.Random(seed)
    seeds = [bytes([i | fix]) + s for i, (_, _, s) in SLOTS.items() for fix in (0, 0x80)]
    others = [s for _, _, s in SLOTS.values()]
    t0 = time.time()
    for i in range(runs):
        data = _mutate(rng, rng.choice(seeds), others)
        try:
            run_one(data)
        except BaseException:
            crash = os.path.join(HERE, "out", f"crash-ckpt-{i}")
            os.makedirs(os.path.dirname(crash), exist_ok=True)
            with open(crash, "wb") as f:
                f.write(data)
            print(f"finding at execution {i}, saved to {crash}", file=sys.stderr)
            raise
        if i and i % 50000 == 0:
            print(f"#{i} {i / (time.time() - t0):.0f} exec/s", flush=True)
    print(f"done: {runs} executions in {time.time() - t0:.0f} s, no findings", flush=True)
    return runs


def replay(paths):
    n = 0
    for p in paths:
        files = [os.path.join(p, f) for f in sorted(os.listdir(p))] if os.path.isdir(p) else [p]
        for f in files:
            with open(f, "rb") as fh:
                run_one(fh.read())
            n += 1
    print(f"replayed {n} inputs, no findings")


def main():
    # 2 GiB of address space: a claimed multi-GB tensor must be refused, not allocated
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
    _init()
    if len(sys.argv) > 1 and sys.argv[1] == "--own":
        own(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000,
            int(sys.argv[3]) if len(sys.argv) > 3 else 0)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        replay(sys.argv[2:])
        return
    import atheris

    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    for c in corpus:
        _seed_corpus(c)
    with atheris.instrument_imports(include=["pyconv"]):
        import importlib

        for mod in ("pyconv._ckpt_proto", "pyconv._snappy", "pyconv._ckpt_table",
                    "pyconv._ckpt_v2", "pyconv._ckpt_v1", "pyconv.train"):
            importlib.reload(importlib.import_module(mod))
    global train
    from pyconv import train as _train

    train = _train
    atheris.Setup(sys.argv + ["-timeout=10", "-rss_limit_mb=2048", "-max_len=8192"], run_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
