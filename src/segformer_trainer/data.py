"""Dataset reading, validation and TAO's augmentations (numpy + PIL, no torch, no torchvision).

Layout (``dataset.segment.root_dir``): ``images/<split>/*.png|jpg|jpeg`` and
``masks/<split>/<same stem>.png`` (single channel, class id per pixel). With
``label_transform: norm`` (TAO's behaviour) mask values are divided by 255 (binary 0/255 masks);
with the string ``"None"`` they are class ids as they are.

Before training, every mask of a split is checked: a value ``>= num_classes`` is a data error (with
``norm``, a value other than 0/255 is one too, because ``//255`` would silently erase it).

Augmentations follow TAO's SegFormer pipeline order (train only): random hflip/vflip, random
rotation from ``angle_list`` (90-degree multiples exactly; other angles with nearest-neighbour
masks and ignore fill), ``with_random_crop`` (random resized crop, area 0.8-1.0, square, back to
``img_size``), ``with_scale_random_crop`` (rescale by a factor from ``scale_range``, random crop of
``img_size``; padding where the scale is < 1 gets the ignore label 255), ``with_random_blur``
(Gaussian blur, radius uniform in [0, 1)), ``random_color`` (ColorJitter-like brightness,
contrast, saturation and hue in random order, applied with ``color_probability``), then
``mean``/``std`` normalisation of [0, 1] pixels. Images are resized to ``img_size`` first.

Randomness: sample ``i`` of epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])`` and the
shuffle order of epoch ``e`` uses ``default_rng([seed, e, 2**31])``. The data pipeline therefore
needs no RNG state in checkpoints, gives the same batches for any ``workers``, and a resumed run
sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .errors import DataError

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
IGNORE_INDEX = 255


@dataclass
class Sample:
    stem: str
    image: Path
    mask: Path | None


def split_dirs(root: str | Path, split: str) -> tuple[Path, Path]:
    root = Path(root)
    return root / "images" / split, root / "masks" / split


def list_split(root: str | Path, split: str, *, need_masks: bool = True) -> list[Sample]:
    """The samples of a split; a missing folder or an image without mask is a :class:`DataError`."""
    img_dir, mask_dir = split_dirs(root, split)
    if not Path(root).is_dir():
        raise DataError(f"data: dataset.segment.root_dir not found: {root}")
    if not img_dir.is_dir():
        raise DataError(f"data: split '{split}' not found at {img_dir}")
    if need_masks and not mask_dir.is_dir():
        raise DataError(f"data: split '{split}' has no masks folder at {mask_dir}")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    if not images:
        raise DataError(f"data: split '{split}' has no images (*.png|*.jpg) in {img_dir}")
    samples = []
    for img in images:
        mask = mask_dir / f"{img.stem}.png"
        if need_masks and not mask.is_file():
            raise DataError(f"data: image {img} has no mask {mask}")
        samples.append(Sample(img.stem, img, mask if mask.is_file() else None))
    return samples


def load_image(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def load_mask(path: Path, label_transform: str, num_classes: int) -> np.ndarray:
    """A mask as uint8 class ids, validated against ``num_classes``."""
    with Image.open(path) as im:
        if im.mode in ("RGB", "RGBA"):
            arr = np.asarray(im.convert("RGB"))
            if not (np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2])):
                raise DataError(f"data: mask {path} is a colour image; masks must be single channel class ids")
            arr = arr[..., 0]
        else:
            arr = np.asarray(im)
    arr = np.asarray(arr)
    if arr.ndim != 2:
        raise DataError(f"data: mask {path} must be single channel, got shape {arr.shape}")
    if label_transform == "norm":
        bad = (arr != 0) & (arr != 255)
        if bad.any():
            value = int(arr[bad][0])
            raise DataError(
                f"data: mask {path} has value {value} but dataset.segment.label_transform=norm expects 0/255 "
                "masks; use label_transform: None for class-id masks"
            )
        arr = arr // 255
    top = int(arr.max()) if arr.size else 0
    if top >= num_classes:
        raise DataError(f"data: mask {path} has class id {top} but dataset.segment.num_classes={num_classes}")
    if top > 255:
        raise DataError(f"data: mask {path} has class id {top} (> 255 is not supported)")
    return arr.astype(np.uint8)


# --------------------------------------------------------------------------- augmentation
def _resize_img(img: np.ndarray, w: int, h: int, resample=Image.BILINEAR) -> np.ndarray:
    if img.shape[0] == h and img.shape[1] == w:
        return img
    return np.asarray(Image.fromarray(img).resize((w, h), resample))


def _resize_mask(mask: np.ndarray, w: int, h: int) -> np.ndarray:
    if mask.shape[0] == h and mask.shape[1] == w:
        return mask
    return np.asarray(Image.fromarray(mask).resize((w, h), Image.NEAREST))


def _rgb_to_gray(img: np.ndarray) -> np.ndarray:
    return img[..., 0] * 0.299 + img[..., 1] * 0.587 + img[..., 2] * 0.114


def _rgb_to_hsv(img: np.ndarray) -> np.ndarray:
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    maxc = img.max(-1)
    minc = img.min(-1)
    v = maxc
    delta = maxc - minc
    s = np.where(maxc > 0, delta / np.maximum(maxc, 1e-12), 0.0)
    dc = np.maximum(delta, 1e-12)
    rc, gc, bc = (maxc - r) / dc, (maxc - g) / dc, (maxc - b) / dc
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta > 0, (h / 6.0) % 1.0, 0.0)
    return np.stack([h, s, v], -1)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    r = np.choose(i, [v, q, p, p, t, v])
    g = np.choose(i, [t, v, v, q, p, p])
    b = np.choose(i, [p, p, t, v, v, q])
    return np.stack([r, g, b], -1)


def color_jitter(img: np.ndarray, rng: np.random.Generator, brightness: float, contrast: float,
                 saturation: float, hue: float) -> np.ndarray:
    """torchvision-ColorJitter-like jitter of a float [0, 1] HxWx3 image, ops in random order."""
    ops = []
    if brightness > 0:
        ops.append(("b", rng.uniform(max(0.0, 1 - brightness), 1 + brightness)))
    if contrast > 0:
        ops.append(("c", rng.uniform(max(0.0, 1 - contrast), 1 + contrast)))
    if saturation > 0:
        ops.append(("s", rng.uniform(max(0.0, 1 - saturation), 1 + saturation)))
    if hue > 0:
        ops.append(("h", rng.uniform(-hue, hue)))
    order = rng.permutation(len(ops))
    for k in order:
        name, factor = ops[int(k)]
        if name == "b":
            img = np.clip(img * factor, 0, 1)
        elif name == "c":
            mean = _rgb_to_gray(img).mean()
            img = np.clip((img - mean) * factor + mean, 0, 1)
        elif name == "s":
            gray = _rgb_to_gray(img)[..., None]
            img = np.clip((img - gray) * factor + gray, 0, 1)
        else:
            hsv = _rgb_to_hsv(img)
            hsv[..., 0] = (hsv[..., 0] + factor) % 1.0
            img = _hsv_to_rgb(hsv)
    return img


def augment(img: np.ndarray, mask: np.ndarray, aug, size: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray]:
    """TAO's training augmentations; ``img`` uint8 HxWx3 and ``mask`` uint8 HxW, both ``size``."""
    if aug.random_flip.enable:
        if rng.uniform() < aug.random_flip.hflip_probability:
            img, mask = img[:, ::-1], mask[:, ::-1]
        if rng.uniform() < aug.random_flip.vflip_probability:
            img, mask = img[::-1], mask[::-1]
    if aug.random_rotate.enable and aug.random_rotate.angle_list:
        if rng.uniform() < aug.random_rotate.rotate_probability:
            angle = float(aug.random_rotate.angle_list[int(rng.integers(len(aug.random_rotate.angle_list)))])
            if angle % 90 == 0:
                k = int(angle // 90) % 4
                img, mask = np.rot90(img, k), np.rot90(mask, k)
            else:
                img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).rotate(angle, Image.BILINEAR))
                mask = np.asarray(Image.fromarray(np.ascontiguousarray(mask)).rotate(
                    angle, Image.NEAREST, fillcolor=IGNORE_INDEX))
    img, mask = np.ascontiguousarray(img), np.ascontiguousarray(mask)
    if aug.with_random_crop:
        area = rng.uniform(0.8, 1.0) * size * size
        side = max(1, min(size, int(round(math.sqrt(area)))))
        y0 = int(rng.integers(0, size - side + 1))
        x0 = int(rng.integers(0, size - side + 1))
        img = _resize_img(img[y0:y0 + side, x0:x0 + side], size, size, Image.BICUBIC)
        mask = _resize_mask(mask[y0:y0 + side, x0:x0 + side], size, size)
    if aug.with_scale_random_crop.enable:
        lo, hi = aug.with_scale_random_crop.scale_range
        scale = lo + rng.uniform() * (hi - lo)
        new = max(1, int(round(size * scale)))
        if new != size:
            img = _resize_img(img, new, new, Image.BICUBIC)
            mask = _resize_mask(mask, new, new)
        if new >= size:
            y0 = int(rng.integers(0, new - size + 1))
            x0 = int(rng.integers(0, new - size + 1))
            img, mask = img[y0:y0 + size, x0:x0 + size], mask[y0:y0 + size, x0:x0 + size]
        else:
            pad_img = np.zeros((size, size, 3), dtype=np.uint8)
            pad_mask = np.full((size, size), IGNORE_INDEX, dtype=np.uint8)
            y0 = int(rng.integers(0, size - new + 1))
            x0 = int(rng.integers(0, size - new + 1))
            pad_img[y0:y0 + new, x0:x0 + new] = img
            pad_mask[y0:y0 + new, x0:x0 + new] = mask
            img, mask = pad_img, pad_mask
    if aug.with_random_blur:
        radius = float(rng.uniform())
        img = np.asarray(Image.fromarray(np.ascontiguousarray(img)).filter(ImageFilter.GaussianBlur(radius)))
    out = img.astype(np.float32) / 255.0
    rc = aug.random_color
    if rc.enable and rng.uniform() < rc.color_probability:
        out = color_jitter(out, rng, rc.brightness, rc.contrast, rc.saturation, rc.hue)
    return np.ascontiguousarray(out, dtype=np.float32), np.ascontiguousarray(mask)


