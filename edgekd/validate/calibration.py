"""Calibration: does the student's confidence match how often it is right?

- ECE (expected calibration error): samples binned by confidence (max probability) into equal-width
  bins over [0, 1]; the mean of ``|accuracy - confidence|`` per bin, weighted by the bin's share of samples.
- MCE (maximum calibration error): the largest such gap over non-empty bins.
- Temperature scaling: one scalar ``T > 0`` dividing the logits, fitted on validation logits. It changes
  confidence, never the predicted class. Two objectives:

  * ``ece`` (default): the ``T`` on a fine log-spaced grid (which contains ``T = 1``) with the lowest
    validation ECE, ties broken by NLL. ECE is what the report and the gate judge, and a model that is
    already nearly calibrated can have its ECE *raised* by the NLL optimum (the NLL also rewards sharper
    correct predictions); since ``T = 1`` is a candidate, the fit never raises validation ECE. The held-out
    test split shows whether the gain generalises.
  * ``nll``: Guo et al. (2017): minimise the negative log-likelihood (golden-section search on ``log T``;
    the NLL is convex in ``1/T``, hence unimodal in ``log T``).

Example:
    >>> import numpy as np
    >>> probs = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> round(expected_calibration_error(probs, np.array([0, 1])), 4)  # (|1-0.9| + |0-0.6|) / 2
    0.35
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgekd.core.errors import InputError
from edgekd.validate import as_labels, as_scores, rounded, same_length

#: Number of equal-width confidence bins.
N_BINS = 15
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
#: Temperature-fitting objectives.
OBJECTIVES = ("ece", "nll")
#: Grid points per factor of 10 in ``T`` for the ``ece`` objective (step ~1.2 % in ``T``).
_GRID_PER_DECADE = 200


def softmax(logits: object, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature}")
    z = as_scores(logits, "logits") / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin ``(lower, upper]`` (the first bin includes 0)."""

    lower: float
    upper: float
    count: int
    confidence: float | None
    accuracy: float | None

    def to_json(self) -> dict:
        """JSON-able dict (``confidence``/``accuracy`` None for an empty bin)."""
        return {
            "lower": rounded(self.lower, 4),
            "upper": rounded(self.upper, 4),
            "count": self.count,
            "confidence": rounded(self.confidence),
            "accuracy": rounded(self.accuracy),
        }


@dataclass(frozen=True)
class CalibrationReport:
    """ECE, MCE and the reliability diagram of one set of probabilities."""

    ece: float
    mce: float
    bins: list[ReliabilityBin]
    samples: int

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "ece": rounded(self.ece),
            "mce": rounded(self.mce),
            "n_bins": len(self.bins),
            "samples": self.samples,
            "bins": [b.to_json() for b in self.bins],
        }


def _checked(probs: object, labels: object) -> tuple[np.ndarray, np.ndarray]:
    p, lab = as_scores(probs, "probs"), as_labels(labels)
    same_length("probs", p, "labels", lab)
    if p.min() < 0 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise InputError("probs: rows must be probabilities summing to 1 (apply softmax to logits first)")
    if lab.max() >= p.shape[1]:
        raise InputError(f"labels: class index {int(lab.max())} but probs has {p.shape[1]} classes")
    return p, lab


def calibration_report(probs: object, labels: object, n_bins: int = N_BINS) -> CalibrationReport:
    """ECE, MCE and reliability-diagram bins of ``probs`` (shape ``(n, classes)``) against ``labels``."""
    if n_bins < 1:
        raise InputError(f"n_bins must be >= 1, got {n_bins}")
    p, lab = _checked(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == lab).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.digitize(conf, edges[1:-1], right=True)
    bins: list[ReliabilityBin] = []
    ece = mce = 0.0
    for i in range(n_bins):
        mask = index == i
        count = int(mask.sum())
        if count == 0:
            bins.append(ReliabilityBin(float(edges[i]), float(edges[i + 1]), 0, None, None))
            continue
        mean_conf, acc = float(conf[mask].mean()), float(correct[mask].mean())
        gap = abs(acc - mean_conf)
        ece += gap * count / len(lab)
        mce = max(mce, gap)
        bins.append(ReliabilityBin(float(edges[i]), float(edges[i + 1]), count, mean_conf, acc))
    return CalibrationReport(ece, mce, bins, len(lab))


def expected_calibration_error(probs: object, labels: object, n_bins: int = N_BINS) -> float:
    """ECE 0-1 (see :func:`calibration_report`)."""
    return calibration_report(probs, labels, n_bins).ece


def nll(logits: object, labels: object, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = as_scores(logits, "logits") / temperature
    lab = as_labels(labels)
    same_length("logits", z, "labels", lab)
    if lab.max() >= z.shape[1]:
        raise InputError(f"labels: class index {int(lab.max())} but logits has {z.shape[1]} classes")
    m = z.max(axis=1)
    log_norm = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(lab)), lab]))


