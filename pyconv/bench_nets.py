"""``python -m pyconv.bench --nets``: whole networks, pyconv against TF-Slim,
PyTorch and ONNX Runtime.

Each net of ``NETS`` (``pyconv.nets`` at its default image size,
``is_training=False``) is built once in a :class:`pyconv.VariableStore`
seeded with ``--seed``: pyconv's own initializers give the weights, and
every peer runs with exactly those values:

tf     the identical ``tf_slim.nets`` graph (MobileNet v1, which tf_slim lacks,
       rebuilt from tf_slim layers by ``tools/tf_reference/gen_nets.py``; the TF
       side needs that file, i.e. a source checkout) in a ``tf.compat.v1``
       session, every variable initialised from pyconv's value of the same
       name; TensorFlow's default oneDNN build (``TF_ENABLE_ONEDNN_OPTS=1``), in
       one worker process per thread setting, because TF fixes its thread pools
       when it starts. The session fetches the logits (and Inception v3's
       auxiliary logits, which pyconv computes too).
torch  a ``torch.nn.Module`` replaying the operators of one pyconv forward:
       every call of ``pyconv._conv``'s operators (conv2d, depthwise_conv2d,
       pool2d, eltwise) is recorded with its arguments, and the NumPy glue
       between them (channel concat, residual add, spatial mean) is recognised
       from the values; batch norm folded into the convolutions as pyconv
       folds it; NCHW tensors. Built for each net, checked equal, then timed.
ort    that module exported with ``torch.onnx.export`` (TorchScript exporter,
       static batch) and run by ONNX Runtime's CPU provider.

Every peer's output must agree with pyconv's (max|d| / max(1, max|ref|) <=
``RTOL``) or it is flagged and not timed. Frameworks take turns on the same
inputs, each after :func:`pyconv.bench.quiesce` and a warm-up, and each
figure is a median. ``conv %`` is the share of pyconv's forward spent in
its convolution operators (conv2d and depthwise), ``C other %`` that of the
other C operators (pools, batch norm/bias/residual passes), the rest is
Python and NumPy glue; measured on separate calls with the operators wrapped
by :func:`pyconv.nets._count.count_operators`.
"""

import functools
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np

import pyconv
from pyconv import _conv

from . import bench as B

