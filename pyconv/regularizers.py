"""Weight regularizers, as ``tf_slim.layers.regularizers``.

A regularizer is a callable ``reg(weights) -> scalar or None``. Pass one as
a layer's ``weights_regularizer`` / ``biases_regularizer`` (or to
``get_variable``): when the variable is created, its loss is registered once
in ``GraphKeys.REGULARIZATION_LOSSES``, and
:func:`pyconv.get_regularization_losses` evaluates it on the variable's
current value.

The loss is a NumPy scalar of the weights' dtype, summed in float64.
"""

import numbers

import numpy as np

__all__ = [
    "apply_regularization",
    "l1_l2_regularizer",
    "l1_regularizer",
    "l2_regularizer",
    "sum_regularizer",
]


def _check_scale(scale, name):
    if isinstance(scale, (bool, numbers.Integral)):
        raise ValueError(f"{name} cannot be an integer: {scale}")  # noqa: TRY004 - as slim
    if not isinstance(scale, numbers.Real):
        raise TypeError(f"{name} must be a float, got {scale!r} ({type(scale).__name__})")
    if scale < 0.0:
        raise ValueError(f"Setting a scale less than 0 on a regularizer: {scale:g}.")
    return float(scale)


def _as_weights(weights):
    w = np.asarray(weights)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"regularizer: weights have dtype {w.dtype}; expected a real array")
    return w


def _result_dtype(w):
    return w.dtype if w.dtype.kind == "f" else np.dtype(np.float32)


def _named(fn, name):
    fn.__name__ = fn.__qualname__ = name
    fn._never_none = True  # variables need not evaluate it to know it gives a loss
    return fn


def _disabled(_weights):
    return None


def l1_regularizer(scale, scope=None):
    """``scale * sum(|w|)``.

    Parameters
    ----------
    scale : float
        0.0 disables the regularizer (it returns None and no loss is added).
    scope : str, optional
        Name of the loss (default ``'l1_regularizer'``).

    Raises
    ------
    ValueError
        ``scale`` is an int or negative (as slim).
    TypeError
        ``scale`` is not a number.
    """
    scale = _check_scale(scale, "scale")
    if scale == 0.0:
        return _disabled

    def l1(weights):
        w = _as_weights(weights)
        return _result_dtype(w).type(scale * np.abs(w, dtype=np.float64).sum())

    return _named(l1, scope or "l1_regularizer")


def l2_regularizer(scale, scope=None):
    """``scale * sum(w ** 2) / 2`` — TF's ``scale * tf.nn.l2_loss(w)``.

    Parameters
    ----------
    scale : float
        0.0 disables the regularizer (it returns None and no loss is added).
    scope : str, optional
        Name of the loss (default ``'l2_regularizer'``).

    Raises
    ------
    ValueError
        ``scale`` is an int or negative (as slim).
    TypeError
        ``scale`` is not a number.

    Examples
    --------
    >>> float(l2_regularizer(0.1)([3.0, 4.0]))   # 0.1 * (9 + 16) / 2
    1.25
    """
    scale = _check_scale(scale, "scale")
    if scale == 0.0:
        return _disabled

    def l2(weights):
        w = _as_weights(weights).astype(np.float64)
        return _result_dtype(np.asarray(weights)).type(scale * np.dot(w.ravel(), w.ravel()) / 2.0)

    return _named(l2, scope or "l2_regularizer")


def l1_l2_regularizer(scale_l1=1.0, scale_l2=1.0, scope=None):
    """``scale_l1 * sum(|w|) + scale_l2 * sum(w ** 2) / 2``.

    Raises
    ------
    ValueError
        A scale is an int or negative.
    """
    scale_l1 = _check_scale(scale_l1, "scale_l1")
    scale_l2 = _check_scale(scale_l2, "scale_l2")
    scope = scope or "l1_l2_regularizer"
    if scale_l1 == 0.0:
        return l2_regularizer(scale_l2, scope)
    if scale_l2 == 0.0:
        return l1_regularizer(scale_l1, scope)
    return sum_regularizer([l1_regularizer(scale_l1), l2_regularizer(scale_l2)], scope=scope)


def sum_regularizer(regularizer_list, scope=None):
    """A regularizer that adds the losses of ``regularizer_list`` (Nones skipped).

    Returns None when the list holds no regularizer, as slim.
    """
    regularizers = [r for r in regularizer_list if r is not None]
    if not regularizers:
        return None

    def sum_reg(weights):
        losses = [r(weights) for r in regularizers]
        losses = [loss for loss in losses if loss is not None]
        if not losses:
            return None
        total = losses[0]
        for loss in losses[1:]:
            total = total + loss
        return total

    sum_reg = _named(sum_reg, scope or "sum_regularizer")
    sum_reg._never_none = all(getattr(r, "_never_none", False) for r in regularizers)
    return sum_reg


def apply_regularization(regularizer, weights_list=None):
    """The sum of ``regularizer`` over ``weights_list``.

    TF-Slim defaults to the ``GraphKeys.WEIGHTS`` collection, which pyconv
    does not keep; the default here is every trainable variable.

    Raises
    ------
    ValueError
        No weights are given and none are trainable, or ``regularizer``
        returns no loss for any of them.
    """
    if weights_list is None:
        from .variables import get_trainable_variables

        weights_list = get_trainable_variables()
    if not weights_list:
        raise ValueError("No weights to regularize.")
    losses = [regularizer(np.asarray(w)) for w in weights_list]
    losses = [loss for loss in losses if loss is not None]
    if not losses:
        raise ValueError("No regularization loss: the regularizer returned None for every weight.")
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total
