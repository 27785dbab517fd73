"""Read loadgen's mlperf_log_detail.txt structurally (its :::MLLOG JSON lines) into result.json figures."""
from __future__ import annotations

import json
from pathlib import Path

from llmkit.errors import UserError

MLLOG_PREFIX = ":::MLLOG "


def read_detail_log(path: Path) -> dict[str, object]:
    """Every key's last value in a detail log."""
    if not path.is_file():
        raise UserError(f"{path} does not exist; point at a run directory that loadgen finished")
    values: dict[str, object] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.startswith(MLLOG_PREFIX):
                continue
            try:
                entry = json.loads(line[len(MLLOG_PREFIX):])
            except json.JSONDecodeError:
                raise UserError(f"{path} line {number} is not a complete :::MLLOG record; the log is damaged") from None
            if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                raise UserError(f"{path} line {number} is not a :::MLLOG record (a JSON object with a \"key\"); the "
                                "log is damaged")
            values[entry["key"]] = entry.get("value")
    if not values:
        raise UserError(f"{path} has no :::MLLOG records; it is not a loadgen detail log")
    return values


def _ms(value) -> float | None:
    return None if value is None else round(float(value) / 1e6, 3)


def invalid_reason(detail: dict[str, object]) -> str | None:
    """Why loadgen judged the run INVALID, from its structured fields."""
    if detail.get("result_validity") == "VALID":
        return None
    reasons = []
    if detail.get("result_invalid_reason"):
        reasons.append(str(detail["result_invalid_reason"]))
    for key, text in (("result_min_duration_met", "min duration not met"),
                      ("result_min_queries_met", "min query count not met"),
                      ("result_perf_constraints_met", "latency constraints not met")):
        if detail.get(key) is False:
            reasons.append(text)
    if detail.get("early_stopping_met") is False:
        reasons.append("early stopping not met: too few queries for loadgen to bound the p99 latencies")
    return "; ".join(reasons) or "loadgen gave no reason"


def summarize(detail: dict[str, object]) -> dict[str, object]:
    """The headline figures of a performance run, named alike for every scenario."""
    offline = detail.get("effective_scenario") == "Offline"
    tokens = detail.get("result_tokens_per_second" if offline else "result_completed_tokens_per_second")
    samples = detail.get("result_samples_per_second" if offline else "result_completed_samples_per_sec")
    return {
        "valid": detail.get("result_validity") == "VALID",
        "validity": detail.get("result_validity"),
        "invalid_reason": invalid_reason(detail),
        "tokens_per_second": tokens,
        "samples_per_second": samples,
        "ttft_p99_ms": _ms(detail.get("result_first_token_99.00_percentile_latency_ns")),
        "tpot_p99_ms": _ms(detail.get("result_time_per_output_token_99.00_percentile_ns")),
        "latency_p99_ms": _ms(detail.get("result_99.00_percentile_latency_ns")),
        "loadgen_version": detail.get("loadgen_version"),
    }
