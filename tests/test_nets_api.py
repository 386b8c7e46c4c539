"""pyconv.nets as a user drives it: checkpoints (the user's path, slim's path,
fine-tuning, a wrong class count), nets_factory, training mode, dtypes, bad
input, memory over many calls, and threads. Expected values are TF's (the net
fixtures of tools/tf_reference/gen_nets.py) or the checkpoint's contents."""

import os
import threading
import warnings

import numpy as np
import pytest

import pyconv as slim
from net_weights import net_input, net_weights
from nets_replay import TOLERANCE, load_fixture, relative_error
from pyconv import train
from pyconv.nets import inception_v2, inception_v3, mobilenet_v1, nets_factory, resnet_v1
from pyconv.nets import resnet_v2, vgg

TINY = "resnet_v1_custom_noroot"  # resnet_v1 of custom blocks, scope 'tiny', 7 classes


_BLOCKS = []


def _tiny_blocks():
    if not _BLOCKS:
        record, _ = load_fixture(TINY)
        _BLOCKS.extend(resnet_v1.resnet_v1_block(s, base_depth=b, num_units=n, stride=st)
                       for s, b, n, st in record["kwargs"]["blocks"])
    return _BLOCKS


def _tiny(images, num_classes=7, **kwargs):
    with slim.arg_scope(resnet_v1.resnet_arg_scope()):
        return resnet_v1.resnet_v1(images, _tiny_blocks(), num_classes, is_training=False,
                                   include_root_block=False, scope="tiny", **kwargs)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    record, arrays = load_fixture(TINY)
    prefix = str(tmp_path_factory.mktemp("ckpt") / "tiny.ckpt")
    train.save_checkpoint(prefix, net_weights(record["variables"], record["seed"]))
    return prefix, record, arrays


# --------------------------------------------------------------------------- checkpoints


def test_users_path_resnet_v1_50_from_a_checkpoint(tmp_path):
    record, arrays = load_fixture("resnet_v1_50")
    prefix = str(tmp_path / "resnet_v1_50.ckpt")
    train.save_checkpoint(prefix, net_weights(record["variables"], record["seed"]))
    images = net_input(record["input_shape"], record["seed"])
    # SPEC.md "Nets", as written
    with slim.VariableStore() as store:
        store.load(prefix)
        with slim.arg_scope(resnet_v1.resnet_arg_scope()):
            logits, end_points = resnet_v1.resnet_v1_50(images, 1000, is_training=False)
    store.check_loaded()
    assert logits.shape == (1, 1, 1, 1000)
    assert relative_error(logits, arrays["output"]) <= TOLERANCE
    assert "predictions" in end_points and "resnet_v1_50/block4" in end_points


def test_slims_path_build_assign_then_reuse(tiny_checkpoint):
    prefix, record, arrays = tiny_checkpoint
    images = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore(seed=1):
        random_logits, _ = _tiny(images)
        init_fn = slim.assign_from_checkpoint_fn(prefix, slim.get_model_variables())
        init_fn(None)  # slim passes a session; pyconv has none
        logits, _ = _tiny(images, reuse=True)
    assert relative_error(random_logits, arrays["output"]) > 1e-2
    assert relative_error(logits, arrays["output"]) <= TOLERANCE


def test_fine_tuning_restores_all_but_the_logits(tiny_checkpoint):
    prefix, record, _ = tiny_checkpoint
    images = net_input(record["input_shape"], record["seed"])
    reader = train.load_checkpoint(prefix)
    with slim.VariableStore(seed=1) as store:
        _tiny(images, num_classes=3)
        restore = slim.get_variables_to_restore(exclude=["tiny/logits"])
        assert restore and all(not v.name.startswith("tiny/logits") for v in restore)
        slim.assign_from_checkpoint_fn(prefix, restore)(None)
        for v in restore:
            np.testing.assert_array_equal(v.value, reader.get_tensor(v.name))
        assert store["tiny/logits/weights"].shape == (1, 1, 64, 3)
        assert sorted(store.variables_not_loaded()) == ["tiny/logits/biases",
                                                        "tiny/logits/weights"]


def test_a_checkpoint_with_other_classes_is_a_clear_error(tiny_checkpoint):
    prefix, record, _ = tiny_checkpoint
    images = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore() as store:  # like 1001 zoo classes into a 1000-class net
        store.load(prefix)
        with pytest.raises(ValueError, match=r"tiny/logits/weights was loaded with shape "
                                             r"\(1, 1, 64, 7\).*needs shape \(1, 1, 64, 6\)"):
            _tiny(images, num_classes=6)
    with slim.VariableStore():  # slim's path: slim's message
        _tiny(images, num_classes=6)
        init_fn = slim.assign_from_checkpoint_fn(prefix, slim.get_model_variables())
        with pytest.raises(ValueError, match=r"Total size of new array must be unchanged for "
                                             r"tiny/logits/weights"):
            init_fn(None)


