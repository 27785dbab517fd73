"""System configs: a run takes the tuned entry for its benchmark and scenario, and whatever the user set wins."""
from __future__ import annotations

import pytest

from llmkit.config.build import Toggle
from llmkit.config.load import load
from llmkit.config.schema import PrecisionName, TunedSettings
from llmkit.config.systems import build_flags
from llmkit.config.validate import Severity, check
from llmkit.errors import UserError

LLAMA = ["benchmark=llama3.1-405b", "model=tiny-llama3"]


def test_a_run_takes_its_entry_precision_topology_and_rate():
    cfg = load(["system=h200x8", *LLAMA], serving=False)
    assert cfg.precision.name is PrecisionName.fp8 and (cfg.system.tp, cfg.system.pp, cfg.system.dp) == (4, 2, 1)
    assert cfg.scenario.target_qps == 0.82
    server = load(["system=h200x8", *LLAMA, "scenario=server"], serving=False)
    assert (server.system.tp, server.system.pp) == (8, 1)
    mixtral = load(["system=b200x8"], serving=False)
    assert mixtral.precision.name is PrecisionName.autoquant and mixtral.precision.effective_bits == 7.25
    assert mixtral.system.dp == 8


def test_an_override_wins_over_the_entry():
    cfg = load(["system=h200x8", *LLAMA, "precision=nvfp4", "system.tp=8", "system.pp=1", "scenario.target_qps=2",
                "build.flags.max_batch_size=1024", "build.flags.use_fused_mlp=disable"], serving=False)
    assert cfg.precision.name is PrecisionName.nvfp4 and (cfg.system.tp, cfg.system.pp) == (8, 1)
    assert cfg.scenario.target_qps == 2
    flags = build_flags(cfg)
    assert flags.max_batch_size == 1024 and flags.use_fused_mlp is Toggle.disable
    assert flags.max_num_tokens == 2560 and flags.multiple_profiles is Toggle.enable  # entry, then system
    assert flags.gemm_allreduce_plugin.value == "float16"


def test_a_precision_setting_without_a_recipe_applies_to_the_entry_s_recipe():
    cfg = load(["system=h200x8", *LLAMA, "precision.exclude=[]"], serving=False)
    assert cfg.precision.name is PrecisionName.fp8 and cfg.precision.exclude == []
    assert cfg.precision.kv_cache.value == "fp8"  # the recipe's own YAML still applies
    with pytest.raises(UserError, match="unknown config key 'precision.effective_bits'"):
        load(["system=h100x8", "precision.effective_bits=9.0"], serving=False)  # name the recipe to set its keys


def test_a_precision_setting_equal_to_the_default_still_wins_over_the_recipe():
    cfg = load(["system=h200x8", *LLAMA, "precision.kv_cache=none"], serving=False)  # none is PrecisionConfig's own
    assert cfg.precision.name is PrecisionName.fp8 and cfg.precision.kv_cache.value == "none"


def test_without_an_entry_the_defaults_hold():
    cfg = load(["system=gb200-nvl72"], serving=False)  # no mixtral entry
    assert cfg.precision.name is PrecisionName.bf16 and (cfg.system.tp, cfg.system.pp) == (1, 1)
    assert cfg.system.dp == 72 and cfg.scenario.target_qps == 1.0
    cpu = load([], serving=False)
    assert cpu.system.dp == 1 and cpu.precision.name is PrecisionName.bf16


def _errors(cfg) -> list[str]:
    return [f.message for f in check(cfg, serving=False) if f.severity is Severity.error]


def test_bad_entries_are_found_by_validate():
    cfg = load(["system=h100x8"], serving=False)
    entry = cfg.system.tuned[0]
    cfg.system.tuned += [
        TunedSettings(benchmark=entry.benchmark, scenario=entry.scenario, precision="fp8", max_batch_size=8,
                      max_num_tokens=64),
        TunedSettings(benchmark="mixtral-8x7b", scenario=entry.scenario.__class__("Interactive"), precision="fp8",
                      max_batch_size=8, max_num_tokens=64),
        TunedSettings(benchmark="llama3.1-405b", scenario=entry.scenario, precision="fp9", tp=8,
                      max_batch_size=8, max_num_tokens=64, runtime_max_batch_size=16),
    ]
    errors = " | ".join(_errors(cfg))
    assert "has two tuned entries for mixtral-8x7b Offline" in errors
    assert "mixtral-8x7b has no Interactive scenario; remove the entry" in errors
    assert "names precision 'fp9' (did you mean 'fp8'?)" in errors
    assert "runtime_max_batch_size 16 exceeds the engine's max_batch_size 8" in errors


def test_a_topology_beyond_the_system_s_gpus_is_refused_and_a_smaller_machine_may_override_it():
    with pytest.raises(UserError, match=r"system.dp=2 instances of tp 8 x pp 1 need 16 GPUs but system=h100x8 has 8"):
        load(["system=h100x8", *LLAMA, "system.dp=2"], serving=False)
    one = load(["system=h100x8", *LLAMA, "system.devices_per_node=1", "system.tp=1", "system.dp=1"], serving=False)
    assert one.system.devices_per_node == 1


def test_a_system_must_name_a_known_gpu():
    with pytest.raises(UserError, match=r"system.gpu=H300 is not a known GPU"):
        load(["system=h100x8", "system.gpu=H300"], serving=False)


@pytest.mark.parametrize("override, expected", [
    ("plan.max_num_tokens=0", "plan.max_num_tokens must be at least 1, got 0"),
    ("plan.max_batch_size=-1", "plan.max_batch_size must be at least 1, got -1"),
    ("plan.kv_cache_free_gpu_memory_fraction=1.0", "plan.kv_cache_free_gpu_memory_fraction must lie strictly between"),
])
def test_plan_settings_out_of_range_are_refused_by_their_own_key(override, expected):
    with pytest.raises(UserError, match=None) as error:
        load(["system=h200x8", *LLAMA, override], serving=False)
    assert expected in str(error.value)
