"""Experiment settings: one pydantic model fed by a study file (YAML) and CLI flags.

Every ``automl run`` option can come from ``--study FILE``; flags given on the command line win.
Unknown keys in a study file are rejected with a suggestion (a misspelt ``max_epoch`` silently
ignored would run the wrong experiment).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from automl.errors import UserError, did_you_mean, read_user_text
from automl.schema import parse_yaml

ALGORITHMS = ("random", "bayesian", "bfbo", "asha", "hyperband", "hyperband_es", "bohb",
              "async_bohb", "dehb", "pbt", "pb2")


class Settings(BaseModel):
    """Resolved settings of one experiment (also written to the workspace as experiment.yaml)."""

    model_config = ConfigDict(extra="forbid")

    skill_dir: Path | None = Field(None, description="TAO skill folder; default: the bundled SegFormer skill")
    root_dir: Path | None = Field(None, description="dataset root (dataset.segment.root_dir); default: a generated dataset")
    workspace: Path | None = Field(None, description="experiment folder; default: <workspace_root>/<name>-<timestamp>")
    workspace_root: Path = Path("automl-workspaces")
    name: str | None = None
    automl_policy: Literal["on", "off"] = Field(
        "on", description="the skill's per-run switch: on = search; off = one plain training "
        "with the template and the overrides (flag: --policy)")
    algo: Literal[ALGORITHMS] = "bayesian"  # type: ignore[valid-type]
    metric: str = Field("val_miou", description="a KPI the trainer writes to status.json")
    direction: Literal["max", "min"] = "max"
    max_recommendations: int = Field(20, ge=1)
    max_epochs: int | None = Field(None, ge=1, description="R: the largest epoch budget")
    min_epochs: int = Field(1, ge=1)
    reduction_factor: int = Field(3, ge=2)
    max_concurrent: int | None = Field(None, ge=1)
    population_size: int = Field(4, ge=2)
    seed: int | None = None
    fixed_budget: bool = False
    prior: bool = Field(True, description="bohb/async_bohb: the schema's defaults as a prior "
                        "(default configuration first; flag: --no-prior)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="spec overrides KEY: VALUE")
    space_file: Path | None = None
    ranges: list[str] = Field(default_factory=list)
    options: list[str] = Field(default_factory=list)
    pins: list[str] = Field(default_factory=list)
    launcher: Literal["local", "docker"] = "local"
    image: str | None = None
    pull: Literal["missing", "never", "always"] = "missing"
    shm_size: str = "1g"
    docker_network: str | None = None
    mounts: list[Path] = Field(default_factory=list, description="extra host paths mounted "
                               "read-only into trial containers (pretrained weights)")
    cpus_per_trial: float = Field(1.0, gt=0)
    gpus_per_trial: float = Field(0.0, ge=0)
    trial_timeout: float | None = Field(None, gt=0)
    max_retries: int = Field(1, ge=0)
    stop_after_failures: int = Field(3, ge=1, description="stop when this many trials ran and all failed")
    keep_checkpoints: Literal["best", "all"] = "best"
    tracking_uri: str | None = None
    progress: Literal["auto", "rich", "plain", "none"] = "auto"
    address: str | None = None

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        aliases = {"maximize": "max", "minimize": "min"}
        return aliases.get(value, value)

    @field_validator("automl_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        """YAML 1.1 reads a study file's ``automl_policy: off`` as the boolean false."""
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        """An empty metric name matches no KPI: every trial would train in full and the
        experiment would only fail at the end, so it is refused before anything runs."""
        if not value.strip():
            raise ValueError("the metric name is empty; name a KPI the trainer writes to "
                             "status.json, e.g. --metric val_miou (the default)")
        return value.strip()


def _field_names() -> list[str]:
    return list(Settings.model_fields)


# Settings whose command-line flag is not ``--<field name>``.
_FLAG_NAMES = {"automl_policy": "--policy", "overrides": "--set", "pins": "--pin",
              "ranges": "--range", "mounts": "--mount"}


def _flag_name(field: str) -> str:
    """The ``automl run`` flag that sets ``field`` (messages name what the user typed)."""
    return _FLAG_NAMES.get(field, f"--{field.replace('_', '-')}")


def _message(err: dict) -> str:
    """Pydantic's message without its "Value error, " prefix (our validators say it all)."""
    return str(err["msg"]).removeprefix("Value error, ")


def _one_line(exc: ValidationError, source: str) -> UserError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return UserError(f"{source}: unknown key '{key}'{did_you_mean(key, _field_names())}; "
                         f"valid keys: see `automl run --help`")
    value = err.get("input")
    return UserError(f"{source}: '{key}' = {value!r}: {_message(err)}")


def load_study(path: Path) -> dict[str, Any]:
    """Read a study YAML file into a dict of settings (validated later with the CLI flags)."""
    data = parse_yaml(read_user_text(path, "study file", "; check the --study path"), str(path))
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise UserError(f"study file {path}: expected a mapping of settings at the top level")
    data = {str(k).replace("-", "_"): v for k, v in data.items()}
    try:
        Settings(**data)
    except ValidationError as exc:
        raise _one_line(exc, f"study file {path}") from None
    base = path.parent
    for key in ("skill_dir", "root_dir", "workspace", "workspace_root", "space_file"):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str(base / data[key]) if (base / data[key]).exists() else data[key]
    return data


def make_settings(study: dict[str, Any], flags: dict[str, Any]) -> Settings:
    """Study-file values, overridden by the flags the user actually gave."""
    merged = {**study, **{k: v for k, v in flags.items() if v is not None}}
    if "overrides" in study and "overrides" in flags:
        merged["overrides"] = {**study["overrides"], **flags["overrides"]}
    try:
        return Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        if flags.get(key) is not None and key != "overrides" and len(err["loc"]) == 1:
            # Name the flag the user typed (--max-epochs 0), not the settings field.
            raise UserError(f"{_flag_name(key)} {err.get('input')!r}: {_message(err)}") from None
        raise _one_line(exc, "settings") from None
