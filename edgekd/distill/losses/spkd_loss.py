"""Similarity-preserving KD (Tung & Mori, 2019): match the batch's sample-similarity matrices.

For each feature flattened to F (B, D), ``G = F Fᵀ`` (B, B) is L2-normalised row by row and the
loss is ``||G_s - G_t||_F² / B²``. Channel counts and spatial sizes of teacher and student may
differ; only the batch size must agree. The paper sums over layer pairs; here the mean over pairs
is taken (like the other feature losses), so the weight does not scale with the number of pairs.
The default pair ``("", "")`` relates the model outputs (the logits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.distill.feature_hooks import FeatureMaps, check_pairs, paired_features


def similarity_matrix(feature: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, B): row-wise L2-normalised ``F Fᵀ`` of the flattened feature."""
    flat = feature.flatten(1)
    return F.normalize(flat @ flat.t(), dim=1)


def spkd_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """``||G_s - G_t||_F² / B²`` for one feature pair."""
    if len(student) != len(teacher):
        raise ConfigError(f"spkd: batch sizes differ (student {len(student)}, teacher {len(teacher)})")
    diff = similarity_matrix(student) - similarity_matrix(teacher)
    return diff.pow(2).sum() / len(student) ** 2


class SPKDLoss(nn.Module):
    """Mean over ``(teacher_path, student_path)`` pairs of :func:`spkd_distance`.

    Example:
        >>> loss = SPKDLoss([("stages.2", "stages.1")])
        >>> value = loss({"teacher": t_feats, "student": s_feats})  # doctest: +SKIP
    """

    needs_features: ClassVar[bool] = True

    def __init__(self, pairs: Iterable[Sequence[str]] = (("", ""),)) -> None:
        super().__init__()
        self.pairs = check_pairs(pairs, "spkd")

    def forward(self, features: FeatureMaps) -> torch.Tensor:
        losses = [spkd_distance(s, t) for t, s in paired_features(features, self.pairs, "spkd")]
        return torch.stack(losses).mean()
