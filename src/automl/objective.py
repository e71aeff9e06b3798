"""What an experiment optimizes: one or more objectives, made once and handed down.

An experiment's objectives are resolved once (:func:`resolve`, called by the engine's
``prepare``) from ``--objective``/``objectives:`` (TAO AutoML's names: ``metric``,
``direction``, ``weight``, ``scale``) or, without them, from ``--metric``/``--direction`` and the
network's monitoring metric. Every later step (the searcher, the recorder, retention, the
result) is handed the same :class:`Objectives`, as Optuna hands its Study to samplers.

An objective is either a **KPI** the trainer writes to status.json, or a figure **measured**
after the trial by a declared step (:data:`MEASURED`): ``checkpoint_mb``, the size of the trial's
scored checkpoint. Measured figures are read from the trial's files, so the searcher (when Tune
tells it a trial completed) and the recorder (just after) compute the same value.

With several objectives the search is **multi-objective** (``scalarize: pareto``, the default:
Optuna's multi-objective samplers look for the Pareto front itself) or, for TAO compatibility,
a **weighted sum** (``scalarize: weighted``): ``sum(weight * sign * value / scale)``, maximized,
where ``sign`` is +1 for ``max`` and -1 for ``min`` and ``scale`` puts objectives of different
units on one footing (TAO's ``scale``). Either way the result keeps the Pareto front.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from automl.errors import UserError
from automl.networks.catalog import default_direction
from automl.tao.checkpoints import checkpoint_after

Direction = Literal["max", "min"]
Scalarize = Literal["pareto", "weighted"]
K = TypeVar("K")


def checkpoint_mb(trial_folder: Path, epochs: int) -> float | None:
    """Size in MB (10^6 bytes) of the checkpoint written after ``epochs`` epochs: the file a
    hand-off would load, so the size a deployment starts from. None when there is no such file."""
    found = checkpoint_after(Path(trial_folder) / "results" / "train", epochs)
    if found is None:
        return None
    try:
        return found.path.stat().st_size / 1e6
    except OSError:
        return None


@dataclass(frozen=True)
class Measure:
    """A figure measured after a trial from its folder: ``measure(trial_folder, epochs)``."""

    direction: Direction
    measure: Callable[[Path, int], float | None]
    description: str


#: Objectives the engine measures itself (not KPIs of the trainer).
MEASURED: dict[str, Measure] = {
    "checkpoint_mb": Measure("min", checkpoint_mb,
                             "size of the trial's scored checkpoint, MB (10^6 bytes)"),
}


@dataclass(frozen=True)
class Objective:
    """One objective: a KPI name (or a :data:`MEASURED` name), its direction, and its weight and
    scale in a weighted sum."""

    metric: str
    direction: Direction
    weight: float = 1.0
    scale: float = 1.0

    @property
    def sign(self) -> int:
        """+1 when larger is better, -1 when smaller is: ``sign * value`` is maximized."""
        return 1 if self.direction == "max" else -1

    @property
    def measured(self) -> bool:
        return self.metric in MEASURED

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "weight": self.weight,
                "scale": self.scale}


@dataclass(frozen=True)
class Objectives:
    """An experiment's objectives (the first is the primary: the trial reports and ``best``
    follow it) and how several are searched (``pareto`` or ``weighted``)."""

    items: tuple[Objective, ...]
    scalarize: Scalarize = "pareto"

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("an experiment needs at least one objective")

    def __iter__(self) -> Iterator[Objective]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def single(cls, metric: str, direction: Direction) -> Objectives:
        return cls((Objective(metric, direction),))

    @classmethod
    def from_json(cls, items: Sequence[Mapping[str, Any]], scalarize: str = "pareto"
                  ) -> Objectives:
        return cls(tuple(Objective(str(i["metric"]), i["direction"], float(i.get("weight", 1.0)),
                                   float(i.get("scale", 1.0))) for i in items),
                   "weighted" if scalarize == "weighted" else "pareto")

    def to_json(self) -> list[dict[str, Any]]:
        return [o.to_json() for o in self.items]

    @property
    def primary(self) -> Objective:
        return self.items[0]

    @property
    def metric(self) -> str:
        return self.primary.metric

    @property
    def direction(self) -> Direction:
        return self.primary.direction

    @property
    def names(self) -> list[str]:
        return [o.metric for o in self.items]

    @property
    def pareto(self) -> bool:
        """Whether the search itself is multi-objective (several objectives, not summed)."""
        return len(self.items) > 1 and self.scalarize == "pareto"

    @property
    def weighted(self) -> bool:
        """Whether the search optimizes one weighted sum of several objectives."""
        return len(self.items) > 1 and self.scalarize == "weighted"

    # -- values -------------------------------------------------------------------------------
    def measure(self, trial_folder: Path, epochs: int) -> dict[str, float]:
        """The measured objectives of a trial scored after ``epochs`` epochs (those that could
        be measured: a missing checkpoint measures nothing)."""
        out: dict[str, float] = {}
        for objective in self.items:
            step = MEASURED.get(objective.metric)
            value = step.measure(trial_folder, epochs) if step else None
            if value is not None and math.isfinite(value):
                out[objective.metric] = float(value)
        return out

    def values(self, scores: Mapping[str, Any]) -> tuple[float, ...] | None:
        """Each objective's finite value in ``scores``, in order; None when one is missing."""
        out = []
        for name in self.names:
            value = scores.get(name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                return None
            out.append(float(value))
        return tuple(out)

    def scalar(self, values: Sequence[float]) -> float:
        """The weighted sum TAO's AutoML optimizes (larger is better)."""
        return sum(o.sign * o.weight * v / o.scale for o, v in zip(self.items, values))

    def dominates(self, a: Sequence[float], b: Sequence[float]) -> bool:
        """Whether ``a`` is at least as good as ``b`` on every objective and better on one."""
        return _dominates(self.oriented(a), self.oriented(b))

    def oriented(self, values: Sequence[float]) -> tuple[float, ...]:
        """``sign * value`` per objective: every coordinate is then maximized."""
        return tuple(o.sign * float(x) for o, x in zip(self.items, values))

    def front(self, points: Sequence[tuple[K, Sequence[float]]]) -> list[K]:
        """The keys of the non-dominated points, in the order given (equal points all stay)."""
        return [key for key, value in points
                if not any(self.dominates(other, value) for _, other in points)]

    def score(self, values: Sequence[float]) -> float:
        """One number, larger is better, for a search that is not a front: the primary's
        ``sign * value`` (one objective) or the weighted sum (``scalarize: weighted``)."""
        if len(self.items) == 1:
            return self.primary.sign * float(values[0])
        return self.scalar(values)

    def order(self, points: Sequence[tuple[K, Sequence[float]]]) -> list[K]:
        """The keys best first: a multi-objective search (:attr:`pareto`) ranks by non-dominated
        sorting, a front's members by crowding distance, largest first (NSGA-II's order, which
        Syne Tune's MO-ASHA promotes by), then the order given; the others by :meth:`score`,
        then the order given."""
        if not self.pareto:
            scores = [self.score(value) for _, value in points]
            return [points[i][0] for i in sorted(range(len(points)), key=lambda i: -scores[i])]
        oriented = [self.oriented(value) for _, value in points]
        ranks = nondominated_ranks(oriented)
        crowding = [0.0] * len(points)
        for rank in set(ranks):
            members = [i for i, r in enumerate(ranks) if r == rank]
            for i, d in zip(members, crowding_distances([oriented[i] for i in members])):
                crowding[i] = d
        return [points[i][0] for i in sorted(range(len(points)),
                                             key=lambda i: (ranks[i], -crowding[i]))]


def nondominated_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Each point's front by non-dominated sorting (Deb et al. 2002), every coordinate to be
    maximized: 0 for the points no other point dominates, 1 for those only front 0 dominates,
    and so on. Equal points share a front."""
    n = len(points)
    beaten_by = [0] * n  # how many points dominate i
    beats: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(points[i], points[j]):
                beats[i].append(j)
                beaten_by[j] += 1
            elif _dominates(points[j], points[i]):
                beats[j].append(i)
                beaten_by[i] += 1
    ranks = [0] * n
    current = [i for i in range(n) if beaten_by[i] == 0]
    rank = 0
    while current:
        following = []
        for i in current:
            ranks[i] = rank
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        current, rank = following, rank + 1
    return ranks


def crowding_distances(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II's crowding distance of each point of one front: per objective, the gap between
    its two neighbours over the front's range, summed; the extremes of an objective with a
    range are infinitely far (always kept), so a front is cut where it is densest. Fronts of
    one or two points: all infinite."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for k in range(len(points[0])):
        by = sorted(range(n), key=lambda i: points[i][k])
        span = points[by[-1]][k] - points[by[0]][k]
        if span <= 0:
            continue
        distance[by[0]] = distance[by[-1]] = math.inf
        for left, middle, right in zip(by, by[1:], by[2:]):
            distance[middle] += (points[right][k] - points[left][k]) / span
    return distance


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b``, every coordinate maximized."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


# -- resolution -----------------------------------------------------------------------------------
def parse_objective(text: str) -> dict[str, Any]:
    """``NAME[:max|min][:weight]`` -> ``{metric, direction, weight}`` (``--objective``).

    Read from the right, so a KPI name may itself hold colons."""
    parts = text.split(":")
    out: dict[str, Any] = {}
    if len(parts) > 1:
        try:
            out["weight"] = float(parts[-1])
            parts = parts[:-1]
        except ValueError:
            pass
    if len(parts) > 1 and parts[-1].strip().lower() in ("max", "min", "maximize", "minimize"):
        out["direction"] = parts.pop().strip().lower()[:3]
    out["metric"] = ":".join(parts).strip()
    return out


def resolve(given: Sequence[Mapping[str, Any]], metric: str | None, direction: Direction | None,
            scalarize: Scalarize, network_default: Callable[[str | None, Direction | None],
                                                            tuple[str, Direction]]) -> Objectives:
    """The experiment's objectives: ``given`` (``--objective``/``objectives:``), else the one
    ``--metric``/``--direction`` or the network names (``network_default``, the network profile's
    rule; it also checks the primary KPI against what the network writes).

    The primary objective must be a KPI: trials report it while they train (schedulers, the
    progress display and the failure checks follow it); measured figures exist only afterwards.
    """
    if not given:
        name, way = network_default(metric, direction)
        return Objectives.single(name, way)
    items: list[Objective] = []
    for entry in given:
        name = str(entry["metric"])
        if name in (o.metric for o in items):
            raise UserError(f"--objective {name}: given twice; name each objective once")
        way = entry.get("direction")
        if not items:
            if name in MEASURED:
                raise UserError(f"--objective {name}: measured after a trial ends, so it cannot "
                                f"be the first (primary) objective; put a KPI the trainer writes "
                                f"first, e.g. --objective val_miou --objective {name}")
            name, way = network_default(name, way)
        elif way is None:
            way = MEASURED[name].direction if name in MEASURED else default_direction(name)
        items.append(Objective(name, way, float(entry.get("weight", 1.0)),
                               float(entry.get("scale", 1.0))))
    # Resolved settings (a resumed or submitted experiment) carry the primary as metric too.
    if (metric is not None and metric != items[0].metric) or \
            (direction is not None and direction != items[0].direction):
        raise UserError(f"--metric/--direction and --objective disagree ({metric} "
                        f"{direction or ''} against {items[0].metric} {items[0].direction}): "
                        f"name every objective with --objective NAME[:max|min][:weight], the "
                        f"first being the primary")
    return Objectives(tuple(items), scalarize)


def for_settings(settings: Any, profile: Any, source: str) -> Objectives:
    """:func:`resolve` for an experiment's Settings and its network profile (``source`` names
    the skill in messages)."""
    return resolve([o.model_dump() for o in settings.objectives], settings.metric,
                   settings.direction, settings.scalarize,
                   lambda name, way: profile.objective(name, way, source))
