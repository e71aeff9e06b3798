"""The dataset pre-check reads masks as TAO's SegFormer dataset does (``label_transform``).

TAO (``nvidia_tao_pytorch/cv/segformer/dataloader/segformer_dataset.py``, ``SFDataset``): with
``label_transform: norm`` a mask pixel becomes ``value // 255`` (0/255 binary masks hold classes
0 and 1); otherwise pixel values are class ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from automl.networks import segformer as dataset
from automl.errors import UserError
from automl.skill.spec import SpecBuilder

TEMPLATE = {"dataset": {"segment": {"root_dir": "???", "num_classes": 2, "train_split": "train",
                                    "validation_split": "val", "label_transform": "norm"}}}


def make_root(folder: Path, values: list[int]) -> Path:
    """images/ and masks/ for train and val; every mask holds ``values`` (one per row)."""
    mask = np.repeat(np.array(values, dtype=np.uint8)[:, None], 4, axis=1)
    for split in ("train", "val"):
        (folder / "images" / split).mkdir(parents=True)
        (folder / "masks" / split).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(np.zeros((len(values), 4, 3), np.uint8)).save(
                folder / "images" / split / f"{i}.png")
            Image.fromarray(mask).save(folder / "masks" / split / f"{i}.png")
    return folder


def check(root: Path, **overrides) -> None:
    builder = SpecBuilder(TEMPLATE, [], {}, overrides)
    num_classes = overrides.get("dataset.segment.num_classes", 2)
    dataset.check(root, builder, TEMPLATE, num_classes)


def test_norm_accepts_binary_0_255_masks(tmp_path: Path) -> None:
    check(make_root(tmp_path, [0, 255, 0, 255]))  # TAO's template: 255 is class 1


def test_norm_255_is_class_1_so_one_class_is_too_few(tmp_path: Path) -> None:
    root = make_root(tmp_path, [0, 255])
    with pytest.raises(UserError, match=r"class id 1 but dataset.segment.num_classes=1; set "
                                        r"--set dataset.segment.num_classes=2"):
        check(root, **{"dataset.segment.num_classes": 1})


def test_norm_refuses_class_id_masks_with_the_fix(tmp_path: Path) -> None:
    """TAO would read 1, 2, 3 as 0 (value // 255): training on blank masks, silently."""
    root = make_root(tmp_path, [0, 1, 2, 3])
    with pytest.raises(UserError) as err:
        check(root, **{"dataset.segment.num_classes": 4})
    message = str(err.value)
    assert "mask has value 1" in message and "label_transform is norm" in message
    assert "value // 255" in message
    assert message.endswith("--set dataset.segment.label_transform=None")


@pytest.mark.parametrize("transform", ["None", None, "identity"])
def test_without_norm_pixel_values_are_class_ids(tmp_path: Path, transform) -> None:
    root = make_root(tmp_path, [0, 1, 2, 3])
    check(root, **{"dataset.segment.label_transform": transform,
                   "dataset.segment.num_classes": 4})
    with pytest.raises(UserError, match="class id 3 but dataset.segment.num_classes=2"):
        check(root, **{"dataset.segment.label_transform": transform})


def test_without_norm_0_255_masks_are_class_255(tmp_path: Path) -> None:
    root = make_root(tmp_path, [0, 255])
    with pytest.raises(UserError, match="class id 255 but dataset.segment.num_classes=2"):
        check(root, **{"dataset.segment.label_transform": "None"})


def test_tao_template_says_norm() -> None:
    """The real template's default is what makes 0/255 masks the normal case."""
    from automl.skill.folder import SkillDir
    from tests.helpers.skills import shared_tao

    template = SkillDir.load(shared_tao() / "tao-train-segformer").template("train")
    assert template["dataset"]["segment"]["label_transform"] == "norm"
