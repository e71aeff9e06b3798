"""``pbt``: Population Based Training (Jaderberg et al., 2017) on Ray Tune's scheduler.

A population of ``population_size`` trials trains side by side, each to the full budget R
(epochs). Every ``interval`` epochs a member reports a checkpoint; a member in the bottom quarter
of the population *exploits* a member of the top quarter - it continues from that member's
checkpoint - and *explores*: the copied hyperparameters are perturbed (continuous ×0.8/×1.2,
ordered choices shifted to a neighbour, 25 % of the time resampled). The run spends about
``population × R`` epochs: an exploit discards the child's epochs past the parent's checkpoint
(and whatever the trainer ran between that result and the decision) and skips ahead when the
parent is ahead of the child.

What this module adds to Ray's ``PopulationBasedTraining``:

* **Schema-true perturbations.** ``hyperparam_mutations`` is built from the :class:`SearchSpace`
  (floats: a sampler of the range, log-uniform where the space is log; small int ranges,
  powers and multiples: the ordered list of valid values, so a shift is one step; larger int
  ranges: a sampler, and Ray keeps ints ints; categoricals: their choices), and every explored
  config goes through :class:`ClipToSpace` - ``SearchSpace.clip`` parents first - so a value
  never leaves its range, its conditions (``math_cond``) or its type, and pins stay pinned.
* **Durable inheritance and lineage.** At exploit time the parent's checkpoint file is copied
  into the child's own folder (``trials/<child>/inherited/``) and the child resumes from the
  copy: the parent may overwrite or delete its file later (it retrains an epoch after its own
  exploit; retention prunes finished trials). The trainable (``trial.inherit``) does the same
  if the scheduler could not, and appends ``{parent, epoch, ...}`` to the child's
  ``lineage.json``. The child's config carries ``__parent__`` so the experiment records it.
* **An exploited member is unranked until it reports again** (Ray ranks it by the score of
  the model it just replaced, and may pick it as a parent it cannot be: it has no checkpoint).
* **No pauses to share slots the population does not need.** Ray pauses a member at its
  perturbation step whenever another member is pending; when the whole population fits in the
  trial slots (the cluster's resources / one trial's request), the pending one is only starting
  or restarting after an exploit, and a pause would cost a trainer restart. Time-sharing stays
  on when the population is larger than the slots. (Tune does not apply
  ``max_concurrent_trials`` to a population: the resources bound how many members run.)
* **Trainers stop at each decision.** Each member's config carries ``__stop_every__`` = the
  perturbation interval, and each trainer run gets ``train.num_epochs`` = the next multiple of
  it after the epoch it resumes from (:class:`automl.run.trial._Segment`): the trainer ends exactly
  at the decision instead of training past it while the scheduler decides (then that work was
  either thrown away by an exploit or trained on stale hyperparameters). A member that keeps
  its place is paused there and continues from its own checkpoint. Costs one trainer start
  per interval. As for the bracket family, the LR schedule's horizon is each run's
  ``num_epochs``; ``--fixed-budget`` keeps ``num_epochs = R`` (and the old overshoot).
* **Perturbations reach the trainer.** A trainer that resumes restores its optimizer and
  LR-scheduler state, param groups included: TAO's Lightning trainers and the bundled trainer
  would keep the *parent's* learning rate and weight decay, whatever the child's spec says (TAO's
  own PBT has this hole). So before the child's trainer starts, its copy of the parent's
  checkpoint is rewritten with the perturbed values (:mod:`automl.run.perturbation`, which says
  why this and not a restart from the parent's weights as pretrained ones): the child keeps the
  parent's weights, optimizer moments and schedule position and continues with its new learning
  rate and weight decay. The exploit's pointer carries the parent's hyperparameters (the values
  in the checkpoint) for it. Every other perturbed parameter (augmentation, batch size, loss
  weights, ...) the trainer reads from the spec it starts with.
* **No exploit at the end.** A member that reached R finishes; it is not replaced by a copy of
  another finished model (that would only duplicate work, not explore).
* **Reproducible start.** The initial population is drawn with a seeded sampler (Optuna's
  RandomSampler through the space's define-by-run ``suggest``, so conditions hold) and handed
  to Tune as ``points_to_evaluate``. Later perturbations depend on the order results arrive
  in (asynchronous PBT) and are not reproducible run to run.
"""

