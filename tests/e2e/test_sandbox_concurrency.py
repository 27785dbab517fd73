"""Evaluations that share a machine: two at once score as each alone, each holds sandbox uids no other holds, and a
program killed by a signal from outside the evaluation is run again, then reported (the metric INCOMPLETE), never
scored as a plain failure; our own limits are never taken for such a signal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluation.mbxp.identities import UIDS, lease_uids
from evaluation.mbxp.linux import live_pids_of_uid
from evaluation.mbxp.runner import limits_of, run_problems
from evaluation.metrics import Prediction, mixtral_mbxp
from evaluation.mbxp.sandbox import outside_signal
from llmkit.config.schema import EvaluationConfig
from llmkit.data.sample_content import MBXP

REPO = Path(__file__).resolve().parents[2]
PYTHON_TEST = "def check(candidate):\n    pass"
EVALUATE = """
import json, sys
from evaluation.mbxp.runner import limits_of, run_problems
from llmkit.config.schema import EvaluationConfig
problems = [tuple(p) for p in json.loads(open(sys.argv[1]).read())]
results = run_problems(problems, limits_of(EvaluationConfig(timeout_s=20, compile_timeout_s=60)), workers=2,
                       progress=False)
print(json.dumps([[r.key, r.status, r.passed] for r in results]))
"""


def _problems() -> list[tuple[str, str, str, str]]:
    """The sample's canonical solutions (the quick languages three times), and a wrong one in each language."""
    quick = [r for r in MBXP if r.language not in ("cpp", "typescript")]
    slow = [r for r in MBXP if r.language in ("cpp", "typescript")]
    problems = [(r.language, r.entry_point, r.solution, r.test) for r in slow + quick * 3]
    by_language: dict[str, list] = {}
    for record in MBXP:
        by_language.setdefault(record.language, []).append(record)
    # The other problem's solution: the entry point is missing.
    problems += [(lang, a.entry_point, b.solution, a.test) for lang, (a, b, *_) in by_language.items()]
    return problems


def _evaluate(path: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EVALUATE, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _results(process: subprocess.Popen) -> list:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_evaluations_at_once_score_as_each_alone(tmp_path):
    path = tmp_path / "problems.json"
    problems = _problems()
    path.write_text(json.dumps(problems))
    alone = _results(_evaluate(path))
    together = [_evaluate(path), _evaluate(path)]
    first, second = (_results(process) for process in together)
    assert first == alone and second == alone
    # And alone means what it should: canonical solutions pass, the wrong ones fail.
    assert [passed for _, _, passed in alone] == [True] * (len(problems) - 6) + [False] * 6


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",  # under CI=true: run, never skip
                    reason="sandbox uids are used as root only (CI runs this as root)")
def test_evaluations_hold_uids_no_other_evaluation_holds():
    with lease_uids(3) as first, lease_uids(3) as second:
        assert len(first) == len(second) == 3 and not set(first) & set(second)
        assert set(first) | set(second) <= set(UIDS)
    with lease_uids(3) as again:
        assert again == first  # released with the evaluation


