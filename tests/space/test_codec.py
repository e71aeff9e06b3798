"""automl.space.codec: configurations <-> points of the unit cube."""

from __future__ import annotations

import numpy as np

from automl.space.codec import Codec, reflect
from automl.space.params import Param, SearchSpace


def test_decode_respects_the_space():
    """Conditions, powers, weights and pins hold for any point of the cube (DEHB's population,
    the GP's candidates); the ends of a weighted categorical are its first and last choice."""
    space = SearchSpace(params=(
        Param("a", "int", 1, 64, log=True),
        Param("b", "float", 1e-5, 1e-1, log=True),
        Param("c", "categorical", choices=("x", "y", "z"), weights=(0.8, 0.1, 0.1)),
        Param("p", "int", 1, 64, math_cond="^ 2"),
        Param("d", "int", 1, 100, depends_on="a", math_cond="<= depends_on"),
    ), pinned={"e": 3})
    codec = Codec(space)
    rng = np.random.default_rng(0)
    for _ in range(200):
        config = codec.decode(rng.random(5))
        space.validate(config)
        assert config["e"] == 3 and config["d"] <= config["a"]
    assert codec.decode(np.zeros(5))["c"] == "x" and codec.decode(np.ones(5))["c"] == "z"
    assert codec.decode(np.ones(5))["p"] == 64


def test_reflect_folds_back_into_the_cube():
    assert np.allclose(reflect(np.array([-0.2, 0.3, 1.25, 2.5, -1.5])), [0.2, 0.3, 0.75, 0.5, 0.5])
