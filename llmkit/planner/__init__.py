"""The serving planner: before any GPU time, what fits on a GPU and how fast a TensorRT-LLM instance should serve an
MLPerf LLM benchmark on it.

- request.py: PlanRequest (the instance, its precision, limits and the dataset's lengths) and request_for;
- memory.py: weights, activations, runtime and the KV cache per GPU; check_fits, smallest_fitting_topology;
- roofline.py: one engine pass's time on one GPU, by kind of work, with the efficiency constants;
- server.py: the highest Poisson load within the p99 TTFT/TPOT limits (Server, Interactive);
- plan.py: plan(request) -> Plan: batch, throughput, latencies, recommended settings, the curve;
- report.py: a rich table and a matplotlib figure of a plan.
"""
from llmkit.planner.memory import MemoryBreakdown, check_fits, smallest_fitting_topology
from llmkit.planner.plan import Plan, Point, plan
from llmkit.planner.request import PlanRequest, PrecisionTerms, precision_terms, request_for
from llmkit.planner.server import Load

__all__ = [
    "Load", "MemoryBreakdown", "Plan", "PlanRequest", "Point", "PrecisionTerms", "check_fits", "plan",
    "precision_terms", "request_for", "smallest_fitting_topology",
]
