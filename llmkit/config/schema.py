"""One dataclass schema per component. YAML under conf/ only selects and overrides; unknown keys are errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Optional

from omegaconf import MISSING

from llmkit.benchmarks import Scenario
from llmkit.compliance import ComplianceTest
from llmkit.config.build import BuildConfig, BuildFlags
from llmkit.config.cluster import ContainersConfig, SlurmConfig
from llmkit.rounds import SubmissionRound, V6_0


class Mode(str, Enum):
    performance = "performance"
    accuracy = "accuracy"


class DType(str, Enum):
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class TinyArchitecture(str, Enum):
    mixtral = "mixtral"
    llama3 = "llama3"


class DatasetSource(str, Enum):
    sample = "sample"  # generated in the official schema by the kit, with the real tokenizer
    file = "file"  # a file on disk: the official pickle, or parquet / jsonl in the same schema


class DatasetSplit(str, Enum):
    validation = "validation"
    calibration = "calibration"


@dataclass
class BenchmarkConfig:
    # A key of llmkit.benchmarks.BENCHMARKS, which holds the benchmark's facts.
    name: str = MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    # A Hugging Face checkpoint directory. For tiny models, where the factory writes it when it is missing.
    path: Optional[str] = None
    # Set for the small random-weight models the kit makes itself.
    tiny: Optional[TinyArchitecture] = None
    seed: int = 0


@dataclass
class DatasetConfig:
    name: str = MISSING
    source: DatasetSource = DatasetSource.sample
    split: DatasetSplit = DatasetSplit.validation
    path: Optional[str] = None
    # The md5 the file must have. Known official files are checked against the registry without it.
    md5: Optional[str] = None
    # Unpickling runs code: an unknown pickle is refused unless the user vouches for it.
    trusted: bool = False
    # Use only the first N rows (smoke runs); None uses all.
    max_samples: Optional[int] = None


@dataclass
class ScenarioConfig:
    name: Scenario = MISSING
    # Server/Interactive: the Poisson arrival rate loadgen issues at. Offline: the expected rate, which sets how
    # many samples an Offline run issues (target_qps x min_duration). None: the system entry's, else
    # DEFAULT_TARGET_QPS.
    target_qps: Optional[float] = None


# The arrival rate of a scenario when neither the user nor the system's tuned entry states one.
DEFAULT_TARGET_QPS = {Scenario.Offline: 1.0, Scenario.Server: 4.0, Scenario.Interactive: 4.0}


@dataclass
class LoadgenConfig:
    """Settings written into user.conf on top of loadgen's built-in mlperf.conf. None keeps mlperf.conf's value."""

    name: str = MISSING
    min_duration_ms: Optional[int] = None
    min_query_count: Optional[int] = None
    # Cap the queries issued (smoke runs); None leaves loadgen's own limit.
    max_query_count: Optional[int] = None
    # Use the dataset's size as the performance sample count (needed when it is smaller than the official one).
    sample_count_from_dataset: bool = False
    # Run a compliance test: its audit.config is written into the run directory, where loadgen reads it.
    compliance_test: Optional[ComplianceTest] = None

    @property
    def keeps_mlperf_conf(self) -> bool:
        """Whether every run length loadgen takes is mlperf.conf's (loadgen=submission's): a compliant run's."""
        return (self.min_duration_ms is None and self.min_query_count is None and self.max_query_count is None
                and not self.sample_count_from_dataset)


@dataclass
class SystemDescription:
    """The systems/<system>.json fields a submission needs beyond the ones above. Empty host fields are read from
    the machine when packaging; an empty field that needs a meaningful answer is reported by `llmkit check`."""

    status: str = "available"
    system_type: str = "datacenter"
    system_type_detail: str = ""
    host_processor_model_name: str = ""
    host_processors_per_node: str = ""
    host_processor_core_count: str = ""
    host_processor_frequency: str = ""
    host_processor_caches: str = ""
    host_processor_interconnect: str = ""
    host_memory_capacity: str = ""
    host_memory_configuration: str = ""
    host_storage_capacity: str = ""
    host_storage_type: str = ""
    host_networking: str = ""
    host_networking_topology: str = ""
    host_network_card_count: str = ""
    accelerator_model_name: str = ""
    accelerator_memory_capacity: str = ""
    accelerator_frequency: str = ""
    accelerator_host_interconnect: str = ""
    accelerator_interconnect: str = ""
    accelerator_interconnect_topology: str = ""
    accelerator_memory_configuration: str = ""
    accelerator_on_chip_memories: str = ""  # written as "accelerator_on-chip_memories"
    cooling: str = ""
    hw_notes: str = ""
    sw_notes: str = ""
    operating_system: str = ""
    framework: str = ""
    other_software_stack: str = ""


