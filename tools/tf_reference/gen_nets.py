#!/usr/bin/env python3
"""TF-Slim's nets run by TensorFlow with deterministic weights: fixtures for
``tests/test_nets.py``.

Run inside the reference venv (tools/tf_reference/ENVIRONMENT.md), from the
repository root::

    TF_ENABLE_ONEDNN_OPTS=0 /work/venvs/tfextra/bin/python tools/tf_reference/gen_nets.py

Each config builds one net of ``tf_slim.nets`` (MobileNet v1, which lives in
tensorflow/models and is not installable, is rebuilt below from tf_slim
layers with models' scopes and variable names) in a fresh graph under its
arg scope, sets every variable to ``tests/net_weights.py``'s value for its
name and the seed, runs it on ``net_input(shape, seed)`` and writes
``tests/fixtures/tf/nets/<id>.npz``:

* ``config``   -- JSON: the config, the seed, TF's variables ``[name, shape,
  trainable]`` in creation order, end-point names and shapes in TF's order,
  versions;
* ``output``   -- the net's first return value (logits or features);
* ``sample/<k>/index``, ``sample/<k>/value`` -- 48 values of end point k at
  positions drawn from a generator seeded by its name;
* ``after/<name>`` -- (training configs) moving statistics after the call
  and one run of UPDATE_OPS.

No weights are stored: the tests regenerate them from the seed.
``generate(configs, seed, checkpoint_dir=None)`` returns the same data in
memory (the live tier), and with ``checkpoint_dir`` also writes the weights
as a TF checkpoint with ``tf.compat.v1.train.Saver``.
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)

from net_weights import net_input, weight_value  # noqa: E402

SEED = 20261201
SAMPLES = 48


def _c(id, module, fn, shape, kwargs=None, arg_scope=None, arg_scope_kwargs=None,
       train=False, samples=None):
    return {"id": id, "module": module, "fn": fn, "input_shape": list(shape),
            "kwargs": kwargs or {}, "arg_scope": arg_scope,
            "arg_scope_kwargs": arg_scope_kwargs or {}, "train": train, "samples": samples}


def _eval(kwargs):
    return dict(kwargs, is_training=False)


RESNET_SMALL_V1 = [["block1", 8, 2, 2], ["block2", 16, 2, 2], ["block3", 16, 1, 1]]

CONFIGS = [
    # every net at its default image size (batch 1, inference)
    *[_c(f"resnet_v1_{d}", "resnet_v1", f"resnet_v1_{d}", (1, 224, 224, 3),
         _eval({"num_classes": 1000}), "resnet_arg_scope") for d in (50, 101, 152, 200)],
    *[_c(f"resnet_v2_{d}", "resnet_v2", f"resnet_v2_{d}", (1, 224, 224, 3),
         _eval({"num_classes": 1001}), "resnet_arg_scope") for d in (50, 101, 152, 200)],
    *[_c(n, "vgg", n, (1, 224, 224, 3), _eval({}), "vgg_arg_scope")
      for n in ("vgg_a", "vgg_16", "vgg_19")],
    _c("alexnet_v2", "alexnet", "alexnet_v2", (1, 224, 224, 3), _eval({}),
       "alexnet_v2_arg_scope"),
    _c("overfeat", "overfeat", "overfeat", (1, 231, 231, 3), _eval({}), "overfeat_arg_scope"),
    _c("inception_v1", "inception_v1", "inception_v1", (1, 224, 224, 3),
       _eval({"num_classes": 1001}), "inception_v1_arg_scope"),
    _c("inception_v2", "inception_v2", "inception_v2", (1, 224, 224, 3),
       _eval({"num_classes": 1001}), "inception_v2_arg_scope"),
    _c("inception_v3", "inception_v3", "inception_v3", (1, 299, 299, 3),
       _eval({"num_classes": 1001}), "inception_v3_arg_scope"),
    *[_c(n, "mobilenet_v1", n, (1, 224, 224, 3), _eval({"num_classes": 1001}),
         "mobilenet_v1_arg_scope") for n in ("mobilenet_v1", "mobilenet_v1_075",
                                             "mobilenet_v1_050", "mobilenet_v1_025")],
    # other sizes and options
    _c("resnet_v1_50_97x129_os8", "resnet_v1", "resnet_v1_50", (1, 97, 129, 3),
       _eval({"num_classes": 5, "global_pool": False, "output_stride": 8}), "resnet_arg_scope"),
    _c("resnet_v2_50_161_os16", "resnet_v2", "resnet_v2_50", (1, 161, 161, 3),
       _eval({"num_classes": 10, "output_stride": 16}), "resnet_arg_scope"),
    _c("resnet_v1_101_features_65", "resnet_v1", "resnet_v1_101", (1, 65, 65, 3),
       _eval({}), "resnet_arg_scope"),
    _c("resnet_v1_custom_noroot", "resnet_v1", "resnet_v1", (2, 33, 33, 16),
       _eval({"blocks": RESNET_SMALL_V1, "num_classes": 7, "include_root_block": False,
              "scope": "tiny"}), "resnet_arg_scope"),
    _c("resnet_v2_custom_os2", "resnet_v2", "resnet_v2", (1, 33, 33, 16),
       _eval({"blocks": RESNET_SMALL_V1, "num_classes": 7, "include_root_block": False,
              "output_stride": 2, "global_pool": False, "scope": "tiny2"}),
       "resnet_arg_scope"),
    _c("vgg_a_256", "vgg", "vgg_a", (1, 256, 256, 3), _eval({"spatial_squeeze": False}),
       "vgg_arg_scope"),
    _c("alexnet_v2_300", "alexnet", "alexnet_v2", (1, 300, 300, 3),
       _eval({"spatial_squeeze": False, "num_classes": 20}), "alexnet_v2_arg_scope"),
    _c("overfeat_263", "overfeat", "overfeat", (1, 263, 263, 3),
       _eval({"spatial_squeeze": False, "num_classes": 20}), "overfeat_arg_scope"),
    _c("inception_v1_256", "inception_v1", "inception_v1", (1, 256, 256, 3),
       _eval({"num_classes": 10, "spatial_squeeze": False}), "inception_v1_arg_scope"),
    _c("inception_v1_base_4c_160", "inception_v1", "inception_v1_base", (1, 160, 160, 3),
       {"final_endpoint": "Mixed_4c"}, "inception_v1_arg_scope", {"use_batch_norm": False}),
    _c("inception_v2_160", "inception_v2", "inception_v2", (1, 160, 160, 3),
       _eval({"num_classes": 10}), "inception_v2_arg_scope"),
    _c("inception_v2_base_4a_dm05_128", "inception_v2", "inception_v2_base", (1, 128, 128, 3),
       {"final_endpoint": "Mixed_4a", "depth_multiplier": 0.5}, "inception_v2_arg_scope"),
    _c("inception_v3_150", "inception_v3", "inception_v3", (1, 150, 150, 3),
       _eval({"num_classes": 10}), "inception_v3_arg_scope"),
    _c("inception_v3_base_6a_dm05_139", "inception_v3", "inception_v3_base", (1, 139, 139, 3),
       {"final_endpoint": "Mixed_6a", "depth_multiplier": 0.5, "min_depth": 8},
       "inception_v3_arg_scope"),
    _c("mobilenet_v1_160_global_pool", "mobilenet_v1", "mobilenet_v1", (1, 160, 160, 3),
       _eval({"num_classes": 10, "global_pool": True}), "mobilenet_v1_arg_scope"),
    _c("mobilenet_v1_025_128_features", "mobilenet_v1", "mobilenet_v1_025", (1, 128, 128, 3),
       _eval({"num_classes": 0}), "mobilenet_v1_arg_scope"),
    _c("mobilenet_v1_base_os16_explicit_129", "mobilenet_v1", "mobilenet_v1_base",
       (1, 129, 129, 3), {"output_stride": 16, "use_explicit_padding": True,
                          "depth_multiplier": 0.25}, "mobilenet_v1_arg_scope",
       {"is_training": False}),
    _c("mobilenet_v1_base_os8_100", "mobilenet_v1", "mobilenet_v1_base", (1, 100, 100, 3),
       {"output_stride": 8, "depth_multiplier": 0.25, "final_endpoint": "Conv2d_12_pointwise"},
       "mobilenet_v1_arg_scope", {"is_training": False}),
    # training mode: batch statistics, UPDATE_OPS run once; dropout off (keep 1)
    _c("train_resnet_v1_50_160", "resnet_v1", "resnet_v1_50", (2, 160, 160, 3),
       {"num_classes": 10, "is_training": True}, "resnet_arg_scope", train=True),
    _c("train_resnet_v2_50_160", "resnet_v2", "resnet_v2_50", (2, 160, 160, 3),
       {"num_classes": 10, "is_training": True}, "resnet_arg_scope", train=True),
    _c("train_inception_v3_171", "inception_v3", "inception_v3", (2, 171, 171, 3),
       {"num_classes": 10, "is_training": True, "dropout_keep_prob": 1.0},
       "inception_v3_arg_scope", train=True),
    _c("train_mobilenet_v1_025_96", "mobilenet_v1", "mobilenet_v1_025", (2, 96, 96, 3),
       {"num_classes": 10, "is_training": True, "dropout_keep_prob": 1.0},
       "mobilenet_v1_arg_scope", train=True),
]


# --------------------------------------------------------------------------- TF side

def _tf():
    from generate_fixtures import _TF
    return _TF()


class _TFMobilenetV1:
    """MobileNet v1 as tensorflow/models builds it, from tf_slim layers (the
    models package cannot be installed here); scopes and names as models'."""

    def __init__(self, T):
        self.T = T
        slim, tf = T.slim, T.tf
        defs = [("conv", 2, 32)] + [("sep", s, d) for s, d in (
            (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512), (1, 512),
            (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))]

        def pad(x, k, rate=1):
            k_eff = k + (k - 1) * (rate - 1)
            b = (k_eff - 1) // 2
            e = k_eff - 1 - b
            return tf.pad(x, [[0, 0], [b, e], [b, e], [0, 0]])

        def base(inputs, final_endpoint="Conv2d_13_pointwise", min_depth=8,
                 depth_multiplier=1.0, conv_defs=None, output_stride=None,
                 use_explicit_padding=False, scope=None):
            depth = lambda d: max(int(d * depth_multiplier), min_depth)  # noqa: E731
            end_points = {}
            padding = "VALID" if use_explicit_padding else "SAME"
            with tf.compat.v1.variable_scope(scope, "MobilenetV1", [inputs]):
                with slim.arg_scope([slim.conv2d, slim.separable_conv2d], padding=padding):
                    current, rate, net = 1, 1, inputs
                    for i, (kind, stride, d) in enumerate(defs):
                        if output_stride is not None and current == output_stride:
                            lstride, lrate = 1, rate
                            rate *= stride
                        else:
                            lstride, lrate = stride, 1
                            current *= stride
                        if kind == "conv":
                            ep = "Conv2d_%d" % i
                            if use_explicit_padding:
                                net = pad(net, 3)
                            net = slim.conv2d(net, depth(d), [3, 3], stride=stride, scope=ep)
                            end_points[ep] = net
                            if ep == final_endpoint:
                                return net, end_points
                            continue
                        ep = "Conv2d_%d_depthwise" % i
                        if use_explicit_padding:
                            net = pad(net, 3, lrate)
                        net = slim.separable_conv2d(net, None, [3, 3], depth_multiplier=1,
                                                    stride=lstride, rate=lrate, scope=ep)
                        end_points[ep] = net
                        if ep == final_endpoint:
                            return net, end_points
                        ep = "Conv2d_%d_pointwise" % i
                        net = slim.conv2d(net, depth(d), [1, 1], stride=1, scope=ep)
                        end_points[ep] = net
                        if ep == final_endpoint:
                            return net, end_points
            raise ValueError(final_endpoint)

        def net(inputs, num_classes=1000, dropout_keep_prob=0.999, is_training=True,
                min_depth=8, depth_multiplier=1.0, conv_defs=None, prediction_fn=slim.softmax,
                spatial_squeeze=True, reuse=None, scope="MobilenetV1", global_pool=False):
            with tf.compat.v1.variable_scope(scope, "MobilenetV1", [inputs],
                                             reuse=reuse) as sc:
                with slim.arg_scope([slim.batch_norm, slim.dropout], is_training=is_training):
                    net, end_points = base(inputs, scope=sc, min_depth=min_depth,
                                           depth_multiplier=depth_multiplier)
                    with tf.compat.v1.variable_scope("Logits"):
                        if global_pool:
                            net = tf.reduce_mean(net, [1, 2], keepdims=True,
                                                 name="global_pool")
                            end_points["global_pool"] = net
                        else:
                            shape = net.get_shape().as_list()
                            k = [min(shape[1], 7), min(shape[2], 7)]
                            net = slim.avg_pool2d(net, k, padding="VALID", scope="AvgPool_1a")
                            end_points["AvgPool_1a"] = net
                        if not num_classes:
                            return net, end_points
                        net = slim.dropout(net, keep_prob=dropout_keep_prob, scope="Dropout_1b")
                        logits = slim.conv2d(net, num_classes, [1, 1], activation_fn=None,
                                             normalizer_fn=None, scope="Conv2d_1c_1x1")
                        if spatial_squeeze:
                            logits = tf.squeeze(logits, [1, 2], name="SpatialSqueeze")
                    end_points["Logits"] = logits
                    if prediction_fn:
                        end_points["Predictions"] = prediction_fn(logits, scope="Predictions")
            return logits, end_points

        def arg_scope(is_training=True, weight_decay=0.00004, stddev=0.09,
                      regularize_depthwise=False, batch_norm_decay=0.9997,
                      batch_norm_epsilon=0.001):
            params = {"center": True, "scale": True, "decay": batch_norm_decay,
                      "epsilon": batch_norm_epsilon,
                      "updates_collections": tf.compat.v1.GraphKeys.UPDATE_OPS}
            if is_training is not None:
                params["is_training"] = is_training
            init = tf.compat.v1.truncated_normal_initializer(stddev=stddev)
            reg = slim.l2_regularizer(weight_decay)
            with slim.arg_scope([slim.conv2d, slim.separable_conv2d], weights_initializer=init,
                                activation_fn=tf.nn.relu6, normalizer_fn=slim.batch_norm):
                with slim.arg_scope([slim.batch_norm], **params):
                    with slim.arg_scope([slim.conv2d], weights_regularizer=reg):
                        with slim.arg_scope([slim.separable_conv2d],
                                            weights_regularizer=reg if regularize_depthwise
                                            else None) as sc:
                            return sc

        import functools
        self.mobilenet_v1 = net
        self.mobilenet_v1_base = base
        self.mobilenet_v1_075 = functools.partial(net, depth_multiplier=0.75)
        self.mobilenet_v1_050 = functools.partial(net, depth_multiplier=0.50)
        self.mobilenet_v1_025 = functools.partial(net, depth_multiplier=0.25)
        self.mobilenet_v1_arg_scope = arg_scope


