"""The TensorRT-LLM checkpoint an engine is built from: `build.checkpoint=DIR`, or the `llmkit quantize` artifact of
this config's precision x system.tp x system.pp (reused when its key exists, made first when it does not).

A dry run never quantizes: it uses an existing artifact of the same recipe and topology when there is one, else it
plans from what the recipe would make.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from build_engines.preflight import CheckpointFacts
from llmkit.artifacts import MANIFEST, files_fingerprint
from llmkit.config.schema import KVCacheFormat, PrecisionName, RunConfig
from llmkit.errors import UserError
from quantize.stage import ARTIFACT_KIND as CHECKPOINTS, made_checkpoint, recipe_key

log = logging.getLogger(__name__)

# The quant_algo a recipe's checkpoint states (modelopt's TensorRT-LLM export), for planning without one.
QUANT_ALGO = {PrecisionName.bf16: None, PrecisionName.fp8: "FP8", PrecisionName.nvfp4: "NVFP4",
              PrecisionName.autoquant: "MIXED_PRECISION", PrecisionName.w4a8_awq: "W4A8_AWQ",
              PrecisionName.int8_sq: "W8A8_SQ_PER_CHANNEL"}
ARCHITECTURE = {"mixtral-8x7b": "MixtralForCausalLM", "llama3.1-405b": "LlamaForCausalLM"}


@dataclass(frozen=True)
class Checkpoint:
    path: Path | None  # None: not made yet (dry run)
    key: str | None  # the quantize artifact's key, or a fingerprint of a given directory's files
    facts: CheckpointFacts
    rank_bytes: tuple[int, ...]  # per rank file, when the checkpoint exists
    made_by: str  # how it was found, for the plan


def read_facts(path: Path) -> tuple[CheckpointFacts, tuple[int, ...]]:
    config_file = path / "config.json"
    try:
        config = json.loads(config_file.read_text())
        mapping, quant = config["mapping"], config.get("quantization") or {}
        facts = CheckpointFacts(config["architecture"], quant.get("quant_algo"), quant.get("kv_cache_quant_algo"),
                                int(mapping["tp_size"]), int(mapping["pp_size"]))
        world = int(mapping["world_size"])
    except FileNotFoundError:
        raise UserError(f"{path} has no config.json, so it is not a TensorRT-LLM checkpoint; point build.checkpoint= "
                        "at one (llmkit quantize makes them)") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise UserError(f"{config_file} is not a TensorRT-LLM checkpoint config (architecture, mapping); remake the "
                        "checkpoint with llmkit quantize") from None
    sizes = []
    for rank in range(world):
        shard = path / f"rank{rank}.safetensors"
        if not shard.is_file():
            raise UserError(f"{path} lacks {shard.name} (rank {rank} of {world}); remake the checkpoint with "
                            "llmkit quantize quantize.force=true")
        sizes.append(shard.stat().st_size)
    return facts, tuple(sizes)


def _given(cfg: RunConfig) -> Checkpoint:
    path = Path(cfg.build.checkpoint)
    if not path.is_dir():
        raise UserError(f"build.checkpoint={path} is not a directory; point it at a TensorRT-LLM checkpoint")
    facts, sizes = read_facts(path)
    manifest_file = path / MANIFEST
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text())
        _refuse_failed_gate(manifest, path)
        key = manifest.get("key")
    else:
        files = [path / "config.json", *sorted(path.glob("rank*.safetensors"))]
        key = "files-" + files_fingerprint(files, Path(cfg.artifacts_root) / ".fingerprints.json")[:16]
    return Checkpoint(path, key, facts, sizes, f"build.checkpoint={path}")


def _refuse_failed_gate(manifest: dict, path: Path) -> None:
    quality = manifest.get("quality")
    if quality and quality["greedy_agreement"] < quality["min_greedy_agreement"]:
        raise UserError(f"{path} failed its quality gate (greedy agreement {quality['greedy_agreement']:.4f} < "
                        f"{quality['min_greedy_agreement']}); do not build engines from it: re-quantize with more "
                        "calibration data or another precision")


def _existing(cfg: RunConfig) -> Path | None:
    """The newest quantize artifact of this benchmark, model, recipe and topology (for a dry run)."""
    found = []
    for manifest_file in (Path(cfg.artifacts_root) / CHECKPOINTS).glob(f"*/{MANIFEST}"):
        try:
            manifest = json.loads(manifest_file.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        inputs = manifest.get("inputs", {})
        if (inputs.get("benchmark"), inputs.get("precision"), inputs.get("tp"), inputs.get("pp"),
                manifest.get("model")) == (cfg.benchmark.name, recipe_key(cfg.precision), cfg.system.tp,
                                           cfg.system.pp, cfg.model.name):
            found.append((manifest_file.stat().st_mtime, manifest_file.parent))
    return max(found)[1] if found else None


def recipe_facts(cfg: RunConfig) -> CheckpointFacts:
    """What the recipe's checkpoint will state, before it exists."""
    return CheckpointFacts(ARCHITECTURE[cfg.benchmark.name], QUANT_ALGO[cfg.precision.name],
                           "FP8" if cfg.precision.kv_cache is KVCacheFormat.fp8 else None, cfg.system.tp, cfg.system.pp)


def resolve(cfg: RunConfig, dry_run: bool, ranks: int = 1) -> Checkpoint:
    """`ranks` > 1: the processes of an `mpirun -n K llmkit build`, which must not quantize K times at once; they
    take the artifact of quantize's very key (model files, calibration set, recipe, dtypes, device, topology), made
    beforehand by one process."""
    if cfg.build.checkpoint:
        checkpoint = _given(cfg)
    else:
        path = _existing(cfg) if dry_run else made_checkpoint(cfg) if ranks > 1 else None
        if path is None and ranks > 1 and not dry_run:
            raise UserError(f"no checkpoint of precision={cfg.precision.name.value} for tp {cfg.system.tp} x pp "
                            f"{cfg.system.pp} from {cfg.model.path} with these settings exists yet, and {ranks} MPI "
                            "ranks must not quantize at once; run llmkit quantize with the same overrides in one "
                            "process first, or pass build.checkpoint=")
        if path is None and dry_run:
            return Checkpoint(None, None, recipe_facts(cfg), (), f"not made yet: llmkit quantize makes it first (precision="
                                                     f"{cfg.precision.name.value}, tp {cfg.system.tp} x pp {cfg.system.pp})")
        if path is None:
            from quantize.stage import quantize

            path = quantize(cfg)
        manifest = json.loads((path / MANIFEST).read_text())
        _refuse_failed_gate(manifest, path)
        facts, sizes = read_facts(path)
        checkpoint = Checkpoint(path, manifest["key"], facts, sizes, f"llmkit quantize artifact {path}")
    if (checkpoint.facts.tp, checkpoint.facts.pp) != (cfg.system.tp, cfg.system.pp):
        raise UserError(f"{checkpoint.path} is sharded tp {checkpoint.facts.tp} x pp {checkpoint.facts.pp} but "
                        f"system={cfg.system.name} runs tp {cfg.system.tp} x pp {cfg.system.pp}; quantize for this "
                        f"topology (llmkit quantize system.tp={cfg.system.tp} system.pp={cfg.system.pp}) or set "
                        f"system.tp={checkpoint.facts.tp} system.pp={checkpoint.facts.pp}")
    return checkpoint
