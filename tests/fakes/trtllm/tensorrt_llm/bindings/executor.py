"""Test double of TensorRT-LLM 1.2.1's `tensorrt_llm.bindings.executor` (nanobind), for CPU tests of the kit's
trtllm backend. Importable only with tests/fakes/trtllm on PYTHONPATH (tests/fakes/trtllm/README.md).

Mimics NVIDIA/TensorRT-LLM cpp/tensorrt_llm/nanobind/executor/executor.cpp @ 1dd50d07 (the Python signatures:
Executor(model_path, model_type, executor_config), positional or by name; await_responses with three overloads
(timeout) / (id, timeout) / (ids, timeout), the timeout a std::chrono::milliseconds: a timedelta or float seconds,
never an int, so `await_responses(5)` binds to the request-id overload and `await_responses(timeout=5)` is a
TypeError) and cpp/tensorrt_llm/executor/executorImpl.cpp @ 036a60f7 (ids from 1; after shutdown() every call
raises "Shutdown called" except can_enqueue_requests(), which turns False, and shutdown() itself, which is
idempotent; await_responses(id) of an id already answered finally gives one error response "ReqId N has already been
processed and was terminated."; responses come grouped by request id; max_queue_size is enforced at enqueue).
The test-double-only attributes `kv_cache_block_reuse`, `warnings`, `limits`, `checkpoint` let tests check what the
kit configured (block reuse left on is also logged as a warning on the "tensorrt_llm" logger).
"""
from __future__ import annotations

import datetime
import logging
import threading
import time
from pathlib import Path

from tensorrt_llm._double.configs import (BatchingType, CapacitySchedulerPolicy, CommunicationMode,  # noqa: F401
                                          CommunicationType, ContextChunkingPolicy, DynamicBatchConfig,
                                          ExecutorConfig, ExtendedRuntimePerfKnobConfig, FinishReason,
                                          KvCacheConfig, ModelType, OrchestratorConfig, ParallelConfig,
                                          PeftCacheConfig, SchedulerConfig)
from tensorrt_llm._double.convert import UINT64, NoConversion, incompatible, to_int, to_milliseconds
from tensorrt_llm._double.engine import Engine, GreedyGenerator, Job, ReplayGenerator, response_row
from tensorrt_llm._double.requests import (IterationStats, KvCacheStats, OutputConfig, Request,  # noqa: F401
                                           RequestPerfMetrics, Response, Result, SamplingConfig,
                                           TimingMetrics)
from tensorrt_llm._double.settings import Settings, TllmError, engine_limits, hf_checkpoint_of, read_engine_config

__version__ = "1.2.1"
__all__ = ["BatchingType", "CapacitySchedulerPolicy", "CommunicationMode", "CommunicationType", "ContextChunkingPolicy",
           "DynamicBatchConfig", "Executor", "ExecutorConfig", "ExtendedRuntimePerfKnobConfig", "FinishReason",
           "IterationStats", "KvCacheConfig", "KvCacheStats", "ModelType", "OrchestratorConfig", "OutputConfig",
           "ParallelConfig", "PeftCacheConfig", "Request", "RequestPerfMetrics", "Response", "Result", "SamplingConfig",
           "SchedulerConfig", "TimingMetrics"]
log = logging.getLogger("tensorrt_llm")
AWAIT_SIGNATURES = ["self, timeout: datetime.timedelta | float | None = None",
                    "self, id: int, timeout: datetime.timedelta | float | None = None",
                    "self, ids: collections.abc.Sequence[int], timeout: datetime.timedelta | float | None = None"]


