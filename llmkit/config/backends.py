"""The backend registry: one line per backend, its config schema, and where its implementation lives.

Each backend's schema is stored in Hydra's ConfigStore under group "backend" as `<name>_schema`; its YAML
(conf/backend/<name>.yaml) names that schema in its defaults list and states only what differs. The implementation
(`module:Class`) is imported only when the backend runs, by sut.backends.create_backend.

Adding a backend: its implementation module under sut/backends/, a schema below (with the rules its settings must
meet in `problems`), its YAML, and its registry line.
"""
from __future__ import annotations

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore

from llmkit.config.schema import BackendConfig, DType, PrecisionConfig, SystemConfig
from llmkit.errors import UserError, did_you_mean


@dataclass
class HFBackendConfig(BackendConfig):
    """PyTorch + transformers with the kit's own continuous batching (CPU or one GPU per instance)."""

    name: str = "hf"
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


@dataclass(frozen=True)
class BackendEntry:
    schema: type[BackendConfig]
    implementation: str  # module:Class, imported only when the backend runs
    # An instance may span several MPI ranks (a leader that serves and followers that only participate).
    spans_ranks: bool = False


BACKENDS: dict[str, BackendEntry] = {
    "hf": BackendEntry(HFBackendConfig, "sut.backends.hf:HFBackend"),
    "replay": BackendEntry(ReplayBackendConfig, "sut.backends.replay:ReplayBackend", spans_ranks=True),
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