from __future__ import annotations

import copy
import logging
import math
import random
from pathlib import Path
from typing import Any

import optuna
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

from automl.algorithms.plan import AlgoContext, Plan
from automl.results.records import atomic_write_json
from automl.space.params import Param, SearchSpace, power_exponents
from automl.contract import INHERITED, PARENT_KEY, POINTER, STOP_EVERY_KEY, hyperparameters
# Upward (algorithms/ → run/): an exploit hands the child the trial's own checkpoint pointer and
# the parent's hyperparameters, in the format the trial reads back (run.trial, run.perturbation).
from automl.run.perturbation import PARAMS_KEY
from automl.run.trial import copy_file, read_pointer

log = logging.getLogger(__name__)

# An int parameter with at most this many valid values is perturbed along its ordered values.
ORDERED_MAX = 32
QUANTILE = 0.25
RESAMPLE_PROBABILITY = 0.25


def perturbation_interval(ctx: AlgoContext) -> int:
    """Epochs between two exploit/explore steps: about 9 steps over R (3 for TAO's R = 27)."""
    return max(1, ctx.budget.min_epochs, math.ceil(ctx.budget.max_epochs / 9))


def initial_population(space: SearchSpace, size: int, seed: int) -> list[dict[str, Any]]:
    """``size`` configurations drawn with a seeded random sampler (same seed, same population)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.suggest(study.ask()) for _ in range(size)]


def static_bounds(space: SearchSpace, param: Param) -> tuple[float, float, int | None, int | None]:
    """A parameter's bounds without its parent's value (conditions on the parent are skipped)."""
    return param.bounds({**space.context, **space.pinned})


def ordered_values(space: SearchSpace, param: Param) -> list[Any] | None:
    """The valid values of an int parameter in order, when there are few enough to step along."""
    if param.kind != "int":
        return None
    low, high, step, base = static_bounds(space, param)
    if base:
        return [int(base**k) for k in power_exponents(base, low, high)] or None
    count = (high - low) // (step or 1) + 1
    if 0 < count <= ORDERED_MAX:
        return list(range(int(low), int(high) + 1, step or 1))
    return None


class Resample:
    """Draws a fresh value of one numeric parameter (log-uniform where the space is log).

    A picklable callable (Ray's PBT calls it for a resample and multiplies the current value by
    a perturbation factor otherwise); the value is clipped afterwards by :class:`ClipToSpace`.
    """

    def __init__(self, space: SearchSpace, name: str, seed: int) -> None:
        self.space, self.name = space, name
        self.rng = random.Random(f"{seed}:{name}")

    def __call__(self) -> Any:
        param = self.space[self.name]
        low, high, _, _ = static_bounds(self.space, param)
        if param.log and low > 0:
            value = math.exp(self.rng.uniform(math.log(low), math.log(high)))
        else:
            value = self.rng.uniform(low, high)
        return param.nearest(int(round(value)) if param.kind == "int" else value,
                             {**self.space.context, **self.space.pinned})


def mutations(space: SearchSpace, seed: int) -> dict[str, Any]:
    """Ray PBT ``hyperparam_mutations`` for every searched parameter of ``space``."""
    out: dict[str, Any] = {}
    for param in space.params:
        if param.kind == "categorical":
            out[param.name] = list(param.choices)
        else:
            out[param.name] = ordered_values(space, param) or Resample(space, param.name, seed)
    return out


class ClipToSpace:
    """``custom_explore_fn``: every searched value to its nearest valid value, parents first;
    pinned values restored. Types follow the space (ints int, floats float)."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, config: dict[str, Any]) -> dict[str, Any]:
        out = dict(config)
        values: dict[str, Any] = {}
        for param in self.space.params:
            value = out.get(param.name, param.default)
            if param.kind == "float" and value is not None:
                value = float(value)
            out[param.name] = values[param.name] = self.space.clip(param.name, value, values)
        out.update(self.space.pinned)
        return out