def _module(T, name):
    if name == "mobilenet_v1":
        return _TFMobilenetV1(T)
    import importlib
    return importlib.import_module(f"tf_slim.nets.{name}")


def resolve_kwargs(module, kwargs):
    """JSON kwargs -> call kwargs: ``blocks`` ([scope, base_depth, units, stride]
    lists) become the module's ``*_block`` Blocks (both sides use this)."""
    kwargs = dict(kwargs)
    if "blocks" in kwargs:
        block_fn = getattr(module, module.__name__.rsplit(".", 1)[-1] + "_block")
        kwargs["blocks"] = [block_fn(s, base_depth=b, num_units=n, stride=st)
                            for s, b, n, st in kwargs["blocks"]]
    return kwargs


def sample_index(name, size):
    rng = np.random.default_rng(abs(hash_name(name)) % (2 ** 63))
    return np.sort(rng.choice(size, min(SAMPLES, size), replace=False)).astype(np.int64)


def hash_name(name):
    import hashlib
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def pick_samples(names):
    """The end points whose values are sampled: first, middle and last-but-two."""
    if len(names) <= 3:
        return list(names)
    return [names[0], names[len(names) // 2], names[-3]]


def run_config(T, cfg, seed, checkpoint_dir=None, checkpoint_version="V2"):
    tf, v1, slim = T.tf, T.v1, T.slim
    module = _module(T, cfg["module"])
    fn = getattr(module, cfg["fn"])
    graph = tf.Graph()
    x_value = net_input(cfg["input_shape"], seed)
    with graph.as_default():
        x = v1.placeholder(tf.float32, cfg["input_shape"])
        kwargs = resolve_kwargs(module, cfg["kwargs"])
        with slim.arg_scope(getattr(module, cfg["arg_scope"])(**cfg["arg_scope_kwargs"])):
            if "blocks" in kwargs:
                out, end_points = fn(x, kwargs.pop("blocks"), **kwargs)
            else:
                out, end_points = fn(x, **kwargs)
        variables = v1.global_variables()
        trainable = {v.op.name for v in v1.trainable_variables()}
        update_ops = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        ep_names = list(end_points)
        sampled = cfg["samples"] or pick_samples(ep_names)
        with v1.Session(graph=graph) as sess:
            # one run of every initializer with its initial value fed (Variable.load
            # per variable took 41 s for ResNet-50)
            feed = {v.initializer.inputs[1]: weight_value(v.op.name, v.shape.as_list(), seed)
                    for v in variables}
            sess.run([v.initializer for v in variables], feed)
            prefix = None
            if checkpoint_dir is not None:  # before the run: UPDATE_OPS change the statistics
                version = (v1.train.SaverDef.V1 if checkpoint_version == "V1"
                           else v1.train.SaverDef.V2)
                saver = v1.train.Saver(variables, write_version=version)
                prefix = saver.save(sess, os.path.join(checkpoint_dir, cfg["id"] + ".ckpt"),
                                    write_meta_graph=False, write_state=False)
            fetch = {"out": out, "ep": {k: end_points[k] for k in ep_names}}
            if cfg["train"]:
                fetch["updates"] = update_ops
            res = sess.run(fetch, {x: x_value})
            after = {}
            if cfg["train"]:
                stats = [v for v in variables if v.op.name.endswith("moving_mean")
                         or v.op.name.endswith("moving_variance")]
                chosen = stats[:2] + stats[-2:]
                after = dict(zip([v.op.name for v in chosen], sess.run(chosen)))
    record = dict(cfg, seed=seed,
                  variables=[[v.op.name, v.shape.as_list(), v.op.name in trainable]
                             for v in variables],
                  end_points=[[k, list(np.shape(res["ep"][k]))] for k in ep_names],
                  sampled=sampled, n_update_ops=len(update_ops), versions=T.versions())
    arrays = {"output": np.asarray(res["out"])}
    for k in sampled:
        flat = np.asarray(res["ep"][k]).ravel()
        idx = sample_index(k, flat.size)
        arrays[f"sample/{k}/index"] = idx
        arrays[f"sample/{k}/value"] = flat[idx]
    for k, v in after.items():
        arrays[f"after/{k}"] = v
    return record, arrays, prefix


def generate(configs=None, seed=SEED, checkpoint_dir=None, checkpoint_version="V2"):
    """``[(record, arrays, checkpoint_prefix)]`` for ``configs`` (default all);
    with ``checkpoint_dir``, TF's Saver writes each net's variables there
    (``checkpoint_version`` 'V2', or 'V1' as the 2016 model zoo's files)."""
    T = _tf()
    return [run_config(T, cfg, seed, checkpoint_dir, checkpoint_version)
            for cfg in (configs or CONFIGS)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "tf", "nets"))
    p.add_argument("--only", nargs="*", help="config ids")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    T = _tf()
    for cfg in CONFIGS:
        if args.only and cfg["id"] not in args.only:
            continue
        record, arrays, _ = run_config(T, cfg, args.seed)
        np.savez_compressed(os.path.join(args.out, cfg["id"] + ".npz"),
                            config=np.array(json.dumps(record)), **arrays)
        print(cfg["id"], arrays["output"].shape, len(record["end_points"]), "end points",
              flush=True)


if __name__ == "__main__":
    main()
