"""Streaming batches with bounded memory: a torch DataLoader over (lazily decoded) splits.

Each item of the loader is a whole batch — ``(inputs, labels, indices)`` exactly as
:meth:`DatasetBundle.batches` yields them, in the same order for the same seed — so workers decode
and normalise batches ahead of the training loop while results stay reproducible. Only
``workers * prefetch`` batches are in flight, whatever the size of the split: memory is bounded by
``batch_size * (workers * prefetch + 1)`` decoded images plus the model, not by the dataset.

In-memory splits default to no workers (indexing an array is cheaper than a worker round-trip);
lazily decoded splits default to ``min(2, cpus)`` workers. Pinned memory is used when CUDA is the
target so host-to-device copies overlap compute.
"""

from __future__ import annotations

import os
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edgekd.core.errors import InputError
from edgekd.data.datasets import DatasetBundle, Split, normalise
from edgekd.data.images import LazyImages

PREFETCH = 2


def concat_splits(a: Split, b: Split) -> Split:
    """``a`` then ``b`` as one split (lazy parts stay lazy)."""
    if isinstance(a.x, LazyImages) and isinstance(b.x, LazyImages) and a.x.shape[1:] == b.x.shape[1:]:
        x: np.ndarray | LazyImages = LazyImages([*a.x.paths, *b.x.paths], a.x.size, a.x.channels, a.x.cfg)
    elif isinstance(a.x, np.ndarray) and isinstance(b.x, np.ndarray):
        x = np.concatenate([a.x, b.x])
    else:  # an in-memory split with a lazy transfer set: decode the smaller side once
        x = np.concatenate([np.asarray(a.x), np.asarray(b.x)])
    return Split(x, np.concatenate([a.y, b.y]))


class _Batches(Dataset):
    """Item ``i`` is batch ``i`` of a fixed order: decoded, normalised, with labels and split indices."""

    def __init__(self, split: Split, order: list[np.ndarray], norm: partial) -> None:
        self.split, self.order, self.norm = split, order, norm

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        sel = self.order[i]
        return self.norm(self.split.x[sel]), torch.from_numpy(self.split.y[sel]).long(), sel


class OneLineErrors:
    """Iterate a DataLoader; an InputError raised in a worker comes back as the one-line error it was.

    (torch re-raises worker exceptions with the worker's traceback folded into the message.)
    """

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):  # -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]
        try:
            yield from self.loader
        except InputError as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            if len(lines) <= 1:
                raise
            raise InputError(lines[-1].split("InputError: ", 1)[-1]) from None


def default_workers(split: Split) -> int:
    return min(2, os.cpu_count() or 1) if isinstance(split.x, LazyImages) else 0


def batch_loader(
    data: DatasetBundle,
    split: Split,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    workers: int | None = None,
    pin_memory: bool = False,
) -> OneLineErrors:
    """A DataLoader (worker errors kept one line) of ``(inputs, labels, indices)`` batches of ``split``."""
    idx = np.random.default_rng(seed).permutation(len(split)) if shuffle else np.arange(len(split))
    order = [idx[s : s + batch_size] for s in range(0, len(split), batch_size)]
    norm = partial(normalise, mean=data.mean, std=data.std, bgr=data.preprocess.channel_order == "bgr")
    n = default_workers(split) if workers is None else workers
    return OneLineErrors(DataLoader(
        _Batches(split, order, norm), batch_size=None, shuffle=False, num_workers=n,
        pin_memory=pin_memory, prefetch_factor=PREFETCH if n else None, persistent_workers=False,
    ))  # fmt: skip
