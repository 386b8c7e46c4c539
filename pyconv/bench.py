"""``python -m pyconv.bench``: pyconv against PyTorch, TensorFlow, ONNX Runtime and NumPy.

Runs the layer suite (``pyconv/bench_layers.csv``, a copy of the project's
shared suite; ``--layers PATH`` for another) at each batch size and thread
setting. For every layer the frameworks take turns on the same arrays, so the
noise of a shared machine falls on all of them alike; every peer's output is
checked against pyconv's before it is timed, and a peer that disagrees is
flagged and not timed. Prints a table and summaries; ``--json`` writes every
measurement. A benchmark, never a test: compare ratios from one run only.

How each framework runs a layer (inputs are NHWC float32, weights HWIO):

pyconv  ``pyconv.nn.conv2d``; ``conv2d_same`` rows with explicit pads
        (``k_eff - 1`` in total, ``// 2`` before), as ``pyconv.conv2d_same`` does.
torch   ``torch.nn.functional.conv2d`` on a channels-last tensor (a view of the
        NHWC array) and on an NCHW copy made before timing; the faster counts.
        Asymmetric pads go through ``F.pad`` first (inside the timing).
tf      ``tf.nn.conv2d`` NHWC inside ``tf.function``, with 'SAME'/'VALID' or
        explicit pads, in one worker process per thread setting, because
        TensorFlow fixes its thread pools when it initialises.
ort     an ONNX ``Conv`` node (NCHW, as ONNX requires) with explicit pads; NCHW
        input and output buffers bound once with IOBinding, so transposes and
        output copies are not timed.
numpy   ``sliding_window_view`` over the padded input + ``tensordot``, with BLAS
        limited to one thread (threadpoolctl); timed at one thread only.

Other operators (``pyconv/bench_ops.csv``, ``--ops PATH``; its ``op`` column
names the operator, ``--op`` selects kinds): ``depthwise`` rows
(``multiplier`` output channels per input channel) run
``pyconv.nn.depthwise_conv2d``, torch ``F.conv2d(groups=C)``, TF
``tf.nn.depthwise_conv2d``, ORT ``Conv`` with ``group=C`` and NumPy windows +
``einsum``; ``separable`` rows add the 1x1 pointwise step
(``pyconv.nn.separable_conv2d``, ``tf.nn.separable_conv2d``, two convolutions
for torch, ORT and NumPy). Summaries and targets are per operator family
(``conv2d``; ``depthwise`` = depthwise + separable rows; ``conv2d_transpose``).
``conv2d_transpose`` rows (a DCGAN-style generator's decoder; ``h``, ``w``,
``cin`` are the input's, weights ``[kh, kw, cout, cin]``, TF-Slim's output
size) run as ``pyconv.nn.conv2d_transpose``, ``F.conv_transpose2d`` (padding =
the forward pad before, ``output_padding`` and a crop of the end for TF's
asymmetric SAME), ``tf.nn.conv2d_transpose``, an ONNX ``ConvTranspose`` node
with explicit pads, and NumPy (``tensordot`` per tap, scattered).
"""

import argparse
import csv
import datetime
import gc
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np

import pyconv
from pyconv import _conv

PEERS = ("torch", "tf", "ort", "numpy")
LAYERS_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_layers.csv")
OPS_CSV = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_ops.csv")
QUICK_LAYERS = (
    "resnet_v1_50/block3/unit_6/conv2",  # conv2d_same, 3x3 stride 2
    "mobilenet_v1/Conv2d_13_pointwise",  # 1x1
    "inception_v3/Mixed_6b/Branch_1/Conv2d_0b_1x7",  # asymmetric kernel
)
QUICK_OPS = ("mobilenet_v1/Conv2d_13_depthwise", "dcgan/deconv4 32x32x128->64x64x3")
# Operator kinds of the rows, and the family each is summarised in.
OPS = {"conv2d": "conv2d", "depthwise": "depthwise", "separable": "depthwise",
       "conv2d_transpose": "conv2d_transpose"}
