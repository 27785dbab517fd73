# Typed stub of tensorrt_llm.llmapi.llm: LLM and RequestOutput, with exactly the members sut/backends/trtllm_pytorch.py
# uses. Transcribed from NVIDIA/TensorRT-LLM tensorrt_llm/llmapi/llm.py @ 4c05a74891e4df8066f08ed4ce14b0972abe4e25
# (1.2 era: BaseLLM / _TorchLLM / LLM(_TorchLLM)), with RequestOutput's inherited members from
# tensorrt_llm/executor/result.py @ 005bc848893f575ec14b45d6b13139360d67c790 (GenerationResult).
#
# Stricter than the source, on purpose:
# - LLM.__init__ takes `**kwargs: Any`, checked at run time against TorchLlmArgs' fields; here the TorchLlmArgs
#   fields the kit passes are explicit keyword-only parameters (pipeline_parallel_size, kv_cache_config,
#   max_batch_size, max_num_tokens; types from tensorrt_llm/llmapi/llm_args.py @
#   0004396720054fd8e205cbf616f21f0b57c6b412), and any other keyword fails the check until it is added here.
# - tokenizer: str | Path only (TokenizerBase / PreTrainedTokenizerBase are not stubbed).
# - generate_async: inputs is a prompt string or token ids (PromptInputs' TextPrompt/TokensPrompt are not stubbed);
#   streaming, fifth positional in the source after lora_request and prompt_adapter_request (not stubbed), is
#   keyword-only here.
# - aresult() / __anext__() are annotated `-> GenerationResult` in result.py and `return self`: Self here.
from pathlib import Path
from typing import Literal, Self

from tensorrt_llm.executor.result import CompletionOutput
from tensorrt_llm.llmapi.llm_args import KvCacheConfig
from tensorrt_llm.sampling_params import SamplingParams

class RequestOutput:
    @property
    def outputs(self) -> list[CompletionOutput]: ...
    def abort(self) -> None: ...
    async def aresult(self) -> Self: ...
    def __aiter__(self) -> Self: ...
    async def __anext__(self) -> Self: ...

class LLM:
    def __init__(
        self,
        model: str | Path,
        tokenizer: str | Path | None = None,
        tokenizer_mode: Literal["auto", "slow"] = "auto",
        skip_tokenizer_init: bool = False,
        trust_remote_code: bool = False,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        revision: str | None = None,
        tokenizer_revision: str | None = None,
        *,
        pipeline_parallel_size: int = 1,
        kv_cache_config: KvCacheConfig = ...,
        max_batch_size: int | None = ...,
        max_num_tokens: int | None = ...,
        enable_iter_perf_stats: bool = False,
    ) -> None: ...
    def generate_async(
        self,
        inputs: str | list[int],
        sampling_params: SamplingParams | None = None,
        *,
        streaming: bool = False,
    ) -> RequestOutput: ...
    # Iteration stats (needs enable_iter_perf_stats=True): dicts, or JSON strings in some 1.x releases (the
    # docstring's own example shows strings), hence `object`; read from llm.py @ 4c05a748 (BaseLLM.get_stats).
    def get_stats(self, timeout: float | None = 2) -> list[object]: ...
    def shutdown(self) -> None: ...
