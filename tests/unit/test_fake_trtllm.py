"""The TensorRT-LLM 1.2.1 test double (tests/fakes/trtllm): the Executor binding's signatures and conversions, its
response semantics (deltas, finish reasons, error responses), the runtime limits, faults, replay mode and the LLM API;
and that its greedy tokens are transformers' own."""
from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes.trtllm.env import HERE as FAKE_TRTLLM
from fakes.trtllm.env import fake_trtllm_env
from llmkit.benchmarks import LLAMA3_1_405B

EOS = LLAMA3_1_405B.eos_ids[0]
NEVER = LLAMA3_1_405B.vocab_size - 1  # a reserved special token the tiny model does not produce
BUILD = {"max_batch_size": 8, "max_input_len": 48, "max_seq_len": 64, "max_num_tokens": 128, "max_beam_width": 1,
         "kv_cache_type": "PAGED", "plugin_config": {"context_fmha": False, "remove_input_padding": True,
                                                      "tokens_per_block": 32, "use_paged_context_fmha": True}}


def make_engine(root: Path, hf_checkpoint: Path, **build) -> Path:
    """An engine directory by hand, as llmkit build leaves it: config.json, and manifest.json pointing at a
    TensorRT-LLM checkpoint whose manifest.json points at the Hugging Face checkpoint."""
    checkpoint, engine = root / "trt-checkpoint", root / "engine"
    for directory in (checkpoint, engine):
        directory.mkdir(parents=True, exist_ok=True)
    (checkpoint / "manifest.json").write_text(json.dumps({"checkpoint_path": str(hf_checkpoint)}))
    vocab = json.loads((hf_checkpoint / "config.json").read_text())["vocab_size"]
    config = {"version": "1.2.1", "build_config": {**BUILD, **build},
              "pretrained_config": {"vocab_size": vocab, "mapping": {"world_size": 1, "tp_size": 1, "pp_size": 1}}}
    (engine / "config.json").write_text(json.dumps(config))
    (engine / "manifest.json").write_text(json.dumps({"checkpoint_path": str(checkpoint)}))
    return engine


@pytest.fixture(scope="module")
def trt():
    """The double imported in this process, removed again afterwards (other tests must not see a tensorrt_llm)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(FAKE_TRTLLM))
        from tensorrt_llm.bindings import executor

        yield executor
    for name in [m for m in sys.modules if m == "tensorrt_llm" or m.startswith("tensorrt_llm.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def hf(artifacts) -> Path:
    return artifacts / "models" / "tiny-llama3"


@pytest.fixture(scope="module")
def engine(hf, tmp_path_factory) -> Path:
    return make_engine(tmp_path_factory.mktemp("engine"), hf)


@pytest.fixture(scope="module")
def model(hf):
    from sut.backends.hf import load_model

    return load_model(str(hf), "float32", "cpu")


@pytest.fixture
def executors(trt, engine, monkeypatch):
    """Make executors on the test engine (block reuse off unless asked); all are shut down after the test."""
    for name in ("MODE", "ERROR_ON", "STALL_AFTER", "DIE_AFTER", "DIE_MODE", "TTFT_MS", "TPOT_MS", "OUTPUT_LEN",
                 "ENGINE", "ITERATION_MS"):
        monkeypatch.delenv(f"LLMKIT_FAKE_TRTLLM_{name}", raising=False)
    made = []

    def make(engine_dir: Path = engine, **config):
        config.setdefault("kv_cache_config", trt.KvCacheConfig(enable_block_reuse=False))
        made.append(trt.Executor(engine_dir, trt.ModelType.DECODER_ONLY, trt.ExecutorConfig(**config)))
        return made[-1]

    yield make
    for executor in made:
        executor.shutdown()


def prompts(n: int = 3) -> list[list[int]]:
    """Random prompts whose greedy answers on tiny-llama3 change token at least once (most repeat one token)."""
    out = []
    for seed in (3, 10, 9)[:n]:
        rng = np.random.default_rng(seed)
        out.append(rng.integers(100, 120000, size=int(rng.integers(5, 14))).tolist())
    return out


def reference(model, prompt: list[int], max_new: int, eos: tuple[int, ...] = (EOS,), min_new: int = 1) -> list[int]:
    """transformers' greedy generate, without the EOS token that ended it (TensorRT-LLM leaves it out)."""
    out = model.generate(torch.tensor([prompt]), max_new_tokens=max_new, min_new_tokens=min_new, do_sample=False,
                         eos_token_id=list(eos), pad_token_id=0)[0, len(prompt):].tolist()
    return out[:-1] if out and out[-1] in eos else out


