"""TEST DOUBLE of TensorRT-LLM 1.2.1 (the `tensorrt_llm` package), for CPU tests of the kit's `trtllm` (Executor
binding) and `trtllm-pytorch` (LLM API) backends. It is importable only when a test puts tests/fakes/trtllm first on
PYTHONPATH (tests/fakes/trtllm/env.py); nothing outside tests/ may import it. What it mimics, from which TensorRT-LLM
sources, and its environment variables: tests/fakes/trtllm/README.md and each module's docstring.

Unlike the real package, importing it prints no version banner and initialises no MPI.
"""
from tensorrt_llm import bindings  # noqa: F401
from tensorrt_llm.llmapi import LLM, KvCacheConfig  # noqa: F401
from tensorrt_llm.sampling_params import SamplingParams  # noqa: F401

__version__ = "1.2.1"
__all__ = ["LLM", "SamplingParams", "KvCacheConfig", "bindings", "__version__"]
