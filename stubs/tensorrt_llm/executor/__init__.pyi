# Typed stub of the tensorrt_llm.executor package: nothing of it is imported by the kit directly; its submodule
# executor/result.pyi types what RequestOutput.outputs holds. Layout of NVIDIA/TensorRT-LLM tensorrt_llm/executor/
# (result.py @ 005bc848893f575ec14b45d6b13139360d67c790).
