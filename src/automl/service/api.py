"""The REST API (``/api/v1``), TAO's names where TAO has one.

Every route but ``/api/v1/health`` needs ``Authorization: Bearer <token>`` (401 without a valid
one). Users see and act on their own experiments (403 on another user's), admins on all. A body
that fails validation is 422 with field errors; an action the state forbids is 409
(:mod:`.states`). Routes are plain functions: FastAPI runs them in its thread pool, so a slow
database or file read never blocks the event loop.
"""


import asyncio
import math
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from sqlalchemy import func, select

from automl.errors import UserError
from automl.results.failures import HINTS
from automl.results.journal import journal_path
from automl.secrets import redact_assignments
from automl.service import auth
from automl.service.door import (
    FOLDER_NAME,
    BadInput,
    BodyGuard,
    Limits,
    SecurityHeaders,
    check_numbers,
    check_strings,
    refuse_yaml_aliases,
)
from automl.service.models import (
    SERVER_OWNED,
    AlgorithmOut,
    AnalysisOut,
    ExperimentCreate,
    ExperimentList,
    ExperimentOut,
    HandoffIn,
    HandoffOut,
    Me,
    SkillInput,
    SkillOut,
    StudyText,
    TrialDetails,
    TrialList,
    TrialOut,
)
from automl.service.paths import PathRule, inside
from automl.service.runner import Runner
from automl.service.states import TERMINAL, Conflict, State, after_action
from automl.service.store import Experiment, Store, Trial, User
from automl.service.submit import Policy, bundled, resolve
from automl.service.summary import progress, shown_progress, shown_status
from automl.skill.schema import parse_yaml


@dataclass
class Config:
    root: Path
    allowed_roots: list[Path]
    skills: dict[str, Path] = field(default_factory=dict)  # name -> folder
    defaults: dict[str, Any] = field(default_factory=dict)  # when no skill is named
    mlflow_ui: str = "http://127.0.0.1:5000"  # where users' browsers reach `automl ui` (--mlflow-ui)
    limits: Limits = field(default_factory=Limits)  # --limit-*
    allow_images: tuple[str, ...] = ()  # --allow-image
    allow_host_network: bool = False  # --allow-host-network
    cluster: dict[str, float] = field(default_factory=dict)  # Ray's totals, once Ray is up

    def policy(self) -> Policy:
        return Policy(paths=PathRule(self.allowed_roots, self.skills.values(), self.root),
                      limits=self.limits, images=self.allow_images,
                      host_network=self.allow_host_network, cluster=self.cluster)


WEB = Path(__file__).parent / "web"  # the page at GET / (package data: plain HTML, JS, CSS)
SORTS = {"date-descending": Experiment.created.desc(), "date-ascending": Experiment.created.asc(),
         "name-ascending": Experiment.name.asc(), "name-descending": Experiment.name.desc()}
_bearer = HTTPBearer(auto_error=False, description="a token from `automl token create`")
# OpenAPI links from a created experiment to what can be done with it next: clients (and
# schemathesis's stateful phase) follow the new id from the create response.
_NEXT = {"GetExperiment": "get_experiment_api_v1_experiments__experiment_id__get",
         "ListTrials": "list_trials_api_v1_experiments__experiment_id__trials_get",
         "ExperimentLog": "experiment_log_api_v1_experiments__experiment_id__log_get",
         "PauseExperiment": "pause_experiment_api_v1_experiments__experiment_id__pause_post",
         "ResumeExperiment": "resume_experiment_api_v1_experiments__experiment_id__resume_post",
         "CancelExperiment": "cancel_experiment_api_v1_experiments__experiment_id__cancel_post",
         "DeleteExperiment": "delete_experiment_api_v1_experiments__experiment_id__delete"}
_CREATED = {201: {"description": "the experiment, queued", "links": {
    name: {"operationId": op, "parameters": {"experiment_id": "$response.body#/id"}}
    for name, op in _NEXT.items()}},
    413: {"description": "the request body is over the server's limit (--limit-body-bytes)"}}
_ERRORS = {401: {"description": "missing, invalid or revoked token"},
           403: {"description": "another user's experiment"},
           404: {"description": "no such experiment or trial"}}


