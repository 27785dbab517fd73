"""`llmkit quantize`: modelopt recipes on the tiny models, exported as TP x PP-sharded TensorRT-LLM checkpoints."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import run_cli
from llmkit.config.load import load
from llmkit.config.precisions import AutoquantConfig, Fp8Config
from llmkit.config.schema import DType, PrecisionName
from llmkit.errors import UserError
from quantize.calibrate import calibrate
from quantize.export import safetensors_header
from llmkit.models.memory import estimate
from llmkit.models.shape import ModelShape
from quantize.stage import quantize

MIXTRAL = ["benchmark=mixtral-8x7b", "model=tiny-mixtral"]
LLAMA = ["benchmark=llama3.1-405b", "model=tiny-llama3"]
# A short calibration set keeps each quantization to a second or two on CPU.
SMALL = ["calibration.num_samples=4", "calibration.max_length=32", "calibration.batch_size=2", "quantize.gate_samples=2",
         "quantize.min_greedy_agreement=0.5"]


@pytest.fixture
def base(artifacts, tmp_path) -> tuple[list[str], Path]:
    """Tiny checkpoints from the session, artifacts written under this test's tmp_path."""
    models = artifacts / "models"
    return [f"artifacts_root={tmp_path / 'art'}", *SMALL], models


def _cfg(base, model_args, *extra):
    args, models = base
    name = "tiny-mixtral" if "model=tiny-mixtral" in model_args else "tiny-llama3"
    return load([*args, *model_args, f"model.path={models / name}", *extra], serving=False)


def _tensors(directory: Path, rank: int) -> dict:
    return safetensors_header(directory / f"rank{rank}.safetensors")


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def test_fp8_mixtral_sharded_for_tp2(base):
    path = quantize(_cfg(base, MIXTRAL, "precision=fp8", "system.tp=2"))
    config = json.loads((path / "config.json").read_text())
    assert config["architecture"] == "MixtralForCausalLM"
    assert config["quantization"]["quant_algo"] == "FP8" and config["quantization"]["kv_cache_quant_algo"] == "FP8"
    assert config["mapping"] == {"world_size": 2, "tp_size": 2, "pp_size": 1, "moe_tp_size": 2, "moe_ep_size": 1}
    for rank in (0, 1):
        tensors = _tensors(path, rank)
        attention = "transformer.layers.0.attention"
        # 4 query + 2 key + 2 value heads of 16 channels, halved by TP; the experts' gate+up and down projections.
        assert tensors[f"{attention}.qkv.weight"] == {**tensors[f"{attention}.qkv.weight"], "dtype": "F8_E4M3",
                                                      "shape": [64, 64]}
        assert tensors[f"{attention}.qkv.weights_scaling_factor"]["dtype"] == "F32"
        assert tensors[f"{attention}.qkv.activation_scaling_factor"]["shape"] == [1]
        assert tensors[f"{attention}.kv_cache_scaling_factor"]["dtype"] == "F32"
        assert tensors["transformer.layers.0.mlp.fc.weight"]["dtype"] == "F8_E4M3"
        assert tensors["transformer.layers.0.mlp.fc.weight"]["shape"] == [4, 128, 64]
        assert tensors["transformer.layers.0.mlp.proj.weight"]["shape"] == [4, 64, 64]
        assert tensors["transformer.layers.0.mlp.fc.weights_scaling_factor"]["shape"] == [4, 1]
        assert tensors["transformer.layers.0.mlp.router.weight"]["dtype"] == "F32"  # routers stay unquantized
        assert tensors["lm_head.weight"] == {**tensors["lm_head.weight"], "dtype": "F16", "shape": [16000, 64]}
    manifest = _manifest(path)
    assert manifest["kind"] == "checkpoints" and path.parent.name == "checkpoints" and path.name == manifest["key"]
    assert manifest["inputs"]["precision"]["name"] == "fp8" and manifest["inputs"]["tp"] == 2
    assert "nvidia-modelopt" in manifest["versions"] and set(manifest["timings"]) >= {"quantize_s", "export_s"}
    calibration = _manifest(Path(manifest["calibration_dir"]))
    assert manifest["inputs"]["calibration_sha256"] == calibration["calibration_sha256"]
    quality = manifest["quality"]
    assert 0 < quality["logits_relative_error"] < 0.5 and 0.5 <= quality["greedy_agreement"] <= 1
    assert quality["positions"] == sum(calibration_lengths(manifest)[:2])
    assert [r["dtypes"]["F8_E4M3"] for r in manifest["ranks"]] == [8, 8]
    assert (path / "tokenizer" / "tokenizer.model").is_file()


