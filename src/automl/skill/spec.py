"""Building a trial's spec: template ⊕ user overrides ⊕ the trial's values ⊕ engine-owned keys.

Keys are dotted paths into the nested spec (``train.optim.lr``). A user override must name a key
that exists in the skill's spec template or its schema (or a ``spec_shorthand_keys`` alias from
skill_info.yaml such as ``num_epochs``); anything else is rejected with a suggestion, because a
typo silently ignored costs a whole experiment.

Keys the engine owns (``results_dir``, ``train.num_epochs``, the resume checkpoint) cannot be
overridden: they are what keeps every path an experiment writes inside its workspace. A few
template values are changed unless the user sets them (:data:`ENGINE_DEFAULTS`: Weights & Biases
off), with a note printed once per run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from automl.errors import UserError, did_you_mean
# Upward (skill/ → space/): a searched list's elements become the list the spec holds by the
# list rule's own assembly (space/lists.py), wherever a spec is built (trials, resume, replay).
from automl.space.lists import assemble

RESUME_KEY = "train.resume_training_checkpoint_path"  # TAO's, unless spec_params names another
ENGINE_KEYS = frozenset({"results_dir", "train.results_dir", RESUME_KEY, "train.num_epochs"})
# Keys whose template value the engine changes unless the user sets them (--set wins), and why.
# TAO's templates turn Weights & Biases on: every trial would try to log in to wandb.ai (and
# fail, or upload, from a container without credentials); that is the user's choice to make.
ENGINE_DEFAULTS: dict[str, tuple[Any, str]] = {
    "wandb.enable": (False, "Weights & Biases logging is off in every trial (TAO's template turns "
                            "it on); --set wandb.enable=true keeps it"),
}
_MISSING = object()


def _steps(key: str) -> list[str | int]:
    """``a.b[0].c`` → ``["a", "b", 0, "c"]``: skill_info.yaml names inputs inside lists
    (``dataset.train_data_sources[0].image_dir``)."""
    steps: list[str | int] = []
    for part in key.split("."):
        name, _, rest = part.partition("[")
        steps.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            steps.append(int(index) if index.isdigit() else index)
            rest = rest.removeprefix("[")
    return steps


def get_dotted(spec: Mapping[str, Any], key: str, default: Any = _MISSING) -> Any:
    node: Any = spec
    for step in _steps(key) if "[" in key else key.split("."):
        if isinstance(step, int):
            found = isinstance(node, list) and step < len(node)
        else:
            found = isinstance(node, Mapping) and step in node
        if not found:
            if default is _MISSING:
                raise KeyError(key)
            return default
        node = node[step]
    return node


def set_dotted(spec: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` (or ``a.b[0].c``) in a nested spec, creating intermediate mappings (and
    list items, as empty mappings)."""
    steps = _steps(key) if "[" in key else key.split(".")
    node: Any = spec
    for step, following in zip(steps[:-1], steps[1:]):
        want = list if isinstance(following, int) else dict
        if isinstance(step, int):
            while len(node) <= step:
                node.append({})
            if not isinstance(node[step], want):
                node[step] = want()
        elif not isinstance(node.get(step), want):
            node[step] = want()
        node = node[step]
    last = steps[-1]
    if isinstance(last, int):
        while len(node) <= last:
            node.append(None)
    node[last] = value


def flatten(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of every leaf (lists are leaves)."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        set_dotted(out, key, value)
    return out


def parse_assignments(items: Iterable[str], flag: str = "--set") -> dict[str, Any]:
    """``key=value`` strings to a dict; values are YAML scalars (``1e-4``, ``true``, ``[1, 2]``)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"{flag} {item!r}: expected KEY=VALUE, e.g. {flag} train.optim.lr=1e-4")
        out[key] = parse_scalar(raw)
    return out


def parse_paths(items: Iterable[str], flag: str) -> dict[str, str]:
    """``KEY=PATH`` strings to a dict; a path is taken as typed (never read as YAML)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, raw = str(item).partition("=")
        if not sep or not key.strip() or not raw.strip():
            raise UserError(f"{flag} {item!r}: expected KEY=PATH, e.g. {flag} "
                            f"dataset.train_dataset.images_dir=/data/train")
        out[key.strip()] = raw.strip()
    return out


def parse_scalar(raw: str) -> Any:
    """A CLI value as YAML would read it, plus ``1e-4`` as a float (YAML 1.1 reads a string)."""
    if not raw.strip():
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str):
        try:
            return float(value) if any(c in value.lower() for c in ".e") else int(value)
        except ValueError:
            return value
    return value


