"""Compose conf/ into a typed RunConfig, catching bad overrides before Hydra turns them into tracebacks."""
from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from llmkit.config import backends, precisions  # noqa: F401  (their schemas register in the ConfigStore)
from llmkit.config.groups import CONF_DIR, group_names, group_options  # noqa: F401  (used by the CLI too)
from llmkit.config.schema import PrecisionName, RunConfig
from llmkit.config.systems import apply_tuned, precision_option
from llmkit.errors import UserError, did_you_mean

SCHEMA_NAME = "run_config_schema"

ConfigStore.instance().store(name=SCHEMA_NAME, node=RunConfig)


def _values(override) -> list[str]:
    if override.is_sweep_override():
        return list(override.sweep_string_iterator())
    return [override.get_value_element_as_str()]


def check_overrides(overrides: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Reject an unknown group value (with a did-you-mean) and, for a single run, anything Hydra cannot compose."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as error:
        raise UserError(f"cannot parse the overrides: {_first_line(error)}; write them as key=value") from None
    groups = group_names(conf_dir)
    for override in parsed:
        key = override.key_or_group
        if key == "hydra/launcher":
            _check_launcher(override, conf_dir)
        if key.startswith("hydra"):
            continue
        if override.is_add() or override.is_force_add():
            raise UserError(
                f"'{override.input_line}' adds a key the schema does not have; every key is declared in "
                "llmkit/config/schema.py, so override an existing one without '+'"
            )
        if key not in groups:
            continue
        options = group_options(key, conf_dir)
        for value in _values(override):
            if value not in options:
                raise UserError(
                    f"'{value}' is not a {key} config{did_you_mean(value, options)}; choose {key}= one of: "
                    f"{', '.join(options)}"
                )
    if not any(o.is_sweep_override() for o in parsed):
        compose(overrides, conf_dir)


# A sweep bigger than this is checked on its first combinations only (each takes ~0.1 s to compose).
MAX_CHECKED_COMBINATIONS = 256


def sweep_combinations(overrides: list[str]) -> list[list[str]]:
    """Every job's own overrides of a `-m` sweep (Hydra's keys left out), in Hydra's order; [] when no override
    sweeps."""
    import itertools

    parsed = OverridesParser.create().parse_overrides(overrides)
    if not any(o.is_sweep_override() for o in parsed):
        return []
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if override.key_or_group.startswith("hydra"):
            continue
        choices.append([f"{key}={value}" for value in _values(override)] if override.is_sweep_override()
                       else [override.input_line])
    return [list(combination) for combination in itertools.islice(itertools.product(*choices),
                                                                    MAX_CHECKED_COMBINATIONS)]


def check_sweep(overrides: list[str], validate) -> None:
    """Compose, type and validate every combination of a sweep before any job starts, so a bad value stops the
    sweep at once instead of after the jobs before it; the error names the combination."""
    for combination in sweep_combinations(overrides):
        try:
            validate(to_run_config(compose(combination)))
        except UserError as error:
            raise UserError(f"the sweep's combination '{' '.join(combination)}' is refused: {error}") from None


def launcher_options(conf_dir: Path = CONF_DIR) -> list[str]:
    """The submitit launchers of conf/hydra/launcher/ (Hydra's in-process `basic` is the default)."""
    return group_options("hydra/launcher", conf_dir)


def _check_launcher(override, conf_dir: Path) -> None:
    from llmkit.config.sweeps import BUILTIN_LAUNCHERS

    options = [*BUILTIN_LAUNCHERS, *launcher_options(conf_dir)]
    for value in _values(override):
        if value not in options:
            raise UserError(f"'{value}' is not a hydra/launcher config{did_you_mean(value, options)}; choose "
                            f"hydra/launcher= one of: {', '.join(options)}")


def compose(overrides: list[str], conf_dir: Path = CONF_DIR) -> DictConfig:
    """Compose the config as Hydra would for these overrides (Hydra's own keys are dropped), with the precision
    recipe the system's tuned entry names when no `precision=` is given."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    own = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=own)
        _choose_precision(cfg, own, conf_dir)
        return cfg
    except (HydraException, OmegaConfBaseException) as error:
        raise UserError(_explain(error)) from None


_UNKNOWN_KEY = re.compile(r"Key '([^']+)' not in '([^']+)'")
_FULL_KEY = re.compile(r"full_key: (\S+)")
_INVALID_VALUE = re.compile(r"(Invalid value .*|Value '.*' (?:could not be converted|is not a valid).*)")


def _explain(error: BaseException) -> str:
    text = "\n".join(str(e) for e in _chain(error))
    unknown = _UNKNOWN_KEY.search(text)
    if unknown:
        key, schema = unknown.groups()
        full = _FULL_KEY.search(text)
        known = _schema_fields(schema)
        where = full.group(1) if full else key
        owner = backends.owner_of(key) if where.startswith("backend.") else None
        if owner is not None:
            return (f"'{where}' is a setting of backend={owner}, which this config does not use; choose "
                    f"backend={owner} or drop it")
        return (
            f"unknown config key '{where}'{did_you_mean(key, known)}; {schema} has: {', '.join(known)}"
        )
    invalid = _INVALID_VALUE.search(text)
    if invalid:
        full = _FULL_KEY.search(text)
        where = full.group(1) if full else "a key"
        return f"{where}: {invalid.group(0).rstrip('.')}; fix the value in the override or the YAML"
    return f"invalid configuration: {_first_line(error)}; check the override's key and value"


def _chain(error: BaseException):
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def _first_line(error: BaseException) -> str:
    for e in _chain(error):
        for line in str(e).splitlines():
            if line.strip():
                return line.strip().rstrip(".")
    return type(error).__name__


def _schema_fields(schema_name: str) -> list[str]:
    from llmkit.config import schema as schema_module

    for module in (schema_module, backends, precisions):
        cls = getattr(module, schema_name, None)
        if cls is not None and is_dataclass(cls):
            return [f.name for f in fields(cls)]
    return []


def _choose_precision(cfg: DictConfig, overrides: list[str], conf_dir: Path = CONF_DIR) -> None:
    """Without `precision=`, the system's tuned entry names the recipe (else bf16): its YAML over its schema, with
    any `precision.KEY=` among the overrides on top (even one that repeats the default)."""
    option = precision_option(cfg)
    if option is None:
        return
    path = conf_dir / "precision" / f"{option}.yaml"
    if not path.is_file():
        raise UserError(f"system={cfg.system.name} names precision '{option}', which is not a precision config"
                        f"{did_you_mean(option, group_options('precision', conf_dir))}; fix its tuned entry")
    body = OmegaConf.load(path)
    schema_name = next(iter(body.pop("defaults")))
    schema = {f"{name.value}_schema": cls for name, cls in precisions.PRECISIONS.items()}[schema_name]
    keys = [o.lstrip("+~").split("=", 1)[0] for o in overrides]
    given = {key.split(".")[1] for key in keys if key.startswith("precision.")}
    user = {key: cfg.precision[key] for key in given if key in cfg.precision}
    cfg.precision = OmegaConf.merge(OmegaConf.structured(schema), body, user)


def _job_overrides() -> list[str]:
    """The running Hydra job's overrides (a config from compose() has its precision chosen already)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def to_run_config(cfg: DictConfig) -> RunConfig:
    """The typed config object (Hydra has already checked keys and types against the schema), with what the user
    left unset taken from the system's tuned entry for the benchmark and scenario (llmkit/config/systems.py)."""
    try:
        _choose_precision(cfg, _job_overrides())
        run_config = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as error:
        raise UserError(_explain(error)) from None
    if not isinstance(run_config, RunConfig):
        raise UserError("the composed config is not a RunConfig; conf/config.yaml must keep run_config_schema first")
    apply_tuned(run_config)
    return run_config


def load(overrides: list[str] | None = None, serving: bool = True) -> RunConfig:
    """Compose and validate in one call (tests, `llmkit validate`, the pipeline); `serving=False` for the
    quantize stage, which runs no loadgen and no backend."""
    from llmkit.config.validate import require_valid

    overrides = list(overrides or [])
    check_overrides(overrides)
    run_config = to_run_config(compose(overrides))
    require_valid(run_config, serving)
    return run_config


def saved_run_config(path: Path) -> RunConfig:
    """The RunConfig written into a run directory (its config.yaml), typed by the schemas of its own options."""
    try:
        saved = OmegaConf.load(path)
        schema = OmegaConf.structured(RunConfig)
        backend, precision = saved.get("backend"), saved.get("precision")
        if backend is not None and backend.get("name") in backends.BACKENDS:
            schema.backend = OmegaConf.structured(backends.BACKENDS[backend.name].schema)
        if precision is not None and precision.get("name") in {p.value for p in precisions.PRECISIONS}:
            schema.precision = OmegaConf.structured(precisions.PRECISIONS[PrecisionName(precision.name)])
        run_config = OmegaConf.to_object(OmegaConf.merge(schema, saved))
    except Exception as error:  # omegaconf and yaml raise several types for a damaged or foreign file
        raise UserError(f"{path} is not a valid llmkit run config ({type(error).__name__}); was it edited?") from None
    if not isinstance(run_config, RunConfig):
        raise UserError(f"{path} is not an llmkit run config; was it edited?")
    return run_config
