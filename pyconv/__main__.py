"""Commands: ``python -m pyconv demo``, ``python -m pyconv explain N --kernel K --stride S``,
``python -m pyconv inspect CKPT [--tensor NAME] [--all]`` and
``python -m pyconv nets [NAME --checkpoint CKPT [--image FILE]]``."""

import argparse
import sys
import time

import numpy as np

import pyconv
from pyconv.geometry import conv2d_same_padding, effective_kernel


def _slim_image(n):
    """TF-Slim's resnet_utils test image: value = row + column."""
    r = np.arange(n, dtype=np.float32)
    return (r[:, None] + r[None, :]).reshape(1, n, n, 1)


def _grid(a):
    rows = [" ".join(f"{v:5g}" for v in row) for row in a[0, :, :, 0]]
    return rows


def _side_by_side(blocks, gap=4):
    """Prints (title, lines) blocks next to each other."""
    widths = [max(len(t), *(len(line) for line in lines)) for t, lines in blocks]
    height = max(len(lines) for _, lines in blocks)
    out = ["".ljust(0) + (" " * gap).join(t.ljust(w) for (t, _), w in zip(blocks, widths))]
    for i in range(height):
        out.append((" " * gap).join(
            (lines[i] if i < len(lines) else "").ljust(w) for (_, lines), w in zip(blocks, widths)))
    return "\n".join(line.rstrip() for line in out)


def demo(args):
    kernel = _slim_image(3).reshape(3, 3, 1, 1)
    print("pyconv demo: TF-Slim's resnet_utils example (input and 3x3 kernel: value = row + col)")
    print("conv2d_same pads k-1 = 2 in total (1 before, 1 after) whatever the input size;")
    print("conv2d(stride=2, 'SAME') pads by TF's SAME rule, which depends on the input size.\n")
    for n in (4, 5):
        x = _slim_image(n)
        with pyconv.VariableStore(seed=0):
            common = dict(activation_fn=None, weights_initializer=kernel)
            y1 = pyconv.conv2d(x, 1, 3, stride=1, padding="SAME", scope="Conv", **common)
            y2 = pyconv.subsample(y1, 2)
            with pyconv.variable_scope(pyconv.get_variable_scope(), reuse=True):
                y3 = pyconv.conv2d_same(x, 1, 3, stride=2, scope="Conv")
                y4 = pyconv.conv2d(x, 1, 3, stride=2, padding="SAME", scope="Conv",
                                   activation_fn=None)
        kind = "even" if n % 2 == 0 else "odd"
        same_pad = pyconv.conv_padding(n, 3, 2, "SAME")
        print(f"== {n}x{n} input ({kind}); SAME stride 2 pads {same_pad[0]} before, "
              f"{same_pad[1]} after ==")
        print(_side_by_side([
            ("conv2d(stride=1, SAME)", _grid(y1)),
            ("subsample(.., 2)", _grid(y2)),
            ("conv2d_same(stride=2)", _grid(y3)),
            ("conv2d(stride=2, SAME)", _grid(y4)),
        ]))
        agree = np.array_equal(y3, y2)
        trap = np.array_equal(y4, y2)
        print(f"conv2d_same == conv2d(stride 1) + subsample: {'yes' if agree else 'NO'}")
        print(f"conv2d(stride=2, SAME) == conv2d(stride 1) + subsample: "
              f"{'yes' if trap else 'no - the even-size trap: its windows are shifted by one'}\n")

    # one realistic layer: ResNet-50 block3 3x3 conv, batch 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 14, 14, 256)).astype(np.float32)
    w = (rng.standard_normal((3, 3, 256, 256)) * 0.02).astype(np.float32)
    pyconv.nn.conv2d(x, w, 1, "SAME")
    times = []
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline or len(times) < 3:
        t0 = time.perf_counter()
        pyconv.nn.conv2d(x, w, 1, "SAME", activation="relu")
        times.append(time.perf_counter() - t0)
    best = float(np.median(times))
    flops = 2 * 14 * 14 * 256 * 3 * 3 * 256
    print(f"timing: ResNet-50 block3 conv2 (1x14x14x256, 3x3x256x256, SAME, relu): "
          f"median {best * 1e3:.2f} ms over {len(times)} runs = {flops / best / 1e9:.1f} GFLOP/s "
          f"({pyconv.get_num_threads()} threads, {pyconv._conv.isa()} kernels)")
    return 0


