"""Where each file of a submission tree goes, in the v6.0 layout and the v5.1 one."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmkit.benchmarks import Benchmark, Scenario
from llmkit.config.schema import SubmissionLayout

SYSTEM_JSON_DIR = "systems"
MEASUREMENT_FILES = ("measurements.json", "user.conf", "README.md")
PERFORMANCE_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
ACCURACY_FILES = ("accuracy.txt", "mlperf_log_accuracy.json", "mlperf_log_summary.txt", "mlperf_log_detail.txt")


def results_name(benchmark: Benchmark, scenario: Scenario) -> str:
    """The benchmark's directory name: Interactive results are their own benchmark, run as Server."""
    return f"{benchmark.name}-interactive" if scenario is Scenario.Interactive else benchmark.name


def scenario_dir(scenario: Scenario) -> str:
    return "Server" if scenario is Scenario.Interactive else scenario.value


@dataclass(frozen=True)
class Entry:
    """One (system, benchmark, scenario) of a tree, with the directories its files live in."""

    root: Path  # <division>/<submitter>
    layout: SubmissionLayout
    system: str
    benchmark: str  # results name (with -interactive where it applies)
    scenario: str  # loadgen scenario directory name

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
        if self.layout is SubmissionLayout.v6_0:
            return self.results / "TEST06"
        return self._under("compliance") / "TEST06"

    @property
    def measurements(self) -> Path:
        return self.results if self.layout is SubmissionLayout.v6_0 else self._under("measurements")


def code_dir(root: Path, layout: SubmissionLayout) -> Path:
    return root / ("src" if layout is SubmissionLayout.v6_0 else "code")


def detect_layout(submitter_root: Path) -> SubmissionLayout:
    if (submitter_root / "compliance").is_dir() or (submitter_root / "measurements").is_dir():
        return SubmissionLayout.v5_1
    return SubmissionLayout.v6_0


def entries(submitter_root: Path) -> list[Entry]:
    layout = detect_layout(submitter_root)
    found = []
    for scenario_path in sorted((submitter_root / "results").glob("*/*/*")):
        if scenario_path.is_dir():
            system, benchmark, scenario = scenario_path.relative_to(submitter_root / "results").parts
            found.append(Entry(submitter_root, layout, system, benchmark, scenario))
    return found
