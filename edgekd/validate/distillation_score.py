"""Distillation score: one number trading the student's size against its accuracy loss (lower is better).

``DS = α · (student size / teacher size) + (1 − α) · (1 − student accuracy / teacher accuracy)``

``α`` weighs size against accuracy and comes from a policy name or a number in [0, 1]. A student the size of
the teacher that keeps all its accuracy scores ``α``; a tiny student that keeps all the accuracy scores ~0.
A student *more* accurate than the teacher makes the accuracy term negative (reported as it is).

Example:
    >>> ds = distillation_score(1e6, 1e7, 0.88, 0.92, policy="edge")
    >>> ds.alpha, round(ds.score, 4)  # 0.7·0.1 + 0.3·(1 − 0.88/0.92)
    (0.7, 0.083)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgekd.core.errors import ConfigError, InputError
from edgekd.validate import rounded

#: Named policies and their α (weight of the size term).
POLICIES: dict[str, float] = {"edge": 0.7, "balanced": 0.5, "safety-critical": 0.2}


def resolve_alpha(policy: str | float) -> tuple[str, float]:
    """``(policy name, α)`` for a policy name, a number in [0, 1] or its text (``"0.3"``).

    Raises:
        ConfigError: unknown name or a number outside [0, 1]; one line listing the known policies.
    """
    known = ", ".join(f"{k} ({v})" for k, v in POLICIES.items())
    if isinstance(policy, str) and policy in POLICIES:
        return policy, POLICIES[policy]
    if isinstance(policy, bool):
        raise ConfigError(f"distillation-score policy: {policy!r} is not a policy; known policies: {known}")
    try:
        alpha = float(policy)
    except (TypeError, ValueError):
        raise ConfigError(
            f"distillation-score policy: unknown policy {policy!r}; known policies: {known}, or a number in [0, 1]"
        ) from None
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ConfigError(f"distillation-score policy: α = {policy!r} is outside [0, 1]; known policies: {known}")
    return "custom", alpha


@dataclass(frozen=True)
class DistillationScore:
    """The score and everything it was computed from.

    Attributes:
        score: DS, lower is better.
        policy: the policy name, or ``custom`` for a number.
        alpha: weight of the size term.
        student_size, teacher_size: sizes in any one unit (parameters or bytes).
        student_accuracy, teacher_accuracy: top-1, 0-1.
        size_ratio: student size / teacher size.
        accuracy_ratio: student accuracy / teacher accuracy.
    """

    score: float
    policy: str
    alpha: float
    student_size: float
    teacher_size: float
    student_accuracy: float
    teacher_accuracy: float
    size_ratio: float
    accuracy_ratio: float

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "score": rounded(self.score),
            "policy": self.policy,
            "alpha": rounded(self.alpha, 4),
            "size_ratio": rounded(self.size_ratio),
            "accuracy_ratio": rounded(self.accuracy_ratio),
            "inputs": {
                "student_size": self.student_size,
                "teacher_size": self.teacher_size,
                "student_accuracy": rounded(self.student_accuracy),
                "teacher_accuracy": rounded(self.teacher_accuracy),
            },
        }


def distillation_score(
    student_size: float,
    teacher_size: float,
    student_accuracy: float,
    teacher_accuracy: float,
    policy: str | float = "balanced",
) -> DistillationScore:
    """Distillation score of a student against its teacher.

    Args:
        student_size: student size (parameters or bytes, the same unit as ``teacher_size``).
        teacher_size: teacher size, > 0.
        student_accuracy: student top-1, 0-1.
        teacher_accuracy: teacher top-1, in (0, 1].
        policy: ``edge`` (α 0.7), ``balanced`` (0.5), ``safety-critical`` (0.2) or α in [0, 1].

    Raises:
        ConfigError: unknown policy or α outside [0, 1].
        InputError: a size or accuracy out of range.
    """
    name, alpha = resolve_alpha(policy)
    if not (student_size >= 0 and teacher_size > 0):
        raise InputError(f"sizes must be student >= 0 and teacher > 0, got {student_size} and {teacher_size}")
    if not (0.0 <= student_accuracy <= 1.0 and 0.0 < teacher_accuracy <= 1.0):
        raise InputError(
            f"accuracies are fractions 0-1 (teacher > 0), got student {student_accuracy}, teacher {teacher_accuracy}"
        )
    size_ratio = student_size / teacher_size
    accuracy_ratio = student_accuracy / teacher_accuracy
    score = alpha * size_ratio + (1.0 - alpha) * (1.0 - accuracy_ratio)
    return DistillationScore(
        score,
        name,
        alpha,
        float(student_size),
        float(teacher_size),
        float(student_accuracy),
        float(teacher_accuracy),
        size_ratio,
        accuracy_ratio,
    )
