"""The config groups under conf/ and their options (one YAML file each)."""
from __future__ import annotations

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


# Hydra's own groups (conf/hydra/launcher/: the submitit launchers), chosen as hydra/<group>=; not a RunConfig group.
HYDRA_DIR = "hydra"


def group_names(conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(p.name for p in conf_dir.iterdir() if p.is_dir() and p.name != HYDRA_DIR)


def group_options(group: str, conf_dir: Path = CONF_DIR) -> list[str]:
    return sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
