"""Teacher outputs computed once per training split and reused every epoch (fp16 by default).

Valid only when the training inputs do not change between epochs (augmentation off): then the frozen
teacher gives the same logits and features for a sample every time, and one pass replaces one per epoch.
With several teachers the logits are stacked as (N, n_teachers, C) — the layout
:class:`~edgekd.distill.losses.multi_teacher.MultiTeacherKDLoss` reads with ``teacher_dim=1``; features
come from the first (primary) teacher.

Example:
    >>> cache = compute_teacher_cache([teacher], data, data.train, ["stages.2"])  # doctest: +SKIP
    >>> logits, features = cache.batch(np.array([0, 5, 7]))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.data.datasets import DatasetBundle, Split
from edgekd.distill.feature_hooks import FeatureHooks

log = logging.getLogger(__name__)


@dataclass
class TeacherCache:
    """Per-sample teacher logits (N, C) or (N, n, C) and features ``{path: (N, ...)}``, rows in split order."""

    logits: np.ndarray
    features: dict[str, np.ndarray] = field(default_factory=dict)

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


@torch.no_grad()
def compute_teacher_cache(
    teachers: Sequence[nn.Module],
    data: DatasetBundle,
    split: Split,
    paths: Sequence[str] = (),
    dtype: type = np.float16,
    batch_size: int = 256,
) -> TeacherCache:
    """Run the (frozen, eval-mode) teachers over ``split`` once; features of ``paths`` from ``teachers[0]``.

    Raises:
        ConfigError: No teacher, or a path that names no module of the primary teacher.
    """
    if not teachers:
        raise ConfigError("a teacher cache needs at least one teacher")
    paths = [p for p in dict.fromkeys(paths) if p]
    states = [t.training for t in teachers]
    for t in teachers:
        t.eval()
    logits: list[list[np.ndarray]] = [[] for _ in teachers]
    feats: dict[str, list[np.ndarray]] = {p: [] for p in paths}
    try:
        with FeatureHooks(teachers[0], paths, detach=True) as hooks:
            for x, _, _ in data.batches(split, batch_size):
                for i, teacher in enumerate(teachers):
                    logits[i].append(teacher(x).float().numpy().astype(dtype))
                for p in paths:
                    feats[p].append(hooks.features[p].float().numpy().astype(dtype))
    finally:
        for t, state in zip(teachers, states, strict=True):
            t.train(state)
    stacked = [np.concatenate(rows) if rows else np.zeros((0, data.num_classes), dtype) for rows in logits]
    out = stacked[0] if len(stacked) == 1 else np.stack(stacked, axis=1)
    cache = TeacherCache(out, {p: np.concatenate(v) for p, v in feats.items() if v})
    log.info("teacher cache: %d samples, %d teachers, %d feature maps, %.1f MB",
             len(cache), len(teachers), len(paths), cache.nbytes / 1e6)  # fmt: skip
    return cache
