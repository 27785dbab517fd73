"""Test double of TensorRT-LLM 1.2.1: the machinery behind its public modules (not part of the real package).

`settings` reads the environment and the engine directory, `engine` runs the inflight-batching loop that both the
Executor binding and the LLM API drive. See tests/fakes/trtllm/README.md.
"""
