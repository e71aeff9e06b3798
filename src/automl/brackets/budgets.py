"""Epoch budgets of the bracket family: the rung ladder and Hyperband's bracket allocation.

Pure functions (no Ray), shared by ASHA, Hyperband, Hyperband-ES, BOHB and DEHB so that every
algorithm trains to the same rung epochs and their results are comparable.

Rung ladder
    ``s_max = floor(log_eta(R / r))`` and rung ``k`` (``k = 0..s_max``) is
    ``round(R * eta**(k - s_max))`` (at least ``r``). When ``R = r * eta**s_max`` (TAO's defaults
    27/1/3, the tests' 9/1/3) this is exactly ASHA's ``r * eta**k`` and Hyperband's
    ``R * eta**-s``; otherwise anchoring at ``R`` keeps the top rung at the full budget (the best
    trial is chosen at the largest budget) instead of stopping at some ``r * eta**k < R``.
    Example: R=9, r=1, eta=3 -> [1, 3, 9]; R=10 -> [1, 3, 10]; R=5 -> [2, 5].

Hyperband (Li et al. 2018, Algorithm 1)
    Bracket ``s = s_max..0`` starts ``n_s = ceil((s_max + 1) / (s + 1) * eta**s)`` configurations
    at rung ``s_max - s`` (budget ``R * eta**-s``) and keeps ``n_i = floor(n_s * eta**-i)`` of them
    at its ``i``-th rung (successive halving, ``i = 0..s``). R=9, eta=3: s=2: 9@1 -> 3@3 -> 1@9;
    s=1: 5@3 -> 1@9; s=0: 3@9 (17 configurations, 69 epochs with promotion by resume).

    ``max_recommendations`` (N) is the number of configurations: whole Hyperband iterations
    (brackets s_max..0) while they fit, then the remaining ``m < sum(n_s)`` configurations are
    spread over the brackets of one more iteration in proportion to ``n_s`` (largest
    remainders; brackets that get none are left out), each such bracket keeping
    ``max(1, floor(m_s * eta**-i))`` at its rung ``i``. Without that rule TAO's defaults (R=27,
    N=20 < 49 for one iteration) would degenerate to a single truncated successive-halving
    bracket; with it they run 11@1->3@3->1@9->1@27, 5@3->1@9->1@27, 2@9->1@27 and 2@27.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import reduce


def rung_ladder(max_epochs: int, min_epochs: int = 1, eta: int = 3) -> list[int]:
    """The rung epochs ``[b_0 < b_1 < ... < b_K = max_epochs]``."""
    if max_epochs < 1 or min_epochs < 1 or eta < 2:
        raise ValueError(f"bad budget: R={max_epochs}, r={min_epochs}, eta={eta}")
    min_epochs = min(min_epochs, max_epochs)
    s_max = 0
    while eta ** (s_max + 1) * min_epochs <= max_epochs:
        s_max += 1
    rungs: list[int] = []
    for k in range(s_max + 1):
        epochs = max(min_epochs, round(max_epochs / eta ** (s_max - k)))
        if not rungs or epochs > rungs[-1]:
            rungs.append(int(epochs))
    return rungs


def checkpoint_interval(rungs: list[int]) -> int:
    """The largest interval whose multiples include every rung epoch (their gcd)."""
    return reduce(math.gcd, rungs)


@dataclass(frozen=True)
class BracketPlan:
    """One successive-halving bracket: ``sizes[i]`` configurations at rung ``start + i``."""

    index: int  # creation order (0, 1, ...)
    s: int  # Hyperband's bracket index: s_max - s is the first rung
    iteration: int  # Hyperband iteration (0 for the first s_max..0 sweep)
    start: int  # ladder index of the bracket's first rung
    sizes: tuple[int, ...]

    @property
    def n(self) -> int:
        return self.sizes[0]


def bracket_size(s: int, s_max: int, eta: int) -> int:
    """Textbook ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` (integer arithmetic)."""
    return -(-(s_max + 1) * eta**s // (s + 1))


def _halvings(n: int, s: int, eta: int) -> tuple[int, ...]:
    return tuple(max(1, n // eta**i) for i in range(s + 1))


def hyperband_brackets(num_rungs: int, eta: int, num_configs: int) -> list[BracketPlan]:
    """The brackets that spend ``num_configs`` configurations (see the module docstring)."""
    s_max = num_rungs - 1
    full = [(s, bracket_size(s, s_max, eta)) for s in range(s_max, -1, -1)]
    per_iteration = sum(n for _, n in full)
    plans: list[BracketPlan] = []
    iteration, left = 0, num_configs
    while left >= per_iteration:
        for s, n in full:
            plans.append(BracketPlan(len(plans), s, iteration, s_max - s, _halvings(n, s, eta)))
        left -= per_iteration
        iteration += 1
    if left > 0:
        shares = [left * n / per_iteration for _, n in full]
        counts = [int(x) for x in shares]
        order = sorted(range(len(full)), key=lambda i: (-(shares[i] - counts[i]), i))
        for i in order[: left - sum(counts)]:
            counts[i] += 1
        for (s, _), m in zip(full, counts):
            if m:
                plans.append(BracketPlan(len(plans), s, iteration, s_max - s, _halvings(m, s, eta)))
    return plans


def epochs_of(plans: list[BracketPlan], rungs: list[int]) -> int:
    """Epochs trained by the brackets when promotions resume from the rung checkpoint."""
    total = 0
    for plan in plans:
        previous = 0
        for i, size in enumerate(plan.sizes):
            epochs = rungs[plan.start + i]
            total += size * (epochs - previous)  # survivors resume from the previous rung
            previous = epochs
    return total
