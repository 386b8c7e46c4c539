"""Receptive field and stride so far in ``pyconv.summary``, per end point of
the nets and through transposed convolutions.

Expected values are independent of pyconv's tracer:

- TF-Slim's own ``receptive_field`` library's published table
  (google-research/receptive_field, RECEPTIVE_FIELD_TABLE.md, the TF-Slim
  nets at 224 / 299): ResNet blocks, MobileNet pointwise layers, Inception
  mixed blocks, VGG pools;
- hand-derived with the recurrence rf += (k - 1) * rate * jump, jump *= stride
  for what that table leaves out (global pools, logits, fully connected
  heads, the aux head), each written next to its derivation;
- counted: ``tests/rf_reference.py`` walks each layer's index map backwards
  (the architectures transcribed from TF-Slim by hand below), and the
  transposed-convolution decoder's fields are also found by pushing one
  pixel through the float64 reference of its layers.
"""

from fractions import Fraction

import numpy as np
import rf_reference
from reference import conv2d_padded, conv2d_transpose_reference, transpose_pads

import pyconv as slim
from pyconv.nets import nets_factory


def SQ(v):
    """(v, v): height and width alike."""
    return (v, v)


def end_point_geometry(name, size, **kwargs):
    """{end point: (rf, stride)} through the traced summary of the net's end
    points, and the traced (layer) summary's rows by layer."""
    fn = nets_factory.get_network_fn(name, 1000)
    traced = slim.summary(fn, (1, size, size, 3), **kwargs)
    s = slim.summary(traced.end_points, (1, size, size, 3), store=traced.store, network_fn=fn,
                     **kwargs)
    return ({r["layer"]: (r["rf"], r["stride"]) for r in s.rows},
            {r["layer"]: r for r in traced.rows})


# --------------------------------------------------------------------------- counted chains

def resnet_chain(units=(3, 4, 6, 3)):
    """ResNet v1/v2 (TF-Slim): conv1 7x7/2 (conv2d_same: pad 3), pool1 3x3/2 SAME
    (pad 0 before at 112), then per unit the bottleneck's 1x1, 3x3 (stride 2 on
    the last unit of blocks 1-3, conv2d_same: pad 1), 1x1. The shortcut is a 1x1
    of the same stride inside that window, so the sum's field is the main path's."""
    layers = [("conv", 7, 2, 1, 3), ("conv", 3, 2, 1, 0)]
    for b, n in enumerate(units):
        for u in range(n):
            s = 2 if u == n - 1 and b < 3 else 1
            layers += [("conv", 1, 1, 1, 0), ("conv", 3, s, 1, 1), ("conv", 1, 1, 1, 0)]
    return layers


def mobilenet_chain():
    """MobileNet v1: Conv2d_0 3x3/2, then 13 x (3x3 depthwise of the conv_defs'
    stride, 1x1 pointwise)."""
    layers = [("conv", 3, 2, 1, 0)]
    for s in (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1):
        layers += [("conv", 3, s, 1, 1), ("conv", 1, 1, 1, 0)]
    return layers


def test_counted_chains_agree_with_the_hand_derived_values():
    """The careful count behind the hand-derived numbers used below."""
    r = resnet_chain()
    assert rf_reference.receptive_field(r) == 483 and rf_reference.stride(r) == 32  # table
    # global mean over block4's 7 x 7 (224) / 3 x 3 (96) map, then the 1x1 logits
    assert rf_reference.receptive_field(r + [("global", 7), ("conv", 1, 1, 1, 0)], [0]) == 675
    assert rf_reference.receptive_field(r + [("global", 3), ("conv", 1, 1, 1, 0)], [0]) == 547
    m = mobilenet_chain()
    assert rf_reference.receptive_field(m) == 315 and rf_reference.stride(m) == 32  # table
    pool = m + [("conv", 7, 2, 1, 0)]                      # AvgPool_1a 7x7/2 VALID on 7 x 7
    assert rf_reference.receptive_field(pool, [0]) == 507 and rf_reference.stride(pool) == 64
    assert rf_reference.receptive_field(m + [("global", 7)], [0]) == 507


# --------------------------------------------------------------------------- the nets

