"""Attention transfer (Zagoruyko & Komodakis, 2017): match where the networks "look".

The attention map of a (B, C, H, W) feature is ``mean_c |f|^p`` (p = 2), flattened and L2-normalised
per sample, so it is invariant to a positive scaling of the feature. Per pair the loss is the
batch mean of ``||a_s - a_t||_2`` — the non-squared distance of the paper's Eq. (2); with
``squared=True`` it is ``||a_s - a_t||_2^2``, which is what the authors' code optimises up to a
constant 1/(H·W). The larger map is adaptive-average-pooled to the smaller one first; channel
counts may differ. The loss is the mean over pairs; the paper's β/2 factor is left to the weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.distill.feature_hooks import FeatureMaps, check_pairs, match_spatial, paired_features


def attention_map(feature: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """(B, C, H, W) -> (B, H·W): ``mean_c |f|^p``, flattened, L2-normalised per sample."""
    if feature.dim() != 4:
        raise ConfigError(f"at: attention maps need (B, C, H, W) features, got shape {tuple(feature.shape)}")
    return F.normalize(feature.abs().pow(p).mean(dim=1).flatten(1), dim=1)


def at_distance(student: torch.Tensor, teacher: torch.Tensor, p: float = 2.0, squared: bool = False) -> torch.Tensor:
    """Batch mean of the L2 distance (or its square) between the two features' attention maps."""
    student, teacher = match_spatial(student, teacher)
    diff = attention_map(student, p) - attention_map(teacher, p)
    dist = diff.pow(2).sum(dim=1) if squared else torch.linalg.vector_norm(diff, dim=1)
    return dist.mean()


class ATLoss(nn.Module):
    """Mean over ``(teacher_path, student_path)`` pairs of :func:`at_distance`.

    Example:
        >>> loss = ATLoss([("stages.0", "stages.0"), ("stages.1", "stages.1")])
        >>> value = loss({"teacher": t_feats, "student": s_feats})  # doctest: +SKIP
    """

    needs_features: ClassVar[bool] = True

    def __init__(self, pairs: Iterable[Sequence[str]], p: float = 2.0, squared: bool = False) -> None:
        super().__init__()
        if p <= 0:
            raise ConfigError(f"at: p must be > 0 (got {p}); the paper uses 2")
        self.pairs = check_pairs(pairs, "at")
        self.p = p
        self.squared = squared

    def forward(self, features: FeatureMaps) -> torch.Tensor:
        losses = [at_distance(s, t, self.p, self.squared) for t, s in paired_features(features, self.pairs, "at")]
        return torch.stack(losses).mean()
