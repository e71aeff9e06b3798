"""The per-network facts that a skill folder lacks: the KPI TAO monitors and the others it lists.

A skill folder carries the schema, the templates and ``skill_info.yaml`` (actions, inputs,
``spec_params``) but not which KPI decides how good a trained model is. TAO's own service
publishes it per network (nvidia-tao-core 7.3.0, ``network_configs/<network_arch>.config.json``:
``metrics.monitoring_metric`` and ``metrics.available_metrics``), as summarised in
``../shared/tao/NETWORKS.md``. The names are data, restated here (the package is proprietary:
nothing of it is vendored). KPI names are verbatim status.json ``kpi`` keys: some hold spaces,
slashes, brackets or ``@``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["max", "min"]


@dataclass(frozen=True)
class NetworkFacts:
    """TAO's monitoring metric of one network and the other KPI names TAO lists for it.

    ``complete``: the KPI list is every name the trainer writes (checked against the trainer's
    source), so a metric outside it can be refused before anything runs. TAO's published lists
    are often partial, so this is the exception, not the rule.
    """

    metric: str
    kpis: tuple[str, ...] = ()
    complete: bool = False

    @property
    def known_kpis(self) -> tuple[str, ...]:
        return (self.metric, *(k for k in self.kpis if k != self.metric))


_DEPTH = ("train_loss", "val/d1", "val/d2", "val/d3", "val/abs_rel")

# network_arch (skill_info.yaml) → facts. Networks TAO publishes no config for (cosmos-reason,
# nv_tesseract_*, dinov3, visual-changenet) are absent: their users name the metric.
FACTS: dict[str, NetworkFacts] = {
    "clip": NetworkFacts("val/t2i_mAP", ("val/i2t_mAP", "val/i2t_R@1", "val/i2t_R@5",
                                         "val/i2t_MedR", "val/i2t_MeanR", "val/i2t_AUC")),
    "action_recognition": NetworkFacts("val_acc"),
    "bevfusion": NetworkFacts("AP11"),
    "centerpose": NetworkFacts("val_3DIoU"),
    "deformable_detr": NetworkFacts("val_mAP50"),
    "depth_net_mono": NetworkFacts("val/loss", _DEPTH),
    "dino": NetworkFacts("val_mAP50"),
    "depth_net_stereo": NetworkFacts("val/loss", _DEPTH),
    "grounding_dino": NetworkFacts("val_mAP50"),
    "classification_pyt": NetworkFacts("val_acc_1"),
    "mae": NetworkFacts("train_loss"),
    "mal": NetworkFacts("mIoU", ("val_cluster_score",)),
    "mask_grounding_dino": NetworkFacts("[bbox] val_mAP@50", (
        "[bbox] val_P", "[bbox] val_R", "[bbox] val_mAP@50-95", "[bbox] val_mIoU", "[segm] val_P",
        "[segm] val_R")),
    "mask2former": NetworkFacts("mIoU"),
    "ml_recog": NetworkFacts("val Precision at Rank 1"),
    "nvdinov2": NetworkFacts("train_loss", ("val_acc_1", "val_accuracy", "accuracy", "loss",
                                            "learning_rate")),
    "nvpanoptix3d": NetworkFacts("kpi", ("train_dpq_-1.0_epoch", "train_dpq_th_-1.0_epoch",
                                         "train_dpq_st_-1.0_epoch", "train_dpq_0.5_epoch",
                                         "train_dpq_th_0.5_epoch", "train_dpq_st_0.5_epoch")),
    "ocdnet": NetworkFacts("hmean"),
    "ocrnet": NetworkFacts("val_acc"),
    "oneformer": NetworkFacts("mIoU"),
    "optical_inspection": NetworkFacts("val_acc"),
    "pointpillars": NetworkFacts("loss"),
    "pose_classification": NetworkFacts("val_acc"),
    "re_identification": NetworkFacts("cmc_rank_1"),
    "rtdetr": NetworkFacts("val_mAP50"),
    # SegFormer's list is what its Lightning module writes (DESIGN.md; the bundled trainer
    # writes the same), beyond the mAcc/acc TAO's config lists.
    "segformer": NetworkFacts("val_miou", ("val_mAcc", "val_acc", "val_loss", "val_mf1",
                                           "val_mprecision", "val_mrecall", "train_loss",
                                           "latency_ms", "params_m"),  # the bundled trainer's
                              complete=True),
    "sparse4d": NetworkFacts("val_mAP", ("val_hota",)),
}

# TAO's AutoML (nvidia-tao-automl 7.2, objectives.py) minimizes a metric whose name holds one
# of these words and maximizes any other; the same rule, so both tools agree on a bare name.
_MINIMIZED_WORDS = ("loss", "latency", "runtime", "duration", "time", "cost", "flops", "params",
                    "memory", "energy", "wer", "cer", "perplexity", "ppl", "error")


def default_direction(metric: str) -> Direction:
    """``min`` for a loss/latency/error-like KPI name, else ``max`` (TAO AutoML's rule)."""
    lowered = metric.lower()
    return "min" if any(word in lowered for word in _MINIMIZED_WORDS) else "max"
