"""Experiment settings: one pydantic model fed by a study file (YAML) and CLI flags.

Every ``automl run`` option can come from ``--study FILE``; flags given on the command line win.
Unknown keys in a study file are rejected with a suggestion (a misspelt ``max_epoch`` silently
ignored would run the wrong experiment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from automl.algorithms import ALGORITHMS
from automl.algorithms import DEFAULT as DEFAULT_ALGORITHM
from automl.errors import UserError, did_you_mean, read_user_text
from automl.skill.schema import parse_yaml
from automl.validation import STUDY, validate
from launchers import LAUNCHERS


# numpy's and Optuna's seeds are unsigned 32-bit (samplers that derive per-proposal seeds
# from it hash it back into that range).
SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Flag:
    """How a setting is given on ``automl run``: declared beside the field, so that a setting is
    declared once (the CLI builds its flags from these; pydantic ignores this metadata)."""

    help: str
    name: str | None = None  # default: --<field name with dashes>
    metavar: str | None = None
    const: Any = True  # what a bool switch stores (``--no-prior`` stores False)


class ObjectiveSetting(BaseModel):
    """One objective as TAO AutoML's ``objectives:`` entries name it (``--objective`` takes
    ``NAME[:max|min][:weight]``); automl.objective resolves it once per experiment."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, description="a KPI the trainer writes to status.json, or "
                        "checkpoint_mb (measured after the trial)")
    direction: Literal["max", "min"] | None = Field(
        None, description="max or min; default: TAO AutoML's name rule (checkpoint_mb: min)")
    weight: float = Field(1.0, gt=0, description="weight in the weighted sum (--scalarize "
                          "weighted)")
    scale: float = Field(1.0, gt=0, description="divides the value in the weighted sum (puts "
                         "objectives of different units on one footing)")

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        return {"maximize": "max", "minimize": "min"}.get(value, value)

    @model_validator(mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        """``--objective val_miou:max:2`` arrives as text."""
        from automl.objective import parse_objective

        return parse_objective(value) if isinstance(value, str) else value


class Settings(BaseModel):
    """Resolved settings of one experiment (also written to the workspace as experiment.yaml)."""

    model_config = ConfigDict(extra="forbid")

    skill_dir: Annotated[Path | None, Flag(
        "TAO skill folder (schemas/, references/); default: bundled SegFormer")] = Field(
        None, description="TAO skill folder; default: the bundled SegFormer skill")
    root_dir: Annotated[Path | None, Flag(
        "dataset root, for a network that reads one folder (SegFormer's dataset.segment.root_dir);"
        " default: generated")] = Field(
        None, description="dataset root, the network's one folder input (SegFormer: "
        "dataset.segment.root_dir); default: a generated dataset")
    data: Annotated[dict[str, Path], Flag(
        "a data input the skill's train action declares (repeatable)", metavar="KEY=PATH")] = Field(
        default_factory=dict, description="data inputs KEY: PATH, keys as the skill's "
        "skill_info.yaml actions.train.inputs declares them")
    workspace: Annotated[Path | None, Flag(
        "experiment folder (default: <workspace-root>/<name>-<time>)")] = Field(
        None, description="experiment folder; default: <workspace_root>/<name>-<timestamp>")
    workspace_root: Annotated[Path, Flag(
        "where new workspaces go (default: ./automl-workspaces)")] = Path("automl-workspaces")
    name: Annotated[str | None, Flag("experiment name")] = None
    automl_policy: Annotated[Literal["on", "off", "auto"], Flag(
        "the skill's automl_policy for this run: on (default; auto means on) searches; off runs "
        "one plain training with the template and --set overrides (still writes best_rec.json)",
        name="--policy", metavar="on|off|auto")] = Field(
        "on", description="the skill's per-run switch: on (or auto, the newer skill texts' "
        "word) = search; off = one plain training with the template and the overrides "
        "(flag: --policy)")
    algo: Annotated[Literal[tuple(ALGORITHMS)],  # type: ignore[valid-type]
                    Flag(" | ".join(ALGORITHMS))] = DEFAULT_ALGORITHM
    metric: Annotated[str | None, Flag(
        "metric to optimize, as written in status.json kpi (default: the network's monitoring "
        "metric, e.g. val_miou for SegFormer)")] = Field(
        None, description="a KPI the trainer writes to status.json; default: the network's "
        "monitoring metric (TAO's)")
    direction: Annotated[Literal["max", "min"] | None, Flag(
        "max or min (default: min for loss/error/latency-like names, else max)")] = Field(
        None, description="max or min; default: min for a loss/error/latency-like metric name, "
        "else max (TAO AutoML's rule)")
    objectives: Annotated[list[ObjectiveSetting], Flag(
        "an objective (repeatable; the first is the primary): a KPI from status.json or "
        "checkpoint_mb (the scored checkpoint's size); direction default as --direction, "
        "weight 1 (used by --scalarize weighted)", name="--objective",
        metavar="NAME[:max|min][:weight]")] = Field(
        default_factory=list, description="several objectives, TAO AutoML's shape "
        "[{metric, direction, weight, scale}]; the first is the primary; empty: metric/"
        "direction (one objective)")
    scalarize: Annotated[Literal["pareto", "weighted"], Flag(
        "several objectives: pareto (default: multi-objective search, Optuna's MOTPE/random) "
        "or weighted (TAO's weighted sum of weight*value/scale)")] = Field(
        "pareto", description="how several objectives are searched: pareto (multi-objective "
        "samplers) or weighted (one weighted sum, as TAO AutoML)")
    max_recommendations: Annotated[int, Flag("number of trials (default 20)")] = Field(20, ge=1)
    max_epochs: Annotated[int | None, Flag(
        "largest epoch budget R (default: min(27, spec num_epochs))")] = Field(
        None, ge=1, description="R: the largest epoch budget")
    min_epochs: Annotated[int, Flag(
        "smallest budget r for multi-fidelity algorithms (default 1)")] = Field(1, ge=1)
    reduction_factor: Annotated[int, Flag("η for successive halving (default 3)")] = Field(3, ge=2)
    max_concurrent: Annotated[int | None, Flag(
        "trials at once (default: CPUs / cpus-per-trial)")] = Field(None, ge=1)
    population_size: Annotated[int, Flag("PBT population (default 4)")] = Field(4, ge=2)
    seed: Annotated[int | None, Flag("random seed (same seed, same suggestions)")] = Field(
        None, ge=0, le=SEED_MAX, description=f"random seed, 0 to {SEED_MAX} (same seed, same "
        "suggestions); default: drawn once and recorded")
    fixed_budget: Annotated[bool, Flag("lock train.num_epochs for every trial")] = False
    prior: Annotated[bool, Flag(
        "bohb/async_bohb: do not use the schema's defaults as a prior", name="--no-prior",
        const=False)] = Field(True, description="bohb/async_bohb: the schema's defaults as a "
                              "prior (default configuration first; flag: --no-prior)")
    surrogate: Annotated[Literal["gp", "tpe"], Flag(
        "bohb/async_bohb's model: gp (a Gaussian process over configuration and budget, "
        "MOBSTER-style) or tpe (one TPE over every rung's results); a Pareto search uses "
        "multi-objective TPE")] = Field(
        "gp", description="bohb/async_bohb's model: gp (a GP over configuration and budget) "
        "or tpe (one TPE over every rung); a Pareto search uses multi-objective TPE")
    overrides: Annotated[dict[str, Any], Flag(
        "spec override (repeatable)", name="--set", metavar="KEY=VALUE")] = Field(
        default_factory=dict, description="spec overrides KEY: VALUE")
    space_file: Annotated[Path | None, Flag("YAML/JSON search-space overrides")] = None
    ranges: Annotated[list[str], Flag(
        "search range override", name="--range", metavar="NAME=MIN:MAX")] = Field(
        default_factory=list)
    options: Annotated[list[str], Flag(
        "categorical options override", metavar="NAME=A,B")] = Field(default_factory=list)
    pins: Annotated[list[str], Flag(
        "fix a parameter to one value", name="--pin", metavar="NAME=VALUE")] = Field(
        default_factory=list)
    launcher: Annotated[Literal[tuple(LAUNCHERS)],  # type: ignore[valid-type]
                        Flag(" or ".join(n + " (default)" * (n == "local") for n in LAUNCHERS))
                        ] = "local"
    image: Annotated[str | None, Flag(
        "container image (default: skill_info.yaml container_image)")] = None
    pull: Annotated[Literal["missing", "never", "always"], Flag(
        "docker: missing (default) | never | always")] = "missing"
    shm_size: Annotated[str, Flag("docker: /dev/shm per trial container (default 1g)")] = "1g"
    docker_network: Annotated[str | None, Flag(
        "docker: network mode (default: Docker's; 'host' for multi-node)")] = None
    mounts: Annotated[list[Path], Flag(
        "docker: extra host path mounted read-only at the same path (repeatable)",
        name="--mount", metavar="PATH")] = Field(
        default_factory=list, description="extra host paths mounted read-only into trial "
        "containers (pretrained weights)")
    cpus_per_trial: Annotated[float, Flag("CPUs per trial (default 1)")] = Field(1.0, gt=0)
    gpus_per_trial: Annotated[float, Flag("GPUs per trial (default 0)")] = Field(0.0, ge=0)
    trial_timeout: Annotated[float | None, Flag(
        "seconds before a trial is stopped as hung")] = Field(None, gt=0)
    max_retries: Annotated[int, Flag(
        "retries of infrastructure failures (default 1)")] = Field(1, ge=0)
    stop_after_failures: Annotated[int, Flag(
        "stop when this many trials all failed (default 3)")] = Field(
        3, ge=1, description="stop when this many trials ran and all failed")
    keep_checkpoints: Annotated[Literal["best", "all"], Flag("best (default) or all")] = "best"
    tracking_uri: Annotated[str | None, Flag(
        "MLflow tracking URI (default: sqlite in the workspace)")] = None
    progress: Annotated[Literal["auto", "rich", "plain", "none"], Flag(
        "auto | rich | plain | none")] = "auto"
    address: Annotated[str | None, Flag(
        "Ray cluster: HOST:PORT of a cluster node, or auto")] = None

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        aliases = {"maximize": "max", "minimize": "min"}
        return aliases.get(value, value)

    @field_validator("automl_policy", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        """YAML 1.1 reads a study file's ``automl_policy: off`` as the boolean false; the newer
        skill texts say ``auto``, which means on (search when the skill allows it)."""
        if isinstance(value, bool):
            return {True: "on", False: "off"}[value]
        return "on" if value == "auto" else value

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        """An empty metric name matches no KPI: every trial would train in full and the
        experiment would only fail at the end, so it is refused before anything runs."""
        if value is None:
            return None
        if not value.strip():
            raise ValueError("the metric name is empty; name a KPI the trainer writes to "
                             "status.json, e.g. --metric val_miou, or leave --metric out for "
                             "the network's own")
        return value.strip()


def _field_names() -> list[str]:
    return list(Settings.model_fields)


def flag_of(field: str) -> Flag | None:
    """The :class:`Flag` declared on a Settings field (None: the setting has no flag)."""
    return next((m for m in Settings.model_fields[field].metadata if isinstance(m, Flag)), None)


def flag_name(field: str) -> str:
    """The ``automl run`` flag that sets ``field`` (messages name what the user typed)."""
    flag = flag_of(field)
    return (flag.name if flag and flag.name else None) or f"--{field.replace('_', '-')}"


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
    # The published schema (editors complete study files with it) must accept what runs.
    validate(data, STUDY, f"study file {path}", "see `automl run --help`")
    base = path.parent
    for key in ("skill_dir", "root_dir", "workspace", "workspace_root", "space_file"):
        if isinstance(data.get(key), str) and not Path(data[key]).is_absolute():
            data[key] = str(base / data[key]) if (base / data[key]).exists() else data[key]
    if isinstance(data.get("data"), dict):  # data inputs, relative to the study file like the rest
        data["data"] = {k: str(base / v) if isinstance(v, str) and not Path(v).is_absolute()
                        and (base / v).exists() else v for k, v in data["data"].items()}
    return data


def make_settings(study: dict[str, Any], flags: dict[str, Any]) -> Settings:
    """Study-file values, overridden by the flags the user actually gave."""
    merged = {**study, **{k: v for k, v in flags.items() if v is not None}}
    for key in ("overrides", "data"):  # --set / --data add to the study file's (none: None)
        if study.get(key) and flags.get(key):
            merged[key] = {**study[key], **flags[key]}
    try:
        return Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else ""
        if flags.get(key) is not None and key != "overrides" and len(err["loc"]) == 1:
            # Name the flag the user typed (--max-epochs 0), not the settings field.
            raise UserError(f"{flag_name(key)} {err.get('input')!r}: {_message(err)}") from None
        raise _one_line(exc, "settings") from None


# The embedded default (``automl run`` with no skill): sized to finish in minutes on a 2-core
# laptop. The CLI, the service and the web form's empty submission all start from it.
EMBEDDED_DEFAULTS = {"max_recommendations": 6, "name": "segformer-quickstart"}


def run_flag_fields() -> list[str]:
    """The Settings fields ``automl run`` takes as flags (the remote client sends the same)."""
    return [field for field in Settings.model_fields if flag_of(field) is not None]


def trial_count(settings: Settings) -> int:
    """PBT/PB2 train a fixed population; the other algorithms try max_recommendations configs."""
    from automl.algorithms import get_algorithm

    return get_algorithm(settings.algo).trial_count(settings.max_recommendations,
                                                    settings.population_size)
