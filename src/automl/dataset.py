"""Dataset checks before launch, and the generated dataset of the embedded default.

A wrong ``root_dir`` or a mask with more classes than ``num_classes`` would fail every trial
minutes later; checking the layout (``images/<split>``, ``masks/<split>``) and a sample of masks
up front turns that into one clear line. Only skills with a ``dataset.segment`` section (the
SegFormer/UNet data format) are checked this way; other skills' data is the trainer's business.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl.errors import UserError
from automl.spec import SpecBuilder, get_dotted

MASKS_SAMPLED = 16


def _split(builder: SpecBuilder, template: dict[str, Any], key: str, default: str) -> str:
    value = builder.overrides.get(f"dataset.segment.{key}",
                                  get_dotted(template, f"dataset.segment.{key}", default))
    return str(value)


def check(root: Path, builder: SpecBuilder, template: dict[str, Any], num_classes: Any) -> None:
    if not root.is_dir():
        raise UserError(f"--root-dir {root}: dataset folder not found; pass the folder that holds "
                        f"images/<split> and masks/<split>")
    if get_dotted(template, "dataset.segment", None) is None:
        return
    for key, default in (("train_split", "train"), ("validation_split", "val")):
        split = _split(builder, template, key, default)
        for kind in ("images", "masks"):
            folder = root / kind / split
            if not folder.is_dir() or not any(folder.iterdir()):
                raise UserError(f"--root-dir {root}: split '{split}' (dataset.segment.{key}) has no "
                                f"{kind}/{split}/ folder with files; create it or set "
                                f"dataset.segment.{key}")
    if isinstance(num_classes, int) and not isinstance(num_classes, bool):
        _check_mask_classes(root / "masks" / _split(builder, template, "train_split", "train"),
                            num_classes)


def _check_mask_classes(folder: Path, num_classes: int) -> None:
    from PIL import Image

    for path in sorted(folder.glob("*.png"))[:MASKS_SAMPLED]:
        try:
            with Image.open(path) as image:
                top = int(np.asarray(image).max())
        except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
            raise UserError(f"{path}: not a readable PNG mask ({type(exc).__name__}); replace or "
                            f"remove the file") from None
        if top >= num_classes:
            raise UserError(f"{path}: mask has class id {top} but dataset.segment.num_classes="
                            f"{num_classes}; set --set dataset.segment.num_classes={top + 1}")


def synthesize_default(cache: Path, num_classes: Any) -> Path:
    """Generate (once) the synthetic dataset the embedded default trains on."""
    from segformer_trainer.synth import DEFAULTS, generate

    classes = int(num_classes) if isinstance(num_classes, int) else DEFAULTS["num_classes"]
    params = {**DEFAULTS, "num_classes": classes}
    name = "synth-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    target = cache / name
    if not (target / ".complete").exists():
        # Generate beside the target and rename: two experiments starting at once never see
        # (or write) a half-written dataset.
        import shutil
        import tempfile

        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache))
        generate(tmp, **params)
        (tmp / ".complete").write_text("ok")
        try:
            tmp.rename(target)
        except OSError:  # another process won the race: use its copy
            shutil.rmtree(tmp, ignore_errors=True)
    return target.resolve()
