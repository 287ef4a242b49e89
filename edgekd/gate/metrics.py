"""The metrics a gate rule can name, and one rule's result.

A rule compares one *value* read from report.json with a *limit*: ``value <= limit`` for every
metric except ``parity`` (``value >= limit``). Each result carries a status:

- ``passed`` / ``failed``: the rule was evaluated;
- ``not-evaluated``: the rule was asked for but the report has no data for it (e.g. no per-class
  accuracy, no ECE, no energy figure, no baseline figure at the same evidence level). Such a row is
  shown, never counted as a pass: ``passed`` is ``None``, ``value`` is ``None`` and ``detail`` says
  what is missing. It does not fail the gate unless the gate is strict (``--strict``).

Example:
    >>> r = RuleResult.check("latency", "latency", 12.5, 10.0, "measured-host", "onnx fp32 p50")
    >>> r.status, r.passed
    ('failed', False)
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import Literal

from edgekd.core.errors import ConfigError

Status = Literal["passed", "failed", "not-evaluated"]


@dataclass(frozen=True)
class Metric:
    """One metric a rule can limit.

    Attributes:
        unit: unit of values and limits (``ms``, ``pt`` = accuracy points, ``B`` = bytes, ``mJ``, ``%``, ``""``).
        op: ``"<="`` (value must not exceed the limit) or ``">="`` (value must reach it).
        meaning: one line for help texts and error messages.
    """

    unit: str
    op: Literal["<=", ">="]
    meaning: str


#: Metrics a rules file or ``--limit METRIC=VALUE`` can name.
METRICS: dict[str, Metric] = {
    "latency": Metric("ms", "<=", "deployed artifact latency at the chosen percentile, best evidence"),
    "accuracy_drop": Metric("pt", "<=", "top-1 drop vs the teacher, points (PyTorch student and deployed artifact)"),
    "per_class_drop": Metric("pt", "<=", "worst per-class top-1 drop vs the teacher, points"),
    "ece": Metric("", "<=", "expected calibration error of the student, 0-1"),
    "size": Metric("B", "<=", "deployed artifact size, bytes (accepts 2MB, 1.5MiB, ...)"),
    "parity": Metric("", ">=", "top-1 agreement of every exported artifact with PyTorch, 0-1"),
    "energy": Metric("mJ", "<=", "energy per inference, best evidence"),
}

#: Baseline comparisons: relative regression in percent (accuracy may use points instead).
REGRESSION_METRIC = Metric("%", "<=", "regression against the baseline report")
REGRESSION_POINTS_METRIC = Metric("pt", "<=", "accuracy regression against the baseline report, points")


def unknown_metric_error(name: str, source: str) -> ConfigError:
    """A one-line error naming the unknown metric, the closest known one and all known metrics."""
    close = difflib.get_close_matches(name, METRICS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{source}: unknown metric '{name}'{hint}; known metrics: {', '.join(METRICS)}")


def format_number(value: float | None, unit: str) -> str:
    """A value with its unit for tables and messages (sizes in MB, regressions signed)."""
    if value is None or not math.isfinite(value):
        return "-"
    if unit == "B":
        return f"{value / 1e6:.3f} MB"
    if unit == "%":
        return f"{value:+.2f} %"
    if unit == "ms":
        return f"{value:.3f} ms"
    if unit == "pt":
        return f"{value:.2f} pt"
    if unit == "mJ":
        return f"{value:.3f} mJ"
    return f"{value:.4f}"


@dataclass(frozen=True)
class RuleResult:
    """One evaluated (or not evaluable) gate rule.

    Attributes:
        name: row name, e.g. ``latency``, ``parity:student-onnx-int8.onnx``, ``baseline:latency``.
        metric: the metric (a key of :data:`METRICS`, or ``regression``).
        status: ``passed``, ``failed`` or ``not-evaluated``.
        value: the figure read from the report, ``None`` when there is none.
        limit: the limit it is compared with.
        op: ``"<="`` or ``">="``.
        unit: unit of ``value`` and ``limit``.
        evidence: where the value came from (an evidence level, ``file``, or ``none``).
        detail: what was compared, or why the rule could not be evaluated.
    """

    name: str
    metric: str
    status: Status
    value: float | None
    limit: float
    op: str
    unit: str
    evidence: str
    detail: str

    @classmethod
    def check(
        cls, name: str, metric: str, value: float, limit: float, evidence: str, detail: str, unit: str | None = None
    ) -> RuleResult:
        """Compare ``value`` with ``limit`` using the metric's direction (a NaN value fails).

        A value equal to the limit passes; differences below ``1e-9`` relative are floating-point noise
        of the arithmetic (e.g. ``100 * (0.90 - 0.89)`` is ``1.0000000000000009``) and count as equal.
        """
        spec = METRICS.get(metric, REGRESSION_METRIC)
        slack = 1e-9 * max(1.0, abs(limit))
        ok = value <= limit + slack if spec.op == "<=" else value >= limit - slack
        status: Status = "passed" if ok and math.isfinite(value) else "failed"
        return cls(name, metric, status, float(value), float(limit), spec.op, unit or spec.unit, evidence, detail)

    @classmethod
    def missing(
        cls,
        name: str,
        metric: str,
        limit: float,
        detail: str,
        status: Status = "not-evaluated",
        unit: str | None = None,
    ) -> RuleResult:
        """A rule with no value: ``not-evaluated`` (optional data absent) or ``failed`` (required data absent)."""
        spec = METRICS.get(metric, REGRESSION_METRIC)
        return cls(name, metric, status, None, float(limit), spec.op, unit or spec.unit, "none", detail)

    @property
    def passed(self) -> bool | None:
        """True/False when evaluated, None when not evaluated."""
        return None if self.status == "not-evaluated" else self.status == "passed"

    @property
    def message(self) -> str:
        """One line: value, comparison and limit, evidence (or why it was not evaluated)."""
        if self.value is None:
            return f"{self.name}: {self.detail}"
        verb = "within" if self.status == "passed" else "outside"
        return (
            f"{self.name} = {format_number(self.value, self.unit)} {verb} limit {self.op} "
            f"{format_number(self.limit, self.unit)} [{self.evidence}]"
        )

    def to_json(self) -> dict:
        """JSON-able dict (``value`` None when absent; never NaN)."""
        value = self.value if self.value is not None and math.isfinite(self.value) else None
        return {"name": self.name, "metric": self.metric, "status": self.status, "passed": self.passed,
                "value": None if value is None else round(value, 6), "limit": self.limit, "op": self.op,
                "unit": self.unit, "evidence": self.evidence, "detail": self.detail}  # fmt: skip

    def to_report_rule(self) -> dict:
        """The ``report.json`` gate row of schema 1.0: ``{name, value, limit, passed, evidence, detail}``."""
        value = float("nan") if self.value is None else round(self.value, 4)
        return {"name": self.name, "value": value, "limit": self.limit, "passed": self.status == "passed",
                "evidence": self.evidence, "detail": self.detail}  # fmt: skip
