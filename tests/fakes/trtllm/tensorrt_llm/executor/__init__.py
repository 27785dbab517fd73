"""Test double of TensorRT-LLM 1.2.1's `tensorrt_llm.executor` (the LLM API's executor package): only RequestError,
which RequestOutput.result() raises for a request the runtime answered with an error (tensorrt_llm/executor/utils.py
in the real package). See tests/fakes/trtllm/README.md."""


class RequestError(RuntimeError):
    """The error of one request (the runtime's error response), raised where its result is read."""
