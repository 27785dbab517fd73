"""mxeval's TypeScript rule: a program counts as compiled only when tsc exits with 2 (the MBXP tests import node's
`assert`, which is a type error without @types/node); one that compiles cleanly is a compile error."""
from __future__ import annotations

from evaluation.mbxp.languages import missing_runtime
from evaluation.mbxp.runner import limits_of, run_problems
from llmkit.config.schema import EvaluationConfig
from llmkit.data.sample_content import MBXP

CLEAN = "function double(n: number): number {\n    return 2 * n;\n}\n"
CLEAN_TEST = "\nif (double(2) !== 4) { throw new Error('wrong'); }\n"  # no import: tsc exits 0
ASSERT_TEST = ("\nimport * as assert from 'assert'\n\nlet actual_1 = double(2);\nlet expected_1 = 4;\n"
               "assert.deepEqual(actual_1, expected_1, \"Exception --- test case 0 failed to pass\");\n")


def test_typescript_counts_as_compiled_only_when_tsc_exits_2():
    assert missing_runtime("typescript") is None, missing_runtime("typescript")
    rows = [r for r in MBXP if r.language == "typescript"]
    problems = [("typescript", "double", CLEAN, CLEAN_TEST), ("typescript", "double", CLEAN, ASSERT_TEST),
                ("typescript", "double", CLEAN.replace("2 * n", "n"), ASSERT_TEST)]
    problems += [("typescript", r.entry_point, r.solution, r.test) for r in rows]
    results = run_problems(problems, limits_of(EvaluationConfig(timeout_s=10)), workers=2, progress=False)
    statuses = [(r.status, r.passed) for r in results]
    assert statuses[0] == ("compile_error", False)  # tsc exit 0: not compiled, by the reference's rule
    assert statuses[1] == ("passed", True)  # tsc exit 2 (no @types/node for 'assert'), and the JS runs
    assert statuses[2] == ("failed", False)  # compiled the same way; the assertion fails
    assert statuses[3:] == [("passed", True)] * len(rows), results  # the sample rows behave as the official ones
