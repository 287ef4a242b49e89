"""Capacity sweep: prune at a series of ratios, fine-tune each briefly, and find the cliff and the Pareto front.

Each point records accuracy (after a short KD fine-tune from cached teacher logits), parameters,
MACs and the predicted latency (plus the measured one where the target is this machine). The
capacity-cliff detector of :mod:`edgekd.validate.failure_modes` judges the curve, and the points no
other point beats on both latency and accuracy are marked ``pareto``. The output is plain JSON for
the report::

    {"points": [{"ratio", "params", "macs", "predicted_ms", "measured_ms", "accuracy", "pareto"}],
     "cliff": {...} | null, "cliff_check": {...}, "teacher": {...}, "settings": {...}}

Example:
    >>> data = run_sweep(teacher, bundle, logits, predict, None, PruneSettings(), SweepSettings())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from edgekd.bench.latency_model import count_macs, trace_ops
from edgekd.core.errors import ConfigError
from edgekd.core.inference import accuracy, predict_logits
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.data.datasets import DatasetBundle
from edgekd.distill.losses.kd_loss import KDLoss
from edgekd.distill.trainer import seed_everything
from edgekd.prune.pruner import PruneSettings, prune
from edgekd.validate.failure_modes import detect_capacity_cliff

log = logging.getLogger(__name__)

DEFAULT_RATIOS = (0.0, 0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9)  # finer where cliffs usually are


@dataclass(frozen=True)
class SweepSettings:
    """Ratios to visit and how briefly to fine-tune each pruned model (KD on cached teacher logits)."""

    ratios: tuple[float, ...] = DEFAULT_RATIOS
    finetune_steps: int = 60
    batch_size: int = 32
    train_samples: int = 2048
    eval_samples: int | None = 1000
    lr: float = 2e-3
    temperature: float = 4.0
    alpha: float = 0.7
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.ratios or any(not 0.0 <= r < 1.0 for r in self.ratios):
            raise ConfigError(f"sweep ratios must be in [0, 1); got {list(self.ratios)}")
        if self.finetune_steps < 0 or self.batch_size < 1 or self.train_samples < 1:
            raise ConfigError("finetune_steps must be >= 0, batch_size and train_samples >= 1")


def finetune(model: nn.Module, data: DatasetBundle, soft: np.ndarray, settings: SweepSettings) -> nn.Module:
    """``settings.finetune_steps`` AdamW steps of KD on the first ``len(soft)`` training images (in place)."""
    if settings.finetune_steps == 0:
        return model.eval()
    seed_everything(settings.seed)
    split = data.train.subset(len(soft))
    targets = torch.from_numpy(soft).float()
    loss_fn = KDLoss(settings.temperature, settings.alpha)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, settings.finetune_steps)
    model.train()
    step, epoch = 0, 0
    while step < settings.finetune_steps:
        for x, y, idx in data.batches(split, settings.batch_size, True, settings.seed + epoch):
            loss = loss_fn(model(x), y, targets[torch.from_numpy(idx)])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step >= settings.finetune_steps:
                break
        epoch += 1
    return model.eval()


def pareto_flags(points: Sequence[dict]) -> list[bool]:
    """True for points no other point beats: as fast or faster *and* as accurate or more, one strictly.

    Latency is the measured figure where there is one, else the predicted one.
    """

    def lat(p: dict) -> float:
        return p["measured_ms"] if p.get("measured_ms") is not None else p["predicted_ms"]

    flags = []
    for p in points:
        dominated = any(
            lat(q) <= lat(p) and q["accuracy"] >= p["accuracy"] and (lat(q) < lat(p) or q["accuracy"] > p["accuracy"])
            for q in points
            if q is not p
        )
        flags.append(not dominated)
    return flags


def run_sweep(
    teacher: nn.Module,
    data: DatasetBundle,
    teacher_train_logits: np.ndarray,
    predict_ms: Callable[[nn.Module], float],
    measure_ms: Callable[[nn.Module], float] | None,
    prune_settings: PruneSettings,
    settings: SweepSettings = SweepSettings(),
    progress: ProgressReporter = NULL_PROGRESS,
) -> dict:
    """Prune ``teacher`` at every ratio, fine-tune, evaluate; returns the sweep record (see module doc).

    ``teacher_train_logits`` are the teacher's logits on the first training images (as many rows as
    are used for fine-tuning). Ratio 0 is the teacher itself, not fine-tuned.
    """
    soft = teacher_train_logits[: settings.train_samples]
    example = data.to_tensor(data.test.x[:1])
    shape = (1, *data.input_shape)
    test = data.test.subset(settings.eval_samples)
    started = time.perf_counter()

    def facts(model: nn.Module) -> dict:
        return {
            "params": int(sum(p.numel() for p in model.parameters())),
            "macs": count_macs(trace_ops(model, shape)),
            "predicted_ms": round(predict_ms(model), 4),
            "measured_ms": round(measure_ms(model), 4) if measure_ms is not None else None,
        }

    teacher_acc = accuracy(predict_logits(teacher, data, test), test.y)
    teacher_rec = {"accuracy": round(teacher_acc, 4), **facts(teacher)}
    points: list[dict] = []
    with progress.task(f"prune sweep ({len(settings.ratios)} ratios)", total=len(settings.ratios)) as task:
        for ratio in sorted(set(settings.ratios)):
            t0 = time.perf_counter()
            if ratio == 0.0:
                points.append({"ratio": 0.0, **teacher_rec, "seconds": 0.0})
                task.advance(1)
                continue
            model = prune(teacher, example, ratio, prune_settings).model
            finetune(model, data, soft, settings)
            acc = accuracy(predict_logits(model, data, test), test.y)
            point = {"ratio": ratio, "accuracy": round(acc, 4), **facts(model),
                     "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
            log.info("sweep ratio %.2f: accuracy %.4f, %.3f ms predicted", ratio, acc, point["predicted_ms"])
            points.append(point)
            task.advance(1)
    for point, flag in zip(points, pareto_flags(points), strict=True):
        point["pareto"] = flag
    check = detect_capacity_cliff(points)
    return {
        "points": points,
        "cliff": check.to_json() if check.triggered else None,
        "cliff_check": check.to_json(),
        "teacher": teacher_rec,
        "settings": {
            **asdict(settings),
            "ratios": sorted(set(settings.ratios)),
            "importance": prune_settings.importance,
            "round_to": prune_settings.round_to,
            "seconds": round(time.perf_counter() - started, 1),
        },
    }


def format_table(sweep: dict) -> str:
    """A plain-text table of the sweep points plus the cliff verdict (for the terminal)."""
    rows = [f"{'ratio':>6} {'params':>9} {'MMACs':>8} {'pred ms':>8} {'meas ms':>8} {'acc %':>6}  pareto"]
    for p in sweep["points"]:
        measured = f"{p['measured_ms']:8.3f}" if p["measured_ms"] is not None else f"{'-':>8}"
        rows.append(f"{p['ratio']:6.2f} {p['params']:9d} {p['macs'] / 1e6:8.1f} {p['predicted_ms']:8.3f} "
                    f"{measured} {100 * p['accuracy']:6.2f}  {'*' if p['pareto'] else ''}")  # fmt: skip
    verdict = sweep["cliff_check"]
    rows.append(("CLIFF: " if verdict["triggered"] else "no cliff: ") + verdict["finding"])
    if verdict["triggered"]:
        rows.append("fix: " + verdict["suggested_fix"])
    return "\n".join(rows)