def explain(args):
    n, k, s, r = args.size, args.kernel, args.stride, args.rate
    k_eff = effective_kernel(k, r)
    print(f"input {n}, kernel {k}, stride {s}, rate {r} (k_eff = {k_eff})\n")
    rows = []
    for name in ("SAME", "VALID", "FULL"):
        try:
            out = pyconv.conv_output_size(n, k, s, name, r)
            before, after = pyconv.conv_padding(n, k, s, name, r)
            rows.append((name, str(out), str(before), str(after), ""))
        except ValueError:
            rows.append((name, "-", "-", "-", "no output: kernel larger than input"))
    if s == 1:
        before, after = pyconv.conv_padding(n, k, 1, "SAME", r)
        note = "stride 1: same as SAME"
    else:
        before, after = conv2d_same_padding(k, r)
        note = "explicit pads, then VALID"
    out = pyconv.conv_output_size(n, k, s, [(before, after), (before, after)], r)[0]
    same_out = pyconv.conv_output_size(n, k, s, "SAME", r)
    same_pads = pyconv.conv_padding(n, k, s, "SAME", r)
    if s > 1 and (before, after) != same_pads:
        note += "; differs from SAME here (windows shifted)"
    rows.append(("conv2d_same", str(out), str(before), str(after), note))
    header = ("padding", "output", "before", "after", "")
    widths = [max(len(row[i]) for row in rows + [header]) for i in range(5)]
    for row in [header] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    if s > 1 and out != same_out:
        print(f"\nnote: conv2d_same gives {out} outputs where SAME gives {same_out}")
    print()
    for name in ("SAME", "VALID", "FULL"):
        try:
            print(pyconv.explain_padding(n, k, s, name, r))
        except ValueError:
            pass
    if s > 1:
        print(pyconv.explain_padding(n, k, s, [(before, after)] * 2, r).split("\n")[0]
              .replace("height: ", "conv2d_same ", 1))
    return 0


# --------------------------------------------------------------------------- nets

# Input scaling of the zoo checkpoints (tensorflow/models preprocessing):
# VGG-style mean subtraction for VGG and ResNet v1, [-1, 1] for the others.
_VGG_MEANS = np.array([123.68, 116.78, 103.94], np.float32)


def _net_names():
    from pyconv.nets import nets_factory
    return list(nets_factory.networks_map)


def _logits_biases(name):
    """The name of the logits layer's biases of the net ``name``."""
    if name.startswith(("resnet_v1", "resnet_v2")):
        return f"{name}/logits/biases"
    if name.startswith(("vgg", "alexnet", "overfeat")):
        return f"{name}/fc8/biases"
    if name == "inception_v1":
        return "InceptionV1/Logits/Conv2d_0c_1x1/biases"
    if name.startswith("inception"):
        return f"InceptionV{name[-1]}/Logits/Conv2d_1c_1x1/biases"
    return "MobilenetV1/Logits/Conv2d_1c_1x1/biases"


def _classes_in_checkpoint(name, shapes):
    """The logits layer's class count in a checkpoint's ``{name: shape}``."""
    biases = _logits_biases(name)
    shape = shapes.get(biases)
    if shape is None or len(shape) != 1:
        raise ValueError(f"the checkpoint has no {biases!r}: it is not a checkpoint of {name}")
    return int(shape[0])


