"""Deferred moving-average updates: TF-Slim's ``UPDATE_OPS`` for NumPy.

``batch_norm(is_training=True)`` with slim's default
``updates_collections=GraphKeys.UPDATE_OPS`` does not change
``moving_mean``/``moving_variance``: as in TF-Slim it queues one update per
statistic (an :class:`AssignMovingAverage`, a callable) in that collection,
and nothing changes until the updates are run, which is what a TF user does
with ``sess.run(tf.get_collection(UPDATE_OPS))`` or a train op that depends
on them::

    logits = net(images, is_training=True)   # queues the updates
    pyconv.run_update_ops()                  # applies them (and empties the queue)

``updates_collections=None`` updates the moving statistics in place during the
call, as slim forces it; another collection name (or list of names) queues
the updates there instead (``run_update_ops(collection=...)``).

Each queued update holds its batch's statistics (one value per channel), so a
model called in training mode again and again without running the updates
keeps two small arrays per batch-norm layer and call until
:func:`run_update_ops` (or ``clear_collection(GraphKeys.UPDATE_OPS)``).
"""

import numpy as np

from .variables import GraphKeys, get_default_store

__all__ = ["AssignMovingAverage", "run_update_ops"]


class AssignMovingAverage:
    """One queued update ``variable -= (variable - value) * factor``, as TF's
    ``assign_moving_average`` op; call it to apply it.

    Attributes
    ----------
    name : str
        TF's op name, e.g. ``'BatchNorm/AssignMovingAvg/AssignSubVariableOp'``
        (what ``get_collection(UPDATE_OPS, scope)`` filters on).
    variable : Variable
        The moving statistic it updates.
    value : numpy.ndarray
        The batch statistic (float64), fixed when the update was queued.
    factor : float
        ``1 - decay``, rounded as TF rounds it for the layer's path and the
        variable's dtype.
    """

    __slots__ = ("_match_name", "factor", "name", "value", "variable")

    def __init__(self, name, variable, value, factor):
        self.name = name
        self._match_name = name
        self.variable = variable
        self.value = value
        self.factor = factor

    def __call__(self):
        """Apply the update to the variable (again, if called again); returns its value."""
        old = self.variable._value.astype(np.float64)
        self.variable.assign(old - (old - self.value) * self.factor)
        return self.variable._value

    run = __call__

    def __repr__(self):
        return f"<pyconv.AssignMovingAverage {self.name!r} on {self.variable.name!r}>"


def run_update_ops(scope=None, collection=GraphKeys.UPDATE_OPS, clear=True):
    """Run the queued updates of ``collection`` in the default store, in the
    order they were queued, as ``sess.run(tf.get_collection(UPDATE_OPS, scope))``.

    Parameters
    ----------
    scope : str, optional
        Only the updates whose name matches this regex at the start (TF's
        ``get_collection`` filter), e.g. ``'resnet_v1_50/'``.
    collection : str, default GraphKeys.UPDATE_OPS
        The collection given to ``batch_norm(updates_collections=...)``.
    clear : bool, default True
        Remove the updates that ran from the collection. A pyconv call plays
        the part of building *and* running a TF graph, so each call queues
        fresh updates; running old ones again would apply an earlier batch's
        statistics a second time. ``clear=False`` keeps them (running them
        again applies them again, as re-running TF's ops on the same batch).

    Returns
    -------
    int
        The number of updates run. Items of the collection that are not
        callables are left alone.

    Examples
    --------
    >>> import numpy as np
    >>> import pyconv as slim
    >>> x = np.array([[1.0], [3.0]])
    >>> with slim.VariableStore(seed=0) as store:
    ...     _ = slim.batch_norm(x, decay=0.9, scope='bn')
    ...     before = float(store['bn/moving_mean'][0])
    ...     n = slim.run_update_ops()
    >>> before, n, round(float(store['bn/moving_mean'][0]), 6)
    (0.0, 2, 0.2)
    """
    store = get_default_store()
    chosen = [item for item in store.get_collection(collection, scope) if callable(item)]
    for update in chosen:
        update()
    if clear and chosen:
        ran = {id(item) for item in chosen}
        with store._lock:
            coll = store.get_collection_ref(collection)
            coll[:] = [item for item in coll if id(item) not in ran]
    return len(chosen)
