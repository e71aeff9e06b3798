"""The experiment spec: pydantic v2 models mirroring TAO SegFormer's config dataclasses.

The shape is TAO's (``model``, ``dataset.segment``, ``train``, ``evaluate``, ``inference``,
``export``, ``gen_trt_engine``, ``quantize``, ``wandb`` and the top-level ``model_name``,
``encryption_key``, ``results_dir``): TAO's own ``spec_template_*.yaml`` validate verbatim. Every
model forbids unknown keys, so a typo is an error naming the key, not a silently ignored setting.

The *defaults* are this trainer's CPU-sized ones (backbone ``mit_nano``, 64 px images, 3 epochs,
4 classes): they are the single source of the skill folder's spec templates and of the ``default``
blocks of the generated TAO-format schema (see :mod:`segformer_trainer.schema`). Field metadata
(``minimum``, ``maximum``, ``automl_enabled``, ``math_cond``, ``popular``, schema ``type``) lives in
``json_schema_extra["tao"]`` and is what the schema generator reads.

``"???"`` is OmegaConf's "mandatory value missing" marker. It is kept as-is in string fields and
checked when the value is needed (``dataset.segment.root_dir``, ``evaluate.checkpoint``, ...); in
any non-string field it is an error at load time.

This module imports only pydantic and PyYAML (never torch).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from .errors import SpecError

MISSING = "???"
INF = math.inf

# TAO's backbone enum (schemas/train.schema.json) and the MiT sizes this trainer builds for them.
TAO_BACKBONES = (
    "fan_tiny_8_p4_hybrid",
    "fan_large_16_p4_hybrid",
    "fan_small_12_p4_hybrid",
    "fan_base_16_p4_hybrid",
    "vit_large_nvdinov2",
    "vit_giant_nvdinov2",
    "vit_small_dinov3",
    "vit_small_plus_dinov3",
    "vit_base_dinov3",
    "vit_large_dinov3",
    "vit_huge_plus_dinov3",
    "vit_base_nvclip_16_siglip",
    "vit_huge_nvclip_14_siglip",
)
MIT_BACKBONES = ("mit_nano", "mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5")
BackboneType = Literal[
    "fan_tiny_8_p4_hybrid",
    "fan_large_16_p4_hybrid",
    "fan_small_12_p4_hybrid",
    "fan_base_16_p4_hybrid",
    "vit_large_nvdinov2",
    "vit_giant_nvdinov2",
    "vit_small_dinov3",
    "vit_small_plus_dinov3",
    "vit_base_dinov3",
    "vit_large_dinov3",
    "vit_huge_plus_dinov3",
    "vit_base_nvclip_16_siglip",
    "vit_huge_nvclip_14_siglip",
    "mit_nano",
    "mit_b0",
    "mit_b1",
    "mit_b2",
    "mit_b3",
    "mit_b4",
    "mit_b5",
]


def F(
    default: Any = None,
    description: str | None = None,
    *,
    title: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    automl: bool | None = None,
    math_cond: str | None = None,
    popular: bool | None = None,
    schema_type: str | None = None,
    pattern: str | None = None,
    schema_required: bool | None = None,
) -> Any:
    """A pydantic Field carrying TAO schema metadata; bounds are also enforced."""
    tao: dict[str, Any] = {}
    for key, value in (
        ("description", description),
        ("title", title),
        ("minimum", minimum),
        ("maximum", maximum),
        ("automl_enabled", automl),
        ("math_cond", math_cond),
        ("popular", popular),
        ("type", schema_type),
        ("pattern", pattern),
        ("required", schema_required),
    ):
        if value is not None:
            tao[key] = value
    kwargs: dict[str, Any] = {"json_schema_extra": {"tao": tao}}
    if minimum is not None and math.isfinite(minimum):
        kwargs["ge"] = minimum
    if maximum is not None and math.isfinite(maximum):
        kwargs["le"] = maximum
    if pattern is not None:
        kwargs["pattern"] = pattern
    if isinstance(default, (list, dict)):
        value = default
        kwargs["default_factory"] = lambda: _copy(value)
    else:
        kwargs["default"] = default
    return Field(**kwargs)


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def S(model: type[BaseModel], description: str | None = None, *, automl: bool | None = False,
      title: str | None = None, schema_required: bool | None = None) -> Any:
    """A nested section (schema type ``collection``)."""
    tao: dict[str, Any] = {"automl_enabled": automl} if automl is not None else {}
    if description:
        tao["description"] = description
    if title:
        tao["title"] = title
    if schema_required:
        tao["required"] = True
    return Field(default_factory=model, json_schema_extra={"tao": tao})


class Strict(BaseModel):
    """Base: unknown keys are errors; assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, validate_default=True)