def fit_temperature(
    logits: object, labels: object, bounds: tuple[float, float] = (0.05, 20.0), tol: float = 1e-5
) -> float:
    """The temperature ``T`` in ``bounds`` minimising the NLL of ``labels`` (golden-section on ``log T``).

    Args:
        logits: validation logits, shape ``(n, classes)``.
        labels: validation labels, shape ``(n,)``.
        bounds: search interval for ``T``; an optimum at a bound means the logits are degenerate
            (e.g. every sample right with a margin: ``T`` -> 0 keeps lowering the NLL).
        tol: stop when the interval in ``log T`` is narrower than this.
    """
    z, lab = as_scores(logits, "logits"), as_labels(labels)
    same_length("logits", z, "labels", lab)
    if not 0 < bounds[0] < bounds[1]:
        raise InputError(f"temperature bounds must satisfy 0 < low < high, got {bounds}")
    a, b = math.log(bounds[0]), math.log(bounds[1])
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = nll(z, lab, math.exp(c)), nll(z, lab, math.exp(d))
    while b - a > tol:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = nll(z, lab, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = nll(z, lab, math.exp(d))
    return math.exp((a + b) / 2.0)


def fit_temperature_ece(
    logits: object, labels: object, n_bins: int = N_BINS, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """The temperature in ``bounds`` with the lowest ECE of ``labels``, searched on a log-spaced grid.

    The grid contains ``T = 1`` exactly, so the result never has a higher ECE than the raw logits;
    ties (ECE is piecewise constant in ``T``) go to the lowest NLL.

    Args:
        logits: validation logits, shape ``(n, classes)``.
        labels: validation labels, shape ``(n,)``.
        n_bins: ECE bins.
        bounds: search interval for ``T``.
    """
    z, lab = as_scores(logits, "logits"), as_labels(labels)
    same_length("logits", z, "labels", lab)
    if not 0 < bounds[0] <= 1.0 <= bounds[1]:
        raise InputError(f"temperature bounds must satisfy 0 < low <= 1 <= high, got {bounds}")
    lo, hi = math.log10(bounds[0]), math.log10(bounds[1])
    below = np.linspace(lo, 0.0, max(2, round(-lo * _GRID_PER_DECADE) + 1))
    above = np.linspace(0.0, hi, max(2, round(hi * _GRID_PER_DECADE) + 1))[1:]
    best: tuple[float, float, float] | None = None
    for t in 10.0 ** np.concatenate([below, above]):
        score = (expected_calibration_error(softmax(z, float(t)), lab, n_bins), nll(z, lab, float(t)), float(t))
        if best is None or score[:2] < best[:2]:
            best = score
    assert best is not None
    return best[2]


@dataclass(frozen=True)
class TemperatureScaling:
    """A fitted temperature and its effect on one evaluation split.

    Attributes:
        temperature: fitted ``T`` (> 1: the model was overconfident; < 1: underconfident).
        split: name of the split the before/after figures are measured on.
        ece_before, ece_after: ECE on that split at ``T = 1`` and at the fitted ``T``.
        nll_before, nll_after: mean NLL on that split at ``T = 1`` and at the fitted ``T``.
        fit_samples, samples: sizes of the fitting split and of the evaluation split.
        objective: what ``temperature`` minimised on the fitting split (``ece`` or ``nll``).
        nll_temperature: the NLL-optimal temperature, for comparison (equal to ``temperature`` for ``nll``).
    """

    temperature: float
    split: str
    ece_before: float
    ece_after: float
    nll_before: float
    nll_after: float
    fit_samples: int
    samples: int
    objective: str = "nll"
    nll_temperature: float | None = None

    def to_json(self) -> dict:
        """JSON-able dict."""
        return {
            "temperature": rounded(self.temperature, 4),
            "split": self.split,
            "ece_before": rounded(self.ece_before),
            "ece_after": rounded(self.ece_after),
            "nll_before": rounded(self.nll_before),
            "nll_after": rounded(self.nll_after),
            "fit_samples": self.fit_samples,
            "samples": self.samples,
            "objective": self.objective,
            "nll_temperature": rounded(self.nll_temperature, 4) if self.nll_temperature is not None else None,
        }


def temperature_scaling(
    val_logits: object,
    val_labels: object,
    eval_logits: object | None = None,
    eval_labels: object | None = None,
    split: str = "test",
    n_bins: int = N_BINS,
    objective: str = "ece",
) -> TemperatureScaling:
    """Fit ``T`` on validation logits, then measure ECE and NLL before/after on an evaluation split.

    Args:
        val_logits, val_labels: the split ``T`` is fitted on.
        eval_logits, eval_labels: the split the figures are reported on; the validation split when omitted
            (then ``split`` should say so, e.g. ``"val"``).
        split: name of the evaluation split, recorded in the result.
        n_bins: ECE bins.
        objective: ``ece`` (lowest validation ECE) or ``nll`` (lowest validation NLL); see the module doc.
    """
    if (eval_logits is None) != (eval_labels is None):
        raise InputError("give both eval_logits and eval_labels, or neither")
    if objective not in OBJECTIVES:
        raise InputError(f"unknown temperature objective '{objective}'; choose one of {', '.join(OBJECTIVES)}")
    nll_temperature = fit_temperature(val_logits, val_labels)
    temperature = nll_temperature if objective == "nll" else fit_temperature_ece(val_logits, val_labels, n_bins)
    if eval_logits is None:
        eval_logits, eval_labels = val_logits, val_labels
    z, lab = as_scores(eval_logits, "eval_logits"), as_labels(eval_labels, "eval_labels")
    return TemperatureScaling(
        temperature=temperature,
        split=split,
        ece_before=expected_calibration_error(softmax(z), lab, n_bins),
        ece_after=expected_calibration_error(softmax(z, temperature), lab, n_bins),
        nll_before=nll(z, lab),
        nll_after=nll(z, lab, temperature),
        fit_samples=len(as_labels(val_labels, "val_labels")),
        samples=len(lab),
        objective=objective,
        nll_temperature=nll_temperature,
    )
