"""Training loop shared by teacher training, distillation and QAT.

AdamW, linear warm-up then cosine decay, early stopping on validation accuracy of the task
(never on the distillation loss), fixed seeds, the teacher frozen in eval mode with no gradients,
a checkpoint after every epoch (``checkpoint_dir``; ``resume`` continues an interrupted run).
The loss is pluggable: ``loss_fn(student_logits, labels, teacher_logits) -> tensor``.

The validation accuracy of the model as handed in is measured first (``eval_initial``): a fine-tune
that never beats it returns the original weights, so distilling an already-trained student cannot
make it worse on validation.

Launched by ``torchrun`` (a process group is active), training is data-parallel: see
:mod:`edgekd.distill.distributed`; the results match a one-process run up to floating-point rounding.

Data: batches stream through :func:`edgekd.data.loader.batch_loader` (workers decode lazily read image
folders ahead of the loop; the wait for data is recorded per epoch in ``TrainResult.loader_wait_share``).
``settings.device`` (``auto | cpu | cuda[:N]``) places model, teacher and batches (AMP + channels-last on
CUDA; the model returns to the CPU at the end). ``settings.augmentation`` augments each batch and then
runs the teacher live on it (cached teacher outputs are not used). Unlabeled images
(``data.unlabeled``, with ``use_unlabeled``) are trained on from the teacher's outputs alone: the KD
term reads the teacher's logits and the hard-label term the teacher's top class.

Callers with a model that is not switched by ``.train()``/``.eval()`` (a QAT-prepared ``torch.export``
GraphModule) pass ``to_train``/``to_eval`` callables, e.g.
``TrainSettings(to_train=torchao.quantization.pt2e.move_exported_model_to_train,
to_eval=torchao.quantization.pt2e.move_exported_model_to_eval)``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgekd.config.build_config import AugmentConfig
from edgekd.core.device import autocast, grad_scaler, place, resolve_device, to_device
from edgekd.core.errors import ConfigError
from edgekd.core.inference import accuracy
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.data.datasets import DatasetBundle, Split
from edgekd.data.loader import batch_loader, concat_splits
from edgekd.distill import distributed
from edgekd.distill.augment import augment
from edgekd.distill.checkpoint import fingerprint, load_checkpoint, save_checkpoint
from edgekd.distill.teacher_cache import TeacherCache

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
    warmup_epochs: float | None = None
    """Overrides ``warmup_fraction`` when set."""
    eval_initial: bool = True
    checkpoint_dir: Path | None = None
    resume: bool = False
    to_train: Callable[[nn.Module], object] | None = None
    """Puts the model in training mode (default ``model.train()``)."""
    to_eval: Callable[[nn.Module], object] | None = None
    """Puts the model in inference mode (default ``model.eval()``)."""
    device: str = "cpu"
    """``auto | cpu | cuda[:N]`` (see :mod:`edgekd.core.device`)."""
    augmentation: AugmentConfig | None = None
    """Batch augmentation for KD; on, the teacher runs live on each augmented batch."""
    workers: int | None = None
    """Data-loader workers; None = 2 for lazily decoded folders, 0 for in-memory arrays."""
    use_unlabeled: bool = True
    """Train on ``data.unlabeled`` too (teacher outputs alone)."""

    def fingerprint(self) -> dict[str, object]:
        """The settings that shape the schedule (what a resumed checkpoint must agree with)."""
        skip = {"threads", "checkpoint_dir", "resume", "to_train", "to_eval", "patience", "device", "workers"}
        return {k: v for k, v in asdict(self).items() if k not in skip}

    @property
    def augmenting(self) -> bool:
        return self.augmentation is not None and self.augmentation.enabled

    def set_train(self, model: nn.Module) -> None:
        _ = self.to_train(model) if self.to_train is not None else model.train()

    def set_eval(self, model: nn.Module) -> None:
        _ = self.to_eval(model) if self.to_eval is not None else model.eval()


@dataclass
class TrainResult:
    best_val_accuracy: float
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    initial_val_accuracy: float | None = None
    best_epoch: int = 0
    """0 when no epoch beat the initial weights (which were then kept)."""
    resumed_from_epoch: int = 0
    labeled: int = 0
    """Labeled training images used."""
    unlabeled: int = 0
    """Unlabeled (transfer) images used, distilled from the teacher alone."""
    device: str = "cpu"
    """Device that trained (``cpu``, ``cuda:0``)."""
    loader_wait_share: list[float] = field(default_factory=list)
    """Per epoch: the share of the training loop's time spent waiting for the next batch."""


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
    cached: tuple[torch.Tensor, dict[str, torch.Tensor]] | None,
    teacher: nn.Module | None,
    paths: dict[str, list[str]],
    net: nn.Module | None = None,
) -> torch.Tensor:
    """One batch's loss: cached teacher outputs, or a live (frozen) teacher with feature hooks.

    Hooks live only for this batch: they are removed on exit from the ``with`` block, also on errors.
    ``net`` runs the forward pass when given (the DDP wrapper of ``model``, whose modules carry the hooks).
    """
    from edgekd.distill.feature_hooks import FeatureHooks

    model, hooked = (net or model), model
    wants_features = any(paths.values())
    if cached is not None and (not wants_features or all(p in cached[1] for p in paths["teacher"])):
        y = _fill_unlabeled(y, cached[0])
        if not wants_features:
            return loss_fn(model(x), y, cached[0])
        with FeatureHooks(hooked, paths["student"]) as sh:
            out = model(x)
            return loss_fn(out, y, cached[0], features={"teacher": cached[1], "student": sh.features})
    if teacher is None:
        if bool((y < 0).any()):
            raise ConfigError("unlabeled images need teacher outputs (a teacher module or cached logits)")
        if wants_features:
            raise ConfigError("feature losses need a teacher module or cached teacher features")
        return loss_fn(model(x), y, None)
    with FeatureHooks(teacher, paths["teacher"], detach=True) as th, FeatureHooks(hooked, paths["student"]) as sh:
        with torch.no_grad():
            t_logits = teacher(x)
        y = _fill_unlabeled(y, t_logits)
        out = model(x)
        if not wants_features:
            return loss_fn(out, y, t_logits)
        return loss_fn(out, y, t_logits, features={"teacher": th.features, "student": sh.features})