# --------------------------------------------------------------------------- wandb
class WandbConfig(Strict):
    enable: bool = F(False)
    project: str = F("TAO Toolkit")
    entity: str = F("")
    group: str = F("")
    tags: list[str] = F(["tao-toolkit"], automl=False)
    reinit: bool = F(False)
    sync_tensorboard: bool = F(False)
    save_code: bool = F(False)
    name: str = F("TAO Toolkit Training")
    run_id: str = F("")


# --------------------------------------------------------------------------- model
class BackboneConfig(Strict):
    type: BackboneType = F(
        "mit_nano",
        "Backbone architecture. TAO's FAN/ViT names are accepted and built as MiT (SegFormer) "
        "encoders of a similar size; mit_nano is a tiny CPU-sized MiT.",
        title="Backbone architectures",
    )
    feat_downsample: bool = F(False, "Feature downsample for fan base backbone (ignored: MiT backbones)",
                              title="Feature downsample")
    pretrained_backbone_path: str = F("", "Path to the pretrained model")
    freeze_backbone: bool = F(False, "Flag to freeze backbone", automl=True)


class DecoderParams(Strict):
    embed_dim: int = F(64, "Decoder (all-MLP head) hidden size", minimum=1)


class DecodeHeadConfig(Strict):
    in_channels: list[int] = F([16, 32, 64, 128], "number of input channels to decoder "
                               "(informative: the backbone's hidden sizes are used)", automl=False)
    in_index: list[int] = F([0, 1, 2, 3], "Input index for the head", title="Input Index", automl=False)
    feature_strides: list[int] = F([4, 8, 16, 32], "Feature strides for the head", title="Feature Strides",
                                   automl=False)
    align_corners: bool = F(False, "Align corners for the head", title="Align Corners")
    decoder_params: DecoderParams = S(DecoderParams, "Decoder parameters for the head",
                                      title="Decoder Parameters")


class ModelConfig(Strict):
    backbone: BackboneConfig = S(BackboneConfig)
    decode_head: DecodeHeadConfig = S(DecodeHeadConfig)


# --------------------------------------------------------------------------- dataset
class RandomFlip(Strict):
    vflip_probability: float = F(0.5, "Vertical Flip probability", minimum=0.0, maximum=1.0, automl=True)
    hflip_probability: float = F(0.5, "Horizontal Flip probability", minimum=0.0, maximum=1.0, automl=True)
    enable: bool = F(True, "Flag to enable augmentation", automl=True)


class RandomRotate(Strict):
    rotate_probability: float = F(0.5, "Random Rotate probability", minimum=0.0, maximum=1.0, automl=True)
    angle_list: list[int | float] = F([90, 180, 270], "Random rotate angle probability", automl=False)
    enable: bool = F(True, "Flag to enable augmentation", automl=True)


class RandomColor(Strict):
    brightness: float = F(0.3, "Random Color Brightness (torchvision ColorJitter range)",
                          minimum=0.0, maximum=2.0, automl=True)
    contrast: float = F(0.3, "Random Color Contrast (torchvision ColorJitter range)",
                        minimum=0.0, maximum=2.0, automl=True)
    saturation: float = F(0.3, "Random Color Saturation (torchvision ColorJitter range)",
                          minimum=0.0, maximum=2.0, automl=True)
    hue: float = F(0.3, "Random Color Hue (torchvision ColorJitter requires 0 <= hue <= 0.5)",
                   minimum=0.0, maximum=0.5, automl=True)
    enable: bool = F(True, "Flag to enable Random Color", automl=True)
    color_probability: float = F(0.5, "Random Color Probability", minimum=0.0, maximum=1.0, automl=True)


