"""``automl space``: the search space a skill's schema gives (and the user's overrides make of
it), with the network and its default metric."""

from __future__ import annotations

import argparse
import json
from collections import Counter


def main_space(args: argparse.Namespace) -> int:
    from automl.space.user_space import space_for_cli
    from automl.skill.folder import SkillDir, bundled_skill_dir

    skill = SkillDir.load(args.skill_dir or bundled_skill_dir())
    space = space_for_cli(skill, args.space_file, args.ranges or [], args.options or [],
                          args.pins or [])
    rows = space.rows()
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    from automl.networks import profile_for

    profile = profile_for(skill)
    objective = (f"metric {profile.metric} ({profile.objective(None, None, skill.name)[1]}, "
                 f"TAO's monitoring metric)" if profile.metric else
                 "no published metric: pass --metric")
    # One row per schema key: a list searched element by element (``train.optim.betas``) is one
    # parameter here, as the user's ``--range``/``--pin`` name it, not one per element.
    statuses = Counter(row["status"] for row in rows)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    table = Table(title=f"search space of {skill.name} ({len(rows)} parameters: {counts})\n"
                        f"network {profile.network_arch}: {objective}")
    columns = list(rows[0]) if rows else []
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    Console(width=max(160, Console().width)).print(table)
    return 0