def test_resnet_v1_50_global_pool_and_logits():
    """Table: block1 35/8, block2 99/16, block3 291/32, block4 483/32 (slim puts
    the stride on each block's last unit). Hand: the logits follow a global mean
    of block4's 7 x 7 map: 483 + 6 * 32 = 675, stride 32 (a mean has no stride);
    predictions (softmax) the same; conv1 7/2, pool1 7 + 2 * 2 = 11 / 4."""
    ep, layers = end_point_geometry("resnet_v1_50", 224)
    for key, rf, stride in [("block1", 35, 8), ("block2", 99, 16), ("block3", 291, 32),
                            ("block4", 483, 32), ("conv1", 7, 2), ("logits", 675, 32)]:
        assert ep[f"resnet_v1_50/{key}"] == (SQ(rf), SQ(stride)), key
    assert ep["predictions"] == (SQ(675), SQ(32))
    assert layers["resnet_v1_50/pool1"]["rf"] == SQ(11)
    assert layers["resnet_v1_50/logits"]["rf"] == SQ(675)
    assert layers["resnet_v1_50/logits"]["stride"] == SQ(32)


def test_resnet_v1_50_logits_at_96():
    """Block4 at 96 is 3 x 3: 483 + 2 * 32 = 547 (it was 483, the map's own field)."""
    s = slim.summary(nets_factory.get_network_fn("resnet_v1_50", 10), (1, 96, 96, 3))
    row = {r["layer"]: r for r in s.rows}["resnet_v1_50/logits"]
    assert row["rf"] == SQ(547) and row["stride"] == SQ(32) and row["shape"] == (1, 1, 1, 10)


def test_resnet_v2_50_global_pool_and_logits():
    """Table: the same 35/8 ... 483/32 as v1; the postnorm batch norm changes
    nothing; hand: logits 483 + 6 * 32 = 675 / 32."""
    ep, _ = end_point_geometry("resnet_v2_50", 224)
    for key, rf, stride in [("block1", 35, 8), ("block2", 99, 16), ("block3", 291, 32),
                            ("block4", 483, 32), ("logits", 675, 32)]:
        assert ep[f"resnet_v2_50/{key}"] == (SQ(rf), SQ(stride)), key
    assert ep["predictions"] == (SQ(675), SQ(32))


def test_mobilenet_v1_avg_pool_and_global_pool():
    """Table: Conv2d_1_pointwise 7/2, Conv2d_6_pointwise 59/16, Conv2d_12_pointwise
    251/32, Conv2d_13_pointwise 315/32. Hand: AvgPool_1a is slim's avg_pool2d
    7x7, stride 2 (its default), VALID on the 7 x 7 map: 315 + 6 * 32 = 507 and
    32 * 2 = 64, as TF-Slim's receptive_field rules compose a pool; the logits
    (a 1x1 conv, then a squeeze) and the softmax keep 507 / 64. With
    global_pool=True the NumPy mean sees the same 507 pixels, stride 32."""
    ep, _ = end_point_geometry("mobilenet_v1", 224)
    for key, rf, stride in [("Conv2d_1_pointwise", 7, 2), ("Conv2d_6_pointwise", 59, 16),
                            ("Conv2d_12_pointwise", 251, 32), ("Conv2d_13_pointwise", 315, 32),
                            ("AvgPool_1a", 507, 64), ("Logits", 507, 64),
                            ("Predictions", 507, 64)]:
        assert ep[key] == (SQ(rf), SQ(stride)), key
    ep, _ = end_point_geometry("mobilenet_v1", 224, global_pool=True)
    assert ep["global_pool"] == (SQ(507), SQ(32))
    assert ep["Logits"] == (SQ(507), SQ(32)) and ep["Predictions"] == (SQ(507), SQ(32))


def test_mobilenet_v1_reduced_pool_at_160():
    """At 160 the last map is 5 x 5 and AvgPool_1a shrinks to 5x5/2: 315 + 4 * 32."""
    s = slim.summary(nets_factory.get_network_fn("mobilenet_v1", 10), (1, 160, 160, 3),
                     depth_multiplier=0.25)
    row = {r["layer"]: r for r in s.rows}["MobilenetV1/Logits/AvgPool_1a"]
    assert row["rf"] == SQ(443) and row["stride"] == SQ(64) and row["shape"] == (1, 1, 1, 256)


def test_inception_v3_heads():
    """Table (299): Mixed_5b 63/8, Mixed_6e 927/16, Mixed_7c 1311/32. Hand:
    PreLogits is AvgPool_1a_8x8 (stride 2, VALID) on Mixed_7c's 8 x 8:
    1311 + 7 * 32 = 1535 / 64; Logits (1x1) and Predictions the same. AuxLogits:
    Mixed_6e (17 x 17) -> avg pool 5x5/3 VALID: 927 + 4 * 16 = 991 / 48, 5 x 5;
    1x1 conv; 5x5 VALID conv (stride 1): 991 + 4 * 48 = 1183 / 48; 1x1 conv."""
    ep, _ = end_point_geometry("inception_v3", 299)
    for key, rf, stride in [("Mixed_5b", 63, 8), ("Mixed_6e", 927, 16), ("Mixed_7c", 1311, 32),
                            ("PreLogits", 1535, 64), ("Logits", 1535, 64),
                            ("Predictions", 1535, 64), ("AuxLogits", 1183, 48)]:
        assert ep[key] == (SQ(rf), SQ(stride)), key


