"""Training loop shared by teacher training and distillation.

AdamW, linear warm-up then cosine decay, early stopping on validation accuracy of the task
(never on the distillation loss), fixed seeds, the teacher frozen in eval mode with no gradients.
The loss is pluggable: ``loss_fn(student_logits, labels, teacher_logits) -> tensor``.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.data.datasets import DatasetBundle, Split
from edgekd.pipeline.progress import NULL_PROGRESS, ProgressReporter

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@dataclass
class TrainSettings:
    """How long and how hard to train."""

    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    seed: int = 0
    augment: bool = True
    max_train_samples: int | None = None
    patience: int = 3
    threads: int | None = None


@dataclass
class TrainResult:
    best_val_accuracy: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def augment_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and a random shift of up to 2 pixels (zero padded)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), value=float(x.min()))
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    return pad[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up to ``base`` over ``warmup`` steps, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def predict_logits(model: nn.Module, data: DatasetBundle, split: Split, batch_size: int = 256) -> np.ndarray:
    """Logits of ``model`` on a whole split, in eval mode."""
    was_training = model.training
    model.eval()
    out = [model(x).float().numpy() for x, _, _ in data.batches(split, batch_size)]
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, data.num_classes), np.float32)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean()) if len(labels) else 0.0


def ce_loss(student: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(student, labels)


def _feature_paths(loss_fn: LossFn) -> dict[str, list[str]]:
    paths = loss_fn.feature_paths() if hasattr(loss_fn, "feature_paths") else {}
    return {role: [p for p in paths.get(role, []) if p] for role in ("teacher", "student")}


def _step_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    cached: torch.Tensor | None,
    teacher: nn.Module | None,
    paths: dict[str, list[str]],
) -> torch.Tensor:
    """One batch's loss: cached teacher logits, or a live (frozen) teacher with feature hooks."""
    from edgekd.distill.feature_hooks import FeatureHooks

    if teacher is None or (cached is not None and not any(paths.values())):
        return loss_fn(model(x), y, cached)
    with FeatureHooks(teacher, paths["teacher"], detach=True) as th, FeatureHooks(model, paths["student"]) as sh:
        with torch.no_grad():
            t_logits = teacher(x)
        out = model(x)
        if not any(paths.values()):
            return loss_fn(out, y, t_logits)
        return loss_fn(out, y, t_logits, features={"teacher": th.features, "student": sh.features})


def train(
    model: nn.Module,
    data: DatasetBundle,
    settings: TrainSettings,
    loss_fn: LossFn = ce_loss,
    teacher_logits: np.ndarray | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
    description: str = "train",
    teacher: nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data.train``; keep the weights with the best val accuracy.

    ``teacher_logits`` (one row per training sample, same order) feed ``loss_fn`` as soft targets.
    With ``teacher`` given (frozen, eval mode, no gradients) it runs on each batch instead, which
    feature losses (hint, AT, layer RKD/SPKD) need; their learned adapters are trained too.
    """
    import time

    seed_everything(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    train_split = data.train.subset(settings.max_train_samples)
    steps_per_epoch = math.ceil(len(train_split) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    warmup = max(1, int(total * settings.warmup_fraction))
    params = list(model.parameters())
    if isinstance(loss_fn, nn.Module):
        params += list(loss_fn.parameters())
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    paths = _feature_paths(loss_fn)
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    best_acc, best_state, stale, step = -1.0, None, 0, 0
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    soft = torch.from_numpy(teacher_logits).float() if teacher_logits is not None else None
    with progress.task(description, total=total) as task:
        for epoch in range(settings.epochs):
            model.train()
            running = 0.0
            for x, y, idx in data.batches(train_split, settings.batch_size, True, settings.seed + epoch):
                if settings.augment:
                    x = augment_batch(x, gen)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, warmup, settings.lr)
                t = soft[torch.from_numpy(idx)] if soft is not None else None
                loss = _step_loss(model, x, y, loss_fn, t, teacher, paths)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                value = float(loss.detach())
                running = 0.9 * running + 0.1 * value if step > 1 else value
                task.advance(1, loss=running)
            val_acc = accuracy(predict_logits(model, data, data.val), data.val.y)
            history.append({"epoch": epoch + 1, "loss": running, "val_accuracy": val_acc})
            task.advance(0, val_acc=val_acc)
            log.info("%s epoch %d: loss %.4f val acc %.4f", description, epoch + 1, running, val_acc)
            if val_acc > best_acc:
                best_acc, best_state, stale = val_acc, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if stale >= settings.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(best_acc, len(history), history, time.perf_counter() - started)
