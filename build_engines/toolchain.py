"""What an engine is built with and for: the TensorRT-LLM and TensorRT versions, the GPU and its SM, the CUDA version.

A TensorRT engine loads only on the TensorRT version and GPU architecture it was built with, and its config.json
records neither, so the kit records them itself (in the engine's key and manifest). They are read here:
- TensorRT-LLM and TensorRT: the installed distributions' metadata (nothing is imported);
- the GPUs: `nvidia-smi --query-gpu=... --format=csv,noheader,nounits` (name, compute capability, memory);
- CUDA: the driver's CUDA version from `nvidia-smi -q -x` (its XML report).
A dry run, which needs none of them, plans for the pinned release instead (EXPECTED).
"""
from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from dataclasses import asdict, dataclass
from importlib import metadata

from llmkit.errors import UserError
from llmkit.gpus import GpuSpec

# The release the engine path is written against (shared/TRTLLM.md section 1): the last one with compiled engines.
TRTLLM_VERSION = "1.2.1"
TENSORRT_VERSION = "10.14.1"
CUDA_VERSION = "13.1"
CONTAINER = f"nvcr.io/nvidia/tensorrt-llm/release:{TRTLLM_VERSION}"
TRTLLM_BUILD = "trtllm-build"
TENSORRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu13", "tensorrt_cu13", "tensorrt-cu12", "tensorrt_cu12")
GPU_QUERY = "name,compute_cap,memory.total,driver_version"


@dataclass(frozen=True)
class Toolchain:
    trtllm_version: str
    tensorrt_version: str
    cuda_version: str
    gpu_name: str
    sm: int  # compute capability as an integer: 90 for 9.0, 100 for 10.0
    gpus: int  # visible GPUs
    expected: bool = False  # planned for the pinned release (dry run), not probed

    def key(self) -> dict:
        """What decides whether an engine loads: the versions, the SM and CUDA (not the GPU's marketing name)."""
        return {"trtllm_version": self.trtllm_version, "tensorrt_version": self.tensorrt_version,
                "cuda_version": self.cuda_version, "sm": self.sm}

    def describe(self) -> dict:
        return asdict(self)


def expected(gpu: GpuSpec, gpus: int) -> Toolchain:
    """The pinned release on the system's GPU: what a dry run plans for."""
    return Toolchain(TRTLLM_VERSION, TENSORRT_VERSION, CUDA_VERSION, gpu.name, gpu.sm, gpus, expected=True)


def installed_versions() -> tuple[str | None, str | None]:
    """The installed TensorRT-LLM and TensorRT versions (distribution metadata; None where absent)."""
    return _version(("tensorrt_llm", "tensorrt-llm")), _version(TENSORRT_DISTRIBUTIONS)


def _version(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


DRY_RUN_HINT = ", or pass build.dry_run=true to see the plan"


def _smi(*args: str, who: str = "llmkit build", hint: str = DRY_RUN_HINT) -> str:
    try:
        done = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise UserError(f"{who} needs an NVIDIA GPU and nvidia-smi is not on PATH; run it on a GPU node in "
                        f"the TensorRT-LLM container ({CONTAINER}){hint}") from None
    if done.returncode != 0:
        lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
        said = lines[0] if lines else f"exit status {done.returncode}"
        raise UserError(f"{who} needs an NVIDIA GPU and nvidia-smi finds none ({said}); run it on a GPU node{hint}")
    return done.stdout


@dataclass(frozen=True)
class NodeGpus:
    """This node's GPUs as nvidia-smi reports them (it ignores CUDA_VISIBLE_DEVICES): one model per node."""

    name: str
    sm: int
    count: int
    memory_mib: int  # memory.total of the smallest (0: not reported)
    driver: str


def node_gpus(who: str, hint: str = "") -> NodeGpus:
    """This node's GPUs from nvidia-smi; one sentence (naming `who` needs them) where there are none or mixed models."""
    rows = [line.split(", ") for line in _smi(f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits", who=who,
                                              hint=hint).splitlines() if line.strip()]
    if not rows:
        raise UserError(f"{who} needs an NVIDIA GPU and nvidia-smi lists none; run it on a GPU node{hint}")
    names = {row[0] for row in rows}
    if len(names) > 1:
        raise UserError(f"this node mixes GPU models ({', '.join(sorted(names))}); make one model visible with "
                        "CUDA_VISIBLE_DEVICES")
    memory = [int(row[2]) for row in rows if row[2].strip().isdigit()]  # "[N/A]" under MIG
    return NodeGpus(rows[0][0], _compute_capability(rows[0][1]), len(rows), min(memory, default=0), rows[0][3].strip())


def cuda_version(who: str, hint: str = "") -> str:
    """The CUDA version the driver supports (nvidia-smi's XML report)."""
    report = ElementTree.fromstring(_smi("-q", "-x", who=who, hint=hint))
    return (report.findtext("cuda_version") or "").strip()


def _gpus(who: str, hint: str) -> tuple[str, int, int]:
    """(the GPU model, its SM, how many) from nvidia-smi; one model per node."""
    gpus = node_gpus(who, hint)
    return gpus.name, gpus.sm, gpus.count


def serving() -> Toolchain:
    """What a serving backend checks an engine against: the installed TensorRT-LLM and TensorRT, this node's GPU."""
    who = "backend=trtllm"
    trtllm, tensorrt = installed_versions()
    if trtllm is None or tensorrt is None:
        missing = "tensorrt_llm" if trtllm is None else "tensorrt"
        raise UserError(f"{who} needs TensorRT-LLM {TRTLLM_VERSION} and this Python has no {missing} distribution; "
                        f"run llmkit in the TensorRT-LLM container ({CONTAINER})")
    name, sm, count = _gpus(who, "")
    return Toolchain(trtllm, tensorrt, "", name, sm, count)


def _compute_capability(text: str) -> int:
    major, _, minor = text.strip().partition(".")
    return int(major) * 10 + int(minor or 0)


def probe() -> Toolchain:
    """The toolchain of this machine; one sentence naming what is missing when it cannot build engines."""
    if shutil.which(TRTLLM_BUILD) is None:
        raise UserError(f"llmkit build needs TensorRT-LLM {TRTLLM_VERSION} and {TRTLLM_BUILD} is not on PATH; run it "
                        f"in the TensorRT-LLM container ({CONTAINER}), or pass build.dry_run=true to see the plan")
    trtllm, tensorrt = installed_versions()
    if trtllm is None or tensorrt is None:
        missing = "tensorrt_llm" if trtllm is None else "tensorrt"
        raise UserError(f"{TRTLLM_BUILD} is on PATH but this Python has no {missing} distribution, so the engine's "
                        f"versions cannot be recorded; run llmkit in the TensorRT-LLM container ({CONTAINER})")
    name, sm, count = _gpus("llmkit build", DRY_RUN_HINT)
    return Toolchain(trtllm, tensorrt, cuda_version("llmkit build", DRY_RUN_HINT), name, sm, count)
