"""Loadgen settings: user.conf written from the config and layered on loadgen's built-in mlperf.conf."""
from __future__ import annotations

import logging
from pathlib import Path

from llmkit.benchmarks import Benchmark
from llmkit.config.schema import LoadgenConfig, Mode, RunConfig
from llmkit.rounds import SEED_KEYS, get_round, seed_mismatches

log = logging.getLogger(__name__)


def user_conf_text(cfg: RunConfig, benchmark: Benchmark, dataset_size: int) -> str:
    model = benchmark.loadgen_model(cfg.scenario.name)
    scenario = cfg.scenario.name.loadgen_scenario
    loadgen: LoadgenConfig = cfg.loadgen
    lines = [f"# Written by llmkit from the run's config (loadgen={loadgen.name}); layered on loadgen's mlperf.conf."]

    def put(key: str, value) -> None:
        lines.append(f"{model}.{scenario}.{key} = {value}")

    put("target_qps", cfg.scenario.target_qps)
    if loadgen.min_duration_ms is not None:
        put("min_duration", loadgen.min_duration_ms)
    if loadgen.min_query_count is not None:
        put("min_query_count", loadgen.min_query_count)
    if loadgen.max_query_count is not None:
        put("max_query_count", loadgen.max_query_count)
    if loadgen.sample_count_from_dataset:
        put("performance_sample_count_override", dataset_size)
    return "\n".join(lines) + "\n"


def test_settings(user_conf: Path, cfg: RunConfig, benchmark: Benchmark):
    import mlperf_loadgen as lg

    settings = lg.TestSettings()
    scenario = cfg.scenario.name.loadgen_scenario
    code = settings.FromConfig(str(user_conf), benchmark.loadgen_model(cfg.scenario.name), scenario)
    if code != 0:  # loadgen skips what it cannot read and goes on with its defaults: never run on those
        raise RuntimeError(f"loadgen could not read the run's {user_conf} (FromConfig returned {code})")
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.AccuracyOnly if cfg.mode is Mode.accuracy else lg.TestMode.PerformanceOnly
    return settings


def log_settings(outdir: Path):
    import mlperf_loadgen as lg

    log = lg.LogSettings()
    log.log_output.outdir = str(outdir)
    log.log_output.copy_summary_to_stdout = False
    log.enable_trace = False
    return log


def round_seed_mismatches(settings, cfg: RunConfig) -> list[str]:
    """How the installed loadgen's seeds differ from those of the round the run is for (said aloud once)."""
    round_ = get_round(cfg.submission.round)
    mismatches = seed_mismatches(round_, {key: getattr(settings, key) for key in SEED_KEYS})
    if mismatches:
        log.warning("the installed loadgen's built-in seeds are not those of the %s round (%s), so this run cannot "
                    "be submitted to it; %s", round_.name.value, mismatches[0], round_.loadgen_fix())
    return mismatches
