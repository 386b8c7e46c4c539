"""Type stub of the C extension ``pyconv._conv`` (csrc/module.c).

The raw operators take NHWC arrays of one dtype (float32 or float64) and
explicit pads; use ``pyconv.nn`` instead, which handles padding names,
layouts and dtypes. Activation codes: 0 none, 1 relu, 2 relu6.
"""

from typing import Optional, Tuple, Union

import numpy as np
from numpy.typing import NDArray

_Array = NDArray[np.floating]
_Buffer = Union[bytes, bytearray, memoryview, np.ndarray]

def conv2d(
    input: _Array,
    filters: _Array,
    bias: Optional[_Array],
    pad_top: int,
    pad_bottom: int,
    pad_left: int,
    pad_right: int,
    stride_h: int,
    stride_w: int,
    dilation_h: int,
    dilation_w: int,
    activation: int,
    pre: Optional[_Array] = ...,
    scale: Optional[_Array] = ...,
    shift: Optional[_Array] = ...,
    residual: Optional[_Array] = ...,
    add_to: Optional[_Array] = ...,
    add_activation: int = ...,
    /,
) -> Union[_Array, Tuple[_Array, _Array]]:
    """NHWC input, HWIO filters, bias [cout] or None; optional fused epilogue
    clamp(((conv + pre) * scale + shift) + residual); with add_to (the output's
    shape) the pair (output, clamp(output + add_to, add_activation))."""

def depthwise_conv2d(
    input: _Array,
    filter: _Array,
    bias: Optional[_Array],
    pad_top: int,
    pad_bottom: int,
    pad_left: int,
    pad_right: int,
    stride_h: int,
    stride_w: int,
    dilation_h: int,
    dilation_w: int,
    activation: int,
    /,
) -> _Array:
    """NHWC input [n, h, w, c], filter [kh, kw, c, m], bias [c * m] or None."""

def conv2d_transpose(
    input: _Array,
    filters: _Array,
    bias: Optional[_Array],
    out_h: int,
    out_w: int,
    pad_top: int,
    pad_bottom: int,
    pad_left: int,
    pad_right: int,
    stride_h: int,
    stride_w: int,
    activation: int,
    /,
) -> _Array:
    """NHWC input, filters [kh, kw, out, in], bias [out] or None; the output size and
    the forward convolution's explicit pads."""

def pool2d(
    input: _Array,
    kind: int,
    kernel_h: int,
    kernel_w: int,
    stride_h: int,
    stride_w: int,
    pad_top: int,
    pad_bottom: int,
    pad_left: int,
    pad_right: int,
    /,
) -> _Array:
    """kind 0 max (NaN skipped, as TF), 1 average over the in-bounds part."""

def eltwise(
    x: _Array,
    pre: Optional[_Array],
    scale: Optional[_Array],
    shift: Optional[_Array],
    residual: Optional[_Array],
    activation: int,
    /,
) -> _Array:
    """clamp(((x + pre[c]) * scale[c] + shift[c]) + residual) over x [outer, channels, inner]."""

def conv2d_workspace(
    batch: int,
    in_h: int,
    in_w: int,
    in_c: int,
    kernel_h: int,
    kernel_w: int,
    out_c: int,
    pad_top: int,
    pad_bottom: int,
    pad_left: int,
    pad_right: int,
    stride_h: int,
    stride_w: int,
    dilation_h: int,
    dilation_w: int,
    itemsize: int,
    /,
) -> Optional[Tuple[int, int]]:
    """(packed filter bytes, indirection block bytes), or None on overflow."""

def set_num_threads(n: int, /) -> None: ...
def get_num_threads() -> int: ...
def isa() -> str: ...
def available_isas() -> Tuple[str, ...]: ...
def set_isa(isa: Optional[str], /) -> None: ...
def set_output_cache_limit(nbytes: int, /) -> int: ...
def output_cache_bytes() -> int: ...
def clear_output_cache() -> None: ...
def set_weight_cache_limit(nbytes: int, /) -> int: ...
def weight_cache_bytes() -> int: ...
def clear_weight_cache() -> None: ...
def pin_weights(array: np.ndarray, trusted: bool = False, /) -> Optional[object]:
    """Keeps `array`'s packed filters in the weight cache outside its limit while the
    returned capsule lives (None for an empty array). trusted: the array is read-only
    and stays unwritten while pinned; its packing is then checked once, not per call."""
def set_algorithm(name: str, /) -> str: ...
def get_algorithm() -> str: ...
def fma_peak_gflops(seconds: float = 0.2) -> float: ...
def crc32c(buffer: _Buffer, value: int = 0) -> int: ...
def crc32c_impl(portable: Optional[bool], /) -> str: ...
def snappy_decompress(buffer: _Buffer, max_length: int, /) -> bytearray:
    """Decodes a raw Snappy stream; ValueError if malformed or longer than max_length."""
