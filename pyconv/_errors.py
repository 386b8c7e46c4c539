"""Exception types that are two built-in types at once.

Where pyconv and TF-Slim both refuse an argument but TF raises another
built-in type than the one that describes the mistake best, pyconv raises a
subclass of both: ``except ValueError`` written for TF catches it, and so
does ``except TypeError`` written for pyconv. The message stays pyconv's.
"""

__all__ = ["AttributeTypeError", "AttributeValueError", "TypeValueError",
           "UnimplementedValueError"]


class TypeValueError(TypeError, ValueError):
    """A wrong type where TF raises ``ValueError`` (e.g. ``kernel_size=3.0``,
    a regularizer that is not callable)."""


class AttributeTypeError(TypeError, AttributeError):
    """A wrong type where TF fails with ``AttributeError`` (e.g. a list for
    ``param_initializers``)."""


class AttributeValueError(ValueError, AttributeError):
    """A bad value where TF fails with ``AttributeError`` (e.g. a string in
    ``arg_scope``'s list of ops)."""


class UnimplementedValueError(ValueError, NotImplementedError):
    """A value TF accepts when the graph is built but its kernels refuse
    (``UnimplementedError``), e.g. strides over the batch or channel axis."""
