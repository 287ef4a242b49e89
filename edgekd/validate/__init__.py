"""edgekd.validate: teacher vs student beyond top-1 accuracy.

Pure numpy functions on logits, probabilities and labels; each returns a small dataclass with
``to_json()``. Modules (import the one you need; this package imports none of them):

- :mod:`~edgekd.validate.slices`: overall and per-class accuracy, weak-slice flags, per-class regression;
- :mod:`~edgekd.validate.calibration`: ECE, MCE, reliability diagram, post-hoc temperature scaling;
- :mod:`~edgekd.validate.distillation_score`: one score trading size against accuracy, by policy;
- :mod:`~edgekd.validate.cascade`: student-first cascade with escalation to the teacher;
- :mod:`~edgekd.validate.failure_modes`: capacity cliff, minority-slice collapse, overconfident student;
- :mod:`~edgekd.validate.corruptions`: a seeded corruption suite (noise, blur, brightness, contrast, shift/rotate);
- :mod:`~edgekd.validate.validate_build`: all of the above on one build's logits, as report.json's ``validation``.

The small array checks shared by these modules live here, so that no module imports another only for them.
"""

from __future__ import annotations

import math

import numpy as np

from edgekd.core.errors import InputError


def as_labels(labels: object, name: str = "labels") -> np.ndarray:
    """``labels`` as a 1-D int64 array of non-negative class indices.

    Raises:
        InputError: not 1-D, empty, not integral or negative.
    """
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError(f"{name}: expected a non-empty 1-D array of class indices, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer) and not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise InputError(f"{name}: class indices must be integers")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise InputError(f"{name}: class indices must be >= 0")
    return arr


def as_scores(scores: object, name: str, rows: int | None = None) -> np.ndarray:
    """``scores`` (logits or probabilities) as a finite 2-D float64 array ``(samples, classes)``.

    Raises:
        InputError: wrong shape, non-finite values, or ``rows`` given and not matched.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise InputError(f"{name}: expected a 2-D array (samples, classes>=2), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name}: contains NaN or infinite values")
    if rows is not None and arr.shape[0] != rows:
        raise InputError(f"{name}: {arr.shape[0]} samples, expected {rows}")
    return arr


def same_length(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``a`` and ``b`` have the same number of samples."""
    if len(a) != len(b):
        raise InputError(f"{name_a} has {len(a)} samples but {name_b} has {len(b)}")


def rounded(value: float | None, digits: int = 6) -> float | None:
    """``value`` rounded for JSON; None for None or a non-finite value (JSON has no NaN)."""
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
