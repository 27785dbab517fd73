"""Cross-field checks that the schema's types cannot express. Errors stop a run; warnings are logged."""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum

from llmkit.benchmarks import BENCHMARKS, Benchmark, Scenario, TokenizerKind
from llmkit.config.backends import BACKENDS
from llmkit.config.groups import group_options
from llmkit.config.precisions import AutoquantConfig, awq_block_size
from llmkit.config.schema import (
    DatasetSource, Device, DType, KVCacheFormat, Mode, PrecisionName, RunConfig, TinyArchitecture,
)
from llmkit.errors import UserError, did_you_mean
from llmkit.gpus import GPUS

log = logging.getLogger(__name__)


class Severity(str, Enum):
    error = "error"
    warning = "warning"


@dataclass(frozen=True)
class Finding:
    severity: Severity
    message: str


# Loadgen's own minimum duration when none is set (mlperf.conf: 600 s for these benchmarks), and the most queries
# a run may schedule (loadgen ran out of 24 GiB at 1e7 queries/s over 2 s): a Server run at 10x the 8x H200 mixtral
# load for 600 s is ~2.6 million. Offline issues ~10%
# more samples than the expected rate times the duration.
LOADGEN_MIN_DURATION_MS = 600_000
MAX_SCHEDULED_QUERIES = 5_000_000
OFFLINE_SLACK = 1.1
# Measured here under RLIMIT_AS: node starts at 768 MB, tsc only at 1536 MB (not at 1024).
MIN_SANDBOX_MEMORY_MB = 1536
MIN_CALIBRATION_TOKENS = 16
# A name that becomes one folder of a submission tree (systems/<name>.json, results/<name>/).
SINGLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
TINY_TOKENIZER = {TinyArchitecture.mixtral: TokenizerKind.SENTENCEPIECE, TinyArchitecture.llama3: TokenizerKind.TIKTOKEN}


def check(cfg: RunConfig, serving: bool = True) -> list[Finding]:
    """Every finding for the config; `serving=False` skips what only a loadgen run needs (the quantize stage)."""
    findings: list[Finding] = []

    def error(message: str) -> None:
        findings.append(Finding(Severity.error, message))

    def warning(message: str) -> None:
        findings.append(Finding(Severity.warning, message))

    benchmark = BENCHMARKS.get(cfg.benchmark.name)
    if benchmark is None:
        error(
            f"unknown benchmark '{cfg.benchmark.name}'{did_you_mean(cfg.benchmark.name, BENCHMARKS)}; "
            f"known: {', '.join(BENCHMARKS)}"
        )
        return findings

    if cfg.scenario.name not in benchmark.scenarios:
        offered = ", ".join(s.value.lower() for s in benchmark.scenarios)
        error(f"{benchmark.name} has no {cfg.scenario.name.value} scenario; choose scenario= one of: {offered}")
    _check_finite(cfg, "", error)
    if not cfg.scenario.target_qps > 0:
        error(f"scenario.target_qps must be positive, got {cfg.scenario.target_qps}")

    _check_model(cfg, benchmark, error)
    _check_dataset(cfg, error, warning)
    _check_system(cfg, error)
    if serving:
        _check_backend(cfg, error, warning)
        _check_loadgen(cfg, benchmark, error, warning)
    elif cfg.output_dir is not None:
        error(f"output_dir={cfg.output_dir} names a run directory, but calibration and quantization write keyed "
              "artifacts under artifacts_root; set artifacts_root= instead")
    _check_evaluation(cfg, error)
    _check_plan(cfg, error)
    _check_calibration(cfg, error)
    _check_precision(cfg, error, warning)
    return findings


def _at_least_one(prefix: str, section, names: tuple[str, ...], error) -> None:
    """Each named setting of the section, when set (None means "use the default"), must be at least 1."""
    for name in names:
        value = getattr(section, name)
        if value is not None and value < 1:
            error(f"{prefix}.{name} must be at least 1, got {value}")


def _check_model(cfg: RunConfig, benchmark: Benchmark, error) -> None:
    model = cfg.model
    if model.path is None:
        error(f"model={model.name} needs a checkpoint directory; pass model.path=/path/to/checkpoint")
    if model.tiny is not None and TINY_TOKENIZER[model.tiny] is not benchmark.tokenizer:
        fitting = "tiny-mixtral" if benchmark.tokenizer is TokenizerKind.SENTENCEPIECE else "tiny-llama3"
        error(
            f"model={model.name} uses the {TINY_TOKENIZER[model.tiny].value} tokenizer but {benchmark.name} is "
            f"tokenized with {benchmark.tokenizer.value}; use model={fitting}"
        )