# name -> (pyconv nets_factory name, classes, tf module, tf function, tf arg scope)
NETS = {
    "resnet_v1_50": ("resnet_v1_50", 1000, "resnet_v1", "resnet_v1_50", "resnet_arg_scope"),
    "resnet_v2_50": ("resnet_v2_50", 1001, "resnet_v2", "resnet_v2_50", "resnet_arg_scope"),
    "inception_v3": ("inception_v3", 1001, "inception_v3", "inception_v3",
                     "inception_v3_arg_scope"),
    "mobilenet_v1": ("mobilenet_v1", 1001, "mobilenet_v1", "mobilenet_v1",
                     "mobilenet_v1_arg_scope"),
    "vgg_16": ("vgg_16", 1000, "vgg", "vgg_16", "vgg_arg_scope"),
}
PEERS = ("tf", "torch", "ort")
RTOL = 1e-3
CONV_OPS = ("conv2d", "depthwise_conv2d")
TRACED_OPS = ("conv2d", "depthwise_conv2d", "pool2d", "eltwise")
SRC_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rel_error(out, ref):
    """max |out - ref| / max(1, max |ref|); inf for a shape mismatch or NaN."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return math.inf
    err = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return err / scale if math.isfinite(err) else math.inf


# --------------------------------------------------------------------------- pyconv side


class PyconvNet:
    """One net in its own store: ``__call__(x)`` is a forward pass."""

    def __init__(self, name, seed):
        from pyconv.nets import nets_factory

        self.name = name
        factory, classes = NETS[name][:2]
        self.fn = nets_factory.get_network_fn(factory, classes)
        self.size = self.fn.default_image_size
        self.store = pyconv.VariableStore(seed=seed)
        self.extra = None  # a second output the peers also compute (aux logits)

    def __call__(self, x):
        with self.store:
            out, end_points = self.fn(x)
        aux = end_points.get("AuxLogits")
        self.extra = aux
        return out

    def weights(self):
        """``{TF variable name: value}`` of every variable."""
        with self.store:
            return {v.op_name: np.asarray(v.value) for v in pyconv.global_variables()}


def _key(a):
    return (a.__array_interface__["data"][0], a.nbytes)


class Trace:
    """The operator graph of one pyconv forward, recovered from the C calls.

    ``nodes[i]`` is a dict with ``op`` and ``inputs`` (node indices) and the
    op's constants; ``values[i]`` its NHWC value; node 0 is the input.
    Values produced outside the C operators (NumPy's concat, add, mean) are
    matched by value against the recorded ones; anything else raises
    :class:`TraceError`.
    """

    def __init__(self, x):
        self.nodes = [{"op": "input", "inputs": []}]
        self.values = [x]
        self.by_key = {_key(x): 0}

    def add(self, node, value):
        self.nodes.append(node)
        self.values.append(value)
        self.by_key[_key(value)] = len(self.nodes) - 1
        return len(self.nodes) - 1

    def resolve(self, a):
        i = self.by_key.get(_key(a))
        if i is not None and self.values[i].size == a.size:
            return i
        a = np.asarray(a)
        for finder in (self._concat, self._sum, self._mean):
            i = finder(a)
            if i is not None:
                self.by_key[_key(a)] = i
                return i
        raise TraceError(f"an operator input of shape {a.shape} comes from no recorded "
                         "operator nor a concat/add/mean of recorded values")

    def _candidates(self, pred):
        return [i for i in range(len(self.values) - 1, -1, -1)
                if self.values[i].ndim == 4 and pred(self.values[i])]

    def _concat(self, a):
        if a.ndim != 4:
            return None
        cands = self._candidates(lambda v: v.shape[:3] == a.shape[:3]
                                 and v.shape[3] < a.shape[3])
        parts, off = [], 0
        while off < a.shape[3]:
            for i in cands:
                c = self.values[i].shape[3]
                if off + c <= a.shape[3] and np.array_equal(self.values[i],
                                                            a[..., off:off + c]):
                    parts.append(i)
                    off += c
                    break
            else:
                return None
        return self.add({"op": "concat", "inputs": parts}, a) if len(parts) > 1 else None

    def _sum(self, a):
        if a.ndim != 4:
            return None
        cands = self._candidates(lambda v: v.shape == a.shape)
        for j in cands[:8]:  # the residual branch is one of the latest values
            for i in cands:
                if i != j and np.array_equal(self.values[i] + self.values[j], a):
                    return self.add({"op": "add", "inputs": [i, j]}, a)
        return None

    def _mean(self, a):
        if a.ndim != 4 or a.shape[1:3] != (1, 1):
            return None
        for i in self._candidates(lambda v: v.shape[0] == a.shape[0]
                                  and v.shape[3] == a.shape[3]):
            v = self.values[i]
            if np.array_equal(v.mean(axis=(1, 2), keepdims=True, dtype=v.dtype), a):
                return self.add({"op": "mean", "inputs": [i]}, a)
        return None


class TraceError(RuntimeError):
    pass


def _opt(a):
    return None if a is None else np.array(a, copy=True)


def trace_net(net, x):
    """(output, Trace) of one forward of ``net`` on ``x``."""
    trace = Trace(x)
    saved = {name: getattr(_conv, name) for name in TRACED_OPS}

    def conv(op, fn, inp, w, bias, pt, pb, pl, pr, sh, sw, dh, dw, act, *epi):
        result = fn(inp, w, bias, pt, pb, pl, pr, sh, sw, dh, dw, act, *epi)
        add_to = add_act = None
        if len(epi) == 6:  # the fused second output: act(conv + add_to)
            epi, (add_to, add_act) = epi[:4], epi[4:]
        out = result[0] if add_to is not None else result
        epi = tuple(epi) + (None,) * (4 - len(epi))
        inputs = [trace.resolve(inp)]
        if epi[3] is not None:
            inputs.append(trace.resolve(epi[3]))
        node = trace.add({"op": op, "inputs": inputs, "w": np.array(w), "bias": _opt(bias),
                          "pads": (pt, pb, pl, pr), "stride": (sh, sw), "dilation": (dh, dw),
                          "act": act, "pre": _opt(epi[0]), "scale": _opt(epi[1]),
                          "shift": _opt(epi[2])}, out)
        if add_to is not None:  # replayed as the separate add it stands for
            trace.add({"op": "eltwise", "inputs": [node, trace.resolve(add_to)], "pre": None,
                       "scale": None, "shift": None, "act": add_act}, result[1])
        return result

    def pool(inp, kind, kh, kw, sh, sw, pt, pb, pl, pr):
        out = saved["pool2d"](inp, kind, kh, kw, sh, sw, pt, pb, pl, pr)
        trace.add({"op": "pool", "inputs": [trace.resolve(inp)], "kind": kind,
                   "k": (kh, kw), "stride": (sh, sw), "pads": (pt, pb, pl, pr)}, out)
        return out

    def eltwise(x3, pre, scale, shift, residual, act):
        out = saved["eltwise"](x3, pre, scale, shift, residual, act)
        if x3.shape[2] != 1:
            raise TraceError("eltwise over channels-first data is not traced")
        src = trace.by_key.get(_key(x3))
        if src is None:  # made by NumPy: find its NHWC shape among the recorded ones
            shapes = [v.shape for v in trace.values[::-1]
                      if v.ndim == 4 and v.size == x3.size and v.shape[3] == x3.shape[1]]
            if not shapes:
                raise TraceError(f"an eltwise input of shape {x3.shape} has no NHWC shape")
            src = trace.resolve(x3.reshape(shapes[0]))
        shape = trace.values[src].shape
        inputs = [src] + ([trace.resolve(residual.reshape(shape))] if residual is not None
                          else [])
        trace.add({"op": "eltwise", "inputs": inputs, "pre": _opt(pre), "scale": _opt(scale),
                   "shift": _opt(shift), "act": act}, out.reshape(shape))
        return out

    _conv.conv2d = functools.partial(conv, "conv", saved["conv2d"])
    _conv.depthwise_conv2d = functools.partial(conv, "depthwise", saved["depthwise_conv2d"])
    _conv.pool2d = pool
    _conv.eltwise = eltwise
    try:
        out = net(x)
        trace.output = trace.resolve(out)
        trace.output_shape = out.shape
        trace.extra = None
        if net.extra is not None:
            trace.extra = trace.resolve(net.extra)
            trace.extra_shape = net.extra.shape
    finally:
        for name, fn in saved.items():
            setattr(_conv, name, fn)
    return out, trace


# --------------------------------------------------------------------------- torch


def torch_module(trace):
    """A ``torch.nn.Module`` computing ``trace`` on NCHW float32 input; returns
    the output (and the extra output) in pyconv's layout and shape."""
    import torch
    import torch.nn.functional as F

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def act_fn(act):
        return {0: None, 1: torch.relu, 2: lambda y: torch.clamp(y, 0.0, 6.0)}[act]

    class Replay(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []
            n = 0
            for node in trace.nodes[1:]:
                op = node["op"]
                if op in ("conv", "depthwise"):
                    w = node["w"].astype(np.float32)
                    cout = w.shape[3] * (w.shape[2] if op == "depthwise" else 1)
                    if op == "conv":
                        w4 = w.transpose(3, 2, 0, 1)
                    else:  # output channel c*m + j uses w[:, :, c, j]
                        w4 = w.transpose(2, 3, 0, 1).reshape(cout, 1, w.shape[0], w.shape[1])
                    b = np.zeros(cout, np.float64) if node["bias"] is None \
                        else node["bias"].astype(np.float64)
                    if node["pre"] is not None:
                        b = b + node["pre"]
                    if node["scale"] is not None:  # batch norm folded as pyconv folds it
                        w4 = w4 * node["scale"].astype(np.float32).reshape(-1, 1, 1, 1)
                        b = b * node["scale"]
                    if node["shift"] is not None:
                        b = b + node["shift"]
                    pt, pb, pl, pr = node["pads"]
                    self.register_buffer(f"w{n}", t(w4))
                    self.register_buffer(f"b{n}", t(b))
                    self.steps.append(("conv", node["inputs"], f"w{n}", f"b{n}",
                                       (pl, pr, pt, pb) if (pt != pb or pl != pr) else None,
                                       (0, 0) if (pt != pb or pl != pr) else (pt, pl),
                                       node["stride"], node["dilation"],
                                       w.shape[2] if op == "depthwise" else 1,
                                       act_fn(node["act"])))
                elif op == "pool":
                    kh, kw = node["k"]
                    pt, pb, pl, pr = node["pads"]
                    sym = pt == pb and pl == pr and 2 * pt <= kh and 2 * pl <= kw
                    mult = None
                    if node["kind"] == 1 and not sym:  # average of the in-bounds part
                        h, wd = trace.values[node["inputs"][0]].shape[1:3]
                        ones = torch.ones(1, 1, h, wd)
                        cnt = F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), (kh, kw),
                                           node["stride"])
                        self.register_buffer(f"m{n}", 1.0 / cnt)
                        mult = f"m{n}"
                    self.steps.append(("pool", node["inputs"], node["kind"], (kh, kw),
                                       node["stride"], (pt, pb, pl, pr), sym, mult))
                elif op == "eltwise":
                    a = None if node["scale"] is None else node["scale"].astype(np.float64)
                    b = None
                    if node["pre"] is not None:
                        b = node["pre"] * (1.0 if a is None else a)
                    if node["shift"] is not None:
                        b = node["shift"] + (0.0 if b is None else b)
                    if a is not None:
                        self.register_buffer(f"a{n}", t(a).reshape(1, -1, 1, 1))
                    if b is not None:
                        self.register_buffer(f"b{n}", t(b).reshape(1, -1, 1, 1))
                    self.steps.append(("eltwise", node["inputs"],
                                       f"a{n}" if a is not None else None,
                                       f"b{n}" if b is not None else None,
                                       act_fn(node["act"])))
                else:
                    self.steps.append((op, node["inputs"]))
                n += 1
            self.output = trace.output
            self.out_shape = tuple(trace.output_shape)
            self.extra = trace.extra
            self.extra_shape = tuple(trace.extra_shape) if trace.extra is not None else None

        def forward(self, x):
            vals = [x]
            for step in self.steps:
                op, ins = step[0], step[1]
                v = vals[ins[0]]
                if op == "conv":
                    _, _, w, b, pad, padding, stride, dil, groups, act = step
                    if pad is not None:
                        v = F.pad(v, pad)
                    y = F.conv2d(v, getattr(self, w), getattr(self, b), stride, padding, dil,
                                 groups)
                    if len(ins) > 1:
                        y = y + vals[ins[1]]
                    if act is not None:
                        y = act(y)
                elif op == "pool":
                    _, _, kind, k, stride, (pt, pb, pl, pr), sym, mult = step
                    if kind == 0:
                        if sym:
                            y = F.max_pool2d(v, k, stride, (pt, pl))
                        else:
                            y = F.max_pool2d(F.pad(v, (pl, pr, pt, pb), value=-math.inf), k,
                                             stride)
                    elif sym:
                        y = F.avg_pool2d(v, k, stride, (pt, pl), count_include_pad=False)
                    else:
                        y = F.avg_pool2d(F.pad(v, (pl, pr, pt, pb)), k, stride) \
                            * getattr(self, mult)
                elif op == "eltwise":
                    _, _, a, b, act = step
                    y = v
                    if a is not None:
                        y = y * getattr(self, a)
                    if b is not None:
                        y = y + getattr(self, b)
                    if len(ins) > 1:
                        y = y + vals[ins[1]]
                    if act is not None:
                        y = act(y)
                elif op == "concat":
                    y = torch.cat([vals[i] for i in ins], 1)
                elif op == "add":
                    y = v + vals[ins[1]]
                elif op == "mean":
                    y = v.mean((2, 3), keepdim=True)
                vals.append(y)
            out = vals[self.output].permute(0, 2, 3, 1).reshape(
                (x.shape[0],) + self.out_shape[1:])
            if self.extra is None:
                return out
            return out, vals[self.extra].permute(0, 2, 3, 1).reshape(
                (x.shape[0],) + self.extra_shape[1:])

    return Replay().eval()


