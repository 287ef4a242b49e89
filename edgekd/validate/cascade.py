"""Student-first cascade: the student answers when confident, the teacher otherwise.

For a confidence threshold ``t``, a sample whose (calibrated) student max-probability is below ``t`` is
escalated to the teacher. The student always runs first, so

- escalation rate = share of samples with max-probability < ``t``;
- cascade accuracy = student right on kept samples + teacher right on escalated ones, over all samples;
- expected latency = ``student_ms + rate × teacher_ms``.

The recommendation is the threshold with the lowest expected latency whose cascade accuracy reaches the
target (the lowest threshold on a tie). Use calibrated probabilities (see
:func:`edgekd.validate.calibration.temperature_scaling`) so that thresholds mean what they say.

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> sweep = sweep_cascade(probs, [0, 0], [0, 0], 2.0, 10.0, 1.0, thresholds=[0.0, 0.7])
    >>> sweep.recommended.threshold, sweep.recommended.expected_ms
    (0.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgekd.core.errors import InputError
from edgekd.validate import as_labels, as_scores, rounded, same_length

#: Thresholds swept when none are given: 0.00, 0.05, ..., 1.00.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(21))


@dataclass(frozen=True)
class CascadePoint:
    """The cascade at one threshold."""

    threshold: float
    escalation_rate: float
    cascade_accuracy: float
    expected_ms: float

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "threshold": rounded(self.threshold, 4),
            "escalation_rate": rounded(self.escalation_rate),
            "cascade_accuracy": rounded(self.cascade_accuracy),
            "expected_ms": rounded(self.expected_ms, 4),
        }


@dataclass(frozen=True)
class CascadeSweep:
    """All thresholds tried and the recommendation.

    Attributes:
        points: one per threshold, in increasing threshold order.
        target_accuracy: accuracy 0-1 the recommendation must reach.
        recommended: the cheapest point reaching it, or None.
        reason: why this point (or why none).
        student_ms, teacher_ms: latencies used.
        student_accuracy, teacher_accuracy: each model alone on the same samples.
        samples: number of samples.
    """

    points: list[CascadePoint]
    target_accuracy: float
    recommended: CascadePoint | None
    reason: str
    student_ms: float
    teacher_ms: float
    student_accuracy: float
    teacher_accuracy: float
    samples: int

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "target_accuracy": rounded(self.target_accuracy),
            "student_ms": rounded(self.student_ms, 4),
            "teacher_ms": rounded(self.teacher_ms, 4),
            "student_accuracy": rounded(self.student_accuracy),
            "teacher_accuracy": rounded(self.teacher_accuracy),
            "samples": self.samples,
            "recommended": None if self.recommended is None else self.recommended.to_json(),
            "reason": self.reason,
            "points": [p.to_json() for p in self.points],
        }


def sweep_cascade(
    student_probs: object,
    teacher_predictions: object,
    labels: object,
    student_ms: float,
    teacher_ms: float,
    target_accuracy: float,
    thresholds: Sequence[float] | None = None,
) -> CascadeSweep:
    """Sweep confidence thresholds and recommend the cheapest one reaching ``target_accuracy``.

    Args:
        student_probs: calibrated student probabilities, shape ``(n, classes)``.
        teacher_predictions: teacher class indices, shape ``(n,)``.
        labels: true class indices, shape ``(n,)``.
        student_ms: student latency, ms (paid on every sample).
        teacher_ms: teacher latency, ms (paid on escalated samples).
        target_accuracy: cascade accuracy 0-1 to reach.
        thresholds: thresholds in [0, 1] to try; :data:`DEFAULT_THRESHOLDS` when omitted.
    """
    probs = as_scores(student_probs, "student_probs")
    teacher, lab = as_labels(teacher_predictions, "teacher_predictions"), as_labels(labels)
    same_length("student_probs", probs, "labels", lab)
    same_length("teacher_predictions", teacher, "labels", lab)
    if not (student_ms >= 0 and teacher_ms >= 0):
        raise InputError(f"latencies must be >= 0 ms, got student {student_ms}, teacher {teacher_ms}")
    if not 0.0 <= target_accuracy <= 1.0:
        raise InputError(f"target accuracy is a fraction 0-1, got {target_accuracy}")
    grid = sorted({float(t) for t in (DEFAULT_THRESHOLDS if thresholds is None else thresholds)})
    if not grid or grid[0] < 0.0 or grid[-1] > 1.0:
        raise InputError(f"thresholds must be a non-empty list in [0, 1], got {thresholds}")
    conf = probs.max(axis=1)
    student_ok = probs.argmax(axis=1) == lab
    teacher_ok = teacher == lab
    points = []
    for t in grid:
        escalate = conf < t
        rate = float(escalate.mean())
        acc = float(np.where(escalate, teacher_ok, student_ok).mean())
        points.append(CascadePoint(t, rate, acc, student_ms + rate * teacher_ms))
    reachable = [p for p in points if p.cascade_accuracy >= target_accuracy - 1e-9]
    if reachable:
        best = min(reachable, key=lambda p: (p.expected_ms, p.threshold))
        reason = (
            f"cheapest threshold reaching {100 * target_accuracy:.2f} %: {100 * best.escalation_rate:.1f} % "
            f"of samples go to the teacher, {100 * best.cascade_accuracy:.2f} % at {best.expected_ms:.3f} ms"
        )
        if best.escalation_rate == 0.0:
            reason = f"the student alone reaches {100 * target_accuracy:.2f} % ({100 * best.cascade_accuracy:.2f} %)"
    else:
        best_acc = max(points, key=lambda p: p.cascade_accuracy)
        reason = (
            f"no threshold reaches {100 * target_accuracy:.2f} %: the best cascade is "
            f"{100 * best_acc.cascade_accuracy:.2f} % at threshold {best_acc.threshold:g} "
            f"(teacher alone {100 * teacher_ok.mean():.2f} %)"
        )
        best = None
    return CascadeSweep(
        points,
        float(target_accuracy),
        best,
        reason,
        float(student_ms),
        float(teacher_ms),
        float(student_ok.mean()),
        float(teacher_ok.mean()),
        len(lab),
    )
