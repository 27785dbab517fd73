"""`llmkit calibrate`: the calibration set as a content-keyed artifact."""
from __future__ import annotations

import json

import pytest

from conftest import run_cli
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B
from llmkit.config.load import load
from llmkit.config.schema import DatasetSplit
from llmkit.data.datasets import write_frame
from llmkit.data.sample import sample_frame
from llmkit.errors import UserError
from quantize.calibrate import calibrate, load_calibration


@pytest.mark.parametrize(("benchmark", "model"), [(MIXTRAL_8X7B, "tiny-mixtral"), (LLAMA3_1_405B, "tiny-llama3")])
def test_calibration_set_is_tokenized_by_the_models_tokenizer(artifacts, benchmark, model):
    path = calibrate(load([f"artifacts_root={artifacts}", f"benchmark={benchmark.name}", f"model={model}"]))
    input_ids, lengths = load_calibration(path)
    expected = list(sample_frame(benchmark, DatasetSplit.calibration)["tok_input"])
    assert len(lengths) == len(expected)
    for row, ids in enumerate(expected):
        assert input_ids[row, : lengths[row]].tolist() == list(ids)
        assert not input_ids[row, lengths[row]:].any()
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["kind"] == "calibration" and manifest["samples"] == len(expected)
    assert manifest["batches"] == -(-len(expected) // 8) and len(manifest["calibration_sha256"]) == 64
    assert path.parent.name == "calibration" and path.name == manifest["key"]


def test_reuse_force_and_truncation(artifacts, tmp_path):
    base = [f"artifacts_root={tmp_path / 'art'}", f"model.path={artifacts / 'models' / 'tiny-mixtral'}"]
    first = calibrate(load(base))
    created = json.loads((first / "manifest.json").read_text())["created"]
    assert calibrate(load(base)) == first
    assert json.loads((first / "manifest.json").read_text())["created"] == created
    forced = calibrate(load(base + ["calibration.force=true"]))
    assert forced == first and list(first.parent.glob(f"{first.name}.replaced-*"))
    short = calibrate(load(base + ["calibration.max_length=16", "calibration.num_samples=5"]))
    assert short != first
    input_ids, lengths = load_calibration(short)
    assert input_ids.shape == (5, 16) and (lengths == 16).all()
    assert json.loads((short / "manifest.json").read_text())["truncated"] == 5


def test_a_calibration_set_of_the_other_benchmark_is_refused(artifacts, tmp_path):
    path = tmp_path / "llama-calibration.jsonl"
    write_frame(sample_frame(LLAMA3_1_405B, DatasetSplit.calibration)[["input"]], path)
    cfg = load([f"artifacts_root={artifacts}", "dataset=official", f"dataset.path={path}"])
    with pytest.raises(UserError, match="not a mixtral-8x7b calibration set"):
        calibrate(cfg)
    assert not list(artifacts.rglob(".*staging*"))


def test_cli(artifacts, tmp_path):
    result = run_cli("llmkit", "calibrate", f"artifacts_root={tmp_path}", f"model.path={artifacts}/models/tiny-mixtral")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "calibration set:" in result.stderr
    bad = run_cli("llmkit", "calibrate", "calibration.batch_size=0")
    assert bad.returncode == 2 and "calibration.batch_size must be at least 1" in bad.stderr


def test_the_validation_set_is_refused_for_calibration():
    """MLPerf forbids calibrating on the validation set: its whole schema at its row count is recognised."""
    import pandas as pd

    from llmkit.benchmarks import get_benchmark
    from llmkit.errors import UserError
    from quantize.calibrate import _check_not_validation

    benchmark = get_benchmark("llama3.1-405b")
    frame = pd.DataFrame({column: [""] * benchmark.validation.rows for column in benchmark.validation_columns})
    with pytest.raises(UserError, match="MLPerf forbids calibrating on it; pass the calibration file"):
        _check_not_validation(frame, benchmark, "validation.pkl")
    _check_not_validation(frame.head(benchmark.calibration.rows), benchmark, "calibration.pkl")  # not the same set
