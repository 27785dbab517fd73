"""The TensorRT-LLM stubs (stubs/tensorrt_llm) catch misuse of the APIs the two backends call, and the backends pass
the strict check `make test` runs. One mypy run, with the repository's configuration, over small programs written
here and the three backend modules; each wrong program must be reported on its wrong line."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("sut/backends/trtllm.py", "sut/backends/trtllm_pytorch.py", "sut/backends/trtllm_common.py")

# name -> (program, the error mypy must report on the line marked `# wrong`)
WRONG = {
    "misspelled_class": ("""
        from tensorrt_llm.bindings import executor


        def config() -> object:
            return executor.ExecutorConfg(max_beam_width=1)  # wrong
        """, 'Module has no attribute "ExecutorConfg"'),
    "positional_streaming": ("""
        from tensorrt_llm.bindings import executor


        def request() -> executor.Request:
            return executor.Request([1, 2], 8, True)  # wrong
        """, 'Too many positional arguments for "Request"'),
    "positional_config": ("""
        from tensorrt_llm.bindings import executor


        def config() -> executor.ExecutorConfig:
            return executor.ExecutorConfig(1)  # wrong
        """, 'Too many positional arguments for "ExecutorConfig"'),
    "int_timeout": ("""
        from tensorrt_llm.bindings import executor


        def poll(ex: executor.Executor) -> int:
            return len(ex.await_responses(timeout=5))  # wrong
        """, 'No overload variant of "await_responses" of "Executor" matches argument type "int"'),
    "llm_api_keyword": ("""
        from tensorrt_llm import SamplingParams


        def params() -> SamplingParams:
            return SamplingParams(max_token=3)  # wrong
        """, 'Unexpected keyword argument "max_token" for "SamplingParams"'),
}

RIGHT = """
    import datetime

    from tensorrt_llm import LLM, SamplingParams
    from tensorrt_llm.bindings import executor
    from tensorrt_llm.llmapi import KvCacheConfig, RequestOutput


    def serve(path: str) -> list[int]:
        config = executor.ExecutorConfig(
            max_beam_width=1, max_batch_size=8, kv_cache_config=executor.KvCacheConfig(enable_block_reuse=False),
            scheduler_config=executor.SchedulerConfig(
                capacity_scheduler_policy=executor.CapacitySchedulerPolicy.MAX_UTILIZATION),
            batching_type=executor.BatchingType.INFLIGHT)
        ex = executor.Executor(path, executor.ModelType.DECODER_ONLY, config)
        ids = ex.enqueue_requests([executor.Request([1, 2], 8, streaming=True, end_id=2)])
        tokens: list[int] = []
        for response in ex.await_responses(timeout=datetime.timedelta(milliseconds=5)):
            if not response.has_error() and response.request_id in ids:
                tokens += response.result.output_token_ids[0]
        per_request: list[list[executor.Response]] = ex.await_responses(ids, datetime.timedelta(seconds=1))
        ex.shutdown()
        return tokens + [len(per_request)]


    async def generate(path: str) -> list[int] | None:
        llm = LLM(path, skip_tokenizer_init=True, kv_cache_config=KvCacheConfig(free_gpu_memory_fraction=0.5))
        output: RequestOutput = llm.generate_async([1, 2], sampling_params=SamplingParams(max_tokens=3, top_k=1))
        final = await output.aresult()
        llm.shutdown()
        return final.outputs[0].token_ids
    """


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory) -> dict[str, list[tuple[int, str]]]:
    """One mypy run over every program and the three backends: path (relative to the repository for the backends, the
    program's name for the others) -> its (line, message) errors."""
    root = tmp_path_factory.mktemp("typing")
    programs = {name: textwrap.dedent(source) for name, (source, _) in WRONG.items()}
    programs["right"] = textwrap.dedent(RIGHT)
    for name, source in programs.items():
        (root / f"{name}.py").write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--cache-dir",
         str(root / "cache"), "--no-error-summary", "--show-error-codes", *BACKENDS,
         *(str(root / f"{name}.py") for name in programs)],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2: mypy itself failed (config, crash)
    report: dict[str, list[tuple[int, str]]] = {}
    for line in done.stdout.splitlines():
        found = re.match(r"(.+?):(\d+): error: (.*)", line)
        if found:
            path = Path(found[1])
            key = path.stem if path.is_absolute() and path.parent == root else found[1]
            report.setdefault(key, []).append((int(found[2]), found[3]))
    report["_output"] = [(0, done.stdout + done.stderr)]
    return report


@pytest.mark.parametrize("name", sorted(WRONG))
def test_the_stubs_report_misuse(name, mypy_report):
    source, expected = WRONG[name]
    wrong_line = next(i for i, line in enumerate(textwrap.dedent(source).splitlines(), 1) if "# wrong" in line)
    errors = mypy_report.get(name, [])
    assert any(line == wrong_line and expected in message for line, message in errors), (
        f"expected {expected!r} on line {wrong_line}; mypy said {errors}\n{mypy_report['_output'][0][1]}")


def test_a_correct_program_passes(mypy_report):
    assert "right" not in mypy_report, mypy_report["right"]


@pytest.mark.parametrize("module", BACKENDS)
def test_the_backends_pass_the_strict_check(module, mypy_report):
    assert module not in mypy_report, mypy_report[module]