def collect(executor, ids: list[int], timeout: float = 30.0, seed: list | None = None) -> dict[int, list]:
    """Every response of `ids` (after those in `seed`) until each has its final one."""
    got: dict[int, list] = {i: [r for r in seed or [] if r.request_id == i] for i in ids}
    deadline = time.monotonic() + timeout
    while any(not r or (not r[-1].has_error() and not r[-1].result.is_final) for r in got.values()):
        assert time.monotonic() < deadline, "the double did not answer in time"
        for response in executor.await_responses(datetime.timedelta(milliseconds=20)):
            got[response.request_id].append(response)
    return got


def request(trt, prompt, max_tokens, **kwargs):
    sampling = trt.SamplingConfig(beam_width=1, top_k=1, min_tokens=kwargs.pop("min_tokens", 1))
    output = trt.OutputConfig(exclude_input_from_output=kwargs.pop("exclude", True))
    return trt.Request(prompt, max_tokens, sampling_config=sampling, output_config=output, **kwargs)


# the binding's signatures and conversions --------------------------------------------------------------------
def test_signatures_follow_the_binding(trt, engine, executors):
    with pytest.raises(TypeError):
        trt.Request([1, 2], 4, True)  # everything after max_tokens is keyword-only
    with pytest.raises(TypeError):
        trt.SamplingConfig(1, 1)  # only beam_width is positional
    assert trt.SamplingConfig(1).beam_width == 1
    assert trt.ExecutorConfig(1).max_beam_width == 1  # the binding has no kw_only: positional binds in order
    with pytest.raises(TypeError):
        trt.ExecutorConfig(max_batch_size=2.0)
    with pytest.raises(TypeError):
        trt.Request([1, 2], 4, streaming=1)  # a bool parameter takes no int
    with pytest.raises(TypeError):
        trt.Request([1, 2], 4, no_such_argument=3)
    assert trt.SchedulerConfig().capacity_scheduler_policy is trt.CapacitySchedulerPolicy.GUARANTEED_NO_EVICT
    assert trt.OutputConfig().exclude_input_from_output is False
    executor = trt.Executor(model_path=engine, model_type=trt.ModelType.DECODER_ONLY,
                            executor_config=trt.ExecutorConfig(kv_cache_config=trt.KvCacheConfig(False)))
    executor.shutdown()


def test_token_ids_convert_as_nanobind_does(trt):
    assert trt.Request(np.array([5, 6, 7], dtype=np.int32), 4).input_token_ids == [5, 6, 7]  # sequence of __index__
    assert trt.Request((5, 6), np.int64(3)).max_tokens == 3
    for bad in ([1.0, 2.0], np.array([1.0, 2.0]), "abc", [2 ** 31], {1, 2}):
        with pytest.raises(TypeError):
            trt.Request(bad, 4)
    with pytest.raises(TypeError):
        trt.Request([1], 4.0)


def test_await_responses_takes_a_timedelta_or_float_seconds_never_an_int_timeout(trt, executors):
    executor = executors()
    with pytest.raises(TypeError, match="incompatible function arguments"):
        executor.await_responses(timeout=5)
    assert executor.await_responses(datetime.timedelta(milliseconds=5)) == []
    assert executor.await_responses(0.005) == []
    assert executor.await_responses(987, 0.005) == []  # a positional int is a request id (the second overload)
    [rid] = executor.enqueue_requests([request(trt, [11, 12, 13], 3)])
    responses = executor.await_responses(rid)  # ... so this waits for request `rid`, with no timeout at all
    assert {r.request_id for r in responses} == {rid}
    while not responses[-1].result.is_final:
        responses = executor.await_responses(rid, datetime.timedelta(seconds=5))
    again = executor.await_responses(rid, 0.01)
    assert again[0].has_error() and "already been processed" in again[0].error_msg
    assert executor.await_responses([987], 0.005) == [[]]


