"""BuildConfig: everything ``edgekd build`` needs, from CLI options or a YAML file (unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.registry import IMPORTANCES, LOSSES, Registry

EXAMPLE_FACTORY = "edgekd.models.example_teacher:example_teacher"


class Strict(BaseModel):
    # Unknown keys and non-finite numbers (nan, inf) are errors everywhere in a build config.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def registered(registry: Registry, name: str) -> str:
    """``name`` if ``registry`` knows it (checked when the config is read, before any stage runs)."""
    if name not in registry.names():
        raise ValueError(f"unknown {registry.item} '{name[:60]}'; known: {', '.join(registry.names())}")
    return name


class TeacherConfig(Strict):
    factory: str = Field(default=EXAMPLE_FACTORY, description="'module:function' returning the nn.Module")
    weights: Path | None = Field(default=None, description="state-dict file; None = the bundled teacher")


class PruneConfig(Strict):
    importance: str = Field(
        default="l2",
        description="channel importance criterion (l1, l2, groupnorm, taylor, bnscale); l2 recovered better than l1 "
        "after the same fine-tune on the bundled example (benchmarks/results/gap_diagnosis.md)",
    )
    margin: float = Field(default=0.05, ge=0, lt=1, description="aim this fraction under the budget")
    ignored_layers: list[str] = Field(default_factory=list, description="module paths never pruned")
    max_ratio: float = Field(default=0.9, gt=0, lt=1)
    refine: bool = Field(
        default=False,
        description="latency-aware per-layer refinement after the uniform ratio search; off by default: its "
        "calibration-KL proxy scores pruned networks before any fine-tuning and picked plans that recovered far "
        "worse than the uniform plan at equal latency (benchmarks/results/gap_diagnosis.md)",
    )

    @field_validator("importance")
    @classmethod
    def _known_importance(cls, value: str) -> str:
        return registered(IMPORTANCES, value)


class ExtraTeacherConfig(Strict):
    """A further teacher for multi-teacher KD: a state dict for ``factory``, or an edgekd student file."""

    weights: Path = Field(description="state-dict file, or a student.pt written by edgekd (pruned)")
    factory: str = Field(default=EXAMPLE_FACTORY, description="'module:function' the weights fit")


class AugmentConfig(Strict):
    """Augmentation of distillation batches (all off by default).

    With any of it on, the teacher runs on each augmented batch (its outputs cannot be cached): one
    extra teacher forward pass per step, instead of one pass over the training set before training.
    """

    flip: bool = Field(default=False, description="random horizontal flip")
    random_resized_crop: float | None = Field(
        default=None, gt=0, le=1, description="random crop of at least this area fraction, resized back"
    )
    color_jitter: float = Field(default=0.0, ge=0, le=1, description="random brightness/contrast of +- this")
    mixup: float = Field(default=0.0, ge=0, description="mixup Beta(a, a); 0 = off")
    cutmix: float = Field(default=0.0, ge=0, description="cutmix Beta(a, a); 0 = off (with mixup: one per batch)")

    @property
    def enabled(self) -> bool:
        return bool(self.flip or self.random_resized_crop or self.color_jitter or self.mixup or self.cutmix)


class DistillConfig(Strict):
    """Distillation: losses and their weights, the schedule, sweeps and the teacher-assistant chain.

    ``total = Σ losses[name] · loss_name + weight_ce · CE``; ``kd`` itself is
    ``alpha · T² · KL + (1 - alpha) · CE``.
    """

    epochs: int = Field(default=1, gt=0)
    batch_size: int = Field(default=128, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    warmup_epochs: float = Field(default=0.1, ge=0, description="linear warm-up, then cosine decay")
    patience: int = Field(default=3, gt=0, description="stop after this many epochs without a better val accuracy")
    temperature: float = Field(default=4.0, gt=0)
    alpha: float = Field(default=0.7, ge=0, le=1)
    losses: dict[str, float] = Field(default_factory=lambda: {"kd": 1.0}, description="loss name -> weight")
    weight_ce: float = Field(default=0.0, ge=0, description="weight of plain cross-entropy on the labels")
    loss_options: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-loss arguments")
    hint_layers: list[tuple[str, str]] = Field(
        default_factory=list, description="[teacher_path, student_path] pairs; empty = paired by relative depth"
    )
    auto_pairs: int = Field(default=1, gt=0, description="layer pairs chosen automatically when hint_layers empty")
    teachers: list[ExtraTeacherConfig] = Field(default_factory=list, description="extra teachers (multi-teacher)")
    multi_mode: Literal["mean", "confidence"] = "mean"
    assistant: Literal["auto"] | float | None = Field(
        default=None, description="teacher-assistant chain: 'auto' (geometric-mean size) or the TA's prune ratio"
    )
    max_train_samples: int | None = Field(default=None, gt=0, description="a seeded class-stratified sample")
    augment: AugmentConfig = AugmentConfig()
    workers: int | None = Field(default=None, ge=0, description="data-loader workers; None = 2 for image folders")
    use_unlabeled: bool = Field(default=True, description="distil on unlabeled/transfer images too")
    seed: int = 0
    checkpoint_dir: Path | None = Field(default=None, description="write a checkpoint each epoch here")
    resume: bool = Field(default=False, description="continue from checkpoint_dir/last.pt")

    @field_validator("losses")
    @classmethod
    def _weights_non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            registered(LOSSES, name)
        bad = {k: v for k, v in value.items() if not v >= 0}
        if bad:
            raise ValueError(f"loss weights must be >= 0 (got {bad})")
        return value

    @field_validator("assistant")
    @classmethod
    def _assistant_ratio(cls, value: str | float | None) -> str | float | None:
        if isinstance(value, float) and not 0 < value < 1:
            raise ValueError(f"an assistant prune ratio must be in (0, 1) (got {value})")
        return value


class ExportConfig(Strict):
    calibration_samples: int = Field(default=256, gt=0)
    parity_samples: int | None = Field(default=None, gt=0, description="test samples; None = all")
    arm_parity_samples: int = Field(
        default=100, ge=0, description="test samples run under Arm emulation for Arm targets (~1 s each); 0 = off"
    )


class QuantizationConfig(Strict):
    """How int8 artifacts are made: post-training quantisation (``ptq``) or KD with fake quantisation (``qat``).

    In ``qat`` mode every int8 export of the profile comes from a further KD run (the distilled student,
    the same teacher logits, ``distill.temperature``/``alpha``/``batch_size``/``max_train_samples``/``seed``)
    with fake quantisation on that export's deploy path: PT2E for ``tflite``, NNCF for ``openvino``/``onnx``.
    """

    mode: Literal["ptq", "qat"] = Field(default="ptq", description="ptq: exporter calibrates; qat: KD + fake quant")
    epochs: int = Field(default=1, gt=0, description="qat: KD epochs with fake quantisation")
    lr: float = Field(default=2e-4, gt=0, description="qat: AdamW learning rate (warm-up 10 %, then cosine)")
    calibration_samples: int | None = Field(
        default=None, gt=0, description="int8 calibration images (PTQ and QAT's initial ranges); None = export's"
    )
    overflow_fix: bool = Field(default=False, description="qat, NNCF paths: 7-bit weights for x86 CPUs without VNNI")
    nncf_kernels: Literal["compiled", "reference"] = Field(
        default="compiled", description="qat, NNCF paths: C++ fake-quantise kernels (built once) or pure torch"
    )


class BenchConfig(Strict):
    warmup: int = Field(default=10, ge=0)
    runs: int = Field(default=50, gt=0)
    threads: int | None = Field(default=None, gt=0, description="None = the profile's budget threads")


class GateConfig(Strict):
    max_accuracy_drop: float | None = Field(default=None, ge=0, le=100, description="points; None = profile")


class BuildConfig(Strict):
    """One build: a teacher, a dataset, a target and a budget."""

    target: str = "cortex-a76"
    budget_ms: float | None = Field(default=None, gt=0, description="None = the profile's budget")
    data: Path | None = Field(default=None, description=".npz, image folder or .csv index; None = bundled example")
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig, description="how images become input")
    transfer: Path | None = Field(default=None, description="folder of unlabeled images distilled from the teacher")
    device: str = Field(
        default="cpu", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto | cpu | cuda[:N] for torch work"
    )
    out_dir: Path | None = Field(default=None, description="None = build/<target>")
    teacher: TeacherConfig = TeacherConfig()
    prune: PruneConfig = PruneConfig()
    distill: DistillConfig = DistillConfig()
    quantization: QuantizationConfig = QuantizationConfig()
    export: ExportConfig = ExportConfig()
    bench: BenchConfig = BenchConfig()
    gate: GateConfig = GateConfig()

    @model_validator(mode="after")
    def _one_calibration_count(self) -> BuildConfig:
        # quantization.calibration_samples, when given, is the count for PTQ exports too (one number, not two)
        n = self.quantization.calibration_samples
        if n is not None and self.export.calibration_samples != n:
            self.export = self.export.model_copy(update={"calibration_samples": n})
        return self
