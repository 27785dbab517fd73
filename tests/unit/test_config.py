from __future__ import annotations

import re

import pytest

from llmkit.benchmarks import Scenario
from launch.validate import matrix
from llmkit.config.load import load
from llmkit.config.backends import HFBackendConfig
from llmkit.config.schema import Device, Mode, RunConfig, TinyArchitecture
from llmkit.errors import UserError


def test_default_is_the_embedded_cpu_job():
    cfg = load([])
    assert isinstance(cfg, RunConfig)
    assert cfg.benchmark.name == "mixtral-8x7b"
    assert cfg.model.tiny is TinyArchitecture.mixtral
    assert cfg.dataset.name == "sample"
    assert cfg.scenario.name is Scenario.Offline
    assert cfg.system.device is Device.cpu
    assert isinstance(cfg.backend, HFBackendConfig) and cfg.backend.name == "hf"
    assert cfg.mode is Mode.performance


def test_overrides_are_typed():
    cfg = load(["benchmark=llama3.1-405b", "model=tiny-llama3", "scenario=interactive", "backend.max_batch_size=4"])
    assert cfg.scenario.name is Scenario.Interactive
    assert cfg.backend.max_batch_size == 4


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["benchmark=mixtrl"], "did you mean 'mixtral-8x7b'"),
        (["scenario=ofline"], "did you mean 'offline'"),
        (["system.tpp=4"], "unknown config key 'system.tpp' (did you mean 'tp'?)"),
        (["+system.extra=1"], "adds a key the schema does not have"),
        (["backend.max_batch_size=lots"], "could not be converted to Integer"),
        (["mode=perf"], "expected one of [performance, accuracy]"),
        (["scenario=interactive"], "mixtral-8x7b has no Interactive scenario"),
        (["model=tiny-llama3"], "use model=tiny-mixtral"),
        (["model=checkpoint"], "pass model.path="),
        (["dataset=official"], "pass dataset.path="),
        (["system.tp=2"], "the hf backend runs one device per instance"),
        (["max_new_tokens=5000"], "max_new_tokens must lie between 2 and mixtral-8x7b's 1024"),
        (["backend.max_batch_size=0"], "backend.max_batch_size must be at least 1"),
        (["loadgen.min_query_count=-1"], "loadgen.min_query_count must be at least 0, got -1"),  # zero is allowed
        (["loadgen.max_query_count=0"], "loadgen.max_query_count must be at least 1, got 0"),
        # A knob of another option's schema is refused, naming the option it belongs to.
        (["backend.ttft_ms=20"], "'backend.ttft_ms' is a setting of backend=replay"),
        (["backend=replay", "backend.threads=2"], "'backend.threads' is a setting of backend=hf"),
        (["precision=fp8", "precision.effective_bits=8"], "unknown config key 'precision.effective_bits'"),
        (["system.device=tpu"], "expected one of [cpu, cuda]"),
        # A setting the chosen path would ignore says so.
        (["dataset.path=/data/x.pkl"], "dataset.path has no effect with dataset=sample"),
        # Numbers that are not finite, or a schedule loadgen cannot lay out, are refused with what fits (#16).
        (["scenario.target_qps=inf"], "scenario.target_qps must be a finite number, got inf"),
        (["scenario.target_qps=nan"], "scenario.target_qps must be a finite number, got nan"),
        (["backend=replay", "backend.ttft_ms=nan"], "backend.ttft_ms must be a finite number, got nan"),
        (["scenario=server", "scenario.target_qps=1e7"], "use scenario.target_qps=2500000 or less"),
        (["evaluation.memory_mb=1"], "use evaluation.memory_mb=1536 or more"),
        (["calibration.max_length=1"], "use at least 16"),
        (["loadgen=submission"], "loadgen=submission makes a compliant run but max_new_tokens=256 caps generation"),
    ],
)
def test_bad_configs_are_one_clear_sentence(overrides, expected):
    with pytest.raises(UserError) as error:
        load(overrides)
    message = str(error.value)
    assert expected in message
    assert "\n" not in message


