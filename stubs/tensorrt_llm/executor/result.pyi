# Typed stub of tensorrt_llm.executor.result: CompletionOutput, the element type of RequestOutput.outputs that
# sut/backends/trtllm_pytorch.py reads (token_ids only). Transcribed from NVIDIA/TensorRT-LLM
# tensorrt_llm/executor/result.py @ 005bc848893f575ec14b45d6b13139360d67c790: `token_ids: Optional[list[int]] =
# field(default_factory=list)` -- Optional as declared there, so a reader handles None.
class CompletionOutput:
    token_ids: list[int] | None