@dataclass
class TunedSettings:
    """One benchmark x scenario entry of a system: the settings a submitter published for it (TRTLLM.md section 5).

    A run of that benchmark and scenario takes every one of them it does not override (llmkit/config/systems.py).
    """

    benchmark: str = MISSING
    scenario: Scenario = MISSING
    # An option of conf/precision/ (the quantization recipe).
    precision: str = MISSING
    tp: int = 1
    pp: int = 1
    # Data-parallel instances in the whole system.
    dp: int = 1
    # The engine's build limits, and the runtime's (None: the build value).
    max_batch_size: int = MISSING
    max_num_tokens: int = MISSING
    runtime_max_batch_size: Optional[int] = None
    runtime_max_num_tokens: Optional[int] = None
    # The fraction of the GPU memory left after the weights that the KV cache takes (TensorRT-LLM's
    # free_gpu_memory_fraction).
    kv_cache_free_gpu_memory_fraction: float = 0.9
    # The arrival rate of a run (scenario.target_qps), from the published throughput.
    target_qps: Optional[float] = None
    # trtllm-build flags beyond the system's build_flags.
    build_flags: BuildFlags = field(default_factory=BuildFlags)
    # The published result these settings gave: output tokens per second of the whole system (MLPERF.md section 6).
    published_tokens_per_s: Optional[float] = None
    # Who published the settings and the result (submitter, round).
    source: str = ""

    @property
    def runtime_batch(self) -> int:
        return self.runtime_max_batch_size or self.max_batch_size

    @property
    def runtime_tokens(self) -> int:
        return self.runtime_max_num_tokens or self.max_num_tokens


@dataclass
class SystemConfig:
    """The machine a run uses and how the backend instances are laid out on it (sut/placement.py).

    `dp` backend instances of `tp` x `pp` devices each. In one process, instance k gets devices
    [k*tp*pp, (k+1)*tp*pp); under mpirun or srun each worker rank hosts the instances of its share of a node's devices.
    dp, tp and pp left unset come from the tuned entry for the run's benchmark and scenario, else 1 (tp, pp) and
    every device (dp).
    """

    name: str = MISSING
    device: Device = Device.cpu
    # The GPU model: a key of llmkit.gpus.GPUS (memory, bandwidth, throughput, SM); None on a CPU system.
    gpu: Optional[str] = None
    # GPUs per node (0 on a CPU system, whose instances all share the CPU).
    devices_per_node: int = 0
    nodes: int = 1
    dp: Optional[int] = None
    tp: Optional[int] = None
    pp: Optional[int] = None
    # trtllm-build flags every engine of this system is built with (a tuned entry adds its own).
    build_flags: BuildFlags = field(default_factory=BuildFlags)
    # The published settings per benchmark x scenario.
    tuned: list[TunedSettings] = field(default_factory=list)
    description: SystemDescription = field(default_factory=SystemDescription)


@dataclass
class BackendConfig:
    """What every backend has. Each backend's own schema adds its knobs (llmkit/config/backends.py): a knob of another
    backend is an unknown key."""

    name: str = MISSING
    # Requests one backend instance serves at a time (its batch, or its slots). Optional only so that a backend may
    # take it from elsewhere (the TensorRT-LLM backends: the system's tuned entry or the engine); the others refuse
    # None with their own int field.
    max_batch_size: Optional[int] = 32

    def problems(self, system: SystemConfig) -> list[str]:
        """What this backend's own settings cannot serve on `system`, one sentence each (a schema adds its rules)."""
        return []

    def weights_dtype(self, precision: PrecisionConfig) -> str:
        """The data type the weights are served in (the submission's weight_data_types)."""
        return precision.name.value


@dataclass
class EvaluationConfig:
    """Scoring a run's accuracy log (`llmkit evaluate`)."""

    # The run directory whose mlperf_log_accuracy.json is scored; its config.yaml names the benchmark and dataset.
    run_dir: Optional[str] = None
    # `llmkit test06 verify`: write the verification here instead of <run>/TEST06 (to verify a run again).
    test06_dir: Optional[str] = None
    # Parallel workers for MBXP programs and ROUGE.
    workers: int = 2
    # MBXP sandbox limits, per program (the reference allows 20 s to run; compile steps get longer).
    timeout_s: float = 20.0
    compile_timeout_s: float = 100.0
    memory_mb: int = 2048
    max_processes: int = 64
    max_file_mb: int = 16


@dataclass
class CalibrationConfig:
    """The calibration set (`llmkit calibrate`): the benchmark's calibration rows, tokenized by the model's tokenizer."""

    # Use the first N rows; None uses all (mixtral's file has ~1000, llama3.1-405b's 512).
    num_samples: Optional[int] = None
    batch_size: int = 8
    # Truncate prompts to this many tokens; None uses the benchmark's max input length.
    max_length: Optional[int] = None
    # Rebuild even when an artifact with the same inputs exists (the old one is kept beside it).
    force: bool = False


