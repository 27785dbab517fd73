# Typed stub of tensorrt_llm.bindings.executor (the nanobind module of TensorRT-LLM's C++ Executor), holding exactly
# the names sut/backends/trtllm.py uses. Transcribed from NVIDIA/TensorRT-LLM, 1.2-era sources:
#   cpp/tensorrt_llm/nanobind/executor/executor.cpp        @ f0c873f5ffdd170c9f5b70c844c02ecca9860b8f (1.2.0rc5)
#       Executor and its three await_responses overloads; return types from executor.h
#       @ 0243026ffeb359ec54dba338fd6545692a5a722d
#   cpp/tensorrt_llm/nanobind/executor/executorConfig.cpp  @ c40f1157d276de8e38bbff9958a2da8e6078a1f6
#       BatchingType, SchedulerConfig, KvCacheConfig, OrchestratorConfig, ParallelConfig, ExecutorConfig
#   cpp/tensorrt_llm/nanobind/executor/request.cpp         @ ac456dcad7e63b0ee6387ebb2ee2ef330d142ebe
#       SamplingConfig, OutputConfig, Request, Result, Response
#   cpp/tensorrt_llm/nanobind/executor/bindings.cpp        @ a35c38f32e0ed726a47971fe18ea73a5e5583ca4
#       ModelType, CapacitySchedulerPolicy, ContextChunkingPolicy, CommunicationType, CommunicationMode,
#       FinishReason (members from cpp/include/tensorrt_llm/executor/types.h), IterationStats.to_json_str
#   tests/bindings/test_executor_bindings.py (test_request_perf_metrics, test_request_perf_metrics_pickle)
#       Result.request_perf_metrics.timing_metrics: datetime.timedelta time points, last_token_time 0 until final
#
# Stricter than the binding, on purpose:
# - The config classes (SchedulerConfig, KvCacheConfig, OrchestratorConfig, ParallelConfig, ExecutorConfig,
#   SamplingConfig, OutputConfig) take keyword arguments only here; the binding also accepts them positionally
#   (nb::arg lists; SamplingConfig's beam_width and KvCacheConfig's first ten), which the kit must never rely on.
# - Durations (await_responses' timeout, Request's allotted_time_ms) are datetime.timedelta only; nanobind's chrono
#   caster would also take a number.
# - Parameters whose type is a binding class the kit does not use are left out (e.g. ExecutorConfig's
#   peft_cache_config, decoding_config, ...; Request's lora_config, ...; OrchestratorConfig's orch_leader_comm);
#   a call passing one fails the check until the class is stubbed here.
# - Only the methods and attributes the kit calls or reads are declared (Executor: shutdown, enqueue_requests,
#   await_responses, cancel_request, get_latest_iteration_stats; Response: request_id, has_error, error_msg, result;
#   Result: is_final, output_token_ids, finish_reasons, request_perf_metrics; IterationStats: to_json_str).
# Enums are nb::enum_, i.e. Python enum.Enum subclasses; every member of each enum the kit uses is listed.
import datetime
import enum
import os
from typing import overload

class ModelType(enum.Enum):
    DECODER_ONLY = ...
    ENCODER_ONLY = ...
    ENCODER_DECODER = ...

class CapacitySchedulerPolicy(enum.Enum):
    MAX_UTILIZATION = ...
    GUARANTEED_NO_EVICT = ...
    STATIC_BATCH = ...

class ContextChunkingPolicy(enum.Enum):
    EQUAL_PROGRESS = ...
    FIRST_COME_FIRST_SERVED = ...

class CommunicationType(enum.Enum):
    MPI = ...

class CommunicationMode(enum.Enum):
    LEADER = ...
    ORCHESTRATOR = ...

class BatchingType(enum.Enum):
    STATIC = ...
    INFLIGHT = ...

class FinishReason(enum.Enum):
    NOT_FINISHED = ...
    END_ID = ...  # the end token ended it; it is not in the output
    STOP_WORDS = ...  # a stop word ended it; it is in the output
    LENGTH = ...
    TIMED_OUT = ...
    CANCELLED = ...

class SchedulerConfig:
    def __init__(
        self,
        *,
        capacity_scheduler_policy: CapacitySchedulerPolicy = ...,  # GUARANTEED_NO_EVICT
        context_chunking_policy: ContextChunkingPolicy | None = None,
    ) -> None: ...

class KvCacheConfig:
    def __init__(
        self,
        *,
        enable_block_reuse: bool = True,
        max_tokens: int | None = None,
        max_attention_window: list[int] | None = None,
        sink_token_length: int | None = None,
        free_gpu_memory_fraction: float | None = None,
        host_cache_size: int | None = None,
        onboard_blocks: bool = True,
        cross_kv_cache_fraction: float | None = None,
        secondary_offload_min_priority: int | None = None,
        event_buffer_max_size: int = 0,
        enable_partial_reuse: bool = True,
        copy_on_partial_reuse: bool = True,
        use_uvm: bool = False,
        attention_dp_events_gather_period_ms: int = 5,
        max_gpu_total_bytes: int = 0,
    ) -> None: ...

class OrchestratorConfig:
    def __init__(
        self,
        *,
        is_orchestrator: bool = True,
        worker_executable_path: str = "",
        spawn_processes: bool = True,
    ) -> None: ...

