"""Errors of the bundled trainer.

Each error knows its exit code and its failure class, which prefixes the one-line message that
goes to stderr and to the FAILURE line of status.json (``spec: ...``, ``data: ...``,
``diverged: ...``, ``out of memory: ...``), so a reader of status.json can classify a failure
without parsing a traceback. This module must not import torch (nor ``automl``: the trainer is
standalone).
"""

from __future__ import annotations


class TrainerError(Exception):
    """A failure with a clear one-line message; no traceback is printed for it."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

    @property
    def line(self) -> str:
        """The one-line message, prefixed with the failure class."""
        msg = str(self)
        prefix = f"{self.kind}:"
        return msg if msg.startswith(prefix) else f"{prefix} {msg}"


class SpecError(TrainerError):
    """A bad spec: unknown key, bad value, missing mandatory value (exit 2)."""

    exit_code = 2
    kind = "spec"


class DataError(TrainerError):
    """The dataset does not match the spec: missing split, class id out of range (exit 1)."""

    kind = "data"


class DivergedError(TrainerError):
    """The loss became NaN or infinite (exit 1)."""

    kind = "diverged"


class OutOfMemoryError(TrainerError):
    """The device ran out of memory (exit 1)."""

    kind = "out of memory"


class DependencyError(TrainerError):
    """An optional dependency is missing (exit 2)."""

    exit_code = 2
    kind = "dependency"

    @property
    def line(self) -> str:
        return str(self)
