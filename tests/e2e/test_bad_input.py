"""Bad input, as a hostile user gives it, to every command: each case must end with exit 2, one line naming the
problem ("llmkit: error: ..."), no traceback, and nothing written or overwritten under the case's own directory."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli

# (case id, the command's words and overrides, a piece of the one line). {tmp} is the case's own directory, which
# holds `a-file` (a plain file), `log.json` (an accuracy log whose entries are not objects) and `truncated/` (a
# checkpoint whose weights file is cut short).
CASES = [
    # the config: groups, keys, types, values
    ("unknown group value", ["run", "benchmark=mixtrl"], "did you mean 'mixtral-8x7b'"),
    ("unknown scenario", ["run", "scenario=ofline"], "did you mean 'offline'"),
    ("unknown key", ["run", "system.tpp=4"], "unknown config key 'system.tpp'"),
    ("added key", ["run", "+system.extra=1"], "adds a key the schema does not have"),
    ("word for a number", ["run", "backend.max_batch_size=lots"], "could not be converted to Integer"),
    ("unknown mode", ["run", "mode=perf"], "expected one of [performance, accuracy]"),
    ("scenario the benchmark lacks", ["run", "scenario=interactive"], "has no Interactive scenario"),
    ("tokenizer mismatch", ["run", "model=tiny-llama3"], "use model=tiny-mixtral"),
    ("checkpoint without a path", ["run", "model=checkpoint"], "pass model.path="),
    ("official dataset without a path", ["run", "dataset=official"], "pass dataset.path="),
    ("max_new_tokens too big", ["run", "max_new_tokens=5000"], "max_new_tokens must lie between"),
    ("max_new_tokens zero", ["run", "max_new_tokens=0"], "max_new_tokens must lie between"),
    ("zero batch", ["run", "backend.max_batch_size=0"], "backend.max_batch_size must be at least 1"),
    ("knob of another backend", ["run", "backend.ttft_ms=20"], "is a setting of backend=replay"),
    ("infinite rate", ["run", "scenario.target_qps=inf"], "must be a finite number, got inf"),
    ("nan rate", ["run", "scenario.target_qps=nan"], "must be a finite number, got nan"),
    ("negative rate", ["run", "scenario.target_qps=-1"], "scenario.target_qps must be positive"),
    ("unholdable schedule", ["run", "scenario=server", "scenario.target_qps=1e7"], "or less, or a shorter"),
    ("nan delay", ["run", "backend=replay", "backend.ttft_ms=nan"], "backend.ttft_ms must be a finite number"),
    ("dp zero", ["run", "system.dp=0"], "system.dp must be at least 1"),
    ("submission run capped", ["run", "loadgen=submission"], "pass max_new_tokens=null"),
    ("output dir under a file", ["run", "max_new_tokens=4", "output_dir={tmp}/a-file/run"],
     "is a file, not a directory"),
    ("output dir is a file", ["run", "output_dir={tmp}/a-file"], "is a file"),
    ("truncated weights", ["run", "model.path={tmp}/truncated"], "is truncated"),
    ("bad sweep value stops before any job", ["run", "-m", "system.dp=1,0"], "the sweep's combination"),
    ("type error in a sweep", ["run", "-m", "scenario.target_qps=abc,2"], "could not be converted to Float"),
    ("unknown launcher", ["run", "-m", "hydra/launcher=slurmm", "scenario=offline"], "did you mean 'slurm'"),
    # the stages' own settings
    ("calibration max_length 1", ["calibrate", "calibration.max_length=1"], "use at least 16"),
    ("calibration output_dir", ["calibrate", "output_dir={tmp}/x"], "set artifacts_root= instead"),
    ("artifacts under a file", ["calibrate", "artifacts_root={tmp}/a-file/artifacts"], "is a file, not a directory"),
    ("autoquant budget below its formats", ["quantize", "precision=autoquant", "precision.effective_bits=4"],
     "raise precision.effective_bits to 8"),
    ("autoquant no formats", ["quantize", "precision=autoquant", "precision.search_formats=[]"],
     "needs precision.search_formats"),
    ("awq block size", ["quantize", "precision=w4a8_awq", "precision.awq_block_size=7"], "precision.awq_block_size"),
    ("evaluation memory 1 MB", ["evaluate", "{tmp}", "evaluation.memory_mb=1"], "use evaluation.memory_mb=1536"),
    ("evaluate a directory that is no run", ["evaluate", "{tmp}"], "is not an llmkit run directory"),
    ("evaluate with a run's key", ["evaluate", "{tmp}", "scenario=server"], "has no effect on llmkit evaluate"),
    ("verify a log whose entries are not objects", ["test06", "verify", "{tmp}/log.json", "benchmark=mixtral-8x7b",
                                                   "scenario=offline"], "entry 0 is a int, not an object"),
    ("verify nothing", ["test06", "verify", "{tmp}/missing.json", "benchmark=mixtral-8x7b", "scenario=offline"],
     "does not exist"),
    ("package nothing", ["package"], "nothing to package"),
    ("package a path submitter", ["package", "submission.submitter=../../x"], "is not a single folder name"),
    ("package a misspelled division", ["package", "submission.division=opne"], "expected one of [closed, open]"),
    ("package with a run's key", ["package", "scenario=server"], "has no effect on llmkit package"),
    ("build a CPU system", ["build", "system=cpu"], "engines are built for one; choose a GPU system"),
    ("plan kv fraction 1", ["plan", "system=h200x8", "plan.kv_cache_free_gpu_memory_fraction=1"],
     "strictly between 0 and 1"),
    ("slurm script under a file", ["slurm", "slurm.script={tmp}/a-file/x.sbatch"], "a-file is a file, not a directory"),
    ("slurm env not a pair", ["slurm", "slurm.env=[oops]"], "slurm.env holds NAME=VALUE pairs"),
    ("doctor with a bad group", ["doctor", "system=h200x9"], "did you mean 'h200x8'"),
    ("validate a bad value", ["validate", "system=h200x9"], "did you mean 'h200x8'"),
    ("sample data under a file", ["sample-data", "mixtral-8x7b", "{tmp}/a-file/x.pkl"],
     "a-file is a file, not a directory"),
    ("unknown command", ["rnu"], "did you mean 'run'"),
    ("unknown benchmark script", ["bench", "harnes"], "did you mean 'harness'"),
    ("clean a root that is not there", ["clean", "{tmp}/nothing"], "is not a directory"),
    ("check a tree that is not there", ["check", "{tmp}/nothing"], "{tmp}/nothing"),
]

# Every Hydra command refuses an unknown option of every config group, and an unknown key of every settings group,
# the same way: these are the commands a user types, not one shared code path taken on faith.
HYDRA_COMMANDS = ["run", "pipeline", "calibrate", "quantize", "build", "plan", "test06", "slurm", "doctor",
                  "validate"]
GROUPS = ["benchmark", "model", "dataset", "scenario", "system", "backend", "loadgen", "precision"]
SETTINGS = ["system", "backend", "loadgen", "scenario", "dataset", "model", "evaluation", "submission", "calibration",
            "quantize", "build", "build.flags", "plan", "slurm", "containers"]
CASES += [(f"{command}: unknown {group}", [command, f"{group}=zzz"], f"'zzz' is not a {group} config; choose {group}=")
          for command in HYDRA_COMMANDS for group in GROUPS]
CASES += [(f"{command}: unknown key under {settings}", [command, f"{settings}.zzz=1"],
           f"unknown config key '{settings}.zzz'")
          for command in ("run", "quantize", "build", "slurm", "doctor") for settings in SETTINGS]


@pytest.fixture
def place(tmp_path: Path, artifacts: Path) -> Path:
    import shutil

    (tmp_path / "a-file").write_text("a file where a directory is expected")
    (tmp_path / "log.json").write_text("[1, 2, 3]")
    truncated = tmp_path / "truncated"
    shutil.copytree(artifacts / "models" / "tiny-mixtral", truncated)
    weights = next(truncated.glob("*.safetensors"))
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size - 100)
    return tmp_path


def _tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("words, said", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_sentence_and_exit_2_with_nothing_written(words, said, place, artifacts, tmp_path):
    before = _tree(place)
    args = [w.replace("{tmp}", str(place)) for w in words]
    # The roots go to the commands that take them (not to evaluate, verify or package, which refuse them).
    takes_roots = args[0] in HYDRA_COMMANDS and args[:2] != ["test06", "verify"]
    extra = [f"artifacts_root={artifacts}", f"runs_root={place / 'runs'}"] if takes_roots and not any(
        a.startswith(("artifacts_root=", "runs_root=")) for a in args) else []
    result = run_cli("llmkit", *args, *extra, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert lines and lines[-1].startswith("llmkit: error: "), result.stderr[-2000:]
    assert said.replace("{tmp}", str(place)) in lines[-1], lines[-1]
    assert "Traceback" not in result.stderr
    assert _tree(place) == before  # nothing written, nothing overwritten (no run, no staging, no artifact)