def calibration_lengths(manifest: dict) -> list[int]:
    import numpy as np

    with np.load(Path(manifest["calibration_dir"]) / "calibration.npz") as data:
        return data["lengths"].tolist()


def test_pp2_splits_the_layers_and_reuse_and_force(base):
    cfg = _cfg(base, LLAMA, "precision=fp8", "system.pp=2")
    path = quantize(cfg)
    first, second = _tensors(path, 0), _tensors(path, 1)
    # One layer per stage (numbered locally); embeddings on the first stage, final norm and lm_head on the last.
    assert {k.split(".")[2] for k in first if k.startswith("transformer.layers")} == {"0"}
    assert {k.split(".")[2] for k in second if k.startswith("transformer.layers")} == {"0"}
    assert "transformer.vocab_embedding.weight" in first and "lm_head.weight" not in first
    assert "lm_head.weight" in second and "transformer.ln_f.weight" in second
    assert first["transformer.layers.0.mlp.fc.weight"]["dtype"] == "F8_E4M3"
    created = _manifest(path)["created"]
    assert quantize(cfg) == path and _manifest(path)["created"] == created  # reused, not rebuilt
    forced = quantize(_cfg(base, LLAMA, "precision=fp8", "system.pp=2", "quantize.force=true"))
    assert forced == path and list(path.parent.glob(f"{path.name}.replaced-*"))


@pytest.mark.parametrize(("recipe", "algo", "weight_dtype", "qkv_shape"), [
    (["precision=int8_sq"], "W8A8_SQ_PER_CHANNEL", "I8", [128, 64]),
    # INT4 packed two to a byte; one scale per block of 64 input channels per output row.
    (["precision=w4a8_awq", "precision.awq_block_size=64"], "W4A8_AWQ", "I8", [64, 64]),
])
def test_integer_recipes(base, recipe, algo, weight_dtype, qkv_shape):
    path = quantize(_cfg(base, LLAMA, *recipe))
    config = json.loads((path / "config.json").read_text())
    assert config["quantization"]["quant_algo"] == algo
    tensors = _tensors(path, 0)
    qkv = "transformer.layers.0.attention.qkv"
    assert tensors[f"{qkv}.weight"]["dtype"] == weight_dtype and tensors[f"{qkv}.weight"]["shape"] == qkv_shape
    assert f"{qkv}.prequant_scaling_factor" in tensors  # SmoothQuant / AWQ's per-channel input scales
    if algo == "W4A8_AWQ":
        assert tensors[f"{qkv}.weights_scaling_factor"]["shape"] == [128, 1]


def test_autoquant_searches_per_layer_and_calibrates_the_kv_cache(base):
    path = quantize(_cfg(base, MIXTRAL, "precision=autoquant", "precision.effective_bits=15.5", "system.tp=2"))
    manifest = _manifest(path)
    recipe = manifest["recipe"]
    assert recipe["constraint_satisfied"] and recipe["effective_bits"] <= 15.5
    assert set(recipe["format_counts"]) == {"fp8", "unquantized"}
    assert recipe["layer_formats"]["lm_head"] == "unquantized"
    assert recipe["layer_formats"]["model.layers.0.block_sparse_moe.experts.0.w1"] == "fp8"
    config = json.loads((path / "config.json").read_text())
    assert config["quantization"]["kv_cache_quant_algo"] == "FP8"
    from safetensors import safe_open

    with safe_open(str(path / "rank0.safetensors"), "pt") as shard:
        scale = shard.get_tensor("transformer.layers.0.attention.kv_cache_scaling_factor")
    assert float(scale) > 0  # set by the second, KV-only calibration pass


def test_autoquant_budget_below_what_the_model_can_reach(base):
    cfg = _cfg(base, MIXTRAL, "precision=autoquant")
    with pytest.raises(UserError, match="effective_bits=8.75 is below what this model can reach"):
        quantize(cfg)
    assert not list((Path(cfg.artifacts_root) / "checkpoints").iterdir())


def test_bf16_passthrough_with_unified_hf_checkpoint(base):
    path = quantize(_cfg(base, LLAMA, "precision=bf16", "system.tp=2", "quantize.export_hf=true"))
    config = json.loads((path / "config.json").read_text())
    assert config["quantization"]["quant_algo"] is None and config["mapping"]["tp_size"] == 2
    assert _tensors(path, 1)["transformer.layers.1.attention.qkv.weight"]["dtype"] == "F16"
    manifest = _manifest(path)
    assert manifest["quality"] is None and manifest["inputs"]["calibration_sha256"] is None
    assert (path / "hf" / "model.safetensors").is_file() and (path / "hf" / "tokenizer.json").is_file()
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(path / "hf").architectures == ["LlamaForCausalLM"]


