"""Relational knowledge distillation (Park et al., 2019): match distances and angles within a batch.

Embeddings are flattened to (B, D). The distance term compares pairwise Euclidean distances, each
set divided by its own mean off-diagonal distance, with smooth L1. The angle term compares the
cosines of all triplet angles ``cos ∠(x_i, x_j, x_k) = <e_ij, e_kj>`` with
``e_ij = (x_i - x_j) / ||x_i - x_j||`` (0 when i == j or k == j), with smooth L1. Both are computed
from the centred Gram matrix, so memory is O(B² + B³) rather than O(B³·D) and large flattened conv
maps fit. Total per pair: ``w_dist · distance + w_angle · angle`` (paper defaults 25 and 50), mean
over pairs. The default pair ``("", "")`` relates the model outputs (the logits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.distill.feature_hooks import FeatureMaps, check_pairs, paired_features

_EPS = 1e-12


def _centred_gram(embeddings: torch.Tensor) -> torch.Tensor:
    x = embeddings.flatten(1)
    x = x - x.mean(dim=0, keepdim=True)  # distances and angles are translation invariant; centring helps precision
    return x @ x.t()


def _distances(gram: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances from a Gram matrix, exactly zero on the diagonal."""
    diag = gram.diagonal()
    squared = (diag[:, None] + diag[None, :] - 2 * gram).clamp(min=_EPS)
    off_diag = ~torch.eye(len(gram), dtype=torch.bool, device=gram.device)
    return squared.sqrt() * off_diag


def pairwise_distance_potential(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, B) pairwise distances divided by their mean over distinct pairs."""
    dist = _distances(_centred_gram(embeddings))
    n = len(dist)
    mean = dist.sum() / max(1, n * (n - 1))
    return dist / mean.clamp(min=_EPS)


def angle_potential(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, ...) -> (B, B, B) with entry [j, i, k] = cos of the angle at x_j between x_i and x_k."""
    gram = _centred_gram(embeddings)
    dist = _distances(gram)
    diag = gram.diagonal()
    # <x_i - x_j, x_k - x_j> = G_ik - G_ij - G_jk + G_jj, indexed [j, i, k]
    dot = gram[None, :, :] - gram.t()[:, :, None] - gram[:, None, :] + diag[:, None, None]
    # Points closer than 1e-3 of the largest centred norm count as coincident (cosine 0, as for
    # the zero vector): below that the Gram-based squared distance is float32 round-off.
    apart = dist > 1e-3 * diag.max().clamp(min=_EPS).sqrt()
    valid = apart.t()[:, :, None] & apart.t()[:, None, :]
    denom = dist.t()[:, :, None] * dist.t()[:, None, :]  # ||x_i - x_j|| · ||x_k - x_j||
    cos = dot / torch.where(valid, denom, torch.ones_like(denom))
    return torch.where(valid, cos.clamp(-1.0, 1.0), torch.zeros_like(cos))


def rkd_distance_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between the normalised pairwise-distance matrices."""
    with torch.no_grad():
        target = pairwise_distance_potential(teacher)
    return F.smooth_l1_loss(pairwise_distance_potential(student), target)


def rkd_angle_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Smooth L1 between the triplet-angle cosine tensors."""
    with torch.no_grad():
        target = angle_potential(teacher)
    return F.smooth_l1_loss(angle_potential(student), target)


class RKDLoss(nn.Module):
    """``w_dist · distance + w_angle · angle``, mean over ``(teacher_path, student_path)`` pairs.

    Example:
        >>> loss = RKDLoss()  # relates the logits: pair ("", "")
        >>> value = loss({"teacher": {"": teacher_logits}, "student": {"": student_logits}})  # doctest: +SKIP
    """

    needs_features: ClassVar[bool] = True

    def __init__(
        self, pairs: Iterable[Sequence[str]] = (("", ""),), w_dist: float = 25.0, w_angle: float = 50.0
    ) -> None:
        super().__init__()
        if w_dist < 0 or w_angle < 0:
            raise ConfigError(f"rkd: w_dist and w_angle must be >= 0 (got {w_dist}, {w_angle}); the paper uses 25, 50")
        self.pairs = check_pairs(pairs, "rkd")
        self.w_dist = w_dist
        self.w_angle = w_angle

    def forward(self, features: FeatureMaps) -> torch.Tensor:
        losses = []
        for teacher, student in paired_features(features, self.pairs, "rkd"):
            if len(student) != len(teacher):
                raise ConfigError(f"rkd: batch sizes differ (student {len(student)}, teacher {len(teacher)})")
            total = student.new_zeros(())
            if self.w_dist:
                total = total + self.w_dist * rkd_distance_loss(student, teacher)
            if self.w_angle:
                total = total + self.w_angle * rkd_angle_loss(student, teacher)
            losses.append(total)
        return torch.stack(losses).mean()
