"""``python3 -m checkpoint_hparams CHECKPOINT --lr NAME OLD NEW ... --report FILE``.

Rewrites CHECKPOINT in place (see the package docstring), writes a JSON report to FILE and prints
it as one line. Exit 0: rewritten, or nothing to rewrite (the report's ``note`` says why); 2: bad
arguments or no such file; 3: the file is not a torch checkpoint (left unchanged).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from checkpoint_hparams import Change, apply, load, save


def _changes(items: list[list[str]] | None, parser: argparse.ArgumentParser, flag: str) -> list[Change]:
    out = []
    for name, old, new in items or []:
        try:
            out.append(Change(name, float(old), float(new)))
        except ValueError:
            parser.error(f"{flag} {name}: OLD and NEW must be numbers, got {old!r} {new!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m checkpoint_hparams",
                                     description="Write perturbed learning rates and weight decay "
                                                 "into a torch checkpoint's optimizer state.")
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--lr", nargs=3, action="append", metavar=("NAME", "OLD", "NEW"),
                        help="a learning-rate parameter (the primary one first)")
    parser.add_argument("--weight-decay", nargs=3, action="append", metavar=("NAME", "OLD", "NEW"))
    parser.add_argument("--report", type=Path, required=True, help="where to write the JSON report")
    args = parser.parse_args(argv)
    lr = _changes(args.lr, parser, "--lr")
    weight_decay = _changes(args.weight_decay, parser, "--weight-decay")
    if not args.checkpoint.is_file():
        print(f"checkpoint_hparams: {args.checkpoint} is not a file", file=sys.stderr)
        return 2
    try:
        ckpt = load(args.checkpoint)
    except Exception as exc:  # noqa: BLE001 - any unreadable file: say so, change nothing
        print(f"checkpoint_hparams: {args.checkpoint} is not a torch checkpoint "
              f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})",
              file=sys.stderr)
        return 3
    if not isinstance(ckpt, dict):
        print(f"checkpoint_hparams: {args.checkpoint} holds no dict of states", file=sys.stderr)
        return 3
    summary = apply(ckpt, lr, weight_decay)
    if summary.optimizer_groups:
        save(ckpt, args.checkpoint)
    report = {"checkpoint": str(args.checkpoint), **summary.as_dict()}
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report))
    print(f"checkpoint_hparams: {json.dumps(report)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
