"""SegFormer model: ``transformers.SegformerForSemanticSegmentation`` built from a config only.

No hub download ever happens: the model is built from a :class:`SegformerConfig` and randomly
initialised (seeded), then optionally loaded from local files (``model.backbone.
pretrained_backbone_path`` for the encoder, ``train.pretrained_model_path`` for the whole model).

``model.backbone.type`` names a MiT (Mix Transformer) encoder size. TAO's FAN / ViT backbones are
not reimplemented: their names are accepted and mapped to the MiT size closest in scale
(:data:`TAO_TO_MIT`), so TAO specs run unchanged. ``mit_nano`` is a tiny CPU-sized encoder
(hidden sizes 16/32/64/128, one block per stage, weights initialised with std 0.05 instead of
HF's 0.02, which makes it learn much sooner from scratch). The decoder's hidden size is
``model.decode_head.decoder_params.embed_dim``; ``decode_head.in_channels`` is informative (the
encoder's hidden sizes are what the decoder gets). Logits (1/4 resolution) are upsampled
bilinearly (``decode_head.align_corners``) to the mask size for the loss and the metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import SpecError

MIT_PRESETS: dict[str, dict[str, Any]] = {
    # initializer_range 0.05 (HF default 0.02): this from-scratch CPU model takes off much sooner.
    "mit_nano": {"hidden_sizes": [16, 32, 64, 128], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 2, 4],
                 "initializer_range": 0.05},
    "mit_b0": {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "num_attention_heads": [1, 2, 5, 8]},
    "mit_b1": {"hidden_sizes": [64, 128, 320, 512], "depths": [2, 2, 2, 2], "num_attention_heads": [1, 2, 5, 8]},
    "mit_b2": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 6, 3], "num_attention_heads": [1, 2, 5, 8]},
    "mit_b3": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 4, 18, 3], "num_attention_heads": [1, 2, 5, 8]},
    "mit_b4": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 8, 27, 3], "num_attention_heads": [1, 2, 5, 8]},
    "mit_b5": {"hidden_sizes": [64, 128, 320, 512], "depths": [3, 6, 40, 3], "num_attention_heads": [1, 2, 5, 8]},
}

# TAO backbone name -> MiT size of similar scale (a stand-in, not the real FAN/ViT architecture).
TAO_TO_MIT = {
    "fan_tiny_8_p4_hybrid": "mit_b1",
    "fan_small_12_p4_hybrid": "mit_b2",
    "fan_base_16_p4_hybrid": "mit_b3",
    "fan_large_16_p4_hybrid": "mit_b4",
    "vit_small_dinov3": "mit_b2",
    "vit_small_plus_dinov3": "mit_b2",
    "vit_base_dinov3": "mit_b3",
    "vit_base_nvclip_16_siglip": "mit_b3",
    "vit_large_nvdinov2": "mit_b5",
    "vit_large_dinov3": "mit_b5",
    "vit_giant_nvdinov2": "mit_b5",
    "vit_huge_plus_dinov3": "mit_b5",
    "vit_huge_nvclip_14_siglip": "mit_b5",
}


def mit_size(backbone_type: str) -> str:
    return backbone_type if backbone_type in MIT_PRESETS else TAO_TO_MIT[backbone_type]


def arch_summary(cfg) -> dict[str, Any]:
    """What a checkpoint must agree on with the spec that loads it."""
    return {
        "backbone": cfg.model.backbone.type,
        "mit": mit_size(cfg.model.backbone.type),
        "num_classes": int(cfg.dataset.segment.num_classes),
        "embed_dim": int(cfg.model.decode_head.decoder_params.embed_dim),
    }


def build_model(cfg):
    """A randomly initialised SegformerForSemanticSegmentation for the spec (seed torch first)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    preset = MIT_PRESETS[mit_size(cfg.model.backbone.type)]
    num_classes = int(cfg.dataset.segment.num_classes)
    names = {int(p.label_id): (p.mapping_class or p.seg_class or f"class_{p.label_id}")
             for p in cfg.dataset.segment.palette}
    id2label = {i: names.get(i, f"class_{i}") for i in range(num_classes)}
    hf_cfg = SegformerConfig(
        num_channels=3,
        num_encoder_blocks=4,
        hidden_sizes=list(preset["hidden_sizes"]),
        depths=list(preset["depths"]),
        num_attention_heads=list(preset["num_attention_heads"]),
        sr_ratios=[8, 4, 2, 1],
        patch_sizes=[7, 3, 3, 3],
        strides=[4, 2, 2, 2],
        mlp_ratios=[4, 4, 4, 4],
        decoder_hidden_size=int(cfg.model.decode_head.decoder_params.embed_dim),
        num_labels=num_classes,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        semantic_loss_ignore_index=255,
        initializer_range=float(preset.get("initializer_range", 0.02)),
    )
    model = SegformerForSemanticSegmentation(hf_cfg)
    return model


def set_backbone_frozen(model, frozen: bool) -> None:
    for p in model.segformer.parameters():
        p.requires_grad_(not frozen)


def _state_dict_from_file(path: str, what: str) -> dict:
    import torch

    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec: {what} not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise SpecError(f"spec: {what} {p} is not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise SpecError(f"spec: {what} {p} does not hold a state dict")
    return obj


def load_pretrained_backbone(model, path: str) -> int:
    """Load encoder weights (keys with or without a ``segformer.``/``backbone.`` prefix)."""
    state = _state_dict_from_file(path, "model.backbone.pretrained_backbone_path")
    target = model.segformer.state_dict()
    picked = {}
    for key, value in state.items():
        for prefix in ("segformer.", "backbone.", "encoder.", "model.segformer.", ""):
            if key.startswith(prefix):
                k = key[len(prefix):]
                if k in target and tuple(target[k].shape) == tuple(value.shape):
                    picked[k] = value
                    break
    if not picked:
        raise SpecError(f"spec: model.backbone.pretrained_backbone_path {path} has no weights matching the "
                        f"encoder")
    model.segformer.load_state_dict(picked, strict=False)
    return len(picked)


def load_pretrained_model(model, path: str) -> int:
    """Load whole-model weights (shape-mismatched entries, e.g. another num_classes, are skipped)."""
    state = _state_dict_from_file(path, "train.pretrained_model_path")
    target = model.state_dict()
    picked = {k: v for k, v in state.items() if k in target and tuple(target[k].shape) == tuple(v.shape)}
    if not picked:
        raise SpecError(f"spec: train.pretrained_model_path {path} has no weights matching the model")
    model.load_state_dict(picked, strict=False)
    return len(picked)


def forward_logits(model, x, size, align_corners: bool):
    """Class logits upsampled to ``size`` (H, W)."""
    import torch.nn.functional as F

    logits = model(pixel_values=x).logits
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=align_corners)
    return logits
