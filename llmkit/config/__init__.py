"""Typed configuration: dataclass schemas in Hydra's ConfigStore, composed from conf/ and validated once."""
from llmkit.config.schema import (  # noqa: F401
    BackendConfig,
    BackendName,
    DatasetConfig,
    DType,
    EvaluationConfig,
    LoadgenConfig,
    Mode,
    ModelConfig,
    RunConfig,
    ScenarioConfig,
    SystemConfig,
)
