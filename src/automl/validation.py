"""The JSON Schemas the project owns (top-level ``schemas/``): where they are, and validation of
the files they describe, at run time.

Generating them is another job with another entry point (:mod:`automl.json_schemas`, which
imports the models that read and write the documents): the readers here import nothing of
theirs, so a model can validate its own files without an import circle.

A source checkout reads ``<checkout>/schemas``; a wheel installs the same files as data files
(``pyproject.toml``: ``[tool.setuptools.data-files]``) under ``<prefix>/share/automl-tao/schemas``,
found through the installed distribution's file list (works for venv, ``--user`` and system
installs alike).
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import jsonschema

from automl.errors import UserError

DISTRIBUTION = "automl-tao"
STUDY = "study.schema.json"
OVERRIDES = "overrides.schema.json"
HISTORY = "history.schema.json"
EXPERIMENT = "experiment.schema.json"
BEST_REC = "best_rec.schema.json"


@functools.cache
def schemas_dir() -> Path:
    """The folder holding the schemas: the checkout's ``schemas/``, else the installed copy."""
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "schemas" / STUDY).is_file():
        return checkout / "schemas"
    try:
        files = importlib.metadata.distribution(DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == STUDY and "schemas" in file.parts:
            return Path(str(file.locate())).resolve().parent
    raise RuntimeError(f"{STUDY} not found beside {checkout} nor in the installed {DISTRIBUTION}; "
                       f"reinstall the package (pip install .)")


@functools.cache
def load(name: str) -> dict[str, Any]:
    """A schema by file name (``study.schema.json``), relative to :func:`schemas_dir`."""
    return json.loads((schemas_dir() / name).read_text(encoding="utf-8"))


def problem(doc: Any, name: str) -> str | None:
    """Why ``doc`` does not match schema ``name`` (one line naming the key), or None."""
    validator = jsonschema.Draft202012Validator(load(name))
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    return f"'{where}': {error.message} (schemas/{name})"


def validate(doc: Any, name: str, source: str, fix: str) -> None:
    """Refuse a user's file that does not match schema ``name``: one line naming the file, the
    key, the problem and ``fix``."""
    found = problem(doc, name)
    if found:
        raise UserError(f"{source}: {found}; {fix}")
