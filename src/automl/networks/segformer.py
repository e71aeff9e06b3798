"""SegFormer's profile extras: the dataset check before launch, the generated dataset of the
embedded default, and the hand-off rules that follow the trained model (export input size,
quantize calibration images).

A wrong ``root_dir`` or a mask with more classes than ``num_classes`` would fail every trial
minutes later; checking the layout (``images/<split>``, ``masks/<split>``) and a sample of masks
up front turns that into one clear line. Only skills with a ``dataset.segment`` section (the
SegFormer/UNet data format) are checked this way; other skills' data is the trainer's business.

Masks are read as TAO's SegFormer dataset reads them (``nvidia_tao_pytorch/cv/segformer/
dataloader/segformer_dataset.py``, ``SFDataset.__getitem__``): with ``dataset.segment.
label_transform: norm`` (TAO's template) a pixel becomes ``value // 255``, so binary masks stored
as 0/255 hold classes 0 and 1; with ``None`` (or anything else) pixel values are class ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl.errors import UserError
from automl.networks.profile import Input, NetworkExtras, NetworkProfile
from automl.skill.spec import SpecBuilder, get_dotted, set_dotted

if TYPE_CHECKING:  # numpy/PIL are imported where masks are read: a wrong path is refused first
    import numpy as np

MASKS_SAMPLED = 16
ROOT_KEY = "dataset.segment.root_dir"
NUM_CLASSES_KEY = "dataset.segment.num_classes"
IMG_SIZE_KEY = "dataset.segment.img_size"
CALIBRATION_KEY = "dataset.segment.quant_calibration_dataset.images_dir"
TRAIN_SPLIT_KEY = "dataset.segment.train_split"


def _split(builder: SpecBuilder, template: dict[str, Any], key: str, default: str) -> str:
    value = builder.overrides.get(f"dataset.segment.{key}",
                                  get_dotted(template, f"dataset.segment.{key}", default))
    return str(value)


def check_dataset(profile: NetworkProfile, data: Mapping[str, Path], builder: SpecBuilder) -> None:
    """The layout (``images/<split>``, ``masks/<split>``) and a sample of masks, before launch."""
    root = data.get(ROOT_KEY)
    if root is None:
        return
    template = builder.template
    check(root, builder, template, num_classes(builder))


def num_classes(builder: SpecBuilder) -> Any:
    """``num_classes`` as the trials will see it (an override wins over the template)."""
    return builder.overrides.get(NUM_CLASSES_KEY, get_dotted(builder.template, NUM_CLASSES_KEY, None))


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
        norm = _split(builder, template, "label_transform", "None") == "norm"
        _check_mask_classes(root / "masks" / _split(builder, template, "train_split", "train"),
                            num_classes, norm)


def _check_mask_classes(folder: Path, num_classes: int, norm: bool) -> None:
    """Class ids of a sample of masks against ``num_classes``, as the trainer will read them."""
    import numpy as np
    from PIL import Image

    for path in sorted(folder.glob("*.png"))[:MASKS_SAMPLED]:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image)
        except (OSError, ValueError) as exc:  # PIL's UnidentifiedImageError is an OSError
            raise UserError(f"{path}: not a readable PNG mask ({type(exc).__name__}); replace or "
                            f"remove the file") from None
        top = int(_class_ids(path, pixels, norm).max(initial=0))
        if top >= num_classes:
            raise UserError(f"{path}: mask has class id {top} but dataset.segment.num_classes="
                            f"{num_classes}; set --set dataset.segment.num_classes={top + 1}")


def _class_ids(path: Path, pixels: np.ndarray, norm: bool) -> np.ndarray:
    """The class ids TAO reads from a mask's pixels.

    Under ``norm`` TAO maps a pixel to ``value // 255``: 255 is class 1 and every other value
    silently becomes class 0. Values other than 0 and 255 therefore mean class-id masks read
    with TAO's default ``norm``, which would train on a blank mask: refused, with the fix.
    """
    if not norm:
        return pixels
    stray = pixels[(pixels != 0) & (pixels != 255)]
    if stray.size:
        raise UserError(f"{path}: mask has value {int(stray[0])} but dataset.segment."
                        f"label_transform is norm (TAO reads value // 255, so only 0/255 binary "
                        f"masks keep their classes); for class-id masks set --set "
                        f"dataset.segment.label_transform=None")
    return pixels // 255


def default_data(cache: Path, builder: SpecBuilder) -> dict[str, Path]:
    """The embedded default's data: the generated dataset as the root key."""
    return {ROOT_KEY: synthesize_default(cache, num_classes(builder))}


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


def export_input_size(spec: dict[str, Any], user: Mapping[str, Any],
                      out_dir: Path) -> dict[str, tuple[Any, str]]:
    """``export.input_height/width`` = the trained ``img_size`` (an explicit --set wins); follows
    the trained model, so nothing to announce."""
    size = get_dotted(spec, IMG_SIZE_KEY, None)
    if isinstance(size, (list, tuple)) and len(size) == 2:
        height, width = size
    elif isinstance(size, int) and not isinstance(size, bool):
        height = width = size
    else:
        return {}
    for key, value in (("export.input_height", height), ("export.input_width", width)):
        if key not in user:
            set_dotted(spec, key, value)
    return {}


def calibration_images(spec: dict[str, Any], user: Mapping[str, Any],
                       out_dir: Path) -> dict[str, tuple[Any, str]]:
    """Fill the quantize calibration folder the skill marks mandatory (TAO's template leaves it
    empty, and INT8 calibration without images fails inside the container): the training
    split's images of the action's dataset. A folder the trained spec or ``--set`` names wins."""
    current = get_dotted(spec, CALIBRATION_KEY, None)
    if CALIBRATION_KEY in user or current not in (None, "", "???"):
        return {}
    root = get_dotted(spec, ROOT_KEY, None)
    split = get_dotted(spec, TRAIN_SPLIT_KEY, None) or "train"
    if not isinstance(root, str) or root in ("", "???"):
        raise UserError(f"quantize: {CALIBRATION_KEY} is required and the spec names no "
                        f"dataset root to take calibration images from; pass --set "
                        f"calibration_images=DIR")
    folder = Path(root) / "images" / str(split)
    if not folder.is_dir():
        raise UserError(f"quantize: no calibration images at {folder} (the training split's "
                        f"images, the default of {CALIBRATION_KEY}); pass --set "
                        f"calibration_images=DIR or --root-dir")
    set_dotted(spec, CALIBRATION_KEY, str(folder))
    return {CALIBRATION_KEY: (str(folder), "the training split's images")}


EXTRAS = NetworkExtras(
    dataset_check=check_dataset,
    headline_keys=(NUM_CLASSES_KEY, IMG_SIZE_KEY, ROOT_KEY, "model.backbone.type"),
    action_rules={"export": export_input_size, "quantize": calibration_images},
    default_data=default_data,
    root_layout="images/<split> and masks/<split>",
    fallback_inputs=(Input(ROOT_KEY, "folder"),),
)