class TorchNetPeer:
    """The replayed module on NCHW tensors and, converted, on channels-last
    ones; both are checked, the faster counts (``variant`` in the JSON)."""

    name = "torch"

    def missing(self):
        return None if importlib.util.find_spec("torch") else "torch is not installed"

    def prepare(self, net, trace, xs, workdir):
        import torch

        self.torch = torch
        nchw = torch_module(trace)
        self.modules = {"nchw": nchw,
                        "channels_last": torch_module(trace).to(
                            memory_format=torch.channels_last)}
        self.xs = {}
        for b, x in xs.items():
            t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
            self.xs[b] = {"nchw": t,
                          "channels_last": t.contiguous(memory_format=torch.channels_last)}
        self.variant = None

    def run(self, batch, threads):
        """The pyconv-shaped outputs of both variants (both must agree)."""
        self.torch.set_num_threads(threads)
        outs = []
        with self.torch.inference_mode():
            for v, m in self.modules.items():
                y = m(self.xs[batch][v])
                outs.append((y[0] if isinstance(y, tuple) else y).numpy())
        return outs

    def timer(self, batch, threads, policy):
        torch = self.torch
        torch.set_num_threads(threads)
        best = None
        with torch.inference_mode():
            for v, m in self.modules.items():
                x = self.xs[batch][v]
                times = B.measure(lambda m=m, x=x: m(x), policy)
                if best is None or B._median(times) < B._median(best[1]):
                    best = (v, times)
        self.variant = best[0]
        return best[1]

    def pids(self):
        return []

    def end(self):
        self.modules = self.xs = None

    def close(self):
        pass

    def version(self):
        return B._dist_version("torch")


