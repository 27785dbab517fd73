from __future__ import annotations

import pandas as pd

from conftest import run_cli
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B


def test_help_lists_the_commands():
    result = run_cli("llmkit", "--help")
    assert result.returncode == 0
    for command in ("run", "pipeline", "validate", "sample-data"):
        assert command in result.stdout


def test_sample_data_writes_the_official_schema_and_never_overwrites(tmp_path):
    out = tmp_path / "sample.parquet"
    assert run_cli("llmkit", "sample-data", "llama3.1-405b", str(out)).returncode == 0
    assert list(pd.read_parquet(out).columns) == list(LLAMA3_1_405B.validation_columns)
    before = out.read_bytes()
    again = run_cli("llmkit", "sample-data", "mixtral-8x7b", str(out))
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert out.read_bytes() == before


def test_sample_pickle_is_usable_as_a_trusted_dataset(tmp_path, quick):
    out = tmp_path / "mixtral.pkl"
    assert run_cli("llmkit", "sample-data", "mixtral-8x7b", str(out)).returncode == 0
    assert list(pd.read_pickle(out).columns) == list(MIXTRAL_8X7B.validation_columns)
    refused = run_cli("llmkit", "validate", "dataset=official", f"dataset.path={out}")
    assert refused.returncode == 0  # validate checks the config; loading is where the md5 rule bites
    run = run_cli("llmkit", "run", *quick, "dataset=official", f"dataset.path={out}", f"output_dir={tmp_path / 'r'}")
    assert run.returncode == 2 and "dataset.trusted=true" in run.stderr
