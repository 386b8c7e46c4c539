"""pyconv.nn against the slow float64 reference, over random configurations,
every padding, stride and rate, dtypes, data formats, memory layouts and ISAs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyconv
from pyconv import _conv
from reference import conv2d_reference, error_scale, pads_for, pool_reference

# Tolerance relative to sum(|x| |w|) per output element (the scale of the
# rounding error of a dot product), by output dtype.
TOLERANCE = {np.float64: 1e-13, np.float32: 2e-6, np.float16: 1e-3}
MAX_ERROR = {}  # largest relative error seen per dtype, reported at the end of the run


def record_error(dtype, err):
    key = np.dtype(dtype).name
    MAX_ERROR[key] = max(MAX_ERROR.get(key, 0.0), float(err))


def check_close(out, ref, scale, dtype):
    """|out - ref| <= tol * scale elementwise, with NaN/Inf required to match."""
    out64 = out.astype(np.float64)
    finite = np.isfinite(ref)
    np.testing.assert_array_equal(np.isnan(out64), np.isnan(ref))
    np.testing.assert_array_equal(out64[~finite & ~np.isnan(ref)], ref[~finite & ~np.isnan(ref)])
    err = np.abs(out64 - ref)[finite] / np.maximum(scale[finite], 1e-30)
    worst = float(err.max()) if err.size else 0.0
    record_error(dtype, worst)
    assert worst <= TOLERANCE[np.dtype(dtype).type], f"relative error {worst:g}"


LAYOUTS = ["contiguous", "fortran", "noncontiguous", "negative", "readonly", "byteswapped",
           "unaligned", "broadcast"]


def with_layout(a, layout):
    """The same values (except 'broadcast', which repeats one row) in another memory layout."""
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "noncontiguous":
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if layout == "negative":
        return np.flip(np.flip(a, 0).copy(), 0)
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if layout == "byteswapped":
        return a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
    if layout == "unaligned":
        buf = np.zeros(a.nbytes + 1, np.uint8)
        b = buf[1:].view(a.dtype).reshape(a.shape)
        b[...] = a
        return b
    if layout == "broadcast":
        return np.broadcast_to(a[:1], a.shape)
    return a


def random_array(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        return rng.integers(0 if dtype.kind == "u" else -4, 5, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


paddings = st.sampled_from(["SAME", "VALID", "FULL", "same", "Valid"]) | st.tuples(
    st.tuples(st.integers(0, 4), st.integers(0, 4)), st.tuples(st.integers(0, 4),
                                                               st.integers(0, 4)))


@st.composite
def conv_configs(draw):
    kh = draw(st.integers(1, 7))
    kw = draw(st.sampled_from([kh, 1, 7, draw(st.integers(1, 7))]))
    return dict(
        batch=draw(st.sampled_from([1, 1, 2, 3, 0])),
        h=draw(st.integers(1, 13)), w=draw(st.integers(1, 13)),
        cin=draw(st.sampled_from([1, 2, 3, 4, 5, 8, 13, 17])),
        cout=draw(st.sampled_from([1, 2, 3, 5, 8, 16, 17, 33])),
        kh=kh, kw=kw,
        strides=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        dilations=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        padding=draw(paddings),
        data_format=draw(st.sampled_from(["NHWC", "NCHW"])),
        dtype=draw(st.sampled_from([np.float32, np.float32, np.float64, np.float16, np.int32,
                                    np.uint8, np.bool_])),
        filter_dtype=draw(st.sampled_from(["same", np.float32, np.float64])),
        bias=draw(st.booleans()),
        activation=draw(st.sampled_from([None, "relu", "relu6"])),
        layout=draw(st.sampled_from(LAYOUTS)),
        filter_layout=draw(st.sampled_from(LAYOUTS)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@given(conv_configs())
def test_conv2d_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    nhwc_shape = (cfg["batch"], cfg["h"], cfg["w"], cfg["cin"])
    x_nhwc = random_array(rng, nhwc_shape, cfg["dtype"])
    integer = np.dtype(cfg["dtype"]).kind in "biu"
    fdt = cfg["dtype"] if cfg["filter_dtype"] == "same" or integer else cfg["filter_dtype"]
    w = with_layout(random_array(rng, (cfg["kh"], cfg["kw"], cfg["cin"], cfg["cout"]), fdt),
                    cfg["filter_layout"])
    b = rng.standard_normal(cfg["cout"]) if cfg["bias"] else None
    if integer and b is not None:
        b = rng.integers(-9, 10, cfg["cout"]).astype(np.int32)
    nchw = cfg["data_format"] == "NCHW"
    x = with_layout(x_nhwc.transpose(0, 3, 1, 2) if nchw else x_nhwc, cfg["layout"])
    x_before, w_before = x.copy(), w.copy()
    x_ref = x.transpose(0, 2, 3, 1) if nchw else x  # values as given, NHWC

    pad = cfg["padding"]
    pads = tuple(
        pads_for(pad if isinstance(pad, str) else pad[d], nhwc_shape[1 + d], w.shape[d],
                 cfg["strides"][d], cfg["dilations"][d])
        for d in range(2)
    )
    k_eff = [(w.shape[d] - 1) * cfg["dilations"][d] + 1 for d in range(2)]
    sizes = [nhwc_shape[1 + d] + sum(pads[d]) - k_eff[d] for d in range(2)]
    if pad in ("SAME", "same"):
        sizes = [0, 0]  # SAME always has an output
    kwargs = dict(strides=cfg["strides"], padding=pad, data_format=cfg["data_format"],
                  dilations=cfg["dilations"], bias=b, activation=cfg["activation"])
    if integer and cfg["dtype"] != np.int32:  # as tf.nn.conv2d: only int32 among integers
        with pytest.raises(TypeError, match=np.dtype(cfg["dtype"]).name):
            pyconv.nn.conv2d(x, w, **kwargs)
        return
    if min(sizes) < 0:
        with pytest.raises(ValueError, match="output size"):
            pyconv.nn.conv2d(x, w, **kwargs)
        return

    expected_dtype = {np.float64: np.float64, np.float16: np.float16,
                      np.int32: np.int32}.get(cfg["dtype"], np.float32)
    compute = np.float64 if expected_dtype in (np.float64, np.int32) else np.float32
    # the reference sees what pyconv computes with: filters and bias in the compute dtype
    w_c = w.astype(compute).astype(np.float64)
    b_c = None if b is None else b.astype(compute).astype(np.float64)
    ref = conv2d_reference(x_ref, w_c, cfg["strides"], pads, cfg["dilations"], b_c,
                           cfg["activation"])
    scale = error_scale(x_ref, w_c, cfg["strides"], pads, cfg["dilations"])
    if b_c is not None:
        scale = scale + np.abs(b_c)
    if expected_dtype == np.float16:  # the final rounding to half precision
        scale = np.maximum(scale, np.abs(ref))
    if nchw:
        ref, scale = ref.transpose(0, 3, 1, 2), scale.transpose(0, 3, 1, 2)

    for isa in _conv.available_isas():
        before = _conv.isa()
        _conv.set_isa(isa)
        try:
            out = pyconv.nn.conv2d(x, w, **kwargs)
        finally:
            _conv.set_isa(before)
        assert out.dtype == expected_dtype
        assert out.shape == ref.shape
        assert out.flags.c_contiguous and out.flags.writeable
        assert not np.shares_memory(out, x) and not np.shares_memory(out, w)
        if expected_dtype == np.int32:  # small integers: exact
            np.testing.assert_array_equal(out, ref.astype(np.int64))
        else:
            check_close(out, ref, scale, expected_dtype)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, w_before)


def test_slim_resnet_example_even_and_odd():
    """TF-Slim resnet_utils_test testConv2DSameEven/Odd values, through pyconv.nn."""
    from reference import slim_test_image

    w = slim_test_image(3).reshape(3, 3, 1, 1)
    for n, y1_expected, y4_expected in [
        (4, [[14, 28, 43, 26], [28, 48, 66, 37], [43, 66, 84, 46], [26, 37, 46, 22]],
         [[48, 37], [37, 22]]),
        (5, [[14, 28, 43, 58, 34], [28, 48, 66, 84, 46], [43, 66, 84, 102, 55],
             [58, 84, 102, 120, 64], [34, 46, 55, 64, 30]],
         [[14, 43, 34], [43, 84, 55], [34, 55, 30]]),
    ]:
        x = slim_test_image(n).astype(np.float32)
        y1 = pyconv.nn.conv2d(x, w, 1, "SAME")
        y2 = pyconv.nn.max_pool2d(y1, 1, 2, "VALID")  # subsample
        y3 = pyconv.nn.conv2d(x, w, 2, [(1, 1), (1, 1)])  # conv2d_same's pads for k=3
        y4 = pyconv.nn.conv2d(x, w, 2, "SAME")
        np.testing.assert_array_equal(y1[0, :, :, 0], y1_expected)
        np.testing.assert_array_equal(y3, y2)
        np.testing.assert_array_equal(y4[0, :, :, 0], y4_expected)
        assert np.array_equal(y4, y2) == (n % 2 == 1)  # the even-size trap


def test_batch_zero_gives_an_empty_output_of_the_right_shape():
    x = np.zeros((0, 7, 5, 3), np.float32)
    w = np.ones((3, 3, 3, 4), np.float32)
    assert pyconv.nn.conv2d(x, w, 2, "SAME").shape == (0, 4, 3, 4)
    assert pyconv.nn.conv2d(x.transpose(0, 3, 1, 2), w, 1, "VALID",
                            data_format="NCHW").shape == (0, 4, 5, 3)


def test_nan_and_inf_propagate():
    x = np.ones((1, 5, 5, 2), np.float32)
    x[0, 2, 2, 0] = np.nan
    x[0, 0, 4, 1] = np.inf
    w = np.ones((3, 3, 2, 3), np.float32)
    for act in (None, "relu", "relu6"):
        out = pyconv.nn.conv2d(x, w, 1, "SAME", activation=act)
        ref = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1)), activation=act)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
        assert np.isnan(out[0, 1:4, 1:4]).all() and not np.isnan(out[0, 0, 0]).any()
        finite = np.isfinite(ref)
        np.testing.assert_allclose(out[finite], ref[finite], rtol=1e-6)
        if act is None:
            assert np.isposinf(out[0, 0, 3]).all()
        if act == "relu6":
            assert (out[0, 0, 3] == 6).all()


@pytest.mark.parametrize("strides, dilations", [((1, 1), (1, 1)), ((2, 3), (1, 1)),
                                                ((1, 1), (2, 3)), ((2, 2), (2, 2))])
def test_tf_four_element_forms(strides, dilations):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 9, 8, 3))
    w = rng.standard_normal((3, 2, 3, 4))
    ref = pyconv.nn.conv2d(x, w, strides, "SAME", dilations=dilations)
    nhwc = pyconv.nn.conv2d(x, w, [1, *strides, 1], "SAME", dilations=[1, *dilations, 1])
    nchw = pyconv.nn.conv2d(x.transpose(0, 3, 1, 2), w, [1, 1, *strides], "SAME", "NCHW",
                            [1, 1, *dilations])
    np.testing.assert_array_equal(nhwc, ref)
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), ref)
    tf_pad = pyconv.nn.conv2d(x, w, strides, [[0, 0], [1, 2], [0, 1], [0, 0]],
                              dilations=dilations)
    np.testing.assert_array_equal(
        tf_pad, pyconv.nn.conv2d(x, w, strides, [(1, 2), (0, 1)], dilations=dilations))


def _x():
    return np.zeros((1, 5, 5, 3), np.float32)


def _w():
    return np.zeros((3, 3, 3, 2), np.float32)


@pytest.mark.parametrize("call, exc, words", [
    (lambda: pyconv.nn.conv2d(np.zeros((5, 5, 3)), _w()), ValueError, ["input", "rank 4", "3"]),
    (lambda: pyconv.nn.conv2d(np.zeros((1, 1, 5, 5, 3)), _w()), ValueError, ["rank 4", "5"]),
    (lambda: pyconv.nn.conv2d(_x(), np.zeros((3, 3, 3))), ValueError, ["filters", "rank 4"]),
    (lambda: pyconv.nn.conv2d(_x(), np.zeros((3, 3, 4, 2))), ValueError,
     ["input channels", "(1, 5, 5, 3)", "(3, 3, 4, 2)"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), data_format="NWHC"), ValueError, ["data_format"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), padding="VAILD"), ValueError,
     ["padding", "Did you mean 'VALID'"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), padding=3), TypeError, ["padding"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), strides=0), ValueError, ["strides", ">= 1"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), strides=1.5), TypeError, ["strides"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), strides=[2, 1, 1, 1]), ValueError, ["strides"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), strides=(1, 2, 3)), ValueError, ["strides"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), dilations=-2), ValueError, ["dilations"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), dilations="2"), TypeError, ["dilations"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), activation="gelu"), ValueError, ["activation"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), bias=np.zeros(3)), ValueError, ["bias", "(2,)"]),
    (lambda: pyconv.nn.conv2d(_x(), _w(), bias=np.zeros(2, complex)), TypeError, ["bias"]),
    (lambda: pyconv.nn.conv2d(_x().astype(complex), _w()), TypeError, ["input", "complex"]),
    (lambda: pyconv.nn.conv2d(_x().astype(object), _w()), TypeError, ["input", "object"]),
    (lambda: pyconv.nn.conv2d(np.full((1, 2, 2, 3), "a"), _w()), TypeError, ["input"]),
    (lambda: pyconv.nn.conv2d(_x(), _w().astype(complex)), TypeError, ["filters"]),
    (lambda: pyconv.nn.conv2d([[1, 2], [3]], _w()), TypeError, ["input"]),
    (lambda: pyconv.nn.conv2d(None, _w()), TypeError, ["input"]),
    (lambda: pyconv.nn.conv2d(_x(), np.zeros((9, 9, 3, 2)), padding="VALID"), ValueError,
     ["VALID", "output size", "ceil((5 - 9 + 1) / 1)"]),
    (lambda: pyconv.nn.conv2d(np.zeros((1, 0, 5, 3)), _w(), padding="VALID"), ValueError,
     ["height"]),
    (lambda: pyconv.nn.conv2d(_x(), np.zeros((3, 3, 3, 2)), padding=[(1, 1)]), ValueError,
     ["padding"]),
])
def test_errors_name_the_argument(call, exc, words):
    with pytest.raises(exc) as e:
        call()
    for word in words:
        assert word in str(e.value), (word, str(e.value))


def test_the_c_operator_checks_its_own_arguments():
    x, w = _x(), _w()
    with pytest.raises(ValueError, match="pad_top"):
        _conv.conv2d(x, w, None, -1, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="stride_w"):
        _conv.conv2d(x, w, None, 0, 0, 0, 0, 1, 0, 1, 1, 0)
    with pytest.raises(ValueError, match="larger than the padded input"):
        _conv.conv2d(x, w, None, 0, 0, 0, 0, 1, 1, 3, 1, 0)
    with pytest.raises(TypeError, match="filters must have dtype float32"):
        _conv.conv2d(x, w.astype(np.float64), None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="input channels"):
        _conv.conv2d(x, np.zeros((3, 3, 2, 2), np.float32), None, 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="bias"):
        _conv.conv2d(x, w, np.zeros(5, np.float32), 0, 0, 0, 0, 1, 1, 1, 1, 0)
    with pytest.raises(ValueError, match="activation"):
        _conv.conv2d(x, w, None, 0, 0, 0, 0, 1, 1, 1, 1, 7)
    with pytest.raises(TypeError, match="12, 16 or 18 positional"):
        _conv.conv2d(x, w)
    with pytest.raises(ValueError, match="larger than memory"):
        _conv.conv2d(x, w, None, 2**62, 2**62, 0, 0, 1, 1, 1, 1, 0)


@st.composite
def pool_configs(draw):
    return dict(
        kind=draw(st.sampled_from(["max", "avg"])),
        shape=(draw(st.integers(0, 2)), draw(st.integers(1, 9)), draw(st.integers(1, 9)),
               draw(st.integers(1, 5))),
        k=(draw(st.integers(1, 4)), draw(st.integers(1, 4))),
        s=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
        padding=draw(st.sampled_from(["SAME", "VALID", "FULL"])),
        data_format=draw(st.sampled_from(["NHWC", "NCHW"])),
        dtype=draw(st.sampled_from([np.float32, np.float64, np.float16, np.int16, np.uint8])),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


@given(pool_configs())
def test_pools_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    x = random_array(rng, cfg["shape"], cfg["dtype"])
    pads = tuple(pads_for(cfg["padding"], cfg["shape"][1 + d], cfg["k"][d], cfg["s"][d])
                 for d in range(2))
    fn = pyconv.nn.max_pool2d if cfg["kind"] == "max" else pyconv.nn.avg_pool2d
    nchw = cfg["data_format"] == "NCHW"
    arg = x.transpose(0, 3, 1, 2) if nchw else x
    integer = np.dtype(cfg["dtype"]).kind in "iu"
    if integer and cfg["kind"] == "avg":  # as tf.nn.avg_pool2d
        with pytest.raises(TypeError, match=np.dtype(cfg["dtype"]).name):
            fn(arg, cfg["k"], cfg["s"], cfg["padding"], cfg["data_format"])
        return
    if any(cfg["shape"][1 + d] + sum(pads[d]) < cfg["k"][d] for d in range(2)):
        with pytest.raises(ValueError, match="output size"):
            fn(arg, cfg["k"], cfg["s"], cfg["padding"], cfg["data_format"])
        return
    out = fn(arg, cfg["k"], cfg["s"], cfg["padding"], cfg["data_format"])
    ref = pool_reference(cfg["kind"], x, cfg["k"], cfg["s"], pads)
    if nchw:
        out = out.transpose(0, 2, 3, 1)
    expected_dtype = {np.float64: np.float64, np.float16: np.float16}.get(
        cfg["dtype"], cfg["dtype"] if integer else np.float32)
    assert out.dtype == expected_dtype and out.shape == ref.shape
    tol = 1e-3 if expected_dtype == np.float16 else 1e-6
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)


def test_pool_errors():
    x = np.zeros((1, 4, 4, 2))
    with pytest.raises(ValueError, match="ksize"):
        pyconv.nn.max_pool2d(x, 0, 1)
    with pytest.raises(ValueError, match="padding"):
        pyconv.nn.avg_pool2d(x, 2, 1, [(2, 0), (0, 0)])
    with pytest.raises(ValueError, match="Did you mean 'SAME'"):
        pyconv.nn.max_pool2d(x, 2, 1, "SMAE")
    with pytest.raises(ValueError, match="rank 4"):
        pyconv.nn.avg_pool2d(x[0], 2, 1)


def test_bias_add_and_activations():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    b = rng.standard_normal(5)
    np.testing.assert_allclose(pyconv.nn.bias_add(x, b), x + b.astype(np.float32))
    xc = x.transpose(0, 3, 1, 2)
    np.testing.assert_allclose(pyconv.nn.bias_add(xc, b, "NCHW"),
                               xc + b.astype(np.float32)[:, None, None])
    with pytest.raises(ValueError, match="bias"):
        pyconv.nn.bias_add(x, np.zeros(4))
    v = np.array([-1.0, 0.5, 7.0, np.nan])
    np.testing.assert_array_equal(pyconv.nn.relu(v), [0.0, 0.5, 7.0, np.nan])
    np.testing.assert_array_equal(pyconv.nn.relu6(v), [0.0, 0.5, 6.0, np.nan])
    # integers keep their dtype, as tf.nn.relu / bias_add (which wrap around)
    np.testing.assert_array_equal(pyconv.nn.relu(np.array([-1, 2], np.int8)),
                                  np.array([0, 2], np.int8))
    assert pyconv.nn.relu6(np.array([-1, 9], np.int8)).dtype == np.int8
    out = pyconv.nn.bias_add(np.full((1, 2), 2**31 - 1, np.int32), np.array([1, 0], np.int32))
    np.testing.assert_array_equal(out, np.array([[-2**31, 2**31 - 1]], np.int32))
    with pytest.raises(TypeError, match="bias"):
        pyconv.nn.bias_add(np.ones((1, 2), np.int32), np.ones(2))


def test_threads_setting():
    before = pyconv.get_num_threads()
    try:
        pyconv.set_num_threads(3)
        assert pyconv.get_num_threads() == 3
        for bad in (0, 257, -1):
            with pytest.raises(ValueError, match="between 1 and 256"):
                pyconv.set_num_threads(bad)
        for bad in (1.5, "2", None, True):
            with pytest.raises(TypeError, match="n must be an int"):
                pyconv.set_num_threads(bad)
    finally:
        pyconv.set_num_threads(before)


def test_output_memory_is_reused_but_never_shared():
    """Freed outputs' memory is kept for reuse (large blocks); a live output
    never shares memory with another, whatever the cache does."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 64, 64, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 64)).astype(np.float32)  # 2 MiB outputs
    before = pyconv.set_output_cache_limit(64 << 20)
    try:
        pyconv.clear_output_cache()
        ref = conv2d_reference(x, w, (1, 1), ((1, 1), (1, 1)))
        first = pyconv.nn.conv2d(x, w)
        del first
        assert _conv.output_cache_bytes() >= 2 * 64 * 64 * 64 * 4
        a = pyconv.nn.conv2d(x, w)  # takes the cached block
        assert _conv.output_cache_bytes() == 0
        b = pyconv.nn.conv2d(x, w)
        assert not np.shares_memory(a, b)
        a_copy = a.copy()
        b[...] = -1  # writing one output leaves the other alone
        np.testing.assert_array_equal(a, a_copy)
        check_close(a, ref, error_scale(x, w, (1, 1), ((1, 1), (1, 1)), (1, 1)), np.float32)
        pyconv.set_output_cache_limit(0)  # off: freed blocks go back to the system
        del a, b
        assert _conv.output_cache_bytes() == 0
        with pytest.raises(ValueError, match="nbytes"):
            pyconv.set_output_cache_limit(-1)
        with pytest.raises(TypeError, match="nbytes"):
            pyconv.set_output_cache_limit(1.5)
    finally:
        pyconv.set_output_cache_limit(before)