class ScaleRandomCrop(Strict):
    scale_range: list[int | float] = F([1, 1.2], "Random Scale range", automl=False)
    enable: bool = F(True, "Flag to enable Random Crop with Scale", automl=True)

    @field_validator("scale_range")
    @classmethod
    def _range(cls, v: list[Any]) -> list[Any]:
        if len(v) != 2 or not (0 < v[0] <= v[1]):
            raise ValueError("scale_range must be [low, high] with 0 < low <= high")
        return v


class AugmentationConfig(Strict):
    random_flip: RandomFlip = S(RandomFlip)
    random_rotate: RandomRotate = S(RandomRotate)
    random_color: RandomColor = S(RandomColor)
    with_scale_random_crop: ScaleRandomCrop = S(ScaleRandomCrop)
    with_random_blur: bool = F(True, "Flag to enable with_random_blur")
    with_random_crop: bool = F(True, "Flag to enable with_random_crop")
    mean: list[float] = F([0.5, 0.5, 0.5], "Mean for the augmentation", title="Mean", automl=False)
    std: list[float] = F([0.5, 0.5, 0.5], "Standard deviation for the augmentation",
                         title="Standard Deviation", automl=False)

    @field_validator("mean", "std")
    @classmethod
    def _three(cls, v: list[float]) -> list[float]:
        if len(v) != 3:
            raise ValueError("needs 3 values (R, G, B)")
        return v

    @field_validator("std")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(s <= 0 for s in v):
            raise ValueError("std values must be > 0")
        return v


class PaletteEntry(Strict):
    label_id: int
    mapping_class: str = ""
    rgb: list[int | float] = Field(default_factory=lambda: [0, 0, 0])
    seg_class: str = ""


DEFAULT_PALETTE = [
    {"label_id": 0, "mapping_class": "background", "rgb": [0, 0, 0], "seg_class": "background"},
    {"label_id": 1, "mapping_class": "stripes", "rgb": [255, 0, 0], "seg_class": "stripes"},
    {"label_id": 2, "mapping_class": "checker", "rgb": [0, 255, 0], "seg_class": "checker"},
    {"label_id": 3, "mapping_class": "dots", "rgb": [0, 0, 255], "seg_class": "dots"},
]


class QuantCalibration(Strict):
    images_dir: str = F("", "Path to images directory for quantization calibration", title="images directory")


class SegmentDatasetConfig(Strict):
    root_dir: str = F(MISSING, "Path to root directory for dataset")
    dataset: Literal["SFDataset"] = F("SFDataset", "dataset class")
    num_classes: int = F(4, "The number of classes in the training data", minimum=2, maximum=INF,
                         math_cond=">0")
    img_size: int = F(64, "The input image size", minimum=1)
    batch_size: int = F(8, "Batch size", title="Batch Size", minimum=1, maximum=INF)
    workers: int = F(0, "Workers", title="Workers", minimum=0, maximum=INF)
    shuffle: bool = F(True, "Shuffle dataloader")
    train_split: str = F("train", "Train split folder name")
    validation_split: str = F("val", "Validation split folder name")
    test_split: str = F("val", "Test split folder name")
    predict_split: str = F("test", "Predict split folder name")
    augmentation: AugmentationConfig = S(AugmentationConfig)
    label_transform: Literal["norm", "None"] = F(
        "None",
        "label transform: 'norm' divides mask values by 255 (binary 0/255 masks, TAO's behaviour); "
        "the string 'None' keeps class ids as they are",
    )
    palette: list[PaletteEntry] = F(
        DEFAULT_PALETTE,
        "Palette, be careful of label_transform, if norm then RGB value from 0~1, else 0~255",
        title="Palette",
        automl=False,
    )
    quant_calibration_dataset: QuantCalibration = S(
        QuantCalibration, "Configurable parameters for the quantization calibration dataset."
    )

    @field_validator("label_transform", mode="before")
    @classmethod
    def _none_string(cls, v: Any) -> Any:
        # YAML `null` means "no transform": keep TAO's string form "None".
        return "None" if v is None else v


