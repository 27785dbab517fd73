"""Test double of TensorRT-LLM 1.2.1 (tests/fakes/trtllm): the enums and configuration classes of
`tensorrt_llm.bindings.executor`.

Mimics the nanobind bindings read from NVIDIA/TensorRT-LLM cpp/tensorrt_llm/nanobind/executor/executorConfig.cpp
@ 008b2b8d and bindings.cpp @ 01315fdb, with cpp/tensorrt_llm/executor/kvCacheConfig.cpp @ 05843b0a:
- ExecutorConfig takes its arguments positionally too (the binding has no kw_only marker), in the binding's order;
  defaults: max_beam_width 1, SchedulerConfig(), KvCacheConfig(), enable_chunked_context False, ..., INFLIGHT,
  max_batch_size/max_num_tokens None (the engine's), iter_stats_max_iterations 1000.
- SchedulerConfig's default policy is GUARANTEED_NO_EVICT; its fields are read-only.
- KvCacheConfig: enable_block_reuse defaults to True; free_gpu_memory_fraction defaults to None (the runtime then
  takes 0.9) and must be in (0, 1) (TLLM_CHECK, a RuntimeError); the arguments after event_buffer_max_size are
  keyword-only.
"""
from __future__ import annotations

import enum

from tensorrt_llm._double.convert import (NoConversion, to_bool, to_float, to_int, to_opt_float, to_opt_int,
                                          to_tokens)
from tensorrt_llm._double.settings import TllmError


class ModelType(enum.Enum):
    DECODER_ONLY = 0
    ENCODER_ONLY = 1
    ENCODER_DECODER = 2


class BatchingType(enum.Enum):
    STATIC = 0
    INFLIGHT = 1


class CapacitySchedulerPolicy(enum.Enum):
    MAX_UTILIZATION = 0
    GUARANTEED_NO_EVICT = 1
    STATIC_BATCH = 2


class ContextChunkingPolicy(enum.Enum):
    FIRST_COME_FIRST_SERVED = 0
    EQUAL_PROGRESS = 1


class CommunicationType(enum.Enum):
    MPI = 0


class CommunicationMode(enum.Enum):
    LEADER = 0
    ORCHESTRATOR = 1


class FinishReason(enum.Enum):
    NOT_FINISHED = 0
    END_ID = 1
    STOP_WORDS = 2
    LENGTH = 3
    TIMED_OUT = 4
    CANCELLED = 5


def _typed(value, kind, what: str, optional: bool = True):
    if (value is None and optional) or isinstance(value, kind):
        return value
    raise TypeError(f"{what}: expected {getattr(kind, '__name__', kind)}, got {type(value).__name__}")


def _checked(cls_name: str, build):
    try:
        return build()
    except NoConversion as error:
        raise TypeError(f"{cls_name}.__init__(): incompatible function arguments ({error})") from None