RTOL = 1e-3  # max |peer - pyconv| / max |pyconv| above this is a disagreement
# Default float32 microkernel tiles (MR pixels x NR channels) per ISA
# (csrc/ukernels/table.c), for the analytic memory column. Layers with few
# output channels may get a narrower tile of the same ISA.
KNOWN_TILES = {"scalar": (4, 4), "avx2": (6, 16), "avx512": (7, 32)}
TARGETS = {
    "geomean_vs_best_torch_tf": 1.0,
    "peak_fraction_3x3_batch8": 0.70,
    "tiny_nn_over_bare": 2.0,
    "tiny_layer_minus_nn_us": 20.0,
}
# Before each framework is timed, every other thread of this process and of
# the peers' worker processes must be idle: runtimes spin after their work
# (OpenMP, Eigen, OpenBLAS: tens of ms seen here), and on a 2-core machine a
# spinning pool halves the next framework's multi-threaded speed.
QUIET_WINDOW = 0.005  # seconds per check
QUIET_LIMIT = 1.0     # give up waiting after this long


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True)
class Layer:
    suite: str
    name: str
    h: int
    w: int
    cin: int
    cout: int
    kh: int
    kw: int
    stride: int
    rate: int
    padding: str  # 'SAME', 'VALID' or 'conv2d_same'
    repeats: int
    op: str = "conv2d"  # a key of OPS
    multiplier: int = 1  # depthwise/separable: depthwise outputs per input channel

    @property
    def family(self):
        return OPS[self.op]

    @property
    def transposed(self):
        """A conv2d_transpose row: h, w, cin are the input's, weights [kh, kw, cout, cin]."""
        return self.op == "conv2d_transpose"

    @property
    def key(self):
        return f"{self.suite}/{self.name}"

    @property
    def k_eff(self):
        return ((self.kh - 1) * self.rate + 1, (self.kw - 1) * self.rate + 1)

    @property
    def pads(self):
        """Explicit ``((top, bottom), (left, right))`` pads."""
        if self.padding == "conv2d_same":
            return tuple(((k - 1) // 2, k - 1 - (k - 1) // 2) for k in self.k_eff)
        if self.transposed:  # the forward convolution's, from the output to the input
            return transpose_row_pads(self)
        return pyconv.conv_padding((self.h, self.w), (self.kh, self.kw), self.stride,
                                   self.padding, self.rate)

    @property
    def out_hw(self):
        if self.transposed:
            return transpose_row_out_hw(self)
        (pt, pb), (pl, pr) = self.pads
        keh, kew = self.k_eff
        return ((self.h + pt + pb - keh) // self.stride + 1,
                (self.w + pl + pr - kew) // self.stride + 1)

    @property
    def pyconv_padding(self):
        """What pyconv.nn.conv2d is given: the name, or explicit pads for conv2d_same."""
        return [list(p) for p in self.pads] if self.padding == "conv2d_same" else self.padding

    def flops(self, batch):
        if self.transposed:  # every input pixel times every tap
            return 2 * batch * self.h * self.w * self.cout * self.kh * self.kw * self.cin
        oh, ow = self.out_hw
        if self.op == "conv2d":
            return 2 * batch * oh * ow * self.cout * self.kh * self.kw * self.cin
        mid = self.cin * self.multiplier
        flops = 2 * batch * oh * ow * mid * self.kh * self.kw
        return flops + (2 * batch * oh * ow * mid * self.cout if self.op == "separable" else 0)

    @property
    def is_3x3(self):
        return self.kh == 3 and self.kw == 3


_INT_COLUMNS = ("h", "w", "cin", "cout", "kh", "kw", "stride", "rate", "repeats")


def load_layers(path):
    """The rows of a layer-suite CSV as ``Layer``s; ValueError naming the row if one is bad.
    Optional columns: ``op`` (a key of OPS, default conv2d) and ``multiplier``."""
    layers = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"suite", "name", "padding", *_INT_COLUMNS} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                ints = {k: int(row[k]) for k in _INT_COLUMNS}
                if (row.get("multiplier") or "").strip():
                    ints["multiplier"] = int(row["multiplier"])
            except (TypeError, ValueError):
                raise ValueError(f"{path}:{line}: non-integer size in {row}") from None
            op = (row.get("op") or "conv2d").strip()
            if op not in OPS:
                raise ValueError(f"{path}:{line}: op must be one of {sorted(OPS)}, got {op!r}")
            if op == "depthwise" and ints["cout"] != ints["cin"] * ints.get("multiplier", 1):
                raise ValueError(f"{path}:{line}: a depthwise row needs cout = cin * multiplier")
            ints["op"] = op
            padding = row["padding"].strip()
            if padding.upper() in ("SAME", "VALID"):
                padding = padding.upper()
            elif padding != "conv2d_same":
                raise ValueError(f"{path}:{line}: padding must be SAME, VALID or conv2d_same, "
                                 f"got {padding!r}")
            layers.append(Layer(suite=row["suite"].strip(), name=row["name"].strip(),
                                padding=padding, **ints))
    return layers


def quick_layers(layers):
    by_key = {layer.key: layer for layer in layers}
    chosen = [by_key[k] for k in QUICK_LAYERS + QUICK_OPS if k in by_key]
    if not chosen:  # another suite: its three cheapest rows
        chosen = sorted(layers, key=lambda layer: layer.flops(1))[:3]
    return chosen


# --------------------------------------------------------------------------- conv2d_transpose rows
# (bench_ops.csv's 'conv2d_transpose' rows: a DCGAN decoder; geometry and peer calls)


def transpose_row_out_hw(layer):
    """TF-Slim's output size (Keras' deconv_output_length): n*s (SAME), n*s + max(k - s, 0)."""
    return pyconv.geometry.transpose_output_size((layer.h, layer.w), (layer.kh, layer.kw),
                                                 layer.stride, layer.padding)


def transpose_row_pads(layer):
    return pyconv.geometry.transpose_padding(transpose_row_out_hw(layer), (layer.h, layer.w),
                                             (layer.kh, layer.kw), (layer.stride,) * 2,
                                             layer.padding)


def _transpose_full(layer):
    """Size of the whole scatter (every input pixel's window) per dimension."""
    return ((layer.h - 1) * layer.stride + layer.kh, (layer.w - 1) * layer.stride + layer.kw)


def torch_transpose_args(layer):
    """(padding, output_padding, crop or None) that make F.conv_transpose2d give TF's
    output: torch drops `padding` at both ends and adds `output_padding` at the end;
    TF drops the forward pad before at the start, so what is too much at the end
    is cropped (a view)."""
    (pt, _), (pl, _) = layer.pads
    out = layer.out_hw
    full = _transpose_full(layer)
    base = (full[0] - 2 * pt, full[1] - 2 * pl)
    extra = (max(0, out[0] - base[0]), max(0, out[1] - base[1]))
    crop = None if (base[0] + extra[0], base[1] + extra[1]) == tuple(out) else tuple(out)
    return (pt, pl), extra, crop


def ort_transpose_node(helper, layer):
    """An ONNX ConvTranspose node with explicit pads giving TF's output."""
    (pt, _), (pl, _) = layer.pads
    out = layer.out_hw
    full = _transpose_full(layer)
    end = (full[0] - pt - out[0], full[1] - pl - out[1])
    return helper.make_node("ConvTranspose", ["x", "w"], ["y"],
                            kernel_shape=[layer.kh, layer.kw], strides=[layer.stride] * 2,
                            pads=[pt, pl, max(end[0], 0), max(end[1], 0)],
                            output_padding=[max(-end[0], 0), max(-end[1], 0)])


def numpy_conv2d_transpose(x, w, pads, stride, out_hw):
    """NumPy's own way: each tap's [in, out] product scattered with strided slices."""
    n, h, wd, _ = x.shape
    kh, kw, cout, _ = w.shape
    (pt, _), (pl, _) = pads
    full = np.zeros((n, max((h - 1) * stride + kh, pt + out_hw[0]),
                     max((wd - 1) * stride + kw, pl + out_hw[1]), cout), np.float32)
    for ky in range(kh):
        for kx in range(kw):
            full[:, ky:ky + (h - 1) * stride + 1:stride, kx:kx + (wd - 1) * stride + 1:stride] \
                += np.tensordot(x, w[ky, kx], axes=([3], [1]))
    return full[:, pt:pt + out_hw[0], pl:pl + out_hw[1]]


def transpose_row_memory(layer, batch, tile):
    """Like analytic_memory for a transposed row; 'im2col' is the column buffer of the
    GEMM + col2im method (TF's, Caffe's): every input pixel times every tap."""
    oh, ow = layer.out_hw
    s = layer.stride
    out = {"im2col": batch * layer.h * layer.w * layer.kh * layer.kw * layer.cout * 4,
           "output": batch * oh * ow * layer.cout * 4}
    if tile and layer.cout <= 8:  # the column path: one GEMM into columns, then a gather
        mr, nr = tile
        cols = layer.kh * layer.kw * layer.cout
        out["packed_weights"] = -(-cols // nr) * (nr + layer.cin * nr) * 4 + 128
        out["indirection"] = -(-(layer.h * layer.w) // mr) * mr * 8
        out["columns"] = batch * layer.h * layer.w * cols * 4
        out["zero"] = layer.cin * 4
        out["pyconv_total"] = (out["packed_weights"] + out["indirection"] + out["columns"]
                               + out["zero"])
    elif tile:
        mr, nr = tile
        phases = min(s, layer.kh) * min(s, layer.kw)
        taps = -(-layer.kh // s) * -(-layer.kw // s)
        out["packed_weights"] = -(-layer.cout // nr) * (
            nr * phases + layer.kh * layer.kw * layer.cin * nr) * 4 + 64
        out["indirection"] = (oh * ow + min(s, oh) * min(s, ow) * mr) * taps * 8
        out["zero"] = layer.cin * 4
        out["pyconv_total"] = out["packed_weights"] + out["indirection"] + out["zero"]
    return out


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Policy:
    repeat: int  # at most this many timed calls
    min_time: float  # stop once this much time is spent and 3 calls are timed
    max_time: float  # stop once this much time is spent, whatever the count
    warmup: float = 0.0  # untimed calls for this long first


def measure(fn, policy):
    """Wall times of ``fn()`` calls, garbage collector off, after ``policy.warmup``
    seconds of untimed calls. The warm-up comes after the quiet wait: a
    machine whose cores have idled may run the first tens of milliseconds of
    multi-threaded work at one core's speed (measured here: up to ~15 calls,
    for pyconv and the peers alike, on this 2-vCPU VM)."""
    times = []
    gc_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        while time.perf_counter() - start < policy.warmup:
            fn()
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            fn()
            t1 = time.perf_counter()
            times.append(t1 - t0)
            spent = t1 - start
            if (len(times) >= policy.repeat or spent >= policy.max_time
                    or (spent >= policy.min_time and len(times) >= 3)):
                return times
    finally:
        if gc_enabled:
            gc.enable()


def rel_error(out, ref):
    """max |out - ref| / max |ref| (inf for a shape mismatch or a NaN)."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return math.inf
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    err = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
    if not math.isfinite(err):
        return math.inf
    return err / scale if scale > 0 else err


def _cpu_ns(pids, skip_tid):
    """CPU time (ns, /proc/*/task/*/schedstat) of every thread of ``pids``
    ("self" for this process) but ``skip_tid``."""
    total = 0
    for pid in pids:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            if pid == "self" and int(tid) == skip_tid:
                continue
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    return total


def quiesce(pids=()):
    """Waits (up to QUIET_LIMIT) until the other threads of this process and the
    peers' processes use under 5% of a core; returns the seconds waited."""
    if not os.path.exists("/proc/self/task"):
        time.sleep(QUIET_WINDOW)
        return QUIET_WINDOW
    me = threading.get_native_id()
    pids = ["self", *pids]
    start = time.perf_counter()
    before = _cpu_ns(pids, me)
    while True:
        time.sleep(QUIET_WINDOW)
        now = _cpu_ns(pids, me)
        waited = time.perf_counter() - start
        if now - before < 0.05 * QUIET_WINDOW * 1e9 or waited > QUIET_LIMIT:
            return waited
        before = now


class CpuMonitor:
    """How many cores other processes kept busy (and the hypervisor stole) while a
    row was measured: on a shared machine, the first thing to read beside a ratio."""

    def __init__(self):
        self.ok = os.path.exists("/proc/stat")

    @staticmethod
    def _system():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        # user nice system idle iowait irq softirq steal
        return v[0] + v[1] + v[2] + v[5] + v[6], v[7]

    @staticmethod
    def _process(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime + stime, all threads
        except (OSError, IndexError, ValueError):
            return 0

    def start(self, pids=()):
        if self.ok:
            self.pids = ["self", *pids]
            self.t0 = time.perf_counter()
            self.sys0 = self._system()
            self.own0 = sum(self._process(p) for p in self.pids)

    def stop(self):
        """{'others': cores busy with other processes, 'steal': cores stolen}, or None."""
        if not self.ok:
            return None
        wall = time.perf_counter() - self.t0
        (busy, steal), own = self._system(), sum(self._process(p) for p in self.pids)
        ticks = os.sysconf("SC_CLK_TCK") * wall
        if ticks <= 0:
            return None
        others = (busy - self.sys0[0] - (own - self.own0)) / ticks
        return {"others": round(max(0.0, others), 2),
                "steal": round((steal - self.sys0[1]) / ticks, 2)}


def other_load(seconds=0.5):
    """Cores busy with other processes while this one sleeps."""
    m = CpuMonitor()
    m.start()
    time.sleep(seconds)
    return m.stop()


# --------------------------------------------------------------------------- cases


def _uniform_weights(rng, shape, fan_in):
    w = rng.random(shape, dtype=np.float32)
    w -= 0.5
    w *= np.float32(math.sqrt(12.0 / fan_in))  # unit-variance outputs
    return w


class Case:
    """One layer at one batch size: the arrays every framework is given. ``w``
    is HWIO for conv2d, ``[kh, kw, cin, multiplier]`` for depthwise and
    separable rows; ``w2`` the separable rows' pointwise ``[1, 1, cin *
    multiplier, cout]`` (else None)."""

    def __init__(self, layer, batch, seed, workdir):
        self.layer, self.batch = layer, batch
        rng = np.random.default_rng(seed)
        self.x = rng.random((batch, layer.h, layer.w, layer.cin), dtype=np.float32)
        self.x *= 2
        self.x -= 1
        self.w2 = None
        if layer.op == "conv2d":
            self.w = _uniform_weights(rng, (layer.kh, layer.kw, layer.cin, layer.cout),
                                      layer.kh * layer.kw * layer.cin)
        elif layer.transposed:  # [kh, kw, out, in]; an output sums ~1/stride**2 of the taps
            self.w = _uniform_weights(rng, (layer.kh, layer.kw, layer.cout, layer.cin),
                                      max(1, layer.kh * layer.kw * layer.cin // layer.stride**2))
        else:
            self.w = _uniform_weights(rng, (layer.kh, layer.kw, layer.cin, layer.multiplier),
                                      layer.kh * layer.kw)
            if layer.op == "separable":
                mid = layer.cin * layer.multiplier
                self.w2 = _uniform_weights(rng, (1, 1, mid, layer.cout), mid)
        self.workdir = workdir
        self._files = None
        self._x_nchw = None

    @property
    def x_nchw(self):
        if self._x_nchw is None:
            self._x_nchw = np.ascontiguousarray(self.x.transpose(0, 3, 1, 2))
        return self._x_nchw

    @property
    def files(self):
        """x, w (and w2 or None) as .npy files, for the worker processes."""
        if self._files is None:
            xp, wp = os.path.join(self.workdir, "x.npy"), os.path.join(self.workdir, "w.npy")
            np.save(xp, self.x)
            np.save(wp, self.w)
            w2p = None
            if self.w2 is not None:
                w2p = os.path.join(self.workdir, "w2.npy")
                np.save(w2p, self.w2)
            self._files = (xp, wp, w2p)
        return self._files

    def pyconv_call(self):
        """The pyconv call of this row, as a function of no arguments."""
        layer, x, w, w2 = self.layer, self.x, self.w, self.w2
        nn = pyconv.nn
        if layer.op == "depthwise":
            return lambda: nn.depthwise_conv2d(x, w, layer.stride, layer.pyconv_padding,
                                               dilations=layer.rate)
        if layer.op == "separable":
            return lambda: nn.separable_conv2d(x, w, w2, layer.stride, layer.pyconv_padding,
                                               dilations=layer.rate)
        if layer.transposed:
            shape = (x.shape[0], *layer.out_hw, layer.cout)
            return lambda: nn.conv2d_transpose(x, w, shape, layer.stride, layer.padding)
        return lambda: nn.conv2d(x, w, layer.stride, layer.pyconv_padding, dilations=layer.rate)

    def close(self):
        for p in self._files or ():
            try:
                if p is not None:
                    os.remove(p)
            except OSError:
                pass
        self._files = None
        self._x_nchw = None


# --------------------------------------------------------------------------- peers


class Peer:
    """A framework to compare with. ``outputs`` runs each variant once (NHWC
    result, also the warm-up); ``time`` measures the variants asked for."""

    name = ""
    variants = ("default",)

    def missing(self):
        """Why this peer cannot run here, or None."""

    def version(self):
        return None

    def skip_reason(self, threads):
        return None

    def begin(self, case):
        self.case = case

    def outputs(self, threads):
        raise NotImplementedError

    def time(self, threads, variants, policy):
        raise NotImplementedError

    def end(self):
        self.case = None

    def close(self):
        pass

    def info(self):
        return {}

    def pids(self):
        """Worker processes whose CPU time counts as this run's, not as other load."""
        return []


def _dist_version(*names):
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


class TorchPeer(Peer):
    name = "torch"
    variants = ("channels_last", "nchw")

    def missing(self):
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        return None

    def load(self):
        import torch

        self.torch = torch
        try:
            torch.set_num_interop_threads(1)  # one op at a time; intra-op threads do the work
        except RuntimeError:
            pass

    def version(self):
        return self.torch.__version__

    def info(self):
        t = self.torch
        return {"mkldnn": bool(t.backends.mkldnn.is_available()),
                "cpu_capability": getattr(t.backends.cpu, "get_cpu_capability", lambda: None)(),
                "interop_threads": t.get_num_interop_threads()}

    def begin(self, case):
        super().begin(case)
        t = self.torch
        layer = case.layer
        self.groups, self.w2 = 1, {}
        if layer.op == "conv2d" or layer.transposed:  # [out, in, kh, kw] / [in, out, kh, kw]
            w_oihw = t.from_numpy(np.ascontiguousarray(case.w.transpose(3, 2, 0, 1)))
        else:  # grouped: output channel c * multiplier + m is group c's m-th filter
            kh, kw, c, m = case.w.shape
            w_oihw = t.from_numpy(np.ascontiguousarray(
                case.w.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]))
            self.groups = c
            if case.w2 is not None:
                w2 = t.from_numpy(np.ascontiguousarray(case.w2.transpose(3, 2, 0, 1)))
                self.w2 = {"channels_last": w2.contiguous(memory_format=t.channels_last),
                           "nchw": w2}
        self.inputs = {
            # a channels-last view of the NHWC array itself: no copy
            "channels_last": (t.from_numpy(case.x).permute(0, 3, 1, 2),
                              w_oihw.contiguous(memory_format=t.channels_last)),
            "nchw": (t.from_numpy(case.x_nchw), w_oihw),
        }
        (pt, pb), (pl, pr) = layer.pads
        if layer.transposed:
            self.padding, self.out_pad, self.crop = torch_transpose_args(layer)
        elif pt == pb and pl == pr:
            self.prepad, self.padding = None, (pt, pl)
        else:
            self.prepad, self.padding = (pl, pr, pt, pb), (0, 0)

    def _fn(self, variant):
        F = self.torch.nn.functional
        x, w = self.inputs[variant]
        if self.case.layer.transposed:
            s, p, op, crop = self.case.layer.stride, self.padding, self.out_pad, self.crop
            if crop is None:
                return lambda: F.conv_transpose2d(x, w, None, s, p, op)
            return lambda: F.conv_transpose2d(x, w, None, s, p, op)[:, :, :crop[0], :crop[1]]
        s, d, p, prepad = self.case.layer.stride, self.case.layer.rate, self.padding, self.prepad
        g, w2 = self.groups, self.w2.get(variant)
        if w2 is not None:  # separable: the depthwise step, then the 1x1 one
            if prepad is None:
                return lambda: F.conv2d(F.conv2d(x, w, None, s, p, d, g), w2)
            return lambda: F.conv2d(F.conv2d(F.pad(x, prepad), w, None, s, p, d, g), w2)
        if prepad is None:
            return lambda: F.conv2d(x, w, None, s, p, d, g)
        return lambda: F.conv2d(F.pad(x, prepad), w, None, s, p, d, g)

    def outputs(self, threads):
        self.torch.set_num_threads(threads)
        with self.torch.inference_mode():
            return {v: self._fn(v)().permute(0, 2, 3, 1).numpy() for v in self.variants}

    def time(self, threads, variants, policy):
        self.torch.set_num_threads(threads)
        with self.torch.inference_mode():
            return {v: measure(self._fn(v), policy) for v in variants}

    def end(self):
        self.inputs = self.w2 = None
        super().end()


class OrtPeer(Peer):
    name = "ort"

    def missing(self):
        for mod in ("onnxruntime", "onnx"):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed"
        return None

    def load(self):
        import onnx
        import onnxruntime

        self.onnx, self.ort = onnx, onnxruntime
        self.ort.set_default_logger_severity(3)

    def version(self):
        return self.ort.__version__

    def info(self):
        return {"onnx": self.onnx.__version__, "providers": ["CPUExecutionProvider"],
                "opset": 17, "layout": "NCHW input, IOBinding"}

    def begin(self, case):
        super().begin(case)
        from onnx import TensorProto, helper, numpy_helper

        layer = case.layer
        (pt, pb), (pl, pr) = layer.pads
        oh, ow = layer.out_hw
        x_info = helper.make_tensor_value_info(
            "x", TensorProto.FLOAT, [case.batch, layer.cin, layer.h, layer.w])
        y_info = helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [case.batch, layer.cout, oh, ow])
        group = {}
        if layer.op == "conv2d" or layer.transposed:
            w = case.w.transpose(3, 2, 0, 1)
        else:  # Conv with group = C; output channel c * multiplier + m as TF
            kh, kw, c, m = case.w.shape
            w = case.w.reshape(kh, kw, c * m).transpose(2, 0, 1)[:, None]
            group = {"group": c}
        weights = [numpy_helper.from_array(np.ascontiguousarray(w), "w")]
        conv_out = "y" if case.w2 is None else "mid"
        if layer.transposed:
            nodes = [ort_transpose_node(helper, layer)]
        else:
            nodes = [helper.make_node("Conv", ["x", "w"], [conv_out],
                                      kernel_shape=[layer.kh, layer.kw], pads=[pt, pl, pb, pr],
                                      strides=[layer.stride] * 2, dilations=[layer.rate] * 2,
                                      **group)]
        if case.w2 is not None:
            weights.append(numpy_helper.from_array(
                np.ascontiguousarray(case.w2.transpose(3, 2, 0, 1)), "w2"))
            nodes.append(helper.make_node("Conv", ["mid", "w2"], ["y"], kernel_shape=[1, 1]))
        graph = helper.make_graph(nodes, "conv", [x_info], [y_info], initializer=weights)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        self.model = model.SerializeToString()
        self.y = np.empty((case.batch, layer.cout, oh, ow), np.float32)
        self.sessions = {}

    def _run(self, threads):
        if threads not in self.sessions:
            so = self.ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.execution_mode = self.ort.ExecutionMode.ORT_SEQUENTIAL
            so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = self.ort.InferenceSession(self.model, so, providers=["CPUExecutionProvider"])
            binding = sess.io_binding()
            binding.bind_ortvalue_input("x", self.ort.OrtValue.ortvalue_from_numpy(
                self.case.x_nchw))
            binding.bind_ortvalue_output("y", self.ort.OrtValue.ortvalue_from_numpy(self.y))
            self.sessions[threads] = lambda: sess.run_with_iobinding(binding)
        return self.sessions[threads]

    def outputs(self, threads):
        self.y.fill(np.nan)
        self._run(threads)()
        return {"default": self.y.transpose(0, 2, 3, 1)}

    def time(self, threads, variants, policy):
        return {"default": measure(self._run(threads), policy)}

    def end(self):
        self.sessions = self.model = self.y = None
        super().end()


def numpy_conv2d(x, w, pads, stride, rate):
    """NumPy's own way: windows over the padded input, contracted with tensordot."""
    (pt, pb), (pl, pr) = pads
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw = w.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(
        x, ((kh - 1) * rate + 1, (kw - 1) * rate + 1), axis=(1, 2))
    win = win[:, ::stride, ::stride, :, ::rate, ::rate]  # N, OH, OW, C, KH, KW
    return np.tensordot(win, w, axes=([3, 4, 5], [2, 0, 1]))


def numpy_depthwise(x, w, pads, stride, rate):
    """Depthwise by NumPy: windows over the padded input, contracted per channel
    with einsum (output channel c * multiplier + m)."""
    (pt, pb), (pl, pr) = pads
    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    kh, kw, c, m = w.shape
    win = np.lib.stride_tricks.sliding_window_view(
        x, ((kh - 1) * rate + 1, (kw - 1) * rate + 1), axis=(1, 2))
    win = win[:, ::stride, ::stride, :, ::rate, ::rate]  # N, OH, OW, C, KH, KW
    out = np.einsum("nhwcij,ijcm->nhwcm", win, w)
    return out.reshape(out.shape[:3] + (c * m,))


class NumpyPeer(Peer):
    name = "numpy"

    def load(self):
        try:
            from threadpoolctl import threadpool_info, threadpool_limits
        except ImportError:
            self.limits, self.blas = None, None
        else:
            self.limits = threadpool_limits
            self.blas = [{k: i.get(k) for k in ("internal_api", "version", "architecture",
                                                "threading_layer", "num_threads", "filepath")}
                         for i in threadpool_info() if i.get("user_api") == "blas"]

    def version(self):
        return np.__version__

    def info(self):
        return {"blas": self.blas,
                "blas_threads": 1 if self.limits else "not limited (threadpoolctl missing)",
                "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                                       "OPENBLAS_NUM_THREADS",
                                                       "OMP_NUM_THREADS")}}

    def skip_reason(self, threads):
        return None if threads == 1 else "single-threaded only"

    def _call(self):
        layer, case = self.case.layer, self.case
        if layer.op == "conv2d":
            return numpy_conv2d(case.x, case.w, layer.pads, layer.stride, layer.rate)
        if layer.transposed:
            return numpy_conv2d_transpose(case.x, case.w, layer.pads, layer.stride, layer.out_hw)
        out = numpy_depthwise(case.x, case.w, layer.pads, layer.stride, layer.rate)
        return out if case.w2 is None else np.tensordot(out, case.w2[0, 0], axes=1)

    def _single(self):
        if self.limits is None:
            import contextlib

            return contextlib.nullcontext()
        return self.limits(limits=1, user_api="blas")

    def outputs(self, threads):
        with self._single():
            return {"default": self._call()}

    def time(self, threads, variants, policy):
        with self._single():
            return {"default": measure(self._call, policy)}


class _TFWorkers:
    """TensorFlow in worker processes, one per thread count (TF reads its
    intra/inter-op thread settings once, when it initialises), speaking one
    JSON object per line: ``python -m <_worker_module> --_tf-worker THREADS``.
    Used by the layer suite's peer and the network benchmark's."""

    _worker_module = "pyconv.bench"

    def _start(self, prefix):
        self.workers = {}
        self.hello = None
        self.logdir = tempfile.mkdtemp(prefix=prefix)

    def _worker_env(self, env):
        return env

    def _worker(self, threads):
        if threads not in self.workers:
            env = _child_env()
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            env = self._worker_env(env)
            log = open(os.path.join(self.logdir, f"tf-{threads}.log"), "w")
            proc = subprocess.Popen(
                [sys.executable, "-m", self._worker_module, "--_tf-worker", str(threads)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
            self.workers[threads] = (proc, log)
            hello = self._read(threads)  # every worker says hello first
            self.hello = self.hello or hello
        return self.workers[threads][0]

    def _read(self, threads):
        proc, log = self.workers[threads]
        line = proc.stdout.readline()
        if not line:
            log.flush()
            with open(log.name) as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"TensorFlow worker ({threads} threads) exited: {tail.strip()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise RuntimeError(reply.get("error", "TensorFlow worker failed"))
        return reply

    def _ask(self, threads, request):
        proc = self._worker(threads)
        proc.stdin.write(json.dumps(request) + "\n")
        proc.stdin.flush()
        return self._read(threads)

    def close(self):
        for proc, log in self.workers.values():
            try:
                proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
                proc.stdin.flush()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
            log.close()
        self.workers = {}
        shutil.rmtree(self.logdir, ignore_errors=True)


class TFPeer(_TFWorkers, Peer):
    """TensorFlow in worker processes, one per thread count: TF reads its
    intra/inter-op thread settings once, when it initialises."""

    name = "tf"

    def missing(self):
        if importlib.util.find_spec("tensorflow") is None:
            return "tensorflow is not installed"
        return None

    def load(self):
        self._start("pyconv-bench-tf-")

    def version(self):
        return (self.hello or {}).get("version") or _dist_version("tensorflow-cpu", "tensorflow")

    def info(self):
        return {k: v for k, v in (self.hello or {}).items() if k != "ok"}

    def pids(self):
        return [proc.pid for proc, _ in self.workers.values()]

    def start_workers(self, thread_counts):
        for threads in thread_counts:
            self._worker(threads)

    def outputs(self, threads):
        layer = self.case.layer
        if layer.padding == "conv2d_same":
            padding = [[0, 0], *[list(p) for p in layer.pads], [0, 0]]
        else:
            padding = layer.padding
        xp, wp, w2p = self.case.files
        out = os.path.join(self.case.workdir, f"tf-out-{threads}.npy")
        request = {"op": "prepare", "x": xp, "w": wp, "w2": w2p, "strides": layer.stride,
                   "dilations": layer.rate, "padding": padding, "out": out, "kind": layer.op}
        if layer.transposed:
            request["output_shape"] = [self.case.batch, *layer.out_hw, layer.cout]
        self._ask(threads, request)
        try:
            y = np.load(out)
        finally:
            os.remove(out)
        return {"default": y}

    def time(self, threads, variants, policy):
        reply = self._ask(threads, {"op": "time", "policy": policy.__dict__})
        return {"default": reply["times"]}

    def end(self):
        for threads, (proc, _) in list(self.workers.items()):
            if proc.poll() is None:
                try:
                    self._ask(threads, {"op": "release"})
                except (OSError, RuntimeError, ValueError):
                    pass  # the next request reports the worker's failure
        super().end()


def _tf_worker(threads):
    """The TensorFlow side of TFPeer: JSON requests on stdin, one JSON reply a line."""
    reply_stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything TensorFlow prints goes to the log, not into the replies

    def reply(**kw):
        reply_stream.write(json.dumps({"ok": True, **kw}) + "\n")

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    try:
        from tensorflow.python.util import _pywrap_util_port

        onednn = bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # pragma: no cover - private API moved
        onednn = None
    reply(version=tf.__version__, onednn=onednn,
          intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
          inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
          TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
    state = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "prepare":
                x = tf.constant(np.load(request["x"]))
                w = tf.constant(np.load(request["w"]))
                kw = {k: request[k] for k in ("strides", "padding", "dilations")}
                kind = request.get("kind", "conv2d")
                if kind == "conv2d":
                    fn = tf.function(lambda t, w=w, kw=kw: tf.nn.conv2d(t, w, **kw))
                elif kind == "conv2d_transpose":
                    shape = request["output_shape"]
                    fn = tf.function(lambda t, w=w, kw=kw, shape=shape: tf.nn.conv2d_transpose(
                        t, w, shape, kw["strides"], kw["padding"]))
                else:  # depthwise ops want 4 strides and 2 dilations
                    kw["strides"] = [1, kw["strides"], kw["strides"], 1]
                    kw["dilations"] = [kw["dilations"]] * 2
                    if kind == "separable":
                        w2 = tf.constant(np.load(request["w2"]))
                        fn = tf.function(lambda t, w=w, w2=w2, kw=kw:
                                         tf.nn.separable_conv2d(t, w, w2, **kw))
                    else:
                        fn = tf.function(lambda t, w=w, kw=kw:
                                         tf.nn.depthwise_conv2d(t, w, **kw))
                np.save(request["out"], fn(x).numpy())
                state = {"fn": fn, "x": x}
                reply()
            elif op == "time":
                fn, x = state["fn"], state["x"]
                reply(times=measure(lambda fn=fn, x=x: fn(x), Policy(**request["policy"])))
            elif op == "release":
                state = {}
                reply()
            elif op == "quit":
                reply()
                return
        except Exception as exc:
            reply_stream.write(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                               + "\n")


PEER_CLASSES = {"torch": TorchPeer, "tf": TFPeer, "ort": OrtPeer, "numpy": NumpyPeer}
PACKAGES = {"torch": "torch", "tf": "tensorflow", "ort": "onnxruntime", "numpy": "numpy"}


# --------------------------------------------------------------------------- machine


def fma_peak():
    """Single-thread FMA peak in GFLOP/s: measured by the extension when it can, else
    a labelled nominal estimate."""
    fn = getattr(_conv, "fma_peak_gflops", None)
    if fn is not None:
        try:
            return float(fn(seconds=0.2)), "measured"
        except TypeError:
            return float(fn(0.2)), "measured"
    mhz, flags = None, set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz") and mhz is None:
                    mhz = float(line.split(":")[1])
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":")[1].split())
    except OSError:
        return None, "unknown"
    if not mhz:
        return None, "unknown"
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 8
    return mhz * 1e-3 * per_cycle, f"estimate: {mhz:.0f} MHz x {per_cycle} FLOP/cycle, not measured"


def machine_info():
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = os.cpu_count()
    thp = None
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            thp = f.read().strip()
    except OSError:
        pass
    return {
        "cpu_model": model or platform.processor(),
        "cpu_count": os.cpu_count(),
        "cores_usable": affinity,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "transparent_hugepage": thp,
        "env": {k: os.environ.get(k) for k in ("PYCONV_ISA", "PYCONV_NUM_THREADS",
                                               "OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
                                               "OPENBLAS_L2_SIZE", "TF_ENABLE_ONEDNN_OPTS")},
        "pyconv": {"version": pyconv.__version__, "path": os.path.dirname(pyconv.__file__),
                   "git": _git_describe(), "isa": _conv.isa(),
                   "available_isas": list(_conv.available_isas()), "tile": _tile()},
    }


def _git_describe():
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyconv.__file__)))
    if not os.path.isdir(os.path.join(root, ".git")):
        return None
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              check=False, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "csrc",
                                "pyconv"], check=False, capture_output=True, text=True,
                               timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty.strip() else "") if head else None