def normalize(img01: np.ndarray, mean, std) -> np.ndarray:
    """HxWx3 float [0, 1] -> 3xHxW float32 normalised."""
    out = (img01 - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32)


class SegDataset:
    """A split of the dataset; ``item(index, epoch)`` gives (image CHW float32, mask HW int64, stem).

    Images are resized to ``img_size`` (bilinear; masks nearest). Small splits are cached in memory
    (decoded and resized) after their first read.
    """

    CACHE_LIMIT_BYTES = 512 * 1024 * 1024

    def __init__(self, root: str | Path, split: str, seg_cfg, *, train: bool, seed: int,
                 need_masks: bool = True) -> None:
        self.samples = list_split(root, split, need_masks=need_masks)
        self.split = split
        self.cfg = seg_cfg
        self.size = int(seg_cfg.img_size)
        self.train = train
        self.seed = int(seed)
        self.need_masks = need_masks
        per_item = self.size * self.size * 4
        self._cache: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = (
            {} if per_item * len(self.samples) <= self.CACHE_LIMIT_BYTES else None
        )

    def __len__(self) -> int:
        return len(self.samples)

    def validate_masks(self) -> None:
        """Read every mask once (raises :class:`DataError` on a bad one) and fill the cache."""
        for i in range(len(self.samples)):
            self._load(i)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        s = self.samples[index]
        img = _resize_img(load_image(s.image), self.size, self.size)
        mask = None
        if s.mask is not None and self.need_masks:
            mask = load_mask(s.mask, self.cfg.label_transform, int(self.cfg.num_classes))
            mask = _resize_mask(mask, self.size, self.size)
        if self._cache is not None:
            self._cache[index] = (img, mask)
        return img, mask

    def original_size(self, index: int) -> tuple[int, int]:
        with Image.open(self.samples[index].image) as im:
            return im.size  # (w, h)

    def item(self, index: int, epoch: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
        img, mask = self._load(index)
        if mask is None:
            mask = np.zeros(img.shape[:2], dtype=np.uint8)
        if self.train:
            rng = np.random.default_rng([self.seed & 0xFFFFFFFF, int(epoch), int(index)])
            img01, mask = augment(img, mask, self.cfg.augmentation, self.size, rng)
        else:
            img01 = img.astype(np.float32) / 255.0
        x = normalize(img01, self.cfg.augmentation.mean, self.cfg.augmentation.std)
        return x, mask.astype(np.int64), self.samples[index].stem

    def epoch_order(self, epoch: int, shuffle: bool) -> np.ndarray:
        if not shuffle:
            return np.arange(len(self.samples))
        return np.random.default_rng([self.seed & 0xFFFFFFFF, int(epoch), 2**31]).permutation(len(self.samples))


def batches(order: np.ndarray, batch_size: int) -> list[list[int]]:
    return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