def test_a_checkpoint_of_another_net_and_missing_variables_are_reported(tiny_checkpoint):
    prefix, record, _ = tiny_checkpoint
    images = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore() as store:
        store.load(prefix)
        with pytest.warns(UserWarning, match="tiny/"):
            with slim.arg_scope(resnet_v2.resnet_arg_scope()):
                resnet_v2.resnet_v2(images, [resnet_v2.resnet_v2_block("block1", 8, 1, 1)], 7,
                                    is_training=False, include_root_block=False, scope="other")
        with pytest.raises(ValueError, match="other/block1/unit_1/bottleneck_v2"):
            store.check_loaded()
    values = dict(net_weights(record["variables"], record["seed"]))
    del values["tiny/logits/biases"]
    with slim.VariableStore() as store:
        store.load(values)
        _tiny(images)
        assert store.variables_not_loaded() == ["tiny/logits/biases"]
        with pytest.raises(ValueError, match="tiny/logits/biases"):
            store.check_loaded()


# --------------------------------------------------------------------------- nets_factory


def test_network_fn_can_be_called_again_and_reuses_the_variables():
    record, arrays = load_fixture("mobilenet_v1_025_128_features")
    fn = nets_factory.get_network_fn("mobilenet_v1_025", num_classes=0)
    assert fn.default_image_size == 224 and fn.__name__ == "mobilenet_v1"
    images = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore() as store:
        store.load(net_weights(record["variables"], record["seed"]))
        first, ep1 = fn(images)
        count = len(store.variables())
        second, ep2 = fn(images)
        assert len(store.variables()) == count
    assert relative_error(first, arrays["output"]) <= TOLERANCE
    np.testing.assert_array_equal(first, second)
    assert list(ep1) == list(ep2)


def test_pool_end_point_keys_are_the_same_on_every_call():
    record, arrays = load_fixture("alexnet_v2")
    fn = nets_factory.get_network_fn("alexnet_v2", 1000)
    images = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore() as store:
        store.load(net_weights(record["variables"], record["seed"]))
        (first, ep1), (_, ep2) = fn(images), fn(images)
        # larger images give larger logits: squeezing them is TF's error, explained
        with pytest.raises(ValueError, match="spatial_squeeze=False"):
            fn(np.zeros((1, 256, 256, 3), np.float32))
        logits, _ = fn(np.zeros((1, 256, 256, 3), np.float32), spatial_squeeze=False)
    assert relative_error(first, arrays["output"]) <= TOLERANCE
    assert list(ep1) == list(ep2) == [k for k, _ in record["end_points"]]
    assert "alexnet_v2/pool5" in ep2  # TF would name a second build's pools alexnet_v2_1/...
    assert logits.shape == (1, 2, 2, 1000)


def test_nets_factory_lists_the_nets_and_refuses_unknown_names():
    assert set(nets_factory.networks_map) == set(nets_factory.arg_scopes_map)
    assert nets_factory.arg_scopes_map["inception_v1"] is inception_v3.inception_v3_arg_scope
    with pytest.raises(ValueError, match="Name of network unknown resnet_v3_50.*resnet_v1_50"):
        nets_factory.get_network_fn("resnet_v3_50", 10)


# --------------------------------------------------------------------------- training mode


def test_dropout_in_training_is_active_and_seeded():
    images = net_input((2, 75, 75, 3), 5)
    args = dict(num_classes=5, is_training=True, depth_multiplier=0.25, reuse=slim.AUTO_REUSE,
                create_aux_logits=False)
    with slim.VariableStore(seed=0):
        with slim.arg_scope(inception_v3.inception_v3_arg_scope()):
            kept = inception_v3.inception_v3(images, dropout_keep_prob=1.0, **args)[1]
            with slim.arg_scope([slim.dropout], seed=3):
                a = inception_v3.inception_v3(images, dropout_keep_prob=0.5, **args)[1]
                b = inception_v3.inception_v3(images, dropout_keep_prob=0.5, **args)[1]
            c = inception_v3.inception_v3(images, dropout_keep_prob=0.5, **args)[1]
    pre, full = a["PreLogits"], kept["PreLogits"]
    live = full != 0  # ReLU zeros stay zeros
    dropped = pre[live] == 0
    assert live.sum() > 100 and 0.35 < dropped.mean() < 0.65
    np.testing.assert_allclose(pre[live][~dropped], 2 * full[live][~dropped], rtol=1e-6)
    np.testing.assert_array_equal(a["PreLogits"], b["PreLogits"])  # same seed, same mask
    assert not np.array_equal(a["PreLogits"], c["PreLogits"])


