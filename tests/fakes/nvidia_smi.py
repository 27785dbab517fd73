"""Test double of `nvidia-smi`, driven by environment variables; never used outside tests.

LLMKIT_FAKE_GPUS   the machine's GPUs: entries separated by ';', each `[<n>x ]<name>|<compute cap>|<memory MiB>`,
                   e.g. "8x NVIDIA H100 80GB HBM3|9.0|81559", or mixed:
                   "NVIDIA H100 80GB HBM3|9.0|81559;NVIDIA B200|10.0|183359".
                   Unset or empty: no GPU (the real tool then says "No devices were found" and exits 6).
LLMKIT_FAKE_CUDA   the CUDA version the driver reports (default 13.1).
LLMKIT_FAKE_DRIVER the driver version (default 590.48.01).

Supported: `--query-gpu=<fields> --format=csv[,noheader][,nounits]` (fields in any order), `-L`, `-q -x`, and a bare
call (a short summary). Like the real tool it ignores CUDA_VISIBLE_DEVICES. Standard library only, so that the fake
trtllm-build can import `fake_gpus` from here.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
from dataclasses import dataclass
from xml.sax.saxutils import escape

NO_DEVICES_EXIT = 6


@dataclass(frozen=True)
class FakeGpu:
    index: int
    name: str
    compute_cap: str  # "9.0"
    memory_mib: int

    @property
    def sm(self) -> int:
        major, minor = self.compute_cap.split(".")
        return int(major) * 10 + int(minor)

    @property
    def uuid(self) -> str:
        h = hashlib.sha256(f"{self.index}:{self.name}".encode()).hexdigest()
        return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"

    @property
    def bus_id(self) -> str:
        return f"00000000:{0x18 + 0x10 * self.index:02X}:00.0"


def fake_gpus(spec: str | None = None) -> list[FakeGpu]:
    """The GPUs LLMKIT_FAKE_GPUS (or `spec`) describes; a malformed entry is a test bug and raises ValueError."""
    spec = os.environ.get("LLMKIT_FAKE_GPUS", "") if spec is None else spec
    gpus: list[FakeGpu] = []
    for entry in filter(None, (part.strip() for part in spec.split(";"))):
        count = 1
        if match := re.match(r"(\d+)x\s+(.*)", entry):
            count, entry = int(match.group(1)), match.group(2)
        fields = [f.strip() for f in entry.split("|")]
        if len(fields) != 3 or not re.fullmatch(r"\d+\.\d+", fields[1]) or not fields[2].isdigit():
            raise ValueError(f"LLMKIT_FAKE_GPUS entry {entry!r} is not '<name>|<major.minor>|<memory MiB>'")
        for _ in range(count):
            gpus.append(FakeGpu(len(gpus), fields[0], fields[1], int(fields[2])))
    return gpus


def _versions() -> tuple[str, str]:
    return os.environ.get("LLMKIT_FAKE_DRIVER", "590.48.01"), os.environ.get("LLMKIT_FAKE_CUDA", "13.1")


FIELDS = ("index", "name", "gpu_name", "compute_cap", "memory.total", "driver_version", "uuid", "gpu_uuid",
          "pci.bus_id", "count")


def _field(gpu: FakeGpu, name: str, units: bool, count: int) -> str:
    values = {"index": gpu.index, "name": gpu.name, "gpu_name": gpu.name, "compute_cap": gpu.compute_cap,
              "memory.total": f"{gpu.memory_mib} MiB" if units else gpu.memory_mib, "driver_version": _versions()[0],
              "uuid": gpu.uuid, "gpu_uuid": gpu.uuid, "pci.bus_id": gpu.bus_id, "count": count}
    return str(values[name])


def query(gpus: list[FakeGpu], fields: list[str], fmt: str) -> int:
    options = fmt.split(",")
    if options[0] != "csv":
        print(f'"{fmt}" is not a valid format.', file=sys.stderr)
        return 2
    for name in fields:
        if name not in FIELDS:
            print(f'Field "{name}" is not a valid field to query.', file=sys.stderr)
            return 2
    units = "nounits" not in options
    if "noheader" not in options:
        print(", ".join(f + (" [MiB]" if f == "memory.total" and units else "") for f in fields))
    for gpu in gpus:
        print(", ".join(_field(gpu, f, units, len(gpus)) for f in fields))
    return 0


def xml(gpus: list[FakeGpu]) -> str:
    driver, cuda = _versions()
    lines = ['<?xml version="1.0" ?>', '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">', "<nvidia_smi_log>",
             f"\t<driver_version>{driver}</driver_version>", f"\t<cuda_version>{cuda}</cuda_version>",
             f"\t<attached_gpus>{len(gpus)}</attached_gpus>"]
    for gpu in gpus:
        lines += [f'\t<gpu id="{gpu.bus_id}">', f"\t\t<product_name>{escape(gpu.name)}</product_name>",
                  f"\t\t<uuid>{gpu.uuid}</uuid>", f"\t\t<minor_number>{gpu.index}</minor_number>",
                  f"\t\t<fb_memory_usage>\n\t\t\t<total>{gpu.memory_mib} MiB</total>\n\t\t</fb_memory_usage>",
                  "\t</gpu>"]
    return "\n".join(lines + ["</nvidia_smi_log>"])


def main(argv: list[str]) -> int:
    gpus = fake_gpus()
    if not gpus:
        print("No devices were found")
        return NO_DEVICES_EXIT
    options = dict(arg.split("=", 1) if "=" in arg else (arg, "") for arg in argv)
    if "--query-gpu" in options:
        if "--format" not in options:
            print("--format must be specified with --query-gpu", file=sys.stderr)
            return 2
        return query(gpus, [f.strip() for f in options["--query-gpu"].split(",")], options["--format"])
    if "-L" in options or "--list-gpus" in options:
        for gpu in gpus:
            print(f"GPU {gpu.index}: {gpu.name} (UUID: {gpu.uuid})")
        return 0
    if ("-q" in options or "--query" in options) and ("-x" in options or "--xml-format" in options):
        print(xml(gpus))
        return 0
    if argv:
        print(f"nvidia-smi test double: unsupported arguments {argv}", file=sys.stderr)
        return 2
    driver, cuda = _versions()
    print(f"Driver Version: {driver}    CUDA Version: {cuda}")
    for gpu in gpus:
        print(f"|   {gpu.index}  {gpu.name}  {gpu.bus_id}  {gpu.memory_mib}MiB |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
