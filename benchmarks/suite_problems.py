"""The problems of ``benchmarks/suite.py``: multi-fidelity functions over TAO-like mixed spaces.

Pure Python + numpy (no automl, no torch): the Syne Tune peers run in their own virtual
environment (Syne Tune 0.13, the last release with MOBSTER and Hyper-Tune, needs numpy < 1.27)
and import this module there too.

Every problem is minimised. ``f(config, epoch)`` is the value a trainer would report after
``epoch`` of ``R`` epochs (fidelity ``s = epoch / R``); :attr:`Problem.noise` adds Gaussian noise
to what is reported, never to the regret (``f(x_inc, R) - f*`` without noise). See
benchmarks/README.md ("Suite") for each problem's source and why it is there.

Parameters are plain dicts: ``{"name", "kind": "float"|"int"|"pow2"|"cat"|"bool", "low",
"high", "log", "choices"}`` (``pow2``: an integer power of two in ``[low, high]``, a TAO
``math_cond: "^ 2"`` batch size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

R = 27


@dataclass
class Problem:
    name: str
    params: list[dict[str, Any]]
    fn: Callable[[dict[str, Any], float], float]  # (config, fidelity s in (0, 1]) -> value
    source: str
    noise: float = 0.0
    f_star: float | None = None  # known optimum; else found numerically by suite.py
    optimum: dict[str, Any] = field(default_factory=dict)  # a known minimiser (for "good")

    def value(self, config: dict[str, Any], epoch: int, rng: np.random.Generator | None = None) -> float:
        y = float(self.fn(config, epoch / R))
        if self.noise and rng is not None:
            y += float(rng.normal(0.0, self.noise))
        return y


def _f(name: str, low: float, high: float, log: bool = False) -> dict[str, Any]:
    return {"name": name, "kind": "float", "low": low, "high": high, "log": log}


def _i(name: str, low: int, high: int) -> dict[str, Any]:
    return {"name": name, "kind": "int", "low": low, "high": high}


def _cat(name: str, *choices: Any) -> dict[str, Any]:
    return {"name": name, "kind": "cat", "choices": list(choices)}


def _bool(name: str) -> dict[str, Any]:
    return {"name": name, "kind": "bool", "choices": [False, True]}


def _pow2(name: str, low: int, high: int) -> dict[str, Any]:
    return {"name": name, "kind": "pow2", "low": low, "high": high}


def choices(param: dict[str, Any]) -> list[Any]:
    if param["kind"] == "pow2":
        return [2 ** e for e in range(int(math.log2(param["low"])), int(math.log2(param["high"])) + 1)]
    return list(param["choices"])


def centre(param: dict[str, Any]) -> Any:
    """The neutral default: the middle of the range (geometric for log), the middle option."""
    kind = param["kind"]
    if kind == "float":
        lo, hi = param["low"], param["high"]
        return math.sqrt(lo * hi) if param.get("log") else (lo + hi) / 2
    if kind == "int":
        return (param["low"] + param["high"]) // 2
    options = choices(param)
    return options[(len(options) - 1) // 2] if kind != "bool" else False


def to_unit(param: dict[str, Any], value: Any) -> float:
    """A value -> [0, 1] (log scale where log; the option's index for discrete ones)."""
    kind = param["kind"]
    if kind in ("float", "int"):
        lo, hi = param["low"], param["high"]
        if param.get("log"):
            return (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
        return (value - lo) / (hi - lo)
    options = choices(param)
    return options.index(value) / max(1, len(options) - 1)


def from_unit(param: dict[str, Any], u: float) -> Any:
    u = min(max(u, 0.0), 1.0)
    kind = param["kind"]
    if kind in ("float", "int"):
        lo, hi = param["low"], param["high"]
        x = math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo))) if param.get("log") \
            else lo + u * (hi - lo)
        return int(round(x)) if kind == "int" else float(x)
    options = choices(param)
    return options[int(round(u * (len(options) - 1)))]


