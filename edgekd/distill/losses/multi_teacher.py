"""Distillation from several teachers: combine their soft targets, then apply Hinton KD.

Modes of :func:`combine_teachers` (per sample b, teacher i, probabilities at temperature T):

- ``"mean"``: ``q_b = mean_i softmax(z_ib / T)``.
- ``"confidence"``: ``q_b = Σ_i w_ib · softmax(z_ib / T)`` with ``w_ib ∝ max_c softmax(z_ib)_c``, the
  teacher's own (T = 1) probability of its predicted class, normalised over teachers. Confidence is
  read at T = 1 because at high T every teacher's distribution flattens and the weights would all
  tend to 1/n.

:class:`MultiTeacherKDLoss` then computes ``alpha · T² · KL(q ‖ softmax(s / T)) + (1 - alpha) · CE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from edgekd.core.errors import ConfigError

MODES = ("mean", "confidence")

TeacherLogits = torch.Tensor | Sequence[torch.Tensor]


def stack_teachers(logits: TeacherLogits, teacher_dim: int = 0) -> torch.Tensor:
    """A list of (B, C) tensors, or one 3-D tensor with teachers on ``teacher_dim``, as (n, B, C)."""
    if isinstance(logits, torch.Tensor):
        if logits.dim() != 3:
            raise ConfigError(f"multi-teacher logits must be 3-D (got shape {tuple(logits.shape)})")
        return logits.movedim(teacher_dim, 0)
    if not logits:
        raise ConfigError("multi-teacher KD needs at least one teacher's logits")
    shapes = {tuple(t.shape) for t in logits}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ConfigError(f"teacher logits must all be (B, C) of one shape (got {sorted(shapes)})")
    return torch.stack(list(logits))


def teacher_weights(logits: TeacherLogits, mode: str = "mean", teacher_dim: int = 0) -> torch.Tensor:
    """Per-sample teacher weights (n, B), summing to 1 over teachers."""
    stacked = stack_teachers(logits, teacher_dim)
    if mode == "mean":
        return torch.full(stacked.shape[:2], 1.0 / len(stacked), dtype=stacked.dtype, device=stacked.device)
    if mode == "confidence":
        confidence = F.softmax(stacked, dim=2).amax(dim=2)
        return confidence / confidence.sum(dim=0, keepdim=True)
    raise ConfigError(f"unknown multi-teacher mode '{mode}'; known: {', '.join(MODES)}")


def combine_teachers(
    logits: TeacherLogits, mode: str = "mean", temperature: float = 1.0, teacher_dim: int = 0
) -> torch.Tensor:
    """Soft targets (B, C): the teachers' probabilities at ``temperature``, weighted per ``mode``."""
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0 (got {temperature}); typical values are 1-8")
    stacked = stack_teachers(logits, teacher_dim)
    weights = teacher_weights(stacked, mode)
    return (weights.unsqueeze(2) * F.softmax(stacked / temperature, dim=2)).sum(dim=0)


class MultiTeacherKDLoss:
    """Hinton KD against the combined soft targets of several teachers.

    ``teacher_logits`` is a list of (B, C) tensors or one (n, B, C) tensor; with ``teacher_dim=1`` it is
    (B, n, C), the layout the trainer's per-sample indexing of cached logits produces.

    Example:
        >>> loss = MultiTeacherKDLoss(temperature=4.0, alpha=0.7, mode="confidence")
        >>> value = loss(torch.zeros(2, 10), torch.tensor([1, 2]), torch.zeros(3, 2, 10))
    """

    needs_features: ClassVar[bool] = False
    uses_temperature: ClassVar[bool] = True
    #: option -> DistillConfig field it defaults to; ``teacher_dim`` 1 is how the trainer stacks cached logits
    config_options: ClassVar[dict[str, str]] = {"mode": "multi_mode"}
    fixed_options: ClassVar[dict[str, Any]] = {"teacher_dim": 1}

    def __init__(self, temperature: float = 4.0, alpha: float = 0.7, mode: str = "mean", teacher_dim: int = 0) -> None:
        if temperature <= 0:
            raise ConfigError(f"temperature must be > 0 (got {temperature}); typical values are 1-8")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"alpha must be in [0, 1] (got {alpha}); it weighs soft vs hard targets")
        if mode not in MODES:
            raise ConfigError(f"unknown multi-teacher mode '{mode}'; known: {', '.join(MODES)}")
        if teacher_dim not in (0, 1):
            raise ConfigError(f"teacher_dim must be 0 (n, B, C) or 1 (B, n, C) (got {teacher_dim})")
        self.temperature = temperature
        self.alpha = alpha
        self.mode = mode
        self.teacher_dim = teacher_dim

    def __call__(self, student: torch.Tensor, labels: torch.Tensor, teacher: TeacherLogits | None) -> torch.Tensor:
        hard = F.cross_entropy(student, labels)
        if teacher is None or self.alpha == 0.0:
            return hard
        with torch.no_grad():
            target = combine_teachers(teacher, self.mode, self.temperature, self.teacher_dim)
        log_p_s = F.log_softmax(student / self.temperature, dim=1)
        soft = F.kl_div(log_p_s, target, reduction="batchmean") * self.temperature**2
        return self.alpha * soft + (1.0 - self.alpha) * hard
