"""Live tier (``pytest -m tf``): TF-Slim builds nets with weights from a fresh
seed and saves them with ``tf.compat.v1.train.Saver`` (V2, and V1 as the 2016
model-zoo files); pyconv loads each checkpoint with ``store.load`` and must
give TF's outputs. ``PYCONV_TF_SEED`` repeats a seed."""

import os
import random
import sys

import pytest

import nets_replay

pytestmark = pytest.mark.tf

SEED = int(os.environ.get("PYCONV_TF_SEED", random.randrange(1, 2**31)))
# one of each family, at sizes that keep the tier short
LIVE = ["resnet_v1_50", "resnet_v2_50_161_os16", "resnet_v1_custom_noroot", "vgg_a_256",
        "alexnet_v2", "overfeat", "inception_v1", "inception_v2_160", "inception_v3_150",
        "mobilenet_v1", "mobilenet_v1_base_os16_explicit_129", "train_resnet_v2_50_160",
        "train_mobilenet_v1_025_96"]


def _gen():
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(os.path.dirname(here), "tools", "tf_reference"))
    import gen_nets
    return gen_nets


# V1 for the nets whose 2016 zoo checkpoints are V1 files
V1 = ["resnet_v1_50", "inception_v1", "vgg_a_256"]


@pytest.mark.parametrize(("config_id", "version"),
                         [(c, "V2") for c in LIVE] + [(c, "V1") for c in V1])
def test_net_from_a_tf_checkpoint(config_id, version, tmp_path):
    gen_nets = _gen()
    cfg = next(c for c in gen_nets.CONFIGS if c["id"] == config_id)
    [(record, arrays, prefix)] = gen_nets.generate([cfg], SEED, str(tmp_path), version)
    nets_replay.check(record, arrays, store_values=prefix, tier="live")
