"""Instance placement: which process hosts which instances, on which devices; a launch that cannot fit is one
sentence naming the launches that do."""
from __future__ import annotations

import pytest

from llmkit.config.schema import Device, SystemConfig
from llmkit.errors import UserError
from sut.placement import PlacementMode, place


def gpus(**fields) -> SystemConfig:
    """A resolved system (a composed config fills dp, tp and pp; llmkit/config/systems.py)."""
    return SystemConfig(name="gpus", device=Device.cuda, **{"devices_per_node": 8, "dp": 1, "tp": 1, "pp": 1, **fields})


def test_one_process_slices_the_devices_per_instance():
    placement = place(gpus(dp=4, tp=2), world_size=1, spans_ranks=False)
    assert placement.mode is PlacementMode.process
    assert [p.devices for p in placement.instances] == [
        ("cuda:0", "cuda:1"), ("cuda:2", "cuda:3"), ("cuda:4", "cuda:5"), ("cuda:6", "cuda:7")]
    assert all(p.ranks == (0,) for p in placement.instances)
    cpu = place(SystemConfig(name="cpu", dp=2, tp=1, pp=1), world_size=1, spans_ranks=False)
    assert [p.devices for p in cpu.instances] == [("cpu",), ("cpu",)]


def test_one_rank_per_node_hosts_that_nodes_instances():
    placement = place(gpus(nodes=2, dp=8, tp=2), world_size=3, spans_ranks=False)
    assert placement.mode is PlacementMode.ranks
    assert [p.host for p in placement.instances] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert placement.instances[4].devices == ("cuda:0", "cuda:1")  # node 2's own devices
    assert [p.index for p in placement.hosted_by(2)] == [4, 5, 6, 7] and placement.hosted_by(0) == []


def test_one_rank_per_instance_on_one_node_gives_each_its_own_devices():
    placement = place(gpus(dp=8), world_size=9, spans_ranks=False)
    assert [p.devices for p in placement.instances] == [(f"cuda:{k}",) for k in range(8)]
    two_per_node = place(gpus(nodes=2, dp=8, tp=2), world_size=5, spans_ranks=False)  # 2 ranks on each node
    assert [p.devices for p in two_per_node.instances] == [
        ("cuda:0", "cuda:1"), ("cuda:2", "cuda:3"), ("cuda:4", "cuda:5"), ("cuda:6", "cuda:7")] * 2


def test_more_gpus_than_the_system_has_are_refused_under_a_launcher():
    with pytest.raises(UserError, match="need 16 GPUs but the system has 8 x 1 nodes"):
        place(gpus(dp=16), world_size=3, spans_ranks=False)
    with pytest.raises(UserError, match="do not spread evenly over system.nodes=2"):
        place(gpus(nodes=2, dp=6), world_size=4, spans_ranks=False)


def test_leader_mode_gives_each_instance_its_ranks_and_feeds_only_leaders():
    placement = place(gpus(dp=2, tp=4), world_size=9, spans_ranks=True)
    assert placement.mode is PlacementMode.leader
    assert [p.ranks for p in placement.instances] == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert placement.instances[1].devices == ("cuda:4", "cuda:5", "cuda:6", "cuda:7")
    assert [p.index for p in placement.hosted_by(5)] == [1] and placement.hosted_by(6) == []
    assert [p.index for p in placement.followed_by(6)] == [1]


def test_a_backend_that_cannot_span_ranks_is_never_placed_in_leader_mode():
    with pytest.raises(UserError, match="launch -n 3 .one rank per instance."):
        place(gpus(dp=2, tp=4), world_size=9, spans_ranks=False)


@pytest.mark.parametrize(("system", "world", "fits"), [
    (gpus(dp=3, nodes=1), 3, "launch -n 4 (one rank per instance)"),
    (gpus(dp=4, nodes=2, tp=2), 4, "-n 3 (one rank per node)"),
    (gpus(dp=1, tp=2), 4, "-n 3 (one rank per device, leader mode)"),
])
def test_a_launch_that_does_not_fit_names_the_launches_that_do(system, world, fits):
    with pytest.raises(UserError, match="launch -n") as error:
        place(system, world_size=world, spans_ranks=True)
    assert fits in str(error.value)


def test_instances_that_need_more_gpus_than_a_node_has_are_refused():
    with pytest.raises(UserError, match="needs 16 GPUs on a node but system.devices_per_node=8"):
        place(gpus(dp=2, tp=8), world_size=1, spans_ranks=False)
