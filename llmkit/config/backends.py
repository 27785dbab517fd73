"""The backend registry: one line per backend, its config schema, and where its implementation lives.

Each backend's schema is stored in Hydra's ConfigStore under group "backend" as `<name>_schema`; its YAML
(conf/backend/<name>.yaml) names that schema in its defaults list and states only what differs. The implementation
(`module:Class`) is imported only when the backend runs, by sut.backends.create_backend.

Adding a backend: its implementation module under sut/backends/, a schema below (with the rules its settings must
meet in `problems`), its YAML, and its registry line.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

from hydra.core.config_store import ConfigStore

from llmkit.config.schema import BackendConfig, Device, DType, PrecisionConfig, SystemConfig
from llmkit.errors import UserError, did_you_mean


@dataclass
class HFBackendConfig(BackendConfig):
    """PyTorch + transformers with the kit's own continuous batching (CPU or one GPU per instance)."""

    name: str = "hf"
    max_batch_size: int = 32
    dtype: DType = DType.float32
    # Prompt tokens admitted into one prefill step.
    max_prefill_tokens: int = 8192
    # torch intra-op threads per backend instance; 0 lets torch choose.
    threads: int = 0

    def problems(self, system: SystemConfig) -> list[str]:
        found = []
        if system.tp != 1 or system.pp != 1:
            found.append(f"the hf backend runs one device per instance but system.tp={system.tp} "
                         f"system.pp={system.pp}; set system.tp=1 system.pp=1 and scale with system.dp")
        if self.max_prefill_tokens < 1:
            found.append(f"backend.max_prefill_tokens must be at least 1, got {self.max_prefill_tokens}")
        if self.threads < 0:
            found.append(f"backend.threads must be 0 (torch chooses) or more, got {self.threads}")
        return found

    def weights_dtype(self, precision: PrecisionConfig) -> str:
        return self.dtype.value


@dataclass
class ReplayBackendConfig(BackendConfig):
    """A simulated engine answering each sample with its reference output at a configured speed."""

    name: str = "replay"
    max_batch_size: int = 256  # slots per instance
    # The time to the first token after a request gets a slot, and from each token to the next.
    ttft_ms: float = 0.0
    tpot_ms: float = 0.0

    def problems(self, system: SystemConfig) -> list[str]:
        if self.ttft_ms < 0 or self.tpot_ms < 0:
            return ["backend.ttft_ms and backend.tpot_ms must not be negative"]
        return []


class TrtllmPlacement(str, Enum):
    orchestrator = "orchestrator"  # one process; each Executor spawns its own tp x pp workers (llmkit run)
    leader = "leader"  # under mpirun: every rank of an instance builds the Executor, its first rank serves


def _trtllm_problems(backend, system: SystemConfig, name: str) -> list[str]:
    """The rules both TensorRT-LLM backends share."""
    found = []
    if system.device is not Device.cuda:
        found.append(f"backend={name} runs on NVIDIA GPUs but system={system.name} has none; choose a GPU system "
                     "(system=h100x8, h200x8, b200x8) or backend=hf")
    for knob in ("max_batch_size", "max_num_tokens"):
        value = getattr(backend, knob)
        if value is not None and value < 1:
            found.append(f"backend.{knob} must be at least 1, got {value}")
    fraction = backend.kv_cache_free_gpu_memory_fraction
    if fraction is not None and not 0 < fraction < 1:
        found.append(f"backend.kv_cache_free_gpu_memory_fraction must lie strictly between 0 and 1 (TensorRT-LLM "
                     f"refuses 1.0), got {fraction}")
    if backend.poll_ms <= 0:
        found.append(f"backend.poll_ms must be positive, got {backend.poll_ms}")
    if backend.warmup_requests < 0:
        found.append(f"backend.warmup_requests must be 0 (no warm-up) or more, got {backend.warmup_requests}")
    if backend.stall_timeout_s <= 0:
        found.append(f"backend.stall_timeout_s must be positive, got {backend.stall_timeout_s}")
    return found


