"""The table of `llmkit` commands: each a `module:function` entry point with what it does, its arguments and an
example (what `llmkit COMMAND --help` prints)."""
from __future__ import annotations

from dataclasses import dataclass

OVERRIDES = "[overrides...]"


@dataclass(frozen=True)
class Command:
    name: str
    target: str  # module:function
    summary: str
    arguments: str
    example: str
    stage_argv: tuple[str, ...] = ()  # the stage's own sub-command words, put before the user's arguments
    path_key: str | None = None  # a bare path argument becomes `path_key=PATH`
    hydra: bool = True  # takes Hydra overrides (its --help lists the config groups)


COMMANDS = (
    Command("run", "sut.__main__:main", "one loadgen run of the SUT; writes a run directory (also under mpirun/srun, "
            "and -m sweeps)", OVERRIDES, "llmkit run scenario=server mode=accuracy"),
    Command("pipeline", "launch.pipeline:main", "the main job: per scenario a performance, an evaluated accuracy and a "
            "TEST06 run, then a checked submission tree", OVERRIDES, "llmkit pipeline benchmark=llama3.1-405b "
            "model=tiny-llama3"),
    Command("evaluate", "evaluation.__main__:main", "score an accuracy run's log: accuracy.txt and the verdict",
            f"RUN_DIR {OVERRIDES}", "llmkit evaluate runs/mixtral-8x7b/cpu/offline/20261130-101500-accuracy",
            stage_argv=("accuracy",), path_key="evaluation.run_dir"),
    Command("test06", "evaluation.__main__:main", "compliance TEST06: a run with its audit.config, then the "
            "verification", OVERRIDES, "llmkit test06 scenario=server", stage_argv=("test06",)),
    Command("test06 verify", "evaluation.__main__:main", "verify an existing TEST06 run directory, or a log (with "
            "benchmark= and scenario=)", f"PATH {OVERRIDES}", "llmkit test06 verify mlperf_log_accuracy.json "
            "benchmark=llama3.1-405b scenario=offline", stage_argv=("verify-test06",), path_key="evaluation.run_dir"),
    Command("package", "evaluation.__main__:main", "build the submission tree of submission.round from run "
            "directories, check it, write its report beside it", OVERRIDES,
            "llmkit package submission.pipeline_dir=runs/mixtral-8x7b/cpu/pipeline-20261130-101500",
            stage_argv=("package",)),
    Command("check", "evaluation.submission.check:main", "check a submission tree against its round's rules",
            "TREE [--round v6.0|v5.1]", "llmkit check submissions/20261130-101500", hydra=False),
    Command("calibrate", "quantize.__main__:main", "the benchmark's calibration set tokenized by the model's "
            "tokenizer, as a keyed artifact", OVERRIDES, "llmkit calibrate calibration.num_samples=64",
            stage_argv=("calibrate",)),
    Command("quantize", "quantize.__main__:main", "modelopt post-training quantization exported as a TensorRT-LLM "
            "checkpoint sharded for system.tp x system.pp", OVERRIDES, "llmkit quantize precision=fp8 system.tp=2"),
    Command("build", "build_engines.__main__:main", "the TensorRT-LLM engine of the checkpoint for the system (trtllm-build "
            "1.2.1), keyed with a manifest; build.dry_run=true prints the plan without a GPU", OVERRIDES,
            "llmkit build system=h100x8 benchmark=llama3.1-405b build.dry_run=true"),
    Command("plan", "build_engines.__main__:main", "what fits on each GPU and how fast it should run: memory, KV "
            "capacity, batch, tokens/s, TTFT/TPOT (a table, a plot, plan.json=PATH)", OVERRIDES,
            "llmkit plan system=h200x8 benchmark=llama3.1-405b scenario=server", stage_argv=("plan",)),
    Command("validate", "launch.validate:main", "compose every shipped config combination (or the one given) and "
            "report what is invalid", OVERRIDES, "llmkit validate benchmark=llama3.1-405b scenario=interactive"),
    Command("sample-data", "launch.sample_data:main", "write the sample dataset in the official schema",
            "BENCHMARK OUT.{pkl,parquet,jsonl} [--split validation|calibration]",
            "llmkit sample-data mixtral-8x7b sample.pkl", hydra=False),
    Command("bench", "launch.bench:main", "benchmarks that print their figures", "NAME [options]",
            "llmkit bench harness --skip soak", hydra=False),
    Command("clean", "launch.clean:main", "list the staging directories no process writes any more (left by a "
            "killed run) under the runs and artifacts roots; --yes removes them", "[--yes] [--all] [ROOT ...]",
            "llmkit clean --yes runs artifacts", hydra=False),
    Command("doctor", "launch.doctor:main", "check this machine for the chosen config (pins, loadgen, MPI, GPUs, "
            "TensorRT-LLM, NCCL, MBXP runtimes, disk, Slurm): a table with a fix per problem", OVERRIDES,
            "llmkit doctor system=h200x8 backend=trtllm"),
    Command("slurm", "launch.slurm:main", "write the sbatch script of a whole submission run (build, performance, "
            "accuracy, TEST06, package), with pyxis flags when containers.image is set", OVERRIDES,
            "llmkit slurm system=h200x8 slurm.partition=gpu"),
)
BY_NAME = {command.name: command for command in COMMANDS}
