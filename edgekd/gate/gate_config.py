"""Gate rules: the project's rules file (``gate.yaml``), command-line overrides, and the settings they resolve to.

Precedence, lowest first: the target profile's budgets (the latency limit defaults to the report's
``budget_ms``, i.e. the build's budget, which is the profile's unless the build overrode it) → the
rules file → ``--limit METRIC=VALUE`` → the dedicated options (``--stat``, ``--budget-ms``,
``--max-accuracy-drop``, ``--max-regression``, ...).

A rules file (unknown keys are errors; every key optional)::

    stat: p90                 # latency percentile: p50 | p90 | p99
    strict: false             # true: rules that cannot be evaluated fail the gate
    rules:                    # metric: limit (see edgekd.gate.metrics.METRICS)
      latency: 25             # ms
      accuracy_drop: 1.5      # points, student and deployed artifact vs teacher
      per_class_drop: 5       # points, worst class
      ece: 0.05               # 0-1
      size: 2MB               # bytes; 2MB = 2,000,000, 2MiB = 2,097,152
      parity: 0.98            # top-1 agreement, every artifact (default: the profile's per precision)
      energy: 40              # mJ per inference
    baseline:                 # used with --baseline OLD_REPORT
      max_regression: 5%      # relative, for latency, accuracy and size
      max_accuracy_regression_points: 0.5   # if set, accuracy uses absolute points instead
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ByteSize, ConfigDict, Field, ValidationError

from edgekd.config.loading import format_validation_error, load_model, load_yaml
from edgekd.config.target_profile import Stat, TargetProfile
from edgekd.core.errors import ConfigError
from edgekd.gate.metrics import METRICS, unknown_metric_error

DEFAULT_MAX_REGRESSION = 5.0


def parse_percent(value: object) -> object:
    """``"5%"`` or ``"5"`` or ``5`` → ``5.0`` (percent); anything else is left for pydantic to reject."""
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            return float(text)
        except ValueError:
            return value
    return value


Percent = Annotated[float, BeforeValidator(parse_percent), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a limit of inf or nan gates nothing


class MetricLimits(_Strict):
    """One optional limit per metric; a metric left out keeps its default (or is not gated)."""

    latency: float | None = Field(default=None, gt=0, description="ms at the chosen percentile")
    accuracy_drop: float | None = Field(default=None, ge=0, le=100, description="points vs the teacher")
    per_class_drop: float | None = Field(default=None, ge=0, le=100, description="points, worst class")
    ece: float | None = Field(default=None, ge=0, le=1, description="expected calibration error")
    size: ByteSize | None = Field(default=None, gt=0, description="deployed artifact, bytes or '2MB'")
    parity: float | None = Field(default=None, ge=0, le=1, description="minimum top-1 agreement")
    energy: float | None = Field(default=None, gt=0, description="mJ per inference")


class BaselineRules(_Strict):
    """How much worse than the baseline report a build may be."""

    max_regression: Percent = Field(default=DEFAULT_MAX_REGRESSION, description="percent, relative")
    max_accuracy_regression_points: float | None = Field(
        default=None, ge=0, le=100, description="if set: accuracy regression in absolute points instead"
    )


class GateRulesConfig(_Strict):
    """The rules file (``--rules gate.yaml``)."""

    stat: Stat | None = Field(default=None, description="latency percentile; default: the profile's")
    strict: bool = Field(default=False, description="rules that cannot be evaluated fail the gate")
    rules: MetricLimits = MetricLimits()
    baseline: BaselineRules = BaselineRules()


def _check_metric_names(data: object, source: str) -> None:
    rules = data.get("rules") if isinstance(data, dict) else None
    if isinstance(rules, dict):
        for name in rules:
            if str(name) not in METRICS:
                raise unknown_metric_error(str(name), source)


def load_gate_config(path: Path) -> GateRulesConfig:
    """Read a rules file; an unknown metric or key is a one-line :class:`ConfigError`."""
    _check_metric_names(load_yaml(path), str(path))
    return load_model(path, GateRulesConfig)


def parse_limit(text: str) -> tuple[str, str]:
    """``"latency=25"`` → ``("latency", "25")``; unknown metrics list the known ones."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise ConfigError(f"--limit '{text}': expected METRIC=VALUE, e.g. latency=25; known metrics: "
                          f"{', '.join(METRICS)}")  # fmt: skip
    if name not in METRICS:
        raise unknown_metric_error(name, "--limit")
    return name, value


def apply_overrides(
    config: GateRulesConfig,
    limits: Sequence[str] = (),
    options: dict[str, object] | None = None,
) -> GateRulesConfig:
    """The rules file with command-line overrides applied and validated again.

    Args:
        config: the rules file (or the defaults).
        limits: ``METRIC=VALUE`` texts from ``--limit``.
        options: dedicated options by dotted key (``stat``, ``strict``, ``rules.latency``,
            ``baseline.max_regression``, ...); ``None`` values are ignored. They win over ``limits``.

    Raises:
        ConfigError: malformed ``--limit``, unknown metric, or a value out of range.
    """
    data = config.model_dump()
    for text in limits:
        name, value = parse_limit(text)
        data["rules"][name] = value
    for key, value in (options or {}).items():
        if value is None:
            continue
        section, _, leaf = key.rpartition(".")
        (data[section] if section else data)[leaf] = value
    try:
        return GateRulesConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, GateRulesConfig, "command line")) from exc


@dataclass(frozen=True)
class GateSettings:
    """Resolved limits for one evaluation.

    Attributes:
        stat: latency percentile.
        limits: metric → limit; ``latency`` and ``accuracy_drop`` always, the others when configured.
        parity_min: precision → minimum agreement (the profile's per precision, or one override).
        strict: not-evaluated rules fail the gate.
        max_regression: percent a baseline comparison may regress (relative).
        max_accuracy_regression_points: if set, accuracy regression is absolute points instead.
    """

    stat: str
    limits: dict[str, float]
    parity_min: dict[str, float]
    strict: bool = False
    max_regression: float = DEFAULT_MAX_REGRESSION
    max_accuracy_regression_points: float | None = None


def resolve_settings(config: GateRulesConfig, profile: TargetProfile, report: dict) -> GateSettings:
    """Fill what ``config`` leaves open from the profile (latency: the report's ``budget_ms``)."""
    rules = config.rules.model_dump()
    limits = {k: float(v) for k, v in rules.items() if v is not None and k != "parity"}
    limits.setdefault("latency", float(report.get("budget_ms") or profile.budget.latency_ms))
    limits.setdefault("accuracy_drop", profile.budget.max_accuracy_drop)
    p = profile.parity
    if config.rules.parity is not None:
        parity_min = {"fp32": config.rules.parity, "int8": config.rules.parity}
    else:
        parity_min = {"fp32": p.fp32_min_agreement, "int8": p.int8_min_agreement}
    return GateSettings(
        stat=config.stat or profile.budget.stat,
        limits=limits,
        parity_min=parity_min,
        strict=config.strict,
        max_regression=config.baseline.max_regression,
        max_accuracy_regression_points=config.baseline.max_accuracy_regression_points,
    )
