"""The GPUs the kit plans for: what each holds and how fast it computes, reads memory and talks over NVLink.

Stated once, each with its sources. Throughputs are DENSE tensor-core peaks (NVIDIA's datasheets print the 2:4-sparse
figure, twice these). Memory is what the driver reports (nvidia-smi memory.total), a little under the marketed
capacity; bandwidths are in bytes per second, NVLink per GPU and per direction (half the marketed bidirectional
total). The planner (llmkit/planner) and the engine toolchain check (build_engines/toolchain.py) read them.
"""
from __future__ import annotations

from dataclasses import dataclass

from llmkit.errors import UserError, did_you_mean

MIB = 2**20
TERA = 1e12

# The tensor-core formats a GEMM can run in (PlanRequest.compute).
COMPUTE_FORMATS = ("bf16", "fp8", "int8", "fp4")


@dataclass(frozen=True)
class GpuSpec:
    name: str  # the registry key (system.gpu)
    memory_bytes: int  # nvidia-smi memory.total
    memory_bandwidth: float  # HBM, bytes/s
    bf16_flops: float  # dense tensor throughput, FLOP/s (bf16 and fp16 alike)
    fp8_flops: float
    int8_flops: float  # OP/s
    fp4_flops: float  # 0 where the tensor cores have no FP4
    nvlink_bandwidth: float  # bytes/s per GPU per direction
    sm: int  # compute capability as an integer: 90 for 9.0, 100 for 10.0
    smi_names: tuple[str, ...]  # what nvidia-smi --query-gpu=name reports
    sources: tuple[str, ...]

    def flops(self, compute: str) -> float:
        """The dense peak of one compute format; UserError when this GPU's tensor cores lack it."""
        if compute not in COMPUTE_FORMATS:
            raise UserError(f"unknown compute format '{compute}'{did_you_mean(compute, COMPUTE_FORMATS)}; "
                            f"known: {', '.join(COMPUTE_FORMATS)}")
        peak = getattr(self, f"{compute}_flops")
        if peak <= 0:
            raise UserError(f"{self.name} tensor cores have no {compute}; choose a precision whose GEMMs run in "
                            f"{', '.join(f for f in COMPUTE_FORMATS if getattr(self, f'{f}_flops') > 0)}")
        return peak


H100_SXM_80GB = GpuSpec(
    name="H100-SXM-80GB",
    memory_bytes=81559 * MIB,
    memory_bandwidth=3.35 * TERA,
    bf16_flops=989.4 * TERA, fp8_flops=1978.9 * TERA, int8_flops=1978.9 * TERA, fp4_flops=0.0,
    nvlink_bandwidth=450e9,  # NVLink 4: 18 links, 900 GB/s bidirectional
    sm=90,
    smi_names=("NVIDIA H100 80GB HBM3",),
    sources=(
        "NVIDIA H100 Tensor Core GPU datasheet (H100 SXM column; sparse figures halved), "
        "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
        "NVIDIA H100 Tensor Core GPU Architecture whitepaper (peak dense throughputs per format)",
    ),
)

H200_SXM_141GB = GpuSpec(
    name="H200-SXM-141GB",
    memory_bytes=143771 * MIB,
    memory_bandwidth=4.8 * TERA,
    bf16_flops=989.4 * TERA, fp8_flops=1978.9 * TERA, int8_flops=1978.9 * TERA, fp4_flops=0.0,
    nvlink_bandwidth=450e9,  # NVLink 4: 900 GB/s bidirectional
    sm=90,
    smi_names=("NVIDIA H200",),
    sources=(
        "NVIDIA H200 Tensor Core GPU datasheet (H200 SXM column; the H100's compute with 141 GB HBM3e at 4.8 TB/s), "
        "https://www.nvidia.com/en-us/data-center/h200/",
    ),
)

B200_SXM_180GB = GpuSpec(
    name="B200-SXM-180GB",
    memory_bytes=183359 * MIB,
    memory_bandwidth=8.0 * TERA,
    bf16_flops=2250 * TERA, fp8_flops=4500 * TERA, int8_flops=4500 * TERA, fp4_flops=9000 * TERA,
    nvlink_bandwidth=900e9,  # NVLink 5: 18 links, 1.8 TB/s bidirectional
    sm=100,
    smi_names=("NVIDIA B200",),
    sources=(
        "NVIDIA HGX B200 / DGX B200 datasheets (1,440 GB HBM3e and 64 TB/s per 8 GPUs; dense 2.25/4.5/9 PFLOPS "
        "BF16/FP8/FP4, sparse halved), https://www.nvidia.com/en-us/data-center/hgx/",
        "NVIDIA Blackwell Architecture Technical Brief (NVLink 5: 1.8 TB/s per GPU)",
    ),
)

GB200 = GpuSpec(
    name="GB200",
    memory_bytes=189471 * MIB,
    memory_bandwidth=8.0 * TERA,
    bf16_flops=2500 * TERA, fp8_flops=5000 * TERA, int8_flops=5000 * TERA, fp4_flops=10000 * TERA,
    nvlink_bandwidth=900e9,  # NVLink 5: 1.8 TB/s bidirectional, all 72 GPUs on one NVLink Switch domain
    sm=100,
    smi_names=("NVIDIA GB200",),
    sources=(
        "NVIDIA GB200 NVL72 datasheet, divided by its 72 GPUs (13.4 TB HBM3e at 576 TB/s; sparse 1,440/720/360 "
        "PFLOPS FP4/FP8/BF16, halved for dense; 130 TB/s NVLink)",
        "https://www.nvidia.com/en-us/data-center/gb200-nvl72/",
    ),
)

GPUS: dict[str, GpuSpec] = {g.name: g for g in (H100_SXM_80GB, H200_SXM_141GB, B200_SXM_180GB, GB200)}


def get_gpu(name: str) -> GpuSpec:
    try:
        return GPUS[name]
    except KeyError:
        raise UserError(f"unknown GPU '{name}'{did_you_mean(name, GPUS)}; known: {', '.join(GPUS)}") from None


def gpu_for_smi_name(name: str) -> GpuSpec | None:
    """The GPU nvidia-smi names `name` (exactly, ignoring case and surrounding spaces), or None."""
    wanted = name.strip().lower()
    for gpu in GPUS.values():
        if any(wanted == smi.lower() for smi in gpu.smi_names):
            return gpu
    return None
