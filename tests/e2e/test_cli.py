from __future__ import annotations

import errno

import pandas as pd
import pytest

from conftest import python_module, run_cli
from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B


def test_help_lists_the_commands():
    from launch.cli import COMMANDS

    result = run_cli("llmkit", "--help")
    assert result.returncode == 0
    for command in COMMANDS:
        assert f"  {command.name} " in result.stdout


def test_every_command_answers_help_with_what_it_does_its_arguments_and_an_example():
    from launch.cli import COMMANDS

    for command in COMMANDS:
        result = run_cli("llmkit", *command.name.split(), "--help")
        assert result.returncode == 0, (command.name, result.stderr[-500:])
        assert f"llmkit {command.name}" in result.stdout and "example: llmkit" in result.stdout, command.name
        if command.hydra:
            assert "config groups" in result.stdout and "benchmark: llama3.1-405b, mixtral-8x7b" in result.stdout
    for name in ("harness", "hf", "evaluation", "trtllm-adapter"):
        result = run_cli("llmkit", "bench", name, "--help")
        assert result.returncode == 0 and f"example: llmkit bench {name}" in result.stdout


def test_a_bare_path_becomes_the_commands_path_override():
    from launch.cli import BY_NAME, resolve, stage_arguments

    command, args = resolve(["llmkit", "test06", "verify", "runs/x", "scenario=server"])
    assert command is BY_NAME["test06 verify"]
    assert stage_arguments(command, args) == ["verify-test06", "evaluation.run_dir=runs/x", "scenario=server"]
    command, args = resolve(["llmkit", "evaluate", "path=runs/y"])
    assert stage_arguments(command, args) == ["accuracy", "evaluation.run_dir=runs/y"]
    unknown = run_cli("llmkit", "evalute")
    assert unknown.returncode == 2 and "did you mean 'evaluate'" in unknown.stderr


def test_sample_data_writes_the_official_schema_and_never_overwrites(tmp_path):
    out = tmp_path / "sample.parquet"
    assert run_cli("llmkit", "sample-data", "llama3.1-405b", str(out)).returncode == 0
    assert list(pd.read_parquet(out).columns) == list(LLAMA3_1_405B.validation_columns)
    before = out.read_bytes()
    again = run_cli("llmkit", "sample-data", "mixtral-8x7b", str(out))
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert out.read_bytes() == before


def test_a_sample_pickle_is_refused_until_trusted_and_then_usable(tmp_path, quick):
    out = tmp_path / "mixtral.pkl"
    assert run_cli("llmkit", "sample-data", "mixtral-8x7b", str(out)).returncode == 0
    assert list(pd.read_pickle(out).columns) == list(MIXTRAL_8X7B.validation_columns)
    valid = run_cli("llmkit", "validate", "dataset=official", f"dataset.path={out}")
    assert valid.returncode == 0  # validate checks the config; loading is where the md5 rule bites
    run = run_cli("llmkit", "run", *quick, "dataset=official", f"dataset.path={out}", f"output_dir={tmp_path / 'r'}")
    assert run.returncode == 2 and "dataset.trusted=true" in run.stderr
    trusted = run_cli("llmkit", "run", *quick, "dataset=official", f"dataset.path={out}", "dataset.trusted=true",
                      f"output_dir={tmp_path / 'trusted'}")
    assert trusted.returncode == 0, trusted.stderr[-2000:]
    assert (tmp_path / "trusted" / "result.json").is_file()


def test_cli_bad_group_value_exits_2_without_traceback():
    result = python_module("sut", "benchmark=mixtrl")
    assert result.returncode == 2
    assert "did you mean 'mixtral-8x7b'" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_validate_one_config():
    bad = run_cli("llmkit", "validate", "scenario=interactive")
    assert bad.returncode == 2 and "no Interactive scenario" in bad.stdout
    good = run_cli("llmkit", "validate", "benchmark=llama3.1-405b", "model=tiny-llama3")
    assert good.returncode == 0 and "valid" in good.stdout


def test_cli_unknown_command():
    result = run_cli("llmkit", "runn")
    assert result.returncode == 2 and "did you mean 'run'" in result.stderr


def test_settings_a_command_would_ignore_are_refused(tmp_path):
    evaluate = run_cli("llmkit", "evaluate", str(tmp_path), "benchmark=llama3.1-405b")
    assert evaluate.returncode == 2 and "'benchmark=llama3.1-405b' has no effect on llmkit evaluate" in evaluate.stderr
    package = run_cli("llmkit", "package", f"submission.pipeline_dir={tmp_path}", "max_new_tokens=8")
    assert package.returncode == 2 and "has no effect on llmkit package" in package.stderr
    pipeline = run_cli("llmkit", "pipeline", "mode=accuracy", f"output_dir={tmp_path / 'p'}")
    assert pipeline.returncode == 2 and "runs Offline and Server in both modes itself" in pipeline.stderr
    assert not (tmp_path / "p").exists()


def test_clean_skips_a_default_root_that_is_not_there(tmp_path, monkeypatch, capsys):
    from launch import clean

    (tmp_path / "runs").mkdir()  # and no artifacts/
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["llmkit clean"])
    clean.main()
    assert capsys.readouterr().out == "no staging directories\n"


def test_clean_names_what_it_could_not_remove_and_fails(tmp_path, monkeypatch, capsys):
    from launch import clean

    old = tmp_path / "runs" / ".run1.staging-abcd1234"  # made by an older kit: removed with --all
    old.mkdir(parents=True)

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(clean.shutil, "rmtree", denied)
    monkeypatch.setattr("sys.argv", ["llmkit clean", "--yes", "--all", str(tmp_path / "runs")])
    with pytest.raises(SystemExit) as exited:
        clean.main()
    out, err = capsys.readouterr()
    assert exited.value.code == 1 and out.lstrip().startswith("not removed")
    assert err == (f"llmkit: error: could not remove {old} (Permission denied at {old}); fix that and run llmkit "
                   "clean --yes again\n")
    assert old.is_dir()


def test_a_pipeline_into_an_interrupted_one_suggests_resume(tmp_path):
    (tmp_path / "pipeline-overrides.json").write_text('{"overrides": []}\n')
    result = run_cli("llmkit", "pipeline", f"output_dir={tmp_path}", timeout=120)
    assert result.returncode == 2 and result.stderr.splitlines()[-1] == (
        f"llmkit: error: {tmp_path} holds an interrupted pipeline; add resume=true to go on, or choose another "
        "output_dir="), result.stderr[-2000:]
