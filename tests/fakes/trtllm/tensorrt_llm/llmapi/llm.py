"""Test double of TensorRT-LLM 1.2.1's LLM API (`tensorrt_llm.LLM`, the PyTorch backend), for CPU tests of the
kit's trtllm-pytorch backend. Importable only with tests/fakes/trtllm on PYTHONPATH (tests/fakes/trtllm/README.md).

Mimics, from NVIDIA/TensorRT-LLM (1.2-line sources; the v1.2.1 tag itself was not readable):
- tensorrt_llm/llmapi/llm.py @ 00966934: LLM(model, tokenizer=None, tokenizer_mode='auto', skip_tokenizer_init=False,
  trust_remote_code=False, tensor_parallel_size=1, dtype='auto', revision=None, tokenizer_revision=None, **kwargs)
  (everything else, kv_cache_config, max_batch_size, max_num_tokens, pipeline_parallel_size..., by name only, and an
  unknown name is a pydantic ValidationError); generate_async(inputs, sampling_params=None, ..., streaming=False);
  without a tokenizer, sampling_params=None or end_id=None is a ValueError; shutdown().
- tensorrt_llm/llmapi/llm_args.py @ (KvCacheConfig, BaseLlmArgs; read at the index's version): pydantic, extra
  fields forbidden; KvCacheConfig(enable_block_reuse=True, free_gpu_memory_fraction=0.9 in [0, 1], tokens_per_block
  32, ...); max_batch_size 2048, max_num_tokens 8192 by default.
- tensorrt_llm/executor/result.py @ 005bc848: outputs[0].token_ids are cumulative (each response extends them);
  finish_reason 'stop' (END_ID, STOP_WORDS), 'length', 'cancelled'; on STOP_WORDS the stop word is cut from token_ids
  unless include_stop_str_in_output, and stop_reason names it; RequestOutput is iterable (sync and async) while
  streaming and has result()/aresult(); an error response surfaces as RequestError.
A prompt longer than max_num_tokens without enable_chunked_prefill is a ValueError at generate_async, as the
PyTorch path's argument check has it (recalled, not re-read). Generation is the same engine as the Executor double.
"""
from __future__ import annotations

import asyncio
import enum
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tensorrt_llm._double.engine import (CANCELLED, END_ID, LENGTH, STOP_WORDS, Engine, GreedyGenerator, Job,
                                         ReplayGenerator)
from tensorrt_llm._double.requests import RequestPerfMetrics
from tensorrt_llm._double.settings import Limits, Settings
from tensorrt_llm.executor import RequestError
from tensorrt_llm.sampling_params import SamplingParams

log = logging.getLogger("tensorrt_llm")


class CapacitySchedulerPolicy(str, enum.Enum):
    MAX_UTILIZATION = "MAX_UTILIZATION"
    GUARANTEED_NO_EVICT = "GUARANTEED_NO_EVICT"
    STATIC_BATCH = "STATIC_BATCH"


class ContextChunkingPolicy(str, enum.Enum):
    FIRST_COME_FIRST_SERVED = "FIRST_COME_FIRST_SERVED"
    EQUAL_PROGRESS = "EQUAL_PROGRESS"


