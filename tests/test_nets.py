"""pyconv.nets against TensorFlow: every net's output, end points and
variables as TF-Slim computed them (fixtures from tools/tf_reference/gen_nets.py,
weights regenerated from the seed, loaded before the net is built)."""

import pytest

import nets_replay

IDS = nets_replay.fixture_ids()


def test_fixtures_present():
    assert len(IDS) >= 40, f"expected the net fixtures in {nets_replay.FIXTURES}, found {IDS}"


@pytest.mark.parametrize("config_id", IDS)
def test_net_matches_tf(config_id):
    record, arrays = nets_replay.load_fixture(config_id)
    nets_replay.check(record, arrays)
