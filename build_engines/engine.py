"""An engine directory and its manifest: what is recorded when it is built, and the check a serving backend makes
before it loads one (`check_engine`), refusing a mismatch with one sentence that says how to fix it.

Layout (trtllm-build 1.2): config.json (`version`, `pretrained_config` with `mapping` and `quantization`,
`build_config`) and rank<r>.engine per rank; the kit adds manifest.json (key inputs, toolchain, GPU, the command
line, each rank file's sha256 and size, timings).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmkit.artifacts import file_sha256, read_manifest, remembered_sha256
from llmkit.errors import UserError, not_there

ARTIFACT_KIND = "engines"
SHA_MEMO = ".sha256-memo.json"


def engine_config(directory: Path) -> dict:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{directory} has no config.json, so it is not a TensorRT-LLM engine directory; rebuild it "
                        "with llmkit build") from None
    except json.JSONDecodeError:
        raise UserError(f"{path} is damaged (not JSON); rebuild the engine with llmkit build build.force=true") from None
    if not isinstance(config, dict) or "pretrained_config" not in config or "build_config" not in config:
        raise UserError(f"{path} lacks pretrained_config or build_config; rebuild the engine with llmkit build")
    return config


def rank_files(directory: Path, config: dict) -> list[Path]:
    world = int(config["pretrained_config"]["mapping"]["world_size"])
    return [directory / f"rank{rank}.engine" for rank in range(world)]


def describe_engine(directory: Path) -> dict:
    """What the manifest records about the built engine; a missing rank file is a failed build."""
    config = engine_config(directory)
    ranks = []
    for path in rank_files(directory, config):
        if not path.is_file():
            raise RuntimeError(f"trtllm-build wrote no {path.name}")
        ranks.append({"file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)})
    build = config["build_config"]
    return {
        "trtllm_engine_version": config.get("version"),
        "mapping": config["pretrained_config"]["mapping"],
        "quantization": config["pretrained_config"].get("quantization"),
        "build_config": {k: build.get(k) for k in ("max_batch_size", "max_input_len", "max_seq_len",
                                                    "max_num_tokens", "opt_num_tokens", "max_beam_width",
                                                    "kv_cache_type", "plugin_config")},
        "ranks": ranks,
        "engine_bytes": sum(r["bytes"] for r in ranks),
    }


@dataclass(frozen=True)
class EngineNeeds:
    """What a run needs of the engine it loads."""

    sm: int
    trtllm_version: str
    tensorrt_version: str
    tp: int
    pp: int
    max_seq_len: int  # the longest prompt plus max new tokens the run allows
    max_batch_size: int  # the runtime batch
    max_num_tokens: int | None = None  # the runtime tokens per iteration


def _rebuild(directory: Path) -> str:
    return f"rebuild it with llmkit build (the engine at {directory} cannot serve this run)"


def check_engine(directory: Path, needs: EngineNeeds) -> dict:
    """The engine's manifest when it can serve a run that needs `needs`; else one sentence naming the mismatch."""
    if not directory.is_dir():
        raise UserError(f"{not_there(directory, 'engine directory', directory=True)}; build it with llmkit build")
    manifest = read_manifest(directory)
    if manifest.get("kind") != ARTIFACT_KIND:
        raise UserError(f"{directory} is a {manifest.get('kind')} artifact, not an engine; point at an engine directory")
    toolchain, build = manifest["toolchain"], manifest["build_config"]
    mapping = manifest["mapping"]
    if toolchain["sm"] != needs.sm:
        raise UserError(f"{directory} was built for SM{toolchain['sm']} ({toolchain['gpu_name']}) but this GPU is "
                        f"SM{needs.sm}; {_rebuild(directory)} on this GPU")
    for name, built, here in (("TensorRT-LLM", toolchain["trtllm_version"], needs.trtllm_version),
                              ("TensorRT", toolchain["tensorrt_version"], needs.tensorrt_version)):
        if built != here:
            raise UserError(f"{directory} was built with {name} {built} but this runtime has {here}; "
                            f"{_rebuild(directory)} with {name} {here}")
    if (mapping["tp_size"], mapping["pp_size"]) != (needs.tp, needs.pp):
        raise UserError(f"{directory} is sharded tp {mapping['tp_size']} x pp {mapping['pp_size']} but the system "
                        f"runs tp {needs.tp} x pp {needs.pp}; set system.tp={mapping['tp_size']} "
                        f"system.pp={mapping['pp_size']} or {_rebuild(directory)}")
    if build["max_seq_len"] < needs.max_seq_len:
        raise UserError(f"{directory} takes sequences of at most {build['max_seq_len']} tokens but the run needs "
                        f"{needs.max_seq_len}; {_rebuild(directory)} with build.flags.max_seq_len={needs.max_seq_len}")
    if build["max_batch_size"] < needs.max_batch_size:
        raise UserError(f"{directory} was built for batches of {build['max_batch_size']} but the run asks for "
                        f"{needs.max_batch_size}; lower the runtime batch or {_rebuild(directory)} with "
                        f"build.flags.max_batch_size={needs.max_batch_size}")
    if needs.max_num_tokens is not None and build["max_num_tokens"] < needs.max_num_tokens:
        raise UserError(f"{directory} was built for {build['max_num_tokens']} tokens per iteration but the run asks "
                        f"for {needs.max_num_tokens}; lower it or {_rebuild(directory)} with "
                        f"build.flags.max_num_tokens={needs.max_num_tokens}")
    _check_rank_files(directory, manifest)
    return manifest


def _check_rank_files(directory: Path, manifest: dict) -> None:
    for rank in manifest["ranks"]:
        if not (directory / rank["file"]).is_file():
            raise UserError(f"{directory} has lost {rank['file']}; rebuild the engine with llmkit build build.force=true")
    # Remembered in the engine directory, so that a multi-hundred-GB engine is hashed once, not on every run.
    digests = remembered_sha256([directory / rank["file"] for rank in manifest["ranks"]], directory / SHA_MEMO)
    for rank in manifest["ranks"]:
        path = directory / rank["file"]
        if path.stat().st_size != rank["bytes"] or digests[path] != rank["sha256"]:
            raise UserError(f"{path} differs from the file the build wrote (sha256 or size); rebuild the engine with "
                            "llmkit build build.force=true")