class SpecBuilder:
    """Validates user overrides once, then builds each trial's spec cheaply."""

    def __init__(
        self,
        template: Mapping[str, Any],
        known_keys: Iterable[str],
        shorthand: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        resume_key: str = RESUME_KEY,
    ) -> None:
        self.template = copy.deepcopy(dict(template))
        self.resume_key = resume_key  # the network's spec_params resume_model key
        self.shorthand = dict(shorthand or {})
        self.known = set(known_keys) | set(flatten(self.template))
        self.overrides = self.resolve(overrides or {}, source="override")

    def engine_defaults(self) -> dict[str, Any]:
        """The :data:`ENGINE_DEFAULTS` that apply: the template has the key and the user did
        not set it."""
        return {key: value for key, (value, _) in ENGINE_DEFAULTS.items()
                if key not in self.overrides
                and get_dotted(self.template, key, None) not in (None, value)}

    def notes(self) -> list[str]:
        """One line per template value the engine changed (printed once per run)."""
        return [ENGINE_DEFAULTS[key][1] for key in self.engine_defaults()]

    def canonical(self, key: str) -> str:
        return self.shorthand.get(key, key)

    def resolve(self, values: Mapping[str, Any], source: str) -> dict[str, Any]:
        """Map shorthands to full keys and reject unknown or engine-owned keys."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            full = self.canonical(key)
            if full in ENGINE_KEYS or full == self.resume_key:
                raise UserError(
                    f"{source} '{key}': this key is managed by automl (each trial's results stay "
                    f"inside the workspace; the budget comes from --max-epochs); remove it"
                )
            if not self._is_known(full):
                hint = did_you_mean(full, self.known | set(self.shorthand))
                raise UserError(
                    f"{source} '{key}': unknown spec key{hint}; keys come from the skill's "
                    f"spec template and train.schema.json"
                )
            out[full] = value
        return out

    def _is_known(self, key: str) -> bool:
        if key in self.known:
            return True
        if "[" in key:  # inside a list the template or schema knows (data_sources[0].image_dir)
            return key.partition("[")[0] in self.known
        # A key inside a free-form collection of the template (e.g. backend_kwargs.foo).
        parent = key.rpartition(".")[0]
        while parent:
            if parent in self.known and isinstance(get_dotted(self.template, parent, None), dict):
                return True
            parent = parent.rpartition(".")[0]
        return False

    def build(
        self,
        values: Mapping[str, Any],
        results_dir: Path,
        epochs: int,
        resume_checkpoint: Path | None = None,
        interval: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The full spec of one trial segment.

        ``interval``: checkpoint/validation interval wanted by the algorithm (rung epochs must
        have a checkpoint); both intervals are clamped to ``epochs`` because TAO asserts
        ``checkpoint_interval <= num_epochs`` and ``validation_interval <= num_epochs``.
        """
        spec = copy.deepcopy(self.template)
        # A searched list arrives as sub-parameters (train.optim.betas[0], ...): written as the list.
        changes = {**self.engine_defaults(), **self.overrides, **dict(extra or {}),
                   **assemble(values, int(epochs))}
        for key, value in changes.items():
            set_dotted(spec, key, value)
        set_dotted(spec, "results_dir", str(results_dir))
        set_dotted(spec, "train.num_epochs", int(epochs))
        set_dotted(spec, self.resume_key, str(resume_checkpoint) if resume_checkpoint else "")
        for key in ("train.checkpoint_interval", "train.validation_interval"):
            current = get_dotted(spec, key, None)
            wanted = interval if interval is not None else current
            if isinstance(wanted, int) and not isinstance(wanted, bool):
                set_dotted(spec, key, max(1, min(wanted, int(epochs))))
        if isinstance(get_dotted(spec, "train.tensorboard", None), dict):
            set_dotted(spec, "train.tensorboard.enabled", False)
        return spec


def write_spec(spec: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(dict(spec), sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path
