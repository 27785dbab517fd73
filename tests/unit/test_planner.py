"""The serving planner: GPU registry, memory arithmetic, fit checks, and calibration against published MLPerf runs."""
from __future__ import annotations

import json
import math

import pytest
from rich.console import Console

from llmkit.benchmarks import LLAMA3_1_405B, MIXTRAL_8X7B, Scenario
from llmkit.config.precisions import AutoquantConfig, Bf16Config, Fp8Config, Nvfp4Config
from llmkit.config.schema import KVCacheFormat, PrecisionName
from llmkit.errors import UserError
from llmkit.gpus import GPUS, get_gpu, gpu_for_smi_name
from llmkit.planner import check_fits, plan, precision_terms, request_for, smallest_fitting_topology
from llmkit.planner.memory import kv_bytes_per_token, kv_heads_per_rank, weight_bytes
from llmkit.planner.report import plot, table
from llmkit.planner.request import autoquant_mix
from llmkit.planner.roofline import distinct_experts

H100, H200, B200, GB200 = (GPUS[n] for n in ("H100-SXM-80GB", "H200-SXM-141GB", "B200-SXM-180GB", "GB200"))
AUTOQUANT_HOPPER = AutoquantConfig(effective_bits=8.75, kv_cache=KVCacheFormat.fp8)
AUTOQUANT_BLACKWELL = AutoquantConfig(effective_bits=7.25, search_formats=[PrecisionName.nvfp4, PrecisionName.fp8],
                                      kv_cache=KVCacheFormat.fp8)
FP8, NVFP4 = Fp8Config(), Nvfp4Config()
BENCHMARK = {"mixtral-8x7b": MIXTRAL_8X7B, "llama3.1-405b": LLAMA3_1_405B}

# Published closed-division results (shared/MLPERF.md section 6: system output tokens/s) with the settings NVIDIA
# published for them (shared/TRTLLM.md section 5; the same as conf/system/*.yaml): GPU, benchmark, scenario,
# precision, tp, pp, instances, runtime max_batch_size, runtime max_num_tokens, engine max_num_tokens, KV fraction,
# published tokens/s of the system, GPUs of the system. The H100 405b results are Dell's (v5.0), planned here on
# NVIDIA's settings for that system (Dell's own Server run used tp 4 x pp 2 at batch 128).
PUBLISHED = [
    (H100, "mixtral-8x7b", "Offline", AUTOQUANT_HOPPER, 1, 1, 8, 896, 8192, 8192, 0.90, 52416, 8),
    (H100, "mixtral-8x7b", "Server", AUTOQUANT_HOPPER, 1, 1, 8, 896, 8192, 8192, 0.90, 50796, 8),
    (H200, "mixtral-8x7b", "Offline", AUTOQUANT_HOPPER, 1, 1, 8, 3072, 9216, 16384, 0.90, 62630, 8),
    (H200, "mixtral-8x7b", "Server", AUTOQUANT_HOPPER, 1, 1, 8, 3072, 8192, 16384, 0.90, 61802, 8),
    (H100, "llama3.1-405b", "Offline", FP8, 8, 1, 1, 256, 1536, 2560, 0.95, 397, 8),
    (H100, "llama3.1-405b", "Server", FP8, 8, 1, 1, 64, 2560, 8192, 0.90, 277, 8),
    (H200, "llama3.1-405b", "Offline", FP8, 4, 2, 1, 512, 1536, 2560, 0.95, 561, 8),
    (H200, "llama3.1-405b", "Server", FP8, 8, 1, 1, 64, 2560, 8192, 0.90, 291, 8),
    (B200, "llama3.1-405b", "Offline", NVFP4, 2, 2, 2, 128, 1536, 5120, 0.95, 1624, 8),
    (B200, "llama3.1-405b", "Server", NVFP4, 4, 1, 2, 256, 2048, 2048, 0.95, 1240, 8),
    (GB200, "llama3.1-405b", "Offline", NVFP4, 2, 2, 18, 2048, 1536, 1536, 0.95, 14774, 72),
    (GB200, "llama3.1-405b", "Server", NVFP4, 4, 1, 18, 256, 2048, 2048, 0.95, 11614, 72),
]


def published(gpu, name, scenario):
    return next(r for r in PUBLISHED if r[0] is gpu and r[1] == name and r[2] == scenario)


def published_plan(row):
    gpu, name, scenario, precision, tp, pp, instances, batch, tokens, engine_tokens, fraction, _, _ = row
    request = request_for(BENCHMARK[name], gpu, precision, Scenario(scenario), tp=tp, pp=pp, instances=instances,
                          kv_fraction=fraction, max_batch_size=batch, max_num_tokens=tokens,
                          engine_max_num_tokens=engine_tokens)
    return plan(request)


