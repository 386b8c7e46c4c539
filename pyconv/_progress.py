"""Progress of long work (a checkpoint load, a forward pass over many images,
a benchmark): a small bar pyconv draws itself.

- On a terminal (stderr is a TTY): a one-line tqdm-style bar on stderr
  (``tqdm`` itself when it is installed: ``pip install "pyconv[progress]"``).
- In a Jupyter kernel: an ipywidgets bar if ipywidgets is installed, else one
  line of text updated in place.
- Otherwise (output to a file or a pipe, CI) nothing; ``progress=False`` or
  ``PYCONV_PROGRESS=0`` silences it everywhere, ``PYCONV_PROGRESS=1`` forces
  the text bar on stderr (e.g. to see it in a log).

Updates are throttled (at most ~10 redraws per second) and happen once per
unit of work (a tensor, an image, a benchmark row), never inside a layer.
"""

import os
import sys
import time

__all__ = ["progress"]


def _in_notebook():
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _mode(enabled):
    env = os.environ.get("PYCONV_PROGRESS", "").strip().lower()
    if enabled is False or env in ("0", "false", "no", "off"):
        return None
    if env in ("1", "true", "yes", "on"):
        return "text"
    if _in_notebook():
        return "notebook"
    if enabled is True:
        return "text"
    try:
        return "text" if sys.stderr is not None and sys.stderr.isatty() else None
    except (AttributeError, ValueError):
        return None


class _Silent:
    def update(self, n=1):
        pass

    def write(self, text):
        print(text, flush=True)

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _Bar(_Silent):
    """Shared bookkeeping: counts, rate, throttled redraw."""

    def __init__(self, total, desc, unit, scale):
        self.total, self.desc, self.unit, self.scale = total, desc, unit, scale
        self.n = 0
        self.t0 = self._last = time.perf_counter()

    def _text(self):
        elapsed = time.perf_counter() - self.t0
        frac = min(1.0, self.n / self.total) if self.total else 0.0
        width = 24
        filled = int(frac * width)
        bar = "#" * filled + "-" * (width - filled)
        done, total = self.n / self.scale, self.total / self.scale
        rate = done / elapsed if elapsed > 0 else 0.0
        fmt = ".1f" if self.scale != 1 else ".0f"
        eta = (total - done) / rate if rate > 0 else 0.0
        return (f"{self.desc}: {frac * 100:3.0f}% |{bar}| {done:{fmt}}/{total:{fmt}}"
                f"{self.unit} [{elapsed:.1f}s<{eta:.1f}s, {rate:.1f}{self.unit}/s]")

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if now - self._last >= 0.1 or self.n >= self.total:
            self._last = now
            self._draw()

    def _draw(self):  # pragma: no cover - overridden
        pass


class _TextBar(_Bar):
    def __init__(self, *args):
        super().__init__(*args)
        self._draw()

    def _draw(self):
        sys.stderr.write("\r" + self._text())
        sys.stderr.flush()

    def write(self, text):
        sys.stderr.write("\r\033[K")
        print(text, flush=True)
        self._draw()

    def close(self):
        self._draw()
        sys.stderr.write("\n")
        sys.stderr.flush()


class _NotebookBar(_Bar):
    def __init__(self, *args):
        super().__init__(*args)
        from IPython.display import display

        try:
            import ipywidgets

            self._widget = ipywidgets.IntProgress(min=0, max=max(1, self.total),
                                                  description=self.desc[:20])
            self._label = ipywidgets.Label(self._text())
            display(ipywidgets.HBox([self._widget, self._label]))
            self._handle = None
        except ImportError:
            self._widget = None
            self._handle = display({"text/plain": self._text()}, raw=True, display_id=True)

    def _draw(self):
        if self._widget is not None:
            self._widget.value = min(self.n, self.total)
            self._label.value = self._text()
        else:
            self._handle.update({"text/plain": self._text()}, raw=True)

    def close(self):
        self._draw()


class _Tqdm(_Silent):
    def __init__(self, total, desc, unit, scale):
        import tqdm

        self._scale = scale
        self._bar = tqdm.tqdm(total=total / scale, desc=desc, unit=unit.strip() or "it",
                              leave=True)

    def update(self, n=1):
        self._bar.update(n / self._scale)

    def write(self, text):
        self._bar.write(text)

    def close(self):
        self._bar.close()


def progress(total, desc, unit="", scale=1, enabled=None):
    """A progress bar over ``total`` units of work (see the module docstring).

    Parameters
    ----------
    total : int
        Units of work (bytes, images, rows).
    desc : str
        What is being done.
    unit : str
        Shown after the counts (``" MB"``); ``scale`` divides the counts
        (``1e6`` for bytes shown as MB).
    enabled : bool or None
        None: on a terminal or in a notebook; False: never; True: also when
        stderr is no terminal. ``PYCONV_PROGRESS`` overrides (0 / 1).

    Returns
    -------
    An object with ``update(n=1)``, ``write(text)`` (print a line without
    breaking the bar) and ``close()``; also a context manager.
    """
    mode = _mode(enabled)
    if mode is None or total <= 0:
        return _Silent()
    if mode == "notebook":
        return _NotebookBar(total, desc, unit, scale)
    try:
        import tqdm  # noqa: F401

        if os.environ.get("PYCONV_PROGRESS", "").strip() != "1":
            return _Tqdm(total, desc, unit, scale)
    except ImportError:
        pass
    return _TextBar(total, desc, unit, scale)
