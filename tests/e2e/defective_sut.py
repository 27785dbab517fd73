"""A deliberately defective SUT run through the real loadgen with TEST06's audit.config (used by test_test06).

python tests/e2e/defective_sut.py DEFECT BENCHMARK SCENARIO OUTDIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def answer(defect: str, eos: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(final ids as sent, first-token ids, n_tokens reported) for one query."""
    final = np.array([5, 6, 7, eos], dtype=np.int32)
    first, count = final[:1], final.size
    if defect == "two_eos":
        final = np.array([5, 6, eos, eos], dtype=np.int32)
        count = final.size
    elif defect == "first_not_prefix":
        first = np.array([9], dtype=np.int32)
    elif defect == "count_mismatch":
        count = final.size + 1
    elif defect == "int64":
        final = final.astype(np.int64)
    return final, first, count


def main() -> None:
    import mlperf_loadgen as lg

    from llmkit.benchmarks import Scenario, get_benchmark
    from llmkit.compliance import TEST06_AUDIT_CONFIG

    defect, benchmark_name, scenario_name, outdir = sys.argv[1:5]
    benchmark, scenario = get_benchmark(benchmark_name), Scenario(scenario_name)
    out = Path(outdir)
    out.mkdir(parents=True)
    (out / "audit.config").write_text(TEST06_AUDIT_CONFIG)
    (out / "user.conf").write_text("")
    keep = []

    def issue(samples):
        responses, firsts = [], []
        for sample in samples:
            final, first, count = answer(defect, benchmark.eos_id)
            keep.extend((final, first))
            if scenario is not Scenario.Offline:
                firsts.append(lg.QuerySampleResponse(sample.id, first.ctypes.data, first.nbytes, first.size))
            responses.append(lg.QuerySampleResponse(sample.id, final.ctypes.data, final.nbytes, count))
        if firsts:
            lg.FirstTokenComplete(firsts)
        lg.QuerySamplesComplete(responses)

    settings = lg.TestSettings()
    loadgen_scenario = "Server" if scenario is Scenario.Interactive else scenario.value
    settings.FromConfig(str(out / "user.conf"), benchmark.loadgen_model(scenario), loadgen_scenario)
    settings.scenario = getattr(lg.TestScenario, loadgen_scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = 200
    log = lg.LogSettings()
    log.log_output.outdir = str(out)
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(50, 50, lambda s: None, lambda s: None)
    lg.StartTestWithLogSettings(sut, qsl, settings, log, str(out / "audit.config"))
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)


if __name__ == "__main__":
    main()