@pytest.mark.parametrize("row", PUBLISHED, ids=[f"{r[0].name}-{r[1]}-{r[2]}" for r in PUBLISHED])
def test_predictions_match_published_runs(row):
    published_per_gpu = row[11] / row[12]
    result = published_plan(row)
    ratio = result.tokens_per_s_per_gpu / published_per_gpu
    assert 0.8 <= ratio <= 1.25, f"predicted {result.tokens_per_s_per_gpu:.1f} vs published {published_per_gpu:.1f}"
    assert result.tokens_per_s == pytest.approx(result.tokens_per_s_per_gpu * row[12])


def test_server_runs_below_offline_and_within_its_limits():
    for row in PUBLISHED[1::2]:
        server = published_plan(row)
        assert server.server is not None
        assert server.tokens_per_s_per_gpu <= server.offline.tokens_per_s_per_gpu * (1 + 1e-9)
        assert server.server.ttft_p99_ms <= server.request.ttft_limit_ms + 1e-6
    mixtral = published_plan(published(H100, "mixtral-8x7b", "Server"))
    assert mixtral.tokens_per_s_per_gpu > 0.9 * mixtral.offline.tokens_per_s_per_gpu  # short prompts queue little


def test_gpu_registry():
    assert get_gpu("H200-SXM-141GB") is H200
    with pytest.raises(UserError, match="did you mean 'H100-SXM-80GB'"):
        get_gpu("H100-SXM-80G")
    assert gpu_for_smi_name("NVIDIA H100 80GB HBM3") is H100
    assert gpu_for_smi_name(" nvidia gb200 ") is GB200
    assert gpu_for_smi_name("NVIDIA A100-SXM4-80GB") is None
    assert (H100.sm, B200.sm) == (90, 100)
    assert B200.flops("fp4") == 2 * B200.fp8_flops == 4 * B200.bf16_flops
    with pytest.raises(UserError, match="no fp4"):
        H100.flops("fp4")
    for gpu in GPUS.values():
        assert gpu.sources and gpu.smi_names


def test_benchmark_shapes():
    assert MIXTRAL_8X7B.shape.parameters == pytest.approx(46.7e9, rel=0.01)
    assert LLAMA3_1_405B.shape.parameters == pytest.approx(405.9e9, rel=0.01)
    assert MIXTRAL_8X7B.shape.experts_per_token == 2
    assert LLAMA3_1_405B.lengths.input_mean == 9428.6


def _request(benchmark, gpu, precision, tp=1, pp=1, scenario=Scenario.Offline, **kwargs):
    return request_for(benchmark, gpu, precision, scenario, tp=tp, pp=pp, **kwargs)


def test_weights_per_gpu():
    shape = LLAMA3_1_405B.shape
    tp8 = _request(LLAMA3_1_405B, H100, FP8, tp=8)
    # FP8 linears are a byte each; the embedding and lm_head stay 16-bit: ~410 GB over 8 GPUs.
    total = shape.linear_parameters + 2 * shape.embedding_parameters
    assert weight_bytes(tp8) == pytest.approx(total / 8, rel=0.005)
    assert 50e9 < weight_bytes(tp8) < 52e9
    # PP: a stage holds half the layers and one of the embedding and lm_head.
    pp2 = _request(LLAMA3_1_405B, H200, FP8, tp=4, pp=2)
    assert weight_bytes(pp2) == pytest.approx((shape.linear_parameters / 2 + shape.embedding_parameters) / 4,
                                              rel=0.005)
    # MoE: every expert is held.
    mixtral = _request(MIXTRAL_8X7B, H100, AUTOQUANT_HOPPER)
    assert weight_bytes(mixtral) == pytest.approx(MIXTRAL_8X7B.shape.linear_parameters * 8.75 / 8
                                                  + 2 * MIXTRAL_8X7B.shape.embedding_parameters, rel=0.005)


def test_kv_bytes_per_token():
    mixtral = _request(MIXTRAL_8X7B, H100, AUTOQUANT_HOPPER)
    assert kv_bytes_per_token(mixtral) == 2 * 32 * 8 * 128 * 1 == 65536
    assert kv_bytes_per_token(_request(MIXTRAL_8X7B, H100, Bf16Config(), tp=2)) == 2 * 32 * 4 * 128 * 2
    llama = _request(LLAMA3_1_405B, H100, FP8, tp=8)
    assert kv_bytes_per_token(llama) == 2 * 126 * 1 * 128
    assert kv_bytes_per_token(_request(LLAMA3_1_405B, H200, FP8, tp=4, pp=2)) == 2 * 63 * 2 * 128
    # More TP ranks than KV heads: each rank keeps a copy of one.
    assert kv_heads_per_rank(LLAMA3_1_405B.shape, 16) == 1


def test_kv_capacity_bounds_the_batch():
    result = published_plan(published(H100, "llama3.1-405b", "Offline"))  # tp 8
    assert 60 <= result.kv_batch <= 110  # sequences of ~9.8k tokens
    assert result.batch_limit == "kv cache"
    assert result.memory.kv_tokens % 32 == 0
    assert result.memory.fits


