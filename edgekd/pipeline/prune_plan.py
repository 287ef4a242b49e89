"""What ``edgekd prune`` does, as library calls: prune to a budget, or sweep pruning ratios.

Inputs are resolved exactly as ``edgekd build`` resolves them (:func:`edgekd.pipeline.inputs.resolve`);
teacher logits for fine-tuning come from the same stage cache as builds (``<out>/.stages``).
Outputs are written atomically: ``student.pt`` + ``prune.json`` (budget), ``sweep.json`` (sweep).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgekd.bench.latency_model import LatencyModel, count_macs, trace_ops
from edgekd.core.atomic import atomic_write_text
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.distill.prune_sweep import SweepSettings, run_sweep
from edgekd.pipeline.inputs import BuildInputs
from edgekd.prune.pruner import PruneSettings, calibration_batches

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneJob:
    """Options of ``edgekd prune`` beyond the build inputs."""

    importance: str | None = None
    refine: bool | None = None  # None = the build config's prune.refine
    measure: bool = True


def prune_settings(inputs: BuildInputs, job: PruneJob) -> PruneSettings:
    """Settings from the config; gradient-based criteria (taylor) get calibration batches of training data."""
    cfg = inputs.config.prune
    settings = PruneSettings(job.importance or cfg.importance, inputs.profile.prune.round_to,
                             tuple(cfg.ignored_layers), cfg.max_ratio)  # fmt: skip
    if settings.needs_gradients:
        settings = dataclasses.replace(settings, calibration=calibration_batches(inputs.data))
    return settings


def _predictor(inputs: BuildInputs) -> tuple[LatencyModel, Callable[[nn.Module], float]]:
    model = LatencyModel.for_target(inputs.profile)
    shape = (1, *inputs.data.input_shape)
    precision, threads = inputs.profile.primary.precision, inputs.profile.budget.threads

    def predict(m: nn.Module) -> float:
        return model.predict_ms(trace_ops(m, shape), precision, threads)

    return model, predict


def with_job(inputs: BuildInputs, job: PruneJob) -> BuildInputs:
    """``inputs`` with the job's command-line choices folded into the build config's prune section."""
    update: dict = {} if job.refine is None else {"refine": job.refine}
    if job.importance is not None:
        update["importance"] = job.importance
    config = inputs.config.model_copy(update={"prune": inputs.config.prune.model_copy(update=update)})
    return dataclasses.replace(inputs, config=config)


def prune_to_budget(
    inputs: BuildInputs, out_dir: Path, job: PruneJob, progress: ProgressReporter = NULL_PROGRESS
) -> dict:
    """The build's own prune stage (same stage, same cache key, same plan), then ``student.pt`` + ``prune.json``.

    Raises BudgetUnreachableError (exit 1) with the nearest achievable latency when nothing fits.
    """
    from edgekd.models.loading import load_student
    from edgekd.pipeline.cache import StageCache
    from edgekd.pipeline.stages import StageContext, copy_artifact, prune_stage

    inputs = with_job(inputs, job)
    ctx = StageContext(inputs, StageCache(out_dir / ".stages"), progress)
    student_file, record = prune_stage(ctx)
    student = load_student(student_file, inputs.config.teacher.factory)
    measured = record.get("measured_ms") is not None
    record = {**record, "budget_ms": inputs.budget_ms, "target": inputs.profile.name,
              "evidence": "measured-host" if measured else "predicted",
              "params": int(sum(p.numel() for p in student.parameters())),
              "macs": count_macs(trace_ops(student, (1, *inputs.data.input_shape)))}  # fmt: skip
    copy_artifact(student_file, out_dir, "student.pt")
    atomic_write_text(out_dir / "prune.json", json.dumps(record, indent=2) + "\n")
    return record


def sweep(
    inputs: BuildInputs,
    out_dir: Path,
    job: PruneJob,
    settings: SweepSettings,
    progress: ProgressReporter = NULL_PROGRESS,
) -> dict:
    """Run the capacity sweep (see :mod:`edgekd.distill.prune_sweep`) and write ``<out_dir>/sweep.json``."""
    from edgekd.pipeline.cache import StageCache
    from edgekd.pipeline.stages import StageContext, host_measure, teacher_logits

    ctx = StageContext(inputs, StageCache(out_dir / ".stages"), progress)
    soft = teacher_logits(ctx, "train", settings.train_samples)
    latency_model, predict = _predictor(inputs)
    measure = host_measure(ctx) if job.measure and inputs.profile.measured_locally else None
    torch.manual_seed(settings.seed)
    data = run_sweep(
        inputs.teacher, inputs.data, soft, predict, measure, prune_settings(inputs, job), settings, progress
    )
    data["settings"].update({"target": inputs.profile.name, "precision": inputs.profile.primary.precision,
                             "threads": inputs.profile.budget.threads, "latency_model": latency_model.describe(),
                             "measured_evidence": "measured-host" if measure else None})  # fmt: skip
    atomic_write_text(out_dir / "sweep.json", json.dumps(data, indent=2) + "\n")
    return data
