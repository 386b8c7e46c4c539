"""Many Python threads at once, thread settings changed under them, fork.

The C side releases the GIL while it computes; one shared pool of workers
runs one job at a time and a concurrent caller computes alone on its own
thread (csrc/threads.c). Whatever the interleaving, every call must give
exactly (bit for bit) the serial result, nothing may deadlock, and a forked
child must be able to convolve with threads of its own.

Every wait here has a timeout so that a deadlock fails the test instead of
hanging CI; no test asserts anything about time.
"""

import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import pyconv
import pyconv as slim
from pyconv import _conv

nn = pyconv.nn
TIMEOUT = 120  # seconds: only reached on a deadlock


def _configs():
    """Shapes small and large (the large ones use the pool), several dtypes and layouts."""
    rng = np.random.default_rng(2024)
    out = []
    for i, (n, h, w, cin, cout, k, s, d, dtype, fmt) in enumerate([
        (1, 32, 32, 16, 16, 3, 1, 1, np.float32, "NHWC"),   # 2.4 M MACs: pool
        (2, 20, 17, 8, 24, 3, 2, 1, np.float64, "NHWC"),    # pool
        (1, 9, 9, 3, 5, 3, 1, 2, np.float32, "NCHW"),       # too small: caller alone
        (3, 15, 15, 4, 4, 5, 1, 1, np.float16, "NHWC"),
        (1, 40, 12, 6, 10, (7, 1), 1, 1, np.float32, "NHWC"),
        (1, 1, 1, 64, 64, 1, 1, 1, np.float32, "NHWC"),
        (2, 24, 24, 12, 12, 3, 1, 3, np.float64, "NCHW"),   # pool, dilated
        (1, 16, 16, 32, 7, 1, 1, 1, np.float32, "NHWC"),    # 1x1
    ]):
        x = rng.standard_normal((n, h, w, cin)).astype(dtype)
        if fmt == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        kk = k if isinstance(k, tuple) else (k, k)
        wts = rng.standard_normal((*kk, cin, cout)).astype(np.float32)
        bias = rng.standard_normal(cout).astype(np.float32)
        kwargs = {"strides": s, "dilations": d, "padding": ["SAME", "VALID", "FULL"][i % 3],
                  "data_format": fmt, "bias": bias,
                  "activation": [None, "relu", "relu6"][i % 3]}
        out.append((x, wts, kwargs))
    return out


CONFIGS = _configs()


@pytest.fixture
def restore_threads():
    before = pyconv.get_num_threads()
    isa = _conv.isa()
    yield
    pyconv.set_num_threads(before)
    _conv.set_isa(isa)


def serial_results():
    pyconv.set_num_threads(1)
    return [nn.conv2d(x, w, **kw) for x, w, kw in CONFIGS]