# --------------------------------------------------------------------------- dtypes


def test_float64_images_run_a_float32_checkpoint_in_float32(tiny_checkpoint):
    prefix, record, arrays = tiny_checkpoint
    images = net_input(record["input_shape"], record["seed"])
    with slim.VariableStore() as store:
        store.load(prefix)
        logits64, _ = _tiny(images.astype(np.float64))  # e.g. img / 255.0
        logits32, _ = _tiny(images, reuse=True)
    assert logits64.dtype == np.float32
    assert {v.dtype for v in store.variables()} == {np.dtype(np.float32)}
    np.testing.assert_array_equal(logits64, logits32)
    assert relative_error(logits64, arrays["output"]) <= TOLERANCE


def test_float64_images_into_inception_v2s_separable_first_layer():
    record, arrays = load_fixture("inception_v2_base_4a_dm05_128")
    images = net_input(record["input_shape"], record["seed"]).astype(np.float64)
    with slim.VariableStore() as store:
        store.load(net_weights(record["variables"], record["seed"]))
        with slim.arg_scope(inception_v2.inception_v2_arg_scope()):
            net, _ = inception_v2.inception_v2_base(images, **record["kwargs"])
    assert net.dtype == np.float32
    assert relative_error(net, arrays["output"]) <= TOLERANCE


def test_a_net_built_from_float64_images_stays_float64():
    images = net_input((1, 33, 33, 16), 2).astype(np.float64)
    with slim.VariableStore(seed=0) as store:
        logits64, _ = _tiny(images)
        logits, _ = _tiny(images.astype(np.float32), reuse=True)
    assert {v.dtype for v in store.variables()} == {np.dtype(np.float64)}
    assert logits.dtype == np.float64
    np.testing.assert_array_equal(logits, logits64)


# --------------------------------------------------------------------------- bad input


def test_bad_images_are_clear_errors():
    with slim.VariableStore():
        with pytest.raises(ValueError, match=r"resnet_v1_50 expects images of shape \[batch, "
                                             r"height, width, channels\].*\(224, 224, 3\)"):
            resnet_v1.resnet_v1_50(np.zeros((224, 224, 3), np.float32), 10)
        with pytest.raises(ValueError, match="Invalid input tensor rank, expected 4, was: 3"):
            mobilenet_v1.mobilenet_v1(np.zeros((224, 224, 3), np.float32))
        with pytest.raises(TypeError, match="numeric images"):
            resnet_v1.resnet_v1_50(np.array([[[["a"]]]]), 10)
        with pytest.raises(ValueError, match="Unknown final endpoint Mixed_9z"):
            inception_v3.inception_v3_base(np.zeros((1, 299, 299, 3)), final_endpoint="Mixed_9z")
        with pytest.raises(ValueError, match="output_stride needs to be a multiple of 4"):
            resnet_v1.resnet_v1_50(np.zeros((1, 64, 64, 3), np.float32), output_stride=6)
        with pytest.raises(ValueError, match="Only allowed output_stride values are 8, 16, 32"):
            mobilenet_v1.mobilenet_v1_base(np.zeros((1, 64, 64, 3)), output_stride=4)
        with pytest.raises(ValueError, match="depth_multiplier is not greater than zero"):
            inception_v3.inception_v3(np.zeros((1, 299, 299, 3)), depth_multiplier=0)
        assert slim.get_default_store().variables() == []  # refused before building
        with slim.arg_scope(vgg.vgg_arg_scope()):  # the layer that cannot run is named
            with pytest.raises(ValueError, match=r"vgg_a/fc6: VALID padding gives an output "
                                                 r"size of -5"):
                vgg.vgg_a(np.zeros((1, 32, 32, 3), np.float32), is_training=False)


def test_images_of_the_wrong_channel_count_name_the_layer(tiny_checkpoint):
    prefix, record, _ = tiny_checkpoint
    with slim.VariableStore() as store:
        store.load(prefix)
        with pytest.raises(ValueError, match=r"tiny/block1/unit_1/bottleneck_v1/shortcut/weights "
                                             r"was loaded with shape \(1, 1, 16, 32\), but the "
                                             r"layer needs shape \(1, 1, 3, 32\)"):
            _tiny(np.zeros((1, 33, 33, 3), np.float32))