class OrtNetPeer:
    name = "ort"

    def missing(self):
        for mod in ("onnxruntime", "torch", "onnx"):
            if importlib.util.find_spec(mod) is None:
                return f"{mod} is not installed"
        return None

    def prepare(self, net, trace, xs, workdir):
        import onnxruntime as ort
        import torch

        self.ort = ort
        module = torch_module(trace)
        self.paths, self.sessions = {}, {}
        self.xs = {b: np.ascontiguousarray(x.transpose(0, 3, 1, 2)) for b, x in xs.items()}
        for b, x in self.xs.items():
            path = os.path.join(workdir, f"{net.name}-{b}.onnx")
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(module, (torch.from_numpy(x),), path, dynamo=False,
                                  input_names=["x"], opset_version=17)
            self.paths[b] = path

    def _session(self, batch, threads):
        key = (batch, threads)
        if key not in self.sessions:
            so = self.ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self.sessions[key] = self.ort.InferenceSession(
                self.paths[batch], so, providers=["CPUExecutionProvider"])
        return self.sessions[key]

    def run(self, batch, threads):
        return self._session(batch, threads).run(None, {"x": self.xs[batch]})[0]

    def timer(self, batch, threads, policy):
        s, feed = self._session(batch, threads), {"x": self.xs[batch]}
        return B.measure(lambda: s.run(None, feed), policy)

    def pids(self):
        return []

    def end(self):
        self.sessions, self.xs = {}, None

    def close(self):
        pass

    def version(self):
        return B._dist_version("onnxruntime")