def test_quality_gate_failure_keeps_the_checkpoint_and_exits_1(base):
    cfg = _cfg(base, MIXTRAL, "precision=fp8", "quantize.min_greedy_agreement=1.0")
    with pytest.raises(SystemExit) as stop:
        quantize(cfg)
    assert stop.value.code == 1
    (kept,) = (Path(cfg.artifacts_root) / "checkpoints").iterdir()
    assert _manifest(kept)["quality"]["greedy_agreement"] < 1.0


@pytest.mark.parametrize(("model", "overrides", "message"), [
    (MIXTRAL, ["precision=fp8", "system.tp=3"], "system.tp=3 does not divide the 4 attention heads"),
    (MIXTRAL, ["precision=fp8", "system.pp=3"], "system.pp=3 does not divide the 2 layers"),
    (LLAMA, ["precision=fp8", "system.tp=8"], "system.tp=8 does not divide the 4 attention heads"),
    (MIXTRAL, ["precision=autoquant", "precision.effective_bits=15.5", "precision.search_formats=[int8_sq]"],
     "no SmoothQuant export for MoE experts"),
    (MIXTRAL, ["precision=int8_sq"], "no SmoothQuant export for MoE experts"),
    (LLAMA, ["precision=w4a8_awq"], "multiple of precision.awq_block_size=128"),
    (LLAMA, ["precision=nvfp4"], "precision=nvfp4 needs a CUDA GPU"),
    # A setting of another recipe is an unknown key of this recipe's schema.
    (LLAMA, ["precision=fp8", "precision.search_formats=[nvfp4]"], "unknown config key 'precision.search_formats'"),
])
def test_bad_input_is_refused_before_any_work(base, model, overrides, message):
    with pytest.raises(UserError, match=message):
        quantize(_cfg(base, model, *overrides))
    artifacts = Path(base[0][0].split("=", 1)[1])
    assert not (artifacts / "checkpoints").exists()
    assert not (artifacts / "calibration").exists()


def _llama_variant(base, directory: Path, **config_changes) -> list[str]:
    """tiny-llama3 copied with config.json fields changed; the overrides that select it."""
    args, models = base
    shutil.copytree(models / "tiny-llama3", directory)
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, **config_changes}))
    return [*args, *LLAMA, f"model.path={directory}"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"num_attention_heads": 0}, "num_attention_heads=0 where a positive integer belongs"),
    ({"hidden_size": "four"}, "hidden_size='four' where a positive integer belongs"),
    ({"intermediate_size": None}, "intermediate_size=None where a positive integer belongs"),
])
def test_a_damaged_config_json_is_named(base, tmp_path, changes, message):
    cfg = load([*_llama_variant(base, tmp_path / "damaged", **changes), "precision=fp8"], serving=False)
    with pytest.raises(UserError, match=message):
        quantize(cfg)


def test_unsupported_architecture(base, tmp_path):
    cfg = load([*_llama_variant(base, tmp_path / "qwen", architectures=["Qwen2ForCausalLM"]), "precision=fp8"],
               serving=False)
    with pytest.raises(UserError, match="is a Qwen2ForCausalLM checkpoint"):
        quantize(cfg)


def test_a_calibration_set_from_another_benchmark_is_refused(base, tmp_path):
    llama_calibration = calibrate(_cfg(base, LLAMA))
    cfg = _cfg(base, MIXTRAL, "precision=fp8", f"quantize.calibration_dir={llama_calibration}")
    with pytest.raises(UserError, match="was built for llama3.1-405b, not mixtral-8x7b"):
        quantize(cfg)
    assert not (Path(cfg.artifacts_root) / "checkpoints").exists()
    checkpoint = quantize(_cfg(base, LLAMA, "precision=bf16"))
    with pytest.raises(UserError, match="is a checkpoints artifact, not a calibration set"):
        quantize(_cfg(base, LLAMA, "precision=fp8", f"quantize.calibration_dir={checkpoint}"))
    other_tokenizer = _llama_variant(base, tmp_path / "retokenized")
    with (tmp_path / "retokenized" / "original" / "tokenizer.model").open("a") as f:
        f.write("\n")  # another tokenizer file than the one the set was tokenized with
    with pytest.raises(UserError, match="was tokenized with another tokenizer"):
        quantize(load([*other_tokenizer, "precision=fp8", f"quantize.calibration_dir={llama_calibration}"],
                      serving=False))


def test_the_key_follows_what_shapes_the_checkpoint(base):
    first = quantize(_cfg(base, LLAMA, "precision=int8_sq"))
    assert quantize(_cfg(base, LLAMA, "precision=int8_sq", "calibration.batch_size=1")) != first
    assert quantize(_cfg(base, LLAMA, "precision=int8_sq", "precision.exclude=[]")) != first


