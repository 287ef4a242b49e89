"""Data-parallel distillation under ``torchrun`` with ``torch.distributed`` (DDP; NCCL on GPUs, gloo on CPU).

edgekd never starts processes itself: ``torchrun`` does, and sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``/
``MASTER_ADDR``/``MASTER_PORT``. :func:`session` reads them, joins the process group and leaves it at the
end; without them (or with ``WORLD_SIZE=1``) everything runs in one process exactly as before.

What the trainer does differently when distributed (:class:`ParallelTraining`):

* the student is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`; gradients of a loss
  with its own parameters (hint adapters) are averaged across ranks too;
* every rank draws the same global batch (same seed and permutation, so ``set_epoch`` is implicit),
  augments it identically and keeps its contiguous share: per-rank batch = global batch / world and the
  teacher cache stays indexed by training-sample index; each rank's loss is weighted by its share so the
  averaged gradient is that of the whole global batch, at the same learning rate;
* BatchNorm statistics span the global batch: :class:`torch.nn.SyncBatchNorm` on GPUs, and on CPU
  (where torch's SyncBatchNorm refuses to run) :class:`GlobalBatchNorm`, which all-reduces the sums
  with a differentiable collective;
* validation accuracy is counted on a shard per rank and summed, so every rank sees the same value
  and stops at the same epoch; only rank 0 shows progress and writes files (:func:`run_on_main`).

Example:
    >>> with session("auto") as info:  # doctest: +SKIP
    ...     result = train(student, data, settings, loss)  # DDP when launched by torchrun
    ...     if info.is_main:
    ...         print(result.best_val_accuracy)
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from edgekd.core.errors import ConfigError, EdgeKDError, RunnerError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")
ENV_KEYS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")
T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the launch: rank, world size, local rank, backend ("" when alone)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launch_env(environ: Mapping[str, str] | None = None) -> DistInfo | None:
    """The torchrun launch described by ``environ`` (default ``os.environ``); None when not launched so.

    Raises:
        ConfigError: The variables are incomplete, not integers, or inconsistent.
    """
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" not in env:
        return None
    values: dict[str, int] = {}
    for key in ENV_KEYS:
        raw = env.get(key, "0" if key != "WORLD_SIZE" else "")
        try:
            values[key] = int(raw)
        except ValueError:
            raise ConfigError(f"{key}='{raw}' is not an integer; launch with torchrun or unset WORLD_SIZE") from None
    world, rank, local = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
    if world < 1:
        raise ConfigError(f"WORLD_SIZE={world} must be at least 1; launch with torchrun --nproc-per-node N")
    if not 0 <= rank < world or local < 0:
        raise ConfigError(f"RANK={rank} / LOCAL_RANK={local} do not fit WORLD_SIZE={world}; launch with torchrun")
    if world > 1:
        missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
        if missing:
            raise ConfigError(f"WORLD_SIZE={world} but {', '.join(missing)} unset; launch with torchrun")
    return DistInfo(rank, world, local, "")


def pick_backend(requested: str = "auto", cuda: bool | None = None) -> str:
    """``nccl`` when CUDA is available, else ``gloo``; an explicit request is checked.

    Raises:
        ConfigError: Unknown backend, or ``nccl`` without CUDA.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if requested not in BACKENDS:
        raise ConfigError(f"distributed backend '{requested}' is unknown; use one of {', '.join(BACKENDS)}")
    if requested == "auto":
        return "nccl" if cuda else "gloo"
    if requested == "nccl" and not cuda:
        raise ConfigError("backend nccl needs CUDA GPUs but none is available; use --dist-backend gloo on CPU")
    return requested


def is_distributed() -> bool:
    """Whether a process group of more than one rank is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """True on rank 0, and always when not distributed."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def device() -> torch.device:
    """``cuda:LOCAL_RANK`` under NCCL, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def session(backend: str = "auto", timeout_s: float = 1800.0) -> Iterator[DistInfo]:
    """Join the torchrun process group for the duration of the block (a no-op without torchrun).

    Raises:
        ConfigError: Bad launch variables or backend.
        RunnerError: The process group could not be formed (rendezvous, network, timeout).
    """
    info = launch_env()
    if info is None or info.world_size == 1 or is_distributed():
        yield DistInfo(
            rank(), world_size(), info.local_rank if info else 0, dist.get_backend() if is_distributed() else ""
        )
        return
    chosen = pick_backend(backend)
    if chosen == "nccl":
        torch.cuda.set_device(info.local_rank)
    try:
        dist.init_process_group(chosen, timeout=timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError, OSError) as exc:  # DistNetworkError/DistStoreError are RuntimeErrors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunnerError(f"rank {info.rank} could not join the {chosen} process group ({first}); "
                          "check MASTER_ADDR/MASTER_PORT and that every node runs torchrun") from exc  # fmt: skip
    log.info("rank %d of %d joined the %s process group", info.rank, info.world_size, chosen)
    try:
        yield DistInfo(info.rank, info.world_size, info.local_rank, chosen)
    finally:
        dist.destroy_process_group()


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and hand its result to every rank.

    A failure on rank 0 is raised on every rank as the same edgekd error (other errors as RunnerError), so
    all ranks exit alike instead of the others waiting for rank 0 in the next collective.
    """
    if not is_distributed():
        return fn()
    box: list[object] = [None]
    failure: BaseException | None = None
    if is_main():
        try:
            box[0] = ("ok", fn())
        except EdgeKDError as exc:
            failure, box[0] = exc, ("error", type(exc), str(exc))
        except Exception as exc:  # any failure on rank 0 must reach the other ranks, or they wait forever
            message = f"rank 0 failed: {type(exc).__name__}: {exc}"
            failure, box[0] = RunnerError(message), ("error", RunnerError, message)
            failure.__cause__ = exc
    dist.broadcast_object_list(box, src=0)
    outcome = box[0]
    if failure is not None:
        raise failure
    if outcome[0] == "error":
        try:
            raise outcome[1](outcome[2])
        except TypeError:  # an error class with a richer constructor
            raise RunnerError(outcome[2]) from None
    return outcome[1]


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sum over ranks (float64)."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def shard_bounds(n: int, rank_: int, world: int) -> tuple[int, int]:
    """``[start, stop)`` of rank ``rank_``'s contiguous share of ``n`` items (sizes differ by at most one)."""
    base, extra = divmod(n, world)
    start = rank_ * base + min(rank_, extra)
    return start, start + base + (1 if rank_ < extra else 0)


class GlobalBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span the batches of all ranks (any backend, CPU included).

    The per-channel sums, sums of squares and counts are all-reduced with the differentiable
    ``torch.distributed._functional_collectives.all_reduce``, so gradients flow through the global statistics as in
    :class:`torch.nn.SyncBatchNorm`. Outside training or a process group it is an ordinary BatchNorm;
    its parameters and buffers are named as BatchNorm's, so state dicts move between the two.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        # torch.distributed.nn.functional.all_reduce (public, differentiable) is deprecated in favour of this one
        from torch.distributed._functional_collectives import all_reduce

        c, dims = x.shape[1], [0, *range(2, x.dim())]
        local = torch.cat([x.sum(dims), (x * x).sum(dims), x.new_full((1,), x.numel() / c)])
        stats = all_reduce(local, "sum", dist.group.WORLD)
        n = stats[-1]
        mean = stats[:c] / n
        var = (stats[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1).clamp_min(1), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape) if self.affine else y


def global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm replaced by a :class:`GlobalBatchNorm` holding the same tensors."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                              module.track_running_stats)  # fmt: skip
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, global_batchnorm(child))
    return module


class ParallelTraining:
    """The trainer's DDP plumbing: a synchronised training copy of the student and batch sharding.

    The caller's ``model`` is left untouched until :meth:`finish` loads the trained weights into it.
    """

    def __init__(self, model: nn.Module, loss_fn: object, teacher: nn.Module | None) -> None:
        from torch.nn.parallel import DistributedDataParallel

        self.rank, self.world, self.device = rank(), world_size(), device()
        self.target = model
        train_copy = copy.deepcopy(model)
        if self.device.type == "cuda":
            self.module = nn.SyncBatchNorm.convert_sync_batchnorm(train_copy).to(self.device)
        else:
            self.module = global_batchnorm(train_copy)
        ids = [self.device.index] if self.device.type == "cuda" else None
        self.net = DistributedDataParallel(self.module, device_ids=ids)
        self.loss_params: list[nn.Parameter] = []
        if isinstance(loss_fn, nn.Module):
            loss_fn.to(self.device)
            self.loss_params = [p for p in loss_fn.parameters() if p.requires_grad]
            for p in self.loss_params:  # adapters start equal on every rank
                dist.broadcast(p.data, src=0)
        if teacher is not None:
            teacher.to(self.device)
        log.info("rank %d/%d: DDP on %s, global BatchNorm statistics", self.rank, self.world, self.device)

    def shard(
        self, x: torch.Tensor, y: torch.Tensor, idx: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, float]:
        """This rank's share of a global batch and the weight of its loss.

        The weight ``n_rank * world / n_global`` makes the DDP average of the ranks' gradients equal the
        gradient of the mean loss over the whole global batch. A rank left without samples (a last batch
        smaller than the world) trains on one repeated sample with weight 0.
        """
        n = len(idx)
        start, stop = shard_bounds(n, self.rank, self.world)
        weight = (stop - start) * self.world / n
        if stop == start:
            start, stop, weight = n - 1, n, 0.0
        return x[start:stop].to(self.device), y[start:stop].to(self.device), idx[start:stop], weight

    def sync_loss_grads(self) -> None:
        """Average the gradients of the loss's own parameters over ranks (DDP covers the student's)."""
        if not self.loss_params:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.loss_params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for p in self.loss_params:
            p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def global_loss(self, weighted_loss: float) -> float:
        """The mean loss over the global batch, from each rank's weighted loss."""
        return all_sum([weighted_loss])[0] / self.world

    def finish(self, state: dict[str, torch.Tensor], loss_fn: object, teacher: nn.Module | None) -> None:
        """Load ``state`` into the caller's model; move the loss and the teacher back to the CPU."""
        self.target.load_state_dict(state)
        if self.device.type != "cpu":
            if isinstance(loss_fn, nn.Module):
                loss_fn.cpu()
            if teacher is not None:
                teacher.cpu()