def _tile():
    """(MR, NR) of the float32 microkernel in use, or None if unknown."""
    fn = getattr(_conv, "tile", None)
    if fn is not None:
        try:
            mr, nr = fn()
            return [int(mr), int(nr)]
        except Exception:
            pass
    tile = KNOWN_TILES.get(_conv.isa())
    return list(tile) if tile else None


# --------------------------------------------------------------------------- memory


def analytic_memory(layer, batch, tile):
    """Bytes of pyconv's packed weights, indirection buffer and zero vector, and of a
    whole-batch im2col matrix for comparison."""
    if layer.transposed:
        return transpose_row_memory(layer, batch, tile)
    oh, ow = layer.out_hw
    pixels, taps = oh * ow, layer.kh * layer.kw
    out = {"im2col": batch * pixels * taps * layer.cin * 4,
           "output": batch * pixels * layer.cout * 4}
    if layer.op != "conv2d":  # the depthwise operator's buffers are not modelled here
        return out
    if tile:
        mr, nr = tile
        out["packed_weights"] = -(-layer.cout // nr) * (nr + taps * layer.cin * nr) * 4
        out["indirection"] = -(-pixels // mr) * mr * taps * 8
        out["zero"] = layer.cin * 4
        out["pyconv_total"] = out["packed_weights"] + out["indirection"] + out["zero"]
    return out


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _memory_probe(spec):
    """In a fresh process: the resident-memory high-water mark of one pyconv call,
    less what was resident before it and less the output array."""
    pyconv.set_num_threads(spec["threads"])
    # start the pool's threads first, so their stacks are not counted as the layer's
    warm = np.ones((1, 32, 32, 32), np.float32)
    pyconv.nn.conv2d(warm, np.ones((3, 3, 32, 32), np.float32))
    layer = Layer(**spec["layer"])
    case = Case(layer, spec["batch"], 0, None)
    call = case.pyconv_call()
    del case
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        hwm = True
        method = ("VmHWM after clear_refs, MALLOC_MMAP_THRESHOLD_=4096; the kernel's RSS "
                  "counters are approximate to a few hundred KiB")
        before = _status_kb("VmHWM")
    except OSError:
        hwm = False
        method = "ru_maxrss - VmRSS (too low if the process was ever larger before the call)"
        before = _status_kb("VmRSS")
    y = call()
    if hwm:
        peak = _status_kb("VmHWM")
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    extra = peak * 1024 - before * 1024 - y.nbytes
    return {"method": method, "rss_before": before * 1024, "peak": peak * 1024,
            "output": int(y.nbytes), "extra": int(extra)}


def _child_env():
    """This environment, with the pyconv this process runs first on the path."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyconv.__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def measure_memory(layer, batch, threads):
    spec = {"layer": layer.__dict__, "batch": batch, "threads": threads}
    env = _child_env()
    # Every allocation of a page or more gets fresh pages from mmap, so a buffer
    # cannot hide in heap memory that earlier work left resident; and no huge
    # pages for NumPy arrays, so the output is counted to the page.
    env["MALLOC_MMAP_THRESHOLD_"] = "4096"
    env["NUMPY_MADVISE_HUGEPAGE"] = "0"
    proc = subprocess.run([sys.executable, "-m", "pyconv.bench", "--_memory-probe",
                           json.dumps(spec)], check=False, capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- tiny layer


def tiny_overhead(rounds, round_time):
    """Per-call time of the bare C call, pyconv.nn.conv2d and pyconv.conv2d (existing
    variables) on a 1x8x8x8 input with a 3x3x8x8 kernel, bias and ReLU in all three."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 8, 8), dtype=np.float32)
    w = rng.standard_normal((3, 3, 8, 8), dtype=np.float32)
    b = rng.standard_normal(8, dtype=np.float32)
    fns = {
        "bare": lambda: _conv.conv2d(x, w, b, 1, 1, 1, 1, 1, 1, 1, 1, 1),
        "nn": lambda: pyconv.nn.conv2d(x, w, 1, "SAME", bias=b, activation="relu"),
    }
    result = {"input": [1, 8, 8, 8], "kernel": [3, 3, 8, 8], "threads": pyconv.get_num_threads()}
    if not np.array_equal(fns["bare"](), fns["nn"]()):
        result["warning"] = "nn.conv2d and the bare call disagree"
    store = None
    if hasattr(pyconv, "conv2d") and hasattr(pyconv, "VariableStore"):
        store = pyconv.VariableStore(seed=0)
        with store:
            first = pyconv.conv2d(x, 8, [3, 3], scope="bench_tiny")
        wv = np.asarray(store["bench_tiny/weights"])
        bv = np.asarray(store["bench_tiny/biases"])
        fns["layer"] = lambda: pyconv.conv2d(x, 8, [3, 3], scope="bench_tiny", reuse=True)
        if not np.array_equal(first, pyconv.nn.conv2d(x, wv, 1, "SAME", bias=bv,
                                                      activation="relu")):
            result["warning"] = "pyconv.conv2d and nn.conv2d disagree"
    else:
        result["layer_missing"] = "pyconv.conv2d / VariableStore not available"

    def per_call(fn, n):
        gc.disable()
        try:
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return (time.perf_counter() - t0) / n
        finally:
            gc.enable()

    def run():
        calls = {}
        for name, fn in fns.items():
            one = per_call(fn, 50)
            calls[name] = max(1, int(round_time / max(one, 1e-7)))
        samples = {name: [] for name in fns}
        for _ in range(rounds):  # interleaved, so drifts in machine speed hit all three
            for name, fn in fns.items():
                samples[name].append(per_call(fn, calls[name]))
        return samples

    if store is not None:
        with store:
            samples = run()
    else:
        samples = run()
    for name, s in samples.items():
        result[name] = {"median_s": statistics.median(s), "min_s": min(s), "samples": s}
    bare, nn = result["bare"]["median_s"], result["nn"]["median_s"]
    result["nn_over_bare"] = nn / bare
    if "layer" in result:
        result["layer_minus_nn_s"] = result["layer"]["median_s"] - nn
        result["layer_minus_bare_s"] = result["layer"]["median_s"] - bare
    return result


# --------------------------------------------------------------------------- run


def parse_threads(values, usable):
    out = []
    for v in values:
        for item in str(v).split(","):
            item = item.strip().lower()
            if not item:
                continue
            n = usable if item == "all" else int(item)
            if n < 1:
                raise ValueError(f"--threads: thread counts must be >= 1, got {item!r}")
            if n not in out:
                out.append(n)
    return out


def _median(times):
    return statistics.median(times) if times else None


class Runner:
    def __init__(self, args, layers, peers, peak, usable):
        self.args, self.layers, self.peers, self.peak = args, layers, peers, peak
        self.usable = usable
        self.policy = Policy(args.repeat, args.min_time, args.max_time, args.warmup)
        self.results, self.memory = [], []
        self.tile = _tile()
        self.table = Table([p.name for p in peers], peak_estimated=peak[1] != "measured")

    def run(self):
        self.table.header()
        # start every peer worker process now, so that none is still starting
        # (importing TensorFlow takes seconds of CPU) while another is timed
        for peer in self.peers:
            start = getattr(peer, "start_workers", None)
            if start is not None:
                try:
                    start(self.args.threads)
                except Exception:  # reported by the first row that needs it
                    pass
        quiesce([pid for peer in self.peers for pid in peer.pids()])
        workdir = tempfile.mkdtemp(prefix="pyconv-bench-", dir=_scratch_dir())
        from ._progress import progress

        self._progress = progress(len(self.layers) * len(self.args.batch), "pyconv.bench",
                                  " rows", enabled=None if getattr(self.args, "progress", True)
                                  else False)
        try:
            for index, layer in enumerate(self.layers):
                for batch in self.args.batch:
                    case = Case(layer, batch, seed=1000 + index, workdir=workdir)
                    try:
                        self.run_case(case)
                    finally:
                        for peer in self.peers:
                            if getattr(peer, "case", None) is not None:
                                peer.end()
                        case.close()
                    if self.args.memory:
                        self.memory.append(self.memory_row(layer, batch))
                    self._progress.update()
        finally:
            self._progress.close()
            shutil.rmtree(workdir, ignore_errors=True)

    def memory_row(self, layer, batch):
        row = {"suite": layer.suite, "name": layer.name, "batch": batch,
               "threads": max(self.args.threads),
               "analytic": analytic_memory(layer, batch, self.tile)}
        row["measured"] = measure_memory(layer, batch, max(self.args.threads))
        return row

    def run_case(self, case):
        layer = case.layer
        for peer in self.peers:
            try:
                peer.begin(case)
            except Exception as exc:  # recorded per row below
                peer.case = None
                peer.begin_error = f"{type(exc).__name__}: {exc}"
            else:
                peer.begin_error = None
        ref = None
        for threads in self.args.threads:
            pyconv.set_num_threads(threads)
            monitor = CpuMonitor()
            monitor.start([pid for peer in self.peers for pid in peer.pids()])

            call = case.pyconv_call()
            out = call()
            peer_pids = [pid for peer in self.peers for pid in peer.pids()]
            quiesce(peer_pids)
            record = {"suite": layer.suite, "name": layer.name, "batch": case.batch,
                      "op": layer.op, "threads": threads, "flops": layer.flops(case.batch),
                      "repeats": layer.repeats, "padding": layer.padding,
                      "out_shape": list(out.shape), "peers": {}}
            if ref is None:
                ref = out
            else:
                record["deterministic"] = bool(np.array_equal(out, ref))
            del out
            times = measure(call, self.policy)
            med = _median(times)
            record["pyconv"] = {"median_s": med, "times": times,
                                "gflops": record["flops"] / med / 1e9}
            if self.peak[0]:
                record["pyconv"]["peak_fraction"] = record["pyconv"]["gflops"] / (
                    self.peak[0] * threads)
            for peer in self.peers:
                quiesce(peer_pids)
                record["peers"][peer.name] = self.run_peer(peer, threads, ref)
            record["cpu"] = monitor.stop()
            self.results.append(record)
            self.table.row(record)

    def run_peer(self, peer, threads, ref):
        reason = peer.skip_reason(threads)
        if reason:
            return {"status": "skipped", "message": reason}
        if peer.begin_error:
            return {"status": "error", "message": peer.begin_error}
        try:
            outs = peer.outputs(threads)
            errors = {v: rel_error(y, ref) for v, y in outs.items()}
            del outs
            good = [v for v, e in errors.items() if e <= self.args.rtol]
            entry = {"rel_err": errors}
            if not good:
                entry.update(status="mismatch", message=f"max rel error {max(errors.values()):.2e}"
                             f" > {self.args.rtol:g}; not timed")
                return entry
            timed = peer.time(threads, good, self.policy)
        except Exception as exc:
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}"[:500]}
        variants = {v: {"median_s": _median(t), "times": t} for v, t in timed.items()}
        best = min(variants, key=lambda v: variants[v]["median_s"])
        entry.update(status="ok", variant=best, median_s=variants[best]["median_s"],
                     variants=variants)
        if len(good) < len(errors):
            entry["message"] = "variant(s) " + ", ".join(
                v for v in errors if v not in good) + " disagree; not timed"
        return entry


def _scratch_dir():
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


# --------------------------------------------------------------------------- output


def _clip(text, width):
    return text if len(text) <= width else "~" + text[-(width - 1):]


def _ms(s):
    if s is None:
        return "-"
    ms = s * 1e3
    return f"{ms:.0f}" if ms >= 1000 else f"{ms:.1f}" if ms >= 10 else f"{ms:.3f}"


class Table:
    def __init__(self, peers, peak_estimated):
        self.peers = peers
        self.peak_label = "%pk*" if peak_estimated else "%peak"
        self.cols = [("suite", 12, "<"), ("layer", 30, "<"), ("b", 2, ">"), ("thr", 3, ">"),
                     ("pyconv ms", 9, ">"), ("GF/s", 6, ">"), (self.peak_label, 5, ">")]
        for p in peers:
            self.cols += [(f"{p} ms", 9, ">"), (f"/{p}", 6, ">")]
        self.cols += [("rel err", 7, ">"), ("busy", 4, ">")]

    def _line(self, cells):
        return "  ".join(f"{c:{a}{w}}" for c, (_, w, a) in zip(cells, self.cols))

    def header(self):
        print(self._line([c[0] for c in self.cols]))
        print(self._line(["-" * c[1] for c in self.cols]), flush=True)

    def row(self, r):
        py = r["pyconv"]
        frac = py.get("peak_fraction")
        cells = [r["suite"], _clip(r["name"], 30), str(r["batch"]), str(r["threads"]),
                 _ms(py["median_s"]), f"{py['gflops']:.1f}",
                 f"{100 * frac:.0f}%" if frac is not None else "-"]
        worst = 0.0
        for p in self.peers:
            e = r["peers"].get(p, {})
            worst = max([worst, *e.get("rel_err", {}).values()])
            st = e.get("status")
            if st == "ok":
                cells += [_ms(e["median_s"]), f"{py['median_s'] / e['median_s']:.2f}"]
            elif st == "mismatch":
                cells += ["MISMATCH", "!"]
            elif st == "error":
                cells += ["ERROR", "!"]
            else:
                cells += ["-", ""]
        cells.append(f"{worst:.0e}")
        cpu = r.get("cpu")
        cells.append(f"{cpu['others']:.1f}" if cpu else "?")
        if r.get("deterministic") is False:
            cells[-1] += "  pyconv output differs between thread counts"
        bar = getattr(self, "_progress", None)
        if bar is not None:
            bar.write(self._line(cells))  # the row above the bar, not through it
        else:
            print(self._line(cells), flush=True)


def _geomean(values):
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _peer_time(record, peer):
    e = record["peers"].get(peer)
    return e["median_s"] if e and e.get("status") == "ok" else None


def summarize(results, peers, layers, peak, threads_all, overhead):
    """Weighted per-network totals, geometric means and the issue's targets."""
    settings = sorted({(r["batch"], r["threads"]) for r in results})
    rows_per_suite = {}
    for layer in layers:
        rows_per_suite.setdefault(layer.suite, 0)
        rows_per_suite[layer.suite] += 1
    networks = []
    for suite, n_rows in rows_per_suite.items():
        for batch, threads in settings:
            rs = [r for r in results if r["suite"] == suite and r["batch"] == batch
                  and r["threads"] == threads]
            if not rs:
                continue
            entry = {"suite": suite, "batch": batch, "threads": threads, "layers": len(rs),
                     "complete": len(rs) == n_rows,
                     "pyconv_s": sum(r["repeats"] * r["pyconv"]["median_s"] for r in rs),
                     "peers": {}}
            for p in peers:
                ts = [_peer_time(r, p) for r in rs]
                if all(t is not None for t in ts):
                    total = sum(r["repeats"] * t for r, t in zip(rs, ts))
                    entry["peers"][p] = {"total_s": total, "ratio": entry["pyconv_s"] / total}
            networks.append(entry)
    geomeans = []
    families = list(dict.fromkeys(OPS[r.get("op", "conv2d")] for r in results))
    for family, (batch, threads) in ((f, bt) for f in families for bt in settings):
        rs = [r for r in results if r["batch"] == batch and r["threads"] == threads
              and OPS[r.get("op", "conv2d")] == family]
        if not rs:
            continue
        entry = {"family": family, "batch": batch, "threads": threads, "layers": len(rs),
                 "vs": {}}
        best = []
        for r in rs:
            ts = [t for t in (_peer_time(r, "torch"), _peer_time(r, "tf")) if t is not None]
            if ts:
                best.append(r["pyconv"]["median_s"] / min(ts))
        if best:
            entry["vs"]["best_torch_tf"] = {"geomean": _geomean(best), "layers": len(best)}
        for p in peers:
            ratios = [r["pyconv"]["median_s"] / _peer_time(r, p) for r in rs
                      if _peer_time(r, p) is not None]
            if ratios:
                entry["vs"][p] = {"geomean": _geomean(ratios), "layers": len(ratios)}
        geomeans.append(entry)

    targets = []
    for family, batch in ((f, b) for f in families for b in (8, 1)):
        g = next((e for e in geomeans if e["batch"] == batch and e["threads"] == threads_all
                  and e["family"] == family), None)
        value = g["vs"].get("best_torch_tf", {}).get("geomean") if g else None
        rows = "" if family == "conv2d" else f" ({family} rows)"
        targets.append({"target": f"geomean pyconv/best(torch, tf) <= 1.0, batch {batch}, "
                                  f"{threads_all} threads{rows}",
                        "value": value, "unit": "ratio", "family": family,
                        "met": None if value is None else
                        value <= TARGETS["geomean_vs_best_torch_tf"]})
    keys_3x3 = {(layer.suite, layer.name) for layer in layers
                if layer.is_3x3 and layer.suite in ("vgg_16", "resnet_v1_50")
                and layer.op == "conv2d"}
    for threads in sorted({r["threads"] for r in results}):
        rs = [r for r in results if r["batch"] == 8 and r["threads"] == threads
              and (r["suite"], r["name"]) in keys_3x3]
        fractions = [r["pyconv"].get("peak_fraction") for r in rs]
        if not rs or any(f is None for f in fractions):
            continue
        met = sum(f >= TARGETS["peak_fraction_3x3_batch8"] for f in fractions)
        targets.append({"target": f"each 3x3 layer of VGG-16 and ResNet-50 at batch 8 >= 70% "
                                  f"of peak, {threads} thread(s)"
                                  + ("" if peak[1] == "measured" else " (peak estimated)"),
                        "value": min(fractions), "unit": "fraction", "layers_met": met,
                        "layers": len(fractions), "met": met == len(fractions)})
    if overhead:
        v = overhead["nn_over_bare"]
        targets.append({"target": "pyconv.nn.conv2d within 2x of the bare C call (tiny layer)",
                        "value": v, "unit": "ratio", "met": v <= TARGETS["tiny_nn_over_bare"]})
        if "layer_minus_nn_s" in overhead:
            v = overhead["layer_minus_nn_s"] * 1e6
            targets.append({"target": "pyconv.conv2d, existing variables, < 20 us above "
                                      "pyconv.nn.conv2d", "value": v, "unit": "us",
                            "met": v < TARGETS["tiny_layer_minus_nn_us"]})
    return {"networks": networks, "geomeans": geomeans, "targets": targets}


def print_summary(summary, peers, memory, overhead, peak, elapsed):
    print("\nWeighted totals per network (sum of repeats x median; ratio = pyconv/peer)")
    for e in summary["networks"]:
        parts = [f"pyconv {_ms(e['pyconv_s']):>8} ms"]
        for p in peers:
            if p in e["peers"]:
                parts.append(f"{p} {_ms(e['peers'][p]['total_s']):>8} ms "
                             f"({e['peers'][p]['ratio']:.2f}x)")
        incomplete = "" if e["complete"] else f"  [{e['layers']} rows only]"
        print(f"  {e['suite']:<13} b={e['batch']:<2} thr={e['threads']:<3} "
              + "   ".join(parts) + incomplete)
    print("\nGeometric mean of time(pyconv)/time(peer) over the layers (< 1: pyconv faster)")
    for e in summary["geomeans"]:
        parts = [f"{k} {v['geomean']:.2f} [{v['layers']}]" for k, v in e["vs"].items()]
        print(f"  {e.get('family', 'conv2d'):<10} b={e['batch']:<2} thr={e['threads']:<3} "
              + "   ".join(parts))
    if memory:
        print("\nMemory of pyconv beyond its output, MiB: measured = resident high-water mark "
              "of one call in a fresh\n  process less the output (+-0.3 MiB: the kernel's RSS "
              "counters are approximate); analytic = packed weights\n  + indirection buffer + "
              "zero vector; im2col = a whole-batch im2col matrix, for comparison")
        print(f"  {'suite':<13}{'layer':<31}{'b':>2}  {'measured':>9}  {'analytic':>9}"
              f"  {'im2col':>9}  {'output':>9}")
        mib = 1 << 20
        for m in memory:
            meas = m["measured"]
            a = m["analytic"]
            mtxt = f"{meas['extra'] / mib:9.2f}" if "extra" in meas else "    error"
            atxt = f"{a['pyconv_total'] / mib:9.2f}" if "pyconv_total" in a else "        ?"
            print(f"  {m['suite']:<13}{_clip(m['name'], 30):<31}{m['batch']:>2}  {mtxt}  {atxt}"
                  f"  {a['im2col'] / mib:9.2f}  {a['output'] / mib:9.2f}")
    if overhead:
        print(f"\nTiny layer (1x8x8x8 input, 3x3x8x8 kernel, bias + ReLU; median of "
              f"{len(overhead['bare']['samples'])} interleaved rounds)")
        for name, label in (("bare", "_conv.conv2d (bare C call)"),
                            ("nn", "pyconv.nn.conv2d"),
                            ("layer", "pyconv.conv2d, existing variables")):
            if name in overhead:
                print(f"  {label:<36} {overhead[name]['median_s'] * 1e6:8.2f} us")
        print(f"  nn / bare = {overhead['nn_over_bare']:.2f}x", end="")
        if "layer_minus_nn_s" in overhead:
            print(f"; layer - nn = {overhead['layer_minus_nn_s'] * 1e6:.2f} us; layer - bare = "
                  f"{overhead['layer_minus_bare_s'] * 1e6:.2f} us")
        else:
            print(f"; {overhead.get('layer_missing', '')}")
    print("\nTargets")
    for t in summary["targets"]:
        v, unit = t["value"], t["unit"]
        if v is None:
            val = "n/a"
        elif unit == "fraction":
            val = f"min {100 * v:.0f}%, {t['layers_met']}/{t['layers']} layers"
        elif unit == "us":
            val = f"{v:.2f} us"
        else:
            val = f"{v:.2f}"
        status = "n/a" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"  {t['target']:<72} {val:>24}  {status}")
    pk = f"{peak[0]:.1f} GFLOP/s per thread ({peak[1]})" if peak[0] else "unknown"
    print(f"\nFMA peak: {pk}.  Total time {elapsed:.0f} s.")


