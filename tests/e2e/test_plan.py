"""`llmkit plan`: the real model's memory and throughput on a system, as a table, a plot and JSON."""
from __future__ import annotations

import json

from conftest import run_cli
from llmkit.benchmarks import LLAMA3_1_405B

LLAMA = ["benchmark=llama3.1-405b", "model=tiny-llama3"]


def test_plan_prints_the_table_writes_the_plot_and_the_json(tmp_path):
    out = tmp_path / "plans" / "h200.json"
    result = run_cli("llmkit", "plan", "system=h200x8", *LLAMA, f"plan.json={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "meta-llama/Llama-3.1-405B-Instruct (the benchmark's checkpoint" in " ".join(result.stdout.split())
    figures = json.loads(out.read_text())
    assert figures["system"] == "h200x8" and figures["precision"] == "fp8"
    assert figures["request"]["tp"] == 4 and figures["request"]["pp"] == 2 and figures["request"]["gpu"] == "H200-SXM-141GB"
    assert figures["tokens_per_s"] > 0 and figures["tokens_per_s_per_gpu"] > 0
    assert abs(figures["tokens_per_s"] - 8 * figures["tokens_per_s_per_gpu"]) < 1e-6 * figures["tokens_per_s"]
    memory = figures["memory"]
    assert 40 * 2**30 < memory["weights"] < 55 * 2**30 and memory["kv_tokens"] > 0 and memory["fits"]
    assert out.with_suffix(".png").stat().st_size > 10_000
    again = run_cli("llmkit", "plan", "system=h200x8", *LLAMA, f"plan.json={out}")
    assert again.returncode == 2 and "exists and is never overwritten" in again.stderr


def test_a_checkpoint_is_planned_from_its_own_config(tmp_path):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    shape = LLAMA3_1_405B.shape
    half = {"architectures": ["LlamaForCausalLM"], "vocab_size": shape.vocab_size, "hidden_size": shape.hidden_size,
            "intermediate_size": shape.intermediate_size, "num_hidden_layers": 63,
            "num_attention_heads": shape.num_heads, "num_key_value_heads": shape.num_kv_heads}
    (checkpoint / "config.json").write_text(json.dumps(half))
    out = tmp_path / "half.json"
    result = run_cli("llmkit", "plan", "system=h200x8", "benchmark=llama3.1-405b", "model=checkpoint",
                     f"model.path={checkpoint}", "system.pp=1", "system.tp=8", f"plan.json={out}")
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert figures["shape_from"] == f"{checkpoint}/config.json"
    assert 20 * 2**30 < figures["memory"]["weights"] < 28 * 2**30  # half the layers of 405b over 8 GPUs


def test_a_topology_that_cannot_hold_the_model_is_one_sentence_naming_one_that_can(tmp_path):
    result = run_cli("llmkit", "plan", "system=h100x8", *LLAMA, "system.tp=2", "system.pp=1",
                     f"plan.json={tmp_path / 'x.json'}")
    assert result.returncode == 2 and "on tp 2 x pp 1 of H100-SXM-80GB" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()


def test_a_plan_sweep_covers_every_combination(tmp_path):
    result = run_cli("llmkit", "plan", "-m", "system=h100x8,h200x8", "scenario=offline,server", *LLAMA,
                     f"runs_root={tmp_path / 'runs'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("predicted ") == 4
    assert len(list((tmp_path / "runs" / "plans").glob("*.png"))) == 4