def _load_image(path, size, name):
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("decoding --image needs Pillow: pip install 'pyconv[pillow]'") from None
    with Image.open(path) as img:
        img = img.convert("RGB")
        w, h = img.size
        side = min(w, h)
        img = img.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
        img = img.resize((size, size), Image.BILINEAR)
        rgb = np.asarray(img, np.float32)
    if name.startswith(("vgg", "resnet_v1")):
        return (rgb - _VGG_MEANS)[None]
    return (rgb / 127.5 - 1.0)[None]


def _forward_ms(fn, x, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def nets_command(args):
    from pyconv.nets import nets_factory
    from pyconv.nets._count import count_operators

    if args.name is not None and args.name not in nets_factory.networks_map:
        raise ValueError(f"unknown net {args.name!r}; choose one of {', '.join(_net_names())}")
    if args.image and not args.checkpoint:
        raise ValueError("--image needs --checkpoint CKPT")
    if not args.checkpoint:
        names = _net_names() if args.name is None else [args.name]
        print(f"pyconv.nets on random weights, batch 1, {pyconv.get_num_threads()} threads, "
              f"{pyconv._conv.isa()} kernels (forward: median of {args.repeat} calls after "
              "the first)")
        print(f"{'net':<18} {'input':>7} {'params':>12} {'mult-adds':>14} {'forward ms':>11}")
        for name in names:
            classes = 1000 if name.startswith(("vgg", "resnet_v1", "alexnet", "overfeat")) \
                else 1001
            fn = nets_factory.get_network_fn(name, classes)
            size = fn.default_image_size
            x = np.random.default_rng(0).standard_normal((1, size, size, 3)).astype(np.float32)
            with pyconv.VariableStore(seed=0) as store:
                fn(x)
                params = sum(v.value.size for v in store.variables())
                with count_operators() as counts:
                    fn(x)
                macs = counts.macs
                ms = _forward_ms(fn, x, args.repeat)
            print(f"{name:<18} {size:>3}x{size:<3} {params:>12,} {macs:>14,} {ms:>11.1f}",
                  flush=True)
        return 0

    if args.name is None:
        raise ValueError("--checkpoint needs a net NAME")
    from pyconv import train
    shapes = dict(train.list_variables(args.checkpoint))
    classes = _classes_in_checkpoint(args.name, shapes)
    fn = nets_factory.get_network_fn(args.name, classes)
    size = fn.default_image_size
    if args.image:
        x = _load_image(args.image, size, args.name)
        what = args.image
    else:
        r = np.linspace(-1.0, 1.0, size, dtype=np.float32)
        x = np.stack([r[:, None] + 0 * r, 0 * r[:, None] + r, r[:, None] * r], -1)[None]
        what = "a built-in gradient image (no --image given)"
    with pyconv.VariableStore() as store:
        store.load(args.checkpoint)
        t0 = time.perf_counter()
        logits, _ = fn(x)
        ms = 1e3 * (time.perf_counter() - t0)
        missing = store.variables_not_loaded()
    if missing:
        raise ValueError(f"{len(missing)} variables of {args.name} are not in the checkpoint "
                         f"(e.g. {', '.join(missing[:3])}): is it a checkpoint of {args.name}?")
    logits = np.asarray(logits, np.float64).reshape(-1)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    top = np.argsort(-probs)[:5]
    print(f"{args.name} from {args.checkpoint} ({classes} classes"
          f"{', 0 = background' if classes == 1001 else ''}) on {what}, {ms:.0f} ms")
    for rank, k in enumerate(top, 1):
        print(f"  {rank}. class {int(k):>4}  p = {probs[k]:.4f}  logit {logits[k]:+.3f}")
    return 0


def _add_nets_parser(sub):
    p = sub.add_parser("nets", help="list the nets (parameters, mult-adds, a timed forward; "
                                    "NAME: that net only), or run one from a checkpoint")
    p.add_argument("name", nargs="?", metavar="NAME", help="a net of nets_factory")
    p.add_argument("--checkpoint", metavar="CKPT", help="a TF checkpoint (V1 or V2) of NAME")
    p.add_argument("--image", metavar="FILE", help="an image file (needs Pillow)")
    p.add_argument("--repeat", type=int, default=3, help="timed forward passes per net")
    p.set_defaults(func=nets_command)


# -- inspect: a TensorFlow checkpoint's tensors (like TF's inspect_checkpoint)

def _human_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _print_value(name, value):
    """As TF's inspect_checkpoint: the name, then NumPy's (summarised) print."""
    print(f"tensor_name:  {name}")
    print(np.asarray(value, dtype=object) if isinstance(value, bytes) else value)


def inspect_checkpoint(args):
    try:
        reader = pyconv.train.load_checkpoint(args.checkpoint)
        with reader:
            shapes = reader.get_variable_to_shape_map()
            dtypes = reader.get_variable_to_tf_dtype_name_map()
            if args.tensor is not None:
                _print_value(args.tensor, reader.get_tensor(args.tensor))
                return 0
            if args.all:
                for name in sorted(shapes):
                    _print_value(name, reader.get_tensor(name))
                return 0
            np_dtypes = reader.get_variable_to_dtype_map()
            itemsize = {"DT_STRING": 0, "DT_BFLOAT16": 2}
            rows = []
            total_elems = total_bytes = 0
            for name in sorted(shapes):
                shape = shapes[name]
                n = int(np.prod(shape, dtype=object)) if shape else 1
                dt = dtypes[name]
                size = n * itemsize.get(dt, np_dtypes[name].itemsize)
                total_elems += n
                total_bytes += size
                shown = {"DT_BFLOAT16": "bfloat16", "DT_STRING": "string"}.get(
                    dt, np_dtypes[name].name if np_dtypes[name] != object else dt)
                rows.append((name, shown, "[" + ",".join(map(str, shape)) + "]",
                             f"{n:,}", _human_bytes(size) if dt != "DT_STRING" else "-"))
            header = ("name", "dtype", "shape", "elements", "size")
            widths = [max(len(r[i]) for r in rows + [header]) for i in range(5)]
            print(f"{args.checkpoint}: format {reader.format}, {len(rows)} tensors")
            for row in [header] + rows:
                print("  ".join(v.rjust(w) if i == 3 or i == 4 else v.ljust(w)
                                for i, (v, w) in enumerate(zip(row, widths))).rstrip())
            print(f"total: {len(rows)} tensors, {total_elems:,} elements, "
                  f"{_human_bytes(total_bytes)}")
        return 0
    except (OSError, KeyError) as exc:
        print(f"error: {str(exc) if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 2


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pyconv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="the even/odd conv2d_same example and a timing")
    p_demo.add_argument("--seconds", type=float, default=1.0, help="time spent timing")
    p_demo.set_defaults(func=demo)
    p_exp = sub.add_parser("explain", help="output sizes and pads for every padding")
    p_exp.add_argument("size", type=int, metavar="N", help="input size")
    p_exp.add_argument("--kernel", type=int, required=True, metavar="K")
    p_exp.add_argument("--stride", type=int, default=1, metavar="S")
    p_exp.add_argument("--rate", type=int, default=1, metavar="R")
    p_exp.set_defaults(func=explain)
    _add_nets_parser(sub)
    p_ins = sub.add_parser("inspect", help="list a TensorFlow checkpoint's tensors, or print "
                                           "one (like TF's inspect_checkpoint)")
    p_ins.add_argument("checkpoint", metavar="CKPT",
                       help="a checkpoint prefix, directory, .index or V1 file")
    p_ins.add_argument("--tensor", metavar="NAME", help="print this tensor's values")
    p_ins.add_argument("--all", action="store_true", help="print every tensor's values")
    p_ins.set_defaults(func=inspect_checkpoint)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
