"""The raw operators name themselves in their int-argument errors (they all
said "conv2d: ..." before)."""
import numpy as np
import pytest

from pyconv import _conv

X = np.ones((1, 4, 4, 2), np.float32)


@pytest.mark.parametrize("fn, call, exc, words", [
    ("depthwise_conv2d",
     lambda: _conv.depthwise_conv2d(X, np.ones((3, 3, 2, 1), np.float32), None,
                                    -1, 0, 0, 0, 1, 1, 1, 1, 0),
     ValueError, ["pad_top", ">= 0", "-1"]),
    ("pool2d", lambda: _conv.pool2d(X, 0, 2, 2, "2", 1, 0, 0, 0, 0),
     TypeError, ["stride_h", "must be an int"]),
    ("eltwise", lambda: _conv.eltwise(X.reshape(1, 16, 2), None, None, None, None, 2**64),
     ValueError, ["activation", "2**63"]),
    ("conv2d", lambda: _conv.conv2d(X, np.ones((3, 3, 2, 1), np.float32), None,
                                    0, 0, 0, 0, 0, 1, 1, 1, 0),
     ValueError, ["stride_h", ">= 1"]),
])
def test_raw_operator_names_itself(fn, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    assert msg.startswith(fn + ": "), msg
    for w in words:
        assert w in msg, (w, msg)
