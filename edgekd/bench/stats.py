"""Latency statistics: the one place raw per-inference samples become figures.

Every runner returns raw samples (milliseconds per inference); reports, gates and the latency model
read only :class:`LatencyStats`, so all runners are summarised alike.

Example:
    >>> stats = summarize([1.0, 2.0, 3.0, 4.0], init_ms=12.5)
    >>> stats.p50_ms, stats.runs
    (2.5, 4)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_MAX_CV = 0.15
"""Largest coefficient of variation a run may have before it is repeated or flagged."""


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one benchmark's per-inference latencies, in milliseconds.

    Attributes:
        runs: number of timed inferences summarised.
        mean_ms: arithmetic mean.
        std_ms: sample standard deviation (``ddof=1``; 0 for a single sample).
        cv: coefficient of variation, ``std_ms / mean_ms``.
        min_ms: fastest inference.
        max_ms: slowest inference.
        p50_ms: median; percentiles use linear interpolation (numpy's default method).
        p90_ms: 90th percentile.
        p99_ms: 99th percentile.
        init_ms: model load + compile time, when the runner measured it.
    """

    runs: int
    mean_ms: float
    std_ms: float
    cv: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    init_ms: float | None = None

    def to_json(self) -> dict:
        """A JSON-able dict of every field."""
        return asdict(self)

    def stat(self, name: str) -> float:
        """The figure a budget names: ``"p50"``, ``"p90"``, ``"p99"``, ``"mean"``, ``"min"``, ``"max"``."""
        value = getattr(self, f"{name}_ms", None)
        if value is None:
            raise ValueError(f"unknown latency statistic '{name}'")
        return value


def summarize(samples_ms: Sequence[float] | np.ndarray, init_ms: float | None = None) -> LatencyStats:
    """Summarise raw per-inference latencies.

    Args:
        samples_ms: one entry per timed inference, in milliseconds (warm-up excluded).
        init_ms: model load + compile time, carried through unchanged.

    Returns:
        The summary; percentiles by linear interpolation between closest ranks.

    Raises:
        ValueError: no samples, or a sample that is not a finite non-negative number.
    """
    arr = np.asarray(samples_ms, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("no latency samples to summarise")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("latency samples must be finite and non-negative")
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
    p50, p90, p99 = (float(v) for v in np.percentile(arr, [50, 90, 99]))
    if init_ms is not None and not math.isfinite(init_ms):
        raise ValueError("init_ms must be finite")
    return LatencyStats(
        runs=int(arr.size),
        mean_ms=mean,
        std_ms=std,
        cv=std / mean if mean > 0 else 0.0,
        min_ms=float(arr.min()),
        max_ms=float(arr.max()),
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        init_ms=None if init_ms is None else float(init_ms),
    )


def is_unstable(stats: LatencyStats, max_cv: float = DEFAULT_MAX_CV) -> bool:
    """True when the run-to-run spread is too large to trust the figures (``cv > max_cv``).

    Args:
        stats: the summary to judge.
        max_cv: the largest acceptable coefficient of variation.
    """
    unstable = stats.cv > max_cv
    if unstable:
        logger.debug("latency unstable: cv %.3f > %.3f over %d runs", stats.cv, max_cv, stats.runs)
    return unstable


def cv_flag(stats: LatencyStats, max_cv: float = DEFAULT_MAX_CV) -> str | None:
    """A one-line warning when the run is unstable (``cv > max_cv``), else None.

    Reports and the CLI show it next to the figures, so a noisy number is never silently trusted.
    """
    if not is_unstable(stats, max_cv):
        return None
    return (f"unstable: cv {stats.cv:.3f} > {max_cv:.3f} over {stats.runs} runs "
            f"(p50 {stats.p50_ms:.3f} ms, max {stats.max_ms:.3f} ms); noisy: other load or throttling?")  # fmt: skip
