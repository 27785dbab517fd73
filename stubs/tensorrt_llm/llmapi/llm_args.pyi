# Typed stub of tensorrt_llm.llmapi.llm_args: KvCacheConfig, the one name of it sut/backends/trtllm_pytorch.py uses.
# Read from NVIDIA/TensorRT-LLM tensorrt_llm/llmapi/llm_args.py @ 0004396720054fd8e205cbf616f21f0b57c6b412 (the
# stored version; newer than 1.2, its KvCacheConfig fields below are those of the 1.x line) -- `class
# KvCacheConfig(StrictBaseModel, PybindMirror)`, a pydantic model: keyword arguments only, as the real one.
# Only its first fields are transcribed (through host_cache_size); the kit passes enable_block_reuse and
# free_gpu_memory_fraction. The default of free_gpu_memory_fraction varies across 1.x (None, later 0.9): `...` here.
class KvCacheConfig:
    def __init__(
        self,
        *,
        enable_block_reuse: bool = True,
        max_tokens: int | None = None,
        max_attention_window: list[int] | None = None,
        sink_token_length: int | None = None,
        free_gpu_memory_fraction: float | None = ...,
        host_cache_size: int | None = None,
    ) -> None: ...