# results ------------------------------------------------------------------------------------------------------
def test_greedy_tokens_equal_transformers_generate(trt, executors, model):
    executor = executors()
    batch = prompts(3)
    ids = executor.enqueue_requests([request(trt, p, 12, end_id=EOS) for p in batch])
    got = collect(executor, ids)
    for rid, prompt in zip(ids, batch):
        [final] = got[rid]
        assert final.result.output_token_ids[0] == reference(model, prompt, 12)
        assert final.result.is_final


def test_streaming_results_are_deltas_and_only_the_last_is_final(trt, executors):
    executor = executors()
    prompt = prompts(1)[0]
    plain, streamed = executor.enqueue_requests([request(trt, prompt, 8, exclude=False),
                                                 request(trt, prompt, 8, streaming=True)])
    got = collect(executor, [plain, streamed])
    [whole] = got[plain]
    assert whole.result.output_token_ids[0][:len(prompt)] == prompt  # exclude_input_from_output=False
    deltas = got[streamed]
    assert len(deltas) == 8 and all(len(r.result.output_token_ids[0]) == 1 for r in deltas)
    assert [r.result.is_final for r in deltas] == [False] * 7 + [True]
    assert deltas[0].result.finish_reasons == [trt.FinishReason.NOT_FINISHED]
    assert sum((r.result.output_token_ids[0] for r in deltas), []) == whole.result.output_token_ids[0][len(prompt):]
    assert deltas[-1].result.finish_reasons == [trt.FinishReason.LENGTH]


def test_end_id_ends_and_is_left_out_stop_words_end_and_stay_and_min_tokens_holds(trt, executors, model):
    executor = executors()
    prompt = prompts(1)[0]
    plain = reference(model, prompt, 16, eos=(NEVER,))
    eos_at = next(t for t in plain if t != plain[0])  # pretend the first new token the model turns to is the end id
    stop = (plain[0], eos_at)
    stop_end = next(i + 2 for i in range(len(plain) - 1) if tuple(plain[i:i + 2]) == stop)
    first_is_eos = plain[0]
    ids = executor.enqueue_requests([request(trt, prompt, 16, end_id=eos_at),
                                     request(trt, prompt, 16, stop_words=[[NEVER], list(stop)]),
                                     request(trt, prompt, 16, end_id=first_is_eos, min_tokens=3)])
    got = collect(executor, ids)
    ended, stopped, held = (got[i][-1].result for i in ids)
    assert ended.output_token_ids[0] == reference(model, prompt, 16, eos=(eos_at,))
    assert eos_at not in ended.output_token_ids[0][1:] and ended.finish_reasons == [trt.FinishReason.END_ID]
    assert stopped.output_token_ids[0] == plain[:stop_end]  # the stop words stay in the output
    assert stopped.finish_reasons == [trt.FinishReason.STOP_WORDS]
    assert held.output_token_ids[0] == reference(model, prompt, 16, eos=(first_is_eos,), min_new=3)
    assert held.output_token_ids[0][0] != first_is_eos


def test_too_long_prompt_is_an_error_response_and_too_long_output_is_cut(trt, executors):
    executor = executors()
    assert executor.limits.max_input_len == 48 and executor.limits.max_seq_len == 64
    long_prompt, fits = list(range(100, 149)), list(range(100, 140))
    bad, cut = executor.enqueue_requests([request(trt, long_prompt, 4), request(trt, fits, 50)])
    got = collect(executor, [bad, cut])
    [error] = got[bad]
    assert error.has_error() and "Prompt length (49) exceeds maximum input length (48)" in error.error_msg
    with pytest.raises(RuntimeError, match="Cannot get the result for a response with an error"):
        error.result  # noqa: B018
    [answer] = got[cut]
    assert len(answer.result.output_token_ids[0]) == 64 - 40  # not an error: max_tokens is cut to fit max_seq_len
    assert answer.result.finish_reasons == [trt.FinishReason.LENGTH]
    assert any("exceeds maximum sequence length" in w for w in executor.warnings)
    with pytest.raises(RuntimeError, match="without error"):
        answer.error_msg  # noqa: B018