class DatasetConfig(Strict):
    segment: SegmentDatasetConfig = S(SegmentDatasetConfig)


# --------------------------------------------------------------------------- train
class CudnnConfig(Strict):
    benchmark: bool = F(False)
    deterministic: bool = F(True)


class OptimConfig(Strict):
    monitor_name: str = F("val_loss", "Monitor Name")
    optim: Literal["adamw", "adam", "sgd"] = F("adamw", "Optimizer")
    lr: float = F(1e-3, "Optimizer learning rate", minimum=0.0, maximum=INF, automl=True)
    policy: Literal["linear", "step"] = F(
        "linear",
        "Optimizer policy (as TAO's): linear warms up over 1% of the steps, then decays the lr linearly "
        "per step to ~0 at train.num_epochs; step multiplies it by 0.1 every train.num_epochs // 3 "
        "epochs. A resumed run restores the scheduler state from the checkpoint",
    )
    momentum: float = F(0.9, "The momentum (beta1) for the AdamW optimizer.", title="momentum - AdamW (beta1)",
                        minimum=0.0, maximum=1.0, automl=True)
    weight_decay: float = F(0.01, "The weight decay coefficient.", title="weight decay",
                            minimum=0.0, maximum=1.0, automl=True)


class SegmentLossConfig(Strict):
    loss: Literal["ce"] = F("ce", "ChangeNet Segment loss")
    weights: list[float] = F(
        [0.5, 0.5, 0.5, 0.8, 1.0],
        "Multi-scale Segment loss weight (this trainer: used as per-class CE weights only when the "
        "list has exactly num_classes entries, otherwise ignored)",
        automl=False,
    )


class TensorboardConfig(Strict):
    enabled: bool = F(False, "Flag to enable tensorboard")
    infrequent_logging_frequency: int = F(2, "infrequent_logging_frequency", minimum=0, maximum=INF)


class TrainConfig(Strict):
    num_gpus: int = F(1, "The number of GPUs to run the train job.", title="Number of GPUs", minimum=1,
                      popular=True)
    gpu_ids: list[int] = F([0], "\n        List of GPU IDs to run the training on. The length of this list\n"
                           "        must be equal to the number of gpus in train.num_gpus.",
                           title="GPU IDs", automl=False, popular=True)
    num_nodes: int = F(1, "Number of nodes to run the training on. If > 1, then multi-node is enabled.",
                       title="Number of nodes", minimum=1, popular=True)
    seed: int = F(1234, "The seed for the initializer in PyTorch. If < 0, disable fixed seed.",
                  title="Seed for randomization", minimum=-1, maximum=INF)
    cudnn: CudnnConfig = S(CudnnConfig)
    num_epochs: int = F(3, "Number of epochs to run the training.", title="Number of epochs", minimum=1,
                        maximum=INF, popular=True)
    checkpoint_interval: int = F(1, "The interval (in epochs) at which a checkpoint will be saved. Helps "
                                 "resume training.", title="Checkpoint interval", minimum=1, popular=True)
    checkpoint_interval_unit: Literal["epoch", "step"] = F("epoch", "The unit of the checkpoint interval.",
                                                            title="Checkpoint interval unit")
    validation_interval: int = F(1, "\n        The interval (in epochs) at which a evaluation\n"
                                 "        will be triggered on the validation dataset.",
                                 title="Validation interval", minimum=1, popular=True)
    resume_training_checkpoint_path: str = F("", "Path to the checkpoint to resume training from.",
                                             title="Resume checkpoint path")
    results_dir: str = F("", "\n        Path to where all the assets generated from a task are stored.\n        ",
                         title="Results directory")
    optim: OptimConfig = S(OptimConfig)
    pretrained_model_path: str = F("", "Pretrained model path", title="pretrained model path")
    segment: SegmentLossConfig = S(SegmentLossConfig)
    tensorboard: TensorboardConfig = S(TensorboardConfig)
    use_distributed_sampler: bool = F(False, "Use distributed sampler for multi-GPU training",
                                      title="use_distributed_sampler")
    sync_batchnorm: bool = F(False, "Enable synchronized batch normalization for multi-GPU training",
                             title="sync_batchnorm")