def _fill_unlabeled(y: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Unlabeled rows (label < 0) take the teacher's top class (mean over teachers for (N, n, C) logits)."""
    missing = y < 0
    if not bool(missing.any()):
        return y
    t = teacher_logits.float().mean(dim=1) if teacher_logits.ndim == 3 else teacher_logits.float()
    return torch.where(missing, t.argmax(1).to(y.device), y)


def _val_accuracy(
    model: nn.Module, data: DatasetBundle, settings: TrainSettings, batch_size: int = 256,
    dev: torch.device | None = None,
) -> float:  # fmt: skip
    settings.set_eval(model)
    if distributed.is_distributed():  # each rank counts its share; every rank gets the same sum
        start, stop = distributed.shard_bounds(len(data.val), distributed.rank(), distributed.world_size())
        part, dev = Split(data.val.x[start:stop], data.val.y[start:stop]), distributed.device()
        with torch.no_grad():
            hits = sum(int((model(x.to(dev)).argmax(1).cpu() == y).sum()) for x, y, _ in data.batches(part, batch_size))
        return distributed.all_sum([float(hits)])[0] / len(data.val) if len(data.val) else 0.0
    dev = dev or torch.device("cpu")
    with torch.no_grad(), autocast(dev):
        out = [model(to_device(x, dev)).float().cpu().numpy()
               for x, _, _ in batch_loader(data, data.val, batch_size, workers=settings.workers)]  # fmt: skip
    logits = np.concatenate(out) if out else np.zeros((0, data.num_classes), np.float32)
    return accuracy(logits, data.val.y)


def _as_cache(teacher_logits: np.ndarray | TeacherCache | None, n: int) -> TeacherCache | None:
    if teacher_logits is None:
        return None
    cache = teacher_logits if isinstance(teacher_logits, TeacherCache) else TeacherCache(teacher_logits)
    if len(cache) < n:
        raise ConfigError(f"teacher outputs cover {len(cache)} training samples but {n} are trained on")
    return cache


def _with_unlabeled(
    data: DatasetBundle, settings: TrainSettings, split: Split, cache: TeacherCache | None, teacher: nn.Module | None
) -> tuple[Split, TeacherCache | None]:
    """The training split plus the unlabeled images when they can be used, and a cache covering them."""
    extra = data.unlabeled
    if not settings.use_unlabeled or extra is None or len(extra) == 0:
        return split, cache
    live = teacher is not None and (cache is None or settings.augmenting)
    if not live and (cache is None or (len(cache) < len(split) + len(extra) and teacher is None)):
        log.warning("%d unlabeled images not used: they need the teacher module or its cached outputs", len(extra))
        return split, cache
    if cache is not None and not settings.augmenting and len(cache) < len(split) + len(extra):
        from edgekd.distill.teacher_cache import compute_teacher_cache

        more = compute_teacher_cache([teacher], data, extra, list(cache.features), device=settings.device)
        rows = cache.logits[: len(split)]
        cache = TeacherCache(np.concatenate([rows, more.logits.astype(rows.dtype)]),
                             {p: np.concatenate([v[: len(split)], more.features[p].astype(v.dtype)])
                              for p, v in cache.features.items()})  # fmt: skip
    log.info("training on %d labeled + %d unlabeled images", len(split), len(extra))
    return concat_splits(split, extra), cache


def train(
    model: nn.Module,
    data: DatasetBundle,
    settings: TrainSettings,
    loss_fn: LossFn = ce_loss,
    teacher_logits: np.ndarray | TeacherCache | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
    description: str = "train",
    teacher: nn.Module | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``data.train``; keep the weights with the best val accuracy.

    Args:
        model: The student (or a QAT-prepared module with ``settings.to_train``/``to_eval``).
        data: Train and val splits; early stopping reads val accuracy.
        settings: Schedule, seed, checkpointing.
        loss_fn: ``(student_logits, labels, teacher_logits[, features=...]) -> loss``; an ``nn.Module``
            loss (hint adapters) is trained too, and its ``feature_paths()`` are hooked per batch.
        teacher_logits: One row per training sample (same order), or a :class:`TeacherCache` with
            teacher features too; used instead of running the teacher when it covers what the loss needs.
        progress: Shows a bar with the running loss and the val accuracy.
        description: Label of the progress bar and log lines.
        teacher: Frozen (eval mode, no gradients) teacher run on each batch when nothing is cached.
    """
    seed_everything(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)
    train_split = data.train.subset(settings.max_train_samples)
    labeled = len(train_split)
    if settings.augmenting and teacher is None and teacher_logits is not None:
        raise ConfigError("augmentation runs the teacher on each augmented batch: it needs one teacher module "
                          "(not cached outputs of several); turn distill.augment off or use one teacher")  # fmt: skip
    cache = None if settings.augmenting else _as_cache(teacher_logits, labeled)
    train_split, cache = _with_unlabeled(data, settings, train_split, cache, teacher)
    steps_per_epoch = math.ceil(len(train_split) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    if settings.warmup_epochs is not None:
        warmup = max(1, round(settings.warmup_epochs * steps_per_epoch))
    else:
        warmup = max(1, int(total * settings.warmup_fraction))
    par = distributed.ParallelTraining(model, loss_fn, teacher) if distributed.is_distributed() else None
    dev = resolve_device(settings.device) if par is None else torch.device("cpu")
    if dev.type != "cpu":
        place(model, dev)
        if teacher is not None:
            place(teacher, dev)
        if isinstance(loss_fn, nn.Module):
            loss_fn.to(dev)
    scaler = grad_scaler(dev)
    target, net = model, None
    if par is not None:
        model, net = par.module, par.net
        progress = progress if par.rank == 0 else NULL_PROGRESS
    params = list(model.parameters())
    if isinstance(loss_fn, nn.Module):
        params += list(loss_fn.parameters())
    if teacher is not None:
        teacher.eval().requires_grad_(False)
    paths = _feature_paths(loss_fn)
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    best_acc, best_state, best_epoch, stale, step, start_epoch = -1.0, None, 0, 0, 0, 0
    history: list[dict[str, float]] = []
    wait_shares: list[float] = []
    initial: float | None = None
    started = time.perf_counter()
    print_ = fingerprint(settings.fingerprint())
    state = None
    if settings.resume and settings.checkpoint_dir:
        state = distributed.run_on_main(lambda: load_checkpoint(settings.checkpoint_dir, print_))
    if state is not None:
        model.load_state_dict(state["model"])
        if isinstance(loss_fn, nn.Module):
            loss_fn.load_state_dict(state["loss"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        best_acc, best_state, best_epoch = state["best_acc"], state["best_state"], state["best_epoch"]
        stale, step, start_epoch, history = state["stale"], state["step"], state["epoch"], state["history"]
        initial = state["initial"]
    elif settings.eval_initial:
        initial = _val_accuracy(model, data, settings, dev=dev)
        best_acc, best_state = initial, copy.deepcopy(model.state_dict())
        log.info("%s: val acc %.4f before training", description, initial)
    with progress.task(description, total=total) as task:
        task.advance(step, val_acc=initial if initial is not None else 0.0)
        for epoch in range(start_epoch, settings.epochs):
            if state is not None and stale >= settings.patience:
                break
            settings.set_train(model)
            running, waited, epoch_start = 0.0, 0.0, time.perf_counter()
            loader = iter(batch_loader(data, train_split, settings.batch_size, True, settings.seed + epoch,
                                       settings.workers, pin_memory=dev.type == "cuda"))  # fmt: skip
            while True:
                t0 = time.perf_counter()
                batch = next(loader, None)
                waited += time.perf_counter() - t0
                if batch is None:
                    break
                x, y, idx = batch
                x, y = to_device(x, dev), y.to(dev)
                if settings.augment:
                    x = augment_batch(x, gen)
                if settings.augmenting:
                    x, y = augment(x, y, settings.augmentation, gen)
                weight = 1.0
                if par is not None:
                    x, y, idx, weight = par.shard(x, y, idx)
                for group in opt.param_groups:
                    group["lr"] = lr_at(step, total, warmup, settings.lr)
                cached = cache.batch(idx) if cache is not None else None
                to = par.device if par is not None else dev
                if cached is not None and to.type != "cpu":
                    cached = (cached[0].to(to), {k: v.to(to) for k, v in cached[1].items()})
                with autocast(dev):
                    loss = _step_loss(model, x, y, loss_fn, cached, teacher, paths, net)
                if par is not None:
                    loss = loss * weight
                opt.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
                if par is not None:
                    par.sync_loss_grads()
                if scaler is not None:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                step += 1
                value = float(loss.detach()) if par is None else par.global_loss(float(loss.detach()))
                running = 0.9 * running + 0.1 * value if step > 1 else value
                task.advance(1, loss=running)
            wait_share = waited / max(1e-9, time.perf_counter() - epoch_start)
            val_acc = _val_accuracy(model, data, settings, dev=dev)
            history.append({"epoch": epoch + 1, "loss": running, "val_accuracy": val_acc})
            wait_shares.append(round(wait_share, 4))
            task.advance(0, loss=running, val_acc=val_acc)
            log.info("%s epoch %d: loss %.4f val acc %.4f", description, epoch + 1, running, val_acc)
            if val_acc > best_acc:
                best_acc, best_state, best_epoch, stale = val_acc, copy.deepcopy(model.state_dict()), epoch + 1, 0
            else:
                stale += 1
            if settings.checkpoint_dir is not None:
                snapshot = {
                    "fingerprint": print_, "epoch": epoch + 1, "step": step, "model": model.state_dict(),
                    "loss": loss_fn.state_dict() if isinstance(loss_fn, nn.Module) else {},
                    "optimizer": opt.state_dict(), "generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                    "best_acc": best_acc, "best_state": best_state, "best_epoch": best_epoch, "stale": stale,
                    "history": history, "initial": initial,
                }  # fmt: skip
                distributed.run_on_main(partial(save_checkpoint, settings.checkpoint_dir, snapshot))
            if stale >= settings.patience:
                break
    if par is not None:
        par.finish(best_state if best_state is not None else model.state_dict(), loss_fn, teacher)
        model = target
    elif best_state is not None:
        model.load_state_dict(best_state)
    if dev.type != "cpu":  # stages export and measure on the host
        for m in (model, teacher, loss_fn if isinstance(loss_fn, nn.Module) else None):
            if m is not None:
                m.to("cpu").to(memory_format=torch.contiguous_format)
    if initial is not None and best_epoch == 0:
        log.warning("%s: no epoch beat the initial val accuracy %.4f; kept the initial weights", description, initial)
    settings.set_eval(model)
    return TrainResult(best_acc, len(history), history, time.perf_counter() - started, initial, best_epoch,
                       start_epoch, labeled, len(train_split) - labeled, str(dev), wait_shares)  # fmt: skip