# configuration ----------------------------------------------------------------------------------------------
def test_block_reuse_is_on_by_default_and_recorded(trt, executors):
    assert trt.KvCacheConfig().enable_block_reuse is True
    assert trt.KvCacheConfig().free_gpu_memory_fraction is None  # the runtime then takes 0.9
    assert executors(kv_cache_config=trt.KvCacheConfig()).kv_cache_block_reuse is True
    assert executors().kv_cache_block_reuse is False
    with pytest.raises(RuntimeError, match="freeGpuMemoryFraction < 1"):
        trt.KvCacheConfig(free_gpu_memory_fraction=1.0)
    with pytest.raises(RuntimeError, match="freeGpuMemoryFraction > 0"):
        trt.KvCacheConfig(free_gpu_memory_fraction=0.0)
    assert trt.KvCacheConfig(False, free_gpu_memory_fraction=0.95).free_gpu_memory_fraction == 0.95


def test_runtime_limits_against_the_engine(trt, executors, hf, tmp_path):
    with pytest.raises(RuntimeError, match=r"max batch size \(9\) must not exceed engine max batch size \(8\)"):
        executors(max_batch_size=9)
    above = executors(max_num_tokens=4096)  # not an error: ignored with a warning, as the runtime does
    assert above.limits.max_num_tokens == 128 and any("will be ignored" in w for w in above.warnings)
    assert executors(max_num_tokens=64, max_batch_size=4).limits.max_batch_size == 4
    fmha = make_engine(tmp_path, hf, plugin_config={"context_fmha": True, "remove_input_padding": True})
    assert executors(fmha).limits.max_input_len == 63  # min(max_seq_len - 1, max_num_tokens), not max_input_len
    assert executors(fmha, enable_chunked_context=True).limits.max_input_len == 63
    with pytest.raises(RuntimeError, match="deviceIds"):
        executors(parallel_config=trt.ParallelConfig(device_ids=[0, 1]))


def test_cancel_ends_a_request_with_cancelled(trt, executors):
    executor = executors()
    [rid] = executor.enqueue_requests([request(trt, [5, 6, 7], 50, streaming=True)])
    first = executor.await_responses(rid, datetime.timedelta(seconds=10))
    assert not first[-1].result.is_final
    executor.cancel_request(rid)
    responses = first + collect(executor, [rid])[rid]
    assert responses[-1].result.is_final and responses[-1].result.finish_reasons == [trt.FinishReason.CANCELLED]
    assert sum(len(r.result.output_token_ids[0]) for r in responses) < 50


def test_shutdown_then_every_call_raises(trt, executors):
    executor = executors()
    assert executor.can_enqueue_requests()
    executor.shutdown()
    executor.shutdown()  # idempotent
    assert not executor.can_enqueue_requests()
    for call in (lambda: executor.enqueue_requests([request(trt, [1, 2], 2)]), lambda: executor.await_responses(0.01),
                 lambda: executor.cancel_request(1), executor.get_latest_iteration_stats):
        with pytest.raises(RuntimeError, match="Shutdown called"):
            call()


def test_iteration_stats_carry_kv_cache_blocks(trt, executors):
    executor = executors()
    collect(executor, executor.enqueue_requests([request(trt, p, 4) for p in prompts(2)]))
    stats = [json.loads(s.to_json_str()) for s in executor.get_latest_iteration_stats()]
    assert stats and stats[0]["iter"] == 0 and stats[0]["numActiveRequests"] == 2
    kv = stats[0]["kvCacheStats"]
    assert {"usedNumBlocks", "freeNumBlocks", "maxNumBlocks", "tokensPerBlock"} <= set(kv)
    assert kv["usedNumBlocks"] + kv["freeNumBlocks"] == kv["maxNumBlocks"] and kv["tokensPerBlock"] == 32
    assert executor.get_latest_iteration_stats() == []  # taken once


# faults and replay --------------------------------------------------------------------------------------------
def test_error_on_the_nth_request(trt, executors, monkeypatch):
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_ERROR_ON", "2")
    executor = executors()
    ids = executor.enqueue_requests([request(trt, p, 3) for p in prompts(3)])
    got = collect(executor, ids)
    assert [got[i][-1].has_error() for i in ids] == [False, True, False]
    assert "injected fault" in got[ids[1]][-1].error_msg


def test_stall_after_n_answers(trt, executors, monkeypatch):
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_STALL_AFTER", "1")
    executor = executors()
    [first] = executor.enqueue_requests([request(trt, [5, 6], 3)])
    collect(executor, [first])
    executor.enqueue_requests([request(trt, [7, 8], 3)])
    assert executor.await_responses(datetime.timedelta(milliseconds=300)) == []


