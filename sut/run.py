"""One loadgen run of the SUT: prepare on rank 0, start the backend instances, run loadgen, write the run dir."""
from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf
from tqdm import tqdm

from llmkit.benchmarks import Benchmark, Scenario, get_benchmark
from llmkit.compliance import AUDIT_CONFIGS
from llmkit.config.backends import backend_entry
from llmkit.config.schema import DatasetSource, Device, Mode, RunConfig
from llmkit.config.validate import require_valid
from llmkit.data.datasets import Dataset, load_dataset
from llmkit.errors import USER_ERROR_EXIT_CODE, UserError
from llmkit.interrupts import Cleanups, quietly, stop_on_signals
from llmkit.loadgen_log import read_detail_log, summarize
from llmkit.log import log_critical_now
from llmkit.planner.configured import memory_preflight
from llmkit.rundir import StagedDir, default_run_dir, refuse_existing_run
from sut import mpi, settings, wire
from sut.backends import backend_class, create_backend
from sut.backends.base import BackendSpec
from sut.dispatch import Dispatcher
from sut.harness import Answers, Queries
from sut.ledger import TokenLedger
from sut.placement import Placement, instance_spec, place
from sut.timed import timed_section

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
    placement: Placement
    run_dir: Path


def prepare(cfg: RunConfig, world_size: int) -> Prepared:
    """Everything rank 0 resolves before any backend starts: the placement, the run directory, what the backend
    needs (its `prepare`), the dataset."""
    require_valid(cfg)
    if cfg.resume:
        raise UserError("resume=true goes on with an interrupted llmkit pipeline; a single run is never resumed, start "
                        "it again")
    benchmark = get_benchmark(cfg.benchmark.name)
    placement = place(cfg.system, world_size, backend_entry(cfg.backend.name).spans_ranks)
    if cfg.system.device is Device.cuda and cfg.system.gpu is not None:
        memory_preflight(cfg)  # a topology whose GPUs cannot hold the model stops here, naming one that can
    run_dir = Path(cfg.output_dir) if cfg.output_dir else default_run_dir(
        cfg.runs_root, benchmark.name, cfg.system.name, cfg.scenario.name.value, cfg.mode.value
    )
    refuse_existing_run(run_dir)
    spec = backend_class(cfg.backend.name).prepare(cfg, benchmark)
    dataset = load_dataset(cfg.dataset, benchmark)
    return Prepared(cfg, benchmark, dataset, spec, placement, run_dir)


# Below this much free space a run's unreadable log is blamed on the full disk.
FULL_DISK_BYTES = 64 * 2**20
# A backend's stop gets this long when a signal ends the run; discarding the staging directory comes after it.
STOP_BACKENDS_S = 1.0


def end_process(message: str) -> None:
    """A failure that ends the run, in a lone process: say why, discard the half-written run, exit now (loadgen
    cannot be stopped midway)."""
    log_critical_now(log, message)
    StagedDir.discard_live()
    os._exit(mpi.BACKEND_FAILED_EXIT_CODE)


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
        return _drive(prepare(cfg, size), listener=None)
    comm = mpi.comm_world()
    if rank != 0:
        shared = comm.bcast(None, root=0)
        if shared is None:
            raise SystemExit(USER_ERROR_EXIT_CODE)  # rank 0 reports the problem
        mpi.serve_worker(*shared, create_backend)
        return None
    try:
        prepared = prepare(cfg, size)
        listener = wire.Listener()  # the serving ranks connect to it (sut/wire.py)
    except BaseException:
        comm.bcast(None, root=0)
        raise
    comm.bcast((prepared.spec, prepared.placement, listener.address), root=0)
    try:
        if os.environ.get(mpi.KILL_RANK_ENV) == "0":  # test hook: rank 0 fails once the workers have their spec
            raise RuntimeError(f"{mpi.KILL_RANK_ENV}=0")
        return _drive(prepared, listener)
    except BaseException as error:
        if not mpi.workers_stopped():  # they would wait for rank 0's word forever, and its MPI_Finalize for them
            log.error("rank 0 failed", exc_info=True)
            mpi.abort_job(f"rank 0 failed ({type(error).__name__}: {error}) before its worker ranks were stopped; "
                          "ending the job (the run is not written)")
        raise


def _drive(prepared: Prepared, listener: wire.Listener | None) -> Path:
    """The run, on this process alone (`listener` None) or with the worker ranks that connect to `listener`."""
    global _loadgen_runs_in_this_process
    if _loadgen_runs_in_this_process:
        raise RuntimeError("loadgen applies mlperf.conf only to the first run of a process; start each run in its own")
    _loadgen_runs_in_this_process += 1
    staged = StagedDir(prepared.run_dir)
    try:
        with stop_on_signals() as cleanups:
            cleanups.add(f"discarding {staged.path}", staged.discard, last=True)
            return _drive_staged(prepared, listener, staged, cleanups)
    except BaseException:
        staged.discard()
        raise