class TFNetPeer(B._TFWorkers):
    """tf_slim's graph in a session, in one worker process per thread count."""

    name = "tf"

    def missing(self):
        if importlib.util.find_spec("tensorflow") is None:
            return "tensorflow is not installed"
        if importlib.util.find_spec("tf_slim") is None:
            return "tf_slim is not installed"
        if not os.path.exists(os.path.join(SRC_ROOT, "tools", "tf_reference", "gen_nets.py")):
            return "needs tools/tf_reference/gen_nets.py (a source checkout)"
        return None

    _worker_module = "pyconv.bench_nets"

    def __init__(self):
        self._start("pyconv-bench-nets-tf-")

    def _worker_env(self, env):
        env["TF_ENABLE_ONEDNN_OPTS"] = "1"  # TF's default build, set so no helper changes it
        env["PYTHONPATH"] = os.pathsep.join(p for p in (SRC_ROOT, env.get("PYTHONPATH")) if p)
        return env

    def prepare(self, net, trace, xs, workdir):
        self.files = {"weights": os.path.join(workdir, f"{net.name}-weights.npz")}
        np.savez(self.files["weights"], **net.weights())
        for b, x in xs.items():
            self.files[b] = os.path.join(workdir, f"{net.name}-x{b}.npy")
            np.save(self.files[b], x)
        self.net = net.name
        self.prepared = set()

    def _prepare(self, batch, threads):
        if (batch, threads) in self.prepared:
            return None
        out = os.path.join(self.logdir, f"out-{threads}.npy")
        self._ask(threads, {"op": "prepare", "net": self.net, "weights": self.files["weights"],
                            "x": self.files[batch], "out": out, "batch": batch})
        self.prepared = {k for k in self.prepared if k[1] != threads} | {(batch, threads)}
        try:
            return np.load(out)
        finally:
            os.remove(out)

    def run(self, batch, threads):
        y = self._prepare(batch, threads)
        if y is None:
            y = self._prepare_again(batch, threads)
        return y

    def _prepare_again(self, batch, threads):
        self.prepared.discard((batch, threads))
        return self._prepare(batch, threads)

    def timer(self, batch, threads, policy):
        self._prepare(batch, threads)
        return self._ask(threads, {"op": "time", "policy": policy.__dict__})["times"]

    def pids(self):
        return [p.pid for p, _ in self.workers.values()]

    def end(self):
        for threads in list(self.workers):
            try:
                self._ask(threads, {"op": "release"})
            except (OSError, RuntimeError, ValueError):
                pass
        self.prepared = set()

    def version(self):
        return (self.hello or {}).get("version")


