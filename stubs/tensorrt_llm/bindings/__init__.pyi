# Typed stub of the tensorrt_llm.bindings package (TensorRT-LLM's compiled nanobind module): only its `executor`
# submodule (bindings/executor.pyi) is stubbed, the one sut/backends/trtllm.py imports. Layout read from
# NVIDIA/TensorRT-LLM cpp/tensorrt_llm/nanobind/executor/bindings.cpp @ a35c38f32e0ed726a47971fe18ea73a5e5583ca4
# (initBindings fills the `executor` submodule).