def run_threads(targets):
    """Runs each target on its own thread, started together; re-raises the
    first exception; fails on a deadlock."""
    barrier = threading.Barrier(len(targets))
    errors = []

    def wrap(fn):
        def run():
            try:
                barrier.wait(timeout=TIMEOUT)
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        return run

    threads = [threading.Thread(target=wrap(fn), daemon=True) for fn in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a thread did not finish: deadlock?"
    if errors:
        raise errors[0]


def test_eight_threads_get_exactly_the_serial_results(restore_threads):
    expected = serial_results()
    pyconv.set_num_threads(2)

    def worker(seed):
        def run():
            rng = np.random.default_rng(seed)
            for _ in range(30):
                i = int(rng.integers(len(CONFIGS)))
                x, w, kw = CONFIGS[i]
                out = nn.conv2d(x, w, **kw)
                assert out.dtype == expected[i].dtype
                np.testing.assert_array_equal(out, expected[i])
        return run

    run_threads([worker(seed) for seed in range(8)])


def test_thread_count_and_isa_changed_while_others_compute(restore_threads):
    """set_num_threads (and set_isa) from one thread while seven compute: every
    result is still bit-identical (the output does not depend on the thread
    count), and nothing crashes or deadlocks."""
    expected = serial_results()
    isas = _conv.available_isas()
    done = threading.Event()

    def changer():
        rng = np.random.default_rng(99)
        while not done.is_set():
            pyconv.set_num_threads(int(rng.integers(1, 9)))
            _conv.set_isa(isas[int(rng.integers(len(isas)))])

    def worker(seed):
        def run():
            rng = np.random.default_rng(seed)
            for _ in range(30):
                i = int(rng.integers(len(CONFIGS)))
                x, w, kw = CONFIGS[i]
                np.testing.assert_array_equal(nn.conv2d(x, w, **kw), expected[i])
        return run

    changer_thread = threading.Thread(target=changer, daemon=True)
    changer_thread.start()
    try:
        run_threads([worker(seed) for seed in range(7)])
    finally:
        done.set()
        changer_thread.join(TIMEOUT)
    assert not changer_thread.is_alive()


def test_many_thread_counts_give_identical_bits(restore_threads):
    x, w, kw = CONFIGS[0]
    pyconv.set_num_threads(1)
    ref = nn.conv2d(x, w, **kw)
    for n in (2, 3, 4, 7, 16, 64):
        pyconv.set_num_threads(n)
        np.testing.assert_array_equal(nn.conv2d(x, w, **kw), ref)


def test_layers_from_many_threads_share_variables(restore_threads):
    """Per-thread scopes, shared variables: each thread reuses conv1/weights."""
    pyconv.set_num_threads(2)
    x = CONFIGS[0][0]
    with slim.VariableStore(seed=3) as store:
        ref = slim.conv2d(x, 8, 3, scope="conv1")
        results = []

        def worker():
            with store:  # the default store is per thread too
                for _ in range(5):
                    results.append(slim.conv2d(x, 8, 3, scope="conv1", reuse=True))

        run_threads([worker] * 8)
    assert len(results) == 40
    for out in results:
        np.testing.assert_array_equal(out, ref)


def _child_convolves(conn, threads):
    try:
        pyconv.set_num_threads(threads)
        x, w, kw = CONFIGS[0]
        conn.send(nn.conv2d(x, w, **kw))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent
        conn.send(exc)
    finally:
        conn.close()


def _fork_and_convolve(threads=2):
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_convolves, args=(child, threads))
    proc.start()
    child.close()
    if not parent.poll(TIMEOUT):
        proc.kill()
        proc.join()
        raise AssertionError("the forked child did not answer: deadlock?")
    result = parent.recv()
    proc.join(TIMEOUT)
    assert proc.exitcode == 0
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_child_after_the_pool_was_used(restore_threads):
    pyconv.set_num_threads(2)
    x, w, kw = CONFIGS[0]
    expected = nn.conv2d(x, w, **kw)  # the parent's pool now has a worker
    for threads in (2, 1, 4):
        np.testing.assert_array_equal(_fork_and_convolve(threads), expected)
    np.testing.assert_array_equal(nn.conv2d(x, w, **kw), expected)  # the parent still works


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_fork_while_other_threads_compute(restore_threads):
    """Forks taken while other threads are inside the pool (holding its locks):
    the child starts with a fresh pool (pthread_atfork) and can convolve."""
    pyconv.set_num_threads(2)
    x, w, kw = CONFIGS[0]
    expected = nn.conv2d(x, w, **kw)
    done = threading.Event()
    errors = []

    def busy():
        try:
            while not done.is_set():
                np.testing.assert_array_equal(nn.conv2d(x, w, **kw), expected)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    busy_threads = [threading.Thread(target=busy, daemon=True) for _ in range(2)]
    for t in busy_threads:
        t.start()
    try:
        for _ in range(6):
            np.testing.assert_array_equal(_fork_and_convolve(2), expected)
    finally:
        done.set()
        for t in busy_threads:
            t.join(TIMEOUT)
    assert not errors and not any(t.is_alive() for t in busy_threads)


def test_interpreter_exit_while_daemon_threads_compute():
    """Daemon threads inside multi-threaded convolutions when the interpreter
    exits: the process ends cleanly (no crash, no hang), several times over."""
    code = textwrap.dedent("""
        import threading, time
        import numpy as np
        import pyconv
        pyconv.set_num_threads(2)
        x = np.ones((1, 64, 64, 32), np.float32)
        w = np.ones((3, 3, 32, 32), np.float32)
        started = threading.Barrier(3)
        def loop():
            started.wait()
            while True:
                pyconv.nn.conv2d(x, w)
        for _ in range(2):
            threading.Thread(target=loop, daemon=True).start()
        started.wait()
        time.sleep(0.05)
        print("exiting")
    """)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    root = os.path.dirname(os.path.dirname(pyconv.__file__))
    for _ in range(4):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=TIMEOUT, env=env, cwd=root, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "exiting"
