"""ResNet-50 v1 forward: pyconv (built from its layers with TF-Slim's
architecture) against TF-Slim's own ``resnet_v1_50``, same weights, one run.

    /work/venvs/bench/bin/python tools/resnet50_layers.py [--batch 1 8]
        [--threads 1 2] [--repeat 10] [--before DIR] [--json PATH]

Run from the repository root (the built-in-place ``pyconv`` is imported).
``--before DIR`` also times another pyconv build, e.g. main's code exported
and built in DIR (``git archive main | tar -x -C DIR && cd DIR && python
setup.py -q build_ext --inplace``); it is imported under the name
``pyconv_before`` from a copy of its package, so both run in one process.

The builder below is a user's port of ``tf_slim.nets.resnet_v1`` (scopes,
``bottleneck``, ``resnet_arg_scope``), with ``is_training=False``. TF's
variables get random values (the moving statistics too, so batch norm does
something), which pyconv loads by name; the logits are checked equal to
TF's before anything is timed. Per configuration the table gives the median
of ``--repeat`` forwards and, for pyconv, the share of that time spent in
convolution calls (``_conv.conv2d``, which includes every batch norm and
ReLU fused into the convolutions' epilogues) against everything else.
Timings are medians on a shared machine: compare the ratios within a run.
"""

import argparse
import importlib
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKS = (("block1", 64, 3, 2), ("block2", 128, 4, 2), ("block3", 256, 6, 2),
          ("block4", 512, 3, 1))


def resnet_v1_50(slim, images, num_classes=1000):
    """TF-Slim's resnet_v1_50(images, num_classes, is_training=False) written
    with pyconv's layers; returns the logits [batch, num_classes]."""
    nn = slim.nn
    add_relu = getattr(nn, "add_relu", None)

    def bottleneck(x, depth, depth_bottleneck, stride, scope):
        with slim.variable_scope(scope, "bottleneck_v1"):
            depth_in = x.shape[-1]
            if depth == depth_in:
                shortcut = slim.subsample(x, stride, "shortcut")
            else:
                shortcut = slim.conv2d(x, depth, [1, 1], stride=stride, activation_fn=None,
                                       scope="shortcut")
            residual = slim.conv2d(x, depth_bottleneck, [1, 1], stride=1, scope="conv1")
            residual = slim.conv2d_same(residual, depth_bottleneck, 3, stride, scope="conv2")
            residual = slim.conv2d(residual, depth, [1, 1], stride=1, activation_fn=None,
                                   scope="conv3")
            if add_relu is not None:
                return add_relu(shortcut, residual)
            return nn.relu(shortcut + residual)

    bn_params = {"decay": 0.997, "epsilon": 1e-5, "scale": True}
    with slim.arg_scope([slim.conv2d], activation_fn=slim.relu,
                        normalizer_fn=slim.batch_norm, normalizer_params=bn_params):
        with slim.arg_scope([slim.batch_norm], is_training=False, **bn_params):
            with slim.arg_scope([slim.max_pool2d], padding="SAME"):
                with slim.variable_scope("resnet_v1_50", reuse=slim.AUTO_REUSE):
                    net = slim.conv2d_same(images, 64, 7, stride=2, scope="conv1")
                    net = slim.max_pool2d(net, [3, 3], stride=2, scope="pool1")
                    for name, base, units, stride in BLOCKS:
                        with slim.variable_scope(name):
                            for i in range(units):
                                with slim.variable_scope(f"unit_{i + 1}"):
                                    net = bottleneck(net, base * 4, base,
                                                     stride if i == units - 1 else 1,
                                                     "bottleneck_v1")
                    net = np.mean(net, axis=(1, 2), keepdims=True)
                    net = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                      normalizer_fn=None, scope="logits")
    return net[:, 0, 0, :]


def resnet_v1_50_nets(slim, images):
    """The same net from pyconv.nets (when the package has it)."""
    from_nets = importlib.import_module(slim.__name__ + ".nets.resnet_v1")
    with slim.arg_scope(from_nets.resnet_arg_scope()):
        logits, _ = from_nets.resnet_v1_50(images, 1000, is_training=False,
                                           reuse=slim.AUTO_REUSE)
    return logits[:, 0, 0, :]  # tf_slim's resnet_v1 has no spatial_squeeze