# --------------------------------------------------------------------------- other actions
def _gpu_ids_desc(action: str) -> str:
    return (f"\n        List of GPU IDs to run the {action} on. The length of this list\n"
            f"        must be equal to the number of gpus in {action}.num_gpus.")


def _checkpoint_action_config(name: str, action: str) -> type[Strict]:
    """Evaluate and inference take the same fields; only the words in their descriptions differ.

    ``create_model`` keeps the field order, so the generated schema stays TAO's.
    """
    return create_model(
        name, __base__=Strict,
        num_gpus=(int, F(1, f"The number of GPUs to run the {action} job.", title="Number of GPUs",
                         minimum=1, popular=True)),
        gpu_ids=(list[int], F([0], _gpu_ids_desc(action), title="GPU IDs", automl=False,
                              popular=True)),
        num_nodes=(int, F(1, f"Number of nodes to run the {action} on. If > 1, then multi-node is "
                             "enabled.", title="Number of nodes", minimum=1, popular=True)),
        checkpoint=(str, F(MISSING, "Path to checkpoint file", title="Path to checkpoint file")),
        trt_engine=(str, F("", f"Path to the TensorRT engine to be used for {action}.\n"
                               "                    This only works with :code:`tao-deploy`.",
                           title="TensorRT Engine")),
        results_dir=(str, F("", "\n        Path to where all the assets generated from a task are "
                                "stored.\n        ", title="Results directory")),
        batch_size=(int, F(8, "Batch size", title="Batch Size", minimum=1, maximum=INF)),
        vis_after_n_batches=(int, F(1, "Visualize evaluation segmentation results after n batches",
                                    minimum=1, maximum=INF)),
    )


EvaluateConfig = _checkpoint_action_config("EvaluateConfig", "evaluation")
InferenceConfig = _checkpoint_action_config("InferenceConfig", "inference")


class ExportConfig(Strict):
    results_dir: str = F("", "\n        Path to where all the assets generated from a task are stored.\n        ",
                         title="Results directory")
    gpu_id: int = F(0, "The index of the GPU to build the TensorRT engine.", title="GPU ID")
    checkpoint: str = F(MISSING, "Path to the checkpoint file to run export.", title="checkpoint")
    onnx_file: str = F(MISSING, "\n        Path to the onnx model file.\n        ", title="onnx file")
    on_cpu: bool = F(False, "Flag to export CPU compatible model.", title="on cpu")
    input_channel: Literal[1, 3] = F(3, "Number of channels in the input Tensor.", title="input channel",
                                     minimum=1, schema_type="ordered_int")
    input_width: int = F(64, "Width of the input image tensor.", title="input width", minimum=32)
    input_height: int = F(64, "Height of the input image tensor.", title="input height", minimum=32)
    opset_version: int = F(17, "Operator set version of the ONNX model used to generate\n"
                           "                    the TensorRT engine.", title="opset version", minimum=1)
    batch_size: int = F(-1, "The batch size of the input Tensor for the engine.\n                    "
                        "A value of :code:`-1` implies dynamic tensor shapes.", title="batch size",
                        minimum=-1)
    verbose: bool = F(False, "Flag to enable verbose TensorRT logging.", title="verbose")
    format: Literal["onnx", "xdl"] = F("onnx", "File format to export to.", title="export format")
    serialize_nvdsinfer: bool = F(False, "Flag to enable serializing the required configs for integrating "
                                  "with DeepStream.", title="Serialize DeepStream config.")


class TrtCalibration(Strict):
    cal_image_dir: list[str] = F([], "List of image directories to be used for calibration", automl=False)
    cal_cache_file: str = F("", "Path to a PTQ calibration cache file")
    cal_batch_size: int = F(1, "Batch size per batch during calibration", minimum=1, popular=True)
    cal_batches: int = F(1, "Number of batches to calibrate the model", minimum=1, popular=True)