class ResponseStore:
    """The responses not yet awaited, as the executor keeps them: one list per engine iteration (the engine thread
    adds an iteration's together, `flush`, as the runtime fills its response map once per iteration). With the loop
    in a child process (`pump` set: RemoteEngine.pump), the waiting caller moves them in itself."""

    def __init__(self):
        self.pump = None
        self.cv = threading.Condition()
        self.batches: list[list[Response]] = []  # per iteration, one response per request at most
        self.terminated: set[int] = set()
        self._ending: set[int] = set()  # requests whose last response is in `batches`
        self.closed = False
        self.dead: str | None = None
        self._results: list[tuple] = []  # this iteration's (response_row), only ever touched by the engine thread
        self._errors: list[tuple] = []
        self._finals: list[int] = []  # this iteration's requests whose final result is among _results

    def result(self, job: Job, tokens: list[int], final: bool, timing=None) -> None:
        self._results.append(response_row(job, tokens, final, timing))
        if final:
            self._finals.append(job.id)

    def error(self, request_id: int, message: str, client_id: int | None) -> None:
        self._errors.append((request_id, message, client_id))

    def stage(self) -> None:
        pass  # the results wait in this process, ready for the caller as they are

    def flush(self) -> None:
        results, errors, finals = self._results, self._errors, self._finals
        self._results, self._errors, self._finals = [], [], []
        if results or errors:
            self.add_all(results, errors, finals)

    def add_all(self, results: list[tuple], errors: list[tuple], finals: list[int]) -> None:
        """An iteration's responses (response_row tuples, the ids of those that are final, and errors), from this
        process's loop or the child's."""
        batch = Response.of_rows(results)
        batch += [Response(request_id, text, client_id) for request_id, text, client_id in errors]
        ending = finals + [request_id for request_id, _, _ in errors]
        with self.cv:
            self.batches.append(batch)
            self._ending.update(ending)
            self.cv.notify_all()

    def died(self, message: str) -> None:
        with self.cv:
            self.dead = message
            self.cv.notify_all()

    def count(self, request_id: int | None = None) -> int:
        if request_id is None:
            return sum(map(len, self.batches))
        return sum(r.request_id == request_id for batch in self.batches for r in batch)

    def _take(self, ids: set[int] | None) -> list[Response]:
        """The awaited responses, grouped by request id as the runtime's map gives them, in arrival order within
        each request; a request whose last response goes is terminated."""
        if ids is None:
            batches, self.batches = self.batches, []
            ending, self._ending = self._ending, set()
        else:
            ending = self._ending & ids
            self._ending -= ending
            batches = [[r for r in batch if r.request_id in ids] for batch in self.batches]
            self.batches = [[r for r in batch if r.request_id not in ids] for batch in self.batches]
            self.batches = [batch for batch in self.batches if batch]
        if len(batches) == 1:
            out = batches[0]  # one iteration: one response per request, grouped already
        else:
            groups: dict[int, list[Response]] = {}
            for batch in batches:
                for response in batch:
                    groups.setdefault(response.request_id, []).append(response)
            out = [response for group in groups.values() for response in group]
        self.terminated |= ending
        return out

    def wait(self, ids: list[int] | None, timeout: datetime.timedelta | None) -> list[Response]:
        """All ready responses (of `ids`, or of every request), waiting up to `timeout` for the first."""
        wanted = None if ids is None else set(ids)

        def ready():
            if self.closed or self.dead is not None:
                return True
            if wanted is None:
                return bool(self.batches)
            return any(r.request_id in wanted for batch in self.batches for r in batch)

        if self.pump is not None:
            return self._pumped(wanted, ready, None if timeout is None else timeout.total_seconds())
        with self.cv:
            if timeout is None:
                self.cv.wait_for(ready)
            elif not self.cv.wait_for(ready, timeout.total_seconds()):
                return []
            return self._ready(wanted)

    def _ready(self, ids: set[int] | None) -> list[Response]:
        if self.dead is not None:
            raise RuntimeError(self.dead)
        return self._take(ids)

    def _pumped(self, ids: set[int] | None, ready, timeout_s: float | None) -> list[Response]:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            with self.cv:
                if ready():
                    return self._ready(ids)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return []
            self.pump(left)