def test_die_after_n_answers_raises_from_then_on(trt, executors, monkeypatch):
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_DIE_AFTER", "1")
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_DIE_MODE", "raise")
    executor = executors()
    collect(executor, executor.enqueue_requests([request(trt, [5, 6], 2)]))
    executor.enqueue_requests([request(trt, [7, 8], 2)])
    with pytest.raises(RuntimeError, match="executor worker died"):
        for _ in range(100):
            executor.await_responses(0.05)


def test_die_after_n_answers_kills_the_process(engine, tmp_path):
    code = f"""
import datetime
from tensorrt_llm.bindings import executor as ex
e = ex.Executor({str(engine)!r}, ex.ModelType.DECODER_ONLY, ex.ExecutorConfig())
e.enqueue_requests([ex.Request([5, 6], 1), ex.Request([7, 8], 50)])
while True:
    for r in e.await_responses(datetime.timedelta(milliseconds=20)):
        print("answer", r.request_id, r.result.is_final, flush=True)
"""
    env = fake_trtllm_env(mode="replay", die_after=1)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 134, done.stderr
    assert "executor worker died" in done.stderr


@pytest.mark.parametrize("engine_place", ["thread", "process"])
def test_replay_mode_answers_at_the_configured_pace(trt, executors, monkeypatch, engine_place):
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_ENGINE", engine_place)
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_MODE", "replay")
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_TTFT_MS", "80")
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_TPOT_MS", "10")
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_OUTPUT_LEN", "3")
    executor = executors()
    assert executor.checkpoint is None
    start = time.monotonic()
    ids = executor.enqueue_requests([request(trt, [5, 6, 7], 10, streaming=True, end_id=EOS),
                                     request(trt, [5, 6, 7], 2)])
    first = executor.await_responses(datetime.timedelta(seconds=5))
    assert time.monotonic() - start >= 0.075
    got = collect(executor, ids, seed=first)
    tokens = sum((r.result.output_token_ids[0] for r in got[ids[0]]), [])
    assert len(tokens) == 3 and EOS not in tokens and got[ids[0]][-1].result.finish_reasons == [trt.FinishReason.END_ID]
    short = got[ids[1]][-1].result
    assert short.output_token_ids[0] == tokens[:2] and short.finish_reasons == [trt.FinishReason.LENGTH]


def test_replay_loop_in_a_child_process(trt, executors, monkeypatch):
    """ENGINE=process: the same answers, cancels, injected errors and stats; a dead loop process is named."""
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_MODE", "replay")
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_TPOT_MS", "5")
    answers = {}
    for place in ("thread", "process"):
        monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_ENGINE", place)
        executor = executors()
        ids = executor.enqueue_requests([request(trt, p, 6, streaming=True, end_id=EOS) for p in prompts(3)])
        got = collect(executor, ids)
        answers[place] = [sum((r.result.output_token_ids[0] for r in got[i]), []) for i in ids]
    assert answers["process"] == answers["thread"] and all(len(a) == 6 for a in answers["process"])
    assert executor._engine.__class__.__name__ == "RemoteEngine"
    stats, deadline = [], time.monotonic() + 5  # the child sends its stats every 50 ms
    while time.monotonic() < deadline and not any(s["numActiveRequests"] == 3 for s in stats):
        stats += [json.loads(s.to_json_str()) for s in executor.get_latest_iteration_stats()]
        time.sleep(0.02)
    assert max(s["numActiveRequests"] for s in stats) == 3
    [rid] = executor.enqueue_requests([request(trt, [5, 6, 7], 500, streaming=True)])
    executor.cancel_request(rid)
    assert collect(executor, [rid])[rid][-1].result.finish_reasons == [trt.FinishReason.CANCELLED]
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_ERROR_ON", "2")
    faulty = executors()
    ids = faulty.enqueue_requests([request(trt, p, 3) for p in prompts(2)])
    got = collect(faulty, ids)
    assert [got[i][-1].has_error() for i in ids] == [False, True]
    faulty._engine._proc.kill()
    with pytest.raises(RuntimeError, match="executor worker died"):
        for _ in range(100):
            faulty.await_responses(0.05)
    monkeypatch.setenv("LLMKIT_FAKE_TRTLLM_MODE", "model")
    with pytest.raises(ValueError, match="ENGINE=process runs only the replay loop"):
        executors()


