# Typed stub of the tensorrt_llm package: exactly the names sut/backends/trtllm_pytorch.py and sut/backends/trtllm.py
# take from it (LLM, SamplingParams; the module's own __file__ needs no stub). Read from NVIDIA/TensorRT-LLM
# tensorrt_llm/__init__.py @ c40f1157d276de8e38bbff9958a2da8e6078a1f6 (1.2 era: `from .llmapi import LLM, ...`,
# `from .sampling_params import SamplingParams`).
from tensorrt_llm.llmapi.llm import LLM as LLM
from tensorrt_llm.sampling_params import SamplingParams as SamplingParams