def test_vgg_16_pools_and_fully_connected_head():
    """Table: pool1 6/2, pool2 16/4, pool3 44/8, pool4 100/16, pool5 212/32.
    Hand: fc6 is a 7x7 VALID conv on pool5's 7 x 7: 212 + 6 * 32 = 404 / 32;
    fc7 and fc8 (1x1) the same."""
    s = slim.summary(nets_factory.get_network_fn("vgg_16", 10), (1, 224, 224, 3))
    row = {r["layer"]: (r["rf"], r["stride"]) for r in s.rows}
    for key, rf, stride in [("pool1", 6, 2), ("pool2", 16, 4), ("pool3", 44, 8),
                            ("pool4", 100, 16), ("pool5", 212, 32), ("fc6", 404, 32),
                            ("fc7", 404, 32), ("fc8", 404, 32), ("conv1/conv1_1", 3, 1)]:
        assert row[f"vgg_16/{key}"] == (SQ(rf), SQ(stride)), key


def test_every_end_point_of_every_net_has_a_field():
    """No end point left without a receptive field (the softmax, the global pool)."""
    for name in ("inception_v1", "inception_v2", "mobilenet_v1_025"):
        fn = nets_factory.get_network_fn(name, 10)
        size = fn.default_image_size
        traced = slim.summary(fn, (1, size, size, 3))
        s = slim.summary(traced.end_points, (1, size, size, 3), store=traced.store,
                         network_fn=fn)
        assert [r["layer"] for r in s.rows if r["rf"] is None or r["stride"] is None] == []


def test_numpy_global_mean_and_flatten_in_a_small_net():
    """conv 3x3/2 (SAME, 16 -> 8): 3 / 2; np.mean over the 8 x 8 map: 3 + 7 * 2 = 17,
    stride 2; a 1x1 conv after it keeps 17 / 2. A fully connected layer on the
    flattened map (batch 1) sees the same 17."""
    def net(x):
        ep = {}
        x = ep["c1"] = slim.conv2d(x, 4, 3, stride=2, scope="c1")
        ep["mean"] = np.mean(x, axis=(1, 2), keepdims=True)
        ep["c2"] = slim.conv2d(ep["mean"], 5, 1, scope="c2")
        ep["fc"] = slim.fully_connected(slim.flatten(x), 6, scope="fc")
        return x, ep

    traced = slim.summary(net, (1, 16, 16, 3))
    assert [(r["layer"], r["rf"], r["stride"]) for r in traced.rows] == [
        ("c1", SQ(3), SQ(2)), ("c2", SQ(17), SQ(2)), ("fc", SQ(17), SQ(2))]
    assert traced.rows[2]["shape"] == (1, 6)
    s = slim.summary(traced.end_points, (1, 16, 16, 3), store=traced.store, network_fn=net)
    assert [r["rf"] for r in s.rows] == [SQ(3), SQ(17), SQ(17), SQ(17)]


# ---------------------------------------------------------------------- transposed convolutions

