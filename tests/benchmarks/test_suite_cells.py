"""benchmarks/suite.py: a cell is a function of its (problem, method, seed).

The suite resumes from stored cells and mixes cells run on different days, so a cell that does
not reproduce from its seed makes the medians depend on when each cell ran. Two sources of
drift were found: Optuna's HyperbandPruner assigns brackets by a hash of the study's name (an
unnamed study gets a random one), and a change of the per-proposal seeds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import suite  # noqa: E402  (benchmarks/ is not a package)


@pytest.mark.parametrize("method", ["automl:async_bohb+gp@neutral", "automl:bohb@none",
                                    "optuna:tpe_hb", "random"])
def test_a_cell_reproduces_from_its_seed(method):
    problem = suite.PROBLEMS["hartmann6"]
    x_star = problem.optimum
    first = suite.run_cell("hartmann6", method, 3, x_star, budget=240)
    second = suite.run_cell("hartmann6", method, 3, x_star, budget=240)
    assert first["spent"] == 240 and first["curve"]
    assert first["curve"] == second["curve"]