class Executor:
    def __init__(self, model_path, model_type, executor_config):
        if not isinstance(model_path, (str, Path)) and not hasattr(model_path, "__fspath__"):
            raise incompatible("__init__", ["self, model_path: os.PathLike, model_type: ModelType, executor_config: "
                                            "ExecutorConfig"], (model_path, model_type, executor_config), {})
        if not isinstance(model_type, ModelType) or not isinstance(executor_config, ExecutorConfig):
            raise TypeError("__init__(): incompatible function arguments (model_type: ModelType, executor_config: "
                            "ExecutorConfig)")
        if model_type is not ModelType.DECODER_ONLY:
            raise NotImplementedError("(test double) only ModelType.DECODER_ONLY engines")
        self._shutdown = False
        self.settings = Settings.from_env()
        self.model_path = Path(model_path)
        config = read_engine_config(self.model_path)
        mapping = config["pretrained_config"].get("mapping", {})
        parallel = executor_config.parallel_config
        ranks = int(mapping.get("tp_size", 1)) * int(mapping.get("pp_size", 1))
        if parallel is not None and parallel.device_ids is not None and len(parallel.device_ids) != ranks:
            raise TllmError(f"Assertion failed: When specifying deviceIds, deviceIds ({len(parallel.device_ids)}) * "
                            f"numNodes (1) must be equal to tp*pp*cp (tp is {mapping.get('tp_size', 1)}, pp is "
                            f"{mapping.get('pp_size', 1)}, cp is 1)")
        self.config, self.parallel_config, self.warnings = executor_config, parallel, []
        policy = executor_config.scheduler_config.capacity_scheduler_policy
        self.limits = engine_limits(config, max_batch_size=executor_config.max_batch_size,
                                    max_num_tokens=executor_config.max_num_tokens,
                                    max_beam_width=executor_config.max_beam_width,
                                    chunked=executor_config.enable_chunked_context,
                                    guaranteed_no_evict=policy is CapacitySchedulerPolicy.GUARANTEED_NO_EVICT,
                                    warnings=self.warnings)
        self.kv_cache_block_reuse = executor_config.kv_cache_config.enable_block_reuse
        if self.kv_cache_block_reuse:
            self.warnings.append("KV cache block reuse is enabled (KvCacheConfig.enable_block_reuse=True)")
            log.warning("[TensorRT-LLM][WARNING] (test double) KV cache block reuse is ON: enable_block_reuse "
                        "defaults to True; MLPerf runs must turn it off")
        self.checkpoint = None
        if self.settings.mode == "model":
            self.checkpoint = hf_checkpoint_of(self.model_path, self.settings)
            generator = GreedyGenerator(str(self.checkpoint), self.settings.device)
        else:
            generator = ReplayGenerator(self.settings, self.limits.vocab_size)
        self._store = ResponseStore()
        self._next_id, self._enqueued = 1, 0
        self._id_lock = threading.Lock()
        if self.settings.engine == "process":
            from tensorrt_llm._double.remote import RemoteEngine  # not at import: the child runs it as __main__

            if executor_config.max_queue_size is not None and executor_config.max_queue_size > 0:
                raise NotImplementedError("(test double) LLMKIT_FAKE_TRTLLM_ENGINE=process keeps no queue count: "
                                          "leave max_queue_size unbounded")
            self._engine = RemoteEngine(self.limits, self.settings, self._store, block_reuse=self.kv_cache_block_reuse,
                                        iter_stats_max=executor_config.iter_stats_max_iterations,
                                        name=self.model_path.name)
            self._store.pump = self._engine.pump
        else:
            self._engine = Engine(self.limits, self.settings, generator, self._store,
                                  block_reuse=self.kv_cache_block_reuse,
                                  iter_stats_max=executor_config.iter_stats_max_iterations, name=self.model_path.name)
        self._engine.warnings = self.warnings

    # lifecycle ---------------------------------------------------------------------------------------------
    def _check(self, what: str = "Shutdown called") -> None:
        if self._shutdown:
            raise TllmError(f"Assertion failed: {what}")
        if self._store.dead is not None:
            raise RuntimeError(self._store.dead)

    def shutdown(self) -> None:
        if self._shutdown:
            return
        self._shutdown = True
        self._engine.shutdown()
        with self._store.cv:
            self._store.closed = True
            self._store.cv.notify_all()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def can_enqueue_requests(self) -> bool:
        return not self._shutdown

    # requests ----------------------------------------------------------------------------------------------
    def enqueue_request(self, request: Request) -> int:
        return self.enqueue_requests([request])[0]

    def enqueue_requests(self, requests) -> list[int]:
        if isinstance(requests, Request) or not all(isinstance(r, Request) for r in requests):
            raise TypeError("enqueue_requests(): incompatible function arguments (requests: list[Request])")
        self._check("Shutdown called, cannot enqueue requests")
        queue = self.config.max_queue_size
        if queue is not None and queue > 0 and self._engine_pending() + len(requests) > queue:
            raise TllmError(f"Maximum queue size of {queue} has been reached, please try again later")
        jobs = []
        with self._id_lock:
            for request in requests:
                self._enqueued += 1
                jobs.append(self._job(self._next_id, request, self._enqueued == self.settings.error_on))
                self._next_id += 1
        self._engine.submit(jobs)
        return [job.id for job in jobs]

    def _engine_pending(self) -> int:
        engine = self._engine
        return len(engine._queued) + len(engine._waiting)

    @staticmethod
    def _job(request_id: int, request: Request, inject_error: bool) -> Job:
        sampling, output = request.sampling_config, request.output_config
        return Job(id=request_id, prompt=request.input_token_ids, max_new=request.max_tokens,
                   min_tokens=1 if sampling.min_tokens is None else max(sampling.min_tokens, 1), end_id=request.end_id,
                   stop_words=[tuple(w) for w in request.stop_words or [] if w], streaming=request.streaming,
                   exclude_input=output.exclude_input_from_output, return_all=request.return_all_generated_tokens,
                   client_id=request.client_id, inject_error=inject_error, perf=output.return_perf_metrics,
                   arrival=time.monotonic())

    def await_responses(self, *args, **kwargs):
        """The three overloads of the binding, resolved as nanobind does (first match in declaration order)."""
        for overload in (self._await_all, self._await_id, self._await_ids):
            try:
                call = overload(*args, **kwargs)
            except (NoConversion, TypeError):
                continue
            self._check()
            return call()
        raise incompatible("await_responses", AWAIT_SIGNATURES, args, kwargs)

    def _await_all(self, timeout=None):
        timeout = to_milliseconds(timeout)
        return lambda: self._store.wait(None, timeout)

    def _await_id(self, id, timeout=None):  # noqa: A002 (the binding's argument name)
        request_id, timeout = to_int(id, UINT64, "id"), to_milliseconds(timeout)

        def call():
            with self._store.cv:
                if request_id in self._store.terminated:
                    return [Response(request_id, f"ReqId {request_id} has already been processed and was terminated.")]
            return self._store.wait([request_id], timeout)
        return call

    def _await_ids(self, ids, timeout=None):
        request_ids, timeout = [to_int(i, UINT64, "ids") for i in to_tokens_u64(ids)], to_milliseconds(timeout)

        def call():
            start, out = time.monotonic(), []
            for request_id in request_ids:
                left = None
                if timeout is not None:
                    left = max(timeout - datetime.timedelta(seconds=time.monotonic() - start), datetime.timedelta(0))
                out.append(self._await_id(request_id, left)())
            return out
        return call

    def get_num_responses_ready(self, id=None) -> int:  # noqa: A002
        self._check()
        if self._store.pump is not None:
            self._store.pump(0.0)
        with self._store.cv:
            return self._store.count(None if id is None else to_int(id, UINT64, "id"))

    def cancel_request(self, id) -> None:  # noqa: A002
        request_id = to_int(id, UINT64, "id")
        self._check()
        with self._store.cv:
            if request_id in self._store.terminated:
                return
        self._engine.cancel(request_id)

    def get_latest_iteration_stats(self) -> list[IterationStats]:
        self._check()
        return [IterationStats(s) for s in self._engine.latest_stats()]

    def get_latest_request_stats(self) -> list:
        self._check()
        return []


def to_tokens_u64(value) -> list:
    if isinstance(value, (str, bytes, int)) or not hasattr(value, "__iter__"):
        raise NoConversion("ids: expected a sequence of int")
    return list(value)
