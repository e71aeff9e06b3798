"""Request and response bodies of the API (pydantic: validation, 422 field errors, OpenAPI).

The create body is everything a study file can say (:class:`automl.study.Settings`, generated
from it so the two never drift), minus what the server owns (workspace, MLflow store, Ray
address, progress display), plus TAO's ``automl_settings`` names, flat or nested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from automl.service.door import MAX_NAME
from automl.study import Settings

SERVER_OWNED = ("workspace", "workspace_root", "tracking_uri", "progress", "address")

# TAO automl_settings name -> study-file name (same meaning).
TAO_NAMES = {
    "automl_algorithm": "algo",
    "automl_max_recommendations": "max_recommendations",
    "automl_max_epochs": "max_epochs",
    "automl_reduction_factor": "reduction_factor",
    "automl_max_concurrent": "max_concurrent",
    "automl_population_size": "population_size",
    "automl_R": "max_epochs",  # TAO's older names for the Hyperband R and η
    "automl_nu": "reduction_factor",
}


class RangeOverride(BaseModel):
    """One entry of TAO's ``automl_range_override``."""

    model_config = ConfigDict(extra="forbid")
    parameter: str
    valid_min: float | None = None
    valid_max: float | None = None
    valid_options: list[Any] | None = None


class AutomlSettings(BaseModel):
    """TAO's ``automl_settings`` names."""

    model_config = ConfigDict(extra="forbid")
    automl_algorithm: str | None = None
    automl_max_recommendations: int | None = None
    automl_max_epochs: int | None = None
    automl_reduction_factor: int | None = None
    automl_max_concurrent: int | None = None
    automl_population_size: int | None = None
    automl_R: int | None = Field(None, ge=1, description="TAO's name for automl_max_epochs")
    automl_nu: int | None = Field(None, ge=2, description="TAO's name for "
                                  "automl_reduction_factor")
    epoch_multiplier: int | None = Field(
        None, ge=1, le=1000, description="TAO's budget unit: budgets are multiples of it, the "
        "smallest is epoch_multiplier epochs and the largest max_epochs × epoch_multiplier")
    automl_enabled: bool | None = Field(None, description="false: one plain training "
                                        "(automl_policy off)")
    automl_delete_intermediate_ckpt: bool | None = Field(
        None, description="true: keep the best trial's checkpoints only (keep_checkpoints best); "
        "false: keep all")
    automl_hyperparameters: list[str] | str | None = Field(
        None, description="the parameters to search instead of the schema's defaults: a list, "
        "or a string holding one as TAO sends it")
    automl_range_override: list[RangeOverride] | None = None
    override_automl_disabled_params: bool = Field(
        False, description="TAO's switch to search disabled parameters; not supported (false only)")
    metric: str | None = None


_study_fields: dict[str, Any] = {
    name: (info.annotation | None, Field(None, description=info.description))
    for name, info in Settings.model_fields.items() if name not in SERVER_OWNED
}
# The copies above are optional and unbounded; a name needs a bound a shared server sets (it
# becomes a folder name), and the seed keeps the study file's own (0..automl.study.SEED_MAX).
_study_fields["name"] = (str | None, Field(None, max_length=MAX_NAME, description="the "
                                          "experiment's name (its workspace folder starts with it)"))
_study_fields["seed"] = (int | None, Settings.model_fields["seed"])

ExperimentCreate = create_model(
    "ExperimentCreate",
    __base__=AutomlSettings,
    __doc__="A new experiment: study-file keys and/or TAO automl_settings names.",
    skill=(str | None, Field(None, description="a skill name from GET /skills (instead of skill_dir)")),
    space=(dict[str, Any] | None, Field(None, description="search-space overrides, as a space "
                                       "file: parameters / only / exclude")),
    automl_settings=(AutomlSettings | None, None),
    **_study_fields,
)


class Best(BaseModel):
    rec_id: str
    score: float
    observed_budget: int
    checkpoint: str | None = Field(None, description="the exact checkpoint at the observed budget")
    checkpoint_epoch: int | None = Field(None, description="TAO's 0-based epoch in its name")


class Progress(BaseModel):
    trials_total: int = 0
    trials_done: int = 0
    trials_running: int = 0
    trials_failed: int = 0
    epochs_spent: int = 0
    epoch_budget: int | None = None
    best: Best | None = None