def resource_slots(required: dict[str, float], available: dict[str, float]) -> int:
    """How many trials requesting ``required`` fit in ``available`` (Ray resource dicts)."""
    counts = [int(available.get(key, 0.0) / amount + 1e-9) for key, amount in required.items()
              if amount > 0]
    return min(counts) if counts else 0


def _trial_folder(parent_path: Path, parent_id: str, child_id: str) -> Path | None:
    """The child's trial folder, found beside the parent's (``.../trials/<id>/results/...``)."""
    for folder in parent_path.parents:
        if folder.name == parent_id:
            return folder.parent / child_id
    return None


class EngineSchedulerMixin:
    """What PBT and PB2 add to Ray's schedulers: lineage, durable copies, no exploit at R.

    Mixed in before Ray's class: ``class X(EngineSchedulerMixin, PopulationBasedTraining)``.
    """

    max_epochs: int
    population: int = 0
    # Population larger than the trial slots, so that members take turns (None: decided from
    # the Ray cluster's resources and a trial's request at the first result).
    multiplex: bool | None = None

    def on_trial_result(self, tune_controller, trial, result: dict[str, Any]) -> str:
        epoch = result.get(self._time_attr, 0)
        if epoch >= self.max_epochs:
            return TrialScheduler.CONTINUE  # finish; never replaced by a copy at the end
        decision = super().on_trial_result(tune_controller, trial, result)
        every = trial.config.get(STOP_EVERY_KEY)
        if decision != TrialScheduler.NOOP and every and epoch % every == 0:
            # The trainer stops here by itself (train.num_epochs = this boundary): a member
            # that was not replaced continues from its own checkpoint, with num_epochs = the
            # next boundary (trial._Segment).
            return TrialScheduler.PAUSE
        if decision == TrialScheduler.PAUSE and not self._multiplexing(tune_controller, trial):
            # Ray pauses a member at its perturbation step whenever another one is pending, to
            # share slots. When the whole population fits, a pending member is only starting
            # or restarting after an exploit, and a pause would cost a trainer restart (and
            # the epochs run past the checkpoint).
            return TrialScheduler.CONTINUE
        return decision

    def _multiplexing(self, tune_controller, trial) -> bool:
        if self.multiplex is None:
            try:
                import ray

                slots = resource_slots(trial.placement_group_factory.required_resources,
                                       ray.cluster_resources())
                population = max(self.population, len(tune_controller.get_trials()))
                self.multiplex = population > slots
            except Exception:  # noqa: BLE001 - unknown: keep Ray's time-sharing
                self.multiplex = True
        return self.multiplex

    def choose_trial_to_run(self, tune_controller):
        """Ray's fair share (the least trained waiting member first), with ties going to a
        ranked member before a fresh copy. An exploited child takes its parent's train time; if
        the parent is waiting too and the child always ran first, the child would train past
        the parent's stale checkpoint, be found worst again and copy that same checkpoint again,
        for ever (seen with 8 members on 4 slots)."""
        from ray.tune.experiment import Trial

        if self._synch:
            return super().choose_trial_to_run(tune_controller)
        candidates = [t for t in tune_controller.get_trials()
                      if t.status in (Trial.PENDING, Trial.PAUSED)]
        candidates.sort(key=lambda t: (self._trial_state[t].last_train_time,
                                       self._trial_state[t].last_score is None))
        return candidates[0] if candidates else None

    # -- state for `automl resume` ----------------------------------------------------------
    # Tune does not save a scheduler with its experiment state (Tuner.restore rebuilds it as it
    # was at the start), so what PBT/PB2 learned - each member's last score, perturbation and
    # train time, the exploit count, PB2's GP data and the samplers' positions - travels with
    # the population generator's state (:func:`population_search`), keyed by trial id.
    _TRIAL_FIELDS = ("last_score", "last_perturbation_time", "last_train_time", "last_result")
    _SCHEDULER_FIELDS = ("_num_checkpoints", "_num_perturbations", "_next_perturbation_sync",
                         "_hyperparam_mutations", "data", "last_exploration_time", "current",
                         "rng", "multiplex")

    def export_state(self) -> dict[str, Any]:
        return {"trials": {trial.trial_id: {f: getattr(state, f, None) for f in self._TRIAL_FIELDS}
                           for trial, state in self._trial_state.items()},
                "scheduler": {f: getattr(self, f) for f in self._SCHEDULER_FIELDS
                              if hasattr(self, f)}}

    def import_state(self, state: dict[str, Any]) -> None:
        """Called before Tune adds the restored trials (their states are applied then)."""
        self.__dict__.update(state.get("scheduler", {}))
        self._restored_trials = dict(state.get("trials", {}))

    def on_trial_add(self, tune_controller, trial) -> None:
        super().on_trial_add(tune_controller, trial)
        self._apply_restored(trial)

    def _apply_restored(self, trial) -> None:
        saved = getattr(self, "_restored_trials", {}).pop(trial.trial_id, None)
        if saved is None or trial not in self._trial_state:
            return
        state = self._trial_state[trial]
        for name, value in saved.items():
            setattr(state, name, value)
        if state.last_score is not None:  # ranked: its restored checkpoint is what a child copies
            state.last_checkpoint = trial.checkpoint

    def _get_new_config(self, trial, trial_to_clone):
        new_config, operations = super()._get_new_config(trial, trial_to_clone)
        new_config = dict(new_config)
        new_config[PARENT_KEY] = trial_to_clone.trial_id
        return new_config, operations

    def _exploit(self, tune_controller, trial, trial_to_clone) -> None:
        super()._exploit(tune_controller, trial, trial_to_clone)
        # Ray keeps the child's old score and checkpoint until its next report, so the child
        # still ranks as the model it no longer is: it can be picked as a parent (then skipped,
        # it has no checkpoint) or keep out a real one. Until it reports, it is unranked.
        state = self._trial_state[trial]
        state.last_score, state.last_checkpoint = None, None
        try:
            self._pin_inherited_checkpoint(trial, hyperparameters(trial_to_clone.config))
        except Exception as exc:  # noqa: BLE001 - the trainable copies it when it resumes
            log.warning("PBT: could not copy the inherited checkpoint of trial %s now (%s); "
                        "the trial copies it when it resumes", trial.trial_id, exc)

    @staticmethod
    def _pin_inherited_checkpoint(trial, parent_params: dict[str, Any]) -> None:
        """Copy the parent's model file into the child's folder now, and point the child at it.

        The child may wait (population larger than the free slots) while its parent trains on,
        retrains past this epoch after an exploit of its own, or is pruned: a copy made at
        decision time is the one the decision was about. The pointer carries the parent's
        hyperparameters, which produced the file: the child's trial rewrites the copy's
        learning rate and weight decay from them to its own (automl.run.perturbation).
        """
        from ray.tune import Checkpoint

        from automl.run.ray.ray_private import training_result_class  # upward: see above

        _TrainingResult = training_result_class()  # private: see automl.run.ray.ray_private

        manager = trial.run_metadata.checkpoint_manager
        latest = manager._latest_checkpoint_result  # what Ray's PBT just set (private API)
        pointer = read_pointer(latest.checkpoint) if latest else None
        if not pointer or pointer.get("rec_id") in (None, trial.trial_id):
            return
        source = Path(pointer["path"])
        folder = _trial_folder(source, pointer["rec_id"], trial.trial_id)
        if folder is None:
            return
        target = folder / INHERITED / source.name
        copy_file(source, target)
        holder = folder / INHERITED / f".pointer-{pointer['rec_id']}-{pointer.get('epoch')}"
        holder.mkdir(parents=True, exist_ok=True)
        # Atomic: Tune saves this folder as the child's checkpoint, which a resume reads.
        atomic_write_json(holder / POINTER, {**pointer, "path": str(target), "source": str(source),
                                             PARAMS_KEY: parent_params})
        manager._latest_checkpoint_result = _TrainingResult(
            checkpoint=Checkpoint.from_directory(str(holder)), metrics=latest.metrics)


