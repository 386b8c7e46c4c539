"""The floating-point control state of the calling thread applies to the whole call.

A library built with ``-ffast-math`` sets flush-to-zero and denormals-are-zero
(MXCSR on x86) on the thread that loads it; pyconv's workers, started before,
keep their own. Each job runs with its caller's state on every thread
(csrc/threads.c), so the result does not depend on the thread count. The test
builds such a library with gcc in a temporary directory and loads it with
ctypes, in a child process (the mode must not leak into the rest of the suite).
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap

import pytest

import pyconv

ROOT = os.path.dirname(os.path.dirname(pyconv.__file__))

pytestmark = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64", "i686"),
                                reason="FTZ/DAZ are MXCSR bits (x86)")

LIBRARY = r"""
/* compiled with -ffast-math: linking crtfastmath.o sets FTZ and DAZ at load */
unsigned get_mxcsr(void) { return __builtin_ia32_stmxcsr(); }
float fast_dot(const float *a, const float *b, int n)
{
    float s = 0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}
"""

CHILD = textwrap.dedent("""
    import ctypes, json, sys
    import numpy as np
    import pyconv
    nn = pyconv.nn
    # products of about 1e-40: subnormal in float32 (below 1.18e-38)
    rng = np.random.default_rng(3)
    x = (rng.uniform(0.5, 1.5, (2, 40, 40, 64)) * 1e-20).astype(np.float32)
    w = (rng.uniform(0.5, 1.5, (3, 3, 64, 64)) * 1e-20).astype(np.float32)
    pyconv.set_num_threads(2)
    nn.conv2d(x, w)  # the pool's worker now exists, in the default mode
    normal = nn.conv2d(x, w)
    lib = ctypes.CDLL(sys.argv[1])  # sets FTZ/DAZ on this thread only
    mxcsr = lib.get_mxcsr()
    results = {}
    for threads in (1, 2, 3):
        pyconv.set_num_threads(threads)
        results[threads] = nn.conv2d(x, w)
    print(json.dumps({
        "mxcsr": mxcsr,
        "subnormal_before": int(np.count_nonzero(normal)),
        "nonzero": {t: int(np.count_nonzero(r)) for t, r in results.items()},
        "same": [bool(np.array_equal(results[1], results[t])) for t in (2, 3)],
    }))
""")


@pytest.fixture(scope="module")
def fast_math_library(tmp_path_factory):
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not found: the test builds a -ffast-math library with it")
    tmp = tmp_path_factory.mktemp("fastmath")
    src = tmp / "fastmath.c"
    src.write_text(LIBRARY)
    lib = tmp / "libfastmath.so"
    cmd = [gcc, "-O2", "-ffast-math", "-shared", "-fPIC", str(src), "-o", str(lib)]
    # GCC >= 13 no longer links crtfastmath.o into shared libraries by itself:
    # link it as older GCCs (and many distributed libraries) do
    crt = subprocess.run([gcc, "-print-file-name=crtfastmath.o"], capture_output=True,
                         text=True, check=False).stdout.strip()
    if os.path.isabs(crt) and os.path.exists(crt):
        cmd.insert(-2, crt)
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    return str(lib)


def test_flush_to_zero_set_by_a_fast_math_library_applies_on_every_thread(fast_math_library):
    proc = subprocess.run([sys.executable, "-c", CHILD, fast_math_library], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    msg = json.loads(proc.stdout.strip().splitlines()[-1])
    ftz, daz = 1 << 15, 1 << 6
    assert msg["mxcsr"] & ftz and msg["mxcsr"] & daz, f"the library did not set FTZ/DAZ: {msg}"
    # without FTZ every output is a sum of subnormal products, none zero
    assert msg["subnormal_before"] == 2 * 40 * 40 * 64, msg
    # with FTZ/DAZ every product flushes to 0: the expected output is all zeros,
    # whichever thread computed it
    assert msg["nonzero"] == {"1": 0, "2": 0, "3": 0}, msg
    assert msg["same"] == [True, True], msg