def _out(row: Experiment, owner: str) -> ExperimentOut:
    s = row.settings
    return ExperimentOut(
        id=row.id, name=row.name, owner=owner, state=row.state, algorithm=s.get("algo", ""),
        metric=s.get("metric", ""), direction=s.get("direction", ""), created=row.created,
        started=row.started, ended=row.ended, error=row.error, workspace=row.workspace,
        progress=shown_progress(row.progress or {}, row.pid is not None),
        trials_version=row.version, settings=s)


def _trial_out(row: Trial, live: bool) -> TrialOut:
    """``live``: the experiment's run is going (a child process runs it)."""
    r = row.record
    observed = max((int(x["epoch"]) for x in r.get("results") or []), default=0)
    failure = r.get("failure_class")
    fields = {k: r.get(k) for k in TrialOut.model_fields if k in r and k != "status"}
    if fields.get("failure_message"):  # a trainer's message may echo a secret (a key=value)
        fields["failure_message"] = redact_assignments(fields["failure_message"])
    return TrialOut(**fields,
                    status=shown_status(row.status, live), score=row.score, observed_budget=observed,
                    hint=HINTS.get(failure, HINTS["error"]) if failure else "",
                    version=row.version)


def _handoff_path_keys(workspace: Path, action: str) -> dict[str, str]:
    """The path keys of a hand-off action of the experiment's skill, under their full and their
    shorthand names; none when the workspace names no loadable skill (the hand-off then refuses
    on its own, and override values that read as paths are still checked)."""
    from automl.networks import profile_for
    from automl.results.workspace import Workspace
    from automl.skill.folder import SkillDir

    try:
        skill = SkillDir.load(Workspace.open(workspace).read_experiment()["skill_dir"])
    except (UserError, OSError, KeyError, TypeError):
        return {}
    keys = profile_for(skill).path_keys(action)
    return {**keys, **{short: keys[full] for short, full in skill.shorthand().items()
                       if full in keys}}


def _identity(path: Path) -> tuple[int, ...]:
    """A file's (inode, size, mtime): changes whenever it is replaced or appended to."""
    try:
        stat = path.stat()
    except OSError:
        return (0, 0, 0)
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _skill_out(name: str, path: Path) -> SkillOut:
    from automl.networks import default_direction, profile_for
    from automl.skill.folder import SkillDir

    skill = SkillDir.load(path)
    profile = profile_for(skill)
    metric = profile.metric
    return SkillOut(name=name, path=str(path), network_arch=skill.network_arch,
                    actions=skill.actions(), metric=metric,
                    direction=default_direction(metric) if metric else None,
                    inputs=[SkillInput(key=i.key, kind=i.kind, optional=i.optional)
                            for i in profile.data_inputs().values()],
                    bundled=bundled(path))


