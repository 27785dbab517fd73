from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B
from llmkit.config.schema import DatasetConfig, DatasetSource, DatasetSplit
from llmkit.data.datasets import load_dataset, md5sum, read_frame, validate_frame, write_frame
from llmkit.data.sample import sample_frame
from llmkit.errors import UserError
from llmkit.tokenizers import bundled_tokenizer_file, load_tokenizer

MBXP_LANGUAGES = {"cpp", "python", "php", "javascript", "ruby", "typescript"}


def file_config(path, **kwargs) -> DatasetConfig:
    return DatasetConfig(name="official", source=DatasetSource.file, path=str(path), **kwargs)


def test_mixtral_sample_has_the_official_schema():
    frame = sample_frame(MIXTRAL_8X7B)
    assert list(frame.columns) == list(MIXTRAL_8X7B.validation_columns)
    assert set(frame["dataset"]) == {"OpenOrca", "GSM8K", "MBXP"}
    mbxp = frame[frame["dataset"] == "MBXP"]
    assert {i.split("_", 1)[0] for i in mbxp["id"]} == MBXP_LANGUAGES
    assert all(list(s) == list(MIXTRAL_8X7B.stop_sequence_ids) for s in mbxp["tok_stop_sequence"])
    assert all(list(s) == [2] for s in frame[frame["dataset"] != "MBXP"]["tok_stop_sequence"])
    assert all(text.startswith("<s> [INST]") for text in frame["input"])
    assert (frame["tok_input_len"] == frame["tok_input"].map(len)).all()


def test_mixtral_sample_is_tokenized_with_the_real_tokenizer():
    tokenizer = load_tokenizer(bundled_tokenizer_file(MIXTRAL_8X7B.tokenizer))
    for row in sample_frame(MIXTRAL_8X7B).itertuples():
        assert row.tok_input[0] == MIXTRAL_8X7B.bos_id
        assert list(row.tok_input) == tokenizer.encode(row.input.removeprefix("<s> "), bos=True)
        assert tokenizer.decode(row.tok_ref_output).strip() == row.ref_output.strip()


def test_gsm8k_rows_carry_the_number():
    gsm8k = sample_frame(MIXTRAL_8X7B).query("dataset == 'GSM8K'")
    for row in gsm8k.itertuples():
        assert row.ref_output.rstrip(".").replace(",", "").endswith(row.gt_output)
        float(row.gt_output)


def test_llama_sample_has_each_metric_and_the_chat_template():
    frame = sample_frame(LLAMA3_1_405B)
    assert list(frame.columns) == list(LLAMA3_1_405B.validation_columns)
    assert set(frame["metric"]) == {"rouge", "niah_em", "qa_em"}
    tokenizer = load_tokenizer(bundled_tokenizer_file(LLAMA3_1_405B.tokenizer))
    for row in frame.itertuples():
        assert row.tok_input[0] == LLAMA3_1_405B.bos_id
        assert list(row.tok_input) == tokenizer.encode(row.input)


def test_sample_is_deterministic():
    """Built twice (its cache cleared between), the sample is the same frame."""
    from llmkit.data.sample import _frame

    first = sample_frame(MIXTRAL_8X7B)
    _frame.cache_clear()
    pd.testing.assert_frame_equal(first, sample_frame(MIXTRAL_8X7B))


def test_calibration_split_has_prompts_only():
    frame = sample_frame(MIXTRAL_8X7B, DatasetSplit.calibration)
    assert set(MIXTRAL_8X7B.calibration_columns) <= set(frame.columns)
    assert "ref_output" not in frame.columns