class StrictBaseModel(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class SchedulerConfig(StrictBaseModel):
    capacity_scheduler_policy: CapacitySchedulerPolicy = CapacitySchedulerPolicy.GUARANTEED_NO_EVICT
    context_chunking_policy: Optional[ContextChunkingPolicy] = None
    dynamic_batch_config: Any = None


class KvCacheConfig(StrictBaseModel):
    enable_block_reuse: bool = True
    max_tokens: Optional[int] = None
    max_attention_window: Optional[list[int]] = None
    sink_token_length: Optional[int] = None
    free_gpu_memory_fraction: Optional[float] = 0.9
    host_cache_size: Optional[int] = None
    onboard_blocks: bool = True
    cross_kv_cache_fraction: Optional[float] = None
    secondary_offload_min_priority: Optional[int] = None
    event_buffer_max_size: int = 0
    attention_dp_events_gather_period_ms: int = 5
    enable_partial_reuse: bool = True
    copy_on_partial_reuse: bool = True
    use_uvm: bool = False
    max_gpu_total_bytes: int = 0
    dtype: str = "auto"
    mamba_ssm_cache_dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    tokens_per_block: int = 32

    @field_validator("free_gpu_memory_fraction")
    @classmethod
    def validate_free_gpu_memory_fraction(cls, v: float):
        if not 0 <= v <= 1:
            raise ValueError("kv_cache_config.free_gpu_memory_fraction must be a float between 0 and 1")
        return v


class TorchLlmArgs(StrictBaseModel):
    """The arguments the double knows (a subset of the real TorchLlmArgs); any other name is refused as extra."""

    model: str | Path
    tokenizer: Any = None
    tokenizer_mode: Literal["auto", "slow"] = "auto"
    skip_tokenizer_init: bool = False
    trust_remote_code: bool = False
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    revision: Optional[str] = None
    tokenizer_revision: Optional[str] = None
    pipeline_parallel_size: int = 1
    context_parallel_size: int = 1
    gpus_per_node: Optional[int] = None
    moe_expert_parallel_size: Optional[int] = None
    moe_tensor_parallel_size: Optional[int] = None
    enable_attention_dp: bool = False
    kv_cache_config: KvCacheConfig = Field(default_factory=KvCacheConfig)
    scheduler_config: SchedulerConfig = Field(default_factory=SchedulerConfig)
    max_batch_size: Optional[int] = 2048
    max_num_tokens: Optional[int] = 8192
    max_seq_len: Optional[int] = None
    max_input_len: Optional[int] = None
    max_beam_width: Optional[int] = 1
    enable_chunked_prefill: bool = False
    backend: Optional[str] = "pytorch"
    cuda_graph_config: Any = None
    disable_overlap_scheduler: bool = False
    moe_config: Any = None
    attn_backend: str = "TRTLLM"
    stream_interval: int = 1
    num_postprocess_workers: int = 0
    postprocess_tokenizer_dir: Optional[str] = None
    enable_iter_perf_stats: bool = False
    iter_stats_max_iterations: Optional[int] = None
    print_iter_log: bool = False
    garbage_collection_gen0_threshold: int = 20000
    return_perf_metrics: bool = False
    load_format: str = "auto"
    speculative_config: Any = None
    batch_wait_timeout_ms: float = 0


@dataclass
class CompletionOutput:
    index: int
    text: str = ""
    token_ids: Optional[list[int]] = field(default_factory=list)
    cumulative_logprob: Optional[float] = None
    logprobs: Optional[list] = field(default_factory=list)
    prompt_logprobs: Optional[list] = field(default_factory=list)
    finish_reason: Optional[Literal["stop", "length", "timeout", "cancelled"]] = None
    stop_reason: Optional[int | str] = None
    generation_logits: Any = None
    disaggregated_params: Any = None
    request_perf_metrics: Any = None  # with SamplingParams(return_perf_metrics=True): the latest timing
    _last_text_len: int = field(default=0, init=False, repr=False)
    _last_token_ids_len: int = field(default=0, init=False, repr=False)

    @property
    def length(self) -> int:
        return len(self.token_ids)

    @property
    def text_diff(self) -> str:
        return self.text[self._last_text_len:]

    @property
    def token_ids_diff(self) -> list[int]:
        return self.token_ids[self._last_token_ids_len:]


_DONE = object()


class RequestOutput:
    """What generate_async returns: filled as the runtime's responses arrive (iterate while streaming)."""

    def __init__(self, request_id: int, prompt: Optional[str], prompt_token_ids: list[int],
                 sampling_params: SamplingParams, streaming: bool, tokenizer, llm: "LLM"):
        self.request_id, self.prompt, self.prompt_token_ids = request_id, prompt, prompt_token_ids
        self.sampling_params, self._streaming, self.tokenizer, self._llm = sampling_params, streaming, tokenizer, llm
        self._outputs = [CompletionOutput(0)]
        self.context_logits = None
        self._done = False
        self._error: Optional[str] = None
        self._queue: queue.Queue = queue.Queue()
        try:
            self._loop = asyncio.get_running_loop()
            self._aqueue: Optional[asyncio.Queue] = asyncio.Queue()
        except RuntimeError:
            self._loop, self._aqueue = None, None

    @property
    def outputs(self) -> list[CompletionOutput]:
        return self._outputs[: self.sampling_params.n]

    @property
    def finished(self) -> bool:
        return self._done

    def __repr__(self) -> str:
        return (f"RequestOutput(request_id={self.request_id}, prompt_token_ids={self.prompt_token_ids}, "
                f"outputs={self.outputs}, finished={self._done})")

    # fed from the engine thread --------------------------------------------------------------------------
    def _deliver(self, item) -> None:
        self._queue.put(item)
        if self._aqueue is not None:
            try:
                self._loop.call_soon_threadsafe(self._aqueue.put_nowait, item)
            except RuntimeError:  # the loop is closed: only synchronous readers remain
                self._aqueue = None

    def _handle(self, item) -> None:
        if isinstance(item, str):
            self._done, self._error = True, item
            raise RequestError(item)
        job, tokens, final, timing = item
        output = self._outputs[0]
        if timing is not None:
            output.request_perf_metrics = RequestPerfMetrics(timing)
        output._last_token_ids_len = len(output.token_ids)
        output.token_ids.extend(tokens)
        self._done = final
        if final:
            if job.reason == CANCELLED:
                output.finish_reason = "cancelled"
            elif job.reason == LENGTH:
                output.finish_reason = "length"
            elif job.reason in (END_ID, STOP_WORDS):
                output.finish_reason = "stop"
            if job.reason == STOP_WORDS:
                for reason, words in self.sampling_params._get_stop_reasons_and_words():
                    if output.token_ids[-len(words):] == words:
                        output.stop_reason = reason
                        if not self.sampling_params.include_stop_str_in_output:
                            output.token_ids = output.token_ids[: -len(words)]
                        break
        if self.sampling_params.detokenize and self.tokenizer is not None:
            output._last_text_len = len(output.text)
            output.text = self.tokenizer.decode(output.token_ids,
                                                skip_special_tokens=self.sampling_params.skip_special_tokens)

    # read by the caller ----------------------------------------------------------------------------------
    def result(self, timeout: Optional[float] = None) -> "RequestOutput":
        while not self._done:
            self._handle(self._queue.get(timeout=timeout))
        if self._error is not None:
            raise RequestError(self._error)
        return self

    async def aresult(self) -> "RequestOutput":
        while not self._done:
            await self._anext_item()
        if self._error is not None:
            raise RequestError(self._error)
        return self

    async def _anext_item(self) -> None:
        if self._aqueue is not None:
            item = await self._aqueue.get()
            self._queue.get_nowait()  # keep both queues in step
        else:
            item = await asyncio.get_running_loop().run_in_executor(None, self._queue.get)
        self._handle(item)

    def __iter__(self):
        return self

    def __next__(self) -> "RequestOutput":
        if self._done:
            raise StopIteration
        self._handle(self._queue.get())
        return self

    def __aiter__(self):
        return self

    async def __anext__(self) -> "RequestOutput":
        if self._done:
            raise StopAsyncIteration
        await self._anext_item()
        return self

    def abort(self) -> None:
        self._llm._engine.cancel(self.request_id)


class _Router:
    """Routes the engine's results to their RequestOutput."""

    def __init__(self):
        self.lock = threading.Lock()
        self.outputs: dict[int, RequestOutput] = {}

    def _pop(self, request_id: int, final: bool) -> Optional[RequestOutput]:
        with self.lock:
            return self.outputs.pop(request_id, None) if final else self.outputs.get(request_id)

    def result(self, job: Job, tokens: list[int], final: bool, timing=None) -> None:
        if (output := self._pop(job.id, final)) is not None:
            output._deliver((job, tokens, final, timing))

    def error(self, request_id: int, message: str, client_id) -> None:
        if (output := self._pop(request_id, True)) is not None:
            output._deliver(message)

    def stage(self) -> None:
        pass  # each result goes to its RequestOutput as it comes

    def flush(self) -> None:
        pass  # each result went to its RequestOutput as it came

    def died(self, message: str) -> None:
        with self.lock:
            outputs, self.outputs = list(self.outputs.values()), {}
        for output in outputs:
            output._deliver(message)


class LLM:
    def __init__(self, model, tokenizer=None, tokenizer_mode="auto", skip_tokenizer_init=False,
                 trust_remote_code=False, tensor_parallel_size=1, dtype="auto", revision=None,
                 tokenizer_revision=None, **kwargs):
        self.args = TorchLlmArgs(model=model, tokenizer=tokenizer, tokenizer_mode=tokenizer_mode,
                                 skip_tokenizer_init=skip_tokenizer_init, trust_remote_code=trust_remote_code,
                                 tensor_parallel_size=tensor_parallel_size, dtype=dtype, revision=revision,
                                 tokenizer_revision=tokenizer_revision, **kwargs)
        self._engine = None
        self.settings = Settings.from_env()
        if self.settings.engine == "process":
            raise NotImplementedError("(test double) LLMKIT_FAKE_TRTLLM_ENGINE=process is for the Executor binding "
                                      "(backend=trtllm) only")
        checkpoint = Path(self.args.model)
        if not (checkpoint / "config.json").is_file():
            raise ValueError(f"(test double) {checkpoint} is not a local Hugging Face checkpoint (no config.json); "
                             "the double never downloads from the Hub")
        hf_config = json.loads((checkpoint / "config.json").read_text())
        self.tokenizer = None
        if not self.args.skip_tokenizer_init:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=tokenizer_mode != "slow")
        kv, args = self.args.kv_cache_config, self.args
        self.kv_cache_block_reuse, self.warnings = kv.enable_block_reuse, []
        if kv.enable_block_reuse:
            self.warnings.append("KV cache block reuse is enabled (KvCacheConfig.enable_block_reuse=True)")
            log.warning("(test double) KV cache block reuse is ON: enable_block_reuse defaults to True; MLPerf runs "
                        "must turn it off")
        max_seq_len = args.max_seq_len or int(hf_config.get("max_position_embeddings", 4096))
        self.limits = Limits(
            max_batch_size=args.max_batch_size or 2048, max_num_tokens=args.max_num_tokens or 8192,
            max_input_len=args.max_input_len or max_seq_len - 1, max_seq_len=max_seq_len,
            vocab_size=int(hf_config["vocab_size"]), tokens_per_block=kv.tokens_per_block,
            chunked_context=args.enable_chunked_prefill,
            guaranteed_no_evict=args.scheduler_config.capacity_scheduler_policy
            is CapacitySchedulerPolicy.GUARANTEED_NO_EVICT, check_streaming_restart=False)
        if self.settings.mode == "model":
            generator = GreedyGenerator(str(checkpoint), self.settings.device)
        else:
            generator = ReplayGenerator(self.settings, self.limits.vocab_size)
        self._router, self._next_id, self._submitted = _Router(), 1, 0
        self._lock = threading.Lock()
        self._engine = Engine(self.limits, self.settings, generator, self._router,
                              block_reuse=kv.enable_block_reuse, iter_stats_max=args.iter_stats_max_iterations or 1000,
                              name=checkpoint.name)
        self._engine.warnings = self.warnings

    def _prepare_sampling_params(self, sampling_params: Optional[SamplingParams]) -> SamplingParams:
        if sampling_params is None:
            if self.tokenizer is None:
                raise ValueError("tokenizer is required to initialize a default sampling_params, or you can "
                                 "explicitly specify a sampling_params")
            return SamplingParams(end_id=self.tokenizer.eos_token_id, pad_id=self.tokenizer.pad_token_id)
        if not isinstance(sampling_params, SamplingParams):
            raise TypeError(f"The sampling_params must be type SamplingParams or None, but got {type(sampling_params)}")
        if sampling_params.end_id is None:
            if self.tokenizer is None:
                raise ValueError("tokenizer is required to reset end_id if it is None, or you can explicitly specify "
                                 "the end_id for sampling_params")
            sampling_params._setup(self.tokenizer)
        return sampling_params

    def _prompt(self, inputs, sampling_params: SamplingParams) -> tuple[Optional[str], list[int]]:
        if isinstance(inputs, dict) and "prompt_token_ids" in inputs:
            inputs = inputs["prompt_token_ids"]
        elif isinstance(inputs, dict) and "prompt" in inputs:
            inputs = inputs["prompt"]
        if isinstance(inputs, str):
            if self.tokenizer is None:
                raise ValueError("(test double) a text prompt needs the tokenizer (skip_tokenizer_init=True)")
            return inputs, self.tokenizer.encode(inputs, add_special_tokens=sampling_params.add_special_tokens)
        if isinstance(inputs, (list, tuple)) and all(isinstance(t, int) for t in inputs):
            return None, list(inputs)
        raise TypeError(f"The inputs must be type str or list of int, but got {type(inputs)}")

    def generate_async(self, inputs, sampling_params: Optional[SamplingParams] = None, lora_request=None,
                       prompt_adapter_request=None, streaming: bool = False, kv_cache_retention_config=None,
                       disaggregated_params=None, trace_headers=None, _postproc_params=None,
                       scheduling_params=None, cache_salt=None) -> RequestOutput:
        if self._engine is None:
            raise RuntimeError("LLM is shutting down")
        sampling_params = self._prepare_sampling_params(sampling_params)
        if sampling_params.n > self.limits.max_batch_size:
            raise ValueError(f"SamplingParams.n ({sampling_params.n}) should not exceed max_batch_size "
                             f"({self.limits.max_batch_size})")
        if sampling_params.use_beam_search or sampling_params.n > 1:
            raise NotImplementedError("(test double) only n=1 without beam search")
        prompt, token_ids = self._prompt(inputs, sampling_params)
        if not self.args.enable_chunked_prefill and len(token_ids) > self.limits.max_num_tokens:
            raise ValueError(f"The sum of prompt length ({float(len(token_ids))}) and query length (0) should not "
                             f"exceed max_num_tokens ({self.limits.max_num_tokens})")
        stop_words = [tuple(w) for w in sampling_params._get_stop_words() if w]
        with self._lock:
            request_id, self._next_id = self._next_id, self._next_id + 1
            self._submitted += 1
            inject = self._submitted == self.settings.error_on
        output = RequestOutput(request_id, prompt, token_ids, sampling_params, streaming, self.tokenizer, self)
        with self._router.lock:
            self._router.outputs[request_id] = output
        end_id = None if sampling_params.ignore_eos else sampling_params.end_id
        self._engine.submit([Job(id=request_id, prompt=token_ids, max_new=sampling_params.max_tokens,
                                 min_tokens=max(sampling_params.min_tokens or 1, 1), end_id=end_id,
                                 stop_words=stop_words, streaming=streaming,
                                 exclude_input=sampling_params.exclude_input_from_output, inject_error=inject,
                                 perf=sampling_params.return_perf_metrics, arrival=time.monotonic())])
        return output

    def generate(self, inputs, sampling_params: Optional[SamplingParams] = None, use_tqdm: bool = True, **kwargs):
        unbatched = not isinstance(inputs, list) or (bool(inputs) and isinstance(inputs[0], int))
        batch = [inputs] if unbatched else inputs
        outputs = [self.generate_async(i, sampling_params[n] if isinstance(sampling_params, list) else sampling_params,
                                       **kwargs) for n, i in enumerate(batch)]
        for output in outputs:
            output.result()
        return outputs[0] if unbatched else outputs

    def get_stats(self, timeout: Optional[float] = 2) -> list[dict]:
        """Iteration stats as dicts; none unless enable_iter_perf_stats (the PyTorch backend collects them only then)."""
        if self._engine is None or not self.args.enable_iter_perf_stats:
            return []
        return [dict(s) for s in self._engine.latest_stats()]

    def shutdown(self) -> None:
        if self._engine is not None:
            engine, self._engine = self._engine, None
            engine.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        self.shutdown()
        return False

    def __getstate__(self):
        raise RuntimeError("LLM object can not be pickled.")

    def __del__(self):
        try:
            self.shutdown()
        except Exception:  # interpreter teardown
            pass