def sample(params: list[dict[str, Any]], rng: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in params:
        if p["kind"] in ("float", "int"):
            out[p["name"]] = from_unit(p, float(rng.random()))
            if p["kind"] == "int":
                out[p["name"]] = int(rng.integers(p["low"], p["high"] + 1))
        else:
            options = choices(p)
            out[p["name"]] = options[int(rng.integers(len(options)))]
    return out


# ---------------------------------------------------------------------------------------------
# Classic multi-fidelity test functions (closed form, with the sources' optimum)


def _branin(c: dict[str, Any], s: float) -> float:
    # Augmented Branin (Wu et al. 2019; BoTorch AugmentedBranin): b depends on the fidelity.
    x1, x2 = c["x1"], c["x2"]
    b = 5.1 / (4 * math.pi ** 2) - 0.1 * (1 - s)
    return (x2 - b * x1 ** 2 + 5 / math.pi * x1 - 6) ** 2 \
        + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_H_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                 [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                        [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _hartmann6(c: dict[str, Any], s: float) -> float:
    # Augmented Hartmann-6 (BoTorch AugmentedHartmann, after Hartmann 1973): alpha_1 - 0.1 (1 - s).
    x = np.array([c[f"x{i}"] for i in range(1, 7)])
    alpha = _H_ALPHA.copy()
    alpha[0] -= 0.1 * (1 - s)
    inner = np.sum(_H_A * (x - _H_P) ** 2, axis=1)
    return float(-np.sum(alpha * np.exp(-inner)))


def _rosenbrock4(c: dict[str, Any], s: float) -> float:
    # Augmented Rosenbrock (BoTorch AugmentedRosenbrock, d = 4 design + 2 fidelity columns = s).
    x = [c[f"x{i}"] for i in range(1, 5)]
    total = 0.0
    for i in range(3):
        total += 100 * (x[i + 1] - x[i] ** 2 + 0.1 * (1 - s)) ** 2 \
            + (x[i] - 1 + 0.1 * (1 - s) ** 2) ** 2
    return total


def _currin(x1: float, x2: float) -> float:
    x2 = max(x2, 1e-9)
    return (1 - math.exp(-1 / (2 * x2))) * (2300 * x1 ** 3 + 1900 * x1 ** 2 + 2092 * x1 + 60) \
        / (100 * x1 ** 3 + 500 * x1 ** 2 + 4 * x1 + 20)


def _currin_mf(c: dict[str, Any], s: float) -> float:
    # Currin exponential (Currin et al. 1988), its low-fidelity average of four shifted points
    # (Xiong, Qian & Wu 2013), blended linearly in s; maximised in the source, negated here.
    x1, x2 = c["x1"], c["x2"]
    low = (_currin(x1 + 0.05, x2 + 0.05) + _currin(x1 + 0.05, max(0.0, x2 - 0.05))
           + _currin(x1 - 0.05, x2 + 0.05) + _currin(x1 - 0.05, max(0.0, x2 - 0.05))) / 4
    return -(s * _currin(x1, x2) + (1 - s) * low)


# ---------------------------------------------------------------------------------------------
# TAO-like training runs (synthetic learning curves; ours, see benchmarks/README.md)

_BACKBONES = {  # final error offset, speed (1/epochs to converge), capacity
    "resnet18": (0.06, 1.6, 0.0), "resnet50": (0.03, 1.0, 0.0),
    "efficientnet_b0": (0.035, 1.2, 0.0), "vit_b16": (0.0, 0.45, 0.0),
}


def _lr_term(lr: float, best: float, width: float = 1.0) -> float:
    return 0.08 * ((math.log10(lr) - math.log10(best)) / width) ** 2


def _curve(final: float, start: float, speed: float, s: float) -> float:
    """Error after fraction s of training: from ``start`` to ``final`` at rate ``speed``."""
    return final + (start - final) * math.exp(-6.0 * speed * s)


def _classifier(c: dict[str, Any], s: float) -> float:
    # lr log, batch pow2, backbone cat, weight decay log, two augmentation flags. The best lr
    # scales with the batch (linear scaling rule); big backbones and mixup learn slowly and end
    # best: a low-fidelity trap (ranks change between rungs).
    offset, speed, _ = _BACKBONES[c["backbone"]]
    best_lr = 1e-3 * c["batch_size"] / 64
    final = 0.12 + offset + _lr_term(c["lr"], best_lr) \
        + 0.02 * (math.log10(c["weight_decay"]) + 4) ** 2 / 4 \
        - (0.015 if c["flip"] else 0.0) - (0.025 if c["mixup"] else 0.0)
    speed *= (0.6 if c["mixup"] else 1.0) * min(2.0, (c["lr"] / 1e-3) ** 0.3)
    return _curve(final, 0.9, speed, s)


def _detector(c: dict[str, Any], s: float) -> float:
    # 8 parameters: warm-up epochs (int), lr, batch, backbone, frozen BN, mosaic, IoU
    # threshold, anchor scale (log). Mosaic and long warm-up hurt early, help late.
    offset, speed, _ = _BACKBONES[c["backbone"]]
    best_lr = 2e-3 * (c["batch_size"] / 32) ** 0.5
    final = 0.35 + offset + _lr_term(c["lr"], best_lr, 0.8) \
        + 2.0 * (c["iou_threshold"] - 0.62) ** 2 \
        + 0.05 * math.log(c["anchor_scale"] / 1.6) ** 2 \
        + (0.0 if c["freeze_bn"] == (c["batch_size"] < 16) else 0.02) \
        - (0.04 if c["mosaic"] else 0.0) - 0.004 * min(c["warmup_epochs"], 5)
    speed *= (0.5 if c["mosaic"] else 1.0) / (1 + 0.15 * c["warmup_epochs"])
    return _curve(final, 1.0, speed, s)


def _segmenter(c: dict[str, Any], s: float) -> float:
    # 1 - mIoU of a segmentation run: lr log, batch pow2, crop size (int), backbone,
    # poly power (float). Reported with noise (see Problem.noise).
    offset, speed, _ = _BACKBONES[c["backbone"]]
    final = 0.25 + offset + _lr_term(c["lr"], 6e-5 * c["batch_size"] / 8, 1.2) \
        + 0.1 * ((c["crop"] - 640) / 384) ** 2 + 0.05 * (c["poly_power"] - 0.9) ** 2
    return _curve(final, 0.95, speed, s)


def _levy_mixed(c: dict[str, Any], s: float) -> float:
    # Levy (Surjanovic & Bingham's library) in 10 dimensions: 6 floats, 2 ints, 2 categorical
    # levels; the low fidelities add a quadratic bowl centred elsewhere (a trap).
    levels = {"a": -3.0, "b": 1.0, "c": 4.0}
    x = [c[f"x{i}"] for i in range(1, 7)] + [float(c["n1"]), float(c["n2"]),
                                            levels[c["k1"]], levels[c["k2"]]]
    w = [1 + (xi - 1) / 4 for xi in x]
    total = math.sin(math.pi * w[0]) ** 2 + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)
    for wi in w[:-1]:
        total += (wi - 1) ** 2 * (1 + 10 * math.sin(math.pi * wi + 1) ** 2)
    trap = sum((xi + 2) ** 2 for xi in x[:6]) / 6
    return total + 3.0 * (1 - s) ** 2 * trap


def _ackley_cat(c: dict[str, Any], s: float) -> float:
    # Ackley over two floats and an int whose optimum moves with a categorical "optimizer"
    # (each option shifts the bowl); the fidelity scales a smooth bias (no trap).
    shift = {"sgd": 0.0, "adam": 1.5, "adamw": -1.0}[c["optimizer"]]
    x = np.array([c["x1"] - shift, c["x2"], float(c["layers"] - 3)])
    a = -20 * math.exp(-0.2 * math.sqrt(float(np.mean(x ** 2))))
    b = -math.exp(float(np.mean(np.cos(2 * math.pi * x))))
    bias = 0.0 if c["optimizer"] == "adamw" else 0.3
    return a + b + 20 + math.e + bias + 2.0 * (1 - s)


PROBLEMS: dict[str, Problem] = {p.name: p for p in (
    Problem("branin2", [_f("x1", -5, 10), _f("x2", 0, 15)], _branin,
            "Augmented Branin: Wu, Toscano-Palmerin, Frazier, Wilson 2019; BoTorch AugmentedBranin",
            f_star=0.397887, optimum={"x1": math.pi, "x2": 2.275}),
    Problem("hartmann6", [_f(f"x{i}", 0, 1) for i in range(1, 7)], _hartmann6,
            "Augmented Hartmann-6: BoTorch AugmentedHartmann (Hartmann 1973 + fidelity on alpha_1)",
            f_star=-3.32237, optimum=dict(zip([f"x{i}" for i in range(1, 7)],
                                              [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]))),
    Problem("rosenbrock4", [_f(f"x{i}", -2, 2) for i in range(1, 5)], _rosenbrock4,
            "Augmented Rosenbrock: BoTorch AugmentedRosenbrock (dim 6: 4 design + 2 fidelity)",
            f_star=0.0, optimum={f"x{i}": 1.0 for i in range(1, 5)}),
    Problem("currin2", [_f("x1", 0, 1), _f("x2", 0, 1)], _currin_mf,
            "Currin exponential (Currin et al. 1988) with Xiong, Qian & Wu's 2013 low fidelity"),
    Problem("classifier6", [_f("lr", 1e-5, 1e-1, log=True), _pow2("batch_size", 8, 256),
                            _cat("backbone", *_BACKBONES), _f("weight_decay", 1e-6, 1e-2, log=True),
                            _bool("flip"), _bool("mixup")], _classifier,
            "synthetic TAO classification run (ours): lr-batch scaling rule, slow big backbones"),
    Problem("detector8", [_i("warmup_epochs", 0, 10), _f("lr", 1e-5, 1e-1, log=True),
                          _pow2("batch_size", 4, 64), _cat("backbone", *_BACKBONES),
                          _bool("freeze_bn"), _bool("mosaic"), _f("iou_threshold", 0.3, 0.9),
                          _f("anchor_scale", 0.25, 8.0, log=True)], _detector,
            "synthetic TAO detection run (ours): mosaic/warm-up low-fidelity traps"),
    Problem("segmenter5_noisy", [_f("lr", 1e-6, 1e-2, log=True), _pow2("batch_size", 2, 32),
                                 _i("crop", 256, 1024), _cat("backbone", *_BACKBONES),
                                 _f("poly_power", 0.5, 2.0)], _segmenter,
            "synthetic TAO segmentation run (ours), reported with noise sd 0.02", noise=0.02),
    Problem("levy10_mixed", [*[_f(f"x{i}", -10, 10) for i in range(1, 7)], _i("n1", -10, 10),
                             _i("n2", -10, 10), _cat("k1", "a", "b", "c"), _cat("k2", "a", "b", "c")],
            _levy_mixed, "Levy (Surjanovic & Bingham, Virtual Library of Simulation Experiments), "
            "mixed-type, with a low-fidelity trap (ours)",
            f_star=0.0, optimum={**{f"x{i}": 1.0 for i in range(1, 7)}, "n1": 1, "n2": 1,
                                 "k1": "b", "k2": "b"}),
    Problem("ackley3_cat", [_f("x1", -5, 5), _f("x2", -5, 5), _i("layers", 1, 8),
                            _cat("optimizer", "sgd", "adam", "adamw")], _ackley_cat,
            "Ackley (Surjanovic & Bingham) with a categorical shift (ours)",
            f_star=0.0, optimum={"x1": -1.0, "x2": 0.0, "layers": 3, "optimizer": "adamw"}),
)}