class TrtConfig(Strict):
    data_type: Literal["FP32", "FP16", "INT8"] = F("FP32", "The precision to be set for building the engine")
    workspace_size: int = F(1024, "The size in megabytes of the workspace TensorRT has to run its "
                            "optimization tactics", minimum=0)
    min_batch_size: int = F(1, "The minimum batch size in the optimization profile", minimum=1, popular=True)
    opt_batch_size: int = F(1, "The optimal batch size in the optimization profile", minimum=1, popular=True)
    max_batch_size: int = F(1, "The maximum batch size in the optimization profile", minimum=1, popular=True)
    layers_precision: list[str] = F([], "The list to specify layer precision", automl=False)
    calibration: TrtCalibration = S(TrtCalibration)


class GenTrtEngineConfig(Strict):
    results_dir: str = F("", "Path to where all the assets generated from a task are stored.")
    gpu_id: int = F(0, "The index of the GPU to build the TensorRT engine.", minimum=0, popular=True)
    onnx_file: str = F(MISSING, "Path to the ONNX model file.")
    trt_engine: str = F("", "Path where the generated TensorRT engine from gen_trt_engine is stored.")
    input_channel: Literal[1, 3] = F(3, "Number of channels in the input Tensor.", minimum=1,
                                     schema_type="ordered_int")
    input_width: int = F(64, "Width of the input image tensor.", minimum=32)
    input_height: int = F(64, "Height of the input image tensor.", minimum=32)
    opset_version: int = F(17, "Operator set version of the ONNX model.", minimum=1)
    batch_size: int = F(-1, "The batch size of the input Tensor for the engine (-1: dynamic).", minimum=-1,
                        popular=True)
    verbose: bool = F(False, "Flag to enable verbose TensorRT logging.")
    tensorrt: TrtConfig = S(TrtConfig)


class QuantizeConfig(Strict):
    backend: Literal["modelopt.pytorch", "torchao", "modelopt.onnx"] = F(
        "torchao", "The quantization backend to use", title="Quantization backend")
    mode: Literal["static_ptq", "weight_only_ptq"] = F("weight_only_ptq", "The quantization mode to use",
                                                       title="Quantization mode")
    algorithm: Literal["minmax", "max", "entropy", "awq_clip", "awq_lite", "awq_full", "rtn_dq"] = F(
        "minmax", "Calibration/optimization algorithm. Used by ModelOpt backends (modelopt.pytorch and "
        "modelopt.onnx). Ignored by torchao backend.", title="Calibration algorithm")
    layers: list[Any] = F([], "List of per-module quantization configurations.", title="Layer quantization configs",
                          automl=False)
    skip_names: list[str] = F([], "List of module/layer names or patterns to exclude from quantization",
                              title="Skip names", automl=False)
    model_path: str = F("", "Path to the model to be quantized. For ONNX backend, path to ONNX file.",
                        title="Model path", schema_required=True)
    results_dir: str = F("", "Path to where all the assets generated from a task are stored.",
                         title="Results directory", schema_required=True)
    backend_kwargs: dict[str, Any] = F({}, "Additional keyword arguments to pass to the backend",
                                       title="Backend kwargs", automl=False)
    device: str = F("cuda", "Device to use for calibration: 'cuda', 'cpu', 'trt' or 'cuda:N'.",
                    title="Calibration device", pattern=r"^(cuda|cpu|trt|cuda:[0-9]+)$")


