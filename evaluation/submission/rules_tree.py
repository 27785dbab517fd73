"""The rules for a tree as a whole: what may sit at its root, a submitter's folders, systems, documentation, and
which scenarios a closed submission must hold.

The v5.1 checker (and v6.0's older script) abort on a file at the root other than *.md or *.pdf, and reject hidden
names, names with spaces, __pycache__, empty folders, broken links and files over 50 MB anywhere in a submitter's tree.
"""
from __future__ import annotations

from pathlib import Path

from evaluation.submission.layout import CALIBRATION_DOC, DOCUMENTATION_DIR, SYSTEM_JSON_DIR, Entry, detect_round
from evaluation.submission.rules_run import Finding, json_object
from evaluation.submission.system_json import system_findings
from llmkit.benchmarks import BENCHMARKS, Benchmark, Scenario
from llmkit.config.schema import Division
from llmkit.rounds import Round

DIVISIONS = tuple(d.value for d in Division)
ROOT_FILE_SUFFIXES = (".md", ".pdf")
IGNORED_ROOT_DIRS = (".git", ".github", "assets")
MAX_FILE_BYTES = 50 * 1024 * 1024


def root_findings(tree: Path) -> list[Finding]:
    findings = []
    for path in sorted(tree.iterdir()):
        if path.is_file() and path.suffix.lower() not in ROOT_FILE_SUFFIXES:
            findings.append(Finding("layout", str(path), "a file outside the division folders makes the checker "
                                                         "reject the whole tree; keep it beside the tree"))
        elif path.is_dir() and path.name not in (*DIVISIONS, "network", *IGNORED_ROOT_DIRS):
            findings.append(Finding("layout", str(path), f"is not a division folder ({', '.join(DIVISIONS)})"))
    for division in DIVISIONS:
        if (tree / division).is_dir():
            findings += [Finding("layout", str(p), "a file directly in a division folder fails that division")
                         for p in sorted((tree / division).iterdir()) if p.is_file()]
    return findings


def hygiene_findings(root: Path) -> list[Finding]:
    """Names and files the checker rejects anywhere under <division>/<submitter>."""
    findings = []
    for path in sorted(root.rglob("*")):
        name = path.name
        if (name.startswith(".") and name != ".gitkeep") or " " in name or name == "__pycache__":
            findings.append(Finding("layout", str(path), "hidden names, names with spaces and __pycache__ are refused"))
        elif path.is_symlink() and not path.exists():
            findings.append(Finding("layout", str(path), "is a broken link"))
        elif path.is_dir() and not any(path.iterdir()):
            findings.append(Finding("layout", str(path), "is an empty folder; remove it"))
        elif path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            findings.append(Finding("layout", str(path), "is over 50 MB, which the checker refuses"))
    return findings


def parse_entry(entry: Entry) -> tuple[Benchmark | None, Scenario | None, Finding | None]:
    """The benchmark and scenario of an entry's folders, or the finding that says why they are not known."""
    benchmark = BENCHMARKS.get(entry.benchmark)
    if benchmark is None:
        if entry.benchmark.endswith("-interactive") and entry.benchmark.removesuffix("-interactive") in BENCHMARKS:
            base = entry.benchmark.removesuffix("-interactive")
            return None, None, Finding("layout", str(entry.results), f"Interactive results belong in "
                                       f"results/{entry.system}/{base}/Interactive/, not {entry.benchmark}/"
                                       f"{entry.scenario}/; package again with this version of llmkit")
        return None, None, Finding("layout", str(entry.results), f"unknown benchmark folder '{entry.benchmark}'; "
                                   f"llmkit checks {', '.join(BENCHMARKS)}")
    scenario = next((s for s in Scenario if s.value == entry.scenario), None)
    if scenario is None or scenario not in benchmark.scenarios:
        offered = ", ".join(s.value for s in benchmark.scenarios)
        return benchmark, None, Finding("layout", str(entry.results), f"'{entry.scenario}' is not a scenario of "
                                        f"{benchmark.name}; its folders are {offered}")
    return benchmark, scenario, None


def scenario_findings(root: Path, entries: list[tuple[Entry, Benchmark, Scenario]]) -> list[Finding]:
    """A closed submission holds each required scenario of a benchmark it submits, and one of its optional set."""
    findings = []
    held: dict[tuple[str, str], set[Scenario]] = {}
    for entry, benchmark, scenario in entries:
        held.setdefault((entry.system, benchmark.name), set()).add(scenario)
    for (system, name), scenarios in sorted(held.items()):
        benchmark = BENCHMARKS[name]
        where = str(root / "results" / system / name)
        for needed in benchmark.required_scenarios:
            if needed not in scenarios:
                findings.append(Finding("scenario", where, f"the closed division needs {needed.value} for {name}"))
        if benchmark.one_of_scenarios and not scenarios & set(benchmark.one_of_scenarios):
            options = " or ".join(s.value for s in benchmark.one_of_scenarios)
            findings.append(Finding("scenario", where, f"the closed division needs {options} for {name}"))
    return findings


def submitter_findings(root: Path, round_: Round, division: Division, systems: set[str],
                       benchmarks: set[str]) -> list[Finding]:
    findings = hygiene_findings(root)
    if detect_round(root).separate_compliance_tree != round_.separate_compliance_tree:
        findings.append(Finding("layout", str(root), f"the tree is laid out as {detect_round(root).name.value}'s, "
                                                     f"but checked as {round_.name.value}'s; pass --round"))
    for system in sorted(systems):
        path = root / SYSTEM_JSON_DIR / f"{system}.json"
        if not path.is_file():
            findings.append(Finding("file", str(path), "required file is missing"))
            continue
        fields = json_object(path)
        if fields is None:
            findings.append(Finding("file", str(path), "is not a JSON object"))
            continue
        findings += [Finding("system", str(path), p) for p in system_findings(fields, division.value, root.name)]
    if division is Division.closed and not any(
            (place / CALIBRATION_DOC).is_file() for place in (root, root / DOCUMENTATION_DIR)):
        findings.append(Finding("file", str(root / DOCUMENTATION_DIR / CALIBRATION_DOC),
                                "the closed division needs a description of the calibration (llmkit package writes "
                                "one)"))
    code = root / round_.code_dir
    if not code.is_dir():
        findings.append(Finding("file", str(code), f"the {round_.code_dir}/ folder with the code is missing"))
    elif round_.separate_compliance_tree:
        findings += [Finding("file", str(code / name), f"v5.1 needs {round_.code_dir}/<benchmark>/ for each benchmark")
                     for name in sorted(benchmarks) if not (code / name).is_dir()]
    return findings