def decoder(z, depth=32):
    """DCGAN-like: 4 x 4 x 64 -> 8 -> 16 -> 32 x 32 x 3 (slim's layer, batch norm on
    the first two), then a 3x3 VALID stride-1 pyconv.nn.conv2d_transpose -> 34."""
    ep = {}
    with slim.arg_scope([slim.conv2d_transpose], normalizer_fn=slim.batch_norm):
        x = ep["deconv1"] = slim.conv2d_transpose(z, depth, 5, stride=2, scope="deconv1")
        x = ep["deconv2"] = slim.conv2d_transpose(x, depth // 2, 5, stride=2, scope="deconv2")
    x = ep["deconv3"] = slim.conv2d_transpose(x, 3, 4, stride=2, activation_fn=np.tanh,
                                              scope="deconv3")
    with slim.variable_scope("head"):
        x = ep["head"] = slim.nn.conv2d_transpose(x, np.ones((3, 3, 3, 3), np.float32),
                                                  (1, 34, 34, 3), 1, "VALID")
    return x, ep


# One dimension of the decoder, each layer's forward-convolution pad before
# (SAME, out = in * s: total max(k - s, 0), the smaller half before).
DECODER_LAYERS = [("deconv", 5, 2, 1), ("deconv", 5, 2, 1), ("deconv", 4, 2, 1),
                  ("deconv", 3, 1, 0)]

# Hand-derived, per dimension (output o of a k / s transposed conv with pad p
# receives inputs ceil((o + p - k + 1) / s) .. floor((o + p) / s)):
# deconv1 5/2: odd o get 3 inputs, even 2 -> 3, stride 1/2.
# deconv2 5/2: o = 4n + 1 takes deconv1 outputs 2n - 1, 2n, 2n + 1, which see
#   inputs n - 2 .. n + 1 -> 4; the other phases see 3 -> 4, stride 1/4.
# deconv3 4/2: every output takes two neighbouring deconv2 outputs q, q + 1; for
#   q = 4n, 4n + 1 they span n - 2 .. n + 1 (4), else 3 -> 4 (a recurrence on
#   sizes alone would give 4 + 1 * 1/4), stride 1/8.
# head 3/1 VALID: three neighbouring deconv3 outputs = three neighbouring
#   deconv2 outputs, at most n - 2 .. n + 1 (or n - 1 .. n + 2) -> 4, stride 1/8.
DECODER_RF = [3, 4, 4, 4]
DECODER_STRIDE = [Fraction(1, 2), Fraction(1, 4), Fraction(1, 8), Fraction(1, 8)]


def pushed_field(layers, n):
    """The receptive field found by pushing pixels through the float64 reference:
    one dimension (width 1, kernels k x 1 of ones), input pixel i alone set to 1;
    an output depends on i where it is non-zero. ``layers``: (kind, k, s,
    padding) with kind "conv" or "deconv" (TF's sizes: SAME deconv in * s,
    VALID in * s + max(k - s, 0)). The widest over the outputs whose inputs
    all lie inside the map (away from both edges, where nothing is cut off)."""
    deps = None
    for i in range(n):
        x = np.zeros((1, n, 1, 1))
        x[0, i, 0, 0] = 1
        for kind, k, s, padding in layers:
            w = np.ones((k, 1, 1, 1))
            if kind == "conv":
                x = conv2d_padded(x, w, (s, 1), padding)
            else:
                size = x.shape[1]
                out = size * s + (max(k - s, 0) if padding == "VALID" else 0)
                pads = (transpose_pads(padding, out, k, s), (0, 0))
                x = conv2d_transpose_reference(x, w, (s, 1), pads, (out, 1))
        if deps is None:
            deps = [set() for _ in range(x.shape[1])]
        for o in np.flatnonzero(x[0, :, 0, 0]):
            deps[o].add(i)
    inner = [d for d in deps if d and min(d) > 0 and max(d) < n - 1]
    return max(max(d) - min(d) + 1 for d in inner)


DECODER_PUSHED = [("deconv", 5, 2, "SAME"), ("deconv", 5, 2, "SAME"), ("deconv", 4, 2, "SAME"),
                  ("deconv", 3, 1, "VALID")]


def test_decoder_receptive_fields_are_counted_independently():
    for i in range(1, 5):
        assert rf_reference.receptive_field(DECODER_LAYERS[:i], range(256)) == DECODER_RF[i - 1]
        assert rf_reference.stride(DECODER_LAYERS[:i], 64, 64) == DECODER_STRIDE[i - 1]
        assert pushed_field(DECODER_PUSHED[:i], 24) == DECODER_RF[i - 1]


def test_summary_traces_transposed_convolutions():
    """Shapes (SAME: in * 2; VALID stride 1: in + 2), parameters (weights
    [k, k, out, in], batch norm beta + moving mean/variance, biases without
    it), multiply-adds in_h * in_w * k * k * cin * cout, fields as derived."""
    s = slim.summary(decoder, (1, 4, 4, 64))
    assert [r["layer"] for r in s.rows] == ["deconv1", "deconv2", "deconv3", "head"]
    assert [r["shape"] for r in s.rows] == [(1, 8, 8, 32), (1, 16, 16, 16), (1, 32, 32, 3),
                                            (1, 34, 34, 3)]
    assert [r["params"] for r in s.rows] == [25 * 32 * 64 + 3 * 32, 25 * 16 * 32 + 3 * 16,
                                             16 * 3 * 16 + 3, 0]
    assert [r["macs"] for r in s.rows] == [4 * 4 * 25 * 64 * 32, 8 * 8 * 25 * 32 * 16,
                                           16 * 16 * 16 * 16 * 3, 32 * 32 * 9 * 3 * 3]
    assert [r["rf"] for r in s.rows] == [SQ(v) for v in DECODER_RF]
    assert [r["stride"] for r in s.rows] == [SQ(v) for v in DECODER_STRIDE]
    # TF's float operation count of Conv2DBackpropInput (tensorflow/python/
    # profiler/internal/flops_registry.py): 2 * out elements * kernel elements /
    # (out channels * stride product), for the SAME layers
    tf_flops = [2 * (8 * 8 * 32) * (25 * 32 * 64) / (32 * 4),
                2 * (16 * 16 * 16) * (25 * 16 * 32) / (16 * 4),
                2 * (32 * 32 * 3) * (16 * 3 * 16) / (3 * 4)]
    assert [2 * r["macs"] for r in s.rows[:3]] == tf_flops
    text, html = str(s), s._repr_html_()
    assert "1/8x1/8" in text and "1/2x1/2" in html and "Total mult-adds: 1,917,952" in text


def test_end_points_of_a_decoder():
    """With network_fn: the traced multiply-adds (the head's too: one traced
    layer under its scope) and fields; with the input shape
    alone: the stride from the sizes (4 / 8 = 1/2, ...; 34 does not divide) and no
    multiply-adds for a transposed layer (its weights do not tell its input)."""
    with slim.VariableStore(seed=3) as store:
        _, ep = decoder(np.zeros((1, 4, 4, 64), np.float32))
    s = slim.summary(ep, (1, 4, 4, 64), store=store, network_fn=decoder)
    assert [r["macs"] for r in s.rows] == [4 * 4 * 25 * 64 * 32, 8 * 8 * 25 * 32 * 16,
                                           16 * 16 * 16 * 16 * 3, 32 * 32 * 9 * 3 * 3]
    assert [r["rf"] for r in s.rows] == [SQ(v) for v in DECODER_RF]
    assert [r["stride"] for r in s.rows] == [SQ(v) for v in DECODER_STRIDE]
    sized = slim.summary(ep, (1, 4, 4, 64), store=store)
    assert [r["stride"] for r in sized.rows] == [SQ(Fraction(1, 2)), SQ(Fraction(1, 4)),
                                                 SQ(Fraction(1, 8)), None]
    assert [r["macs"] for r in sized.rows] == [None] * 4
    assert all(r["rf"] is None for r in sized.rows)


def test_a_decoder_after_an_encoder_gets_back_to_stride_1():
    """32 -> 16 -> 8 -> 16 -> 32. conv 3x3/2 (SAME, pad 0 before on an even size):
    3 / 2; conv 3x3/2: 3 + 2 * 2 = 7 / 4, output q sees inputs 4q .. 4q + 6.
    Transposed 4x4/2 (pad 1): output 2m takes q = m - 1, m, output 2m + 1 takes
    m, m + 1: inputs 4m - 4 .. 4m + 6 and 4m .. 4m + 10, 11 each, stride 2 (on
    average: outputs 2m + 1 and 2m + 2 see the same pixels). Transposed 4x4/2:
    every output takes two neighbouring up1 outputs; 2m, 2m + 1 together see
    4m - 4 .. 4m + 10 = 15 (a recurrence on sizes would say 11 + 1 * 2 = 13),
    stride 1. Counted, and pushed through the reference, too."""
    def unet(x):
        x = slim.conv2d(x, 4, 3, stride=2, scope="down1")
        x = slim.conv2d(x, 8, 3, stride=2, scope="down2")
        x = slim.conv2d_transpose(x, 4, 4, stride=2, scope="up1")
        return slim.conv2d_transpose(x, 2, 4, stride=2, scope="up2"), {}

    s = slim.summary(unet, (1, 32, 32, 3))
    assert [r["rf"] for r in s.rows] == [SQ(3), SQ(7), SQ(11), SQ(15)]
    assert [r["stride"] for r in s.rows] == [SQ(2), SQ(4), SQ(2), SQ(1)]
    assert [r["shape"] for r in s.rows][-1] == (1, 32, 32, 2)
    chain = [("conv", 3, 2, 1, 0), ("conv", 3, 2, 1, 0), ("deconv", 4, 2, 1),
             ("deconv", 4, 2, 1)]
    assert [rf_reference.receptive_field(chain[:i], range(64)) for i in range(1, 5)] == \
        [3, 7, 11, 15]
    assert rf_reference.stride(chain, 64, 64) == 1
    pushed = [("conv", 3, 2, "SAME"), ("conv", 3, 2, "SAME"), ("deconv", 4, 2, "SAME"),
              ("deconv", 4, 2, "SAME")]
    assert pushed_field(pushed, 64) == 15
