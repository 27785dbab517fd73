"""One loadgen run of the SUT: prepare on rank 0, start the backend instances, run loadgen, write the run dir."""
from __future__ import annotations

import gc
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import OmegaConf
from tqdm import tqdm

from llmkit.benchmarks import Benchmark, Scenario, get_benchmark
from llmkit.compliance import AUDIT_CONFIGS
from llmkit.config.schema import BackendName, DatasetSource, Mode, RunConfig
from llmkit.config.validate import require_valid
from llmkit.data.datasets import Dataset, load_dataset
from llmkit.errors import USER_ERROR_EXIT_CODE, UserError
from llmkit.models.checkpoint import resolve_checkpoint
from llmkit.rundir import StagedDir, default_run_dir, refuse_existing_run
from sut import mpi, settings
from sut.backends import create_backend
from sut.backends.base import BackendSpec
from sut.dispatch import Dispatcher
from sut.harness import Harness
from llmkit.loadgen_log import read_detail_log, summarize

log = logging.getLogger(__name__)

# Loadgen's TestSettings.FromConfig layers its built-in mlperf.conf only on the first call in a process; a second
# run in the same process would silently lose the official settings (token latencies, seeds, sample counts).
_loadgen_runs_in_this_process = 0
# Loadgen reads this file from the run directory (we pass its path); only compliance runs write it.
AUDIT_CONFIG = "audit.config"


@dataclass
class Prepared:
    cfg: RunConfig
    benchmark: Benchmark
    dataset: Dataset
    spec: BackendSpec
    run_dir: Path


def prepare(cfg: RunConfig, world_size: int) -> Prepared:
    require_valid(cfg)
    benchmark = get_benchmark(cfg.benchmark.name)
    instances = cfg.system.dp * cfg.system.tp * cfg.system.pp
    if world_size > 1 and world_size != 1 + instances:
        raise UserError(
            f"mpirun started {world_size} ranks but rank 0 plus system.dp x tp x pp = {cfg.system.dp} x "
            f"{cfg.system.tp} x {cfg.system.pp} backend ranks needs {1 + instances}; run mpirun -n {1 + instances} "
            f"or set system.dp={world_size - 1}"
        )
    run_dir = Path(cfg.output_dir) if cfg.output_dir else default_run_dir(
        cfg.runs_root, benchmark.name, cfg.system.name, cfg.scenario.name.value, cfg.mode.value
    )
    refuse_existing_run(run_dir)
    # The replay backend answers from the dataset and loads no model.
    checkpoint = "" if cfg.backend.name is BackendName.replay else str(resolve_checkpoint(cfg.model, benchmark).path)
    dataset = load_dataset(cfg.dataset, benchmark)
    spec = BackendSpec(backend=cfg.backend, system=cfg.system, checkpoint=checkpoint,
                       benchmark=benchmark.name, dataset=cfg.dataset)
    return Prepared(cfg, benchmark, dataset, spec, run_dir)


def noncompliance(cfg: RunConfig) -> list[str]:
    reasons = []
    if cfg.loadgen.name != "submission":
        reasons.append(f"loadgen={cfg.loadgen.name} (submission runs use loadgen=submission)")
    if cfg.max_new_tokens is not None:
        reasons.append(f"max_new_tokens={cfg.max_new_tokens} caps generation")
    if cfg.dataset.source is DatasetSource.sample:
        reasons.append("the sample dataset is not the official one")
    if cfg.dataset.max_samples is not None:
        reasons.append(f"dataset.max_samples={cfg.dataset.max_samples} runs a subset")
    if cfg.model.tiny is not None:
        reasons.append(f"{cfg.model.name} is a random-weight model")
    return reasons


def run_benchmark(cfg: RunConfig) -> Path | None:
    """Run on this process (and its MPI ranks); returns the run directory on rank 0."""
    rank, size = mpi.launcher_rank()
    if size == 1:
        return _drive(prepare(cfg, size), remote=False)
    comm = mpi.comm_world()
    if rank != 0:
        prepared_spec = comm.bcast(None, root=0)
        if prepared_spec is None:
            raise SystemExit(USER_ERROR_EXIT_CODE)  # rank 0 reports the problem
        mpi.serve_worker(prepared_spec, create_backend)
        return None
    try:
        prepared = prepare(cfg, size)
    except BaseException:
        comm.bcast(None, root=0)
        raise
    comm.bcast(prepared.spec, root=0)
    return _drive(prepared, remote=True)


