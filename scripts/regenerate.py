#!/usr/bin/env python3
"""Rewrite every generated artefact from its source, in one command.

- ``schemas/*.json`` and ``schemas/segformer/`` from the models (``python -m automl.json_schemas``);
- ``schemas/openapi.json`` from the API (``automl serve --openapi``);
- the README's algorithm table from the registry (``automl.algorithms.markdown_table``).

Run it after adding an algorithm, a launcher, a setting or a route: the change is then the new
module and its registry line (or route), plus what this rewrites. The tests check that each
artefact is current (tests/test_json_schemas.py, test_service_live.py, test_registries.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE_HEADER = "| name | search | scheduler | budget |"


def readme_with_table(text: str, table: str) -> str:
    """``text`` with its algorithm table (the header line and the rows after it) replaced."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(TABLE_HEADER))
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + table + "\n" + "".join(lines[end:])


def main() -> int:
    from automl import json_schemas
    from automl.algorithms import markdown_table
    from automl.service.server import openapi_document

    for path in json_schemas.write(ROOT / "schemas"):
        print(path.relative_to(ROOT))
    openapi = ROOT / "schemas" / "openapi.json"
    openapi.write_text(json.dumps(openapi_document(), indent=1, sort_keys=True) + "\n",
                       encoding="utf-8")
    print(openapi.relative_to(ROOT))
    readme = ROOT / "README.md"
    readme.write_text(readme_with_table(readme.read_text(encoding="utf-8"), markdown_table()),
                      encoding="utf-8")
    print("README.md (algorithm table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
