"""Teacher outputs computed once per training split and reused every epoch (fp16 by default).

Valid only when the training inputs do not change between epochs (augmentation off): then the frozen
teacher gives the same logits and features for a sample every time, and one pass replaces one per epoch.
With several teachers the logits are stacked as (N, n_teachers, C) — the layout
:class:`~edgekd.distill.losses.multi_teacher.MultiTeacherKDLoss` reads with ``teacher_dim=1``; features
come from the first (primary) teacher.

Memory: rows are written as they are computed into arrays that, past :data:`SPILL_BYTES` (or always
with ``spill_dir``), are ``.npy`` files on disk opened memory-mapped (``np.load(mmap_mode="r")``):
feature maps of a large training set are read batch by batch from the page cache rather than held
in RAM. Images stream through :func:`edgekd.data.loader.batch_loader`.

Example:
    >>> cache = compute_teacher_cache([teacher], data, data.train, ["stages.2"])  # doctest: +SKIP
    >>> logits, features = cache.batch(np.array([0, 5, 7]))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.device import autocast, place, resolve_device, to_device
from edgekd.core.errors import ConfigError
from edgekd.data.datasets import DatasetBundle, Split
from edgekd.data.loader import batch_loader
from edgekd.distill.feature_hooks import FeatureHooks

log = logging.getLogger(__name__)

SPILL_BYTES = 256 * 2**20
"""Caches larger than this are written to disk and memory-mapped."""


@dataclass
class TeacherCache:
    """Per-sample teacher logits (N, C) or (N, n, C) and features ``{path: (N, ...)}``, rows in split order."""

    logits: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)
    keep_alive: object = field(default=None, repr=False, compare=False)
    """The temporary folder behind memory-mapped arrays (removed when the cache is collected)."""

    def __post_init__(self) -> None:
        for path, value in self.features.items():
            if len(value) != len(self.logits):
                raise ConfigError(f"teacher cache: feature '{path}' has {len(value)} rows, logits {len(self.logits)}")

    def __len__(self) -> int:
        return len(self.logits)

    def covers(self, paths: Sequence[str]) -> bool:
        """Whether every teacher feature path in ``paths`` is cached (``""`` is the logits)."""
        return all(p == "" or p in self.features for p in paths)

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """float32 logits and features of the samples ``idx``."""
        logits = torch.from_numpy(self.logits[idx]).float()
        return logits, {p: torch.from_numpy(v[idx]).float() for p, v in self.features.items()}

    @property
    def nbytes(self) -> int:
        return int(self.logits.nbytes + sum(v.nbytes for v in self.features.values()))


class _Rows:
    """Arrays filled batch by batch: in memory, or ``.npy`` files memory-mapped in ``folder``."""

    def __init__(self, n: int, folder: Path | None) -> None:
        self.n, self.folder, self.arrays, self.at = n, folder, {}, {}

    def put(self, name: str, rows: np.ndarray) -> None:
        if name not in self.arrays:
            shape = (self.n, *rows.shape[1:])
            if self.folder is not None:
                path = self.folder / f"{len(self.arrays)}.npy"
                self.arrays[name] = np.lib.format.open_memmap(path, mode="w+", dtype=rows.dtype, shape=shape)
            else:
                self.arrays[name] = np.empty(shape, rows.dtype)
            self.at[name] = 0
        start = self.at[name]
        self.arrays[name][start : start + len(rows)] = rows
        self.at[name] = start + len(rows)

    def get(self, name: str) -> np.ndarray:
        arr = self.arrays[name]
        if self.folder is None:
            return arr
        arr.flush()
        return np.load(arr.filename, mmap_mode="r")


def _estimate_bytes(teachers: Sequence[nn.Module], data: DatasetBundle, split: Split, paths: Sequence[str],
                    device: torch.device, dtype: type) -> int:  # fmt: skip
    """Bytes of the cache, from one forward pass on a single image."""
    if len(split) == 0:
        return 0
    x = to_device(data.to_tensor(split.x[np.array([0])]), device)
    with FeatureHooks(teachers[0], paths, detach=True) as hooks, autocast(device):
        per_row = sum(int(t(x).numel()) for t in teachers)
        per_row += sum(int(hooks.features[p].numel()) for p in paths)
    return per_row * np.dtype(dtype).itemsize * len(split)


@torch.no_grad()
def compute_teacher_cache(
    teachers: Sequence[nn.Module],
    data: DatasetBundle,
    split: Split,
    paths: Sequence[str] = (),
    dtype: type = np.float16,
    batch_size: int = 256,
    device: str = "cpu",
    spill_dir: Path | None = None,
) -> TeacherCache:
    """Run the (frozen, eval-mode) teachers over ``split`` once; features of ``paths`` from ``teachers[0]``.

    Args:
        device: Where the teachers run (``auto | cpu | cuda[:N]``); they come back to the CPU.
        spill_dir: Write the cache here memory-mapped; None = a temporary folder when the cache is
            larger than :data:`SPILL_BYTES`, else memory.

    Raises:
        ConfigError: No teacher, or a path that names no module of the primary teacher.
    """
    if not teachers:
        raise ConfigError("a teacher cache needs at least one teacher")
    paths = [p for p in dict.fromkeys(paths) if p]
    states = [t.training for t in teachers]
    dev = resolve_device(device)
    for t in teachers:
        t.eval()
        if dev.type != "cpu":
            place(t, dev)
    keep: object = None
    try:
        folder = spill_dir
        if folder is None and _estimate_bytes(teachers, data, split, paths, dev, dtype) > SPILL_BYTES:
            keep = tempfile.TemporaryDirectory(prefix="edgekd-teacher-cache-")
            folder = Path(keep.name)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        rows = _Rows(len(split), folder)
        with FeatureHooks(teachers[0], paths, detach=True) as hooks:
            for x, _, _ in batch_loader(data, split, batch_size):
                with autocast(dev):
                    outs = [t(to_device(x, dev)).float().cpu().numpy().astype(dtype) for t in teachers]
                rows.put("logits", outs[0] if len(outs) == 1 else np.stack(outs, axis=1))
                for p in paths:
                    rows.put(p, hooks.features[p].float().cpu().numpy().astype(dtype))
    finally:
        for t, state in zip(teachers, states, strict=True):
            t.train(state)
            if dev.type != "cpu":
                t.to("cpu").to(memory_format=torch.contiguous_format)
    if "logits" not in rows.arrays:
        shape = (0, len(teachers), data.num_classes) if len(teachers) > 1 else (0, data.num_classes)
        return TeacherCache(np.zeros(shape, dtype))
    cache = TeacherCache(rows.get("logits"), {p: rows.get(p) for p in paths}, keep)
    log.info("teacher cache: %d samples, %d teachers, %d feature maps, %.1f MB (%s)",
             len(cache), len(teachers), len(paths), cache.nbytes / 1e6,
             "memory-mapped" if folder is not None else "in memory")  # fmt: skip
    return cache
