"""``automl-segformer``: the bundled trainer's command line, compatible with TAO's SegFormer container.

The console script is ``automl-segformer`` (so that TAO's own ``segformer`` entry point in a TAO
container is never shadowed); ``python -m segformer_trainer.cli`` is the same program. Its
arguments are TAO's ``segformer <action> -e spec.yaml`` arguments (the skill folder's
``skill_info.yaml`` keeps TAO's ``segformer <action> -e {config_path}`` commands; the AutoML
engine runs this module for the bundled skill)::

    automl-segformer train     -e spec.yaml [key=value ...]
    automl-segformer evaluate  -e spec.yaml [key=value ...]
    automl-segformer inference -e spec.yaml [key=value ...]
    automl-segformer export    -e spec.yaml [key=value ...]
    automl-segformer dataset synth --out DIR [--num-train N --num-val N --num-test N --num-classes K
                                              --img-size S --seed N]
    automl-segformer skill --out DIR

Overrides are dotted keys whose values are parsed as YAML scalars (``train.optim.lr=1e-3``).
Exit codes: 0 success; 1 a failed run (data error, divergence, out of memory, crash: a FAILURE
line goes to status.json); 2 a bad spec or command line (one line on stderr, no traceback).
torch and transformers are imported only by the actions that need them (``--help``,
``dataset synth`` and ``skill`` stay fast).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path

from .errors import OutOfMemoryError, SpecError, TrainerError

RUN_ACTIONS = ("train", "evaluate", "inference", "export")


def _status_for(cfg, action: str):
    from .config import action_results_dir
    from .status import StatusLogger

    return StatusLogger(action_results_dir(cfg, action))


def _fallback_status(spec: str, overrides: list[str], action: str):
    """Best effort: a status logger for a spec that failed validation (so the FAILURE is on disk)."""
    try:
        from .config import parse_override, read_spec, set_dotted
        from .status import StatusLogger

        data = read_spec(spec)
        for item in overrides:
            try:
                key, value = parse_override(item)
                set_dotted(data, key, value)
            except TrainerError:
                continue
        section = data.get(action) if isinstance(data.get(action), dict) else {}
        own = section.get("results_dir") if section else None
        if isinstance(own, str) and own and own != "???":
            return StatusLogger(own)
        root = data.get("results_dir")
        if isinstance(root, str) and root and root != "???":
            return StatusLogger(Path(root) / action)
    except Exception:  # noqa: BLE001 - nothing to report to
        return None
    return None


def _is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def run_action(action: str, spec: str, overrides: list[str]) -> int:
    status = None
    try:
        from .config import load_config

        cfg = load_config(spec, overrides)
        if action == "export":
            try:
                status = _status_for(cfg, action)
            except SpecError:
                status = None  # export needs no results_dir: onnx_file says where to write
        else:
            status = _status_for(cfg, action)
        if action == "train":
            from .train import run_train

            run_train(cfg, status)
        elif action == "evaluate":
            from .actions import run_evaluate

            run_evaluate(cfg, status)
        elif action == "inference":
            from .actions import run_inference

            run_inference(cfg, status)
        else:
            from .actions import run_export

            run_export(cfg, status)
        return 0
    except TrainerError as exc:
        _fail(status or _fallback_status(spec, overrides, action), exc.line)
        return exc.exit_code
    except KeyboardInterrupt:
        from .status import interrupted_message

        _fail(status, interrupted_message(action))
        return 130
    except Exception as exc:  # noqa: BLE001 - report every crash as a FAILURE line
        if _is_oom(exc):
            line = OutOfMemoryError(str(exc).splitlines()[0] if str(exc) else "").line
            _fail(status, line)
            return OutOfMemoryError.exit_code
        first = str(exc).splitlines()[0] if str(exc) else ""
        traceback.print_exc()
        _fail(status, f"{type(exc).__name__}: {first}".strip())
        return 1


def _fail(status, line: str) -> None:
    if status is not None:
        try:
            status.write("FAILURE", line)
        except OSError:
            pass
    print(line, file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="automl-segformer",
        description="Bundled SegFormer trainer with TAO's CLI/spec/status.json contract.",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    for action in RUN_ACTIONS:
        a = sub.add_parser(action, help=f"{action} (spec: TAO SegFormer YAML)")
        a.add_argument("-e", "--experiment_spec_file", "--experiment-spec", dest="spec", required=True,
                       help="spec YAML")
        a.add_argument("overrides", nargs="*", metavar="key=value", help="dotted-key overrides (YAML scalars)")
    for action in ("quantize", "gen_trt_engine"):
        a = sub.add_parser(action, help=f"{action} (not supported by this trainer)")
        a.add_argument("-e", "--experiment_spec_file", dest="spec")
        a.add_argument("overrides", nargs="*")
    ds = sub.add_parser("dataset", help="dataset tools")
    ds_sub = ds.add_subparsers(dest="dataset_action", metavar="TOOL")
    synth = ds_sub.add_parser("synth", help="generate a synthetic segmentation dataset (TAO layout)")
    from .synth import DEFAULTS

    synth.add_argument("--out", required=True, help="output folder (dataset.segment.root_dir)")
    synth.add_argument("--num-train", type=int, default=DEFAULTS["num_train"])
    synth.add_argument("--num-val", type=int, default=DEFAULTS["num_val"])
    synth.add_argument("--num-test", type=int, default=DEFAULTS["num_test"])
    synth.add_argument("--num-classes", type=int, default=DEFAULTS["num_classes"])
    synth.add_argument("--img-size", type=int, default=DEFAULTS["img_size"])
    synth.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    sk = sub.add_parser("skill", help="write this trainer's skill folder (TAO layout)")
    sk.add_argument("--out", required=True, help="output folder")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.action is None:
        parser.print_help()
        return 2
    if args.action in RUN_ACTIONS:
        return run_action(args.action, args.spec, list(args.overrides))
    if args.action in ("quantize", "gen_trt_engine"):
        print(f"spec: '{args.action}' is not supported by the bundled trainer (use the TAO container)",
              file=sys.stderr)
        return 2
    if args.action == "dataset":
        if args.dataset_action != "synth":
            parser.parse_args(["dataset", "--help"])
            return 2
        from .synth import generate

        try:
            root = generate(args.out, num_train=args.num_train, num_val=args.num_val, num_test=args.num_test,
                            num_classes=args.num_classes, img_size=args.img_size, seed=args.seed)
        except ValueError as exc:
            print(f"dataset: {exc}", file=sys.stderr)
            return 2
        print(root)
        return 0
    if args.action == "skill":
        from .skill import write_skill

        print(write_skill(args.out))
        return 0
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
