"""BuildConfig: everything ``edgekd build`` needs, from CLI options or a YAML file (unknown keys rejected)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_FACTORY = "edgekd.models.example_teacher:example_teacher"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TeacherConfig(Strict):
    factory: str = Field(default=EXAMPLE_FACTORY, description="'module:function' returning the nn.Module")
    weights: Path | None = Field(default=None, description="state-dict file; None = the bundled teacher")


class PruneConfig(Strict):
    importance: str = "l1"
    margin: float = Field(default=0.05, ge=0, lt=1, description="aim this fraction under the budget")
    ignored_layers: list[str] = Field(default_factory=list, description="module paths never pruned")
    max_ratio: float = Field(default=0.9, gt=0, lt=1)


class DistillConfig(Strict):
    epochs: int = Field(default=1, gt=0)
    batch_size: int = Field(default=128, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    temperature: float = Field(default=4.0, gt=0)
    alpha: float = Field(default=0.7, ge=0, le=1)
    max_train_samples: int | None = Field(default=None, gt=0)
    seed: int = 0


class ExportConfig(Strict):
    calibration_samples: int = Field(default=256, gt=0)
    parity_samples: int | None = Field(default=None, gt=0, description="test samples; None = all")


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
    data: Path | None = Field(default=None, description=".npz or image folder; None = bundled example")
    out_dir: Path | None = Field(default=None, description="None = build/<target>")
    teacher: TeacherConfig = TeacherConfig()
    prune: PruneConfig = PruneConfig()
    distill: DistillConfig = DistillConfig()
    export: ExportConfig = ExportConfig()
    bench: BenchConfig = BenchConfig()
    gate: GateConfig = GateConfig()
