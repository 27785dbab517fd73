"""The trtllm backend: TensorRT-LLM 1.2.1's Executor over an engine built by `llmkit build`, one Executor per
data-parallel instance, inflight batching, chunked context, KV-cache block reuse off (MLPerf forbids it).

Which placement when (`backend.placement`):
- **orchestrator** (the default; `llmkit run`, one process, no mpirun): instance k's Executor drives GPUs
  [k*tp*pp, (k+1)*tp*pp) through tp*pp worker processes TensorRT-LLM spawns itself (`executorWorker`, MPI_Comm_spawn).
  This is NVIDIA's MLPerf harness on one node. Under Slurm the SLURM_* variables are cleared first, as NVIDIA's
  scripts do, or spawning the workers fails.
- **leader** (under `mpirun`/`srun -n 1+dp*tp*pp`; instances spanning ranks, sut/placement.py): every rank of an
  instance builds the Executor over the same engine (`participant_ids` = the instance's world ranks, the leader
  first); only the leader enqueues and polls, the followers build it and call shutdown() at the end (`follow`).
  With tp*pp = 1, `-n 1+dp` gives each rank one instance of its own. Use it across nodes, or where spawning
  processes is not allowed.

Requests go in once per RequestBatch (`enqueue_requests`); one polling thread per Executor awaits responses
(`await_responses(timedelta)`), checks `has_error()` before touching `result`, appends each streamed step of beam 0
to its request and hands first tokens and final answers to the SUT in one TokenBatch per poll. An answer that
finished on the end id (FinishReason.END_ID, the end token left out of TensorRT-LLM's output) gets it back, so answers
end as the hf backend's do; stop words (a row's stop sequence, extra EOS ids) are in the output already.

A watchdog in the poller: an instance with requests outstanding that neither answers nor iterates (no new iteration
stats) for backend.stall_timeout_s ends the run, naming the instance and the requests it holds. A request failing
ends it too (the SUT's error callback), naming the request.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from build_engines import toolchain
from build_engines.engine import ARTIFACT_KIND, EngineNeeds, check_engine
from llmkit.artifacts import MANIFEST
from llmkit.benchmarks import Benchmark
from llmkit.config.backends import TrtllmBackendConfig, TrtllmPlacement
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError
from llmkit.log import launcher_rank
from sut.backends.base import BackendSpec, ErrorCallback, RequestBatch, TokenCallback
from sut.backends.trtllm_common import (STATS_EVERY_S, WARMUP_NEW_TOKENS, WARMUP_TIMEOUT_S, Deliveries, EngineLatencies,
                                        IterationSamples, clear_slurm_environment, combine_stats, delivery_stats,
                                        device_ids, layout, require_tensorrt_llm, runtime_settings, stalled_message,
                                        warmup_prompts, with_end_id)
from sut.placement import PlacementMode, place

if TYPE_CHECKING:
    from tensorrt_llm.bindings import executor as trtllm

log = logging.getLogger(__name__)


def find_engine(cfg: RunConfig, benchmark: Benchmark) -> Path:
    """backend.engine_dir, else the newest engine under <artifacts_root>/engines/ built for this run."""
    backend = cfg.backend
    assert isinstance(backend, TrtllmBackendConfig)
    if backend.engine_dir:
        return Path(backend.engine_dir)
    system = cfg.system
    wanted = {"system": system.name, "precision": cfg.precision.name.value}
    found = []
    for manifest_path in Path(cfg.artifacts_root, ARTIFACT_KIND).glob(f"*/{MANIFEST}"):
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        mapping = manifest.get("mapping") or {}
        if (all(manifest.get(k) == v for k, v in wanted.items())
                and manifest.get("benchmark", benchmark.name) == benchmark.name
                and (mapping.get("tp_size"), mapping.get("pp_size")) == (system.tp, system.pp)):
            found.append((manifest_path.stat().st_mtime, manifest_path.parent))
    if not found:
        raise UserError(f"no engine under {Path(cfg.artifacts_root, ARTIFACT_KIND)} was built for {benchmark.name} on "
                        f"system={system.name} at precision={cfg.precision.name.value}, tp {system.tp} x pp "
                        f"{system.pp}; run llmkit build with the same overrides first, or pass backend.engine_dir=DIR")
    return max(found)[1]


def engine_needs(cfg: RunConfig, benchmark: Benchmark, engine: Path, chain: toolchain.Toolchain) -> EngineNeeds:
    """What this run needs of `engine` on `chain` (check_engine's input): the runtime batch and tokens are the run's,
    else the engine's own."""
    runtime = runtime_settings(cfg)
    build: dict[str, Any] = (json.loads((engine / MANIFEST).read_text())["build_config"]
                             if (engine / MANIFEST).is_file() else {})
    batch = runtime.max_batch_size or build.get("max_batch_size")
    tokens = runtime.max_num_tokens or build.get("max_num_tokens")
    _, tp, pp = layout(cfg.system)
    return EngineNeeds(
        sm=chain.sm, trtllm_version=chain.trtllm_version, tensorrt_version=chain.tensorrt_version,
        tp=tp, pp=pp, max_seq_len=benchmark.max_input_len + (cfg.max_new_tokens or benchmark.max_new_tokens),
        # an engine's manifest always names its build's max_batch_size (build_engines/engine.py writes it)
        max_batch_size=cast(int, batch), max_num_tokens=tokens)


def _check_placement(backend: TrtllmBackendConfig, cfg: RunConfig) -> None:
    world = launcher_rank()[1]
    dp, tp, pp = layout(cfg.system)
    per = tp * pp
    if backend.placement is TrtllmPlacement.orchestrator and world > 1:
        raise UserError(f"backend.placement=orchestrator runs in one process (llmkit run, no launcher) but this launch "
                        f"has {world} ranks; pass backend.placement=leader with -n {1 + dp * per}, or run "
                        "without mpirun")
    if backend.placement is TrtllmPlacement.leader:
        mode = place(cfg.system, world, spans_ranks=True).mode
        if world == 1 and per > 1:
            raise UserError(f"backend.placement=leader needs the instance's tp x pp = {per} ranks under mpirun; launch "
                            f"mpirun -n {1 + dp * per} llmkit run ..., or use backend.placement=orchestrator")
        if mode is PlacementMode.ranks and (per > 1 or dp > world - 1):
            raise UserError(f"backend.placement=leader serves one instance per rank group; launch "
                            f"-n {1 + dp * per} (one rank per GPU)")
        if mode is PlacementMode.process and dp > 1:
            raise UserError("backend.placement=leader in one process serves one instance; use "
                            "backend.placement=orchestrator for system.dp > 1 without mpirun")


def executor_config(spec: BackendSpec) -> trtllm.ExecutorConfig:
    """The instance's ExecutorConfig, keyword arguments only (TRTLLM.md section 3)."""
    from tensorrt_llm.bindings import executor as ex

    backend = spec.backend
    assert isinstance(backend, TrtllmBackendConfig)
    devices = device_ids(spec.devices)
    if backend.placement is TrtllmPlacement.orchestrator:
        import tensorrt_llm

        worker = Path(tensorrt_llm.__file__).parent / "bin" / "executorWorker"
        parallel = ex.ParallelConfig(
            communication_type=ex.CommunicationType.MPI, communication_mode=ex.CommunicationMode.ORCHESTRATOR,
            device_ids=devices,
            orchestrator_config=ex.OrchestratorConfig(is_orchestrator=True, worker_executable_path=str(worker)))
    else:
        parallel = ex.ParallelConfig(
            communication_type=ex.CommunicationType.MPI, communication_mode=ex.CommunicationMode.LEADER,
            device_ids=devices, participant_ids=list(spec.ranks))
    return ex.ExecutorConfig(
        max_beam_width=1,
        max_batch_size=backend.max_batch_size,
        max_num_tokens=backend.max_num_tokens,
        max_queue_size=-1,  # unbounded: loadgen's queries wait in the engine, never refused
        scheduler_config=ex.SchedulerConfig(
            capacity_scheduler_policy=ex.CapacitySchedulerPolicy.MAX_UTILIZATION,
            context_chunking_policy=ex.ContextChunkingPolicy.FIRST_COME_FIRST_SERVED),
        kv_cache_config=ex.KvCacheConfig(enable_block_reuse=False,
                                         free_gpu_memory_fraction=backend.kv_cache_free_gpu_memory_fraction),
        enable_chunked_context=True,
        batching_type=ex.BatchingType.INFLIGHT,
        parallel_config=parallel)


def build_executor(spec: BackendSpec) -> trtllm.Executor:
    import tensorrt_llm  # noqa: F401  (first: it initialises MPI)
    from tensorrt_llm.bindings import executor as ex

    backend = spec.backend
    assert isinstance(backend, TrtllmBackendConfig)
    if backend.placement is TrtllmPlacement.orchestrator:
        dropped = clear_slurm_environment()
        if dropped:
            log.info("trtllm: cleared %d SLURM_* variables before spawning the executor workers", len(dropped))
    return ex.Executor(model_path=Path(spec.checkpoint), model_type=ex.ModelType.DECODER_ONLY,
                       executor_config=executor_config(spec))


class Follower:
    """A rank that only participates in another rank's instance (leader mode): it builds the Executor and shuts it
    down at the end."""

    def __init__(self, spec: BackendSpec):
        self.executor = build_executor(spec)

    def stop(self) -> None:
        self.executor.shutdown()


class TrtllmBackend:
    combine_stats = staticmethod(combine_stats)

    @classmethod
    def prepare(cls, cfg: RunConfig, benchmark: Benchmark) -> BackendSpec:
        """On rank 0 before anything starts: TensorRT-LLM present, the placement possible, the engine found and
        able to serve this run (check_engine), the runtime limits resolved into the spec's backend config."""
        backend = cfg.backend
        assert isinstance(backend, TrtllmBackendConfig)
        require_tensorrt_llm(backend.name)
        _check_placement(backend, cfg)
        chain = toolchain.serving()
        if not chain.trtllm_version.startswith("1.2"):
            raise UserError(f"backend=trtllm needs TensorRT-LLM 1.2 (the last release with engines and the Executor) "
                            f"but this Python has {chain.trtllm_version}; run it in {toolchain.CONTAINER}, or choose "
                            "backend=trtllm-pytorch")
        engine = find_engine(cfg, benchmark)
        runtime = runtime_settings(cfg)
        needs = engine_needs(cfg, benchmark, engine, chain)
        check_engine(engine, needs)
        batch, tokens = needs.max_batch_size, needs.max_num_tokens
        resolved = replace(backend, engine_dir=str(engine), max_batch_size=batch, max_num_tokens=tokens,
                           kv_cache_free_gpu_memory_fraction=runtime.kv_fraction)
        log.info("trtllm: engine %s, runtime batch %s, %s tokens per iteration, KV cache %.2f of free memory, %s mode",
                 engine, batch, tokens, runtime.kv_fraction, backend.placement.value)
        return BackendSpec(resolved, cfg.system, benchmark.name, cfg.dataset, checkpoint=str(engine))

    @classmethod
    def follow(cls, spec: BackendSpec) -> Follower:
        return Follower(spec)

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        backend = spec.backend
        assert isinstance(backend, TrtllmBackendConfig)
        self.backend = backend
        self.where = f"trtllm instance {spec.instance}"
        # Held by submit while it enqueues and registers the ids, so that the poller, seeing an id it does not know
        # yet, waits for the registration (it takes the lock only then, and for the pending count: a busy instance's
        # iteration is milliseconds of work, which a request arriving meanwhile must not wait for).
        self._lock = threading.Lock()
        self._ids: dict[int, tuple[int, int]] = {}  # executor request id -> (the SUT's request id, its end id)
        self._streamed: dict[int, list[int]] = {}  # executor request id -> tokens so far (streaming)
        self._awaiting_first: set[int] = set()  # streamed executor request ids with no token handed over yet
        self._pending = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._executor: trtllm.Executor | None = None
        self.samples = IterationSamples()
        self.latencies = EngineLatencies()
        self.first_submit: float | None = None

    # the Backend protocol ------------------------------------------------------------------------------
    def start(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback) -> None:
        from tensorrt_llm.bindings import executor as ex

        self._ex = ex
        self._executor = build_executor(self.spec)
        self._deliveries = Deliveries(on_first, on_final, on_error, self.where)
        self._warm_up()
        self._thread = threading.Thread(target=self._poll, name=f"trtllm-poll-{self.spec.instance}", daemon=True)
        self._thread.start()
        log.info("%s ready on %s", self.where, ", ".join(self.spec.devices))

    def submit(self, batch: RequestBatch) -> None:
        assert self._executor is not None
        ex = self._ex
        sampling = ex.SamplingConfig(beam_width=1, top_k=1, min_tokens=batch.min_new_tokens)
        output = ex.OutputConfig(exclude_input_from_output=True, return_perf_metrics=True)
        end_id = batch.eos_ids[0]
        extra_eos = [[int(e)] for e in batch.eos_ids[1:]]
        requests = []
        for row in batch.rows.tolist():
            stop = batch.stop_sequences[row]
            stop_words = ([list(stop)] if stop else []) + extra_eos
            requests.append(ex.Request(batch.prompts[row].tolist(), batch.max_new_tokens, streaming=batch.stream,
                                       sampling_config=sampling, output_config=output, end_id=end_id, pad_id=end_id,
                                       stop_words=stop_words or None))
        with self._lock:
            if self.first_submit is None:
                self.first_submit = time.perf_counter()
            self._pending += len(requests)
            ids = self._executor.enqueue_requests(requests)
            if batch.stream:  # before the id map: the poller reads them without the lock
                self._streamed.update((executor_id, []) for executor_id in ids)
                self._awaiting_first.update(ids)
            self._ids.update((executor_id, (request_id, end_id))
                             for executor_id, request_id in zip(ids, batch.request_ids.tolist()))

    def pending(self) -> int:
        return self._pending

    def stats(self) -> dict[str, object] | None:
        return delivery_stats(self.spec.instance, getattr(self, "_deliveries", None), self.first_submit, self.samples,
                              self.latencies)

    def stop(self) -> None:
        """Cancel what is outstanding, stop polling, shut the Executor down (idempotent; also on Ctrl-C)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        with self._lock:
            outstanding = list(self._ids)
        for request_id in outstanding:
            executor.cancel_request(request_id)
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample_iterations(executor)  # the last second's, so even a short run has its figures
        executor.shutdown()

    # the engine side ----------------------------------------------------------------------------------
    def _warm_up(self) -> None:
        """A few random prompts within the vocabulary, awaited and not reported, before loadgen starts."""
        assert self._executor is not None
        count = self.backend.warmup_requests
        if not count:
            return
        config = json.loads((Path(self.spec.checkpoint) / "config.json").read_text())
        vocab = int(config["pretrained_config"]["vocab_size"])
        ex = self._ex
        requests = [ex.Request(prompt, WARMUP_NEW_TOKENS, streaming=False,
                               sampling_config=ex.SamplingConfig(beam_width=1, top_k=1),
                               output_config=ex.OutputConfig(exclude_input_from_output=True))
                    for prompt in warmup_prompts(count, vocab)]
        waiting = set(self._executor.enqueue_requests(requests))
        deadline = time.monotonic() + WARMUP_TIMEOUT_S
        while waiting:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.where}: the warm-up got no answer within {WARMUP_TIMEOUT_S:.0f} s")
            for response in self._executor.await_responses(timeout=timedelta(milliseconds=100)):
                if response.has_error():
                    raise RuntimeError(f"{self.where}: warm-up request failed: {response.error_msg}")
                if response.result.is_final:
                    waiting.discard(response.request_id)

    def _poll(self) -> None:
        """Await responses until stopped; every STATS_EVERY_S sample the iteration stats and check for a stall."""
        timeout = timedelta(milliseconds=self.backend.poll_ms)
        next_stats = time.monotonic() + STATS_EVERY_S
        executor = self._executor
        assert executor is not None
        alive = time.monotonic()  # when the executor last answered or iterated
        try:
            while not self._stopping.is_set():
                responses = executor.await_responses(timeout=timeout)
                now = time.monotonic()
                if responses:
                    alive = now
                    self._take(responses)
                if now >= next_stats:
                    next_stats = now + STATS_EVERY_S
                    if self._sample_iterations(executor) or not self._pending:
                        alive = now
                    elif now - alive > self.backend.stall_timeout_s:
                        self._stalled(now - alive)
                        return
        except Exception as error:  # the poller must report, never die silently
            if not self._stopping.is_set():
                log.exception("%s failed", self.where)
                self._deliveries.errors.append((None, f"failed: {type(error).__name__}: {error}"))
                self._deliveries.flush()

    def _sample_iterations(self, executor: trtllm.Executor) -> int:
        """The iterations since the last call into the samples; returns how many there were."""
        iterations = executor.get_latest_iteration_stats()
        for iteration in iterations:
            self.samples.add(json.loads(iteration.to_json_str()))
        return len(iterations)

    def _stalled(self, quiet_s: float) -> None:
        """The executor neither answered nor iterated for backend.stall_timeout_s with requests outstanding."""
        with self._lock:
            waiting = [request_id for request_id, _ in self._ids.values()]
        self._deliveries.errors.append((None, stalled_message(quiet_s, self._pending, waiting,
                                                              self.backend.stall_timeout_s)))
        self._deliveries.flush()

    def _take(self, responses: list[trtllm.Response]) -> None:
        """One poll's responses. Streamed first tokens go to the SUT first: an iteration of a busy instance is
        thousands of responses, nearly all mid-answer, and its few first tokens must not wait for the rest (one pass
        over the ids against the requests still waiting for theirs). Then beam 0's new tokens are appended per
        request and the final answers handed over, one delivery per kind."""
        awaiting = self._awaiting_first
        if awaiting:
            firsts = [r for r in responses if r.request_id in awaiting]
            if firsts:
                self._take_firsts(firsts)
        self._take_all(responses)

    def _take_firsts(self, responses: list[trtllm.Response]) -> None:
        """Hand over the first tokens among `responses`, whose requests had none at the poll's start (a request may
        have several responses in one poll: the first with tokens counts; errors and unknown ids are left to
        _take_all)."""
        deliveries, awaiting = self._deliveries, self._awaiting_first
        for response in responses:
            executor_id = response.request_id
            if executor_id not in awaiting or response.has_error():
                continue
            known = self._ids.get(executor_id) or self._registered(executor_id)
            if known is None:
                continue
            tokens = response.result.output_token_ids[0]
            if tokens:
                deliveries.firsts.append((known[0], tokens))
                awaiting.discard(executor_id)
        deliveries.flush()

    def _registered(self, executor_id: int) -> tuple[int, int] | None:
        """An id the poller does not know yet: a submit may be registering it right now (it holds the lock)."""
        with self._lock:
            return self._ids.get(executor_id)

    def _take_all(self, responses: list[trtllm.Response]) -> None:
        deliveries, ids, streamed, awaiting = self._deliveries, self._ids, self._streamed, self._awaiting_first
        for response in responses:
            executor_id = response.request_id
            known = ids.get(executor_id) or self._registered(executor_id)
            if known is None:
                continue  # cancelled and forgotten
            request_id, end_id = known
            if response.has_error():  # before touching result, which throws on an error response
                deliveries.errors.append((request_id, response.error_msg))
                del ids[executor_id]
                streamed.pop(executor_id, None)
                awaiting.discard(executor_id)
                continue
            result = response.result
            tokens = result.output_token_ids[0]
            so_far = streamed.get(executor_id)
            answer: Sequence[int]
            if so_far is None:  # not streamed: one final response with every token
                answer = tokens
            else:  # streamed: per-step deltas
                if not so_far and tokens and executor_id in awaiting:  # registered after _take looked
                    deliveries.firsts.append((request_id, tokens))
                    awaiting.discard(executor_id)
                so_far.extend(tokens)
                if not result.is_final:
                    continue
                answer = so_far
                del streamed[executor_id]
                awaiting.discard(executor_id)
            if result.finish_reasons[0] == self._ex.FinishReason.END_ID:
                answer = with_end_id(answer, end_id)
            self.latencies.add(result.request_perf_metrics, len(answer))  # the engine's own latencies
            deliveries.finals.append((request_id, answer))
            del ids[executor_id]
        finished = len(deliveries.finals) + len(deliveries.errors)
        if finished:
            with self._lock:
                self._pending -= finished
        deliveries.flush()
