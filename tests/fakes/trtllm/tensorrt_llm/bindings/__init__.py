"""Test double of TensorRT-LLM 1.2.1's `tensorrt_llm.bindings` (the compiled extension): only its `executor`
submodule is mimicked (tests/fakes/trtllm/README.md)."""
from tensorrt_llm.bindings import executor

__all__ = ["executor"]
