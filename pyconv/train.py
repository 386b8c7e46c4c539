"""TensorFlow checkpoints without TensorFlow: ``pyconv.train`` mirrors ``tf.train``.

Reads both formats TensorFlow has written: **V2** (``<prefix>.index`` +
``<prefix>.data-00000-of-0000N``, any number of shards) and **V1** (one table
file per shard, e.g. the 2016 model zoo's ``resnet_v1_50.ckpt``, also
Snappy-compressed and sharded ``model.ckpt-7-?????-of-00002``); writes V2
that ``tf.train.load_checkpoint`` reads back bit for bit.

>>> import numpy as np
>>> from pyconv import train
>>> prefix = train.save_checkpoint(tmp + "/model.ckpt", {"w": np.arange(3.0)})  # doctest: +SKIP
>>> train.list_variables(tmp)                                                     # doctest: +SKIP
[('w', [3])]

Paths are taken as TF takes them: a checkpoint prefix (``model.ckpt-1000``),
a directory (its latest checkpoint, from the ``checkpoint`` state file), a V1
file or a V1 shard pattern. pyconv also accepts the ``.index`` file or a data
file of a V2 checkpoint and means its prefix (TF would try to read the
``.index`` as a V1 file and fail).

What TF's reader returns, pyconv returns: ``get_tensor`` gives a writable
array of its own; scalars come back as NumPy scalars (``np.int64(7)``),
string tensors as object arrays of ``bytes`` (a scalar string as ``bytes``),
bfloat16 as float32 (exactly: NumPy has no bfloat16). Partitioned (sliced)
variables are joined into one array, in V1 too (TF 2.21's reader refuses
those, and V1 float16: "Sliced checkpoints are not supported", "Data type not
supported"; pyconv reads them, as TF's ``Saver.restore`` does).

Every block and tensor checksum (CRC-32C) is verified while the bytes are
read. A corrupt, truncated or foreign file raises ``ValueError`` naming the
file and what is wrong; a missing one ``FileNotFoundError``. Sizes and
offsets a file claims are checked against the file's real size before
anything is allocated. Tensors are read straight into their arrays (a large
V1 record is read into an aligned buffer the array then views), so reading
a checkpoint needs little memory beyond its tensors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names in the type hints only
    from ._typing import Any, CheckpointReader, Mapping, Optional, PathLike

import os
import re
import warnings

import numpy as np

from ._ckpt_proto import FormatError
from ._ckpt_v1 import V1Reader, matching_files
from ._ckpt_v2 import BundleReader, dtype_name, numpy_dtype, write_bundle

__all__ = [
    "CheckpointReader",
    "NewCheckpointReader",
    "latest_checkpoint",
    "list_variables",
    "load_checkpoint",
    "load_variable",
    "save_checkpoint",
]


class NotFoundError(KeyError):
    """A tensor name the checkpoint does not hold (TF's ``NotFoundError``); a ``KeyError``."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


def _fspath(path, what):
    if isinstance(path, bytes):
        path = path.decode()
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be a path (str or os.PathLike), got {path!r}")
    path = os.fspath(path)
    if not path:
        raise ValueError(f"{what} must not be empty")
    return path


def _open_any(path):
    """The V2 or V1 reader of a checkpoint path (TF's CheckpointReader rule:
    ``path.index`` exists -> V2, else ``path`` as a V1 file pattern)."""
    m = re.fullmatch(r"(.+)\.(index|data-\d{5}-of-\d{5})", path)
    if m and os.path.isfile(path) and os.path.isfile(m.group(1) + ".index"):
        path = m.group(1)      # the .index or a data file of a V2 checkpoint
    if os.path.isfile(path + ".index"):
        return BundleReader(path)
    files = matching_files(path)
    if not files:
        if os.path.isdir(path):
            raise FileNotFoundError(f"{path!r} is a directory without checkpoints")
        raise FileNotFoundError(
            f"Unsuccessful TensorSliceReader constructor: Failed to find any matching files "
            f"for {path} (no V2 checkpoint {path}.index, no V1 checkpoint file {path})")
    return V1Reader(path, files)


class CheckpointReader:
    """Reads a checkpoint, as ``tf.train.load_checkpoint`` returns it.

    Parameters
    ----------
    filepattern : str or os.PathLike
        A checkpoint prefix (V2), a V1 file or V1 shard pattern, or the
        ``.index`` / a data file of a V2 checkpoint. (A directory is
        resolved by :func:`load_checkpoint`, not here, as in TF.)

    Raises
    ------
    FileNotFoundError
        Nothing matches the path.
    ValueError
        A file is not a checkpoint, or is truncated or corrupt.

    The reader keeps its files open; ``close()`` or ``with`` closes them.
    """

    def __init__(self, filepattern):
        path = _fspath(filepattern, "filepattern")
        self._impl = _open_any(path)
        self.path = path

    @property
    def format(self) -> str:
        """``'V1'`` or ``'V2'``."""
        return self._impl.format

    def close(self) -> None:
        self._impl.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        from ._reprs import human_bytes, reader_rows

        try:
            _, total, nbytes = reader_rows(self)
            sizes = f", {total:,} elements, {human_bytes(nbytes)}"
        except (OSError, ValueError):  # closed or unreadable: the short form
            sizes = ""
        return (f"<pyconv.train.CheckpointReader {self.path!r} format {self.format}, "
                f"{len(self._impl.names)} tensors{sizes}>")

    def _repr_html_(self):
        from ._reprs import reader_html

        return reader_html(self)

    def _check_name(self, name):
        if not isinstance(name, str):
            raise TypeError(f"tensor names are strings, got {name!r}")
        if name not in self._impl.names:
            raise NotFoundError(f"Key {name} not found in checkpoint")

    def has_tensor(self, name: str) -> bool:
        """Whether the checkpoint holds a tensor called ``name``."""
        return isinstance(name, str) and name in self._impl.names

    def get_tensor(self, name: str) -> Any:
        """The value of tensor ``name``: an ndarray of its own, a NumPy scalar for a
        scalar, ``bytes`` objects for strings.

        Raises
        ------
        KeyError
            ``NotFoundError("Key <name> not found in checkpoint")``.
        ValueError
            Its bytes are corrupt, or its dtype is one pyconv cannot read
            (quantized, resource, variant).
        """
        self._check_name(name)
        try:
            return self._impl.read(name)
        except FormatError as exc:
            if "checkpoint file '" in str(exc):
                raise
            raise FormatError(f"checkpoint {self.path!r}: {exc}") from None

    def get_variable_to_shape_map(self) -> dict[str, list[int]]:
        """``{name: [dims]}`` of every tensor (slices of partitioned variables
        are not listed; the variable is, with its full shape)."""
        return {n: list(self._impl.shape(n)) for n in self._impl.names}

    def get_variable_to_dtype_map(self) -> dict[str, np.dtype]:
        """``{name: numpy.dtype}`` of every tensor: what :meth:`get_tensor` returns
        (float32 for bfloat16, object for strings and for dtypes NumPy cannot hold)."""
        return {n: numpy_dtype(self._impl.dtype_enum(n)) for n in self._impl.names}

    def get_variable_to_tf_dtype_name_map(self) -> dict[str, str]:
        """``{name: 'DT_FLOAT', ...}``: TF's own dtype names (pyconv addition)."""
        return {n: dtype_name(self._impl.dtype_enum(n)) for n in self._impl.names}

    def debug_string(self) -> bytes:
        """TF's ``debug_string()``: ``b"name (DT_FLOAT) [3,3]\\n"`` per entry (V2 lists the
        slice entries of partitioned variables instead of the variable; V1 lists the
        variable with ", N slices")."""
        return b"".join(line + b"\n" for line in self._impl.debug_lines())


def NewCheckpointReader(filepattern: PathLike) -> CheckpointReader:  # noqa: N802 - TF's name
    """``tf.compat.v1.train.NewCheckpointReader``: a :class:`CheckpointReader`."""
    return CheckpointReader(filepattern)


def _resolve(ckpt_dir_or_file):
    path = _fspath(ckpt_dir_or_file, "ckpt_dir_or_file")
    if os.path.isdir(path):
        latest = latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"Couldn't find 'checkpoint' file or checkpoints in given "
                             f"directory {path}")
        return latest
    return path


