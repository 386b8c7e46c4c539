"""The convolution's second output: ``(y, act(other + y))`` in one pass, as
ResNet's ``relu(shortcut + conv3)`` where conv3's own output ``y`` stays an
end point (pyconv.nn._conv2d's ``add``, the C epilogue's add_to/add_out).

The pair must be what the two separate steps give: ``y`` bit for bit the
plain convolution (with the same batch-norm epilogue), the sum bit for bit
``nn.add_relu(other, y)`` / ``other + y``, on every ISA and thread count;
and both close to the float64 reference."""

import numpy as np
import pytest

import pyconv
from pyconv import _conv, nn
from reference import conv2d_padded, error_scale, pads_for

CASES = [  # (n, h, w, cin, cout, k, stride, padding)
    (1, 7, 7, 64, 256, 1, 1, "SAME"),
    (2, 14, 14, 32, 96, 1, 2, "SAME"),
    (1, 9, 11, 16, 40, 3, 1, "SAME"),
    (3, 6, 5, 8, 24, 3, 2, "VALID"),
    (1, 1, 1, 128, 70, 1, 1, "SAME"),
]


def _case(rng, dtype, n, h, w, cin, cout, k, stride, padding):
    x = rng.standard_normal((n, h, w, cin)).astype(dtype)
    f = (rng.standard_normal((k, k, cin, cout)) / np.sqrt(k * k * cin)).astype(dtype)
    oh = -(-h // stride) if padding == "SAME" else (h - k) // stride + 1
    ow = -(-w // stride) if padding == "SAME" else (w - k) // stride + 1
    other = rng.standard_normal((n, oh, ow, cout)).astype(dtype)
    return x, f, other


@pytest.mark.parametrize("isa", _conv.available_isas())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_pair_equals_the_two_steps_and_the_reference(isa, dtype, case):
    rng = np.random.default_rng(hash(case) % 2**32)
    x, f, other = _case(rng, dtype, *case)
    k, stride, padding = case[5], case[6], case[7]
    cout = case[4]
    scale = (rng.random(cout) + 0.5).astype(dtype)
    shift = rng.standard_normal(cout).astype(dtype)
    bias = rng.standard_normal(cout).astype(dtype)
    other[0, 0, 0, :3] = (np.nan, np.inf, -np.inf)  # non-finite shortcuts pass through
    old, threads = _conv.isa(), pyconv.get_num_threads()
    _conv.set_isa(isa)
    try:
        results = []
        for epilogue, b in (((None, scale, shift, None), None), (None, bias)):
            for act in (None, "relu"):
                pyconv.set_num_threads(1)
                y1, s1 = nn._conv2d(x, f, stride, padding, "NHWC", 1, b, None, epilogue,
                                    add=(other, act))
                for t in (2, 3):
                    pyconv.set_num_threads(t)
                    yt, st = nn._conv2d(x, f, stride, padding, "NHWC", 1, b, None, epilogue,
                                        add=(other, act))
                    assert np.array_equal(yt, y1) and np.array_equal(st, s1, equal_nan=True)
                plain = nn._conv2d(x, f, stride, padding, "NHWC", 1, b, None, epilogue)
                assert np.array_equal(y1, plain)
                two_step = nn.add_relu(other, plain) if act == "relu" else other + plain
                assert np.array_equal(s1, two_step, equal_nan=True)
                assert s1.dtype == y1.dtype == np.dtype(dtype) and s1.flags.c_contiguous
                # against float64: conv (+bias or *scale+shift), then the add
                pads = (pads_for(padding, x.shape[1], k, stride),
                        pads_for(padding, x.shape[2], k, stride))
                ref = conv2d_padded(x, f, (stride, stride), padding)
                ref = ref + bias if b is not None else ref * scale + shift
                ref_sum = other.astype(np.float64) + ref
                if act == "relu":
                    ref_sum = np.where(np.isnan(ref_sum), ref_sum, np.maximum(ref_sum, 0))
                tol = (1e-5 if dtype == np.float32 else 1e-12) * (
                    error_scale(x, f, (stride, stride), pads, (1, 1)) * np.abs(scale).max()
                    + 1.0 + np.abs(shift).max() + np.abs(bias).max())
                finite = np.isfinite(ref_sum)
                assert np.all(np.abs(s1[finite] - ref_sum[finite]) <= tol[finite])
                assert np.array_equal(np.isnan(s1), np.isnan(ref_sum))
                assert np.array_equal(s1[~finite & ~np.isnan(ref_sum)],
                                      ref_sum[~finite & ~np.isnan(ref_sum)])
                results.append(s1)
        assert len(results) == 4
    finally:
        _conv.set_isa(old)
        pyconv.set_num_threads(threads)


def test_where_it_does_not_fuse_the_pair_is_the_two_steps():
    rng = np.random.default_rng(3)
    x, f, other = _case(rng, np.float32, 1, 6, 6, 8, 16, 3, 1, "SAME")
    # NCHW
    xc = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    oc = np.ascontiguousarray(other.transpose(0, 3, 1, 2))
    y, s = nn._conv2d(xc, f, 1, "SAME", "NCHW", 1, None, None, None, add=(oc, "relu"))
    plain = nn._conv2d(xc, f, 1, "SAME", "NCHW", 1, None, None, None)
    assert np.array_equal(y, plain) and np.array_equal(s, nn.add_relu(oc, plain))
    # float16 input, and a shortcut that broadcasts (NumPy's rules, as add_relu)
    for xi, oi in ((x.astype(np.float16), other.astype(np.float16)), (x, other[:, :1])):
        y, s = nn._conv2d(xi, f, 1, "SAME", "NHWC", 1, None, None, None, add=(oi, "relu"))
        plain = nn._conv2d(xi, f, 1, "SAME", "NHWC", 1, None, None, None)
        assert np.array_equal(y, plain) and np.array_equal(s, nn.add_relu(oi, plain))
    # a float64 shortcut for float32 outputs: NumPy's promotion, in two steps
    y, s = nn._conv2d(x, f, 1, "SAME", "NHWC", 1, None, None, None,
                      add=(other.astype(np.float64), None))
    assert s.dtype == np.float64 and np.array_equal(s, other.astype(np.float64) + y)


def test_operator_refuses_a_bad_second_output():
    x = np.ones((1, 4, 4, 3), np.float32)
    w = np.ones((1, 1, 3, 5), np.float32)
    base = (x, w, None, 0, 0, 0, 0, 1, 1, 1, 1, 0, None, None, None, None)
    with pytest.raises(ValueError, match=r"add_to must have the output's shape \(1, 4, 4, 5\)"):
        _conv.conv2d(*base, np.ones((1, 4, 4, 4), np.float32), 1)
    with pytest.raises(ValueError, match="add_activation must be 0, 1 or 2"):
        _conv.conv2d(*base, np.ones((1, 4, 4, 5), np.float32), 7)
    with pytest.raises(TypeError, match="12, 16 or 18 positional arguments"):
        _conv.conv2d(*base, np.ones((1, 4, 4, 5), np.float32))
    y, s = _conv.conv2d(*base, np.full((1, 4, 4, 5), -4.0, np.float32), 1)
    assert np.array_equal(y, np.full((1, 4, 4, 5), 3.0, np.float32))
    assert np.array_equal(s, np.zeros((1, 4, 4, 5), np.float32))
    # None for add_to: one output, as with 16 arguments
    assert _conv.conv2d(*base, None, 0).shape == (1, 4, 4, 5)
