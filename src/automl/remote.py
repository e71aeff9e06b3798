"""``automl run|status|list|best|handoff --server URL``: the same commands, against a server.

The study file and flags are sent as the create body (paths made absolute: the server resolves
them, and only inside its allowed roots); ``WORKSPACE`` arguments are experiment ids. Output
follows the local commands' (the best trial is printed by the same function).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import httpx

from automl.client import ApiError, Client
from automl.errors import UserError


def _body(args: argparse.Namespace) -> dict[str, Any]:
    from automl.study import run_flag_fields
    from automl.skill.spec import parse_assignments
    from automl.study import load_study

    body = load_study(args.study) if args.study else {}
    for name in run_flag_fields():
        value = getattr(args, name)
        if value is not None and name not in ("workspace", "workspace_root", "tracking_uri",
                                              "progress", "address", "overrides"):
            body[name] = value
    if args.overrides:
        body["overrides"] = {**body.get("overrides", {}), **parse_assignments(args.overrides)}
    for key, value in list(body.items()):
        if isinstance(value, Path):
            body[key] = str(value.resolve())
        elif isinstance(value, list):
            body[key] = [str(v.resolve()) if isinstance(v, Path) else v for v in value]
    return body


def _trial_line(trial: dict[str, Any], metric: str) -> str:
    last = trial["results"][-1] if trial["results"] else {}
    value = last.get(metric)
    shown = f"{value:.4f}" if isinstance(value, float) else "-"
    return (f"trial {trial['rec_id']} {trial['status']} epoch {last.get('epoch', 0)}/"
            f"{trial['budget']} {metric}={shown}")


def _run(client: Client, args: argparse.Namespace) -> int:
    from automl.commands.best import print_best

    experiment = client.submit(_body(args))
    print(f"experiment: {experiment['id']} ({experiment['state']}) on {client.url}")
    print(f"workspace: {experiment['workspace']}")
    metric = experiment["metric"]

    def show(trials: list[dict[str, Any]]) -> None:
        for trial in trials:
            print(_trial_line(trial, metric), flush=True)

    try:
        experiment = client.wait(experiment["id"], on_trials=show)
    except KeyboardInterrupt:
        client.pause(experiment["id"])
        print(f"paused: continue with `curl -X POST …/experiments/{experiment['id']}:resume`")
        return 130
    print(f"state: {experiment['state']}" + (f" ({experiment['error']})" if experiment["error"] else ""))
    if experiment["state"] != "SUCCEEDED":
        return 1
    return print_best(client.best(experiment["id"]), Path(experiment["workspace"]))


def _status(client: Client, experiment_id: str) -> int:
    e = client.get(experiment_id)
    p = e["progress"]
    print(f"experiment {e['id']} ({e['algorithm']}): {e['state']}"
          + (f" ({e['error']})" if e["error"] else ""))
    print(f"progress: {p.get('trials_done', 0)}/{p.get('trials_total', 0)} trials finished, "
          f"{p.get('trials_running', 0)} running, {p.get('trials_failed', 0)} failed "
          f"| epochs {p.get('epochs_spent', 0)}")
    if p.get("best"):
        best = p["best"]
        print(f"best so far: {best['rec_id']} {e['metric']}={best['score']:.4f} "
              f"at {best['observed_budget']} epochs")
    for trial in client.trials(experiment_id)["trials"]:
        if trial["status"] in ("running", "paused"):
            print("  " + _trial_line(trial, e["metric"]))
    return 0


def _list(client: Client) -> int:
    rows = [("id", "name", "owner", "algo", "state", "best", "trials")]
    for e in client.list():
        best = (e["progress"] or {}).get("best")
        rows.append((e["id"], e["name"], e["owner"], e["algorithm"], e["state"],
                     f"{e['metric']}={best['score']:.4f}" if best else "-",
                     f"{(e['progress'] or {}).get('trials_done', 0)}"))
    if len(rows) == 1:
        print("no experiments")
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    return 0


def _best(client: Client, args: argparse.Namespace) -> int:
    from automl.commands.best import print_best

    doc = client.best(str(args.workspace))
    if args.json:
        print(json.dumps(doc, indent=1))
        return 0
    if not doc.get("best"):
        raise UserError(f"experiment {args.workspace}: no trial produced a finite "
                        f"{doc['metric_name']}")
    return print_best(doc, Path(client.get(str(args.workspace))["workspace"]))


def _handoff(client: Client, args: argparse.Namespace) -> int:
    from automl.skill.spec import parse_assignments

    options: dict[str, Any] = {"checkpoint": args.checkpoint}
    if args.root_dir:
        options["root_dir"] = str(args.root_dir.resolve())
    if args.set_:
        options["overrides"] = parse_assignments(args.set_)
    result = client.handoff(str(args.workspace), args.action, run=args.run, **options)
    print(f"{result['action']} spec: {result['spec_path']}")
    print(f"checkpoint: {result['checkpoint']} (trial {result['rec_id']})")
    print("command: " + " ".join(result["command"]))
    if result["ran"]:
        for key, value in result["kpis"].items():
            print(f"  {key} = {value}")
        print(f"{result['action']}: {result['status'] or 'exit ' + str(result['exit_code'])}")
    return 0 if result["ok"] else 1


def main_remote(args: argparse.Namespace) -> int:
    url = args.server or os.environ["AUTOML_SERVER"]
    token = os.environ.get("AUTOML_TOKEN")
    if not token:
        raise UserError("--server: set AUTOML_TOKEN to your token (`automl token create NAME` "
                        "on the server)")
    try:
        with Client(url, token) as client:
            if args.command == "run":
                return _run(client, args)
            if args.command == "status":
                return _status(client, str(args.workspace))
            if args.command == "list":
                return _list(client)
            if args.command == "best":
                return _best(client, args)
            return _handoff(client, args)
    except ApiError as exc:
        raise UserError(f"{url}: {exc}") from None
    except httpx.HTTPError as exc:
        raise UserError(f"{url}: cannot reach the server ({type(exc).__name__}: {exc})") from None
