"""What pip installs into an image (run by containers/install-kit.sh inside the build, with the venv's Python).

A base image pins its own Python packages (the TensorRT-LLM image: torch, transformers, tensorrt_llm, mpi4py,
nvidia-modelopt, ...). The venv sees them (--system-site-packages), and this plan keeps every one of them at the
version the base has: the kit's pins for those packages are dropped, and the base's versions become constraints, so
pip either installs the rest around them or fails saying which pin conflicts. It never replaces them.

    python pip_plan.py REQUIREMENTS CONSTRAINTS OUT_DIR [all | NAME...]

keeps all the base's packages (the default), or only those named (the others may then be shadowed in the venv by
the kit's pins: the escape hatch when an incidental package of the base conflicts with a kit pin). It writes OUT_DIR/requirements.txt, OUT_DIR/constraints.txt and OUT_DIR/base-packages.txt (the base's packages, with
the kit's pin beside each one where they differ), and prints a summary.
"""
from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_packages() -> dict[str, tuple[str, str]]:
    """Distributions outside the venv (the base image's), by canonical name: (name, version), first on sys.path."""
    prefix = Path(sys.prefix).resolve()
    found: dict[str, tuple[str, str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        if Path(str(dist.locate_file(""))).resolve().is_relative_to(prefix):
            continue
        found.setdefault(canonical(name), (name, dist.version))
    return found


def pins(path: Path) -> list[tuple[str, str]]:
    """(canonical name, line) of each requirement line of a pinned requirements or constraints file."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append((canonical(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0]), line))
    return lines


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: pip_plan.py REQUIREMENTS CONSTRAINTS OUT_DIR [all | NAME...]", file=sys.stderr)
        return 2
    requirements, constraints, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    base = base_packages()
    keep = {canonical(name) for word in argv[3:] for name in word.split()}
    if keep and "all" not in keep:
        base = {name: found for name, found in base.items() if name in keep}
    kit = dict(pins(constraints))
    (out / "requirements.txt").write_text(
        "".join(f"{line}\n" for name, line in pins(requirements) if name not in base))
    kept = [f"{name}=={version}" for name, version in sorted(base.values(), key=lambda nv: canonical(nv[0]))
            if re.fullmatch(r"[0-9][0-9A-Za-z.+!_-]*", version)]
    (out / "constraints.txt").write_text(
        "".join(f"{line}\n" for name, line in kit.items() if name not in base) + "".join(f"{k}\n" for k in kept))
    record = []
    for key, (name, version) in sorted(base.items()):
        pinned = kit.get(key, "")
        differs = "==" in pinned and pinned.split("==", 1)[1] != version
        record.append(f"{name}=={version}" + (f"  # the kit pins {pinned}" if differs else ""))
    (out / "base-packages.txt").write_text("".join(f"{line}\n" for line in record))
    differing = [line for line in record if "# the kit pins" in line]
    print(f"pip plan: {len(base)} packages of the base image kept as they are "
          f"({len(differing)} at a version other than the kit's pin), "
          f"{sum(1 for name, _ in pins(requirements) if name not in base)} of the kit's requirements to install")
    for line in differing:
        print(f"  kept {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
