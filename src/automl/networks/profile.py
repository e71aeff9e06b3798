"""A network's profile: everything network-specific the engine needs, in one object.

Most of it is read from the skill folder (``references/skill_info.yaml``): each action's declared
inputs (``actions.<action>.inputs``, folder or file), ``spec_params`` (which key takes the resume
checkpoint, the pretrained weights, the parent model of evaluate/export/..., which keys are
outputs such as the ONNX file), ``gpu_spec_key`` and ``spec_shorthand_keys``. The facts the folder
lacks (the KPI TAO monitors) come from :mod:`automl.networks.catalog`, and the few behaviours no
file states (SegFormer's mask check, its export input size) from a network's *extras*
(:class:`NetworkExtras`). No other module spells a dataset key or a metric name.
"""

from __future__ import annotations


from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from automl.errors import UserError, did_you_mean
from automl.networks.catalog import Direction, NetworkFacts, default_direction

if TYPE_CHECKING:
    from automl.skill.spec import SpecBuilder

PathKind = Literal["file", "folder"]
# spec_params roles (TAO's words) and what they mean here.
RESUME_ROLE = "resume_model"
PRETRAINED_ROLE = "ptm_if_no_resume_model"
PARENT_ROLE = "parent_model"
OUTPUT_ROLE_PREFIX = "create_"  # create_onnx_file, create_engine_file, create_pth_file, ...
# TAO's usual roles, for a skill folder whose spec_params says nothing of an action (older texts).
DEFAULT_ROLES: dict[str, dict[str, str]] = {
    "train": {"train.resume_training_checkpoint_path": RESUME_ROLE},
    "evaluate": {"evaluate.checkpoint": PARENT_ROLE},
    "export": {"export.checkpoint": PARENT_ROLE, "export.onnx_file": "create_onnx_file"},
    "inference": {"inference.checkpoint": PARENT_ROLE},
    "quantize": {"quantize.model_path": PARENT_ROLE},
}
# A path value still to be filled in by the user: TAO's templates write '' or '???'.
UNSET_VALUES = ("", "???", None)


@dataclass(frozen=True)
class Input:
    """One declared input of an action: a spec key that names a path."""

    key: str
    kind: PathKind
    optional: bool = False

    def check(self, value: Path, flag: str, layout: str = "") -> Path:
        """The resolved path, or a one-line UserError naming the key and the fix.

        Some skills declare a folder key as ``file`` (DINO's ``image_dir``): a folder is accepted
        for a ``file`` input whose name says it is a folder (``*dir``), as TAO's own service
        does not check types either.
        """
        path = Path(value).expanduser().resolve()
        if not path.exists() and flag == "--root-dir":
            raise UserError(f"--root-dir {value}: dataset folder not found; pass the folder that "
                            f"holds {layout or self.key + ' data'}")
        if not path.exists():
            raise UserError(f"{flag} {self.key}={value}: not found; pass an existing "
                            f"{self.kind} for {self.key}")
        folder_like = self.kind == "folder" or self.key.rsplit(".", 1)[-1].endswith("dir")
        if path.is_dir() and not folder_like:
            raise UserError(f"{flag} {self.key}={value}: is a folder, but {self.key} takes a "
                            f"file; pass the file")
        if path.is_file() and self.kind == "folder":
            raise UserError(f"{flag} {self.key}={value}: is a file, but {self.key} takes a "
                            f"folder; pass the folder")
        return path


@dataclass(frozen=True)
class ActionKeys:
    """What ``skill_info.yaml`` says about one action's spec keys."""

    inputs: Mapping[str, Input]
    roles: Mapping[str, str]  # spec_params: key → role (resume_model, parent_model, create_*, ...)

    def keys_with(self, role: str) -> tuple[str, ...]:
        return tuple(k for k, r in self.roles.items() if r == role)

    @property
    def outputs(self) -> tuple[str, ...]:
        """Keys the action writes a file to (the ONNX file, the TensorRT engine, ...)."""
        return tuple(k for k, r in self.roles.items()
                     if isinstance(r, str) and r.startswith(OUTPUT_ROLE_PREFIX))