# --------------------------------------------------------------------------- memory, threads


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_thousand_forward_passes_keep_memory_flat():
    images = net_input((1, 17, 17, 16), 4)
    with slim.VariableStore(seed=0) as store:
        for _ in range(50):
            _tiny(images, reuse=slim.AUTO_REUSE)
        rss = _rss_bytes()
        sizes = (len(store._aliases), len(store._names_in_use), len(store._collections),
                 sum(len(c) for c in store._collections.values()))
        for _ in range(950):
            logits, end_points = _tiny(images, reuse=True)
        grown = _rss_bytes() - rss
        assert (len(store._aliases), len(store._names_in_use), len(store._collections),
                sum(len(c) for c in store._collections.values())) == sizes
    assert len(end_points) == 27
    # ASan's quarantine keeps freed blocks resident on purpose (up to 256 MB):
    # RSS says nothing under it, as in test_leaks.py and test_interrupt.py
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        assert grown < 8 << 20, f"RSS grew by {grown / 2**20:.1f} MiB over 950 forward passes"


def test_two_threads_two_nets_two_stores_give_the_serial_results():
    images_a = net_input((1, 33, 33, 16), 8)
    images_b = net_input((1, 96, 96, 3), 9)
    mobilenet = nets_factory.get_network_fn("mobilenet_v1_025", 10)

    def run_a(store, out, n):
        with store:
            for _ in range(n):
                out.append(_tiny(images_a, reuse=slim.AUTO_REUSE)[0])

    def run_b(store, out, n):
        with store:
            for _ in range(n):
                out.append(mobilenet(images_b)[0])

    stores = [slim.VariableStore(seed=1), slim.VariableStore(seed=2)]
    serial = [[], []]
    run_a(stores[0], serial[0], 1)
    run_b(stores[1], serial[1], 1)
    results = [[], []]
    threads = [threading.Thread(target=run_a, args=(stores[0], results[0], 15)),
               threading.Thread(target=run_b, args=(stores[1], results[1], 15))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results[0]) == len(results[1]) == 15
    for got in results[0]:
        np.testing.assert_array_equal(got, serial[0][0])
    for got in results[1]:
        np.testing.assert_array_equal(got, serial[1][0])


# --------------------------------------------------------------------------- command


def test_nets_command_lists_a_net_and_runs_one_from_a_checkpoint(tmp_path, capsys):
    from pyconv.__main__ import main

    assert main(["nets", "mobilenet_v1_025", "--repeat", "1"]) == 0
    row = capsys.readouterr().out.splitlines()[-1].split()
    assert row[:2] == ["mobilenet_v1_025", "224x224"]
    assert row[2:4] == ["475,801", "41,030,528"]  # tensorflow/models: 0.47 M, 41 M MACs

    record, _ = load_fixture("mobilenet_v1_025")
    prefix = str(tmp_path / "mobilenet_v1_0.25_224.ckpt")
    weights = net_weights(record["variables"], record["seed"])
    train.save_checkpoint(prefix, weights)
    pixels = np.random.default_rng(3).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    image = str(tmp_path / "image.png")
    try:
        from PIL import Image
    except ImportError:  # the pillow extra: decoding is refused with a pointer to it
        assert main(["nets", "mobilenet_v1_025", "--checkpoint", prefix, "--image", "x"]) == 2
        assert "pillow" in capsys.readouterr().err
        return
    Image.fromarray(pixels).save(image)
    assert main(["nets", "mobilenet_v1_025", "--checkpoint", prefix, "--image", image]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "1001 classes, 0 = background" in out[0]
    printed = [int(line.split()[2]) for line in out[1:6]]
    with slim.VariableStore() as store:  # the library's answer for the same input
        store.load(weights)
        with slim.arg_scope(mobilenet_v1.mobilenet_v1_arg_scope()):
            logits, _ = mobilenet_v1.mobilenet_v1_025(
                (pixels.astype(np.float32) / 127.5 - 1.0)[None], 1001, is_training=False)
    assert printed == list(np.argsort(-logits[0])[:5])
    assert main(["nets", "vgg_16", "--checkpoint", prefix]) == 2  # a checkpoint of another net
    assert "no 'vgg_16/fc8/biases': it is not a checkpoint of vgg_16" in capsys.readouterr().err
    del weights["MobilenetV1/Conv2d_3_pointwise/weights"]
    train.save_checkpoint(prefix, weights)
    assert main(["nets", "mobilenet_v1_025", "--checkpoint", prefix]) == 2
    assert "MobilenetV1/Conv2d_3_pointwise/weights" in capsys.readouterr().err
