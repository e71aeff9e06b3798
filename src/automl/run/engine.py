"""The experiment driver: settings → validated plan → Ray Tune run → best checkpoint.

:func:`prepare` does every check that can fail on user input (skill folder, space, spec keys,
dataset, trainer command, workspace) *before* anything is launched, so a mistake costs one line
and exit code 2, never a half-run experiment. :func:`execute` then runs the trials on Ray Tune
and writes ``history.json`` and ``best_rec.json``.

Per-trial overhead is part of the product: Tune's automatic result loggers (CSV/JSON/TensorBoard
per trial) are disabled (we keep our own history), actors are reused between trials, trials
do not change their working directory, and Tune saves its experiment state only when a resume
would see a change (:mod:`automl.run.ray.tune_state`).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.errors import MachineError, UserError
from automl.networks import NetworkProfile, profile_for
from automl.objective import Objectives, for_settings
from automl.observers import notify
from automl.results.workspace import CANCELED, COMPLETED, FAILED, PREPARED, Workspace
from automl.skill.folder import SkillDir, bundled_skill_dir
from automl.skill.spec import SpecBuilder, get_dotted
from automl.space.params import SearchSpace
from automl.study import SEED_MAX, Settings

DEFAULT_MAX_EPOCHS = 27  # TAO's R

# Quieter, cheaper Ray Tune (set before ray is imported).
_RAY_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100",
    "RAY_DEDUP_LOGS": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # A trial still running when the experiment stops early (every trial failing) leaves its
    # failure unread: Ray would print that traceback at exit. Our history already classifies it.
    "RAY_IGNORE_UNHANDLED_ERRORS": "1",
    # No time throttle on Tune's experiment-state saves (default: every >=10 s): a controller
    # killed between two saves would otherwise forget trials it had already started, and
    # `automl resume` would launch extra ones. Tune would then save at every controller step;
    # automl.run.ray.tune_state lets a save through only when the state changed.
    "TUNE_GLOBAL_CHECKPOINT_S": "0",
    # Tune sets this in every trainable's runtime env; set here, a local instance's workers
    # inherit it and trials need no runtime env (automl.run.ray.prestarted_workers).
    "PL_DISABLE_FORK": "1",
    # Ray renices its workers to 15, and a trial's trainer inherits that from its worker. On a
    # busy machine a worker at nice 15 gets ~3 % of a core against one process at nice 0: the
    # first trial started 88 s after ray.init (importing Ray Tune in the worker) with 4 busy
    # loops on 2 cores, 4 s at nice 0 (benchmarks/results/startup.md); and the user's training
    # ran below everything else. Workers of an instance automl starts run at the driver's nice.
    "RAY_worker_niceness": "0",
}


@dataclass(frozen=True)
class Prepared:
    """An experiment ready to run, as :func:`prepare` (or :func:`prepare_resume`) checked it:
    built once, never changed (a resume on another Ray address is a new one, ``replace``)."""

    settings: Settings
    skill: SkillDir
    space: SearchSpace
    builder: SpecBuilder
    workspace: Workspace
    budget: int
    data: dict[str, Path]  # data input key → host path (SegFormer: dataset.segment.root_dir)
    seed: int
    max_concurrent: int
    command: tuple[str, ...]
    launcher: Any
    experiment: dict[str, Any]
    # What the experiment optimizes, made once here and handed to the searcher, the recorder
    # and the result.
    objectives: Objectives


def _resolve_budget(settings: Settings, builder: SpecBuilder) -> int:
    """R: --max-epochs, else the spec's num_epochs capped at TAO's 27 for a search; a plain
    training (automl_policy off) trains exactly the spec's num_epochs, as TAO itself would."""
    if settings.max_epochs is not None:
        return settings.max_epochs
    spec_epochs = builder.overrides.get("train.num_epochs",
                                        get_dotted(builder.template, "train.num_epochs", None))
    if isinstance(spec_epochs, int) and not isinstance(spec_epochs, bool) and spec_epochs >= 1:
        plain = settings.automl_policy == "off"
        return spec_epochs if plain else min(DEFAULT_MAX_EPOCHS, spec_epochs)
    return DEFAULT_MAX_EPOCHS