DatasetCheck = Callable[["NetworkProfile", Mapping[str, Path], "SpecBuilder"], None]


@dataclass(frozen=True)
class NetworkExtras:
    """Behaviour of one network that no file of its skill folder states.

    ``dataset_check``: a look at the data before launch (SegFormer: layout and mask classes).
    ``headline_keys``: the trained model's own settings a hand-off names in its summary.
    ``action_rules``: per action, a function that fills keys of the action's spec from the
    trained spec (SegFormer's export input size follows ``img_size``); it returns the defaults
    it chose that a user should see, key → (value, why).
    ``default_data``: the embedded default's generated dataset (the bundled trainer only).
    ``root_layout``: what the ``--root-dir`` folder holds, for messages.
    ``fallback_inputs``: the inputs of a skill folder written before skill_info.yaml declared
    them (used for an action that declares none, where its template has the key).
    """

    dataset_check: DatasetCheck | None = None
    headline_keys: tuple[str, ...] = ()
    action_rules: Mapping[str, Callable[[dict[str, Any], Mapping[str, Any], Path],
                                        dict[str, tuple[Any, str]]]] = field(default_factory=dict)
    default_data: Callable[[Path, "SpecBuilder"], dict[str, Path]] | None = None
    root_layout: str = ""
    fallback_inputs: tuple[Input, ...] = ()