@pytest.mark.parametrize("suffix", [".pkl", ".parquet", ".jsonl"])
def test_files_round_trip(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    write_frame(sample_frame(MIXTRAL_8X7B), path)
    dataset = load_dataset(file_config(path, trusted=True), MIXTRAL_8X7B)
    assert len(dataset) == len(sample_frame(MIXTRAL_8X7B))
    assert all(p.dtype == np.int32 for p in dataset.prompts)
    mbxp_rows = [i for i, d in enumerate(dataset.frame["dataset"]) if d == "MBXP"]
    assert all(dataset.stop_sequences[i] == MIXTRAL_8X7B.stop_sequence_ids for i in mbxp_rows)
    assert all(dataset.stop_sequences[i] is None for i in range(len(dataset)) if i not in mbxp_rows)


def test_unknown_pickle_is_refused_unless_trusted_or_pinned(tmp_path):
    path = tmp_path / "data.pkl"
    write_frame(sample_frame(MIXTRAL_8X7B), path)
    with pytest.raises(UserError, match="unpickling runs code; pass dataset.md5="):
        load_dataset(file_config(path), MIXTRAL_8X7B)
    assert len(load_dataset(file_config(path, md5=md5sum(path)), MIXTRAL_8X7B)) > 0


def test_pickle_with_wrong_checksum_is_refused_before_unpickling(tmp_path):
    path = tmp_path / MIXTRAL_8X7B.validation.filename
    marker = tmp_path / "unpickled"

    class Bomb:
        def __reduce__(self):
            return (marker.touch, ())

    path.write_bytes(pickle.dumps(Bomb()))
    with pytest.raises(UserError, match=f"{MIXTRAL_8X7B.validation.md5} was expected"):
        load_dataset(file_config(path, trusted=True), MIXTRAL_8X7B)
    assert not marker.exists()


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "data.parquet"
    write_frame(sample_frame(MIXTRAL_8X7B).drop(columns=["tok_input", "gt_output"]), path)
    with pytest.raises(UserError, match="lacks the column\\(s\\) gt_output, tok_input"):
        load_dataset(file_config(path), MIXTRAL_8X7B)


def test_dataset_of_another_benchmark_is_refused(tmp_path):
    path = tmp_path / "llama.parquet"
    frame = sample_frame(LLAMA3_1_405B)
    write_frame(frame, path)
    with pytest.raises(UserError, match="lacks the column"):
        load_dataset(file_config(path), MIXTRAL_8X7B)
    # Even with the right columns, Llama 3 ids do not fit the Mixtral vocabulary.
    mixtral_columns = sample_frame(MIXTRAL_8X7B).iloc[: len(frame)].copy()
    mixtral_columns["tok_input"] = list(frame["tok_input"])
    with pytest.raises(UserError, match="outside mixtral-8x7b's vocabulary"):
        validate_frame(mixtral_columns, MIXTRAL_8X7B, DatasetSplit.validation, "mixed")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("missing.pkl", None, "does not exist"),
        ("data.csv", b"a,b\n", "use a .pkl, .parquet or .jsonl"),
        ("list.pkl", pickle.dumps([1, 2, 3]), "holds a list, not a pandas DataFrame"),
        ("truncated.parquet", b"PAR1\x00\x00", "cannot read"),
        ("broken.jsonl", b'{"input": "x"\n', "cannot read"),
    ],
)
def test_bad_files_are_clear_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=match):
        read_frame(path, trusted=True)


def test_max_samples_takes_a_prefix():
    config = DatasetConfig(name="sample", max_samples=3)
    assert len(load_dataset(config, MIXTRAL_8X7B)) == 3


@pytest.mark.parametrize("benchmark", [MIXTRAL_8X7B, LLAMA3_1_405B], ids=lambda b: b.name)
def test_calibration_file_with_text_only_is_tokenized_like_the_sample(tmp_path, benchmark):
    sample = sample_frame(benchmark, DatasetSplit.calibration)
    path = tmp_path / "calibration.jsonl"
    write_frame(sample[["input"]], path)
    config = DatasetConfig(name="official", source=DatasetSource.file, path=str(path), split=DatasetSplit.calibration)
    dataset = load_dataset(config, benchmark)
    assert [p.tolist() for p in dataset.prompts] == [list(ids) for ids in sample["tok_input"]]


@pytest.mark.parametrize("benchmark", [MIXTRAL_8X7B, LLAMA3_1_405B], ids=lambda b: b.name)
def test_sample_pickles_load_without_pyarrow_as_the_official_ones_do(tmp_path, benchmark):
    import subprocess
    import sys

    path = tmp_path / "sample.pkl"
    write_frame(sample_frame(benchmark), path)
    code = ("import sys; sys.modules['pyarrow'] = None\nimport pandas as pd\n"
            "frame = pd.read_pickle(sys.argv[1]); print(len(frame), frame['input'].dtype)")
    loaded = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-1000:]
    assert loaded.stdout.split() == [str(len(sample_frame(benchmark))), "object"]
