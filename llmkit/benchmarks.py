"""The benchmark registry: every fact of the MLPerf LLM benchmarks the kit honours, stated once.

Sources: the MLCommons inference reference implementations, loadgen's mlperf.conf and the submission checker
(summarised in shared/MLPERF.md). Nothing else in the code repeats these numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from llmkit.errors import UserError, did_you_mean
from llmkit.models.dims import ModelShape


# The rules' minimum duration of a performance run (mlperf.conf's min_duration), for every LLM scenario.
MIN_DURATION_MS = 600_000


class Scenario(str, Enum):
    Offline = "Offline"
    Server = "Server"
    # Interactive is a Server-scenario loadgen run under the benchmark's "-interactive" model name.
    Interactive = "Interactive"

    @property
    def streams_first_token(self) -> bool:
        return self is not Scenario.Offline

    @property
    def loadgen_scenario(self) -> str:
        """Loadgen's own scenario name: it has no Interactive, which runs as Server (see Benchmark.loadgen_model)."""
        return "Server" if self is Scenario.Interactive else self.value


class TokenizerKind(str, Enum):
    SENTENCEPIECE = "sentencepiece"
    TIKTOKEN = "tiktoken"


@dataclass(frozen=True)
class DatasetFile:
    """An official dataset file: its name as published, its md5 where known, and its row count."""

    filename: str
    rows: int
    md5: str | None = None


@dataclass(frozen=True)
class LatencyLimits:
    ttft_ms: int
    tpot_ms: int


@dataclass(frozen=True)
class AccuracyTarget:
    """A reference score; a run passes at >= `fraction` of it (tokens_per_sample instead uses a band)."""

    metric: str
    reference: float
    fraction: float = 0.99


@dataclass(frozen=True)
class SequenceLengths:
    """Token counts of the validation set's prompts and of the reference's answers: what serving it costs.

    The planner sizes the KV cache and the prefill/decode mix from the means and its worst cases from the maxima.
    """

    input_mean: float
    input_median: float
    input_p99: float
    input_max: int
    output_mean: float
    output_max: int


@dataclass(frozen=True)
class Benchmark:
    name: str
    checkpoint: str
    tokenizer: TokenizerKind
    vocab_size: int
    bos_id: int
    eos_ids: tuple[int, ...]  # the first is the one the reference uses as end_id
    validation: DatasetFile
    calibration: DatasetFile
    validation_columns: tuple[str, ...]
    # Calibration files need the prompt text; `tok_input` is used when present, else the text is tokenized.
    calibration_columns: tuple[str, ...]
    min_new_tokens: int
    max_new_tokens: int
    max_input_len: int  # the longest prompt the published engines are built for
    scenarios: tuple[Scenario, ...]
    # A closed datacenter submission must hold each of `required_scenarios` and, when given, one of
    # `one_of_scenarios` (the submission checker's required and optional scenario tables).
    required_scenarios: tuple[Scenario, ...]
    loadgen_model_name: str
    latency_limits: dict[Scenario, LatencyLimits]
    performance_sample_count: int
    offline_min_query_count: int
    accuracy_targets: tuple[AccuracyTarget, ...]
    tokens_per_sample: float
    # The official checkpoint's dimensions (its config.json) and the validation set's sequence lengths.
    shape: ModelShape
    lengths: SequenceLengths
    tokens_per_sample_band: tuple[float, float] = (0.9, 1.1)
    # The submission checker's upper bound may use an older reference than its lower bound.
    tokens_per_sample_upper_reference: float | None = None
    # Per-row stop sequence (mixtral MBXP rows stop after the tokens of "\n```\n").
    stop_sequence_text: str | None = None
    stop_sequence_ids: tuple[int, ...] = field(default_factory=tuple)
    one_of_scenarios: tuple[Scenario, ...] = ()
    # The official checkpoint's tokenizer_config.json `clean_up_tokenization_spaces`: the reference decodes with it.
    # A checkpoint that states its own value wins (llmkit.tokenizers.cleans_up_spaces).
    clean_up_tokenization_spaces: bool = False

    @property
    def eos_id(self) -> int:
        return self.eos_ids[0]

    @property
    def max_seq_len(self) -> int:
        """The longest sequence a request can reach: the longest prompt and every new token (3072 and 22000)."""
        return self.max_input_len + self.max_new_tokens

    @property
    def runs_code(self) -> bool:
        """Whether its accuracy set holds MBXP rows, whose answers are programs run in the sandbox."""
        return any(target.metric == "mbxp" for target in self.accuracy_targets)

    @property
    def tokens_per_sample_bounds(self) -> tuple[float, float]:
        low, high = self.tokens_per_sample_band
        upper_reference = self.tokens_per_sample_upper_reference or self.tokens_per_sample
        return low * self.tokens_per_sample, high * upper_reference

    def loadgen_model(self, scenario: Scenario) -> str:
        if scenario is Scenario.Interactive:
            return f"{self.loadgen_model_name}-interactive"
        return self.loadgen_model_name

    def check_scenario(self, scenario: Scenario) -> None:
        if scenario not in self.scenarios:
            offered = ", ".join(s.value.lower() for s in self.scenarios)
            raise UserError(
                f"{self.name} has no {scenario.value} scenario; choose scenario= one of: {offered}"
            )


