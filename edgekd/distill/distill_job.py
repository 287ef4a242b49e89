"""``edgekd distill`` as a library call: one student, the configured losses, an optional sweep and TA chain.

Steps: load teacher(s), data and the student (an edgekd student file, or the teacher pruned by a
ratio); validate the whole loss setup before any heavy work; cache the teachers' outputs on the
training split once; with an assistant, distil teacher → assistant, then assistant → student; with a
sweep, train every grid point on a short schedule, pick the best by validation accuracy and train it
fully. Writes ``student.pt``, ``distill.json`` and (with a sweep) ``sweep.json`` into ``out_dir``,
each atomically; the sweep file is rewritten after every point. Under torchrun only rank 0 writes.
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.atomic import atomic_write_text
from edgekd.core.errors import ConfigError, InputError
from edgekd.core.inference import accuracy, predict_logits
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.data.datasets import DatasetBundle
from edgekd.distill.assistant import make_assistant
from edgekd.distill.distributed import run_on_main
from edgekd.distill.loss_setup import check_outputs_match, make_loss
from edgekd.distill.sweep import SweepResult, run_sweep
from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache
from edgekd.distill.trainer import TrainResult, TrainSettings, train

log = logging.getLogger(__name__)


@dataclass
class DistillJob:
    """What to distil: the student (``student_path`` or ``ratio``), teacher, data, config, sweep."""

    cfg: DistillConfig
    out_dir: Path
    student_path: Path | None = None
    ratio: float | None = None
    teacher_factory: str = EXAMPLE_FACTORY
    teacher_weights: Path | None = None
    data_path: Path | None = None
    sweep: dict[str, list[float]] = field(default_factory=dict)
    sweep_epochs: int = 1
    preprocess: PreprocessConfig | None = None
    transfer: Path | None = None
    """A folder of unlabeled images distilled from the teacher's outputs alone."""
    device: str = "cpu"
    """``auto | cpu | cuda[:N]`` for teacher outputs, distillation and evaluation."""


@dataclass
class DistillOutcome:
    student_path: Path
    record: dict[str, Any]
    sweep: SweepResult | None = None


def _load_teacher(factory: str, weights: Path | None) -> nn.Module:
    from edgekd.models.example_weights import teacher_weights_path
    from edgekd.models.loading import load_model

    return load_model(factory, teacher_weights_path(factory, weights))


def _load_model_file(path: Path, factory: str) -> nn.Module:
    """An edgekd student file, or a plain state dict for ``factory``."""
    from edgekd.models.loading import load_model, load_student, load_weights_only

    if not Path(path).is_file():
        raise InputError(f"{path} does not exist; pass a student.pt written by edgekd or a state-dict file")
    payload = load_weights_only(path, "pass a student.pt written by edgekd")
    if isinstance(payload, dict) and "structure" in payload:
        return load_student(path, factory, payload)
    return load_model(factory, path)


def _data(path: Path | None, preprocess: PreprocessConfig | None, transfer: Path | None) -> DatasetBundle:
    from edgekd.data.bundled import open_dataset

    return open_dataset(path, preprocess, transfer)


def _settings(
    cfg: DistillConfig, checkpoint: Path | None, epochs: int | None = None, device: str = "cpu"
) -> TrainSettings:
    return TrainSettings(
        epochs=epochs or cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
        warmup_epochs=cfg.warmup_epochs, seed=cfg.seed, augment=False, max_train_samples=cfg.max_train_samples,
        patience=cfg.patience, checkpoint_dir=checkpoint, resume=cfg.resume, augmentation=cfg.augment,
        workers=cfg.workers, use_unlabeled=cfg.use_unlabeled, device=device,
    )  # fmt: skip


def _stage(
    student: nn.Module,
    teacher: nn.Module,
    cache: TeacherCache,
    data: DatasetBundle,
    cfg: DistillConfig,
    settings: TrainSettings,
    progress: ProgressReporter,
    label: str,
    n_teachers: int = 1,
) -> TrainResult:
    example = data.to_tensor(data.test.x[:2])
    loss = make_loss(cfg, teacher, student, example, n_teachers)
    return train(student, data, settings, loss, cache, progress, label, teacher=teacher if n_teachers == 1 else None)


def _cache_for(
    teachers: list[nn.Module], student: nn.Module, data: DatasetBundle, cfg: DistillConfig, device: str = "cpu"
) -> TeacherCache | None:
    """Teacher outputs on the training subset (and the unlabeled images); None when augmentation is on."""
    if cfg.augment.enabled:
        log.info("augmentation on: the teacher runs on every augmented batch (no output cache)")
        return None
    example = data.to_tensor(data.test.x[:2])
    paths = make_loss(cfg, teachers[0], student, example, len(teachers)).feature_paths()["teacher"]
    split = data.train.subset(cfg.max_train_samples)
    if cfg.use_unlabeled and data.unlabeled is not None:
        from edgekd.data.loader import concat_splits

        split = concat_splits(split, data.unlabeled)
    return compute_teacher_cache(teachers, data, split, paths, device=device)