class EnginePBT(EngineSchedulerMixin, PopulationBasedTraining):
    """Ray's asynchronous PBT with the engine's lineage, copies and end-of-budget rule."""

    def __init__(self, *, max_epochs: int, population: int, multiplex: bool | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_epochs, self.population, self.multiplex = max_epochs, population, multiplex


def population_search(ctx: AlgoContext, scheduler: Any = None):
    """Tune's variant generator fed the seeded initial population (PBT refuses Searchers); it
    carries ``scheduler``'s state in its own (see :meth:`EngineSchedulerMixin.export_state`)."""
    points = initial_population(ctx.space, ctx.population_size, ctx.seed)
    if not ctx.fixed_budget:  # trainers stop at each decision instead of training past it
        points = [{**point, STOP_EVERY_KEY: perturbation_interval(ctx)} for point in points]
    generator = _PopulationGenerator(points)
    generator.scheduler = scheduler
    return generator


def _population_generator_class():
    from ray.tune.search import BasicVariantGenerator

    class PopulationGenerator(BasicVariantGenerator):
        """``BasicVariantGenerator`` over fixed configurations, without a ``param_space``.

        Tune only accepts a preset point whose keys exist in the param space (the engine passes
        none): each key gets a placeholder (an empty dict, which Tune lets a preset replace
        without a check) before the variants are generated.
        """

        def __init__(self, points: list[dict[str, Any]]) -> None:
            super().__init__(points_to_evaluate=copy.deepcopy(points))
            self._keys = sorted({key for point in points for key in point})

        def add_configurations(self, experiments) -> None:
            from automl.run.ray.ray_private import convert_to_experiment_list  # upward: see above

            experiments = convert_to_experiment_list(experiments)  # private, as Tune's own
            for experiment in experiments:
                config = experiment.spec.setdefault("config", {})
                for key in self._keys:
                    config.setdefault(key, {})
            super().add_configurations(experiments)

        def get_state(self):
            state = super().get_state()
            if isinstance(state, dict):
                scheduler = state.pop("scheduler", None)
                if scheduler is not None:
                    state["automl_scheduler"] = scheduler.export_state()
            return state

        def set_state(self, state) -> None:
            state = dict(state)
            saved = state.pop("automl_scheduler", None)
            super().set_state(state)
            if saved is not None and getattr(self, "scheduler", None) is not None:
                self.scheduler.import_state(saved)

    return PopulationGenerator


def _PopulationGenerator(points: list[dict[str, Any]]):  # noqa: N802 - a lazily built class
    return _population_generator_class()(points)


def plan(ctx: AlgoContext) -> Plan:
    interval = perturbation_interval(ctx)
    if not ctx.space.params:
        from automl.errors import UserError

        raise UserError("--algo pbt: no parameter is searched (all pinned or excluded); PBT needs "
                        "at least one to perturb")
    scheduler = EnginePBT(
        max_epochs=ctx.budget.max_epochs, population=ctx.population_size, time_attr="epoch", metric=ctx.metric, mode=ctx.mode,
        perturbation_interval=interval, hyperparam_mutations=mutations(ctx.space, ctx.seed),
        quantile_fraction=QUANTILE, resample_probability=RESAMPLE_PROBABILITY,
        custom_explore_fn=ClipToSpace(ctx.space), log_config=False, synch=False,
    )
    return Plan(population_search(ctx, scheduler), scheduler, ctx.population_size,
                checkpoints=True, interval=interval,
                description=f"PBT: population {ctx.population_size}, {ctx.budget.max_epochs} "
                            f"epochs each, exploit/explore every {interval} epochs "
                            f"(bottom {QUANTILE:.0%} copies top {QUANTILE:.0%})")