def _check_dataset(cfg: RunConfig, error, warning) -> None:
    dataset = cfg.dataset
    if dataset.source is DatasetSource.file and not dataset.path:
        error(f"dataset={dataset.name} reads a file; pass dataset.path=/path/to/the/dataset.pkl")
    if dataset.source is DatasetSource.sample and (dataset.path or dataset.md5 or dataset.trusted):
        given = "dataset.path" if dataset.path else ("dataset.md5" if dataset.md5 else "dataset.trusted")
        error(f"{given} has no effect with dataset={dataset.name}, which the kit generates; choose dataset=official "
              "to read a file")
    if dataset.max_samples is not None:
        if dataset.max_samples < 1:
            error(f"dataset.max_samples must be at least 1, got {dataset.max_samples}")
        else:
            warning(f"dataset.max_samples={dataset.max_samples}: a subset run is not a compliant MLPerf result")


def _check_system(cfg: RunConfig, error) -> None:
    system = cfg.system
    _at_least_one("system", system, ("dp", "tp", "pp", "nodes"), error)
    if system.devices_per_node < 0:
        error(f"system.devices_per_node must be 0 (no GPUs) or more, got {system.devices_per_node}")
    if system.device is Device.cuda and system.devices_per_node < 1:
        error("system.device=cuda needs the GPUs per node: set system.devices_per_node=N")
    if system.device is Device.cpu and (system.devices_per_node or system.nodes > 1):
        error("system.devices_per_node and system.nodes describe GPU nodes and have no effect with system.device=cpu; "
              "drop them or set system.device=cuda")
    if not SINGLE_NAME.fullmatch(system.name) or ".." in system.name:
        error(f"system.name '{system.name}' names a folder of the submission tree; use letters, digits, '.', '_', '+' "
              "or '-'")
    if system.gpu is not None:
        if system.device is not Device.cuda:
            error(f"system.gpu={system.gpu} has no effect with system.device=cpu; drop it or set system.device=cuda")
        elif system.gpu not in GPUS:
            error(f"system.gpu={system.gpu} is not a known GPU{did_you_mean(system.gpu, GPUS)}; choose one of: "
                  f"{', '.join(GPUS)}")
    if system.device is Device.cuda and None not in (system.dp, system.tp, system.pp):
        gpus, have = system.dp * system.tp * system.pp, system.devices_per_node * system.nodes
        if gpus > have:
            error(f"system.dp={system.dp} instances of tp {system.tp} x pp {system.pp} need {gpus} GPUs but "
                  f"system={system.name} has {have} ({system.devices_per_node} per node x {system.nodes}); lower "
                  "system.dp, system.tp or system.pp (a tuned entry's topology counts unless overridden)")
    for entry in system.tuned:
        _check_tuned(system, entry, error)
    seen = [(e.benchmark, e.scenario) for e in system.tuned]
    for duplicate in sorted({k for k in seen if seen.count(k) > 1}):
        error(f"system={system.name} has two tuned entries for {duplicate[0]} {duplicate[1].value}; keep one")


def _check_tuned(system, entry, error) -> None:
    where = f"system={system.name}'s tuned entry for {entry.benchmark} {entry.scenario.value}"
    benchmark = BENCHMARKS.get(entry.benchmark)
    if benchmark is None:
        error(f"{where} names an unknown benchmark{did_you_mean(entry.benchmark, BENCHMARKS)}; known: "
              f"{', '.join(BENCHMARKS)}")
        return
    if entry.scenario not in benchmark.scenarios:
        error(f"{where}: {entry.benchmark} has no {entry.scenario.value} scenario; remove the entry")
    options = group_options("precision")
    if entry.precision not in options:
        error(f"{where} names precision '{entry.precision}'{did_you_mean(entry.precision, options)}, which is not a "
              f"precision config; choose one of: {', '.join(options)}")
    for name in ("tp", "pp", "dp", "max_batch_size", "max_num_tokens", "runtime_max_batch_size",
                 "runtime_max_num_tokens"):
        value = getattr(entry, name)
        if value is not None and value < 1:
            error(f"{where}: {name} must be at least 1, got {value}")
            return
    for runtime, build in (("runtime_max_batch_size", "max_batch_size"), ("runtime_max_num_tokens", "max_num_tokens")):
        if (getattr(entry, runtime) or 0) > getattr(entry, build):
            error(f"{where}: {runtime} {getattr(entry, runtime)} exceeds the engine's {build} {getattr(entry, build)}; "
                  f"lower it or raise {build}")
    if not 0 < entry.kv_cache_free_gpu_memory_fraction < 1:
        error(f"{where}: kv_cache_free_gpu_memory_fraction must lie between 0 and 1 (exclusive), got "
              f"{entry.kv_cache_free_gpu_memory_fraction}")
    for name in ("target_qps", "published_tokens_per_s"):
        value = getattr(entry, name)
        if value is not None and not (0 < value < float("inf")):
            error(f"{where}: {name} must be a positive number, got {value}")