def _plain_training(settings: Settings, space: SearchSpace) -> tuple[Settings, SearchSpace]:
    """``automl_policy: off``: one trial at the full budget, nothing searched.

    It runs through the same engine as a search (algorithm ``random``, one recommendation, no
    searched parameter: the trial's spec is the template ⊕ --set overrides ⊕ the user's pins),
    so history.json, best_rec.json, MLflow, resume and hand-off work unchanged.
    """
    plain = settings.model_copy(update={"algo": "random", "max_recommendations": 1,
                                        "fixed_budget": True, "max_concurrent": 1})
    return plain, SearchSpace(params=(), pinned=dict(space.pinned))


def _default_concurrency(settings: Settings) -> int:
    cpus = os.cpu_count() or 1
    return max(1, int(cpus // settings.cpus_per_trial))


def make_launcher(settings: Settings, skill: SkillDir):
    """The launcher an experiment's settings name (trials, and the hand-off of its best model,
    run in the same place: a Docker experiment's actions run in its image)."""
    from launchers import LAUNCHERS

    return LAUNCHERS[settings.launcher].from_settings(settings, skill)


def _load_skill(settings: Settings) -> tuple[SkillDir, dict[str, Any], SpecBuilder]:
    from automl.skill.schema import iter_leaves

    skill = SkillDir.load(settings.skill_dir or bundled_skill_dir())
    template = skill.template("train")
    builder = SpecBuilder(template, [leaf.name for leaf in iter_leaves(skill.schema)],
                          skill.shorthand(), settings.overrides,
                          resume_key=profile_for(skill).resume_key)
    return skill, template, builder


def _launch_parts(settings: Settings, skill: SkillDir) -> tuple[tuple[str, ...], Any]:
    launcher = make_launcher(settings, skill)
    command = tuple(skill.command("train", "{config_path}", local=launcher.runs_on_host))
    launcher.preflight(command)
    return command, launcher


def prepare_resume(path: Path) -> Prepared:
    """Reload an interrupted experiment exactly as it was set up (settings, seed, space).

    Refuses a finished experiment (nothing to resume) and a workspace another process holds.
    One that never launched a trial (Ray refused ``--address`` or did not start in time) is
    started from the beginning by its resume (:func:`launched`).
    """
    from automl.space.params import SearchSpace

    workspace = Workspace.open(path)
    doc = workspace.read_experiment()
    if workspace.state().get("state") == COMPLETED:
        raise UserError(f"{workspace.path}: the experiment already completed; start a new one "
                        f"with `automl run` (see `automl best {workspace.path}`)")
    if workspace.is_locked():
        raise UserError(f"workspace {workspace.path} is in use by another automl process "
                        f"(pid {workspace.state().get('pid', '?')})")
    _check_resumable(workspace)
    try:
        settings = Settings(**doc["settings"])
        space = SearchSpace.from_json(doc["space"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{workspace.experiment_file}: unreadable settings ({exc}); run "
                        f"`automl recover {workspace.path}`") from None
    skill, _, builder = _load_skill(settings)
    command, launcher = _launch_parts(settings, skill)
    data = {k: Path(v) for k, v in (doc.get("data") or {}).items()}
    if not data and doc.get("dataset_root"):  # a workspace written before data inputs
        data = {profile_for(skill).root_key or "dataset.segment.root_dir": Path(doc["dataset_root"])}
    experiment = {k: v for k, v in doc.items() if k not in ("settings", "space")}
    objectives = Objectives.from_json(
        doc.get("objectives") or [{"metric": settings.metric, "direction": settings.direction}],
        settings.scalarize)
    return Prepared(settings, skill, space, builder, workspace, int(doc["budget"]), data,
                    int(doc["seed"]), int(doc["max_concurrent"]), command, launcher, experiment,
                    objectives)


def launched(workspace: Workspace) -> bool:
    """Whether Tune ever started in this workspace (it creates its state folder before the first
    trial): if not, there is nothing to restore, and ``automl resume`` starts the experiment."""
    return (workspace.path / "ray" / "tune").is_dir()


def _check_resumable(workspace: Workspace) -> None:
    """Refuse, in one line, what resuming cannot fix: unreadable state files (a torn write by
    another tool, a disk error; ours are atomic) and an experiment whose trials all failed,
    which would run nothing (Tune does not rerun errored trials) and end without an answer."""
    import json

    from automl.results.records import read_history

    recover = f"run `automl recover {workspace.path}` to rebuild it from the trial folders"
    for path in (workspace.state_file, workspace.history):
        try:
            if path.exists() and not isinstance(json.loads(path.read_text(encoding="utf-8")), dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: unreadable ({exc}); {recover}, then resume") from None
    try:
        records = read_history(workspace.history)[1] if workspace.history.exists() else []
    except (TypeError, AttributeError, KeyError, ValueError) as exc:
        raise UserError(f"{workspace.history}: unreadable ({exc}); {recover}, then resume") \
            from None
    tune = workspace.path / "ray" / "tune"
    newest = max(tune.glob("experiment_state-*.json"), default=None)
    try:
        json.loads(newest.read_text(encoding="utf-8")) if newest else None
    except (OSError, ValueError):
        # Torn by a kill during Ray's copy (before automl.run.ray.atomic_sync): Tune would silently
        # start the experiment over.
        raise UserError(f"{newest}: Ray Tune's experiment state is torn (the controller was "
                        f"killed while saving it), so this experiment cannot be resumed; run "
                        f"`automl recover {workspace.path}` to keep what finished and start a "
                        f"new experiment with `automl run`") from None
    if workspace.state().get("state") == "failed" and records \
            and all(r.status == "failed" for r in records):
        raise UserError(f"{workspace.path}: every trial of this experiment failed "
                        f"({len(records)} of {len(records)}), so resuming would run nothing; see "
                        f"`automl status {workspace.path}`, fix the cause and start a new "
                        f"experiment with `automl run`")


def _data_inputs(settings: Settings, profile: NetworkProfile, builder: SpecBuilder,
                 bundled: bool, source: str) -> dict[str, Path]:
    """The trials' data inputs (key → path), checked before anything is launched: ``--data``,
    ``--root-dir`` and any data key set with ``--set`` (taken out of the overrides: a path is
    checked once, here), then the network's own dataset check."""
    given: dict[str, Any] = dict(settings.data)
    for key in [k for k in builder.overrides if k in profile.data_inputs()]:
        given.setdefault(key, builder.overrides.pop(key))
    data = profile.resolve_data(given, settings.root_dir)
    missing = [] if bundled else profile.missing_data(data, builder)
    if missing:
        how = ("--root-dir DATASET" + (f" ({profile.extras.root_layout})"
                                       if profile.extras.root_layout else "")
               if missing[0] == profile.root_key else f"--data {missing[0]}=PATH")
        raise UserError(f"{source}: {missing[0]} is required: pass {how}"
                        + (f" ({len(missing) - 1} more required: {', '.join(missing[1:])})"
                           if len(missing) > 1 else ""))
    if profile.extras.dataset_check:
        profile.extras.dataset_check(profile, data, builder)
    return data


def prepare(settings: Settings) -> Prepared:
    """Validate everything and create the workspace. Raises UserError; launches nothing."""
    from automl.space.user_space import build_user_space

    bundled = settings.skill_dir is None
    skill, template, builder = _load_skill(settings)
    space = build_user_space(skill, settings, builder)
    if settings.automl_policy == "off":
        settings, space = _plain_training(settings, space)
    elif not space.params:
        raise UserError(f"{skill.name}: the search space is empty (nothing searchable in "
                        f"automl_default_parameters, or everything pinned): add parameters with "
                        f"--range/--options or a --space-file")
    budget = _resolve_budget(settings, builder)
    if settings.min_epochs > budget:
        raise UserError(f"--min-epochs {settings.min_epochs} is larger than --max-epochs {budget}; "
                        f"lower --min-epochs")
    profile = profile_for(skill)
    objectives = for_settings(settings, profile, skill.name)
    _check_objectives(objectives, settings.algo)
    command, launcher = _launch_parts(settings, skill)
    data = _data_inputs(settings, profile, builder, bundled, skill.name)
    if settings.address:  # a wrong one would make ray.init retry for minutes (ray_address)
        from automl.run.ray.ray_address import check_reachable

        check_reachable(settings.address)
    if settings.gpus_per_trial > 0:  # fail fast instead of trials pending forever
        init_ray(settings.address, num_cpus=os.cpu_count() or 1)
        import ray

        _check_gpus(settings, ray)
    seed = settings.seed if settings.seed is not None \
        else random.SystemRandom().randrange(SEED_MAX + 1)
    workspace = Workspace.create(settings.workspace, settings.workspace_root.resolve(),
                                 settings.name or f"{skill.name}-"
                                 f"{'plain' if settings.automl_policy == 'off' else settings.algo}")
    if not data and bundled and profile.extras.default_data:
        # The embedded default: a generated dataset, cached beside the workspaces.
        shared = workspace.shared_dir(settings.workspace_root) or workspace.path
        data = profile.extras.default_data(shared / "_data", builder)
    max_concurrent = settings.max_concurrent or _default_concurrency(settings)
    # Recorded paths are absolute, so resume/handoff work from any working directory.
    root = data.get(profile.root_key) if profile.root_key else None
    settings = settings.model_copy(update={
        "metric": objectives.metric, "direction": objectives.direction,
        "data": {k: v for k, v in data.items() if k != profile.root_key or settings.data.get(k)},
        "skill_dir": skill.path.resolve() if not bundled else None,
        "root_dir": root if settings.root_dir is not None else None,
        "workspace": workspace.path,
        "space_file": settings.space_file.resolve() if settings.space_file else None,
    })
    experiment = {
        "experiment_id": workspace.path.name,
        "automl_policy": settings.automl_policy,
        "algo": settings.algo,
        "network": profile.network_arch,
        "metric": settings.metric,
        "direction": settings.direction,
        "objectives": objectives.to_json(),
        "scalarize": objectives.scalarize,
        "budget": budget,
        "seed": seed,
        "max_recommendations": settings.max_recommendations,
        "max_concurrent": max_concurrent,
        "keep_checkpoints": settings.keep_checkpoints,
        "skill_dir": str(skill.path),
        "dataset_root": str(root) if root else None,
        "data": {k: str(v) for k, v in data.items()},
        "created": time.time(),
    }
    prepared = Prepared(settings, skill, space, builder, workspace, budget, data, seed,
                        max_concurrent, command, launcher, experiment, objectives)
    workspace.write_experiment({
        **experiment,
        "settings": settings.model_dump(mode="json"),
        "space": space.to_json(),
    })
    workspace.set_state(PREPARED)
    return prepared


def _check_objectives(objectives: Objectives, algo: str) -> None:
    """Several objectives need an algorithm that searches them (the registry's
    ``multi_objective``): the others schedule and propose on the primary alone (DEHB's
    selection, PBT's exploit, hyperband_es's bracket cut-off), and would silently ignore the
    rest."""
    from automl.algorithms import ALGORITHMS

    if len(objectives) > 1 and not ALGORITHMS[algo].multi_objective:
        able = ", ".join(n for n, a in ALGORITHMS.items() if a.multi_objective)
        raise UserError(f"--objective: {len(objectives)} objectives ({', '.join(objectives.names)})"
                        f" are searched by --algo {able}; --algo {algo} optimizes one objective: "
                        f"choose one of those algorithms or keep only --objective "
                        f"{objectives.metric}")


def set_ray_env() -> None:
    """Put :data:`_RAY_ENV` into this process's environment (a value the user set is kept):
    before Ray Tune is imported (it reads some of them at import) and before ``ray.init`` (the
    processes of an instance it starts inherit them)."""
    for key, value in _RAY_ENV.items():
        os.environ.setdefault(key, value)


def init_ray(address: str | None, num_cpus: int) -> None:
    """Join the Ray cluster at ``address``, or start a private local instance (the engine's,
    the server's and the tests' one way to start Ray)."""
    set_ray_env()
    import ray

    from automl.run.ray.ray_address import check_reachable, ray_init_error
    from automl.run.ray.ray_private import check_version

    check_version()  # warns when the private Ray APIs the engine patches may have changed
    if ray.is_initialized():
        return
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        except ConnectionError as exc:
            raise ray_init_error(address, exc) from None
    else:
        # address="local": always a private instance, never a cluster `ray start`ed on this host.
        try:
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                     log_to_driver=False, logging_level="WARNING", configure_logging=True)
        except Exception as exc:  # Ray's start-up timeouts are a bare Exception or TimeoutError
            if "timed out" not in str(exc).lower():
                raise
            ray.shutdown()  # whatever of the local instance did start
            reason = str(exc).strip().splitlines()[0]
            raise MachineError(f"Ray did not start in time on this machine ({reason}); it is "
                               f"probably overloaded: retry when it is less busy, or start Ray "
                               f"once with `ray start --head` and pass --address") from None


# What execute() imports after ray.init (in this order: ray.tune before the modules using it).
_DRIVER_MODULES = ("ray.tune", "automl.algorithms", "automl.run.recorder", "automl.results.best",
                   "automl.run.trial", "automl.run.ray.tune_state")


def _import_in_background(modules: tuple[str, ...]) -> Any:
    """A started thread importing ``modules``; an import error is left for the real import."""
    import importlib
    import threading

    def work() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - raised again, in context, by the caller's import
                return

    thread = threading.Thread(target=work, name="automl-imports", daemon=True)
    thread.start()
    return thread


def execute(prepared: Prepared, observers: list[Any] | None = None,
            restore: bool = False) -> dict[str, Any]:
    """Run the experiment (or, with ``restore``, continue an interrupted one); returns best_rec.

    Resuming uses Tune's own experiment state (trials, the searcher's observations) and our
    history.json (records), brought up to date with the trial folders. Trials that were running
    when the controller died are *restarted* from their last reported checkpoint (multi-fidelity
    algorithms and PBT report one per checkpoint epoch) or from scratch, never reattached: the
    Ray worker that tailed the trainer and reported to Tune died with the controller, and a new
    controller has no channel to a process another worker started. Whatever the dead run left
    running (a trainer's children, containers) is stopped first, so the restarted trial does
    not share its folder with it; a trainer that had already ended well is not run again (its
    results are replayed, :func:`automl.run.trial.ended_run`).
    """
    set_ray_env()  # before the background import of Ray Tune below
    import logging

    settings = prepared.settings
    workspace = prepared.workspace
    workspace.lock()
    # Ray Tune, Optuna and the trial code import (seconds of CPU) while ray.init waits for
    # Ray's processes to come up; the logging process opens the MLflow store meanwhile.
    warm = _import_in_background(_DRIVER_MODULES)
    try:
        init_ray(settings.address, num_cpus=os.cpu_count() or 1)
    except UserError as exc:  # no cluster at --address, or Ray timed out starting: say why in status
        workspace.set_state("failed", ended=time.time(), failures=str(exc))
        raise
    ray_ready = time.time()  # kept in state.json: start-up is measured from here
    warm.join()
    from ray import tune

    from automl.algorithms import AlgoContext, Budget, build_plan
    from automl.algorithms.plan import template_configuration
    from automl.results.best import best_rec, choose, write_best_rec
    from automl.resume.replay import Replayable, Settled, replaying
    from automl.run.ray.atomic_sync import install as atomic_tune_state
    from automl.run.ray.prestarted_workers import (
        INHERITS_ENV,
        register_without_runtime_env,
    )
    from automl.run.ray.ray_private import is_pinned, restored_run_config
    from automl.run.ray.staging import private_driver_staging
    from automl.run.ray.tune_state import save_state_on_change
    from automl.run.ray.usage_tags import skip_callback_tags
    from automl.run.recorder import FailureStopper, Recorder
    from automl.run.trial import TrialContext, run_trial

    atomic_tune_state()  # a SIGKILL during Tune's state copy must not tear it
    # Workers inherit this process's environment (see there): a Ray it started, or the server's.
    register_without_runtime_env(local=not settings.address or os.environ.get(INHERITS_ENV) == "1")
    skip_callback_tags()  # Ray's usage tag would import mlflow here
    # Trial failures are classified and shown by our progress/history; Ray's own tracebacks for
    # them are noise for a user (AUTOML_DEBUG=1 keeps them).
    if not os.environ.get("AUTOML_DEBUG"):
        for name in ("ray.tune", "ray.train"):
            logging.getLogger(name).setLevel(logging.CRITICAL)

    objectives = prepared.objectives
    algo_ctx = AlgoContext(
        space=prepared.space, metric=objectives.metric, mode=objectives.direction,
        objectives=objectives, trials_dir=workspace.path / "trials",
        seed=prepared.seed,
        budget=Budget(prepared.budget, settings.min_epochs, settings.reduction_factor),
        max_recommendations=settings.max_recommendations,
        max_concurrent=prepared.max_concurrent, population_size=settings.population_size,
        fixed_budget=settings.fixed_budget, prior=settings.prior,
        surrogate=settings.surrogate,
    )
    plan = build_plan(settings.algo, algo_ctx)
    trial_ctx = TrialContext(
        workspace=workspace.path, command=prepared.command, builder=prepared.builder,
        launcher=prepared.launcher, metric=settings.metric, budget=prepared.budget,
        data={k: str(v) for k, v in prepared.data.items()}, report_checkpoints=plan.checkpoints,
        interval=plan.interval, cpus_per_trial=settings.cpus_per_trial,
        trial_timeout=settings.trial_timeout, max_retries=settings.max_retries,
        input_keys=tuple(profile_for(prepared.skill).keys("train").inputs),
    )
    # FIFO algorithms: Tune saves trials added or ended after a pause, not at once; a resume
    # creates the unsaved ones again (automl.run.ray.tune_state, automl.resume.replay).
    defer = plan.scheduler is None and not plan.checkpoints and is_pinned() \
        and isinstance(plan.search_alg, Replayable)
    records = None
    settled = Settled()  # nothing to replay or set aside unless restoring
    if restore:  # before anything is launched (see automl.resume.reconcile)
        from automl.results.records import read_history
        from automl.resume.reconcile import refresh_records, stop_leftover_trainers
        from automl.resume.replay import settle_unsaved_trials
        from automl.run.ray.atomic_sync import finish_interrupted

        if finish_interrupted(workspace.path / "ray" / "tune"):
            print("Ray Tune's last state save was cut short by the interruption: finished it",
                  flush=True)
        note = stop_leftover_trainers(workspace.path, prepared.launcher)
        if note:
            print(note, flush=True)
        records = {r.rec_id: r for r in read_history(workspace.history)[1]} \
            if workspace.history.exists() else {}
        refresh_records(workspace.path, records, settings.metric,
                        [*prepared.space.names(), *prepared.space.pinned], prepared.budget)
        settled = settle_unsaved_trials(workspace.path, records,
                                        plan.search_alg if defer else None)
        if settled.note:
            print(settled.note, flush=True)
    recorder = Recorder(workspace.path, {**prepared.experiment, "plan": plan.description},
                        objectives, observers, records)
    notify(observers, "experiment_started", {
        **recorder.experiment, "settings": settings.model_dump(mode="json"),
        "space": prepared.space.rows()})
    if restore:  # trial ends the killed controller journaled but its tracking never wrote
        notify(observers, "replay", recorder.finished())
    if settled.set_aside:
        notify(observers, "trials_set_aside", settled.set_aside)
    resources = {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial}
    trainable = tune.with_resources(tune.with_parameters(run_trial, ctx=trial_ctx), resources)
    private_driver_staging()
    stopper = FailureStopper(recorder, settings.stop_after_failures)
    if restore:
        tuner = tune.Tuner.restore(str(workspace.path / "ray" / "tune"), trainable=trainable,
                                   resume_unfinished=True, resume_errored=False,
                                   restart_errored=False)
        # Tune restores callbacks/stopper from its pickle without their live parts (observers):
        # give it this driver's (a private attribute: automl.run.ray.ray_private).
        run_config = restored_run_config(tuner)
        run_config.callbacks = [recorder]
        run_config.stop = stopper
    else:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=plan.search_alg, scheduler=plan.scheduler,
                num_samples=plan.num_samples, max_concurrent_trials=prepared.max_concurrent,
                reuse_actors=True,
                metric=None if plan.search_alg or plan.scheduler else settings.metric,
                mode=None if plan.search_alg or plan.scheduler else settings.direction,
            ),
            run_config=tune.RunConfig(
                name="tune", storage_path=str(workspace.path / "ray"), verbose=0,
                callbacks=[recorder], stop=stopper,
                failure_config=tune.FailureConfig(max_failures=0),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
                log_to_file=False,
            ),
        )
    workspace.set_state("running", started=workspace.state().get("started") or time.time(),
                        ray_ready=ray_ready,
                        resumed=restore)
    state = "failed"
    cancel = _CancelSignals()
    try:
        with cancel, save_state_on_change(defer=defer), replaying(settled.replays):
            tuner.fit()
        state = CANCELED if cancel.received else COMPLETED
    except KeyboardInterrupt:
        state = CANCELED
        raise
    finally:
        # Containers a trial left (its worker was killed, Ctrl-C, SIGTERM): remove them now.
        prepared.launcher.close(workspace.path.name)
        records = list(recorder.records.values())
        best = choose(records, objectives)
        doc = best_rec(workspace.path.name, records, objectives.metric, objectives.direction,
                       best, objectives, template_configuration(prepared.space))
        write_best_rec(workspace.best_rec, doc)
        recorder.close()  # compacts the journal into history.json
        if state == COMPLETED and best is None:
            state = "failed"
        if state in (COMPLETED, FAILED):  # a canceled run may be resumed: keep its files
            from automl.results.retention import finalize_retention

            recorder.reclaimed += finalize_retention(workspace.path, settings.keep_checkpoints)
        workspace.set_state(state, ended=time.time(), failures=recorder.failure_summary(),
                            reclaimed_bytes=recorder.reclaimed)
        notify(observers, "experiment_ended", doc)
    missing = [name for name in objectives.names
               if best is not None and not any(r.score(name) is not None for r in records)]
    if missing:
        raise UserError(f"--objective {missing[0]}: no trial reported it (the trainer does not "
                        f"write this KPI, or no checkpoint was there to measure); name KPIs from "
                        f"the trainer's status.json")
    metric_error = next((r for r in records if r.failure_class == "metric"), None)
    if metric_error is not None and best is None:
        raise UserError(f"--metric {settings.metric}: {metric_error.failure_message}; choose a "
                        f"metric the trainer reports")
    return doc


class _CancelSignals:
    """Ctrl-C (SIGINT) and SIGTERM both end the experiment gracefully.

    Ray Tune already stops a run cleanly on SIGINT/SIGUSR1 (trials are stopped, which kills their
    process groups; state is saved so ``automl resume`` can continue). We route SIGINT and SIGTERM
    to Tune's SIGUSR1 handler and remember that it happened, so the experiment is marked
    ``canceled`` rather than ``completed``.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        import signal

        first = self.received is None
        self.received = signum
        if first:
            print(f"\n{signal.Signals(signum).name} received: stopping trials and saving state "
                  f"(again to force)", flush=True)
            os.kill(os.getpid(), signal.SIGUSR1)
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> _CancelSignals:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
            # Until Tune installs its own SIGUSR1 handler, a forwarded SIGUSR1 must not kill us.
            self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        import signal

        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _check_gpus(settings: Settings, ray) -> None:
    if settings.gpus_per_trial <= 0:
        return
    available = ray.cluster_resources().get("GPU", 0)
    if available < settings.gpus_per_trial:
        raise UserError(f"--gpus-per-trial {settings.gpus_per_trial:g}: the Ray cluster has "
                        f"{available:g} GPU(s); use --gpus-per-trial 0 on a CPU machine")
