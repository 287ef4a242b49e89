"""Accuracy by class: weak-slice flags and the student's per-class regression against the teacher.

Accuracies are fractions 0-1 (as ``teacher/student.accuracy`` in report.json); differences between
accuracies are *points* (percentage points, 0-100), as the gate's ``per_class_drop`` rule.

Example:
    >>> import numpy as np
    >>> rep = slice_report(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), ["cat", "dog"])
    >>> rep.accuracy, rep.to_json()["per_class"]
    (0.75, {'cat': 0.666667, 'dog': 1.0})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgekd.core.errors import InputError
from edgekd.validate import as_labels, rounded, same_length

#: A class is a weak slice when its accuracy is below this fraction of the overall accuracy.
WEAK_SLICE_RATIO = 0.7
#: Per-class spread (best minus worst class), in points, above which the slices are flagged.
MAX_SPREAD_POINTS = 20.0
#: Differences this small are floating-point noise: a value on a limit counts as on it (as in the gate).
_EPS = 1e-9


def accuracy(predictions: object, labels: object) -> float:
    """Top-1 accuracy 0-1 of predicted class indices against ``labels``."""
    pred, lab = as_labels(predictions, "predictions"), as_labels(labels)
    same_length("predictions", pred, "labels", lab)
    return float(np.mean(pred == lab))


def _class_names(lab: np.ndarray, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(int(lab.max()) + 1)]
    names = [str(n) for n in class_names]
    if int(lab.max()) >= len(names):
        raise InputError(f"labels: class index {int(lab.max())} but only {len(names)} class names")
    return names


def per_class_accuracy(
    predictions: object, labels: object, class_names: Sequence[str] | None = None
) -> dict[str, float]:
    """Accuracy 0-1 of each class present in ``labels``, keyed by class name (index as text by default).

    Classes without a sample in ``labels`` are left out: they have no accuracy to report.
    """
    pred, lab = as_labels(predictions, "predictions"), as_labels(labels)
    same_length("predictions", pred, "labels", lab)
    names = _class_names(lab, class_names)
    return {names[c]: float(np.mean(pred[lab == c] == c)) for c in np.unique(lab)}


@dataclass(frozen=True)
class SliceReport:
    """Overall and per-class accuracy with plain-language findings.

    Attributes:
        accuracy: overall top-1, 0-1.
        per_class: class name -> top-1, 0-1.
        counts: class name -> number of samples.
        spread_points: best minus worst class, points.
        minority_class: the class with the fewest samples (first such class on a tie).
        weak_classes: classes below ``WEAK_SLICE_RATIO`` x overall accuracy.
        findings: one sentence per flag; empty when nothing is flagged.
    """

    accuracy: float
    per_class: dict[str, float]
    counts: dict[str, int]
    spread_points: float
    minority_class: str
    weak_classes: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """True when any slice rule fired."""
        return bool(self.findings)

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "accuracy": rounded(self.accuracy),
            "per_class": {k: rounded(v) for k, v in self.per_class.items()},
            "counts": dict(self.counts),
            "spread_points": rounded(self.spread_points, 2),
            "minority_class": self.minority_class,
            "weak_classes": list(self.weak_classes),
            "flagged": self.flagged,
            "findings": list(self.findings),
        }


def slice_report(
    predictions: object,
    labels: object,
    class_names: Sequence[str] | None = None,
    weak_ratio: float = WEAK_SLICE_RATIO,
    max_spread_points: float = MAX_SPREAD_POINTS,
) -> SliceReport:
    """Per-class accuracy and the slice rules.

    Rules: a class whose accuracy is below ``weak_ratio`` x the overall accuracy is a weak slice (this
    covers the minority class, and any other class, since on a balanced split every class is a
    "minority"); a spread between best and worst class above ``max_spread_points`` is flagged.

    Args:
        predictions: predicted class indices, shape ``(n,)``.
        labels: true class indices, shape ``(n,)``.
        class_names: names by class index; indices as text when omitted.
        weak_ratio: fraction of the overall accuracy below which a class is weak.
        max_spread_points: largest acceptable best-minus-worst class spread, points.
    """
    pred, lab = as_labels(predictions, "predictions"), as_labels(labels)
    same_length("predictions", pred, "labels", lab)
    overall = float(np.mean(pred == lab))
    per_class = per_class_accuracy(pred, lab, class_names)
    names = _class_names(lab, class_names)
    counts = {names[c]: int(np.sum(lab == c)) for c in np.unique(lab)}
    minority = min(counts, key=counts.get)
    findings: list[str] = []
    weak = [c for c, acc in per_class.items() if acc < weak_ratio * overall - _EPS]
    for c in weak:
        which = "minority class" if c == minority else "class"
        findings.append(
            f"{which} '{c}' ({counts[c]} samples) is right {100 * per_class[c]:.1f} % of the time, "
            f"below {100 * weak_ratio:.0f} % of the overall {100 * overall:.1f} %"
        )
    best, worst = max(per_class, key=per_class.get), min(per_class, key=per_class.get)
    spread = 100.0 * (per_class[best] - per_class[worst])
    if spread > max_spread_points + _EPS:
        findings.append(
            f"accuracy varies by {spread:.1f} points between classes ('{best}' "
            f"{100 * per_class[best]:.1f} %, '{worst}' {100 * per_class[worst]:.1f} %), "
            f"more than {max_spread_points:g} points"
        )
    return SliceReport(overall, per_class, counts, spread, minority, weak, findings)


@dataclass(frozen=True)
class ClassRegression:
    """Student vs teacher per class, in points.

    Attributes:
        drop_points: class name -> teacher minus student accuracy, points (positive = the student is worse),
            the quantity the gate's ``per_class_drop`` rule limits.
        worst_class: class with the largest drop.
        worst_drop_points: that drop, points.
    """

    drop_points: dict[str, float]
    worst_class: str
    worst_drop_points: float

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "drop_points": {k: rounded(v, 2) for k, v in self.drop_points.items()},
            "worst_class": self.worst_class,
            "worst_drop_points": rounded(self.worst_drop_points, 2),
        }


def per_class_regression(teacher: Mapping[str, float], student: Mapping[str, float]) -> ClassRegression:
    """Per-class drop of the student against the teacher over the classes both have.

    Args:
        teacher: class name -> teacher accuracy 0-1 (e.g. from :func:`per_class_accuracy`).
        student: class name -> student accuracy 0-1.

    Raises:
        InputError: the two have no class in common.
    """
    common = [c for c in teacher if c in student]
    if not common:
        raise InputError("teacher and student per-class accuracies have no class in common")
    drops = {c: 100.0 * (float(teacher[c]) - float(student[c])) for c in common}
    worst = max(drops, key=drops.get)
    return ClassRegression(drops, worst, drops[worst])