def _check_backend(cfg: RunConfig, error, warning) -> None:
    system, backend = cfg.system, cfg.backend
    entry = BACKENDS.get(backend.name)
    if entry is None or type(backend) is not entry.schema:
        error(f"backend.name={backend.name} does not match the {type(backend).__name__} schema; choose the backend "
              f"with backend=<{'|'.join(BACKENDS)}>, not with backend.name")
        return
    _at_least_one("backend", backend, ("max_batch_size",), error)
    if backend.max_batch_size is None and entry.schema.max_batch_size is not None:  # only some backends derive it
        error(f"backend={backend.name} needs a number for backend.max_batch_size (at least 1), got null")
    for problem in backend.problems(system):
        error(problem)


def _check_loadgen(cfg: RunConfig, benchmark: Benchmark, error, warning) -> None:
    loadgen = cfg.loadgen
    for name in ("min_duration_ms", "min_query_count", "max_query_count"):
        value, least = getattr(loadgen, name), 1 if name == "max_query_count" else 0
        if value is not None and value < least:
            error(f"loadgen.{name} must be at least {least}, got {value}")
    if cfg.max_new_tokens is not None:
        if not benchmark.min_new_tokens <= cfg.max_new_tokens <= benchmark.max_new_tokens:
            error(
                f"max_new_tokens must lie between {benchmark.min_new_tokens} and {benchmark.name}'s "
                f"{benchmark.max_new_tokens}, got {cfg.max_new_tokens}"
            )
        elif loadgen.keeps_mlperf_conf and cfg.max_new_tokens < benchmark.max_new_tokens:
            error(f"loadgen=submission makes a compliant run but max_new_tokens={cfg.max_new_tokens} caps generation "
                  f"below {benchmark.name}'s {benchmark.max_new_tokens}; pass max_new_tokens=null")
        else:
            warning(
                f"max_new_tokens={cfg.max_new_tokens} caps generation below {benchmark.name}'s "
                f"{benchmark.max_new_tokens}: not a compliant MLPerf result"
            )
    if loadgen.compliance_test is not None and cfg.mode is not Mode.performance:
        error(f"loadgen.compliance_test={loadgen.compliance_test.value} runs in performance mode; drop mode=accuracy")
    _check_schedule(cfg, error)


def _check_calibration(cfg: RunConfig, error) -> None:
    _at_least_one("calibration", cfg.calibration, ("num_samples", "max_length", "batch_size"), error)
    max_length = cfg.calibration.max_length
    if max_length is not None and 1 <= max_length < MIN_CALIBRATION_TOKENS:
        error(f"calibration.max_length={max_length} leaves the calibration prompts little more than their template's "
              f"first tokens; use at least {MIN_CALIBRATION_TOKENS} (None: the benchmark's max input length)")


def _check_finite(node, prefix: str, error) -> None:
    """Every float of the config is a finite number (nan passes every comparison, inf fills memory)."""
    for field in fields(node):
        value, key = getattr(node, field.name), f"{prefix}{field.name}"
        if isinstance(value, float) and not math.isfinite(value):
            error(f"{key} must be a finite number, got {value}")
        elif is_dataclass(value) and not isinstance(value, type):
            _check_finite(value, f"{key}.", error)


