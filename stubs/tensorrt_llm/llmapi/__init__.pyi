# Typed stub of the tensorrt_llm.llmapi package: exactly the names sut/backends/trtllm_pytorch.py takes from it
# (KvCacheConfig, RequestOutput). Read from NVIDIA/TensorRT-LLM tensorrt_llm/llmapi/__init__.py
# @ 5ca85aff65b2c7d0ba06fb6c7d7c015ed78886f8 (1.2 era: `from .llm import LLM, RequestOutput`,
# `from .llm_args import (..., KvCacheConfig, ...)`).
from tensorrt_llm.llmapi.llm import RequestOutput as RequestOutput
from tensorrt_llm.llmapi.llm_args import KvCacheConfig as KvCacheConfig
