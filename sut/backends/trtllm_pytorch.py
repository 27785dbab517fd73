"""The trtllm-pytorch backend: the current TensorRT-LLM LLM API (PyTorch backend) over a Hugging Face or
modelopt-unified checkpoint (model.path); no engine build.

One LLM per data-parallel instance, in one process (the LLM API spawns each instance's tp x pp workers itself, so
this backend takes no launcher; CUDA_VISIBLE_DEVICES names the instance's GPUs while its LLM is built). One asyncio
loop thread per instance calls `generate_async` for each request and follows it: streamed requests read the
cumulative `outputs[0].token_ids` once for the first tokens, every request awaits its final output once; answers
gathered in the loop go to the SUT in one TokenBatch per kind every `poll_ms`. No per-token Python work beyond
reading the cumulative list.

Stop sequences: the LLM API takes multi-token stops only as strings for its tokenizer, which
skip_tokenizer_init=True disables, so a row's stop sequence (mixtral's MBXP rows) is applied to the final answer
(cut after its first occurrence); extra EOS ids go in as `stop_token_ids`, kept in the output
(`include_stop_str_in_output`). The end id itself never is in TensorRT-LLM's output: an answer that finished on it
(finish_reason "stop", no stop_reason) gets it back, so answers end as the hf backend's do.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from llmkit.benchmarks import Benchmark
from llmkit.config.backends import TrtllmPytorchBackendConfig
from llmkit.config.schema import RunConfig
from llmkit.errors import UserError
from llmkit.log import launcher_rank
from sut.backends.base import BackendSpec, ErrorCallback, RequestBatch, TokenCallback
from sut.backends.trtllm_common import (STATS_EVERY_S, WARMUP_NEW_TOKENS, WARMUP_TIMEOUT_S, Deliveries, EngineLatencies,
                                        IterationSamples, combine_stats, cut_after, delivery_stats, device_ids, layout,
                                        require_tensorrt_llm, runtime_settings, stalled_message, warmup_prompts,
                                        with_end_id)

if TYPE_CHECKING:
    from tensorrt_llm import LLM, SamplingParams
    from tensorrt_llm.llmapi import RequestOutput

log = logging.getLogger(__name__)

# LLM construction reads CUDA_VISIBLE_DEVICES: one instance at a time.
_BUILD_LOCK = threading.Lock()


class TrtllmPytorchBackend:
    combine_stats = staticmethod(combine_stats)

    @classmethod
    def prepare(cls, cfg: RunConfig, benchmark: Benchmark) -> BackendSpec:
        """On rank 0 before anything starts: TensorRT-LLM present, one process, the checkpoint resolved, the
        runtime limits in the spec's backend config."""
        from llmkit.models.checkpoint import resolve_checkpoint

        backend = cfg.backend
        assert isinstance(backend, TrtllmPytorchBackendConfig)
        require_tensorrt_llm(backend.name)
        world = launcher_rank()[1]
        if world > 1:
            raise UserError(f"backend=trtllm-pytorch runs in one process (the LLM API spawns its own workers) but this "
                            f"launch has {world} ranks; run llmkit run without mpirun")
        checkpoint = resolve_checkpoint(cfg.model, benchmark).path
        runtime = runtime_settings(cfg)
        resolved = replace(backend, max_batch_size=runtime.max_batch_size, max_num_tokens=runtime.max_num_tokens,
                           kv_cache_free_gpu_memory_fraction=runtime.kv_fraction)
        return BackendSpec(resolved, cfg.system, benchmark.name, cfg.dataset, str(checkpoint))

    def __init__(self, spec: BackendSpec):
        self.spec = spec
        backend = spec.backend
        assert isinstance(backend, TrtllmPytorchBackendConfig)
        self.backend = backend
        self.where = f"trtllm-pytorch instance {spec.instance}"
        self._llm: LLM | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._outstanding: dict[int, RequestOutput] = {}
        self._pending = 0  # loadgen's thread adds, the loop thread takes off: under _lock
        self._lock = threading.Lock()
        self.first_submit: float | None = None
        self.samples = IterationSamples()
        self.latencies = EngineLatencies()

    # the Backend protocol ------------------------------------------------------------------------------
    def start(self, on_first: TokenCallback, on_final: TokenCallback, on_error: ErrorCallback) -> None:
        from tensorrt_llm import LLM
        from tensorrt_llm.llmapi import KvCacheConfig

        _, tp, pp = layout(self.spec.system)
        visible = ",".join(str(i) for i in device_ids(self.spec.devices))
        with _BUILD_LOCK:
            before = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
            try:
                self._llm = LLM(
                    model=self.spec.checkpoint, tensor_parallel_size=tp, pipeline_parallel_size=pp,
                    kv_cache_config=KvCacheConfig(
                        enable_block_reuse=False,
                        free_gpu_memory_fraction=self.backend.kv_cache_free_gpu_memory_fraction),
                    max_batch_size=self.backend.max_batch_size, max_num_tokens=self.backend.max_num_tokens,
                    enable_iter_perf_stats=True, skip_tokenizer_init=True)
            finally:
                if before is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = before
        self._deliveries = Deliveries(on_first, on_final, on_error, self.where)
        self._thread = threading.Thread(target=self._run_loop, name=f"trtllm-pytorch-{self.spec.instance}",
                                        daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._warm_up(), self._loop).result(WARMUP_TIMEOUT_S)
        log.info("%s ready on %s", self.where, ", ".join(self.spec.devices))

    def submit(self, batch: RequestBatch) -> None:
        if self.first_submit is None:
            self.first_submit = time.perf_counter()
        with self._lock:
            self._pending += len(batch)
        self._loop.call_soon_threadsafe(self._launch, batch)

    def pending(self) -> int:
        return self._pending

    def stats(self) -> dict[str, object] | None:
        return delivery_stats(self.spec.instance, getattr(self, "_deliveries", None), self.first_submit, self.samples,
                              self.latencies)

    def stop(self) -> None:
        """Abort what is outstanding, stop the loop, shut the LLM down (idempotent; also on Ctrl-C)."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        if self._thread is not None:
            asyncio.run_coroutine_threadsafe(self._abort_all(), self._loop).result(60)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None
        llm.shutdown()

    # the loop thread -----------------------------------------------------------------------------------
    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.create_task(self._deliver_forever())
        try:
            self._loop.run_forever()
        finally:  # stopped (stop()): what still runs is cancelled and awaited, so the loop closes clean
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    def _params(self, batch: RequestBatch, max_tokens: int | None = None) -> SamplingParams:
        from tensorrt_llm import SamplingParams

        extra = [int(e) for e in batch.eos_ids[1:]]
        return SamplingParams(max_tokens=max_tokens or batch.max_new_tokens, min_tokens=batch.min_new_tokens,
                              end_id=batch.eos_ids[0], pad_id=batch.eos_ids[0], stop_token_ids=extra or None,
                              include_stop_str_in_output=True, top_k=1, detokenize=False, return_perf_metrics=True)

    def _launch(self, batch: RequestBatch) -> None:
        """Start every request of the batch (in the loop thread, so the outputs can be awaited here)."""
        assert self._llm is not None
        params = self._params(batch)
        for request_id, row in zip(batch.request_ids.tolist(), batch.rows.tolist()):
            output = self._llm.generate_async(batch.prompts[row].tolist(), sampling_params=params,
                                              streaming=batch.stream)
            self._outstanding[request_id] = output
            self._loop.create_task(self._follow(request_id, output, batch.stream, batch.stop_sequences[row],
                                                batch.eos_ids[0]))

    async def _follow(self, request_id: int, output: RequestOutput, stream: bool, stop: Sequence[int] | None,
                      end_id: int) -> None:
        deliveries = self._deliveries
        try:
            if stream:
                async for partial in output:
                    so_far = partial.outputs[0].token_ids
                    if so_far:
                        deliveries.firsts.append((request_id, so_far[:1]))
                        break
            final = (await output.aresult()).outputs[0]
            ids: Sequence[int] = final.token_ids or []  # Optional in CompletionOutput, a list in practice
            if final.finish_reason == "stop" and final.stop_reason is None:  # ended by the end id, left out
                ids = with_end_id(ids, end_id)
            answer = cut_after(ids, stop) if stop else ids
            self.latencies.add(final.request_perf_metrics, len(answer))  # the engine's own latencies
            deliveries.finals.append((request_id, answer))
        except Exception as error:  # a failed request is named to the SUT, never dropped
            deliveries.errors.append((request_id, f"{type(error).__name__}: {error}"))
        finally:
            self._outstanding.pop(request_id, None)

    async def _deliver_forever(self) -> None:
        """Every poll_ms hand over what was gathered; every STATS_EVERY_S sample the iteration stats (in a worker
        thread: get_stats waits) and end the run if the instance stalled: requests outstanding, yet nothing answered
        and no iteration for backend.stall_timeout_s. A failure here is reported to the SUT, never left to die
        silently with the task."""
        try:
            await self._deliver_until_stalled()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.exception("%s failed", self.where)
            self._deliveries.errors.append((None, f"failed: {type(error).__name__}: {error}"))
            self._deliveries.flush()

    async def _deliver_until_stalled(self) -> None:
        interval, loop = self.backend.poll_ms / 1e3, asyncio.get_running_loop()
        alive = next_stats = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            answered = self._deliveries.answered
            finished = self._deliveries.flush()  # loadgen's callbacks run here: submit may add meanwhile
            with self._lock:
                self._pending -= finished
                pending = self._pending
            now = time.monotonic()
            if self._deliveries.answered > answered or not pending:
                alive = now
            if now < next_stats or self._llm is None:
                continue
            llm = self._llm
            iterations = await loop.run_in_executor(None, lambda: llm.get_stats(timeout=0.0))
            for iteration in iterations:
                parsed = json.loads(iteration) if isinstance(iteration, str) else iteration
                if isinstance(parsed, dict):
                    self.samples.add(parsed)
            now = next_stats = time.monotonic()
            next_stats += STATS_EVERY_S
            if iterations:
                alive = now
            elif self._pending and now - alive > self.backend.stall_timeout_s:
                self._deliveries.errors.append((None, stalled_message(now - alive, self._pending,
                                                                      list(self._outstanding),
                                                                      self.backend.stall_timeout_s)))
                self._deliveries.flush()
                return

    async def _warm_up(self) -> None:
        """A few random prompts within the vocabulary, awaited and not reported."""
        assert self._llm is not None
        count = self.backend.warmup_requests
        if not count:
            return
        vocab = int(json.loads((Path(self.spec.checkpoint) / "config.json").read_text())["vocab_size"])
        from tensorrt_llm import SamplingParams

        from llmkit.benchmarks import get_benchmark

        eos = get_benchmark(self.spec.benchmark).eos_id
        params = SamplingParams(max_tokens=WARMUP_NEW_TOKENS, end_id=eos, pad_id=eos, top_k=1, detokenize=False)
        outputs = [self._llm.generate_async(prompt, sampling_params=params) for prompt in warmup_prompts(count, vocab)]
        for output in outputs:
            await output.aresult()

    async def _abort_all(self) -> None:
        for output in list(self._outstanding.values()):
            output.abort()