@dataclass
class TrtllmBackendConfig(BackendConfig):
    """TensorRT-LLM 1.2.1's Executor over a built engine (llmkit build), one Executor per data-parallel instance."""

    name: str = "trtllm"
    # The engine directory; None: the newest engine under <artifacts_root>/engines/ built for this run.
    engine_dir: Optional[str] = None
    # Runtime limits; None: the system's tuned entry, else the engine's build values (never above them).
    max_batch_size: Optional[int] = None
    max_num_tokens: Optional[int] = None
    # The KV cache's share of the GPU memory left after the weights; None: the entry's, else TensorRT-LLM's (0.9).
    kv_cache_free_gpu_memory_fraction: Optional[float] = None
    placement: TrtllmPlacement = TrtllmPlacement.orchestrator
    # How long one await_responses call waits for answers.
    poll_ms: float = 5.0
    # Random prompts served (and not reported) before loadgen starts.
    warmup_requests: int = 4
    # An instance with requests outstanding that neither answers nor iterates for this long has stalled: the run
    # ends, naming it (a hung executor must never hang the run).
    stall_timeout_s: float = 120.0

    def problems(self, system: SystemConfig) -> list[str]:
        found = _trtllm_problems(self, system, self.name)
        if self.placement is TrtllmPlacement.orchestrator and system.nodes > 1:
            found.append(f"backend.placement=orchestrator runs every instance in one process on one node but "
                         f"system.nodes={system.nodes}; set backend.placement=leader and launch under mpirun or srun")
        return found

    def weights_dtype(self, precision: PrecisionConfig) -> str:
        return precision.name.value


@dataclass
class TrtllmPytorchBackendConfig(BackendConfig):
    """The current TensorRT-LLM LLM API (PyTorch backend) over a Hugging Face or modelopt-unified checkpoint; no
    engine build."""

    name: str = "trtllm-pytorch"
    max_batch_size: Optional[int] = None
    max_num_tokens: Optional[int] = None
    kv_cache_free_gpu_memory_fraction: Optional[float] = None
    poll_ms: float = 5.0
    warmup_requests: int = 4
    # An instance with requests outstanding that neither answers nor iterates for this long has stalled (as trtllm).
    stall_timeout_s: float = 120.0

    def problems(self, system: SystemConfig) -> list[str]:
        found = _trtllm_problems(self, system, self.name)
        if system.nodes > 1:
            found.append(f"backend=trtllm-pytorch runs its instances in one process on one node (the LLM API spawns "
                         f"each instance's tp x pp workers) but system.nodes={system.nodes}; use backend=trtllm with "
                         "backend.placement=leader across nodes")
        return found


@dataclass(frozen=True)
class BackendEntry:
    schema: type[BackendConfig]
    implementation: str  # module:Class, imported only when the backend runs
    # An instance may span several MPI ranks (a leader that serves and followers that only participate).
    spans_ranks: bool = False


BACKENDS: dict[str, BackendEntry] = {
    "hf": BackendEntry(HFBackendConfig, "sut.backends.hf:HFBackend"),
    "replay": BackendEntry(ReplayBackendConfig, "sut.backends.replay:ReplayBackend", spans_ranks=True),
    "trtllm": BackendEntry(TrtllmBackendConfig, "sut.backends.trtllm:TrtllmBackend", spans_ranks=True),
    "trtllm-pytorch": BackendEntry(TrtllmPytorchBackendConfig, "sut.backends.trtllm_pytorch:TrtllmPytorchBackend"),
}

for _name, _entry in BACKENDS.items():
    ConfigStore.instance().store(group="backend", name=f"{_name}_schema", node=_entry.schema)


def backend_entry(name: str) -> BackendEntry:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UserError(f"unknown backend '{name}'{did_you_mean(name, BACKENDS)}; choose backend= one of: "
                        f"{', '.join(BACKENDS)}") from None


def owner_of(key: str) -> str | None:
    """The backend whose schema has this key, when only other backends' schemas have it."""
    owners = [name for name, entry in BACKENDS.items() if key in entry.schema.__dataclass_fields__]
    return owners[0] if len(owners) == 1 else None