def run_job(job: DistillJob, progress: ProgressReporter = NULL_PROGRESS) -> DistillOutcome:
    """Distil one student as configured; see the module docstring.

    Raises:
        ConfigError, InputError: Bad options, paths, files or mismatched models — before any training.
    """
    from edgekd.core.inference import check_fit
    from edgekd.data.validation import check_finite_weights, check_output_dir
    from edgekd.models.loading import save_student
    from edgekd.prune.pruner import PruneSettings, prune

    cfg, out = job.cfg, Path(job.out_dir)
    if (job.student_path is None) == (job.ratio is None):
        raise ConfigError("give exactly one of --student FILE or --ratio R")
    if cfg.assistant is not None and cfg.teachers:
        raise ConfigError("a teacher-assistant chain and extra teachers cannot be combined; drop one of them")
    check_output_dir(out)
    data = _data(job.data_path, job.preprocess, job.transfer)
    teacher = _load_teacher(job.teacher_factory, job.teacher_weights)
    check_finite_weights(teacher, "teacher weights")
    data = check_fit(teacher, data)
    example = data.to_tensor(data.test.x[:2])
    extra = [_load_model_file(t.weights, t.factory) for t in cfg.teachers]
    for other in extra:
        check_outputs_match(teacher, other, example)
    if job.student_path is not None:
        student = _load_model_file(job.student_path, job.teacher_factory)
        check_finite_weights(student, f"student {job.student_path}")
    else:
        if not 0 < float(job.ratio) < 1:
            raise ConfigError(f"--ratio must be in (0, 1) (got {job.ratio})")
        student = prune(teacher, example[:1], float(job.ratio), PruneSettings()).model
    teachers = [teacher, *extra]
    make_loss(cfg, teacher, student, example, len(teachers))  # every config error before heavy work
    checkpoints = cfg.checkpoint_dir or (out / "checkpoints" if cfg.resume else None)
    record: dict[str, Any] = {"losses": cfg.losses, "weight_ce": cfg.weight_ce, "config": cfg.model_dump(mode="json")}
    with progress.task("teacher outputs (cached once)", total=None):
        cache = _cache_for(teachers, student, data, cfg, job.device)
    source, n_teachers = teacher, len(teachers)
    if cfg.assistant is not None:
        plan = make_assistant(teacher, student, example[:1], cfg.assistant)
        if plan is not None:
            stage = checkpoints / "assistant" if checkpoints else None
            ta = _stage(plan.model, teacher, cache, data, cfg, _settings(cfg, stage, device=job.device), progress,
                       "distill assistant")  # fmt: skip
            record["assistant"] = {**plan.to_json(), "val_accuracy": ta.best_val_accuracy, "history": ta.history}
            with progress.task("assistant outputs (cached once)", total=None):
                cache = _cache_for([plan.model], student, data, cfg, job.device)
            source = plan.model
    initial = copy.deepcopy(student.state_dict())
    sweep_result = None
    if job.sweep:

        def run_point(point_cfg: DistillConfig, point: dict[str, float]) -> tuple[float, dict[str, Any]]:
            student.load_state_dict(initial)
            name = "-".join(f"{k}{v:g}" for k, v in point.items())
            stage = checkpoints / f"sweep-{name}" if checkpoints else None
            settings = _settings(point_cfg, stage, job.sweep_epochs, job.device)
            res = _stage(student, source, cache, data, point_cfg, settings, progress, f"sweep {point}", n_teachers)
            return res.best_val_accuracy, {"epochs_run": res.epochs_run, "seconds": round(res.seconds, 1)}

        def write_sweep(partial: SweepResult) -> None:
            text = json.dumps(partial.to_json(), indent=2) + "\n"
            run_on_main(lambda: atomic_write_text(out / "sweep.json", text))  # under torchrun: rank 0 writes

        sweep_result = run_sweep(cfg, job.sweep, run_point, write_sweep)
        write_sweep(sweep_result)
        from edgekd.distill.sweep import apply_point

        cfg = apply_point(cfg, sweep_result.best.values)
        student.load_state_dict(initial)
        record["sweep"] = {"best": sweep_result.best.values, "points": len(sweep_result.points)}
    stage = checkpoints / "student" if checkpoints else None
    settings = _settings(cfg, stage, device=job.device)
    result = _stage(student, source, cache, data, cfg, settings, progress, "distill student", n_teachers)
    test_acc = accuracy(predict_logits(student, data, data.test, device=job.device), data.test.y)
    record.update(
        best_val_accuracy=result.best_val_accuracy, initial_val_accuracy=result.initial_val_accuracy,
        best_epoch=result.best_epoch, epochs_run=result.epochs_run, history=result.history,
        seconds=round(result.seconds, 1), test_accuracy=test_acc, temperature=cfg.temperature, alpha=cfg.alpha,
        teachers=n_teachers, resumed_from_epoch=result.resumed_from_epoch, labeled_images=result.labeled,
        unlabeled_images=result.unlabeled, device=result.device, loader_wait_share=result.loader_wait_share,
        dataset=data.describe(),
    )  # fmt: skip
    path = run_on_main(lambda: save_student(student, out / "student.pt", job.teacher_factory))
    run_on_main(lambda: atomic_write_text(out / "distill.json", json.dumps(record, indent=2, default=str) + "\n"))
    return DistillOutcome(path, record, sweep_result)
