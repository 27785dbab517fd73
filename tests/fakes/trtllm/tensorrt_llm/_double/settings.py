"""Test double of TensorRT-LLM 1.2.1 (tests/fakes/trtllm): its environment variables and the runtime limits of an
engine directory.

Mimics how the C++ runtime derives its limits from an engine's config.json and the ExecutorConfig, as read from
NVIDIA/TensorRT-LLM (public sources of the 1.2 line; the v1.2.1 tag itself was not readable):
- cpp/tensorrt_llm/batch_manager/trtGptModel.h @ 2e2327b9: runtime max_batch_size / max_beam_width above the
  engine's raise; a runtime max_num_tokens above the engine's is ignored with a warning; the runtime max input length
  is max_seq_len - 1 with chunked context, min(max_seq_len - 1, max_num_tokens) with context FMHA and packed input,
  else the build's max_input_len.
- cpp/tensorrt_llm/executor/executorImpl.cpp @ 036a60f7: chunked context is switched off (warning) without paged
  context FMHA; with device_ids, their number must equal tp*pp.
- cpp/tensorrt_llm/batch_manager/trtGptModelInflightBatching.cpp @ 00825c4e: without chunked context and without
  context FMHA, max_input_len must not exceed max_num_tokens.
The engine's Hugging Face checkpoint (what the double generates with) is found the kit's way: engine manifest.json
`checkpoint_path` -> the TensorRT-LLM checkpoint -> its manifest.json `checkpoint_path`.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("tensorrt_llm")

PREFIX = "LLMKIT_FAKE_TRTLLM_"
MODES = ("model", "replay")
DIE_MODES = ("exit", "raise")
ENGINES = ("thread", "process")


def _int(name: str, default: int | None = None) -> int | None:
    value = os.environ.get(PREFIX + name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{PREFIX}{name}={value!r} is not an integer (test double misconfigured)") from None


def _float(name: str, default: float = 0.0) -> float:
    value = os.environ.get(PREFIX + name, "").strip()
    return float(value) if value else default


@dataclass(frozen=True)
class Settings:
    """What the environment asks of the double (README.md, "Environment variables")."""

    mode: str = "model"
    ttft_s: float = 0.0
    tpot_s: float = 0.0
    iteration_s: float = 0.0  # replay: tokens leave on iteration ticks this far apart (0: each at its own time)
    output_len: int | None = None  # replay: answer length (default: max_tokens)
    device: str = "cpu"
    checkpoint: str | None = None  # model: the Hugging Face checkpoint, instead of following the manifests
    error_on: int | None = None  # the N-th enqueued request (1-based) gets an error response
    stall_after: int | None = None  # after N final responses, no more responses ever come
    die_after: int | None = None  # after N final responses, the executor worker dies
    die_mode: str = "exit"
    die_code: int = 134
    engine: str = "thread"  # or "process": the replay loop in a child process, off this interpreter's GIL

    @classmethod
    def from_env(cls) -> Settings:
        mode = os.environ.get(PREFIX + "MODE", "").strip() or "model"
        die_mode = os.environ.get(PREFIX + "DIE_MODE", "").strip() or "exit"
        engine = os.environ.get(PREFIX + "ENGINE", "").strip() or "thread"
        if mode not in MODES or die_mode not in DIE_MODES or engine not in ENGINES:
            raise ValueError(f"{PREFIX}MODE must be one of {MODES}, {PREFIX}DIE_MODE one of {DIE_MODES} and "
                             f"{PREFIX}ENGINE one of {ENGINES} (got {mode!r}, {die_mode!r}, {engine!r}; test double "
                             "misconfigured)")
        if engine == "process" and (mode != "replay" or os.environ.get(PREFIX + "DIE_AFTER", "").strip()):
            raise ValueError(f"{PREFIX}ENGINE=process runs only the replay loop ({PREFIX}MODE=replay) and without "
                             f"{PREFIX}DIE_AFTER (test double misconfigured)")
        return cls(engine=engine, mode=mode, ttft_s=_float("TTFT_MS") / 1e3, tpot_s=_float("TPOT_MS") / 1e3,
                   iteration_s=_float("ITERATION_MS") / 1e3,
                   output_len=_int("OUTPUT_LEN"), device=os.environ.get(PREFIX + "DEVICE", "").strip() or "cpu",
                   checkpoint=os.environ.get(PREFIX + "CHECKPOINT", "").strip() or None,
                   error_on=_int("ERROR_ON"), stall_after=_int("STALL_AFTER"), die_after=_int("DIE_AFTER"),
                   die_mode=die_mode, die_code=_int("DIE_CODE", 134))


@dataclass
class Limits:
    """The limits the runtime enforces on requests (after reconciling the build with the runtime config)."""

    max_batch_size: int
    max_num_tokens: int
    max_input_len: int
    max_seq_len: int
    vocab_size: int  # padded to a multiple of the tensor-parallel size
    tokens_per_block: int = 32
    chunked_context: bool = False
    guaranteed_no_evict: bool = True
    check_streaming_restart: bool = True  # the C++ executor's streaming/eviction check (not the PyTorch backend)


class TllmError(RuntimeError):
    """What a TLLM_CHECK / TLLM_THROW surfaces as in Python."""

    def __init__(self, message: str):
        super().__init__(f"[TensorRT-LLM][ERROR] {message}")


def read_engine_config(engine_dir: Path) -> dict:
    path = engine_dir / "config.json"
    if not path.is_file():
        raise TllmError(f"Assertion failed: Failed to open {path} (test double: no config.json in the engine dir)")
    return json.loads(path.read_text())


def engine_limits(config: dict, *, max_batch_size: int | None, max_num_tokens: int | None, max_beam_width: int,
                  chunked: bool, guaranteed_no_evict: bool, warnings: list[str]) -> Limits:
    build = config["build_config"]
    plugin = build.get("plugin_config", {})
    pretrained = config["pretrained_config"]
    tp = int(pretrained.get("mapping", {}).get("tp_size", 1))
    batch = build["max_batch_size"] if max_batch_size is None else max_batch_size
    if batch > build["max_batch_size"]:
        raise TllmError(f"Assertion failed: Runtime configured max batch size ({batch}) must not exceed engine max "
                        f"batch size ({build['max_batch_size']})")
    if max_beam_width > build.get("max_beam_width", 1):
        raise TllmError(f"Assertion failed: Runtime configured max beam width ({max_beam_width}) must not exceed "
                        f"engine max beam width ({build.get('max_beam_width', 1)})")
    tokens = build["max_num_tokens"]
    if max_num_tokens is not None:
        if max_num_tokens > tokens:
            _warn(warnings, f"Runtime configured max num tokens ({max_num_tokens}) is larger than model max num "
                            f"tokens ({tokens}) and will be ignored.")
        else:
            tokens = max_num_tokens
    paged_kv = str(build.get("kv_cache_type", "PAGED")).upper() == "PAGED"
    context_fmha = plugin.get("context_fmha", True)
    if chunked and not (paged_kv and context_fmha and plugin.get("use_paged_context_fmha", True)):
        _warn(warnings, "Chunked context is not supported for this configuration and will be disabled.")
        chunked = False
    max_seq_len = build["max_seq_len"]
    if chunked:
        max_input_len = max_seq_len - 1
    elif context_fmha and plugin.get("remove_input_padding", True):
        max_input_len = min(max_seq_len - 1, tokens)
    else:
        max_input_len = build["max_input_len"]
        if max_input_len > tokens:
            raise TllmError(f"Assertion failed: Without enabling chunked context, the max context length "
                            f"({max_input_len}) needs to be less than or equal to the max number of tokens ({tokens}).")
    vocab = int(pretrained["vocab_size"])
    return Limits(max_batch_size=batch, max_num_tokens=tokens, max_input_len=max_input_len, max_seq_len=max_seq_len,
                  vocab_size=-(-vocab // tp) * tp, tokens_per_block=int(plugin.get("tokens_per_block", 32)),
                  chunked_context=chunked, guaranteed_no_evict=guaranteed_no_evict)


def hf_checkpoint_of(engine_dir: Path, settings: Settings) -> Path:
    """The Hugging Face checkpoint an engine was built from (engine manifest -> TRT-LLM checkpoint manifest)."""
    if settings.checkpoint:
        return Path(settings.checkpoint)
    try:
        trt_checkpoint = Path(json.loads((engine_dir / "manifest.json").read_text())["checkpoint_path"])
        return Path(json.loads((trt_checkpoint / "manifest.json").read_text())["checkpoint_path"])
    except (OSError, KeyError, json.JSONDecodeError) as error:
        raise TllmError(f"(test double) cannot find the Hugging Face checkpoint behind {engine_dir}: {error!r}; "
                        f"give the engine manifest.json -> checkpoint manifest.json chain, or set {PREFIX}CHECKPOINT, "
                        f"or {PREFIX}MODE=replay") from None


def _warn(warnings: list[str], message: str) -> None:
    warnings.append(message)
    log.warning("[TensorRT-LLM][WARNING] %s", message)
