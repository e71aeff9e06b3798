"""``automl-segformer evaluate | inference | export`` (TAO: ``segformer <action>``).

- evaluate: loads ``evaluate.checkpoint``, computes the metrics on ``dataset.segment.test_split``
  (TAO's default: ``val``) exactly as training validates, prints them and writes
  ``<results_dir>/evaluate/status.json`` (STARTED "Starting SegFormer evaluate.", then RUNNING
  "Evaluate finished successfully." (TAO writes no SUCCESS line) with ``kpi: {val_loss, val_acc, val_miou, val_mf1,
  val_mprecision, val_mrecall}``) and ``results.json`` (with the checkpoint's 0-based ``epoch``
  and ``global_step``).
- inference: loads ``inference.checkpoint`` and writes, for each image of
  ``dataset.segment.predict_split``, ``<results_dir>/inference/mask_labels/<stem>.png`` (class id per
  pixel, at the image's original size) and ``vis_overlay/<stem>.png`` (palette colours blended
  over the image).
- export: loads ``export.checkpoint`` and writes ONNX to ``export.onnx_file`` (input ``input``
  of shape N x input_channel x input_height x input_width, output ``output``: class logits at the
  input size; dynamic batch when ``export.batch_size`` is -1). Needs the ``onnx`` package.

Each action reads only the ``model`` entry (and ``arch``) of a checkpoint, so checkpoints of any
format this trainer wrote are accepted.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .config import ExperimentConfig, action_results_dir, require
from .errors import DependencyError, SpecError
from .status import SUCCESS_STATUS, StatusLogger, started_message, success_message


def _model_from_checkpoint(cfg: ExperimentConfig, ckpt_path: str, key: str, num_gpus: int, gpu_ids: list[int]):
    from .model import build_model
    from .runtime import load_checkpoint, load_model_weights, pick_device, seed_everything, setup_threads

    setup_threads()
    seed_everything(max(0, cfg.train.seed))
    ckpt = load_checkpoint(ckpt_path, key)
    model = build_model(cfg)
    load_model_weights(model, ckpt, cfg, key)
    device = pick_device(num_gpus, gpu_ids)
    model.to(device).eval()
    return model, device, ckpt


def run_evaluate(cfg: ExperimentConfig, status: StatusLogger, log=print) -> dict[str, float]:
    seg = cfg.dataset.segment
    root = require(seg.root_dir, "dataset.segment.root_dir")
    ckpt_path = require(cfg.evaluate.checkpoint, "evaluate.checkpoint")
    out_dir = action_results_dir(cfg, "evaluate")
    status.write("STARTED", started_message("evaluate"))
    t0 = time.time()

    from .data import SegDataset
    from .runtime import evaluate_dataset

    ds = SegDataset(root, seg.test_split, seg, train=False, seed=0)
    ds.validate_masks()
    model, device, ckpt = _model_from_checkpoint(cfg, ckpt_path, "evaluate.checkpoint", cfg.evaluate.num_gpus,
                                                 cfg.evaluate.gpu_ids)
    metrics = evaluate_dataset(model, ds, cfg, device, int(cfg.evaluate.batch_size), seg.workers)
    results = {"checkpoint": str(ckpt_path), "split": seg.test_split, "num_images": len(ds),
               "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"), **metrics}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for k, v in metrics.items():
        log(f"{k}: {v:.6f}")
    status.write(SUCCESS_STATUS, success_message("evaluate"), kpi=metrics)
    log(f"Evaluation took {time.time() - t0:.1f} s")
    return metrics


def _palette(cfg: ExperimentConfig) -> np.ndarray:
    k = int(cfg.dataset.segment.num_classes)
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, size=(max(k, 256), 3)).astype(np.uint8)
    entries = cfg.dataset.segment.palette
    scale = 255.0 if entries and all(max(e.rgb, default=0) <= 1 for e in entries) else 1.0
    for e in entries:
        if 0 <= e.label_id < len(colours) and len(e.rgb) == 3:
            colours[e.label_id] = np.clip(np.asarray(e.rgb, dtype=np.float64) * scale, 0, 255).astype(np.uint8)
    return colours


def run_inference(cfg: ExperimentConfig, status: StatusLogger, log=print) -> Path:
    seg = cfg.dataset.segment
    root = require(seg.root_dir, "dataset.segment.root_dir")
    ckpt_path = require(cfg.inference.checkpoint, "inference.checkpoint")
    out_dir = action_results_dir(cfg, "inference")
    status.write("STARTED", started_message("inference"))

    import torch
    import torch.nn.functional as F
    from PIL import Image

    from .data import SegDataset
    from .runtime import iterate_batches

    ds = SegDataset(root, seg.predict_split, seg, train=False, seed=0, need_masks=False)
    model, device, _ = _model_from_checkpoint(cfg, ckpt_path, "inference.checkpoint", cfg.inference.num_gpus,
                                              cfg.inference.gpu_ids)
    label_dir = out_dir / "mask_labels"
    vis_dir = out_dir / "vis_overlay"
    label_dir.mkdir(parents=True, exist_ok=True)
    vis_dir.mkdir(parents=True, exist_ok=True)
    colours = _palette(cfg)
    bs = int(cfg.inference.batch_size)
    order = np.arange(len(ds))
    index_batches = [order[i:i + bs].tolist() for i in range(0, len(order), bs)]
    n = 0
    with torch.no_grad():
        for idxs, (x, _, stems) in zip(index_batches, iterate_batches(ds, index_batches, 0, seg.workers)):
            logits = model(pixel_values=x.to(device)).logits
            for j, (i, stem) in enumerate(zip(idxs, stems)):
                w, h = ds.original_size(i)
                up = F.interpolate(logits[j:j + 1], size=(h, w), mode="bilinear",
                                   align_corners=cfg.model.decode_head.align_corners)
                pred = up.argmax(1)[0].cpu().numpy().astype(np.uint8)
                Image.fromarray(pred).save(label_dir / f"{stem}.png")
                with Image.open(ds.samples[i].image) as im:
                    rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
                blend = (0.5 * rgb + 0.5 * colours[pred].astype(np.float32)).astype(np.uint8)
                Image.fromarray(blend).save(vis_dir / f"{stem}.png")
                n += 1
    log(f"Wrote {n} predicted masks to {label_dir}")
    status.write(SUCCESS_STATUS, success_message("inference"))
    return label_dir


def run_export(cfg: ExperimentConfig, status: StatusLogger | None, log=print) -> Path:
    e = cfg.export
    ckpt_path = require(e.checkpoint, "export.checkpoint")
    onnx_file = Path(require(e.onnx_file, "export.onnx_file"))
    if e.format != "onnx":
        raise SpecError(f"spec: export.format={e.format} is not supported by this trainer (use onnx)")
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise DependencyError("onnx is not installed: pip install onnx") from None
    if status is not None:
        status.write("STARTED", started_message("export"))

    import torch
    import torch.nn.functional as F

    model, _, _ = _model_from_checkpoint(cfg, ckpt_path, "export.checkpoint", 0, [])
    align = cfg.model.decode_head.align_corners

    class Wrapper(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            logits = self.inner(pixel_values=x).logits
            return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=align)

    if e.input_channel != 3:
        raise SpecError("spec: export.input_channel must be 3 for this model (RGB input)")
    batch = 1 if e.batch_size == -1 else int(e.batch_size)
    dummy = torch.zeros(batch, e.input_channel, e.input_height, e.input_width)
    onnx_file.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {}
    if e.batch_size == -1:
        kwargs["dynamic_axes"] = {"input": {0: "batch"}, "output": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python values
        torch.onnx.export(Wrapper(model).eval(), (dummy,), str(onnx_file), input_names=["input"],
                          output_names=["output"], opset_version=int(e.opset_version), dynamo=False,
                          verbose=bool(e.verbose), **kwargs)
    log(f"Exported ONNX model to {onnx_file}")
    if status is not None:
        status.write(SUCCESS_STATUS, success_message("export"))
    return onnx_file
