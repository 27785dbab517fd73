"""Filesystem errors become one sentence that says what happened to which path, whether it was read or written."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest

from llmkit.errors import UserError, place_error
from llmkit.loadgen_log import read_detail_log
from llmkit.models.checkpoint import read_config_json


def test_permission_denied_is_not_called_a_failed_write():
    message = str(place_error(PermissionError(errno.EACCES, "Permission denied", "/ckpt/config.json")))
    assert message.startswith("cannot access /ckpt/config.json (permission denied); choose a path you can read")
    assert "cannot write" not in message
    assert str(place_error(OSError(errno.ENOSPC, "No space", "/out/x"))).startswith("cannot write /out/x")


def test_a_directory_made_where_a_file_is_names_the_file(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    with pytest.raises(FileExistsError) as raised:
        (a_file / "x").parent.mkdir(parents=True, exist_ok=True)
    assert str(place_error(raised.value)) == f"{a_file} is a file, not a directory; choose another path"
    assert place_error(FileExistsError(errno.EEXIST, "File exists", str(tmp_path))) is None  # not a file in the way


def test_an_unreadable_config_json_names_model_path(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text("{}")

    def denied(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(UserError, match=r"cannot read .*config\.json \(Permission denied\); .* model\.path="):
        read_config_json(tmp_path)


def test_a_config_json_that_is_not_text_is_named(tmp_path):
    (tmp_path / "config.json").write_bytes(b"\xff\xfe{not utf-8")
    with pytest.raises(UserError, match="config.json is not valid JSON .*restore the checkpoint's config.json"):
        read_config_json(tmp_path)


@pytest.mark.parametrize("record", ['{"value": 1}', "[1]", '{"key": [1], "value": 1}'])
def test_a_detail_log_record_that_is_no_keyed_object_names_its_line(tmp_path, record):
    log = tmp_path / "mlperf_log_detail.txt"
    log.write_text(f':::MLLOG {{"key": "loadgen_version", "value": "5.0"}}\n:::MLLOG {record}\n')
    with pytest.raises(UserError, match=f"{log} line 2 is not a :::MLLOG record"):
        read_detail_log(log)


@pytest.mark.parametrize("damaged", [b"garbage", b"not base64!! 1", bytes(range(200, 256))])
def test_a_damaged_tokenizer_model_is_named(tmp_path, damaged):
    from llmkit.tokenizers import load_tokenizer

    (tmp_path / "tokenizer.model").write_bytes(damaged)
    with pytest.raises(UserError, match=f"{tmp_path / 'tokenizer.model'} is not a valid .* tokenizer.model .*; copy"):
        load_tokenizer(tmp_path)