def _drive_staged(prepared: Prepared, listener: wire.Listener | None, staged: StagedDir, cleanups: Cleanups) -> Path:
    """The run, written into `staged`; a signal meanwhile stops issuing, ends the backends, discards it."""
    import mlperf_loadgen as lg

    cfg, benchmark, dataset = prepared.cfg, prepared.benchmark, prepared.dataset
    user_conf = staged.path / "user.conf"
    user_conf.write_text(settings.user_conf_text(cfg, benchmark, len(dataset)))
    (staged.path / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    if cfg.loadgen.compliance_test is not None:
        (staged.path / AUDIT_CONFIG).write_text(AUDIT_CONFIGS[cfg.loadgen.compliance_test])
    # Built in dependency order: the answers' path, the backends that answer, the dispatcher over them, and the
    # queries' path into it.
    answers = Answers(TokenLedger(cfg.scenario.name.streams_first_token, benchmark.eos_ids),
                      fatal=end_process if listener is None else mpi.abort_job)
    backends: list = []
    coordinator = sut = qsl = progress = None
    cleanups.add("stop issuing", answers.stop_issuing)
    try:
        if listener is not None:
            coordinator = mpi.Coordinator(prepared.placement, listener, answers.on_first, answers.on_final,
                                          answers.on_error)
            cleanups.add("the worker ranks", coordinator.stop, STOP_BACKENDS_S)
            coordinator.wait_ready()
            instances = coordinator.instances
        else:
            cleanups.add("the backends", lambda: [backend.stop() for backend in backends], STOP_BACKENDS_S)
            for instance in prepared.placement.instances:
                backend = create_backend(instance_spec(prepared.spec, instance))
                backends.append(backend)
                backend.start(answers.on_first, answers.on_final, answers.on_error)
            instances = backends
        dispatcher = Dispatcher(instances, least_pending=cfg.scenario.name is not Scenario.Offline)
        queries = Queries(answers, dataset, benchmark, cfg.scenario.name.streams_first_token,
                          cfg.max_new_tokens or benchmark.max_new_tokens, dispatcher.submit)
        sut = lg.ConstructFastSUT(queries.issue, queries.flush)
        qsl = lg.ConstructQSL(len(dataset), len(dataset), lambda samples: None, lambda samples: None)
        log.info("loadgen %s %s run of %s on %d backend instance(s)", cfg.scenario.name.value, cfg.mode.value,
                 benchmark.loadgen_model(cfg.scenario.name), len(instances))
        answers.progress = progress = tqdm(desc=f"{cfg.scenario.name.value} {cfg.mode.value}", unit="sample",
                                           mininterval=1.0)
        test_settings = settings.test_settings(user_conf, cfg, benchmark)
        seeds = settings.round_seed_mismatches(test_settings, cfg)
        with timed_section():
            lg.StartTestWithLogSettings(
                sut, qsl, test_settings, settings.log_settings(staged.path), str(staged.path / AUDIT_CONFIG),
            )
            answers.wait_idle()
    except BaseException:
        # Start-up or the run failed: what was started is stopped (an Executor and its workers, an engine thread)
        # before the error goes on; a failure while stopping is logged, never put in the error's place.
        if progress is not None:
            progress.close()
        _stop_quietly(coordinator, backends)
        _destroy(sut, qsl)
        raise
    progress.close()
    # The backends stop before loadgen's SUT goes: an answer still in flight must not reach a destroyed SUT.
    engines = coordinator.stop() if coordinator is not None else []
    for backend in backends:
        backend.stop()
        if (stats := backend.stats()) is not None:
            engines.append(stats)
    _destroy(sut, qsl)
    result = _result(cfg, benchmark, answers, staged, seeds)
    result["placement"] = prepared.placement.describe()
    combine = getattr(backend_class(cfg.backend.name), "combine_stats", None)
    if engines and combine is not None:
        result["engine"] = combine(engines)
    (staged.path / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    run_dir = staged.commit()
    _report(result, run_dir)
    return run_dir


def _stop_quietly(coordinator, backends: list) -> None:
    if coordinator is not None:
        quietly("the worker ranks", coordinator.stop)
    for i, backend in enumerate(backends):
        quietly(f"backend instance {i}", backend.stop)


def _destroy(sut, qsl) -> None:
    import mlperf_loadgen as lg

    if qsl is not None:
        lg.DestroyQSL(qsl)
    if sut is not None:
        lg.DestroySUT(sut)


def _detail(staged: StagedDir) -> dict:
    """Loadgen's detail log of the run, summarized; a damaged one is named by the run it belongs to, and blamed on a
    full disk when the disk is full."""
    try:
        return summarize(read_detail_log(staged.path / "mlperf_log_detail.txt"))
    except UserError as error:
        free = shutil.disk_usage(staged.path).free
        if free < FULL_DISK_BYTES:
            raise UserError(f"the disk holding {staged.final} is full ({free / 2**20:.1f} MiB free), so loadgen could "
                            "not write its logs; free space there (or choose another runs_root= or output_dir=) and "
                            "run again") from None
        raise UserError(str(error).replace(str(staged.path), str(staged.final))) from None  # no hidden path


def _result(cfg: RunConfig, benchmark: Benchmark, answers: Answers, staged: StagedDir, seeds: list[str]) -> dict:
    result: dict = {
        "benchmark": benchmark.name,
        "loadgen_model": benchmark.loadgen_model(cfg.scenario.name),
        "scenario": cfg.scenario.name.value,
        "mode": cfg.mode.value,
        "system": cfg.system.name,
        "backend": cfg.backend.name,
        "model": cfg.model.name,
        "dataset": cfg.dataset.name,
        "compliance_test": cfg.loadgen.compliance_test.value if cfg.loadgen.compliance_test else None,
        "sample_count": answers.completed,
        "output_tokens": answers.output_tokens,
    }
    if cfg.mode is Mode.performance:
        result.update(_detail(staged))
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
