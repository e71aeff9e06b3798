"""One rule for the paths a request names: each must resolve inside the server's allowed roots.

The server reads and trains on what a user names, so a path outside ``--root`` and the
``--allow-root`` folders would let any token holder read (or train on, or hand off on) any file
the server's account can reach. Every route that takes settings (submit, study, hand-off) calls
:func:`check_request` once; it finds every path a request holds:

- the settings' own path fields (``skill_dir``, ``root_dir``, ``space_file``, ``mounts``);
- every spec key the skill declares as a path for the action (the network profile's
  ``path_keys``: its inputs, its resume / pretrained / parent checkpoints, its outputs), set
  through ``overrides``;
- any other override value that reads as a path (absolute, ``~``, or with a ``..`` part), so a
  key the skill does not declare cannot carry one past the check either.

Relative paths resolve against the server's root (the runs' working folder).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from automl.service.door import BadInput, leaves

SETTINGS_PATHS = ("skill_dir", "root_dir", "space_file", "mounts", "data")


def inside(path: Path, roots: Iterable[Path], base: Path | None = None) -> bool:
    """Whether ``path`` (relative ones from ``base``) resolves inside one of ``roots``."""
    path = Path(path).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def _reads_as_path(value: str) -> bool:
    return value.startswith(("/", "~", "\\")) or ".." in PurePosixPath(value).parts


class PathRule:
    """The allowed roots of one server, and the skill folders it serves (allowed as skills)."""

    def __init__(self, roots: list[Path], skills: Iterable[Path], base: Path) -> None:
        self.roots = [Path(r).resolve() for r in roots]
        self.skills = {Path(s).resolve() for s in skills}
        self.base = base

    def check(self, loc: str, value: Any) -> None:
        if not isinstance(value, (str, Path)):
            raise BadInput(loc, f"expected a path (a string), got {type(value).__name__}")
        try:
            ok = inside(Path(value), self.roots, self.base) or \
                Path(value).expanduser().resolve() in self.skills
        except (OSError, RuntimeError, ValueError) as exc:  # a loop, a NUL byte, ...
            raise BadInput(loc, f"{value}: not a usable path ({exc})") from None
        if not ok:
            raise BadInput(loc, f"{value}: outside the server's allowed roots (--root and "
                           f"--allow-root of automl serve)")

    def check_fields(self, fields: Mapping[str, Any]) -> None:
        """The settings' own path fields (before anything reads them: a skill folder is loaded
        only once it is known to be inside the roots)."""
        for key in SETTINGS_PATHS:
            value = fields.get(key)
            items = value.items() if isinstance(value, dict) else enumerate(value) \
                if isinstance(value, list) else [(None, value)]
            for sub, item in items:
                if item is not None:
                    self.check(key if sub is None else f"{key}.{sub}", item)

    def check_overrides(self, overrides: Mapping[str, Any], declared: Mapping[str, str],
                        loc: str = "overrides") -> None:
        """Spec overrides (full dotted keys): a key ``declared`` as a path, and any value that
        reads as one, must lie inside the roots."""
        for key, value in overrides.items():
            where = f"{loc}.{key}"
            if key in declared and value not in (None, ""):
                self.check(where, value)
                continue
            for path, item in leaves(value, (where,)):
                if isinstance(item, str) and _reads_as_path(item):
                    self.check(".".join(path), item)
