"""`llmkit check TREE [--round v6.0|v5.1]`: validate a submission tree and report every problem at once.

The rules are the round's submission checker's (see rules_tree and rules_run). Each finding has a kind, so a smoke
run's tree can be told apart from a broken one: a smoke run must have `duration` and `count` findings (and `accuracy`
ones with a random-weight model), and nothing else.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from evaluation.submission.layout import detect_round, entries
from evaluation.submission.rules_run import EntryCheck, Finding
from evaluation.submission.rules_tree import root_findings, parse_entry, scenario_findings, submitter_findings
from llmkit.config.schema import Division
from llmkit.errors import UserError, exit_on_user_error
from llmkit.rounds import Round, SubmissionRound, get_round

__all__ = ["Finding", "check_submitter", "check_tree", "findings_json", "print_findings"]


def check_submitter(root: Path, round_: Round | None = None) -> list[Finding]:
    """Every finding for <division>/<submitter>; the round is the tree's layout's unless given."""
    round_ = round_ or detect_round(root)
    division = Division(root.parent.name)
    findings: list[Finding] = []
    found = entries(root, round_)
    if not found:
        findings.append(Finding("file", str(root / "results"), "no results/<system>/<benchmark>/<scenario> folders"))
    known = []
    for entry in found:
        benchmark, scenario, problem = parse_entry(entry)
        if problem is not None:
            findings.append(problem)
            continue
        known.append((entry, benchmark, scenario))
        EntryCheck(entry, benchmark, scenario, division, findings).run()
    findings += submitter_findings(root, round_, division, {e.system for e in found},
                                   {b.name for _, b, _ in known})
    if division is Division.closed:
        findings += scenario_findings(root, known)
    return findings


def check_tree(tree: Path, round_: Round | None = None) -> list[Finding]:
    if not tree.is_dir():
        raise UserError(f"{tree} is not a directory; pass the submission tree (the folder holding closed/ or open/)")
    roots = [p for division in Division for p in sorted((tree / division.value).glob("*")) if p.is_dir()]
    if not roots:
        raise UserError(f"{tree} has no closed/<submitter> or open/<submitter> folder; is it a submission tree?")
    return root_findings(tree) + [f for root in roots for f in check_submitter(root, round_)]


def print_findings(findings: list[Finding], tree: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, width=max(120, Console(stderr=True).width))
    if not findings:
        console.print(f"[green]{tree}: no findings, the tree is submittable[/green]")
        return
    table = Table(title=f"llmkit check: {len(findings)} finding(s) in {tree}")
    for column in ("kind", "where", "finding"):
        table.add_column(column, overflow="fold")
    for finding in findings:
        where = finding.where
        table.add_row(finding.kind, str(Path(where).relative_to(tree)) if Path(where).is_relative_to(tree) else where,
                      finding.message)
    console.print(table)


def findings_json(findings: list[Finding]) -> list[dict]:
    return [asdict(f) for f in findings]


@exit_on_user_error
def main() -> None:
    from llmkit.log import setup_logging

    setup_logging()
    parser = argparse.ArgumentParser(prog="llmkit check", description="Check a submission tree against the rules "
                                     "of its MLPerf round and report every problem at once (exit 1 when any).",
                                     epilog="example: llmkit check submissions/20261130-101500 --round v6.0")
    parser.add_argument("tree", type=Path, help="the folder holding closed/ or open/")
    parser.add_argument("--round", choices=[r.value for r in SubmissionRound],
                        help="the round to check against (default: the one whose layout the tree has)")
    args = parser.parse_args(sys.argv[1:])
    findings = check_tree(args.tree, get_round(args.round) if args.round else None)
    print_findings(findings, args.tree)
    raise SystemExit(1 if findings else 0)