# --------------------------------------------------------------------------- main


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m pyconv.bench",
        description="pyconv's conv2d against PyTorch, TensorFlow, ONNX Runtime and NumPy on "
                    "the layer suite. Prints a table; --json writes every measurement.")
    p.add_argument("--layers", default=None, metavar="PATH",
                   help="layer-suite CSV (default: the copy shipped as pyconv/bench_layers.csv)")
    p.add_argument("--batch", nargs="+", type=int, default=None, help="batch sizes (default 1 8)")
    p.add_argument("--threads", nargs="+", default=None,
                   help="thread counts, or 'all' for every usable core (default: 1 all)")
    p.add_argument("--peers", default=",".join(PEERS),
                   help="comma-separated subset of torch,tf,ort,numpy ('' for none); peers "
                        "that are not installed are skipped")
    p.add_argument("--repeat", type=int, default=None,
                   help="at most this many timed calls per measurement (default 30)")
    p.add_argument("--min-time", type=float, default=None, metavar="S",
                   help="time a measurement for at least S seconds and 3 calls (default 0.3)")
    p.add_argument("--warmup", type=float, default=None, metavar="S",
                   help="before each measurement, call the framework untimed for S seconds "
                        "(default 0.1)")
    p.add_argument("--max-time", type=float, default=None, metavar="S",
                   help="stop a measurement after S seconds even if fewer than 3 calls "
                        "(default 10 x --min-time)")
    p.add_argument("--ops", default=None, metavar="PATH",
                   help="CSV of other operators' rows, with an 'op' column (default: "
                        "pyconv/bench_ops.csv, depthwise and separable; '' for none)")
    p.add_argument("--op", action="append", default=None, choices=sorted(OPS),
                   help="only rows of this operator kind (repeatable), e.g. --op depthwise "
                        "--op separable")
    p.add_argument("--filter", default=None, metavar="REGEX",
                   help="only layers whose 'suite/name' matches REGEX (re.search)")
    p.add_argument("--rtol", type=float, default=RTOL,
                   help=f"a peer whose max |diff| / max |pyconv| exceeds this is flagged and "
                        f"not timed (default {RTOL:g})")
    p.add_argument("--json", default=None, metavar="OUT", help="write every measurement here")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar (it is shown only on a terminal; PYCONV_PROGRESS=0 "
                        "also silences it)")
    p.add_argument("--no-memory", dest="memory", action="store_false",
                   help="skip the memory probes (one fresh process per layer and batch)")
    p.add_argument("--no-overhead", dest="overhead", action="store_false",
                   help="skip the tiny-layer overhead timing")
    p.add_argument("--omp-passive", action="store_true",
                   help="set OMP_WAIT_POLICY=PASSIVE for the peers (PyTorch's OpenMP threads "
                        "then sleep instead of spinning at barriers, which helps them when "
                        "other processes hold cores; not the default users get)")
    p.add_argument("--quick", action="store_true",
                   help="three small layers, few repeats: a smoke run of every code path")
    # whole networks (pyconv/bench_nets.py)
    p.add_argument("--nets", action="store_true",
                   help="the network benchmark (ResNet-50 v1/v2, Inception v3, MobileNet v1, "
                        "VGG-16) against TF-Slim, PyTorch and ONNX Runtime instead of the layers")
    p.add_argument("--net", dest="nets_list", action="append", default=None, metavar="NAME",
                   help="with --nets: only this net (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="with --nets: the weights' seed")
    p.add_argument("--_tf-worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--_memory-probe", default=None, help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args._tf_worker is not None:
        _tf_worker(args._tf_worker)
        return 0
    if args._memory_probe is not None:
        print(json.dumps(_memory_probe(json.loads(args._memory_probe))))
        return 0

    if args.nets:
        from . import bench_nets

        args.argv = list(sys.argv[1:] if argv is None else argv)
        if args.peers == ",".join(PEERS):  # the layer bench's default: the nets' own
            args.peers = None
        if args.rtol == RTOL:
            args.rtol = bench_nets.RTOL
        return bench_nets.run(args)
    usable = machine_info()["cores_usable"] or 1
    quick = args.quick
    args.batch = args.batch or [1, 8]
    args.threads = parse_threads(args.threads or ["1", "all"], usable)
    args.repeat = args.repeat or (3 if quick else 30)
    args.min_time = args.min_time if args.min_time is not None else (0.01 if quick else 0.3)
    args.max_time = args.max_time if args.max_time is not None else 10 * args.min_time
    args.warmup = args.warmup if args.warmup is not None else (0.0 if quick else 0.1)
    layers_path = args.layers or LAYERS_CSV
    if not os.path.exists(layers_path):
        print(f"layer suite not found: {layers_path} (pass --layers PATH)", file=sys.stderr)
        return 2
    layers = load_layers(layers_path)
    ops_path = OPS_CSV if args.ops is None else args.ops
    if ops_path:
        if not os.path.exists(ops_path):
            print(f"operator rows not found: {ops_path} (pass --ops PATH or --ops '')",
                  file=sys.stderr)
            return 2
        layers += load_layers(ops_path)
    if quick:
        layers = quick_layers(layers)
    if args.op:
        layers = [layer for layer in layers if layer.op in args.op]
    if args.filter:
        layers = [layer for layer in layers if re.search(args.filter, layer.key)]
    if not layers:
        print("no layers selected", file=sys.stderr)
        return 2

    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # before torch loads libgomp
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PEER_CLASSES]
    if unknown:
        print(f"--peers: unknown peer(s) {unknown}; choose from {', '.join(PEERS)}",
              file=sys.stderr)
        return 2
    peers, skipped = [], {}
    for name in wanted:
        peer = PEER_CLASSES[name]()
        why = peer.missing()
        if why:
            skipped[name] = why
            continue
        peer.load()
        peers.append(peer)

    start = time.perf_counter()
    load_start = other_load()
    peak = fma_peak()
    info = machine_info()
    print(f"pyconv {pyconv.__version__} ({info['pyconv']['git'] or 'no git'}), ISA "
          f"{info['pyconv']['isa']}; {info['cpu_model']}, {usable} usable core(s)")
    print(f"FMA peak {peak[0]:.1f} GFLOP/s per thread ({peak[1]})" if peak[0]
          else "FMA peak unknown")
    for name, why in skipped.items():
        print(f"peer {name}: skipped ({why})")
    if load_start:
        print(f"other processes keep {load_start['others']:.1f} of {usable} cores busy "
              f"(hypervisor steal {load_start['steal']:.1f}); the 'busy' column says the same "
              f"per row. Rows measured on a busy machine mislead, multi-threaded ones most.")
    print(f"{len(layers)} layer(s) x batch {args.batch} x threads {args.threads}; a measurement "
          f"is the median of up to {args.repeat} calls (>= {args.min_time:g} s and 3 calls, "
          f"or {args.max_time:g} s) after {args.warmup:g} s of untimed calls; ratios are "
          f"time(pyconv)/time(peer)\n", flush=True)

    runner = Runner(args, layers, peers, peak, usable)
    overhead = None
    interrupted = False
    try:
        runner.run()
        if args.overhead:
            pyconv.set_num_threads(usable)
            overhead = tiny_overhead(rounds=5 if quick else 21, round_time=0.004 if quick
                                     else 0.02)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: summarising what was measured", file=sys.stderr)
    finally:
        for peer in peers:
            peer.close()
        pyconv.set_num_threads(usable)
    peak_end = fma_peak() if peak[1] == "measured" else peak
    if peak_end[0] and peak[0] and peak_end[0] > peak[0]:
        print(f"(the FMA peak measured at the end, {peak_end[0]:.1f} GFLOP/s, is higher than "
              f"at the start; fractions use the start value)")
    load_end = other_load()
    elapsed = time.perf_counter() - start

    peer_names = [p.name for p in peers]
    summary = summarize(runner.results, peer_names, layers, peak, max(args.threads), overhead)
    print_summary(summary, peer_names, runner.memory, overhead, peak, elapsed)
    busy = [r for r in runner.results if r.get("cpu") and r["cpu"]["others"] >= 0.25]
    if busy:
        print(f"{len(busy)} of {len(runner.results)} rows were measured while other processes "
              f"kept >= 0.25 core busy (column 'busy'); their ratios are suspect.")

    if args.json:
        info["fma_peak_gflops"] = {"per_thread": peak[0], "source": peak[1],
                                   "at_end": peak_end[0]}
        info["other_load"] = {"start": load_start, "end": load_end}
        info["env"]["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY")
        info["versions"] = {"numpy": np.__version__, "pyconv": pyconv.__version__}
        info["peers"] = {}
        for peer in peers:
            try:
                if peer.name != "numpy":
                    info["versions"][PACKAGES[peer.name]] = peer.version()
                info["peers"][peer.name] = peer.info()
            except Exception as exc:  # a peer that never started
                info["peers"][peer.name] = {"error": str(exc)}
        doc = {
            "schema": "pyconv.bench/1",
            "command": ["python", "-m", "pyconv.bench", *(sys.argv[1:] if argv is None
                                                          else argv)],
            "machine": info,
            "config": {"layers": os.path.abspath(layers_path),
                       "ops": os.path.abspath(ops_path) if ops_path else None,
                       "op": args.op, "batch": args.batch,
                       "threads": args.threads, "peers": peer_names, "skipped_peers": skipped,
                       "repeat": args.repeat, "min_time": args.min_time,
                       "max_time": args.max_time, "warmup": args.warmup, "rtol": args.rtol,
                       "quick": quick,
                       "filter": args.filter},
            "interrupted": interrupted,
            "elapsed_s": elapsed,
            "results": runner.results,
            "memory": runner.memory,
            "overhead": overhead,
            "summary": summary,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
