"""Calibration sets and post-training quantization (nvidia-modelopt), exported as TensorRT-LLM checkpoints."""
