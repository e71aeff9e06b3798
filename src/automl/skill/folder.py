"""A TAO skill folder: ``references/skill_info.yaml``, ``schemas/<action>.schema.json``, templates.

Everything the engine needs to know about a model comes from this folder, so every way it can be
broken (missing file, bad YAML/JSON, no train action, AutoML switched off) is caught here, once,
as a one-line UserError before anything is launched.
"""

from __future__ import annotations

import importlib.util
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from automl.errors import UserError
from automl.skill.schema import load_schema, read_yaml

INFO_FILE = Path("references") / "skill_info.yaml"

# shlex (punctuation_chars) emits unquoted shell operators - pipes, here-documents, redirections,
# command lists - as tokens made only of these characters; ``$`` and backticks mean expansions.
# A command containing any of them is a shell program, not an argv, and is refused: we never hand
# a shell a string that contains a user path.
_SHELL_OPERATOR_CHARS = set("();<>|&")
_SHELL_EXPANSION_CHARS = ("$", "`")


class _ActionInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    command: str | None = None  # checked when the action is launched, not when the skill loads


class _SkillInfo(BaseModel):
    """The parts of skill_info.yaml the engine relies on; the rest is kept but not checked."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    network_arch: str | None = None
    automl_enabled: bool = True
    container_image: str | None = None
    actions: dict[str, _ActionInfo]
    spec_templates: dict[str, str] = {}
    spec_shorthand_keys: dict[str, str] = {}


@dataclass(frozen=True)
class SkillDir:
    """A loaded skill folder; ``info`` and ``schema`` are the parsed files, unmodified."""

    path: Path
    info: dict
    schema: dict

    @classmethod
    def load(cls, path: str | Path, action: str = "train") -> SkillDir:
        """Load and check a skill folder for running ``action`` under AutoML."""
        root = Path(path).expanduser()
        if not root.is_dir():
            raise UserError(f"{root}: skill directory not found (expected a folder with {INFO_FILE})")
        info_path = root / INFO_FILE
        if not info_path.is_file():
            raise UserError(f"{info_path}: not found; is {root} a TAO skill folder?")
        info = read_yaml(info_path)
        if not isinstance(info, dict):
            raise UserError(f"{info_path}: expected a mapping at the top level")
        try:
            checked = _SkillInfo.model_validate(info)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(part) for part in err["loc"])
            if err["type"] == "missing" and where == "actions":
                raise UserError(f"{info_path}: no 'actions' section; add actions.train.command "
                                f"(e.g. 'segformer train -e {{config_path}}')") from None
            raise UserError(f"{info_path}: {where}: {err['msg']}") from None
        name = checked.name or root.name
        if action not in checked.actions:
            raise UserError(
                f"{name}: no '{action}' action in {INFO_FILE} (actions: "
                f"{', '.join(checked.actions) or 'none'}); add actions.{action}.command"
            )
        if not checked.automl_enabled:
            raise UserError(f"{name}: AutoML is not enabled for this model (automl_enabled: false "
                            f"in {INFO_FILE}); train it with its own command, outside automl")
        schema_path = root / "schemas" / f"{action}.schema.json"
        if not schema_path.is_file():
            raise UserError(_not_runnable(name, schema_path, root))
        skill = cls(path=root, info=info, schema=load_schema(schema_path))
        template = skill.template_path(action)
        if not template.is_file():
            raise UserError(_not_runnable(name, template, root))
        return skill

    @property
    def name(self) -> str:
        """The skill's name, e.g. ``tao-train-segformer`` (the folder name when skill_info has none)."""
        return self.info.get("name") or self.path.name

    @property
    def network_arch(self) -> str:
        """TAO's network name, e.g. ``segformer``: skill_info, else the schema's ``x_tao_schema``."""
        tao = self.schema.get("x_tao_schema") or {}
        return self.info.get("network_arch") or tao.get("network_arch") or self.name

    @property
    def container_image(self) -> str | None:
        """The container image that runs the actions, if the skill names one."""
        return self.info.get("container_image")

    def actions(self) -> list[str]:
        """Action names in skill_info order (train, evaluate, export, ...)."""
        return list(self.info.get("actions", {}))

    def shorthand(self) -> dict[str, str]:
        """``spec_shorthand_keys``: short names (``learning_rate``) for dotted spec keys."""
        return dict(self.info.get("spec_shorthand_keys") or {})

    def template(self, action: str = "train") -> dict:
        """The default spec of ``action`` (``spec_template_<action>.yaml``).

        skill_info's ``spec_templates`` paths are relative to ``schemas/`` in TAO's layout
        (``../references/...``) but some skills write them relative to the folder itself
        (``references/...``); both are tried. Without an entry the conventional
        ``references/spec_template_<action>.yaml`` is used.
        """
        found = self.template_path(action)
        if not found.is_file():
            raise UserError(
                f"{self.name}: no spec template for action '{action}' (looked for "
                f"{found.resolve()}); actions: {', '.join(self.actions())}"
            )
        spec = read_yaml(found)
        if spec is None:
            return {}
        if not isinstance(spec, dict):
            raise UserError(f"{found}: expected a mapping at the top level")
        return spec

    def template_path(self, action: str = "train") -> Path:
        """Where ``action``'s spec template is (the first candidate that exists, else the
        first candidate, for messages): see :meth:`template` for the two path conventions."""
        declared = (self.info.get("spec_templates") or {}).get(action)
        if declared:
            candidates = [self.path / "schemas" / declared, self.path / declared]
        else:
            candidates = [self.path / "references" / f"spec_template_{action}.yaml"]
        return next((p for p in candidates if p.is_file()), candidates[0])

    def command(self, action: str, config_path: str, local: bool = True) -> list[str]:
        """The argv that runs ``action`` on the spec at ``config_path``.

        ``actions.<action>.command`` ("segformer train -e {config_path}") is split with shlex and
        ``{config_path}`` is substituted inside single argv elements, so a path with spaces or
        quotes stays one argument and nothing is ever interpreted by a shell. Commands that only
        a shell could run (multi-line scripts, pipes, here-documents) are refused.
        """
        actions = self.info.get("actions") or {}
        if action not in actions:
            raise UserError(f"{self.name}: no '{action}' action (actions: {', '.join(actions) or 'none'})")
        line = str(actions[action].get("command") or "").strip()
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError as exc:
            raise UserError(f"{self.name}: actions.{action}.command cannot be parsed: {exc}") from None
        if not tokens:
            raise UserError(f"{self.name}: actions.{action}.command is missing or empty")
        shell = "\n" in line or any(ch in line for ch in _SHELL_EXPANSION_CHARS)
        shell = shell or any(tok and set(tok) <= _SHELL_OPERATOR_CHARS for tok in tokens)
        if shell:
            raise UserError(
                f"{self.name}: actions.{action}.command is a shell script, not a command line; "
                "only 'program args... {config_path}' commands can be launched"
            )
        if local and tokens[0] == BUNDLED_PROGRAM and self.is_bundled:
            # The bundled skill always means the trainer shipped with *this* installation: a
            # `segformer` found on PATH may belong to another interpreter (a pyenv shim, an
            # older install, TAO's own launcher). In a container the image's own command runs.
            tokens = [sys.executable, "-m", "segformer_trainer.cli", *tokens[1:]]
        return [tok.replace("{config_path}", str(config_path)) for tok in tokens]

    @property
    def is_bundled(self) -> bool:
        """Whether this is the bundled SegFormer trainer's own skill folder."""
        try:
            return self.path.resolve() == bundled_skill_dir().resolve()
        except UserError:
            return False


def _not_runnable(name: str, missing: Path, root: Path) -> str:
    """The skill bank's wording for a model whose AutoML metadata is on but whose generated
    train schema/template was not packaged: it names the file, since regenerating it is the fix."""
    try:
        shown = missing.resolve().relative_to(root.resolve())
    except ValueError:
        shown = missing
    return (f"{name}: AutoML is enabled but not runnable for this model: {shown} is missing "
            f"(the train schema and spec template must be generated and packaged in {root})")


BUNDLED_PROGRAM = "segformer"


def bundled_skill_dir() -> Path:
    """The bundled trainer's skill folder (package data of ``segformer_trainer``)."""
    spec = importlib.util.find_spec("segformer_trainer")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the bundled SegFormer trainer is not installed: pip install -e '.[trainer]'"
                        " or pass --skill-dir")
    return Path(next(iter(spec.submodule_search_locations))) / "skill"
