"""fork() while pyconv is busy: the child must neither hang nor compute wrong numbers.

Every lock of csrc/ is taken by pyconv_atfork's prepare handler and released in
the parent and the child (csrc/atfork.c; the audit is in tools/ROBUSTNESS.md),
and the pool's workers finish their chunk and stop before the fork, so a job
the forking thread owns is complete in the child except for the chunks nobody
took yet, which the child's caller computes.

Each scenario runs in its own process (started in a new session, so that it
and every child it forked are killed if it does not answer in time): a
regression fails the test instead of hanging CI. Nothing here asserts time.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import pyconv

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                                reason="needs fork")
ROOT = os.path.dirname(os.path.dirname(pyconv.__file__))
TIMEOUT = 150  # seconds for a whole scenario: only reached on a deadlock

PRELUDE = textwrap.dedent("""
    import json, os, signal, sys, threading, time
    import numpy as np
    import pyconv
    nn = pyconv.nn

    def say(**msg):
        print(json.dumps(msg), flush=True)

    CHILD_TIMEOUT = 20.0  # a child that has not exited by then is hung

    def reap(pid):
        # the child's status: "ok", "wrong", "raised", "hung" (then killed) or
        # "died <status>"
        deadline = time.monotonic() + CHILD_TIMEOUT
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                return {0: "ok", 3: "wrong", 4: "raised"}.get(code, f"died {code}")
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "hung"
            time.sleep(0.002)

    def in_child(fn):
        # runs fn() in the forked child and exits: 0 if it returned True, 3 if
        # False, 4 if it raised; SIGALRM (default action) ends a hung child even
        # if its parent is gone
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(int(CHILD_TIMEOUT) + 10)
        try:
            code = 0 if fn() else 3
        except BaseException:
            code = 4
        os._exit(code)
""")


@contextlib.contextmanager
def scenario(code, *args):
    proc = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the scenario and the children it forked
            proc.wait()


def result_of(proc):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"the scenario hung (fork deadlock in the parent?): {err}")
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_children_forked_while_threads_convolve_with_cached_buffers():
    """The issue's repro: three threads loop nn.conv2d over growing inputs
    (indirection buffers >= 1 MiB come from buffers.c's cache, under its lock)
    while the main thread forks children that each run one convolution. Before
    the fix a child hung on the lock a vanished thread held, within ~100 forks."""
    with scenario("""
        pyconv.set_num_threads(2)
        w = np.ones((7, 7, 1, 1), np.float32)
        inputs = [np.ones((1, 64 + 2 * i, 64 + 2 * i, 1), np.float32) for i in range(20)]
        # the child's own call also needs a cached (>= 1 MiB) indirection buffer
        small = np.ones((1, 96, 96, 1), np.float32)
        expected = nn.conv2d(small, w, padding="VALID")
        assert np.all(expected == 49)
        stop = threading.Event()
        errors = []

        def loop():
            try:
                while not stop.is_set():
                    for x in inputs:
                        nn.conv2d(x, w)
            except BaseException as exc:
                errors.append(repr(exc))

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(3)]
        for t in threads:
            t.start()
        outcomes = {}
        deadline = time.monotonic() + 12
        forks = 0
        while forks < 100 and time.monotonic() < deadline:
            pid = os.fork()
            if pid == 0:
                in_child(lambda: np.array_equal(nn.conv2d(small, w, padding="VALID"),
                                                expected))
            outcome = reap(pid)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            forks += 1
            if outcome != "ok":
                break
        stop.set()
        for t in threads:
            t.join(30)
        say(forks=forks, outcomes=outcomes, errors=errors)
    """) as proc:
        msg = result_of(proc)
    assert msg["errors"] == [], msg
    assert msg["outcomes"] == {"ok": msg["forks"]} and msg["forks"] >= 20, msg


def test_fork_in_a_signal_handler_during_a_two_thread_convolution():
    """A Python signal handler (run inside pyconv's Ctrl-C poll) forks while the
    pool's worker holds chunks of the caller's job. The child's call must be
    exact (or raise); before the fix it returned with the worker's chunks never
    computed (~1,600-2,900 wrong elements)."""
    with scenario("""
        pyconv.set_num_threads(2)
        rng = np.random.default_rng(15)
        x = rng.standard_normal((32, 96, 96, 32)).astype(np.float32)
        w = rng.standard_normal((3, 3, 32, 128)).astype(np.float32)
        expected = nn.conv2d(x, w)
        state = {}

        def handler(signum, frame):
            pid = os.fork()
            state["pid"] = pid

        signal.signal(signal.SIGALRM, handler)
        outcomes = []
        for delay in (0.01, 0.02, 0.04, 0.06, 0.08):
            state.clear()
            signal.setitimer(signal.ITIMER_REAL, delay)
            try:
                out = nn.conv2d(x, w)
                ok = bool(np.array_equal(out, expected))
                raised = False
            except Exception:
                ok, raised = False, True
            signal.setitimer(signal.ITIMER_REAL, 0)
            if state.get("pid") == 0:  # the child, returning from the handler's fork
                os._exit(4 if raised else (0 if ok else 3))
            if "pid" not in state:
                outcomes.append("no fork during the call")
                continue
            assert ok, "the parent's result changed"
            outcomes.append(reap(state["pid"]))
        say(outcomes=outcomes)
    """) as proc:
        msg = result_of(proc)
    forked = [o for o in msg["outcomes"] if o != "no fork during the call"]
    assert len(forked) >= 3, msg
    assert all(o in ("ok", "raised") for o in forked), msg


def test_child_forked_while_another_thread_holds_a_variable_store_lock():
    """A store's lock is held while an initializer runs; a child forked at that
    moment gets a fresh lock and can create variables (before, it hung)."""
    with scenario("""
        store = pyconv.VariableStore(seed=1)
        inside, release = threading.Event(), threading.Event()

        def slow_initializer(shape, dtype=None, partition_info=None):
            inside.set()
            release.wait(30)
            return np.zeros(shape, dtype)

        def build():
            with store:
                pyconv.model_variable("slow", shape=[2], initializer=slow_initializer)

        t = threading.Thread(target=build)
        t.start()
        inside.wait(30)
        pid = os.fork()
        if pid == 0:
            def child():
                with store:
                    v = pyconv.model_variable("other", shape=[3],
                                              initializer=pyconv.zeros_initializer())
                return v.value.shape == (3,)
            in_child(child)
        outcome = reap(pid)
        release.set()
        t.join(30)
        say(outcome=outcome)
    """) as proc:
        msg = result_of(proc)
    assert msg == {"outcome": "ok"}, msg
