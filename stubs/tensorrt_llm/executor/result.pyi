# Typed stub of tensorrt_llm.executor.result: CompletionOutput, the element type of RequestOutput.outputs that
# sut/backends/trtllm_pytorch.py reads (token_ids, finish_reason, stop_reason). Transcribed from NVIDIA/TensorRT-LLM
# tensorrt_llm/executor/result.py @ 005bc848893f575ec14b45d6b13139360d67c790: `token_ids: Optional[list[int]] =
# field(default_factory=list)` -- Optional as declared there, so a reader handles None.
from typing import Literal

class CompletionOutput:
    token_ids: list[int] | None
    # "stop" for the end id (stop_reason None) or a stop word (stop_reason: the stop token id or string)
    finish_reason: Literal["stop", "length", "timeout", "cancelled"] | None
    stop_reason: int | str | None
