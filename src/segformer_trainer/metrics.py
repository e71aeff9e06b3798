"""Segmentation metrics from a confusion matrix accumulated over a whole split (numpy only).

``confusion[g, p]`` counts pixels of ground-truth class ``g`` predicted as ``p`` (pixels with the
ignore label are skipped). Per class: IoU = TP / (TP + FP + FN), precision = TP / (TP + FP),
recall = TP / (TP + FN), F1 = 2PR / (P + R), with 0/0 taken as 0. The means (mIoU, mF1,
mPrecision, mRecall) are over the classes *present*, i.e. that occur in the ground truth or in the
prediction of the split; ``acc`` is the overall pixel accuracy.
"""

from __future__ import annotations

import numpy as np


def update_confusion(confusion: np.ndarray, gt: np.ndarray, pred: np.ndarray, ignore_index: int = 255) -> None:
    k = confusion.shape[0]
    gt = np.asarray(gt).reshape(-1).astype(np.int64)
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    valid = (gt != ignore_index) & (gt >= 0) & (gt < k)
    confusion += np.bincount(gt[valid] * k + pred[valid], minlength=k * k).reshape(k, k)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)


def scores(confusion: np.ndarray) -> dict[str, float]:
    cm = confusion.astype(np.float64)
    tp = np.diag(cm)
    gt = cm.sum(1)
    pred = cm.sum(0)
    present = (gt + pred) > 0
    iou = _div(tp, gt + pred - tp)
    precision = _div(tp, pred)
    recall = _div(tp, gt)
    f1 = _div(2 * precision * recall, precision + recall)
    total = cm.sum()

    def mean(x: np.ndarray) -> float:
        return float(x[present].mean()) if present.any() else 0.0

    return {
        "acc": float(tp.sum() / total) if total > 0 else 0.0,
        "miou": mean(iou),
        "mf1": mean(f1),
        "mprecision": mean(precision),
        "mrecall": mean(recall),
        "per_class_iou": [float(v) for v in iou],
    }
