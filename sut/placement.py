"""Instance placement: which process hosts which backend instances, and which devices each instance gets.

`system.dp` instances of `system.tp` x `system.pp` devices each, laid out one of three ways:

- **one process** (no launcher): every instance in this process, instance k on devices [k*tp*pp, (k+1)*tp*pp)
  (threads today; TensorRT-LLM's orchestrator mode, one executor per instance, likewise);
- **instances per rank** (`mpirun`/`srun -n 1+W`): rank 0 runs loadgen and the dispatcher; the W worker ranks host
  dp/W instances each, on their own node's devices: `-n 1+nodes` puts one rank on each node hosting that node's
  instances, `-n 1+dp` one rank per instance;
- **instances spanning ranks** (leader mode, `-n 1+dp*tp*pp`, for backends that can): one rank per device; the
  first rank of each instance is its leader and serves, the others only participate. The dispatcher never feeds a
  follower.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import Enum

from llmkit.config.schema import Device, SystemConfig
from llmkit.errors import UserError
from sut.backends.base import BackendSpec


class PlacementMode(str, Enum):
    process = "one process"
    ranks = "instances per rank"
    leader = "instances spanning ranks"


@dataclass(frozen=True)
class InstancePlace:
    index: int
    ranks: tuple[int, ...]  # the leader first; (0,) in one process
    devices: tuple[str, ...]  # one per rank in leader mode, else the instance's slice of its host's devices

    @property
    def host(self) -> int:
        return self.ranks[0]


@dataclass(frozen=True)
class Placement:
    mode: PlacementMode
    world_size: int
    instances: tuple[InstancePlace, ...]

    def hosted_by(self, rank: int) -> list[InstancePlace]:
        """The instances whose leader (host) is `rank`."""
        return [place for place in self.instances if place.host == rank]

    def followed_by(self, rank: int) -> list[InstancePlace]:
        """The instances in which `rank` only participates."""
        return [place for place in self.instances if rank in place.ranks[1:]]

    def describe(self) -> dict:
        return {"mode": self.mode.value, "world_size": self.world_size,
                "instances": [asdict(place) for place in self.instances]}


def instance_spec(spec: BackendSpec, place: InstancePlace) -> BackendSpec:
    """The backend spec of one placed instance: its index, its devices and its ranks."""
    return replace(spec, instance=place.index, devices=place.devices, ranks=place.ranks)


def _devices(system: SystemConfig, first: int, count: int) -> tuple[str, ...]:
    if system.device is Device.cpu:
        return ("cpu",)
    return tuple(f"cuda:{i}" for i in range(first, first + count))


def _check_fits(system: SystemConfig, needed: int, where: str) -> None:
    if system.device is Device.cuda and needed > system.devices_per_node:
        raise UserError(f"{where} needs {needed} GPUs on a node but system.devices_per_node={system.devices_per_node}; "
                        "lower system.dp or system.tp x system.pp, or spread the instances over more nodes and ranks")


def _fitting_launches(system: SystemConfig, spans_ranks: bool) -> str:
    per = system.tp * system.pp
    options = [f"-n {1 + system.dp} (one rank per instance)"]
    if system.nodes > 1 and system.dp % system.nodes == 0:
        options.append(f"-n {1 + system.nodes} (one rank per node)")
    if spans_ranks and per > 1:
        options.append(f"-n {1 + system.dp * per} (one rank per device, leader mode)")
    return " or ".join(options)


def place(system: SystemConfig, world_size: int, spans_ranks: bool) -> Placement:
    """Where each of the system's instances runs, for `world_size` processes (1 without a launcher)."""
    dp, per = system.dp, system.tp * system.pp
    if world_size == 1:
        _check_fits(system, dp * per, f"system.dp={dp} instances of tp x pp = {per} in one process")
        return Placement(PlacementMode.process, 1, tuple(
            InstancePlace(k, (0,), _devices(system, k * per, per)) for k in range(dp)))
    workers = world_size - 1
    if system.device is Device.cuda and dp * per > system.devices_per_node * system.nodes:
        raise UserError(f"system.dp={dp} instances of tp x pp = {per} need {dp * per} GPUs but the system has "
                        f"{system.devices_per_node} x {system.nodes} nodes; lower system.dp or add nodes")
    if workers % system.nodes:
        raise UserError(f"the launcher started {workers} worker ranks, which do not spread evenly over "
                        f"system.nodes={system.nodes}; launch {_fitting_launches(system, spans_ranks)}")
    ranks_per_node = workers // system.nodes
    if spans_ranks and per > 1 and workers == dp * per:
        instances = tuple(InstancePlace(
            k, tuple(range(1 + k * per, 1 + (k + 1) * per)),
            tuple(d for w in range(k * per, (k + 1) * per) for d in _devices(system, w % ranks_per_node, 1)))
            for k in range(dp))
        return Placement(PlacementMode.leader, world_size, instances)
    if dp % workers == 0:
        share = dp // workers
        _check_fits(system, ranks_per_node * share * per, f"{ranks_per_node} worker rank(s) per node hosting {share} "
                                                          f"instance(s) of tp x pp = {per} each")
        # Worker w is the (w mod ranks_per_node)-th rank of its node: its instances follow its node-mates' on the
        # node's devices.
        return Placement(PlacementMode.ranks, world_size, tuple(
            InstancePlace(k, (1 + k // share,),
                          _devices(system, ((k // share) % ranks_per_node * share + k % share) * per, per))
            for k in range(dp)))
    raise UserError(f"the launcher started {world_size} ranks (rank 0 for loadgen and {workers} worker ranks), which "
                    f"cannot host system.dp={dp} instances of tp x pp = {per}; launch {_fitting_launches(system, spans_ranks)}")
