"""Test double of TensorRT-LLM 1.2.1's `tensorrt_llm.llmapi` (the LLM API, PyTorch backend); see llm.py and
tests/fakes/trtllm/README.md."""
from tensorrt_llm.llmapi.llm import (LLM, CapacitySchedulerPolicy, CompletionOutput, ContextChunkingPolicy,
                                     KvCacheConfig, RequestOutput, SchedulerConfig, TorchLlmArgs)
from tensorrt_llm.sampling_params import SamplingParams

__all__ = ["LLM", "CapacitySchedulerPolicy", "CompletionOutput", "ContextChunkingPolicy", "KvCacheConfig",
           "RequestOutput", "SamplingParams", "SchedulerConfig", "TorchLlmArgs"]