# --------------------------------------------------------------------------- experiment
class ExperimentConfig(Strict):
    model_name: str = F("", "Name of model if invoking task via :code:`model_agnostic`", title="Model name")
    encryption_key: str = F("", "Key for encrypting model checkpoints", title="Encryption key")
    results_dir: str = F("", "\n        Path to where all the assets generated from a task are stored.\n        ",
                         title="Results directory")
    wandb: WandbConfig = S(WandbConfig)
    model: ModelConfig = S(ModelConfig)
    dataset: DatasetConfig = S(DatasetConfig)
    train: TrainConfig = S(TrainConfig)
    evaluate: EvaluateConfig = S(EvaluateConfig)
    inference: InferenceConfig = S(InferenceConfig)
    export: ExportConfig = S(ExportConfig)
    gen_trt_engine: GenTrtEngineConfig = S(GenTrtEngineConfig)
    quantize: QuantizeConfig = S(QuantizeConfig, "Configurable parameters to run model quantization for a "
                                 "SegFormer experiment.", schema_required=True)

    def redacted(self) -> dict[str, Any]:
        """The config as a plain dict with the encryption key blanked (safe to store or print)."""
        data = self.model_dump(mode="json")
        if data.get("encryption_key"):
            data["encryption_key"] = "<redacted>"
        return data


# Sections of each action's spec template, in TAO's order.
COMMON_SECTIONS = ("model_name", "encryption_key", "results_dir", "wandb", "model", "dataset", "train")
ACTION_SECTIONS = {
    "train": COMMON_SECTIONS + ("quantize",),
    "evaluate": COMMON_SECTIONS + ("evaluate", "quantize"),
    "inference": COMMON_SECTIONS + ("inference", "quantize"),
    "export": COMMON_SECTIONS + ("export", "quantize"),
}


# --------------------------------------------------------------------------- loading
def parse_override(item: str) -> tuple[str, Any]:
    """``a.b.c=value`` -> (``a.b.c``, YAML scalar). A leading ``+``/``++`` (Hydra) is accepted."""
    if "=" not in item:
        raise SpecError(f"spec: override '{item}' is not of the form key=value")
    key, _, raw = item.partition("=")
    key = key.strip().lstrip("+")
    if not key or any(not part for part in key.split(".")):
        raise SpecError(f"spec: override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"spec: cannot set '{key}': '{'.'.join(parts[: i + 1])}' is not a section")
        node = nxt
    node[parts[-1]] = value


def get_dotted(data: Any, key: str) -> Any:
    node = data
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


def read_spec(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"spec: file not found: {p}")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SpecError(f"spec: {p} is not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"spec: {p} must be a YAML mapping, not {type(data).__name__}")
    return data


def _fmt_value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def format_validation_error(exc: ValidationError) -> str:
    """The first problem of a pydantic error as one line naming the dotted key."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        return f"spec: unknown key '{loc}'"
    if "encryption_key" in loc:
        return f"spec: invalid value for '{loc}': {err['msg']}"  # never echo the key
    if isinstance(value, str) and value.strip() == MISSING:
        return f"spec: '{loc}' is mandatory but missing (???)"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"spec: invalid value for '{loc}': {msg} (got {_fmt_value(value)}){more}"


def build_config(data: dict[str, Any]) -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Read the spec, apply ``key=value`` overrides (YAML scalars) and validate."""
    data = read_spec(path)
    for item in overrides:
        key, value = parse_override(item)
        set_dotted(data, key, value)
    return build_config(data)


def require(value: str, key: str) -> str:
    """A string value that the current action needs: not empty, not ``???``."""
    if value is None or str(value).strip() in ("", MISSING):
        raise SpecError(f"spec: '{key}' is mandatory but missing ({'???' if value == MISSING else 'empty'})")
    return value


def action_results_dir(cfg: ExperimentConfig, action: str) -> Path:
    """``<action>.results_dir`` when set, else ``results_dir/<action>`` (TAO's layout)."""
    section = getattr(cfg, action, None)
    own = getattr(section, "results_dir", "") if section is not None else ""
    if own and own != MISSING:
        return Path(own)
    root = cfg.results_dir
    if not root or root == MISSING:
        raise SpecError(f"spec: 'results_dir' is mandatory but missing (or set '{action}.results_dir')")
    return Path(root) / action


def default_spec(action: str = "train") -> dict[str, Any]:
    """This trainer's default spec for ``action`` (the skill template), sections in TAO's order."""
    full = ExperimentConfig().model_dump(mode="json")
    return {key: full[key] for key in ACTION_SECTIONS[action]}