def create_app(store: Store, runner: Runner, config: Config) -> FastAPI:
    from fastapi_offline import FastAPIOffline

    # /docs and /redoc from the assets fastapi-offline ships (FastAPI's own pages load them from
    # a CDN: blank offline).
    app = FastAPIOffline(title="automl", version="1", static_url="/docs-assets",
                         favicon_url="/favicon.ico",
                         description="Hyperparameter optimization service for TAO-style "
                                     "training jobs.")
    app.add_middleware(BodyGuard, max_bytes=config.limits.body_bytes)
    app.add_middleware(SecurityHeaders)
    api = APIRouter(prefix="/api/v1")

    policy = config.policy()

    def principal(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
                  ) -> auth.Principal:
        who = auth.authenticate(store, creds.credentials) if creds else None
        if who is None:
            raise HTTPException(401, "missing, invalid or revoked bearer token",
                                headers={"WWW-Authenticate": "Bearer"})
        return who

    Who = Annotated[auth.Principal, Depends(principal)]

    def owned(session, experiment_id: str, who: auth.Principal) -> Experiment:
        row = session.get(Experiment, experiment_id)
        if row is None:
            raise HTTPException(404, f"no experiment {experiment_id}")
        if row.owner_id != who.user_id and not who.is_admin:
            raise HTTPException(403, "this experiment belongs to another user")
        return row

    def owner_name(session, row: Experiment) -> str:
        return session.scalar(select(User.name).where(User.id == row.owner_id)) or "?"

    @app.exception_handler(BadInput)
    async def _bad_input(_request: Request, exc: BadInput) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(UserError)
    async def _user_error(_request: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Conflict)
    async def _conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @api.get("/health", tags=["server"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/me", response_model=Me, tags=["server"], responses=_ERRORS)
    def me(who: Who) -> Me:
        return Me(name=who.name, is_admin=who.is_admin)

    # -- experiments ---------------------------------------------------------------------
    @api.post("/experiments", status_code=201, response_model=ExperimentOut, tags=["experiments"],
              responses={**_ERRORS, **_CREATED})
    def create_experiment(body: ExperimentCreate, who: Who) -> ExperimentOut:  # type: ignore[valid-type]
        return create(body, who)

    @api.post("/experiments:study", status_code=201, response_model=ExperimentOut,
              tags=["experiments"], responses={**_ERRORS, **_CREATED})
    def create_from_study(body: StudyText, who: Who) -> ExperimentOut:
        """Submit a study file's YAML text (the web page's Submit form): the same keys as
        POST /experiments, errors as 422 with the key named."""
        refuse_yaml_aliases(body.study, "study")
        try:
            data = parse_yaml(body.study, "study") if body.study.strip() else {}
        except UserError as exc:
            raise BadInput("study", str(exc)) from None
        if not isinstance(data, dict):
            raise BadInput("study", "the study must be a mapping of keys (algo: asha, ...)")
        check_numbers(data, ("study",))
        check_strings(data, ("study",))
        # A study file written for `automl run` (studies/quickstart.yaml) may set what the
        # server owns (where workspaces go, the progress display, Ray's address): those keys
        # are dropped, and the response lists them, rather than the whole study refused.
        ignored = sorted(k for k in data if str(k).replace("-", "_") in SERVER_OWNED)
        data = {k: v for k, v in data.items() if k not in ignored}
        try:
            parsed = ExperimentCreate.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", "study", *e["loc"])} for e in exc.errors()]) from None
        out = create(parsed, who)
        out.ignored = [str(k) for k in ignored]
        return out

    def create(body: Any, who: auth.Principal) -> ExperimentOut:
        settings, space = resolve(body.model_dump(), config.skills, policy, config.defaults)
        experiment_id = str(uuid.uuid4())
        name = settings.name or (settings.skill_dir.name if settings.skill_dir else "experiment")
        # A short, safe folder name whatever the name holds (the id keeps it unique).
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)[:FOLDER_NAME].strip("-.") or "experiment"
        workspace = config.root / "workspaces" / f"{safe}-{experiment_id[:8]}"
        with store.session() as session:
            row = Experiment(id=experiment_id, owner_id=who.user_id, name=name,
                             state=State.PENDING.value, space=space, workspace=str(workspace),
                             settings=settings.model_dump(mode="json", exclude=set(SERVER_OWNED)),
                             progress=progress([], settings.model_dump(), {}), version=0,
                             created=time.time(), queued=time.time())
            session.add(row)
        runner.wake()
        return _out(row, who.name)

    @api.get("/experiments", response_model=ExperimentList, tags=["experiments"],
             responses=_ERRORS)
    def list_experiments(
        who: Who,
        skip: Annotated[int, Query(ge=0, le=2**31)] = 0,
        size: Annotated[int, Query(ge=1, le=1000)] = 100,
        sort: Literal[tuple(SORTS)] = "date-descending",  # type: ignore[valid-type]
        state: State | None = None,
        owner: Annotated[str | None, Query(max_length=100)] = None,
    ) -> ExperimentList:
        if owner is not None and owner != who.name and not who.is_admin:
            raise HTTPException(403, "only admins list other users' experiments")
        query = select(Experiment, User.name).join(User, User.id == Experiment.owner_id)
        if not who.is_admin:
            query = query.where(Experiment.owner_id == who.user_id)
        if owner is not None:
            query = query.where(User.name == owner)
        if state is not None:
            query = query.where(Experiment.state == state.value)
        with store.session() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.execute(query.order_by(SORTS[sort], Experiment.id)
                                   .offset(skip).limit(size)).all()
        return ExperimentList(
            experiments=[_out(row, name) for row, name in rows],
            pagination_info={"total_records": total, "total_pages": math.ceil(total / size),
                             "page_size": size, "page_index": skip // size})

    @api.get("/experiments/{experiment_id}", response_model=ExperimentOut, tags=["experiments"],
             responses=_ERRORS)
    def get_experiment(experiment_id: str, who: Who) -> ExperimentOut:
        with store.session() as session:
            row = owned(session, experiment_id, who)
            out = _out(row, owner_name(session, row))
        # Upward imports of commands/ (here and below): the API does what `automl ui`,
        # `automl handoff` and `automl report` do, through the same functions, so that a
        # request and a command cannot drift apart.
        from automl.commands.ui import runs_path

        out.mlflow_runs = runs_path(Path(out.workspace))
        if out.mlflow_runs:
            out.mlflow_url = config.mlflow_ui.rstrip("/") + out.mlflow_runs
        return out

    @api.delete("/experiments/{experiment_id}", status_code=204, tags=["experiments"],
                responses={**_ERRORS, 409: {"description": "the experiment has not ended"}})
    def delete_experiment(experiment_id: str, who: Who, delete_workspace: bool = False) -> Response:
        with store.session() as session:
            row = owned(session, experiment_id, who)
            if row.state not in TERMINAL:
                raise Conflict(f"cannot delete an experiment that is {row.state}; cancel it first")
            workspace = Path(row.workspace)
            session.delete(row)
        if delete_workspace and inside(workspace, [config.root / "workspaces"]):
            shutil.rmtree(workspace, ignore_errors=True)
        return Response(status_code=204)

    def action(verb: str):
        def act(experiment_id: str, who: Who) -> ExperimentOut:
            with store.session() as session:
                row = owned(session, experiment_id, who)
                row.state = after_action(verb, State(row.state), row.pid is not None).value
                if row.state == State.RESUMING:
                    row.queued = time.time()
                if row.state == State.CANCELED:
                    row.ended = time.time()
                out = _out(row, owner_name(session, row))
            runner.wake()
            return out
        act.__name__ = f"{verb}_experiment"
        api.post(f"/experiments/{{experiment_id}}:{verb}", response_model=ExperimentOut,
                 tags=["actions"], summary=f"{verb.capitalize()} an experiment",
                 responses={**_ERRORS, 409: {"description": f"cannot {verb} in this state"}})(act)

    for verb in ("cancel", "pause", "resume"):
        action(verb)

    # -- trials --------------------------------------------------------------------------
    @api.get("/experiments/{experiment_id}/trials", response_model=TrialList, tags=["trials"],
             responses=_ERRORS)
    def list_trials(experiment_id: str, who: Who,
                    after: Annotated[int, Query(ge=0, le=2**31)] = 0) -> TrialList:
        with store.session() as session:
            row = owned(session, experiment_id, who)
            last = row.version
            trials = session.scalars(select(Trial).where(
                Trial.experiment_id == experiment_id, Trial.version > after)
                .order_by(Trial.index)).all()
            return TrialList(trials=[_trial_out(t, row.pid is not None) for t in trials],
                             last_version=max([last, after, *(t.version for t in trials)]))

    def trial_row(session, experiment_id: str, rec_id: str, who: auth.Principal
                  ) -> tuple[Experiment, Trial]:
        row = owned(session, experiment_id, who)
        trial = session.get(Trial, (experiment_id, rec_id))
        if trial is None:
            raise HTTPException(404, f"no trial {rec_id} in experiment {experiment_id}")
        return row, trial

    @api.get("/experiments/{experiment_id}/trials/{rec_id}", response_model=TrialOut,
             tags=["trials"], responses=_ERRORS)
    def get_trial(experiment_id: str, rec_id: str, who: Who) -> TrialOut:
        with store.session() as session:
            row, trial = trial_row(session, experiment_id, rec_id, who)
            return _trial_out(trial, row.pid is not None)

    def tail(path: Path, lines: int, follow: bool, still_running) -> StreamingResponse:
        async def stream():
            try:
                text = path.read_bytes()
            except OSError:
                text = b""
            yield b"".join(text.splitlines(keepends=True)[-lines:]) if lines else b""
            offset = len(text)
            while follow:
                await asyncio.sleep(0.5)
                try:
                    with open(path, "rb") as handle:
                        handle.seek(offset)
                        chunk = handle.read()
                except OSError:
                    chunk = b""
                if chunk:
                    offset += len(chunk)
                    yield chunk
                elif not await asyncio.to_thread(still_running):
                    return
        return StreamingResponse(stream(), media_type="text/plain; charset=utf-8")

    def running_check(experiment_id: str):
        def check() -> bool:
            with store.session() as session:
                row = session.get(Experiment, experiment_id)
                return row is not None and row.state not in TERMINAL and row.state != State.PAUSED
        return check

    Lines = Annotated[int, Query(ge=0, le=100_000)]

    @api.get("/experiments/{experiment_id}/trials/{rec_id}/log", tags=["trials"],
             response_class=StreamingResponse, responses=_ERRORS)
    def trial_log(experiment_id: str, rec_id: str, who: Who, tail_lines: Lines = 100,
                  follow: bool = False) -> StreamingResponse:
        with store.session() as session:
            row, trial = trial_row(session, experiment_id, rec_id, who)
            path = Path(row.workspace) / "trials" / trial.rec_id / "train.log"
        return tail(path, tail_lines, follow, running_check(experiment_id))

    @api.get("/experiments/{experiment_id}/log", tags=["experiments"],
             response_class=StreamingResponse, responses=_ERRORS)
    def experiment_log(experiment_id: str, who: Who, tail_lines: Lines = 100,
                       follow: bool = False) -> StreamingResponse:
        with store.session() as session:
            owned(session, experiment_id, who)
        return tail(runner.logs(experiment_id), tail_lines, follow, running_check(experiment_id))

    # -- results -------------------------------------------------------------------------
    def workspace_of(experiment_id: str, who: auth.Principal) -> Path:
        with store.session() as session:
            return Path(owned(session, experiment_id, who).workspace)

    @api.get("/experiments/{experiment_id}/best", tags=["results"], responses=_ERRORS)
    def best(experiment_id: str, who: Who) -> dict[str, Any]:
        """The experiment's best_rec.json (written when the experiment ends)."""
        from automl.results.best import read_best_rec

        path = workspace_of(experiment_id, who) / "best_rec.json"
        if not path.exists():
            raise HTTPException(404, "no best_rec.json yet: the experiment has not ended")
        return read_best_rec(path)

    @api.post("/experiments/{experiment_id}:handoff", response_model=HandoffOut,
              tags=["actions"], responses=_ERRORS)
    def handoff(experiment_id: str, body: HandoffIn, who: Who) -> HandoffOut:
        """Write (and with ``run``, run) an action's spec for the best trial's exact checkpoint."""
        from automl.commands.handoff import handoff as write_handoff

        workspace = workspace_of(experiment_id, who)
        check_strings(body.model_dump(mode="json"))
        policy.paths.check_fields({"root_dir": body.root_dir})
        policy.paths.check_overrides(body.overrides, _handoff_path_keys(workspace, body.action))
        if not (workspace / "best_rec.json").exists():
            raise Conflict("the experiment has no best trial yet")
        result = write_handoff(workspace, body.action, body.root_dir, body.run, body.checkpoint,
                               body.overrides)
        return HandoffOut(action=result.action, rec_id=result.rec_id,
                          spec_path=str(result.spec_path), checkpoint=str(result.checkpoint),
                          command=result.command, ran=result.ran, ok=result.ok,
                          exit_code=result.exit_code, status=result.status, kpis=result.kpis,
                          message=result.message)

    @api.get("/experiments/{experiment_id}/report", tags=["results"],
             response_class=FileResponse, responses=_ERRORS)
    def report(experiment_id: str, who: Who) -> FileResponse:
        """The HTML report (``automl report``) as of now: one self-contained file (its views
        and data inline), to save and open from disk."""
        from automl.commands.report import write_report

        workspace = workspace_of(experiment_id, who)
        if not (workspace / "history.json").exists():
            raise HTTPException(404, "no trial has been recorded yet")
        return FileResponse(write_report(workspace), media_type="text/html")

    # The analysis needs a model (fANOVA) and reads the workspace: computed once per change of
    # the history (its file and journal), whatever the number of pages polling it.
    analyses: dict[str, tuple[tuple[int, ...], AnalysisOut]] = {}

    @api.get("/experiments/{experiment_id}/analysis", response_model=AnalysisOut,
             tags=["results"], responses=_ERRORS)
    def experiment_analysis(experiment_id: str, who: Who) -> AnalysisOut:
        """Hyperparameter importance (fANOVA through Optuna, on the trials so far), each
        parameter's axis (search range, scale, choices), and best_rec.json once written (with
        its comparison to the baseline and Pareto front where the run wrote them)."""
        from automl.commands.report import analysis, load

        workspace = workspace_of(experiment_id, who)
        history = workspace / "history.json"
        stamp = tuple(_identity(p) for p in (history, journal_path(history),
                                             workspace / "best_rec.json"))
        cached = analyses.get(experiment_id)
        if cached and cached[0] == stamp:
            return cached[1]
        if not history.exists():
            return AnalysisOut(importances={}, importance_note="importance appears once trials "
                               "have results", params=[], best_rec=None, best_note="")
        out = AnalysisOut(**analysis(load(workspace)))
        analyses[experiment_id] = (stamp, out)
        return out

    @api.get("/experiments/{experiment_id}/trials/{rec_id}/details", response_model=TrialDetails,
             tags=["trials"], responses=_ERRORS)
    def trial_folder(experiment_id: str, rec_id: str, who: Who,
                     tail_lines: Annotated[int, Query(ge=0, le=2000)] = 60) -> TrialDetails:
        """The trial's spec, last status lines, log tail and checkpoints (its trial page)."""
        from automl.results.trial_files import trial_details

        with store.session() as session:
            row, trial = trial_row(session, experiment_id, rec_id, who)
            folder = Path(row.workspace) / "trials" / trial.rec_id
        return TrialDetails(**trial_details(folder, log_lines=tail_lines))

    # -- skills --------------------------------------------------------------------------
    @api.get("/skills", response_model=list[SkillOut], tags=["skills"], responses=_ERRORS)
    def skills(who: Who) -> list[SkillOut]:
        """The skills this server trains, each with what a request for it can give: the
        train action's data inputs, and the metric and direction used when it names none."""
        return [_skill_out(name, path) for name, path in config.skills.items()]

    @api.get("/algorithms", response_model=list[AlgorithmOut], tags=["skills"],
             responses=_ERRORS)
    def algorithms(who: Who) -> list[AlgorithmOut]:
        """The ``algo`` choices (the engine's algorithm registry)."""
        from automl.algorithms import ALGORITHMS, DEFAULT

        return [AlgorithmOut(name=name, search=a.search, scheduler=a.scheduler, budget=a.budget,
                             population=a.population, default=name == DEFAULT)
                for name, a in ALGORITHMS.items()]

    @api.get("/skills/{name}/space", tags=["skills"], responses=_ERRORS)
    def skill_space(name: str, who: Who) -> list[dict[str, Any]]:
        """The skill's search space, as `automl space --json` prints it."""
        import json

        from automl.skill.folder import SkillDir
        from automl.space.user_space import space_for_cli

        if name not in config.skills:
            raise HTTPException(404, f"no skill {name}")
        rows = space_for_cli(SkillDir.load(config.skills[name]), None, [], [], []).rows()
        return json.loads(json.dumps(rows, default=str))

    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The web page; it signs in with a token and then uses the API above, nothing else."""
        return FileResponse(WEB / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        """The page's icon (an SVG: every current browser takes one at this address)."""
        return FileResponse(WEB / "favicon.svg", media_type="image/svg+xml")

    app.mount("/web", StaticFiles(directory=WEB), name="web")
    return app