MIXTRAL_8X7B = Benchmark(
    name="mixtral-8x7b",
    checkpoint="mistralai/Mixtral-8x7B-Instruct-v0.1",
    tokenizer=TokenizerKind.SENTENCEPIECE,
    vocab_size=32000,
    bos_id=1,
    eos_ids=(2,),
    validation=DatasetFile(
        "09292024_mixtral_15k_mintoken2_v1.pkl", rows=15000, md5="ded6c711288c9bbca02929855557b8c1"
    ),
    calibration=DatasetFile(
        "2024.06.06_mixtral_15k_calibration_v4.pkl", rows=1000, md5="75067c9fe5cb5baef216a4b124c61df1"
    ),
    validation_columns=(
        "dataset", "id", "question", "input", "ref_output", "gt_output", "tok_input",
        "tok_ref_output", "stop_sequence", "tok_stop_sequence", "tok_input_len", "tok_ref_output_len",
    ),
    calibration_columns=("input",),
    min_new_tokens=2,
    max_new_tokens=1024,
    max_input_len=2048,
    scenarios=(Scenario.Offline, Scenario.Server),
    required_scenarios=(Scenario.Offline, Scenario.Server),
    loadgen_model_name="mixtral-8x7b",
    latency_limits={Scenario.Server: LatencyLimits(ttft_ms=2000, tpot_ms=200)},
    performance_sample_count=15000,
    offline_min_query_count=15000,
    accuracy_targets=(
        AccuracyTarget("rouge1", 45.5989),
        AccuracyTarget("rouge2", 23.3526),
        AccuracyTarget("rougeL", 30.4608),
        AccuracyTarget("gsm8k", 73.66),
        AccuracyTarget("mbxp", 60.16),
    ),
    tokens_per_sample=144.84,
    # mistralai/Mixtral-8x7B-Instruct-v0.1 config.json.
    shape=ModelShape(
        architecture="MixtralForCausalLM", vocab_size=32000, hidden_size=4096, intermediate_size=14336,
        num_layers=32, num_heads=32, num_kv_heads=8, head_dim=128, num_experts=8, experts_per_token=2,
        tied_embeddings=False,
    ),
    # openshift-psap/performance-dashboard, mlperf-data summary of the 15000-row validation set (tok_input_len and
    # tok_ref_output_len); its output maximum is not stated there, so max_new_tokens stands in.
    lengths=SequenceLengths(input_mean=427.4, input_median=283, input_p99=1561, input_max=1948, output_mean=144.8,
                            output_max=1024),
    tokens_per_sample_upper_reference=145.9,
    stop_sequence_text="\n```\n",
    stop_sequence_ids=(13, 13940, 28832, 13),
)

LLAMA3_1_405B = Benchmark(
    name="llama3.1-405b",
    checkpoint="meta-llama/Llama-3.1-405B-Instruct",
    tokenizer=TokenizerKind.TIKTOKEN,
    vocab_size=128256,
    bos_id=128000,
    eos_ids=(128009, 128001, 128008),
    # The md5 of the 405b files is not published next to them: they load only when the user vouches for them.
    validation=DatasetFile("mlperf_llama3.1_405b_dataset_8313_processed_fp16_eval.pkl", rows=8313),
    calibration=DatasetFile("mlperf_llama3.1_405b_calibration_dataset_512_processed_fp16_eval.pkl", rows=512),
    validation_columns=("input", "tok_input", "tok_input_len", "gt_output", "metric", "dataset"),
    calibration_columns=("input",),
    # The reference allows 1; loadgen cannot compute TPOT from a 1-token answer, so the kit asks for 2.
    min_new_tokens=2,
    max_new_tokens=2000,
    max_input_len=20000,
    scenarios=(Scenario.Offline, Scenario.Server, Scenario.Interactive),
    required_scenarios=(Scenario.Offline,),
    one_of_scenarios=(Scenario.Server, Scenario.Interactive),
    loadgen_model_name="llama3_1-405b",
    latency_limits={
        Scenario.Server: LatencyLimits(ttft_ms=6000, tpot_ms=175),
        Scenario.Interactive: LatencyLimits(ttft_ms=4500, tpot_ms=80),
    },
    performance_sample_count=8313,
    offline_min_query_count=8313,
    accuracy_targets=(AccuracyTarget("rougeL", 21.6666), AccuracyTarget("exact_match", 90.1335)),
    tokens_per_sample=684.68,
    # meta-llama/Llama-3.1-405B-Instruct config.json.
    shape=ModelShape(
        architecture="LlamaForCausalLM", vocab_size=128256, hidden_size=16384, intermediate_size=53248,
        num_layers=126, num_heads=128, num_kv_heads=8, head_dim=128, num_experts=0, tied_embeddings=False,
    ),
    # openshift-psap/performance-dashboard, mlperf-data summary of the 8313-row validation set.
    lengths=SequenceLengths(input_mean=9428.6, input_median=10112, input_p99=18941, input_max=19988,
                            output_mean=684.7, output_max=1830),
    clean_up_tokenization_spaces=True,
)

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (MIXTRAL_8X7B, LLAMA3_1_405B)}


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise UserError(
            f"unknown benchmark '{name}'{did_you_mean(name, BENCHMARKS)}; known: {', '.join(BENCHMARKS)}"
        ) from None