def tf_model(batch, seed=0):
    """TF-Slim's resnet_v1_50 in a graph: (session factory, feed, logits tensor,
    {variable name: value}) with random weights and statistics."""
    import tensorflow.compat.v1 as tf
    # TF >= 2.13 imports tf_keras.legacy_tf_layers for slim.batch_norm, which
    # tf-keras 2.21 ships as tf_keras.src.legacy_tf_layers (FACTS D3)
    for m in ("", ".normalization", ".base", ".core", ".convolutional", ".pooling"):
        try:
            sys.modules["tf_keras.legacy_tf_layers" + m] = importlib.import_module(
                "tf_keras.src.legacy_tf_layers" + m)
        except ImportError:
            pass
    import tf_slim as tfslim
    from tf_slim.nets import resnet_v1

    tf.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default():
        images = tf.placeholder(tf.float32, (batch, 224, 224, 3))
        with tfslim.arg_scope(resnet_v1.resnet_arg_scope()):
            logits, _ = resnet_v1.resnet_v1_50(images, 1000, is_training=False)
        logits = tf.squeeze(logits, [1, 2])
        variables = tf.global_variables()
        init = tf.global_variables_initializer()
    rng = np.random.default_rng(seed)
    values = {}
    for v in variables:
        shape = v.shape.as_list()
        name = v.op.name
        if name.endswith("moving_variance") or name.endswith("gamma"):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name.endswith("moving_mean") or name.endswith("beta"):
            values[name] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        elif name.endswith("weights"):
            fan_in = int(np.prod(shape[:-1]))
            values[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        else:
            values[name] = (0.01 * rng.standard_normal(shape)).astype(np.float32)

    def session(threads):
        config = tf.ConfigProto(intra_op_parallelism_threads=threads,
                                inter_op_parallelism_threads=1)
        sess = tf.Session(graph=graph, config=config)
        sess.run(init)
        with graph.as_default():
            for v in variables:
                v.load(values[v.op.name], sess)
        return sess

    return session, images, logits, values


def load_before(path):
    """The pyconv package built in `path`, imported as `pyconv_before`."""
    tmp = tempfile.mkdtemp(prefix="pyconv_before_")
    shutil.copytree(os.path.join(path, "pyconv"), os.path.join(tmp, "pyconv_before"))
    sys.path.insert(0, tmp)
    return importlib.import_module("pyconv_before")


def timings_ms(fn, repeat):
    """(median, min) of `repeat` calls after a warm-up, in ms."""
    fn()  # warm-up: packs weights, fills the output cache
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def conv_share(slim, forward, repeat):
    """Fraction of a forward's time inside _conv.conv2d calls."""
    ext = slim._conv
    raw = ext.conv2d
    spent = [0.0]

    def timed(*args):
        t = time.perf_counter()
        try:
            return raw(*args)
        finally:
            spent[0] += time.perf_counter() - t

    ext.conv2d = timed
    try:
        forward()
        spent[0] = 0.0
        t = time.perf_counter()
        for _ in range(max(1, repeat // 2)):
            forward()
        total = time.perf_counter() - t
    finally:
        ext.conv2d = raw
    return spent[0] / total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--before", help="directory of another pyconv build to time too")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--nets", action="store_true",
                    help="build pyconv's net with pyconv.nets.resnet_v1 where the build has it")
    args = ap.parse_args()

    sys.path.insert(0, ROOT)
    import pyconv

    impls = [("pyconv", pyconv)]
    if args.before:
        impls.insert(0, ("pyconv-before", load_before(args.before)))
    rows = []
    for batch in args.batch:
        session, images_t, logits_t, values = tf_model(batch)
        x = np.random.default_rng(1).uniform(-1, 1, (batch, 224, 224, 3)).astype(np.float32)
        for threads in args.threads:
            sess = session(threads)
            ref = sess.run(logits_t, {images_t: x})
            row = {"batch": batch, "threads": threads}
            row["tf_slim_ms"], row["tf_slim_min_ms"] = timings_ms(
                lambda: sess.run(logits_t, {images_t: x}), args.repeat)
            for label, slim in impls:
                slim.set_num_threads(threads)
                store = slim.VariableStore()
                store.load(values)

                build = resnet_v1_50
                if args.nets and importlib.util.find_spec(slim.__name__ + ".nets"):
                    build = resnet_v1_50_nets

                def forward(slim=slim, store=store, build=build):
                    with store:
                        return build(slim, x)

                out = forward()
                assert out.shape == ref.shape, (out.shape, ref.shape)
                err = float(np.abs(out - ref).max() / max(1.0, np.abs(ref).max()))
                if err > 1e-4:
                    raise SystemExit(f"{label} differs from TF-Slim: {err:.3g}")
                row[f"{label}_ms"], row[f"{label}_min_ms"] = timings_ms(forward, args.repeat)
                row[f"{label}_conv_share"] = conv_share(slim, forward, args.repeat)
                row[f"{label}_err"] = err
            sess.close()
            rows.append(row)
            print(json.dumps(row), flush=True)

    labels = [label for label, _ in impls]
    print()
    head = f"{'batch':>5} {'thr':>3} {'TF-Slim ms':>15}"
    for label in labels:
        head += f" {label + ' ms':>17} {'ratio':>11} {'conv %':>6}"
    print(head)
    for r in rows:
        line = (f"{r['batch']:>5} {r['threads']:>3} "
                f"{r['tf_slim_ms']:>7.1f} ({r['tf_slim_min_ms']:>5.1f})")
        for label in labels:
            ms, mn = r[label + "_ms"], r[label + "_min_ms"]
            line += (f" {ms:>9.1f} ({mn:>5.1f}) {ms / r['tf_slim_ms']:>5.2f} "
                     f"({mn / r['tf_slim_min_ms']:>4.2f}) {100 * r[label + '_conv_share']:>5.0f}%")
        print(line)
    print("median (min) of the forwards; ratio = pyconv / TF-Slim, of medians (of minimums), "
          "below 1: pyconv faster; conv % = share of pyconv's time inside convolution calls "
          "(with their fused epilogues)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
