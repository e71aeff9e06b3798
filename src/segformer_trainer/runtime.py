"""Torch-side helpers shared by the actions: threads, seeding, device, batches, evaluation, checkpoints."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .config import ExperimentConfig
from .data import IGNORE_INDEX, SegDataset
from .errors import SpecError
from .metrics import scores, update_confusion
from .model import arch_summary, forward_logits

CHECKPOINT_FORMAT = "segformer_trainer/2"  # /2: 0-based "epoch" (current_epoch), scheduler state_dict


def setup_threads() -> int:
    """torch threads from ``OMP_NUM_THREADS`` (the engine sets it per trial)."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        n = int(raw)
        torch.set_num_threads(n)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set / parallel work started
            pass
    return torch.get_num_threads()


def seed_everything(seed: int, deterministic: bool = True, benchmark: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = bool(deterministic)
        torch.backends.cudnn.benchmark = bool(benchmark)


def pick_device(num_gpus: int, gpu_ids: list[int]) -> torch.device:
    """CUDA (the first of ``gpu_ids``) when available and requested, else CPU."""
    if num_gpus >= 1 and torch.cuda.is_available():
        idx = gpu_ids[0] if gpu_ids else 0
        if idx < torch.cuda.device_count():
            return torch.device(f"cuda:{idx}")
        return torch.device("cuda:0")
    return torch.device("cpu")


def class_weights(cfg: ExperimentConfig, device: torch.device) -> torch.Tensor | None:
    """``train.segment.weights`` as CE class weights when it has exactly num_classes entries."""
    w = cfg.train.segment.weights
    if w and len(w) == int(cfg.dataset.segment.num_classes):
        return torch.tensor([float(v) for v in w], dtype=torch.float32, device=device)
    return None


def iterate_batches(ds: SegDataset, index_batches: list[list[int]], epoch: int, workers: int
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """(x, y, stems) per batch; the same batches for any number of workers."""
    if workers <= 0:
        for idxs in index_batches:
            items = [ds.item(i, epoch) for i in idxs]
            yield (torch.from_numpy(np.stack([it[0] for it in items])),
                   torch.from_numpy(np.stack([it[1] for it in items])),
                   [it[2] for it in items])
        return

    class _Items(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(ds)

        def __getitem__(self, key):
            return ds.item(key[0], key[1])

    def collate(items):
        return (torch.from_numpy(np.stack([it[0] for it in items])),
                torch.from_numpy(np.stack([it[1] for it in items])),
                [it[2] for it in items])

    sampler = [[(i, epoch) for i in idxs] for idxs in index_batches]
    # An own generator: the loader must not draw from the global torch RNG (dropout, drop-path), so
    # runs with any number of workers, and resumed runs, see the same random stream.
    loader = torch.utils.data.DataLoader(_Items(), batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(epoch))
    yield from loader


@torch.no_grad()
def evaluate_dataset(model, ds: SegDataset, cfg: ExperimentConfig, device: torch.device, batch_size: int,
                     workers: int = 0) -> dict[str, float]:
    """val_loss (mean CE per valid pixel) and the confusion-matrix metrics over the whole split."""
    model.eval()
    k = int(cfg.dataset.segment.num_classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    weights = class_weights(cfg, device)
    loss_sum = 0.0
    denom = 0.0
    order = np.arange(len(ds))
    index_batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    for x, y, _ in iterate_batches(ds, index_batches, 0, workers):
        x, y = x.to(device), y.to(device)
        logits = forward_logits(model, x, y.shape[-2:], cfg.model.decode_head.align_corners)
        loss_sum += float(F.cross_entropy(logits, y, weight=weights, ignore_index=IGNORE_INDEX,
                                          reduction="sum"))
        valid = y != IGNORE_INDEX
        denom += float(weights[y[valid]].sum()) if weights is not None else float(valid.sum())
        pred = logits.argmax(1)
        update_confusion(confusion, y.cpu().numpy(), pred.cpu().numpy(), IGNORE_INDEX)
    s = scores(confusion)
    return {
        "val_loss": loss_sum / denom if denom > 0 else float("nan"),
        "val_acc": s["acc"],
        "val_miou": s["miou"],
        "val_mf1": s["mf1"],
        "val_mprecision": s["mprecision"],
        "val_mrecall": s["mrecall"],
    }


# Latency: forward passes timed after the warm-up ones (the first runs allocate and, on CUDA,
# pick kernels); the median of the timed ones. Kept small: it runs at every validation.
LATENCY_WARMUP = 1
LATENCY_RUNS = 5


def model_cost(model, cfg: ExperimentConfig, device: torch.device) -> dict[str, float]:
    """``latency_ms`` and ``params_m`` of the model as it is now, for the validation KPIs.

    ``latency_ms``: the median wall time of one forward pass of a batch of one image at
    ``dataset.segment.img_size`` on ``device`` (logits upsampled to the input, as inference
    uses them), over :data:`LATENCY_RUNS` runs after :data:`LATENCY_WARMUP` warm-up runs, in
    ``torch.inference_mode``. The input is zeros: it consumes no random numbers, so training
    stays bit-for-bit reproducible, and a dense network's cost does not depend on pixel values.
    ``params_m``: every parameter of the model (frozen ones included), in millions. These are
    search objectives (accuracy against speed and size), measured on the trained model; an
    exported TensorRT engine is faster, but the ranking between architectures is what a search needs.
    """
    import statistics
    import time

    size = int(cfg.dataset.segment.img_size)
    channels = int(getattr(getattr(model, "config", None), "num_channels", 3) or 3)
    x = torch.zeros(1, channels, size, size, device=device)
    align = cfg.model.decode_head.align_corners
    was_training = model.training
    model.eval()
    times: list[float] = []
    with torch.inference_mode():
        for run in range(LATENCY_WARMUP + LATENCY_RUNS):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            forward_logits(model, x, (size, size), align)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if run >= LATENCY_WARMUP:
                times.append(time.perf_counter() - start)
    model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    return {"latency_ms": statistics.median(times) * 1000.0, "params_m": params / 1e6}


# --------------------------------------------------------------------------- checkpoints
def checkpoint_name(epoch: int, step: int) -> str:
    """TAO's name: Lightning's 0-based ``current_epoch`` and the global step."""
    return f"model_epoch_{epoch:03d}_step_{step:05d}.pth"


LATEST_NAME = "segformer_model_latest.pth"


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": [int(v) for v in np_state[1]], "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": [int(v) for v in py_state[1]]},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], np.asarray(n["keys"], dtype=np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), None))
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError:
            pass


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - a filesystem without fsync
        pass


def save_checkpoint(path: Path, payload: dict[str, Any], latest: Path | None = None) -> None:
    """Atomic write: ``<name>.tmp`` (no ``.pth`` suffix, so globs never see it), fsync, rename.

    ``latest`` gets a copy, written the same way, so a reader never sees a partial file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    _fsync(tmp)
    os.replace(tmp, path)
    if latest is not None:
        tmp_latest = latest.with_name(latest.name + ".tmp")
        shutil.copyfile(path, tmp_latest)
        _fsync(tmp_latest)
        os.replace(tmp_latest, latest)


def load_checkpoint(path: str, key: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec: {key} not found: {p}")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise SpecError(f"spec: {key} {p} is not a readable checkpoint ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise SpecError(f"spec: {key} {p} is not a checkpoint of this trainer (no 'model' entry)")
    return ckpt


def check_arch(ckpt: dict[str, Any], cfg: ExperimentConfig, key: str) -> None:
    saved = ckpt.get("arch")
    if not saved:
        return
    now = arch_summary(cfg)
    for field, spec_key in (("mit", "model.backbone.type"), ("num_classes", "dataset.segment.num_classes"),
                            ("embed_dim", "model.decode_head.decoder_params.embed_dim")):
        if saved.get(field) != now.get(field):
            raise SpecError(f"spec: {key} was trained with {field}={saved.get(field)} but the spec has "
                            f"{spec_key} giving {now.get(field)}")


def load_model_weights(model, ckpt: dict[str, Any], cfg: ExperimentConfig, key: str) -> None:
    check_arch(ckpt, cfg, key)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:160]
        raise SpecError(f"spec: {key} does not match the model of the spec ({first})") from None
