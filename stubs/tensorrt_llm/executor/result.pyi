# Typed stub of tensorrt_llm.executor.result: CompletionOutput, the element type of RequestOutput.outputs that
# sut/backends/trtllm_pytorch.py reads (token_ids, finish_reason, stop_reason, request_perf_metrics). Transcribed
# from NVIDIA/TensorRT-LLM tensorrt_llm/executor/result.py @ 005bc848893f575ec14b45d6b13139360d67c790: `token_ids:
# Optional[list[int]] = field(default_factory=list)` -- Optional as declared there, so a reader handles None.
# request_perf_metrics (with SamplingParams(return_perf_metrics=True)): `Optional[tllm.RequestPerfMetrics]`, the
# binding's class (tensorrt_llm.bindings.executor), as tests/unittest/_torch/.../test_llm_pytorch.py
# (test_llm_perf_metrics) reads it: outputs[0].request_perf_metrics.timing_metrics.first_token_time, ...
from typing import Literal

from tensorrt_llm.bindings.executor import RequestPerfMetrics

class CompletionOutput:
    token_ids: list[int] | None
    # "stop" for the end id (stop_reason None) or a stop word (stop_reason: the stop token id or string)
    finish_reason: Literal["stop", "length", "timeout", "cancelled"] | None
    stop_reason: int | str | None
    request_perf_metrics: RequestPerfMetrics | None