@pytest.mark.parametrize("engine_place", ["thread", "process"])
def test_perf_metrics_and_iteration_ticks(trt, executors, monkeypatch, engine_place):
    """return_perf_metrics: steady-clock timedeltas on a request's first and final responses; ITERATION_MS: tokens
    leave on the engine's iteration ticks."""
    for name, value in (("ENGINE", engine_place), ("MODE", "replay"), ("TTFT_MS", "30"), ("TPOT_MS", "20"),
                        ("ITERATION_MS", "20"), ("OUTPUT_LEN", "3")):
        monkeypatch.setenv(f"LLMKIT_FAKE_TRTLLM_{name}", value)
    executor = executors()
    output = trt.OutputConfig(exclude_input_from_output=True, return_perf_metrics=True)
    ids = executor.enqueue_requests([trt.Request(p, 8, streaming=True, output_config=output, end_id=EOS)
                                     for p in prompts(3)])
    got = collect(executor, ids)
    for i in ids:
        first, *middle, final = got[i]
        timing = first.result.request_perf_metrics.timing_metrics
        assert isinstance(timing.arrival_time, datetime.timedelta)
        assert timing.arrival_time <= timing.first_scheduled_time < timing.first_token_time
        assert timing.first_token_time - timing.arrival_time >= datetime.timedelta(milliseconds=30)
        assert timing.last_token_time == datetime.timedelta(0)
        assert all(r.result.request_perf_metrics is None for r in middle)
        last = final.result.request_perf_metrics.timing_metrics
        assert last.first_token_time == timing.first_token_time < last.last_token_time
        # on 20 ms ticks the first token leaves 40-60 ms after admission; then 2 more tokens and the end id, a tick each
        assert timing.first_token_time - timing.first_scheduled_time < datetime.timedelta(milliseconds=150)
        assert last.last_token_time - last.first_token_time >= datetime.timedelta(milliseconds=55)
        assert len(got[i]) == 4
    untimed = executor.enqueue_requests([request(trt, [5, 6], 2)])
    assert collect(executor, untimed)[untimed[0]][-1].result.request_perf_metrics is None


def test_child_stamps_token_times_after_packing_the_iteration(trt):
    """ENGINE=process: the child pickles an iteration's untimed responses (PipeSink.stage) before the engine stamps
    its token times, so the double's packing is not counted as the caller's latency; the caller still gets every
    response of the iteration, in order, with the stamped times."""
    import socket
    from types import SimpleNamespace

    from tensorrt_llm._double.engine import STAMP_AT_HAND_OVER, Engine, Job
    from tensorrt_llm._double.remote import PipeSink, RemoteEngine

    from sut.wire import Frames

    ours, theirs = socket.socketpair()
    sink = PipeSink(Frames(theirs))
    sink._stats_at = time.monotonic()  # no stats ride along
    streamed = [Job(i, [1], 4, 0, None, [], True, True, generated=[7, 8]) for i in range(3)]
    first = Job(9, [1], 4, 0, None, [], True, True, generated=[5], perf=True, arrival=1.0, scheduled=2.0,
                first_at=STAMP_AT_HAND_OVER)
    for job in streamed:
        sink.result(job, [8], False)
    staged_at = []
    stage = sink.stage

    def recording_stage():
        stage()
        staged_at.append(time.monotonic())

    sink.stage = recording_stage
    Engine._hand_over(SimpleNamespace(sink=sink, _stamp=[first], _timed=[(first, [5], False)]))
    (message,) = Frames(ours).take()
    assert len(message[0]) == 1 and message[1] == [(9, [5], False, None, 1, None, (1.0, 2.0, first.first_at, 0.0))]
    assert staged_at[0] <= first.first_at <= time.monotonic()
    store = SimpleNamespace(add_all=lambda *taken: store.__dict__.update(taken=taken))
    RemoteEngine._take(SimpleNamespace(store=store, _stats=[], warnings=[]), message)
    results, errors, finals = store.taken
    assert [row[0] for row in results] == [0, 1, 2, 9] and errors == [] and finals == []
    ours.close()
    theirs.close()


