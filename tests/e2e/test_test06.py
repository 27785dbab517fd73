"""TEST06: the verifier on planted defects, and defective SUTs caught end to end through the real loadgen."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from evaluation.test06 import verify_entries, verify_log
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B, Scenario
from llmkit.errors import UserError

MIXTRAL_EOS = frozenset(MIXTRAL_8X7B.eos_ids)
LLAMA_EOS = frozenset(LLAMA3_1_405B.eos_ids)


def entry(ids, first=None, count=None, dtype=np.int32) -> dict:
    data = np.asarray(ids, dtype=dtype)
    record = {"seq_id": 0, "qsl_idx": 0, "data": data.tobytes().hex().upper(),
              "token_count": len(ids) if count is None else count}
    if first is not None:
        record["token_data"] = np.asarray(first, dtype=dtype).tobytes().hex().upper()
    return record


def test_clean_logs_pass():
    result = verify_entries([entry([5, 6, 2], first=[5]), entry([7, 8], first=[7, 8])], MIXTRAL_EOS, True)
    assert result.passed and result.first_token and result.eos and result.length
    offline = verify_entries([entry([5, 6, 2])], MIXTRAL_EOS, False)
    assert offline.passed and offline.first_token is None
    assert offline.verify_text() == ("First token check pass: Skipped\nEOS check pass: True\n"
                                     "Sample length check pass: True\nTEST06 verification complete\n")


@pytest.mark.parametrize(
    ("entries", "eos", "streaming", "failed"),
    [
        ([entry([5, 6, 2, 2], first=[5])], MIXTRAL_EOS, True, "eos"),
        ([entry([5, 128009, 128009])], LLAMA_EOS, False, "eos"),  # the official script would miss this one
        ([entry([5, 128009, 128001])], LLAMA_EOS, False, "eos"),
        ([entry([5, 6, 7], first=[9])], MIXTRAL_EOS, True, "first_token"),
        ([entry([5, 6], first=[5, 6, 7])], MIXTRAL_EOS, True, "first_token"),
        ([entry([5, 6, 7])], MIXTRAL_EOS, True, "first_token"),  # no token_data in a streaming scenario
        ([entry([5, 6, 7], count=4)], MIXTRAL_EOS, False, "length"),
        ([entry([5, 6, 7], dtype=np.int64)], MIXTRAL_EOS, False, "length"),  # int64 read as int32: 6 ids, count 3
    ],
)
def test_each_planted_defect_is_caught(entries, eos, streaming, failed):
    result = verify_entries(entries, eos, streaming)
    assert not result.passed
    assert getattr(result, failed) is False
    assert "TEST06 verification failed" in result.verify_text()
    assert result.problems


def test_a_single_eos_and_a_lone_eos_answer_pass():
    assert verify_entries([entry([5, 2])], MIXTRAL_EOS, False).eos
    assert verify_entries([entry([2])], MIXTRAL_EOS, False).eos


def test_verify_writes_the_official_files_and_never_overwrites(tmp_path):
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps([entry([5, 6, 2], first=[5])]))
    out = tmp_path / "TEST06"
    assert verify_log(log, MIXTRAL_8X7B, Scenario.Server, out).passed
    assert (out / "verify_accuracy.txt").read_text().splitlines() == [
        "First token check pass: True", "EOS check pass: True", "Sample length check pass: True",
        "TEST06 verification complete"]
    assert (out / "accuracy" / "mlperf_log_accuracy.json").read_bytes() == log.read_bytes()
    with pytest.raises(UserError, match="never overwritten"):
        verify_log(log, MIXTRAL_8X7B, Scenario.Server, out)
    log.write_text("[{\"qsl")
    with pytest.raises(UserError, match="not complete JSON"):
        verify_log(log, MIXTRAL_8X7B, Scenario.Server, tmp_path / "again")


@pytest.mark.parametrize(
    ("defect", "benchmark", "scenario", "failed"),
    [
        ("none", "mixtral-8x7b", "Server", None),
        ("two_eos", "mixtral-8x7b", "Offline", "eos"),
        ("two_eos", "llama3.1-405b", "Interactive", "eos"),
        ("first_not_prefix", "mixtral-8x7b", "Server", "first_token"),
        ("count_mismatch", "mixtral-8x7b", "Offline", "length"),
        ("int64", "llama3.1-405b", "Offline", "length"),
    ],
)
def test_defective_suts_are_caught_through_real_loadgen(tmp_path, defect, benchmark, scenario, failed):
    from llmkit.benchmarks import get_benchmark

    run = tmp_path / "run"
    done = subprocess.run([sys.executable, str(REPO / "tests" / "e2e" / "defective_sut.py"), defect, benchmark, scenario,
                           str(run)], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    entries = json.loads((run / "mlperf_log_accuracy.json").read_text())
    assert 0 < len(entries) <= 100
    result = verify_log(run / "mlperf_log_accuracy.json", get_benchmark(benchmark), Scenario(scenario), run / "TEST06")
    if failed is None:
        assert result.passed
    else:
        assert not result.passed and getattr(result, failed) is False