def test_memory_preflight_refuses_a_model_the_machine_cannot_hold(base, tmp_path):
    """The real llama3.1-405b shape with a tiny checkpoint's tokenizer: refused before any weight is read."""
    big = _llama_variant(base, tmp_path / "llama-405b", hidden_size=16384, intermediate_size=53248,
                         num_hidden_layers=126, num_attention_heads=128, num_key_value_heads=8)
    cfg = load([*big, "precision=fp8", "system.tp=8"], serving=False)
    with pytest.raises(UserError, match=r"needs about [0-9,.]+ GiB of host RAM but [0-9,.]+ GiB is free; the "
                                        r"weights alone do not fit"):
        quantize(cfg)
    assert not Path(cfg.artifacts_root).exists()  # refused before the calibration set was written


def test_memory_estimate_of_the_real_models():
    shape = ModelShape("LlamaForCausalLM", 128256, 16384, 53248, 126, 128, 8, 128, 0, False)
    assert 400e9 < shape.parameters < 410e9
    needs = {n.what: n for n in estimate(shape, Fp8Config(), DType.bfloat16,
                                         DType.float16, True, 8, 2048)}
    assert 750 < needs["weights"].gpu_bytes / 2**30 < 760  # bf16 weights on the GPUs
    # One calibration batch of 8 x 2048 tokens, one layer at a time (no autoquant), and its logits.
    assert 14 < needs["activations"].gpu_bytes / 2**30 < 16
    autoquant = AutoquantConfig(effective_bits=8.75, search_formats=[PrecisionName.fp8])
    kept = {n.what: n for n in estimate(shape, autoquant, DType.bfloat16, DType.float16, True, 8, 2048)}
    assert kept["activations"].gpu_bytes > 50 * needs["activations"].gpu_bytes  # every layer kept, for gradients
    assert 370 < needs["export"].host_bytes / 2**30 < 385  # FP8 weights in host RAM before the shards are written
    mixtral = ModelShape("MixtralForCausalLM", 32000, 4096, 14336, 32, 32, 8, 128, 8, False)
    assert 46.5e9 < mixtral.parameters < 46.8e9


def test_cli_sweep_runs_every_recipe_and_fails_when_a_gate_failed(base, tmp_path):
    args, models = base
    result = run_cli("llmkit", "quantize", "-m", "precision=fp8,bf16", *args, *MIXTRAL,
                     f"model.path={models / 'tiny-mixtral'}", f"runs_root={tmp_path / 'runs'}",
                     "quantize.min_greedy_agreement=1.0")
    assert "memory preflight" in result.stderr and "quality gate" in result.stderr
    built = {_manifest(p)["inputs"]["precision"]["name"]: p for p in (tmp_path / "art" / "checkpoints").iterdir()}
    assert sorted(built) == ["bf16", "fp8"]
    assert result.returncode == 1, result.stderr[-3000:]
    assert f"the quality gate failed for 1 checkpoint(s): {built['fp8']}" in result.stderr


def test_cli_unknown_recipe(base):
    result = run_cli("llmkit", "quantize", "precision=fp9", *base[0])
    assert result.returncode == 2
    assert "'fp9' is not a precision config" in result.stderr and "did you mean" in result.stderr


@pytest.mark.parametrize(("overrides", "message"), [
    (["precision=autoquant", "precision.effective_bits=null"], "needs precision.effective_bits between 0 and 16"),
    (["precision=autoquant", "precision.search_formats=[]"], "needs precision.search_formats"),
    (["precision=autoquant", "precision.search_formats=[bf16]"], "may hold fp8, int8_sq, w4a8_awq, nvfp4, not bf16"),
    (["precision=w4a8_awq", "precision.awq_block_size=32"], "awq_block_size must be one of"),
    (["precision=bf16", "precision.kv_cache=fp8"], "an FP8 KV cache needs calibration"),
    (["quantize.min_greedy_agreement=1.5"], "is a fraction between 0 and 1"),
    (["quantize.gate_samples=0"], "quantize.gate_samples must be at least 1, got 0"),
    (["quantize.export_dtype=float32"], "must be float16 or bfloat16"),
])
def test_recipe_settings_are_checked_with_the_config(overrides, message):
    with pytest.raises(UserError, match=message):
        load(overrides, serving=False)


def test_serving_checks_do_not_apply_to_the_quantize_stage():
    assert load(["system.tp=2", "system.pp=2"], serving=False).system.tp == 2
    with pytest.raises(UserError, match="the hf backend runs one device per instance"):
        load(["system.tp=2"])