class ExperimentOut(BaseModel):
    id: str
    name: str
    owner: str
    state: str
    algorithm: str
    metric: str
    direction: str
    created: float
    started: float | None
    ended: float | None
    error: str | None
    workspace: str
    progress: Progress
    trials_version: int = Field(description="pass as ?after= to list the trials changed since")
    settings: dict[str, Any]
    mlflow_runs: str | None = Field(None, description="the MLflow UI's path (after its address) "
                                    "to this experiment's runs; `automl ui WORKSPACE` serves it")
    mlflow_url: str | None = Field(None, description="the same page at the server's `--mlflow-ui` "
                                   "address (what the web page links to)")
    ignored: list[str] = Field(default_factory=list, description="keys of a submitted study "
                               "that the server owns and so ignored (workspace, progress, ...)")


class PaginationInfo(BaseModel):
    total_records: int
    total_pages: int
    page_size: int
    page_index: int


class ExperimentList(BaseModel):
    experiments: list[ExperimentOut]
    pagination_info: PaginationInfo


class TrialOut(BaseModel):
    rec_id: str
    index: int
    status: str
    score: float | None
    observed_budget: int
    budget: int
    params: dict[str, Any]
    results: list[dict[str, float]]
    failure_class: str | None = None
    failure_message: str = ""
    hint: str = Field("", description="what to do about the failure class, in one line")
    rung: int | None = None
    bracket: int | None = None
    parent: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    runs: list[list[float | None]] = Field(
        default_factory=list, description="[start, end] of each stretch a trainer ran for the "
        "trial (end null while it runs); a trial waiting at a rung holds no slot")
    retries: int = 0
    version: int


class StudyText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    study: str = Field(max_length=100_000, description="a study file's YAML text: the keys of "
                       "POST /experiments")


class TrialList(BaseModel):
    trials: list[TrialOut]
    last_version: int = Field(description="the newest version seen: the next poll's ?after=")


class HandoffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(description="evaluate | export | inference | quantize")
    run: bool = False
    checkpoint: Literal["best", "latest"] = "best"
    root_dir: Path | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)


class HandoffOut(BaseModel):
    action: str
    rec_id: str
    spec_path: str
    checkpoint: str
    command: list[str]
    ran: bool
    ok: bool
    exit_code: int | None
    status: str
    kpis: dict[str, float]
    message: str


class SkillInput(BaseModel):
    """One data input the skill's train action declares (``data: {key: path}`` sets it)."""

    key: str = Field(description="the spec key, as skill_info.yaml actions.train.inputs names it")
    kind: Literal["file", "folder"]
    optional: bool


class SkillOut(BaseModel):
    name: str
    path: str
    network_arch: str | None
    actions: list[str]
    metric: str | None = Field(description="the network's monitoring metric (TAO's), used when "
                               "a request names none; null: the request must name one")
    direction: Literal["max", "min"] | None = Field(description="that metric's direction")
    inputs: list[SkillInput] = Field(description="the train action's data inputs")
    bundled: bool = Field(description="the bundled trainer: with no data given it trains on a "
                          "generated dataset, with the embedded default's settings")


class AlgorithmOut(BaseModel):
    """One ``algo`` choice, from the algorithm registry."""

    name: str
    search: str = Field(description="what proposes configurations")
    scheduler: str = Field(description="what decides how long a trial trains")
    budget: str = Field(description="full: every trial trains the whole budget; else how "
                        "budgets are split")
    population: bool = Field(description="trains population_size trials instead of "
                             "max_recommendations configurations")
    default: bool = Field(description="the algorithm a request that names none runs")


class Me(BaseModel):
    name: str
    is_admin: bool


class CheckpointOut(BaseModel):
    name: str
    epochs: int = Field(description="epochs completed when it was written")
    step: int
    bytes: int
    finished_epoch: bool = Field(description="written at the end of an epoch (false: TAO's "
                                 "exception checkpoint of an interrupted epoch)")


class TrialDetails(BaseModel):
    """What a trial's folder shows about it (the web page's trial page)."""

    spec: str = Field(description="the spec the trainer ran with, secrets hidden")
    status_lines: list[str] = Field(description="the last lines of TAO's status.json")
    log_tail: list[str] = Field(description="the last lines of the trial's train.log")
    checkpoints: list[CheckpointOut]


class ParamAxis(BaseModel):
    """A searched parameter's axis, as the views draw it."""

    name: str
    kind: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] = Field(default_factory=list)


class AnalysisOut(BaseModel):
    """What the page's analysis views need the server for."""

    importances: dict[str, float] = Field(description="parameter -> fANOVA importance (Optuna), "
                                          "summing to 1, largest first; empty when it cannot be "
                                          "computed yet")
    importance_note: str = Field(description="which trials were used, or why there is none yet")
    params: list[ParamAxis] = Field(description="each parameter's search range, scale or choices")
    best_rec: dict[str, Any] | None = Field(description="best_rec.json once the experiment has "
                                            "written it (comparison_to_baseline, pareto_front "
                                            "where present)")
    best_note: str = Field("", description="why best_rec.json is not shown, when it is not")