class Killer:
    """Kills sandboxed `python3 program.py` processes from outside the evaluation: the first `times` it sees."""

    def __init__(self, sig: int, times: int):
        self.sig, self.times, self.killed = sig, times, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hunt, daemon=True)
        self._thread.start()

    def _victims(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and (entry / "cmdline").read_bytes() == b"python3\0program.py\0" and (
                        os.geteuid() != 0 or entry.stat().st_uid in UIDS):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def _hunt(self) -> None:
        while not self._stop.is_set() and self.killed < self.times:
            for pid in self._victims():
                time.sleep(0.3)  # let it settle into its sleep
                try:
                    os.kill(pid, self.sig)
                    self.killed += 1
                except ProcessLookupError:
                    pass
                break
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


SLEEPER = "import time\ntime.sleep(2)\ndef victim():\n    pass"


def test_a_program_killed_from_outside_once_runs_again_and_passes():
    killer = Killer(signal.SIGKILL, times=1)
    try:
        results = run_problems([("python", "victim", SLEEPER, PYTHON_TEST)], limits_of(EvaluationConfig(timeout_s=10)),
                               workers=1, progress=False)
    finally:
        killer.stop()
    assert killer.killed == 1
    assert [(r.status, r.passed) for r in results] == [("passed", True)]


def test_a_program_killed_from_outside_twice_leaves_the_metric_incomplete():
    row = pd.Series({"id": "python_victim", "gt_output": PYTHON_TEST})
    predictions = [Prediction(0, np.array([], dtype=np.int32), SLEEPER, row)]
    killer = Killer(signal.SIGTERM, times=2)
    try:
        scores = mixtral_mbxp(predictions, EvaluationConfig(timeout_s=10, workers=1))
    finally:
        killer.stop()
    assert killer.killed == 2
    [result] = scores.details["mbxp_results"]
    assert result["status"] == "killed" and f"signal {int(signal.SIGTERM)}" in result["detail"]
    assert "killed twice by a signal from outside the evaluation" in scores.incomplete["mbxp"]
    assert scores.details["mbxp_by_language"]["python"]["killed"] == 1


def test_a_program_that_rewrites_itself_and_fakes_an_outside_kill_never_passes():
    """The rerun starts from scratch: what the first attempt wrote is gone, the source is written again."""
    cheat = "import os\nopen(__file__, 'w').write('pass')\nos.kill(os.getpid(), 15)"
    results = run_problems([("python", "cheat", cheat, PYTHON_TEST)], limits_of(EvaluationConfig(timeout_s=10)),
                           workers=1, progress=False)
    # It cannot pass: killed again on the rerun (or unable to rewrite the evaluator's file at all), never scored.
    assert [r.passed for r in results] == [False] and results[0].status in ("killed", "failed")


def test_only_a_signal_none_of_ours_counts_as_from_outside():
    """The rule behind Execution.outside_signal (the OOM case runs for real in test_sandbox.py)."""
    kill, term = 128 + signal.SIGKILL, 128 + signal.SIGTERM
    assert outside_signal(kill, False, False, 0.5, 5) == signal.SIGKILL
    assert outside_signal(term, False, False, None, 5) == signal.SIGTERM
    assert outside_signal(-signal.SIGKILL, False, False, None, 5) == signal.SIGKILL  # bwrap itself was killed
    assert outside_signal(None, True, False, None, 5) is None  # our timeout
    assert outside_signal(kill, False, True, 0.5, 5) is None  # the OOM killer at our memory limit
    assert outside_signal(kill, False, False, 6.0, 5) is None  # RLIMIT_CPU's SIGKILL after an ignored SIGXCPU
    assert outside_signal(128 + signal.SIGXCPU, False, False, 5.0, 5) is None  # RLIMIT_CPU's SIGXCPU
    assert outside_signal(128 + signal.SIGSEGV, False, False, 0.1, 5) is None  # the program's own crash
    assert outside_signal(128 + signal.SIGABRT, False, False, 0.1, 5) is None
    assert outside_signal(1, False, False, 0.1, 5) is None


INTERRUPTED = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from evaluation.mbxp.runner import limits_of, run_problems
from llmkit.config.schema import EvaluationConfig
problems = [("python", f"loop{i}", "while True:\\n    pass", "def check(candidate):\\n    pass") for i in range(6)]
print("started", flush=True)
run_problems(problems, limits_of(EvaluationConfig(timeout_s=20, workers=2)), workers=2, progress=False)
"""


def test_ctrl_c_stops_an_evaluation_at_once_and_leaves_nothing_running(tmp_path):
    """Six 20-second programs on two slots: Ctrl-C must not wait for them, and the slots are released."""
    before = {p.name for p in Path(tempfile.gettempdir()).glob("llmkit-mbxp-*")}
    process = subprocess.Popen([sys.executable, "-c", INTERRUPTED], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    time.sleep(4)  # the first two programs are running
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - started < 10, "Ctrl-C waited for the programs"
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr
    assert not [pid for uid in UIDS for pid in live_pids_of_uid(uid)], "sandboxed programs outlived the evaluation"
    assert {p.name for p in Path(tempfile.gettempdir()).glob("llmkit-mbxp-*")} <= before