class PrecisionName(str, Enum):
    bf16 = "bf16"  # the checkpoint as it is (no quantization)
    fp8 = "fp8"  # FP8 E4M3 weights and activations, per-tensor scales (Hopper and later)
    int8_sq = "int8_sq"  # INT8 weights and activations after SmoothQuant
    w4a8_awq = "w4a8_awq"  # INT4 weights in blocks (AWQ) with FP8 activations
    nvfp4 = "nvfp4"  # NVFP4 weights and activations (Blackwell); calibration needs a CUDA GPU
    autoquant = "autoquant"  # a per-layer search over formats under an effective-bits budget


class KVCacheFormat(str, Enum):
    none = "none"  # the KV cache keeps the activation dtype
    fp8 = "fp8"  # FP8 E4M3 with per-layer K and V scales calibrated with the weights


@dataclass
class PrecisionConfig:
    """What every quantization recipe has (`llmkit quantize`); each recipe's schema adds its own settings
    (llmkit/config/precisions.py) and conf/precision/ holds one file per recipe."""

    name: PrecisionName = MISSING
    kv_cache: KVCacheFormat = KVCacheFormat.none
    # Modules left unquantized (fnmatch patterns over module names).
    exclude: list[str] = field(default_factory=lambda: ["*lm_head*"])


class QuantizeDevice(str, Enum):
    auto = "auto"  # cuda when a GPU is visible, else cpu
    cpu = "cpu"
    cuda = "cuda"


@dataclass
class QuantizeConfig:
    """The quantization stage (`llmkit quantize`): modelopt PTQ, then the TP x PP-sharded TensorRT-LLM checkpoint."""

    device: QuantizeDevice = QuantizeDevice.auto
    # The dtype the checkpoint is loaded and calibrated in (the quality gate's baseline).
    load_dtype: DType = DType.bfloat16
    # The dtype of the TensorRT-LLM checkpoint's unquantized tensors.
    export_dtype: DType = DType.float16
    # Also write the unified Hugging Face checkpoint (hf/ beside the TensorRT-LLM shards).
    export_hf: bool = False
    # Use this calibration artifact (a directory llmkit calibrate wrote) instead of the config's calibration set.
    calibration_dir: Optional[str] = None
    # autoquant: batches of the calibration set that score each layer's formats.
    score_batches: int = 16
    # The quality gate: this many calibration prompts, teacher-forced through the fake-quantized model and the
    # unquantized one; the gate fails when fewer next tokens agree than min_greedy_agreement.
    gate_samples: int = 8
    min_greedy_agreement: float = 0.9
    # Rebuild even when a checkpoint with the same inputs exists (the old one is kept beside it).
    force: bool = False


class Division(str, Enum):
    closed = "closed"
    open = "open"  # no compliance runs and no accuracy targets; the rest of the rules still hold


@dataclass
class SubmissionConfig:
    """Packaging run directories into a submission tree (`llmkit package`)."""

    submitter: str = ""
    division: Division = Division.closed
    # The MLPerf round: it decides the tree's layout and the loadgen seeds the runs must have (llmkit.rounds).
    round: SubmissionRound = V6_0
    # The run directories to package (performance, evaluated accuracy and TEST06 runs per scenario)...
    runs: list[str] = field(default_factory=list)
    # ...or a pipeline directory holding them.
    pipeline_dir: Optional[str] = None
    # Where the tree is written; default submissions/<time>. An existing tree is never overwritten.
    output_dir: Optional[str] = None


@dataclass
class PlanConfig:
    """The memory and throughput planner (`llmkit plan`)."""

    # Write the plan's figures as JSON here.
    json: Optional[str] = None
    # Write the plot (tokens/s and TPOT against batch; the memory breakdown) here; None: beside the JSON, or
    # <runs_root>/plans/<benchmark>-<system>-<scenario>-<time>.png.
    plot: Optional[str] = None
    # Plan this batch and these tokens per iteration instead of the system entry's (None: the entry's, or the
    # planner's own choice when the system has no entry).
    max_batch_size: Optional[int] = None
    max_num_tokens: Optional[int] = None
    kv_cache_free_gpu_memory_fraction: Optional[float] = None


@dataclass
class RunConfig:
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    system: SystemConfig = field(default_factory=SystemConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    loadgen: LoadgenConfig = field(default_factory=LoadgenConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    submission: SubmissionConfig = field(default_factory=SubmissionConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    build: BuildConfig = field(default_factory=BuildConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    # The Slurm job of `llmkit slurm` and the container image of its steps (llmkit/config/cluster.py).
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    containers: ContainersConfig = field(default_factory=ContainersConfig)
    mode: Mode = Mode.performance
    # The run directory; default runs/<benchmark>/<system>/<scenario>/<run-id>. An existing run is never overwritten.
    output_dir: Optional[str] = None
    runs_root: str = "runs"
    artifacts_root: str = "artifacts"
    # Cap new tokens below the benchmark's limit, for quick smoke runs; result.json marks such a run non-compliant.
    max_new_tokens: Optional[int] = None
    # `llmkit pipeline output_dir=DIR resume=true`: go on with an interrupted pipeline, skipping its finished steps.
    resume: bool = False