def _drive(prepared: Prepared, remote: bool) -> Path:
    import mlperf_loadgen as lg

    global _loadgen_runs_in_this_process
    if _loadgen_runs_in_this_process:
        raise RuntimeError("loadgen applies mlperf.conf only to the first run of a process; start each run in its own")
    _loadgen_runs_in_this_process += 1

    cfg, benchmark, dataset = prepared.cfg, prepared.benchmark, prepared.dataset
    staged = StagedDir(prepared.run_dir)
    user_conf = staged.path / "user.conf"
    user_conf.write_text(settings.user_conf_text(cfg, benchmark, len(dataset)))
    (staged.path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    if cfg.loadgen.compliance_test is not None:
        (staged.path / AUDIT_CONFIG).write_text(AUDIT_CONFIGS[cfg.loadgen.compliance_test])
    backends, coordinator = [], None
    harness = Harness(
        dataset, benchmark, cfg.scenario.name, cfg.max_new_tokens or benchmark.max_new_tokens,
        submit=lambda batch: dispatcher.submit(batch), fatal=mpi.abort_job,
    )
    if remote:
        coordinator = mpi.Coordinator(harness.on_first, harness.on_final, harness.on_error)
        coordinator.wait_ready()
        instances = coordinator.instances
    else:
        for instance in range(cfg.system.dp):
            backend = create_backend(replace(prepared.spec, instance=instance))
            backend.start(harness.on_first, harness.on_final, harness.on_error)
            backends.append(backend)
        instances = backends
    dispatcher = Dispatcher(instances, least_pending=cfg.scenario.name is not Scenario.Offline)
    sut = lg.ConstructFastSUT(harness.issue_queries, harness.flush_queries)
    qsl = lg.ConstructQSL(len(dataset), len(dataset), lambda samples: None, lambda samples: None)
    log.info("loadgen %s %s run of %s on %d backend instance(s)", cfg.scenario.name.value, cfg.mode.value,
             benchmark.loadgen_model(cfg.scenario.name), len(instances))
    harness.progress = progress = tqdm(desc=f"{cfg.scenario.name.value} {cfg.mode.value}", unit="sample",
                                       mininterval=1.0)
    # The timed run allocates per query; the cyclic collector's pauses would land in the latencies.
    gc.collect()
    gc.freeze()
    gc.disable()
    test_settings = settings.test_settings(user_conf, cfg, benchmark)
    seeds = settings.round_seed_mismatches(test_settings, cfg)
    try:
        lg.StartTestWithLogSettings(
            sut, qsl, test_settings, settings.log_settings(staged.path), str(staged.path / AUDIT_CONFIG),
        )
        harness.wait_idle()
    finally:
        gc.enable()
        gc.unfreeze()
        progress.close()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        if coordinator is not None:
            coordinator.stop()
        for backend in backends:
            backend.stop()
    result = _result(cfg, benchmark, harness, staged.path, seeds)
    engines = [backend.stats.summary() for backend in backends if hasattr(backend, "stats")]
    if engines:
        result["engine"] = _combine(engines)
    (staged.path / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    run_dir = staged.commit()
    _report(result, run_dir)
    return run_dir


def _combine(engines: list[dict]) -> dict:
    """The simulated engines' own figures over all instances (replay backend), over one window."""
    starts = [e["first_submit"] for e in engines if e["first_submit"] is not None]
    ends = [e["last_final"] for e in engines if e["last_final"] is not None]
    tokens = sum(e["tokens"] for e in engines)
    span = max(ends) - min(starts) if starts and ends else 0.0
    # Loadgen's Server rate divides every token by the time until the last-issued query was done.
    last = max((e for e in engines if e["last_submit"] is not None), key=lambda e: e["last_submit"], default=None)
    window = (last["last_submitted_done"] - min(starts)) if last and last["last_submitted_done"] and starts else 0.0
    return {
        "tokens": tokens,
        "tokens_per_second": tokens / span if span > 0 else None,
        "tokens_per_second_to_last_issued": tokens / window if window > 0 else None,
        "seconds": round(span, 3),
        "ttft_p99_ms": max((e["ttft_p99_ms"] for e in engines if e["ttft_p99_ms"] is not None), default=None),
        "tpot_p99_ms": max((e["tpot_p99_ms"] for e in engines if e["tpot_p99_ms"] is not None), default=None),
        "instances": len(engines),
    }


def _result(cfg: RunConfig, benchmark: Benchmark, harness: Harness, directory: Path, seeds: list[str]) -> dict:
    result: dict = {
        "benchmark": benchmark.name,
        "loadgen_model": benchmark.loadgen_model(cfg.scenario.name),
        "scenario": cfg.scenario.name.value,
        "mode": cfg.mode.value,
        "system": cfg.system.name,
        "backend": cfg.backend.name.value,
        "model": cfg.model.name,
        "dataset": cfg.dataset.name,
        "compliance_test": cfg.loadgen.compliance_test.value if cfg.loadgen.compliance_test else None,
        "sample_count": harness.completed,
        "output_tokens": harness.output_tokens,
    }
    if cfg.mode is Mode.performance:
        result.update(summarize(read_detail_log(directory / "mlperf_log_detail.txt")))
    reasons = noncompliance(cfg) + [f"loadgen's {mismatch}" for mismatch in seeds]
    if cfg.loadgen.compliance_test is not None:
        reasons = [r for r in reasons if not r.startswith("loadgen=")]  # the audit config sets the durations
    result["compliant"] = not reasons
    result["noncompliant_because"] = reasons
    return result


def _report(result: dict, run_dir: Path) -> None:
    if result["mode"] == Mode.performance.value:
        log.info(
            "%s %s: %s, %.1f tokens/s, %.2f samples/s, p99 TTFT %s ms, p99 TPOT %s ms",
            result["scenario"], result["mode"], result["validity"], result["tokens_per_second"] or 0.0,
            result["samples_per_second"] or 0.0, result["ttft_p99_ms"], result["tpot_p99_ms"],
        )
    else:
        log.info("%s accuracy run: %d samples answered", result["scenario"], result["sample_count"])
    log.info("run directory: %s", run_dir)
