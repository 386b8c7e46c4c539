"""Sizes and pads against the seed's formulas (reference.py) and TF facts."""

import math
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyconv
from reference import pads_for


def expected_out(padding, n, k, s, r):
    k_eff = (k - 1) * r + 1
    if padding == "SAME":
        return math.ceil(n / s)
    if padding == "VALID":
        return math.ceil((n - k_eff + 1) / s)
    if padding == "FULL":
        return math.ceil((n + k_eff - 1) / s)
    b, a = padding
    return (n + b + a - k_eff) // s + 1


@given(n=st.integers(1, 40), k=st.integers(1, 9), s=st.integers(1, 5), r=st.integers(1, 4),
       padding=st.sampled_from(["SAME", "VALID", "FULL"]) | st.tuples(st.integers(0, 6),
                                                                        st.integers(0, 6)))
def test_sizes_and_pads_follow_the_formulas(n, k, s, r, padding):
    out = expected_out(padding, n, k, s, r)
    explicit = not isinstance(padding, str)
    arg = (padding, padding) if explicit else padding
    if out < 1:
        with pytest.raises(ValueError, match="output size"):
            pyconv.conv_output_size(n, k, s, arg, r)
        return
    if explicit:
        assert pyconv.conv_output_size(n, k, s, arg, r) == (out, out)
        assert pyconv.conv_padding(n, k, s, arg, r) == (padding, padding)
    else:
        assert pyconv.conv_output_size(n, k, s, padding, r) == out
        assert pyconv.conv_padding(n, k, s, padding, r) == pads_for(padding, n, k, s, r)
        # the pads reproduce the size through the explicit formula
        b, a = pads_for(padding, n, k, s, r)
        assert expected_out((b, a), n, k, s, r) == out


def test_tf_same_puts_the_extra_pad_after():
    # TF: 4 wide, kernel 3, stride 2 -> pad 0 before, 1 after; 5 wide -> 1 and 1
    assert pyconv.conv_padding(4, 3, 2, "SAME") == (0, 1)
    assert pyconv.conv_padding(5, 3, 2, "SAME") == (1, 1)
    assert pyconv.conv_padding(224, 7, 2, "SAME") == (2, 3)
    assert pyconv.conv_output_size(224, 7, 2, "SAME") == 112


def test_pairs_give_tuples_and_case_is_ignored():
    assert pyconv.conv_output_size((5, 4), 3, 2, "same") == (3, 2)
    assert pyconv.conv_output_size((17, 17), (1, 7), 1, "Valid") == (17, 11)
    assert pyconv.conv_padding((17, 17), (7, 1), 1, "SAME") == ((3, 3), (0, 0))
    assert pyconv.conv_padding(6, 3, 1, "FULL", rate=2) == (4, 4)


@pytest.mark.parametrize("bad, suggestion", [("VAILD", "VALID"), ("smae", "SAME"),
                                             ("ful", "FULL")])
def test_misspelt_padding_suggests_the_nearest(bad, suggestion):
    with pytest.raises(ValueError, match=f"Did you mean '{suggestion}'") as e:
        pyconv.conv_output_size(5, 3, padding=bad)
    assert "padding" in str(e.value) and "'SAME', 'VALID', 'FULL'" in str(e.value)


def test_output_below_one_shows_the_formula_with_numbers():
    with pytest.raises(ValueError) as e:
        pyconv.conv_output_size(3, 5, 1, "VALID")
    msg = str(e.value)
    assert "ceil((3 - 5 + 1) / 1)" in msg and "-1" in msg and "VALID" in msg


@pytest.mark.parametrize("kwargs, name", [
    (dict(input_size=0, kernel_size=3), "input_size"),
    (dict(input_size=5, kernel_size=0), "kernel_size"),
    (dict(input_size=5, kernel_size=3, stride=0), "stride"),
    (dict(input_size=5, kernel_size=3, rate=-1), "rate"),
    (dict(input_size=5, kernel_size=2.0), "kernel_size"),
    (dict(input_size="5", kernel_size=3), "input_size"),
    (dict(input_size=5, kernel_size=(3, 3, 3)), "kernel_size"),
    (dict(input_size=5, kernel_size=True), "kernel_size"),
    (dict(input_size=5, kernel_size=3, padding=None), "padding"),
    (dict(input_size=5, kernel_size=3, padding=[(1, 1)]), "padding"),
    (dict(input_size=5, kernel_size=3, padding=[(1, -1), (0, 0)]), "padding"),
])
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        pyconv.conv_output_size(**kwargs)