class ParallelConfig:
    def __init__(
        self,
        *,
        communication_type: CommunicationType = ...,  # MPI
        communication_mode: CommunicationMode = ...,  # LEADER
        device_ids: list[int] | None = None,
        participant_ids: list[int] | None = None,
        orchestrator_config: OrchestratorConfig | None = None,
        num_nodes: int | None = None,
    ) -> None: ...

class ExecutorConfig:
    def __init__(
        self,
        *,
        max_beam_width: int = 1,
        scheduler_config: SchedulerConfig = ...,
        kv_cache_config: KvCacheConfig = ...,
        enable_chunked_context: bool = False,
        normalize_log_probs: bool = True,
        iter_stats_max_iterations: int = ...,
        request_stats_max_iterations: int = ...,
        batching_type: BatchingType = ...,  # INFLIGHT
        max_batch_size: int | None = None,
        max_num_tokens: int | None = None,
        parallel_config: ParallelConfig | None = None,
        use_gpu_direct_storage: bool = False,
        gpu_weights_percent: float = 1.0,
        max_queue_size: int | None = None,
        recv_poll_period_ms: int = 0,
        max_seq_idle_microseconds: int = ...,
        gather_generation_logits: bool = False,
        mm_embedding_offloading: bool = False,
        enable_trt_overlap: bool = False,
        fail_fast_on_attention_window_too_large: bool = False,
    ) -> None: ...

class SamplingConfig:
    def __init__(
        self,
        *,
        beam_width: int = 1,
        top_k: int | None = None,
        top_p: float | None = None,
        top_p_min: float | None = None,
        top_p_reset_ids: int | None = None,
        top_p_decay: float | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        min_tokens: int | None = None,
        beam_search_diversity_rate: float | None = None,
        repetition_penalty: float | None = None,
        presence_penalty: float | None = None,
        frequency_penalty: float | None = None,
        length_penalty: float | None = None,
        early_stopping: int | None = None,
        no_repeat_ngram_size: int | None = None,
        num_return_sequences: int | None = None,
        min_p: float | None = None,
        beam_width_array: list[int] | None = None,
    ) -> None: ...

class OutputConfig:
    def __init__(
        self,
        *,
        return_log_probs: bool | None = None,
        return_context_logits: bool | None = None,
        return_generation_logits: bool | None = None,
        exclude_input_from_output: bool | None = None,
        return_encoder_output: bool | None = None,
        return_perf_metrics: bool | None = None,
    ) -> None: ...

class Request:
    # As bound: input_token_ids and max_tokens positional, everything after them keyword-only (nb::kw_only()).
    def __init__(
        self,
        input_token_ids: list[int],
        max_tokens: int,
        *,
        streaming: bool = False,
        sampling_config: SamplingConfig = ...,
        output_config: OutputConfig = ...,
        end_id: int | None = None,
        pad_id: int | None = None,
        position_ids: list[int] | None = None,
        bad_words: list[list[int]] | None = None,
        stop_words: list[list[int]] | None = None,
        logits_post_processor_name: str | None = None,
        encoder_input_token_ids: list[int] | None = None,
        client_id: int | None = None,
        return_all_generated_tokens: bool = False,
        priority: float = 0.5,
        encoder_output_length: int | None = None,
        num_return_sequences: int = 1,
        language_adapter_uid: int | None = None,
        allotted_time_ms: datetime.timedelta | None = None,
        cache_salt_id: int | None = None,
    ) -> None: ...

class RequestPerfMetrics:
    class TimingMetrics:
        # steady-clock time points, converted by nanobind's chrono caster to timedelta since the clock's epoch;
        # last_token_time is timedelta(0) until the final response
        arrival_time: datetime.timedelta
        first_scheduled_time: datetime.timedelta
        first_token_time: datetime.timedelta
        last_token_time: datetime.timedelta

    timing_metrics: TimingMetrics

class Result:
    is_final: bool
    output_token_ids: list[list[int]]  # one list of token ids per beam
    finish_reasons: list[FinishReason]  # one per beam; NOT_FINISHED until the final result
    request_perf_metrics: RequestPerfMetrics | None  # with OutputConfig(return_perf_metrics=True)

class Response:
    @property
    def request_id(self) -> int: ...
    def has_error(self) -> bool: ...
    @property
    def error_msg(self) -> str: ...  # raises on a response without an error
    @property
    def result(self) -> Result: ...  # raises on an error response: check has_error() first

class IterationStats:
    def to_json_str(self) -> str: ...

class Executor:
    def __init__(
        self, model_path: str | os.PathLike[str], model_type: ModelType, executor_config: ExecutorConfig
    ) -> None: ...
    def shutdown(self) -> None: ...
    def enqueue_requests(self, requests: list[Request]) -> list[int]: ...
    @overload
    def await_responses(self, timeout: datetime.timedelta | None = None) -> list[Response]: ...
    @overload
    def await_responses(self, id: int, timeout: datetime.timedelta | None = None) -> list[Response]: ...
    @overload
    def await_responses(self, ids: list[int], timeout: datetime.timedelta | None = None) -> list[list[Response]]: ...
    def cancel_request(self, id: int) -> None: ...
    def get_latest_iteration_stats(self) -> list[IterationStats]: ...