def load_checkpoint(ckpt_dir_or_file: PathLike) -> CheckpointReader:
    """A :class:`CheckpointReader` of a checkpoint, or of a directory's latest one.

    Raises
    ------
    ValueError
        A directory without a usable ``checkpoint`` state file; a corrupt file.
    FileNotFoundError
        No checkpoint at that path.
    """
    return CheckpointReader(_resolve(ckpt_dir_or_file))


def list_variables(ckpt_dir_or_file: PathLike) -> list[tuple[str, list[int]]]:
    """Sorted ``[(name, shape)]`` of every tensor in a checkpoint."""
    with load_checkpoint(ckpt_dir_or_file) as reader:
        shapes = reader.get_variable_to_shape_map()
    return sorted(shapes.items())


def load_variable(ckpt_dir_or_file: PathLike, name: str) -> Any:
    """The value of one tensor (a trailing ``':0'`` of a TF tensor name is dropped)."""
    if isinstance(name, str) and name.endswith(":0"):
        name = name[:-2]
    with load_checkpoint(ckpt_dir_or_file) as reader:
        return reader.get_tensor(name)


# --------------------------------------------------------------------------- state file

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "?": "?"}


def _unescape(s):
    """A text-format (C-escaped) string literal's bytes, decoded as UTF-8."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        if i + 1 >= len(s):
            raise ValueError("a trailing backslash")
        c = s[i + 1]
        if c in _ESCAPES:
            out += _ESCAPES[c].encode()
            i += 2
        elif c in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", s[i + 2:])
            if not m:
                raise ValueError("a bad \\x escape")
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif c in "01234567":
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            out.append(int(m.group(), 8) & 0xFF)
            i += 1 + len(m.group())
        else:
            raise ValueError(f"an unknown escape \\{c}")
    return out.decode("utf-8", "surrogateescape")


def _parse_state(text):
    """``{field: [values]}`` of a text-format CheckpointState."""
    fields = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\w+)\s*:\s*(.*)", line)
        if not m:
            raise ValueError(f"line {lineno}: expected 'field: value', got {line!r}")
        key, raw = m.groups()
        sm = re.fullmatch(r"\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'", raw)
        if sm:
            value = _unescape(sm.group(1) if sm.group(1) is not None else sm.group(2))
        else:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"line {lineno}: bad value {raw!r}") from None
        fields.setdefault(key, []).append(value)
    return fields


def _checkpoint_exists(path):
    return os.path.isfile(path + ".index") or bool(matching_files(path))


def latest_checkpoint(checkpoint_dir: PathLike,
                      latest_filename: Optional[str] = None) -> Optional[str]:
    """The prefix of the latest checkpoint in ``checkpoint_dir``, or None.

    Reads the text-format CheckpointState file ``checkpoint`` (or
    ``latest_filename``) that TF's Saver, ``tf.train.Checkpoint`` and
    :func:`save_checkpoint` write, takes ``model_checkpoint_path`` (relative
    paths are relative to the directory) and returns it if a checkpoint is
    there (``.index`` for V2; the file or the shard pattern for V1). As TF, a
    missing or unreadable state file or a vanished checkpoint gives None (the
    last two with a warning).
    """
    directory = _fspath(checkpoint_dir, "checkpoint_dir")
    state = os.path.join(directory, latest_filename or "checkpoint")
    if not os.path.isfile(state):
        return None
    try:
        with open(state, encoding="utf-8", errors="surrogateescape") as f:
            fields = _parse_state(f.read(1 << 20))
        path = fields.get("model_checkpoint_path", [""])[-1]
        if not isinstance(path, str):
            raise ValueError("model_checkpoint_path is not a string")
    except (OSError, ValueError) as exc:
        warnings.warn(f"{state}: {exc}; checkpoint ignored", stacklevel=2)
        return None
    if not path:
        return None
    if not os.path.isabs(path):
        path = os.path.join(directory, path)
    if _checkpoint_exists(path):
        return path
    warnings.warn(f"Couldn't match files for checkpoint {path} (named by {state})",
                  stacklevel=2)
    return None


# --------------------------------------------------------------------------- writing


def _as_tensor(name, value):
    if hasattr(value, "_value") and hasattr(value, "name") and not isinstance(value, np.ndarray):
        value = value._value       # a pyconv Variable
    if isinstance(value, (bytes, str)):
        return np.array(value, dtype=object)
    arr = np.asarray(value)
    if arr.dtype.kind in "SU":
        return arr.astype(object)
    if arr.dtype == object:
        for s in arr.reshape(-1):
            if not isinstance(s, (bytes, str)):
                raise TypeError(f"save_checkpoint: tensor {name!r} is an object array holding "
                                f"{type(s).__name__}; only bytes/str object arrays are strings")
        return arr
    if arr.dtype.kind not in "biufc":
        raise TypeError(f"save_checkpoint: tensor {name!r} has dtype {arr.dtype}; choose a "
                        "number, bool or string dtype")
    if arr.dtype.itemsize == 16 and arr.dtype.kind == "f":
        raise TypeError(f"save_checkpoint: tensor {name!r} has dtype {arr.dtype}, which TF "
                        "checkpoints do not have")
    return arr


def _items(mapping):
    if hasattr(mapping, "variables") and callable(mapping.variables) and \
            not hasattr(mapping, "items"):
        return [(v.name, v) for v in mapping.variables()]     # a VariableStore
    if hasattr(mapping, "items") and callable(mapping.items):
        return list(mapping.items())
    if isinstance(mapping, (list, tuple)):
        out = []
        for v in mapping:
            if isinstance(v, tuple) and len(v) == 2:
                out.append(v)
            elif hasattr(v, "name") and hasattr(v, "_value"):
                out.append((v.name, v))
            else:
                raise TypeError("save_checkpoint: a list must hold variables or "
                                f"(name, value) pairs, got {v!r}")
        return out
    raise TypeError("save_checkpoint: mapping must be a dict {name: array}, a VariableStore "
                    f"or a list of variables, got {mapping!r}")


def save_checkpoint(prefix: PathLike, mapping: Mapping[str, Any], write_state: bool = True):
    """Write a V2 checkpoint (``prefix.index``, ``prefix.data-00000-of-00001``).

    ``tf.train.load_checkpoint(prefix)`` reads every tensor back bit for bit;
    TF's Saver restores it. The ``.index`` has the bytes TF's own writer gives
    for the same entries.

    Parameters
    ----------
    prefix : str or os.PathLike
        The checkpoint's path, e.g. ``'train/model.ckpt-1000'``. Missing
        directories are created (as TF's V2 writer does).
    mapping : dict, VariableStore or list
        ``{name: array_like}`` (names as TF's, without ``':0'``; a trailing
        ``':0'`` is dropped), a :class:`pyconv.VariableStore` (its
        variables) or a list of :class:`pyconv.Variable`. dtypes: float16/32/64,
        int8/16/32/64, uint8/16/32/64, bool, complex64/128, and strings (bytes
        or str, also object arrays of them; str is written as UTF-8).
    write_state : bool, default True
        Also write the ``checkpoint`` state file in the prefix's directory,
        as ``tf.train.Saver.save`` does, so that a directory path finds this
        checkpoint (:func:`latest_checkpoint`, :func:`load_checkpoint`).

    Returns
    -------
    str
        ``prefix``.
    """
    prefix = _fspath(prefix, "prefix")
    tensors = {}
    for name, value in _items(mapping):
        if not isinstance(name, str) or not name:
            raise TypeError(f"save_checkpoint: names are non-empty strings, got {name!r}")
        if name.endswith(":0"):
            name = name[:-2]
        if name.startswith("\x00"):
            raise ValueError(f"save_checkpoint: a name may not start with NUL, got {name!r}")
        if name in tensors:
            raise ValueError(f"save_checkpoint: two tensors named {name!r}")
        tensors[name] = _as_tensor(name, value)
    directory = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(directory, exist_ok=True)
    write_bundle(prefix, tensors.items())
    if write_state:
        rel = os.path.relpath(os.path.abspath(prefix), directory)
        quoted = rel.replace("\\", "\\\\").replace('"', '\\"')
        state = os.path.join(directory, "checkpoint")
        tmp = state + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f'model_checkpoint_path: "{quoted}"\nall_model_checkpoint_paths: "{quoted}"\n')
        os.replace(tmp, state)
    return prefix


FormatError = FormatError   # the ValueError subclass every format error is