def test_due_times_take_jobs_on_their_tick_or_at_their_time(trt):
    """The replay loop's queue: with ticks, a job leaves at the first tick at or after its due time, in the order
    put; without, at its own time, earliest first."""
    from tensorrt_llm._double.engine import DueTimes, Job

    jobs = [Job(i, [1], 4, 0, None, [], True, True) for i in range(4)]
    ticked = DueTimes(0.02, 0.005)  # ticks at 0.005, 0.025, 0.045, 0.065, ...
    for job, due in zip(jobs, (0.031, 0.0251, 0.05, 0.045)):
        ticked.put(job, due)
    assert ticked.first() == pytest.approx(0.045)
    assert ticked.take(0.044) == []
    assert [j.id for j in ticked.take(0.045)] == [0, 1, 3]
    assert ticked.first() == pytest.approx(0.065)
    assert [j.id for j in ticked.take(1.0)] == [2] and ticked.first() is None
    exact = DueTimes(0.0, 0.0)
    for job, due in zip(jobs, (0.031, 0.0251, 0.05, 0.045)):
        exact.put(job, due)
    assert exact.first() == 0.0251
    assert [j.id for j in exact.take(0.046)] == [1, 0, 3] and [j.id for j in exact.take(0.05)] == [2]


# packaging and the LLM API -----------------------------------------------------------------------------------
def test_importable_only_through_its_environment(engine):
    code = "import importlib.metadata as m, tensorrt_llm; print(tensorrt_llm.__version__, m.version('tensorrt_llm'))"
    done = subprocess.run([sys.executable, "-c", code], env=fake_trtllm_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["1.2.1", "1.2.1"], done.stderr
    assert "LLMKIT_FAKE_TRTLLM_MODE" not in fake_trtllm_env(base={"LLMKIT_FAKE_TRTLLM_MODE": "replay"})
    assert fake_trtllm_env(base={}, error_on=3)["LLMKIT_FAKE_TRTLLM_ERROR_ON"] == "3"


def test_llm_api_cumulative_tokens_and_its_checks(trt, hf, model, monkeypatch):
    monkeypatch.delenv("LLMKIT_FAKE_TRTLLM_MODE", raising=False)
    from pydantic import ValidationError

    from tensorrt_llm import LLM, SamplingParams
    from tensorrt_llm.llmapi import KvCacheConfig

    with pytest.raises(ValidationError):
        KvCacheConfig(enable_block_reuse=False, no_such_field=1)
    with pytest.raises(TypeError):
        SamplingParams(8)  # keyword-only
    with pytest.raises(ValidationError):
        LLM(str(hf), skip_tokenizer_init=True, no_such_argument=1)
    llm = LLM(str(hf), skip_tokenizer_init=True, kv_cache_config=KvCacheConfig(enable_block_reuse=False),
              max_batch_size=4, max_num_tokens=256)
    try:
        assert llm.kv_cache_block_reuse is False
        prompt = prompts(1)[0]
        with pytest.raises(ValueError, match="end_id"):
            llm.generate_async(prompt, SamplingParams(max_tokens=4))
        plain = reference(model, prompt, 10, eos=(NEVER,))
        params = SamplingParams(max_tokens=10, end_id=EOS, top_k=1, detokenize=False)
        whole = llm.generate_async(prompt, params).result()
        assert whole.outputs[0].token_ids == plain and whole.outputs[0].finish_reason == "length" and whole.finished

        async def stream():
            seen = []
            async for output in llm.generate_async(prompt, params, streaming=True):
                seen.append(list(output.outputs[0].token_ids))
            return seen
        seen = asyncio.run(stream())
        assert seen == [plain[:n] for n in range(1, 11)]  # cumulative
        turn = next(i for i, t in enumerate(plain) if t != plain[0])
        stopped = llm.generate_async(prompt, SamplingParams(max_tokens=10, end_id=EOS, stop_token_ids=[plain[turn]],
                                                            detokenize=False)).result()
        assert stopped.outputs[0].token_ids == plain[:turn]  # the stop token is cut unless include_stop_str_in_output
        assert stopped.outputs[0].finish_reason == "stop" and stopped.outputs[0].stop_reason == plain[turn]
        with pytest.raises(ValueError, match="max_num_tokens"):
            llm.generate_async(list(range(100, 400)), params)
    finally:
        llm.shutdown()
    with pytest.raises(RuntimeError, match="shutting down"):
        llm.generate_async(prompt, params)
