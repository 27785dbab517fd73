"""Check that a Hugging Face checkpoint directory is one the kit can serve for a benchmark."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmkit.benchmarks import Benchmark
from llmkit.config.schema import ModelConfig
from llmkit.errors import UserError, not_there

SUPPORTED_ARCHITECTURES = ("MixtralForCausalLM", "LlamaForCausalLM")


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    architecture: str
    vocab_size: int


def read_config_json(path: Path) -> dict:
    config_file = path / "config.json"
    if not path.is_dir():
        raise UserError(f"{not_there(path, 'checkpoint directory', directory=True)}; pass model.path= pointing at "
                        "it")
    if not config_file.is_file():
        raise UserError(f"{path} has no config.json, so it is not a Hugging Face checkpoint; point model.path= at one")
    try:
        config = json.loads(config_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:  # not text, or not JSON
        raise UserError(f"{config_file} is not valid JSON ({error}); restore the checkpoint's config.json") from None
    except OSError as error:
        raise UserError(f"cannot read {config_file} ({error.strerror}); make it readable or point model.path= at a "
                        "checkpoint you can read") from None
    if not isinstance(config, dict):
        raise UserError(f"{config_file} is not a JSON object; restore the checkpoint's config.json")
    return config


def inspect_checkpoint(path: Path, benchmark: Benchmark) -> CheckpointInfo:
    config = read_config_json(path)
    architectures = config.get("architectures") or []
    architecture = next((a for a in architectures if a in SUPPORTED_ARCHITECTURES), None)
    if architecture is None:
        raise UserError(
            f"{path} is a {', '.join(architectures) or 'model without architectures'} checkpoint; the kit serves "
            f"{' and '.join(SUPPORTED_ARCHITECTURES)}"
        )
    vocab_size = int(config.get("vocab_size", 0))
    if vocab_size != benchmark.vocab_size:
        raise UserError(
            f"{path} has a vocabulary of {vocab_size} but {benchmark.name} needs {benchmark.vocab_size}; use a "
            f"{benchmark.name} checkpoint"
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise UserError(f"{path} has no weight files (*.safetensors); copy the whole checkpoint there")
    for weights in sorted(path.glob("*.safetensors")):
        check_safetensors(weights)
    return CheckpointInfo(path, architecture, vocab_size)


def check_safetensors(path: Path) -> None:
    """A safetensors file whole: its header readable and every tensor's bytes present (a truncated copy or a corrupt
    file is named here, before a loader fails deep inside)."""
    fix = "copy the checkpoint again (or restore the file)"
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            length_bytes = handle.read(8)
            length = int.from_bytes(length_bytes, "little") if len(length_bytes) == 8 else -1
            if not 0 < length <= size - 8:
                raise UserError(f"{path} is not a whole safetensors file (its header length {length} does not fit its "
                                f"{size} bytes); {fix}")
            header = json.loads(handle.read(length))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{path} has a corrupt safetensors header; {fix}") from None
    except OSError as error:
        raise UserError(f"{path} cannot be read ({error.strerror}); {fix}") from None
    if not isinstance(header, dict):
        raise UserError(f"{path} has a corrupt safetensors header; {fix}")
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and len(entry.get("data_offsets", ())) == 2]
    if ends and 8 + length + max(ends) > size:
        raise UserError(f"{path} is truncated: its tensors need {8 + length + max(ends)} bytes but it has {size}; {fix}")


def resolve_checkpoint(model: ModelConfig, benchmark: Benchmark) -> CheckpointInfo:
    """The checkpoint for this config, writing a tiny model first when it is one and is missing."""
    path = Path(model.path or "")
    if model.tiny is not None:
        from llmkit.models.tiny import ensure_tiny_checkpoint

        ensure_tiny_checkpoint(model.tiny, path, model.seed)
    return inspect_checkpoint(path, benchmark)