def test_check_fits_names_the_topology_that_fits():
    tp4 = _request(LLAMA3_1_405B, H100, FP8, tp=4)
    with pytest.raises(UserError, match=r"llama3.1-405b at fp8 needs \d+ GiB per GPU .* tp 4 x pp 1 of "
                                        r"H100-SXM-80GB \(80 GiB\); use system.tp=8 system.pp=1"):
        check_fits(tp4)
    check_fits(_request(LLAMA3_1_405B, H100, FP8, tp=8))
    assert smallest_fitting_topology(tp4) == (8, 1)
    assert smallest_fitting_topology(_request(LLAMA3_1_405B, H200, FP8)) == (4, 1)
    assert smallest_fitting_topology(_request(LLAMA3_1_405B, B200, NVFP4)) == (2, 1)
    assert smallest_fitting_topology(_request(MIXTRAL_8X7B, H100, AUTOQUANT_HOPPER)) == (1, 1)
    with pytest.raises(UserError, match="more GPUs"):
        plan(_request(LLAMA3_1_405B, H100, Bf16Config(), tp=8))


def test_precision_terms():
    assert autoquant_mix([PrecisionName.fp8], 8.75) == ((PrecisionName.fp8, 0.90625), (PrecisionName.bf16, 0.09375))
    assert autoquant_mix([PrecisionName.nvfp4, PrecisionName.fp8], 7.25) == (
        (PrecisionName.nvfp4, 0.1875), (PrecisionName.fp8, 0.8125))
    terms = precision_terms(AUTOQUANT_BLACKWELL)
    assert (terms.compute, terms.kv_bytes, terms.weight_bits) == ("fp4", 1.0, 7.25)
    assert precision_terms(FP8).compute_mix == (("fp8", 1.0),)
    assert precision_terms(Bf16Config()).kv_bytes == 2.0
    with pytest.raises(UserError, match="no fp4"):
        _request(LLAMA3_1_405B, H100, NVFP4, tp=8)


def test_expected_distinct_experts():
    assert distinct_experts(1, 8, 2) == pytest.approx(2)
    assert distinct_experts(2, 8, 2) == pytest.approx(8 * (1 - 0.75 ** 2))
    assert distinct_experts(1000, 8, 2) == pytest.approx(8)


def test_recommendations_and_planned_settings():
    request = _request(LLAMA3_1_405B, H100, FP8, tp=8)  # batch and max_num_tokens left to the planner
    result = plan(request)
    assert result.batch == result.kv_batch == result.recommended_batch
    ratio = 1 + request.input_len / request.output_len
    assert ratio * result.batch <= result.recommended_max_num_tokens < ratio * result.batch + 512
    assert result.recommended_max_num_tokens % 512 == 0
    batches = [p.batch for p in result.curve]
    assert batches[0] == 1 and batches[-1] == result.kv_batch and batches == sorted(set(batches))
    throughputs = [p.tokens_per_s_per_gpu for p in result.curve]
    assert throughputs[-1] > 10 * throughputs[0]


def test_interactive_is_slower_than_server():
    common = dict(tp=8, max_batch_size=64, max_num_tokens=2560)
    server = plan(_request(LLAMA3_1_405B, H200, FP8, scenario=Scenario.Server, **common))
    interactive = plan(_request(LLAMA3_1_405B, H200, FP8, scenario=Scenario.Interactive, **common))
    assert interactive.request.tpot_limit_ms == 80
    assert interactive.tokens_per_s_per_gpu < server.tokens_per_s_per_gpu


def test_plan_serializes_and_reports(tmp_path):
    result = published_plan(published(H200, "llama3.1-405b", "Server"))
    data = json.loads(json.dumps(result.to_json()))
    assert data["request"]["gpu"] == "H200-SXM-141GB"
    assert data["server"]["ttft_p99_ms"] <= 6000 + 1e-6
    assert math.isclose(data["tokens_per_s_per_gpu"], result.tokens_per_s_per_gpu)
    console = Console(record=True, width=160)
    console.print(table(result))
    text = console.export_text()
    assert "KV cache" in text and "recommended" in text and "TTFT p99" in text
    path = plot(result, tmp_path / "plan.png")
    assert path.stat().st_size > 10_000
    offline = published_plan(published(H100, "mixtral-8x7b", "Offline"))
    console.print(table(offline))
    text = console.export_text()
    assert "KV cache" in text and "recommended" in text
    assert plot(offline, tmp_path / "offline.png").stat().st_size > 10_000


def test_bad_requests_are_user_errors():
    with pytest.raises(UserError, match="tp=0"):
        _request(MIXTRAL_8X7B, H100, FP8, tp=0)
    with pytest.raises(UserError, match="kv_fraction"):
        _request(MIXTRAL_8X7B, H100, FP8, kv_fraction=1.5)
