"""Where each file of a submission tree goes, in the v6.0 layout and the v5.1 one (as each round's checker reads it).

v6.0: everything of a scenario under results/<system>/<benchmark>/<scenario>/ (TEST06/, measurements.json,
user.conf, README.md), the source under src/. v5.1: TEST06 under compliance/, and measurements/ holds
<system>_<implementation>_<scenario>.json with user.conf and README.md; the source under code/<benchmark>/.
Interactive is a scenario directory of llama3.1-405b in both (its loadgen run is a Server run under another name).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmkit.rounds import V5_1, V6_0, Round, get_round

SYSTEM_JSON_DIR = "systems"
DOCUMENTATION_DIR = "documentation"
CALIBRATION_DOC = "calibration.md"
IMPLEMENTATION = "llmkit"
MEASUREMENT_SIDE_FILES = ("user.conf", "README.md")
PERFORMANCE_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
ACCURACY_FILES = ("accuracy.txt", "mlperf_log_accuracy.json", "mlperf_log_summary.txt", "mlperf_log_detail.txt")
# Files loadgen or the checkers allow beside the required ones (the v5.1 checker compares file lists exactly).
OPTIONAL_LOG_FILES = ("mlperf_log_accuracy.json", "mlperf_log_trace.json", "results.json", ".gitkeep")


@dataclass(frozen=True)
class Entry:
    """One (system, benchmark, scenario) of a tree, with the directories its files live in."""

    root: Path  # <division>/<submitter>
    round: Round
    system: str
    benchmark: str  # the benchmark's directory name
    scenario: str  # the scenario's directory name

    def _under(self, tree: str) -> Path:
        return self.root / tree / self.system / self.benchmark / self.scenario

    @property
    def results(self) -> Path:
        return self._under("results")

    @property
    def performance(self) -> Path:
        return self.results / "performance" / "run_1"

    @property
    def accuracy(self) -> Path:
        return self.results / "accuracy"

    @property
    def test06(self) -> Path:
        return (self._under("compliance") if self.round.separate_compliance_tree else self.results) / "TEST06"

    @property
    def measurements(self) -> Path:
        return self._under("measurements") if self.round.separate_compliance_tree else self.results

    def measurements_name(self) -> str:
        """The name packaging gives the measurements file."""
        if self.round.separate_compliance_tree:
            return f"{self.system}_{IMPLEMENTATION}_{self.scenario}.json"
        return "measurements.json"

    def find_measurements(self) -> Path | None:
        """The measurements file as the round's checker finds it, or None."""
        if not self.round.separate_compliance_tree:
            path = self.measurements / "measurements.json"
            return path if path.is_file() else None
        # v5.1: the first <system>*_<scenario>.json, else the first <system>*.json.
        names = sorted(p.name for p in self.measurements.glob("*.json")) if self.measurements.is_dir() else []
        for wanted in (f"_{self.scenario}.json", ".json"):
            for name in names:
                if name.startswith(self.system) and name.endswith(wanted):
                    return self.measurements / name
        return None


def code_dir(root: Path, round_: Round) -> Path:
    return root / round_.code_dir


def detect_round(submitter_root: Path) -> Round:
    """The round whose layout the tree has: v5.1 keeps compliance/ or measurements/ beside results/."""
    if (submitter_root / "compliance").is_dir() or (submitter_root / "measurements").is_dir():
        return get_round(V5_1)
    return get_round(V6_0)


def entries(submitter_root: Path, round_: Round) -> list[Entry]:
    found = []
    for scenario_path in sorted((submitter_root / "results").glob("*/*/*")):
        if scenario_path.is_dir():
            system, benchmark, scenario = scenario_path.relative_to(submitter_root / "results").parts
            found.append(Entry(submitter_root, round_, system, benchmark, scenario))
    return found
