"""A system's tuned entry for the run's benchmark and scenario, and the settings a run takes from it.

A system file (conf/system/<name>.yaml) holds the hardware and, per benchmark x scenario, the settings a submitter
published (`tuned`). A run picks the entry for its benchmark and scenario; whatever the user set wins:
- the precision recipe, when no `precision=` was chosen (else bf16: the checkpoint as it is);
- system.tp, system.pp, system.dp left unset (else tp 1, pp 1 and one instance per tp x pp group of devices);
- scenario.target_qps left unset (else DEFAULT_TARGET_QPS);
- the engine's build flags: the user's build.flags over the entry's build_flags over the system's build_flags.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from omegaconf import DictConfig, OmegaConf

from llmkit.benchmarks import Scenario
from llmkit.config.build import BuildFlags
from llmkit.config.schema import DEFAULT_TARGET_QPS, Device, RunConfig, SystemConfig, TunedSettings

DEFAULT_PRECISION = "bf16"
# TensorRT-LLM's free_gpu_memory_fraction when nobody states one.
DEFAULT_KV_FRACTION = 0.9


def tuned_entry(system: SystemConfig, benchmark: str, scenario: Scenario) -> Optional[TunedSettings]:
    for entry in system.tuned:
        if entry.benchmark == benchmark and entry.scenario is scenario:
            return entry
    return None


def _entry_in(cfg: DictConfig) -> Optional[DictConfig]:
    """The tuned entry of a composed (untyped) config, before the RunConfig is made."""
    scenario = OmegaConf.select(cfg, "scenario.name")
    for entry in OmegaConf.select(cfg, "system.tuned") or []:
        if entry.benchmark == OmegaConf.select(cfg, "benchmark.name") and entry.scenario == scenario:
            return entry
    return None


def precision_option(cfg: DictConfig) -> Optional[str]:
    """The conf/precision/ option a config without `precision=` takes (None when one was chosen)."""
    if not OmegaConf.is_missing(cfg.precision, "name"):
        return None
    entry = _entry_in(cfg)
    return entry.precision if entry is not None else DEFAULT_PRECISION


def merged_flags(*layers: BuildFlags) -> BuildFlags:
    """Later layers win; a None in a layer leaves the value below it."""
    merged = BuildFlags()
    for layer in layers:
        for spec in fields(BuildFlags):
            value = getattr(layer, spec.name)
            if value is not None:
                setattr(merged, spec.name, value)
    return merged


def apply_tuned(run: RunConfig) -> Optional[TunedSettings]:
    """Fill what the user left unset from the system's entry for this benchmark and scenario; returns the entry."""
    system = run.system
    entry = tuned_entry(system, run.benchmark.name, run.scenario.name)
    if system.tp is None:
        system.tp = entry.tp if entry else 1
    if system.pp is None:
        system.pp = entry.pp if entry else 1
    if system.dp is None:
        devices = system.devices_per_node * system.nodes if system.device is Device.cuda else 0
        group = system.tp * system.pp
        system.dp = entry.dp if entry else max(1, devices // group) if group > 0 else 1
    if run.scenario.target_qps is None:
        run.scenario.target_qps = (entry.target_qps if entry and entry.target_qps else
                                   DEFAULT_TARGET_QPS[run.scenario.name])
    return entry


def build_flags(run: RunConfig) -> BuildFlags:
    """The flags an engine of this run is built with: user over entry over system (TensorRT-LLM's defaults below)."""
    entry = tuned_entry(run.system, run.benchmark.name, run.scenario.name)
    sized = BuildFlags(max_batch_size=entry.max_batch_size, max_num_tokens=entry.max_num_tokens) if entry else \
        BuildFlags()
    return merged_flags(run.system.build_flags, sized, entry.build_flags if entry else BuildFlags(), run.build.flags)


@dataclass(frozen=True)
class RuntimeLimits:
    """A run's runtime limits: None where the engine's (or the planner's) own value applies."""

    max_batch_size: int | None
    max_num_tokens: int | None
    kv_fraction: float


def runtime_limits(run: RunConfig, max_batch_size: int | None, max_num_tokens: int | None,
                   kv_fraction: float | None) -> RuntimeLimits:
    """The values given (a backend's or the planner's settings), else the tuned entry's runtime ones for this
    benchmark and scenario, else None and DEFAULT_KV_FRACTION."""
    entry = tuned_entry(run.system, run.benchmark.name, run.scenario.name)
    return RuntimeLimits(
        max_batch_size if max_batch_size is not None else entry.runtime_batch if entry else None,
        max_num_tokens if max_num_tokens is not None else entry.runtime_tokens if entry else None,
        kv_fraction if kv_fraction is not None else
        entry.kv_cache_free_gpu_memory_fraction if entry else DEFAULT_KV_FRACTION)