def test_explain_padding_says_sizes_pads_and_windows():
    text = pyconv.explain_padding(4, 3, 2, "SAME")
    assert "output 2" in text and "pad before 0, after 1" in text
    assert "first output sees input 0..2" in text
    assert "last output sees input 2..3 (+1 padding tap)" in text
    both = pyconv.explain_padding((5, 4), 3, 2, "FULL", rate=2)
    assert both.startswith("height:") and "\nwidth:" in both and "k_eff 5" in both


def test_conv2d_same_pads_do_not_depend_on_the_input_size():
    from pyconv.geometry import conv2d_same_padding

    assert conv2d_same_padding(3) == (1, 1)
    assert conv2d_same_padding(7) == (3, 3)
    assert conv2d_same_padding(4) == (1, 2)
    assert conv2d_same_padding(3, rate=2) == (2, 2)


def _naive_window(start, k, r, n):
    """The taps of one window enumerated one by one (the independent reference)."""
    inside = [t for t in (start + i * r for i in range(k)) if 0 <= t < n]
    return (inside[0], inside[-1], len(inside)) if inside else None


def test_explain_padding_windows_match_tap_by_tap_enumeration():
    """The closed-form windows are the enumerated ones, for every small case."""
    from pyconv.geometry import _window_inside

    for n in range(1, 9):
        for k in range(1, 6):
            for r in range(1, 4):
                for start in range(-12, 12):
                    assert _window_inside(start, k, r, n) == _naive_window(start, k, r, n)
    # and the text, for every padding of a grid of small sizes
    for n, k, s, r in [(4, 3, 2, 1), (7, 3, 1, 2), (5, 4, 3, 1), (9, 2, 2, 3), (3, 5, 1, 1)]:
        text = pyconv.explain_padding(n, k, s, "FULL", r)
        out, (before, _) = pyconv.conv_output_size(n, k, s, "FULL", r), \
            pyconv.conv_padding(n, k, s, "FULL", r)
        first = _naive_window(-before, k, r, n)
        last = _naive_window((out - 1) * s - before, k, r, n)
        assert (f"first output sees input {first[0]}..{first[1]}" if first
                else "first output sees only padding") in text
        assert (f"last output sees input {last[0]}..{last[1]}" if last
                else "last output sees only padding") in text


def test_explain_padding_is_constant_in_time_and_memory():
    """No Python int per kernel tap: a million taps allocate almost nothing, and
    sizes only conv_output_size could handle before (2**40 taps, k_eff ~ 2**80)
    are explained too."""
    import tracemalloc

    tracemalloc.start()
    try:
        text = pyconv.explain_padding(5, 10**6)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "(+999995 padding taps)" in text
    assert peak < 100_000, f"{peak} bytes for a 10**6-tap explanation"
    huge = pyconv.explain_padding(5, 2**40, padding="FULL", rate=2**40)
    k_eff = 2**40 + (2**40 - 1) * (2**40 - 1)
    assert f"k_eff {k_eff}" in huge and f"output {k_eff + 4}" in huge
    assert f"first output sees input 0..0 (+{2**40 - 1} padding taps)" in huge
    assert f"last output sees input 4..4 (+{2**40 - 1} padding taps)" in huge
    both = pyconv.explain_padding((5, 2**62), (10**8, 3), 1, "SAME")
    assert both.startswith("height:") and "(+99999995 padding taps)" in both


def test_cli_explains_a_hundred_million_tap_kernel():
    """``python -m pyconv explain 5 --kernel 100000000`` prints, in little memory."""
    import subprocess
    import sys

    def limit_memory():  # 1 GiB of address space: a list of 10**8 ints needs 4
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run([sys.executable, "-m", "pyconv", "explain", "5", "--kernel",
                           "100000000"], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(pyconv.__file__)), check=False,
                          # ASan reserves terabytes of address space for its shadow:
                          # no RLIMIT_AS under it (the memory bound is then unchecked)
                          preexec_fn=limit_memory if sys.platform.startswith("linux") and
                          "libasan" not in os.environ.get("LD_PRELOAD", "") else None)
    assert proc.returncode == 0, proc.stderr
    assert "SAME: input 5, kernel 100000000" in proc.stdout
    assert "first output sees input 0..4 (+99999995 padding taps)" in proc.stdout
    assert "last output sees input 4..4 (+99999999 padding taps)" in proc.stdout