def test_validate_matrix_reports_the_invalid_combinations():
    import math

    from llmkit.config.load import group_names, group_options

    from launch.validate import STAGE_GROUPS

    results = matrix()
    served = math.prod(len(group_options(g)) for g in group_names() if g not in STAGE_GROUPS)
    staged = sum(math.prod(len(group_options(g)) for g in (*crossed, group)) for group, crossed in STAGE_GROUPS.items())
    # Pinned as well as derived: the conf/ options shipped today make 420 combinations (a new option changes it).
    assert sum(len(v) for v in results.values()) == served + staged == 420
    assert any("precision=autoquant" in c for c in results[""])
    valid = results[""]
    assert any("benchmark=mixtral-8x7b" in c and "model=tiny-mixtral" in c and "scenario=server" in c for c in valid)
    assert any("benchmark=llama3.1-405b" in c and "scenario=interactive" in c for c in valid)
    assert any("backend=replay" in c for c in valid)
    interactive = [r for r in results if "mixtral-8x7b has no Interactive scenario" in r]
    assert interactive and all("benchmark=mixtral-8x7b" in c for r in interactive for c in results[r])
    assert not any("scenario=interactive" in c and "mixtral" in c.split()[1] for c in valid)


def test_calibration_and_quantization_refuse_an_output_dir():
    with pytest.raises(UserError, match="set artifacts_root= instead"):
        load(["output_dir=/tmp/elsewhere"], serving=False)


def _restated(values: dict, defaults: dict, where: str) -> list[str]:
    """The keys of `values` equal to their schema default, nested mappings looked into (not lists: a system's
    tuned entries have no defaults in the system schema to compare with)."""
    found = []
    for key, value in values.items():
        default = defaults.get(key)
        if isinstance(value, dict) and isinstance(default, dict):
            found += _restated(value, default, f"{where}.{key}")
        elif key != "name" and not isinstance(value, dict) and default == value:
            found.append(f"{where}.{key}")
    return found


def test_yaml_states_only_what_differs_from_its_schema():
    """Every shipped YAML value differs from its schema's default (the schema is the one place for defaults), the
    Hydra launchers' included."""
    import yaml
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
    from omegaconf import OmegaConf

    from llmkit.config.backends import BACKENDS
    from llmkit.config.load import CONF_DIR
    from llmkit.config.precisions import PRECISIONS
    from llmkit.config.schema import (BenchmarkConfig, DatasetConfig, LoadgenConfig, ModelConfig, PrecisionName,
                                      ScenarioConfig, SystemConfig)
    from llmkit.config.sweeps import SlurmLauncherConf

    schemas = {"benchmark": BenchmarkConfig, "dataset": DatasetConfig, "loadgen": LoadgenConfig,
               "model": ModelConfig, "scenario": ScenarioConfig, "system": SystemConfig}
    launchers = {"slurm": SlurmLauncherConf, "local": LocalQueueConf}
    restated = []
    paths = sorted(CONF_DIR.glob("*/*.yaml")) + sorted((CONF_DIR / "hydra" / "launcher").glob("*.yaml"))
    assert len(paths) > len(list(CONF_DIR.glob("*/*.yaml")))
    for path in paths:
        group, values = path.parent.name, yaml.safe_load(path.read_text()) or {}
        values.pop("defaults", None)
        if group == "backend":
            schema = BACKENDS[path.stem].schema
        elif group == "precision":  # named by its defaults list: <recipe>_schema
            schema = PRECISIONS[PrecisionName(yaml.safe_load(path.read_text())["defaults"][0].removesuffix("_schema"))]
        elif group == "launcher":
            schema = launchers[path.stem]
        else:
            schema = schemas[group]
        defaults = OmegaConf.to_container(OmegaConf.structured(schema), enum_to_str=True)
        # A key another value of the file interpolates (`${.key}`) is stated for it: Hydra resolves within the file.
        for key in re.findall(r"\$\{\.(\w+)\}", path.read_text()):
            values.pop(key, None)
        restated += _restated(values, defaults, path.name)
    assert not restated, restated