def _tf_worker(threads):
    """The TensorFlow side of TFNetPeer: JSON requests on stdin, a JSON reply a line."""
    reply_stream = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(**kw):
        reply_stream.write(json.dumps({"ok": True, **kw}) + "\n")

    sys.path.insert(0, os.path.join(SRC_ROOT, "tools", "tf_reference"))
    sys.path.insert(0, os.path.join(SRC_ROOT, "tests"))
    import gen_nets

    T = gen_nets._tf()
    tf, v1, slim = T.tf, T.v1, T.slim
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    reply(version=tf.__version__, TF_ENABLE_ONEDNN_OPTS=os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
    state = {}
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        try:
            if op == "prepare":
                if state.get("sess") is not None:
                    state["sess"].close()
                state = {}
                _, classes, mod_name, fn_name, scope_name = NETS[request["net"]]
                module = gen_nets._module(T, mod_name)
                x_value = np.load(request["x"])
                weights = np.load(request["weights"])
                graph = tf.Graph()
                with graph.as_default():
                    x = v1.placeholder(tf.float32, x_value.shape)
                    with slim.arg_scope(getattr(module, scope_name)(is_training=False)
                                        if mod_name == "mobilenet_v1"
                                        else getattr(module, scope_name)()):
                        out, end_points = getattr(module, fn_name)(
                            x, num_classes=classes, is_training=False)
                    fetch = [out] + ([end_points["AuxLogits"]] if "AuxLogits" in end_points
                                     else [])
                    variables = v1.global_variables()
                    config = v1.ConfigProto(intra_op_parallelism_threads=threads,
                                            inter_op_parallelism_threads=1)
                    sess = v1.Session(graph=graph, config=config)
                    missing = [v.op.name for v in variables if v.op.name not in weights]
                    if missing:
                        raise KeyError(f"pyconv has no variables {missing[:5]}")
                    sess.run([v.initializer for v in variables],
                             {v.initializer.inputs[1]: weights[v.op.name] for v in variables})
                y = sess.run(fetch, {x: x_value})
                np.save(request["out"], y[0])
                state = {"sess": sess, "fetch": fetch, "feed": {x: x_value}}
                reply()
            elif op == "time":
                sess, fetch, feed = state["sess"], state["fetch"], state["feed"]
                reply(times=B.measure(lambda: sess.run(fetch, feed),
                                      B.Policy(**request["policy"])))
            elif op == "release":
                if state.get("sess") is not None:
                    state["sess"].close()
                state = {}
                reply()
            elif op == "quit":
                reply()
                return
        except Exception as exc:
            reply_stream.write(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
                               + "\n")


PEER_CLASSES = {"tf": TFNetPeer, "torch": TorchNetPeer, "ort": OrtNetPeer}


# --------------------------------------------------------------------------- runner


def _share(net, x, calls):
    """Medians over ``calls`` forwards of (conv share, other-C share) of the wall time."""
    from pyconv.nets._count import count_operators

    conv_shares, other_shares = [], []
    saved = {n: getattr(_conv, n) for n in TRACED_OPS}
    spent = {"conv": 0.0, "other": 0.0}

    def wrap(fn, kind):
        def timed(*a):
            t0 = time.perf_counter()
            try:
                return fn(*a)
            finally:
                spent[kind] += time.perf_counter() - t0
        return timed

    del count_operators  # the same wrapping, split by kind
    for n in TRACED_OPS:
        setattr(_conv, n, wrap(saved[n], "conv" if n in CONV_OPS else "other"))
    try:
        for _ in range(calls):
            spent["conv"] = spent["other"] = 0.0
            t0 = time.perf_counter()
            net(x)
            total = time.perf_counter() - t0
            conv_shares.append(spent["conv"] / total)
            other_shares.append(spent["other"] / total)
    finally:
        for n, fn in saved.items():
            setattr(_conv, n, fn)
    return statistics.median(conv_shares), statistics.median(other_shares)


def run(args):
    usable = B.machine_info()["cores_usable"] or 1
    quick = args.quick
    batches = args.batch or ([1] if quick else [1, 8])
    threads_all = B.parse_threads(args.threads or ["1", "all"], usable)
    nets = args.nets_list or list(NETS)
    for n in nets:
        if n not in NETS:
            print(f"--net: unknown net {n!r}; choose from {', '.join(NETS)}", file=sys.stderr)
            return 2
    policy = B.Policy(repeat=args.repeat or (3 if quick else 10),
                      min_time=args.min_time if args.min_time is not None else
                      (0.0 if quick else 0.5),
                      max_time=args.max_time if args.max_time is not None else
                      (1.0 if quick else 3.0),
                      warmup=args.warmup if args.warmup is not None else (0.0 if quick else 0.2))
    wanted = [p.strip() for p in args.peers.split(",") if p.strip()] \
        if args.peers is not None else list(PEERS)
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
        else:
            peers.append(peer)
    start = time.perf_counter()
    load_start = B.other_load()
    info = B.machine_info()
    print(f"pyconv {pyconv.__version__} ({info['pyconv']['git'] or 'no git'}), ISA "
          f"{info['pyconv']['isa']}; {info['cpu_model']}, {usable} usable core(s)")
    for name, why in skipped.items():
        print(f"peer {name}: skipped ({why})")
    if load_start:
        print(f"other processes keep {load_start['others']:.1f} of {usable} cores busy "
              f"(hypervisor steal {load_start['steal']:.1f}); column 'busy' per row")
    print(f"nets {nets} x batch {batches} x threads {threads_all}; median of up to "
          f"{policy.repeat} calls (>= {policy.min_time:g} s and 3 calls, or "
          f"{policy.max_time:g} s) after {policy.warmup:g} s warm-up; ratio = "
          f"time(pyconv)/time(peer)\n", flush=True)
    results = []
    table = _Table([("net", 13), ("batch", 5), ("thr", 3), ("pyconv ms", 9),
                    *[(f"{p.name} ms", 9) for p in peers], *[(f"/{p.name}", 6) for p in peers],
                    ("conv %", 6), ("C other %", 9), ("busy", 4)])
    table.header()
    workdir = tempfile.mkdtemp(prefix="pyconv-bench-nets-")
    interrupted = False
    try:
        for name in nets:
            net = PyconvNet(name, args.seed)
            rng = np.random.default_rng(args.seed)
            xs = {b: rng.uniform(-1, 1, (b, net.size, net.size, 3)).astype(np.float32)
                  for b in batches}
            net(xs[batches[0]])  # creates the variables (a failed trace leaves them whole)
            trace, trace_error = None, None
            try:
                ref1, trace = trace_net(net, xs[batches[0]])
            except TraceError as exc:
                trace_error = str(exc)
            ready = {}
            for peer in peers:
                if peer.name in ("torch", "ort") and trace is None:
                    ready[peer.name] = f"not traced: {trace_error}"
                    continue
                try:
                    peer.prepare(net, trace, xs, workdir)
                    ready[peer.name] = None
                except Exception as exc:  # a peer that cannot run this net is reported
                    ready[peer.name] = f"{type(exc).__name__}: {exc}"[:300]
            trace = None
            for batch in batches:
                x = xs[batch]
                ref = net(x)
                for threads in threads_all:
                    pyconv.set_num_threads(threads)
                    rec = {"net": name, "batch": batch, "threads": threads, "peers": {}}
                    mon = B.CpuMonitor()
                    mon.start([pid for p in peers for pid in p.pids()])
                    for peer in peers:
                        pr = rec["peers"][peer.name] = {}
                        if ready.get(peer.name):
                            pr["error"] = ready[peer.name]
                            continue
                        try:
                            outs = peer.run(batch, threads)
                            outs = outs if isinstance(outs, list) else [outs]
                            err = max(rel_error(o, ref) for o in outs)
                        except Exception as exc:
                            pr["error"] = f"{type(exc).__name__}: {exc}"[:300]
                            continue
                        pr["rel_error"] = err
                        if not err <= args.rtol:
                            pr["error"] = f"disagrees with pyconv: rel error {err:.3g}"
                    pids = [pid for p in peers for pid in p.pids()]
                    B.quiesce(pids)
                    rec["pyconv_times"] = B.measure(lambda: net(x), policy)
                    rec["pyconv_ms"] = B._median(rec["pyconv_times"]) * 1e3
                    for peer in peers:
                        pr = rec["peers"][peer.name]
                        if "error" in pr:
                            continue
                        B.quiesce(pids)
                        try:
                            pr["times"] = peer.timer(batch, threads, policy)
                        except Exception as exc:
                            pr["error"] = f"{type(exc).__name__}: {exc}"[:300]
                            continue
                        pr["ms"] = B._median(pr["times"]) * 1e3
                        if getattr(peer, "variant", None):
                            pr["variant"] = peer.variant
                        pr["ratio"] = rec["pyconv_ms"] / pr["ms"]
                    rec["conv_share"], rec["c_other_share"] = _share(
                        net, x, 3)
                    rec["cpu"] = mon.stop()
                    results.append(rec)
                    cells = [name, batch, threads, f"{rec['pyconv_ms']:.1f}"]
                    cells += [f"{rec['peers'][p.name]['ms']:.1f}" if "ms" in rec["peers"][p.name]
                              else "-" for p in peers]
                    cells += [f"{rec['peers'][p.name]['ratio']:.2f}"
                              if "ratio" in rec["peers"][p.name] else "-" for p in peers]
                    cells += [f"{100 * rec['conv_share']:.0f}",
                              f"{100 * rec['c_other_share']:.0f}",
                              f"{rec['cpu']['others']:.1f}" if rec.get("cpu") else "-"]
                    table.row(cells)
                    for p in peers:
                        if "error" in rec["peers"][p.name]:
                            print(f"    {p.name}: {rec['peers'][p.name]['error']}", flush=True)
            for peer in peers:
                peer.end()
            net = None
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: summarising what was measured", file=sys.stderr)
    finally:
        for peer in peers:
            peer.close()
        pyconv.set_num_threads(usable)
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - start
    summary = summarize(results, [p.name for p in peers], max(threads_all))
    print_summary(summary, elapsed)
    if args.json:
        info["other_load"] = {"start": load_start, "end": B.other_load()}
        info["versions"] = {"numpy": np.__version__, "pyconv": pyconv.__version__}
        for peer in peers:
            try:
                info["versions"][peer.name] = peer.version()
            except Exception:
                pass
        doc = {"schema": "pyconv.bench.nets/1",
               "command": ["python", "-m", "pyconv.bench", *args.argv],
               "machine": info,
               "config": {"nets": nets, "batch": batches, "threads": threads_all,
                          "peers": [p.name for p in peers], "skipped_peers": skipped,
                          "policy": policy.__dict__, "rtol": args.rtol, "seed": args.seed,
                          "quick": quick},
               "interrupted": interrupted, "elapsed_s": elapsed, "results": results,
               "summary": summary}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
        print(f"wrote {args.json}")
    return 130 if interrupted else 0


class _Table:
    def __init__(self, cols):
        self.cols = cols

    def _line(self, cells):
        return "  ".join(f"{str(c):{'<' if i == 0 else '>'}{w}}"
                         for i, (c, (_, w)) in enumerate(zip(cells, self.cols)))

    def header(self):
        print(self._line([c[0] for c in self.cols]))
        print(self._line(["-" * c[1] for c in self.cols]), flush=True)

    def row(self, cells):
        print(self._line(cells), flush=True)


def summarize(results, peer_names, threads):
    """Geomeans of time(pyconv)/time(peer) at ``threads`` threads, over the rows timed."""
    out = {"threads": threads, "geomean": {}}
    rows = [r for r in results if r["threads"] == threads]
    for p in peer_names:
        ratios = [r["peers"][p]["ratio"] for r in rows if "ratio" in r["peers"].get(p, {})]
        out["geomean"][p] = {"value": B._geomean(ratios), "rows": len(ratios)}
    best = []
    for r in rows:
        t = [r["peers"][p]["ms"] for p in ("torch", "ort") if "ms" in r["peers"].get(p, {})]
        if t:
            best.append(r["pyconv_ms"] / min(t))
    out["geomean"]["best_torch_ort"] = {"value": B._geomean(best), "rows": len(best)}
    out["targets"] = {"vs_tf <= 0.6": out["geomean"].get("tf", {}).get("value"),
                      "vs_best_torch_ort <= 0.8": out["geomean"]["best_torch_ort"]["value"]}
    return out


def print_summary(summary, elapsed):
    print(f"\nsummary at {summary['threads']} thread(s), geomean of time(pyconv)/time(peer):")
    for p, g in summary["geomean"].items():
        v = g["value"]
        print(f"  {p:>15}: {'-' if v is None else f'{v:.2f}'} over {g['rows']} row(s)")
    print(f"elapsed {elapsed:.0f} s")


def main(argv=None):
    """``python -m pyconv.bench_nets [...]``, the same as ``python -m pyconv.bench --nets``."""
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) == 2 and argv[0] == "--_tf-worker":
        _tf_worker(int(argv[1]))
        return 0
    return B.main(["--nets", *argv])


if __name__ == "__main__":
    sys.exit(main())
