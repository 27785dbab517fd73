"""`llmkit evaluate` on fixture accuracy logs whose scores are known by construction, and on bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from conftest import run_cli
from evaluation.accuracy import evaluate_run
from evaluation.mbxp.languages import missing_runtime
from evaluation.mbxp.sandbox import sandbox_unavailable
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B
from llmkit.config.load import load
from llmkit.data.sample import sample_frame
from llmkit.errors import UserError
from llmkit.tokenizers import bundled_tokenizer_file, load_tokenizer

UNRELATED = "zzz qqq xxyyzz"


def entry(seq_id: int, qsl_idx: int, ids, dtype=np.int32, token_count: bool = True) -> dict:
    array = np.asarray(ids, dtype=dtype)
    record = {"seq_id": seq_id, "qsl_idx": qsl_idx, "data": array.tobytes().hex().upper()}
    if token_count:
        record["token_count"] = len(ids)
    return record


def make_run(tmp_path: Path, overrides: list[str], entries: list[dict]) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    cfg = load(overrides + ["mode=accuracy"])
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    (run_dir / "mlperf_log_accuracy.json").write_text(json.dumps(entries))
    (run_dir / "result.json").write_text(json.dumps({"mode": "accuracy"}))
    return run_dir


def evaluate(run_dir: Path, *overrides: str) -> dict:
    return evaluate_run(load([f"evaluation.run_dir={run_dir}", "evaluation.timeout_s=10", *overrides]))


def test_mixtral_fixture_log(tmp_path):
    frame = sample_frame(MIXTRAL_8X7B)
    tokenizer = load_tokenizer(bundled_tokenizer_file(MIXTRAL_8X7B.tokenizer))
    unrelated = tokenizer.encode(UNRELATED) + [2]
    wrong_number = tokenizer.encode(" The answer is 999999.") + [2]
    broken = tokenizer.encode("this is not code (\n```\n")
    # The MBXP score is checked against programs that really ran: the sandbox and every language's runtime are here
    # (make run installs them; conftest's artifacts need them anyway).
    assert sandbox_unavailable() is None
    answers, expected_mbxp_pass, expected_mbxp_languages = {}, 0, []
    for dataset in ("OpenOrca", "GSM8K", "MBXP"):
        rows = frame.index[frame["dataset"] == dataset].tolist()
        for n, index in enumerate(rows):
            good = n < len(rows) // 2 or (dataset == "MBXP" and n % 4 != 0)
            reference = list(frame.at[index, "tok_ref_output"])
            bad = {"OpenOrca": unrelated, "GSM8K": wrong_number, "MBXP": broken}[dataset]
            answers[index] = reference if good else bad
            if dataset == "MBXP":
                language = frame.at[index, "id"].split("_")[0]
                expected_mbxp_languages.append(language)
                assert missing_runtime(language) is None, language
                # QUIRK: a PHP answer without "<?php" is echoed and exits 0, so even the broken one passes.
                expected_mbxp_pass += good or language == "php"
    entries = [entry(i, idx, ids) for i, (idx, ids) in enumerate(answers.items())]
    first = next(iter(answers))
    entries.append(entry(len(entries), first, unrelated))  # a duplicate: ignored, but counted by tokens_per_sample
    run_dir = make_run(tmp_path, [], entries)

    summary = evaluate(run_dir)
    values = summary["values"]
    orca = (frame["dataset"] == "OpenOrca").sum()
    assert values["rouge1"] == values["rougeL"] == values["rougeLsum"] == round(100 * (orca // 2) / orca, 4)
    assert values["rouge2"] == round(100 * (orca // 2) / orca, 4)
    gsm8k = (frame["dataset"] == "GSM8K").sum()
    assert values["gsm8k"] == pytest.approx(100 * (gsm8k // 2) / gsm8k)
    assert values["mbxp"] == pytest.approx(100 * expected_mbxp_pass / len(expected_mbxp_languages))
    total_tokens = sum(len(ids) for ids in answers.values())
    assert values["gen_tok_len"] == total_tokens
    assert values["gen_num"] == len(answers) + 1
    assert values["tokens_per_sample"] == round(total_tokens / (len(answers) + 1), 1)

    text = (run_dir / "accuracy.txt").read_text()
    assert text.startswith("{'rouge1': ") and "hash=" in text
    import hashlib

    assert text.strip().endswith(hashlib.sha256((run_dir / "mlperf_log_accuracy.json").read_bytes()).hexdigest())
    result = json.loads((run_dir / "result.json").read_text())
    # FAIL: half the OpenOrca answers are unrelated, so ROUGE is far below its target.
    assert result["mode"] == "accuracy" and result["accuracy"]["verdict"] == "FAIL"
    assert {r["key"] for r in json.loads((run_dir / "mbxp_results.json").read_text())} == set(frame.loc[
        frame["dataset"] == "MBXP", "id"])


def test_llama_fixture_log(tmp_path):
    frame = sample_frame(LLAMA3_1_405B)
    tokenizer = load_tokenizer(bundled_tokenizer_file(LLAMA3_1_405B.tokenizer))
    answers, per_metric = {}, {"rouge": [], "em": []}
    for metric in ("rouge", "niah_em", "qa_em"):
        rows = frame.index[frame["metric"] == metric].tolist()
        for n, index in enumerate(rows):
            good = n != len(rows) - 1
            reference = str(frame.at[index, "gt_output"])
            text = {"rouge": reference, "niah_em": f"The special magic uuid is: {reference}",
                    "qa_em": f"Answer: {reference.split('|')[0]}"}[metric] if good else UNRELATED
            answers[index] = tokenizer.encode(text) + [128009]
            per_metric["rouge" if metric == "rouge" else "em"].append(100.0 if good else 0.0)
    entries = [entry(i, idx, ids) for i, (idx, ids) in enumerate(answers.items())]
    entries.append(entry(len(entries), next(iter(answers)), [5, 6, 7]))
    summary = evaluate(make_run(tmp_path, ["benchmark=llama3.1-405b", "model=tiny-llama3"], entries))
    values = summary["values"]
    assert values["rougeL"] == pytest.approx(np.mean(per_metric["rouge"]))
    assert values["exact_match"] == pytest.approx(np.mean(per_metric["em"]))
    total_tokens = sum(len(ids) for ids in answers.values())
    assert values["gen_num"] == len(answers)  # the 405b reference counts answers without duplicates
    assert values["tokens_per_sample"] == round(total_tokens / len(answers), 1)
    assert "mbxp" not in values


@pytest.mark.parametrize(
    ("make_entries", "message"),
    [
        (lambda: [entry(0, 999, [5, 6])], "qsl_idx 999 but the dataset has"),
        (lambda: [entry(0, 0, [5, 6], dtype=np.int64, token_count=False)], "int64 token ids"),
        (lambda: [entry(0, 0, [5, 6], dtype=np.int64)], "looks like int64"),
        (lambda: [{"seq_id": 0, "qsl_idx": 0, "data": "ABCDEF"}], "not a whole number of int32"),
        (lambda: [{"seq_id": 0, "qsl_idx": 0, "data": "XYZ1"}], "is not hex"),
        (lambda: [entry(0, 0, [5, 40000])], "outside the vocabulary"),
        (lambda: [], "has no entries"),
        (lambda: [{"seq_id": 0, "data": "0500000006000000"}], "no integer qsl_idx"),
    ],
)
def test_bad_accuracy_logs_are_clear_errors(tmp_path, make_entries, message):
    run_dir = make_run(tmp_path, [], make_entries())
    with pytest.raises(UserError, match=message):
        evaluate(run_dir)
    assert not (run_dir / "accuracy.txt").exists()


def test_truncated_log_and_missing_files(tmp_path):
    run_dir = make_run(tmp_path, [], [entry(0, 0, [5, 6])])
    log = run_dir / "mlperf_log_accuracy.json"
    log.write_text(log.read_text()[:-5])
    with pytest.raises(UserError, match="not complete JSON"):
        evaluate(run_dir)
    with pytest.raises(UserError, match="does not exist"):
        evaluate(tmp_path / "nowhere")
    with pytest.raises(UserError, match="pass evaluation.run_dir="):
        evaluate_run(load([]))
    (run_dir / "config.yaml").unlink()
    with pytest.raises(UserError, match="no config.yaml"):
        evaluate(run_dir)


def test_an_evaluated_run_is_never_overwritten(tmp_path):
    run_dir = make_run(tmp_path, [], [entry(0, 0, [5, 6])])
    (run_dir / "accuracy.txt").write_text("keep me")
    result = run_cli("llmkit", "evaluate", str(run_dir))
    assert result.returncode == 2 and "never overwritten" in result.stderr and "Traceback" not in result.stderr
    assert (run_dir / "accuracy.txt").read_text() == "keep me"


def test_without_a_sandbox_mbxp_is_not_evaluated_and_marked_incomplete(tmp_path, monkeypatch):
    import evaluation.mbxp.runner as runner

    monkeypatch.setattr(runner, "sandbox_unavailable", lambda: "bubblewrap (bwrap) is not installed")
    frame = sample_frame(MIXTRAL_8X7B)
    entries = [entry(i, i, list(ids)) for i, ids in enumerate(frame["tok_ref_output"])]
    summary = evaluate(make_run(tmp_path, [], entries))
    assert summary["values"]["mbxp"] == 0.0  # never counted as passed
    # FAIL before INCOMPLETE: the sample's reference answers are far shorter than the benchmark's tokens per sample.
    assert summary["verdict"] == "FAIL"
    assert {row["name"]: row["status"] for row in summary["table"]}["mbxp"] == "incomplete"
    assert "bubblewrap" in summary["incomplete"]["mbxp"]
    assert all(v["not_evaluated"] == v["problems"] for v in summary["mbxp_by_language"].values())
    # Everything else scores the reference answers as the reference would: full marks.
    assert summary["values"]["gsm8k"] == 100.0 and summary["values"]["rouge1"] == 100.0


def test_an_evaluation_cut_short_is_named_and_its_file_kept(tmp_path):
    """accuracy.txt without the verdict in result.json (the evaluation's last write): the run is not called
    evaluated, and the file is never overwritten; moved aside, the run is evaluated."""
    frame = sample_frame(LLAMA3_1_405B)
    tokenizer = load_tokenizer(bundled_tokenizer_file(LLAMA3_1_405B.tokenizer))
    answer = tokenizer.encode("A short answer.") + [LLAMA3_1_405B.eos_id]
    entries = [entry(i, index, answer) for i, index in enumerate(frame.index)]
    run_dir = make_run(tmp_path, ["benchmark=llama3.1-405b", "model=tiny-llama3"], entries)
    evaluate(run_dir)
    with pytest.raises(UserError, match="this run is already evaluated"):
        evaluate(run_dir)
    result = json.loads((run_dir / "result.json").read_text())
    del result["accuracy"]
    (run_dir / "result.json").write_text(json.dumps(result))  # as if cut between accuracy.txt and the verdict
    with pytest.raises(UserError, match="no verdict .* move it aside and evaluate again"):
        evaluate(run_dir)
    (run_dir / "accuracy.txt").rename(tmp_path / "accuracy.txt.cut")
    evaluate(run_dir)
    assert "accuracy" in json.loads((run_dir / "result.json").read_text())