def _check_schedule(cfg: RunConfig, error) -> None:
    """Loadgen lays out every query of the run up front: a rate it cannot hold in memory is refused with one that
    fits."""
    qps = cfg.scenario.target_qps
    if not (qps > 0 and math.isfinite(qps)):
        return
    duration_s = (cfg.loadgen.min_duration_ms if cfg.loadgen.min_duration_ms is not None
                  else LOADGEN_MIN_DURATION_MS) / 1000
    queries = qps * duration_s * (OFFLINE_SLACK if cfg.scenario.name is Scenario.Offline else 1.0)
    if queries > MAX_SCHEDULED_QUERIES:
        fits = MAX_SCHEDULED_QUERIES / duration_s / (OFFLINE_SLACK if cfg.scenario.name is Scenario.Offline else 1.0)
        error(f"scenario.target_qps={qps:g} over loadgen's {duration_s:g} s minimum duration schedules "
              f"{queries:,.0f} queries, more than loadgen can lay out in memory ({MAX_SCHEDULED_QUERIES:,}); use "
              f"scenario.target_qps={fits:.0f} or less, or a shorter loadgen.min_duration_ms")


SEARCHABLE_FORMATS = (PrecisionName.fp8, PrecisionName.int8_sq, PrecisionName.w4a8_awq, PrecisionName.nvfp4)
AWQ_BLOCK_SIZES = (64, 128)


def _check_precision(cfg: RunConfig, error, warning) -> None:
    precision, quantize = cfg.precision, cfg.quantize
    if isinstance(precision, AutoquantConfig):
        if precision.effective_bits is None or not 0 < precision.effective_bits <= 16:
            error(f"precision=autoquant needs precision.effective_bits between 0 and 16, got {precision.effective_bits}")
        if not precision.search_formats:
            error("precision=autoquant needs precision.search_formats, e.g. [fp8]")
        for fmt in precision.search_formats:
            if fmt not in SEARCHABLE_FORMATS:
                error(f"precision.search_formats may hold {', '.join(f.value for f in SEARCHABLE_FORMATS)}, "
                      f"not {fmt.value}")
    block = awq_block_size(precision)
    if block is not None and block not in AWQ_BLOCK_SIZES:
        error(f"precision.awq_block_size must be one of {AWQ_BLOCK_SIZES} (TensorRT-LLM's INT4 block sizes), "
              f"got {block}")
    if precision.name is PrecisionName.bf16 and precision.kv_cache is not KVCacheFormat.none:
        error("precision=bf16 passes the checkpoint through, but an FP8 KV cache needs calibration; use precision=fp8")
    _at_least_one("quantize", quantize, ("gate_samples", "score_batches"), error)
    if quantize.export_dtype is DType.float32:
        error("quantize.export_dtype must be float16 or bfloat16 (TensorRT-LLM checkpoints hold no float32 weights)")
    if not 0 <= quantize.min_greedy_agreement <= 1:
        error(f"quantize.min_greedy_agreement is a fraction between 0 and 1, got {quantize.min_greedy_agreement}")


def _check_plan(cfg: RunConfig, error) -> None:
    _at_least_one("plan", cfg.plan, ("max_batch_size", "max_num_tokens"), error)
    fraction = cfg.plan.kv_cache_free_gpu_memory_fraction
    if fraction is not None and not 0 < fraction < 1:
        error(f"plan.kv_cache_free_gpu_memory_fraction must lie strictly between 0 and 1 (TensorRT-LLM refuses 1.0), "
              f"got {fraction}")


def _check_evaluation(cfg: RunConfig, error) -> None:
    evaluation = cfg.evaluation
    _at_least_one("evaluation", evaluation, ("workers", "max_processes", "memory_mb", "max_file_mb"), error)
    if 1 <= evaluation.memory_mb < MIN_SANDBOX_MEMORY_MB:
        error(f"evaluation.memory_mb={evaluation.memory_mb} is below what the MBXP runtimes need to start "
              f"(TypeScript's compiler on node needs more than 1024 MB of address space); use evaluation.memory_mb="
              f"{MIN_SANDBOX_MEMORY_MB} or more (default 2048)")
    for name in ("timeout_s", "compile_timeout_s"):
        if getattr(evaluation, name) <= 0:
            error(f"evaluation.{name} must be positive, got {getattr(evaluation, name)}")


def require_valid(cfg: RunConfig, serving: bool = True, warn: bool = True) -> list[Finding]:
    """Raise the first error as a UserError; log (unless `warn` is False: a command that generates nothing) and
    return the warnings."""
    findings = check(cfg, serving)
    errors = [f for f in findings if f.severity is Severity.error]
    if errors:
        raise UserError(errors[0].message)
    warnings = [f for f in findings if f.severity is Severity.warning]
    for finding in warnings if warn else []:
        log.warning(finding.message)
    return warnings
