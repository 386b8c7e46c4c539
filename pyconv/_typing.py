"""Names used in pyconv's type hints (imported only by type checkers and
editors: the modules use ``from __future__ import annotations`` and import
this under ``TYPE_CHECKING``, so hints cost nothing at run time)."""

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike

from .geometry import PaddingComparison, PaddingExplanation
from .train import CheckpointReader
from .variables import Variable, VariableScope, VariableStore

IntOrPair = Union[int, Sequence[int]]
"""A size, stride or rate: one int for both dimensions or ``(h, w)``."""

Padding = Union[str, Sequence[Sequence[int]]]
"""'SAME', 'VALID', 'FULL' (any case) or explicit ``[(top, bottom), (left, right)]``."""

Initializer = Union[Callable[..., Any], ArrayLike]
"""An initializer (``slim.xavier_initializer()``, ...) or an array of the variable's shape."""

Regularizer = Callable[[np.ndarray], Any]

Collections = Optional[Union[str, Sequence[str], dict[str, Any]]]

PathLike = Union[str, "os.PathLike[str]"]

NetOutput = tuple[np.ndarray, dict[str, np.ndarray]]
"""What a net returns: its output (logits) and its end points."""

ArgScope = dict[Any, dict[str, Any]]
"""What a net's ``*_arg_scope()`` returns: slim's arg_scope dict, to enter with ``arg_scope``."""

__all__ = ["Any", "ArgScope", "ArrayLike", "Callable", "CheckpointReader", "Collections",
           "Initializer", "IntOrPair", "Mapping", "NetOutput", "Optional", "Padding",
           "PaddingComparison", "PaddingExplanation", "PathLike", "Regularizer", "Sequence",
           "Union", "Variable", "VariableScope", "VariableStore", "np"]