class _Config:
    def __repr__(self) -> str:
        fields = ", ".join(f"{k.lstrip('_')}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


class DynamicBatchConfig(_Config):
    def __init__(self, enable_batch_size_tuning, enable_max_num_tokens_tuning, dynamic_batch_moving_average_window):
        self.enable_batch_size_tuning = to_bool(enable_batch_size_tuning)
        self.enable_max_num_tokens_tuning = to_bool(enable_max_num_tokens_tuning)
        self.dynamic_batch_moving_average_window = to_int(dynamic_batch_moving_average_window)


class SchedulerConfig(_Config):
    def __init__(self, capacity_scheduler_policy=CapacitySchedulerPolicy.GUARANTEED_NO_EVICT,
                 context_chunking_policy=None, dynamic_batch_config=None):
        self._capacity_scheduler_policy = _typed(capacity_scheduler_policy, CapacitySchedulerPolicy,
                                                 "capacity_scheduler_policy", optional=False)
        self._context_chunking_policy = _typed(context_chunking_policy, ContextChunkingPolicy,
                                               "context_chunking_policy")
        self._dynamic_batch_config = _typed(dynamic_batch_config, DynamicBatchConfig, "dynamic_batch_config")

    capacity_scheduler_policy = property(lambda self: self._capacity_scheduler_policy)
    context_chunking_policy = property(lambda self: self._context_chunking_policy)
    dynamic_batch_config = property(lambda self: self._dynamic_batch_config)


class KvCacheConfig(_Config):
    def __init__(self, enable_block_reuse=True, max_tokens=None, max_attention_window=None, sink_token_length=None,
                 free_gpu_memory_fraction=None, host_cache_size=None, onboard_blocks=True,
                 cross_kv_cache_fraction=None, secondary_offload_min_priority=None, event_buffer_max_size=0, *,
                 enable_partial_reuse=True, copy_on_partial_reuse=True, use_uvm=False,
                 attention_dp_events_gather_period_ms=5, max_gpu_total_bytes=0, runtime_defaults=None):
        def build():
            self.enable_block_reuse = to_bool(enable_block_reuse)
            self._max_tokens = self._free_gpu_memory_fraction = self._cross_kv_cache_fraction = None
            self.max_tokens = to_opt_int(max_tokens)
            self.max_attention_window = None if max_attention_window is None else to_tokens(max_attention_window)
            self.sink_token_length = to_opt_int(sink_token_length)
            self.free_gpu_memory_fraction = to_opt_float(free_gpu_memory_fraction)
            self.host_cache_size = to_opt_int(host_cache_size, (0, 2 ** 64 - 1))
            self.onboard_blocks = to_bool(onboard_blocks)
            self.cross_kv_cache_fraction = to_opt_float(cross_kv_cache_fraction)
            self.secondary_offload_min_priority = to_opt_int(secondary_offload_min_priority)
            self.event_buffer_max_size = to_int(event_buffer_max_size, (0, 2 ** 64 - 1))
            self.enable_partial_reuse = to_bool(enable_partial_reuse)
            self.copy_on_partial_reuse = to_bool(copy_on_partial_reuse)
            self.use_uvm = to_bool(use_uvm)
            self.attention_dp_events_gather_period_ms = to_int(attention_dp_events_gather_period_ms)
            self.max_gpu_total_bytes = to_int(max_gpu_total_bytes, (0, 2 ** 64 - 1))
            self.runtime_defaults = runtime_defaults
        _checked("KvCacheConfig", build)

    @property
    def max_tokens(self):
        return self._max_tokens

    @max_tokens.setter
    def max_tokens(self, value):
        if value is not None and not value > 0:
            raise TllmError("Assertion failed: maxTokens > 0")
        self._max_tokens = value

    @property
    def free_gpu_memory_fraction(self):
        return self._free_gpu_memory_fraction

    @free_gpu_memory_fraction.setter
    def free_gpu_memory_fraction(self, value):
        if value is not None:
            if not value > 0.0:
                raise TllmError("Assertion failed: freeGpuMemoryFraction > 0.F")
            if not value < 1.0:
                raise TllmError("Assertion failed: freeGpuMemoryFraction < 1.F")
        self._free_gpu_memory_fraction = value

    @property
    def cross_kv_cache_fraction(self):
        return self._cross_kv_cache_fraction

    @cross_kv_cache_fraction.setter
    def cross_kv_cache_fraction(self, value):
        if value is not None and not 0.0 < value < 1.0:
            raise TllmError("Assertion failed: crossKvCacheFraction in (0, 1)")
        self._cross_kv_cache_fraction = value


class OrchestratorConfig(_Config):
    def __init__(self, is_orchestrator=True, worker_executable_path="", orch_leader_comm=None, spawn_processes=True):
        self.is_orchestrator = to_bool(is_orchestrator)
        self.worker_executable_path = str(_typed(worker_executable_path, str, "worker_executable_path", False))
        self.orch_leader_comm = orch_leader_comm
        self.spawn_processes = to_bool(spawn_processes)


class ParallelConfig(_Config):
    def __init__(self, communication_type=CommunicationType.MPI, communication_mode=CommunicationMode.LEADER,
                 device_ids=None, participant_ids=None, orchestrator_config=None, num_nodes=None):
        def build():
            self.communication_type = _typed(communication_type, CommunicationType, "communication_type", False)
            self.communication_mode = _typed(communication_mode, CommunicationMode, "communication_mode", False)
            self.device_ids = None if device_ids is None else to_tokens(device_ids, "device_ids")
            self.participant_ids = None if participant_ids is None else to_tokens(participant_ids, "participant_ids")
            self.orchestrator_config = _typed(orchestrator_config, OrchestratorConfig, "orchestrator_config")
            self.num_nodes = to_opt_int(num_nodes)
        _checked("ParallelConfig", build)


class PeftCacheConfig(_Config):
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


class ExtendedRuntimePerfKnobConfig(_Config):
    def __init__(self, multi_block_mode=True, enable_context_fmha_fp32_acc=False):
        self.multi_block_mode = to_bool(multi_block_mode)
        self.enable_context_fmha_fp32_acc = to_bool(enable_context_fmha_fp32_acc)
        self.cuda_graph_mode, self.cuda_graph_cache_size = False, 0


class ExecutorConfig(_Config):
    """Positional arguments allowed (in this order), as the binding declares them."""

    def __init__(self, max_beam_width=1, scheduler_config=None, kv_cache_config=None, enable_chunked_context=False,
                 normalize_log_probs=True, iter_stats_max_iterations=1000, request_stats_max_iterations=0,
                 batching_type=BatchingType.INFLIGHT, max_batch_size=None, max_num_tokens=None, parallel_config=None,
                 peft_cache_config=None, logits_post_processor_config=None, decoding_config=None,
                 use_gpu_direct_storage=False, gpu_weights_percent=1.0, max_queue_size=None,
                 extended_runtime_perf_knob_config=None, debug_config=None, recv_poll_period_ms=0,
                 max_seq_idle_microseconds=180000000, spec_dec_config=None, guided_decoding_config=None,
                 additional_model_outputs=None, cache_transceiver_config=None, gather_generation_logits=False,
                 mm_embedding_offloading=False, enable_trt_overlap=False):
        def build():
            self.max_beam_width = to_int(max_beam_width)
            self.scheduler_config = _typed(scheduler_config, SchedulerConfig, "scheduler_config") or SchedulerConfig()
            self.kv_cache_config = _typed(kv_cache_config, KvCacheConfig, "kv_cache_config") or KvCacheConfig()
            self.enable_chunked_context = to_bool(enable_chunked_context)
            self.normalize_log_probs = to_bool(normalize_log_probs)
            self.iter_stats_max_iterations = to_int(iter_stats_max_iterations)
            self.request_stats_max_iterations = to_int(request_stats_max_iterations)
            self.batching_type = _typed(batching_type, BatchingType, "batching_type", False)
            self.max_batch_size = to_opt_int(max_batch_size)
            self.max_num_tokens = to_opt_int(max_num_tokens)
            self.parallel_config = _typed(parallel_config, ParallelConfig, "parallel_config")
            self.peft_cache_config = peft_cache_config or PeftCacheConfig()
            self.logits_post_processor_config = logits_post_processor_config
            self.decoding_config = decoding_config
            self.use_gpu_direct_storage = to_bool(use_gpu_direct_storage)
            self.gpu_weights_percent = to_float(gpu_weights_percent)
            self.max_queue_size = to_opt_int(max_queue_size)
            self.extended_runtime_perf_knob_config = (extended_runtime_perf_knob_config
                                                      or ExtendedRuntimePerfKnobConfig())
            self.debug_config = debug_config
            self.recv_poll_period_ms = to_int(recv_poll_period_ms)
            self.max_seq_idle_microseconds = to_int(max_seq_idle_microseconds, (0, 2 ** 64 - 1))
            self.spec_dec_config, self.guided_decoding_config = spec_dec_config, guided_decoding_config
            self.additional_model_outputs = additional_model_outputs
            self.cache_transceiver_config = cache_transceiver_config
            self.gather_generation_logits = to_bool(gather_generation_logits)
            self.mm_embedding_offloading = to_bool(mm_embedding_offloading)
            self.enable_trt_overlap = to_bool(enable_trt_overlap)
        _checked("ExecutorConfig", build)