@dataclass(frozen=True)
class NetworkProfile:
    """One network, as the engine, the trials, the hand-off and the service see it."""

    network_arch: str
    facts: NetworkFacts | None
    actions: Mapping[str, ActionKeys]
    gpu_spec_key: str | None = None
    shorthand: Mapping[str, str] = field(default_factory=dict)
    extras: NetworkExtras = NetworkExtras()

    # -- the metric ---------------------------------------------------------------------------

    @property
    def metric(self) -> str | None:
        """TAO's monitoring metric of this network, None where TAO publishes none."""
        return self.facts.metric if self.facts else None

    def objective(self, metric: str | None, direction: Direction | None,
                  source: str) -> tuple[str, Direction]:
        """The metric and direction of an experiment: what the user gave, else this network's.

        ``source`` names the skill in the message for a network with no published metric.
        A metric the profile knows to be absent from the trainer's KPIs is refused here.
        """
        name = metric if metric is not None else self.metric
        if name is None:
            raise UserError(f"{source}: TAO publishes no monitoring metric for network "
                            f"'{self.network_arch}'; pass --metric KPI (a key the trainer writes "
                            f"under kpi in status.json) and --direction max|min")
        if self.facts is not None and self.facts.complete and name not in self.facts.known_kpis:
            raise UserError(f"--metric {name!r}: {self.network_arch} does not write this KPI; "
                            f"it writes {', '.join(self.facts.known_kpis)}")
        return name, direction or default_direction(name)

    # -- data and paths -------------------------------------------------------------------------

    def keys(self, action: str) -> ActionKeys:
        return self.actions.get(action) or ActionKeys({}, {})

    @property
    def resume_key(self) -> str:
        found = self.keys("train").keys_with(RESUME_ROLE)
        return found[0] if found else "train.resume_training_checkpoint_path"

    def data_inputs(self, action: str = "train") -> dict[str, Input]:
        """The action's declared inputs that are data (not checkpoints the engine manages)."""
        keys = self.keys(action)
        managed = {*keys.keys_with(RESUME_ROLE), *keys.keys_with(PARENT_ROLE)}
        return {k: i for k, i in keys.inputs.items() if k not in managed}

    @property
    def root_key(self) -> str | None:
        """The key ``--root-dir`` sets: the train action's one required folder input (SegFormer's
        ``dataset.segment.root_dir``), None where a network reads several (use ``--data``)."""
        required = [i for i in self.data_inputs().values()
                    if not i.optional and i.kind == "folder"]
        others = [i for i in self.data_inputs().values() if not i.optional and i.kind != "folder"]
        return required[0].key if len(required) == 1 and not others else None

    def path_keys(self, action: str = "train") -> dict[str, PathKind]:
        """Every spec key of ``action`` that names a path on the host: declared inputs, the
        resume/pretrained/parent checkpoints and outputs (what an allowed-roots check covers)."""
        keys = self.keys(action)
        out: dict[str, PathKind] = {k: i.kind for k, i in keys.inputs.items()}
        for key, role in keys.roles.items():
            if role in (RESUME_ROLE, PRETRAINED_ROLE, PARENT_ROLE) or key in keys.outputs:
                out.setdefault(key, "file")
        return out

    def resolve_data(self, data: Mapping[str, Any], root_dir: Path | None,
                     action: str = "train") -> dict[str, Path]:
        """``--data KEY=PATH`` (and ``--root-dir``) checked: declared keys, existing paths of the
        declared kind. Returns key → resolved path. Raises a one-line UserError."""
        inputs = self.data_inputs(action)
        out: dict[str, Path] = {}
        if root_dir is not None:
            if self.root_key is None:
                listed = ", ".join(inputs) or "none"
                raise UserError(f"--root-dir: {self.network_arch} reads several inputs, not one "
                                f"dataset root; pass each with --data KEY=PATH (inputs: {listed})")
            if self.root_key in data:
                raise UserError(f"--root-dir and --data {self.root_key}: the same input twice; "
                                f"pass one of them")
            out[self.root_key] = inputs[self.root_key].check(root_dir, "--root-dir",
                                                             self.extras.root_layout)
        for key, value in data.items():
            if key not in inputs:
                managed = key in self.keys(action).inputs
                why = ("is managed by automl (the resume checkpoint follows the trial)" if managed
                       else f"is not an input of {self.network_arch}'s {action} action"
                       f"{did_you_mean(key, list(inputs))}")
                raise UserError(f"--data {key}: {why}; inputs: {', '.join(inputs) or 'none'}")
            out[key] = inputs[key].check(Path(str(value)), "--data")
        return out

    def missing_data(self, given: Mapping[str, Any], builder: SpecBuilder) -> list[str]:
        """Required data inputs neither given nor set in the template/overrides."""
        from automl.skill.spec import get_dotted

        missing = []
        for key, spec_input in self.data_inputs().items():
            if spec_input.optional or key in given:
                continue
            value = builder.overrides.get(key, get_dotted(builder.template, key, None))
            if value in UNSET_VALUES or value == []:
                missing.append(key)
        return missing

    def model_key(self, action: str) -> str:
        """The spec key that holds the model ``action`` loads (``spec_params`` parent_model)."""
        found = self.keys(action).keys_with(PARENT_ROLE)
        return found[0] if found else f"{action}.checkpoint"


def action_keys(info: Mapping[str, Any], action: str) -> ActionKeys:
    """``action``'s declared inputs and ``spec_params`` roles, from ``skill_info.yaml``."""
    declared = ((info.get("actions") or {}).get(action) or {}).get("inputs") or {}
    inputs: dict[str, Input] = {}
    for key, spec in declared.items():
        spec = spec if isinstance(spec, Mapping) else {}
        kind: PathKind = "folder" if spec.get("type") == "folder" else "file"
        inputs[str(key)] = Input(str(key), kind, bool(spec.get("optional", False)))
    params = (info.get("spec_params") or {}).get(action) or DEFAULT_ROLES.get(action, {})
    # Values can be a fixed value or a download link mapping (depth_net): only strings are roles.
    roles = {str(k): v for k, v in params.items() if isinstance(v, str)}
    return ActionKeys(inputs, roles)
