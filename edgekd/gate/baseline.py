"""Regression rules against a previous build's report (``edgekd gate NEW --baseline OLD``).

Three rows, each a rule (``metric`` = ``regression``), each passing when the new build is at most
``max_regression`` percent worse, relative to the baseline:

- ``baseline:latency``: the new build's gated latency vs the baseline's figure at the **same evidence
  level** and percentile (a measured figure is never compared with a predicted one); not evaluated
  when the baseline has no figure at that level.
- ``baseline:accuracy``: accuracy of the deployed artifact in its runtime (``artifacts[].parity.accuracy``;
  the PyTorch student's when either report lacks it). Relative by default,
  ``100 * (old - new) / old``; with ``max_accuracy_regression_points`` set, absolute top-1 points
  ``100 * (old - new)`` instead.
- ``baseline:size``: the deployed artifact's ``size_bytes``.

Values are signed: an improvement is negative and passes.

Example:
    >>> rules = baseline_rules(new_report, old_report, profile, settings)  # doctest: +SKIP
    >>> [r.name for r in rules]  # doctest: +SKIP
    ['baseline:latency', 'baseline:accuracy', 'baseline:size']
"""

from __future__ import annotations

from edgekd.config.target_profile import TargetProfile
from edgekd.core.errors import InputError
from edgekd.core.evidence import Evidence
from edgekd.gate.evidence import deployed_latency, entry_at_level, primary_artifact, primary_identity
from edgekd.gate.gate_config import GateSettings
from edgekd.gate.metrics import RuleResult


def _relative(new: float, old: float) -> float:
    """Percent by which ``new`` exceeds ``old`` (negative: smaller)."""
    return 100.0 * (new - old) / old


def _latency(new: dict, old: dict, profile: TargetProfile, s: GateSettings) -> RuleResult:
    name, limit = "baseline:latency", s.max_regression
    entry = deployed_latency(new, s.stat, profile.measured_locally)
    if entry is None:
        return RuleResult.missing(name, "regression", limit, "this report has no usable latency figure")
    level = entry["evidence"]
    fmt, precision, primary = primary_identity(old)
    stat = entry["stat"]  # the predicted figure is labelled p50 whatever the budget's percentile
    base = entry_at_level(old["student"]["latency"], primary, precision, stat, level)
    if base is None or base["ms"] <= 0:
        return RuleResult.missing(name, "regression", limit, f"baseline has no {level} {stat} figure for "
                                  f"{fmt} {precision}")  # fmt: skip
    detail = f"{entry['ms']:.3f} ms vs baseline {base['ms']:.3f} ms ({stat})"
    return RuleResult.check(name, "regression", _relative(entry["ms"], base["ms"]), limit, level, detail)


def _deployed_accuracy(report: dict) -> float | None:
    art = primary_artifact(report)
    parity = (art or {}).get("parity") or {}
    return parity.get("accuracy")


def _accuracy(new: dict, old: dict, s: GateSettings) -> RuleResult:
    new_acc, old_acc = _deployed_accuracy(new), _deployed_accuracy(old)
    what = "deployed artifact in its runtime"
    if new_acc is None or old_acc is None:
        new_acc, old_acc, what = new["student"]["accuracy"], old["student"]["accuracy"], "PyTorch student"
    detail = f"{what}: {100 * new_acc:.2f} % vs baseline {100 * old_acc:.2f} %"
    if s.max_accuracy_regression_points is not None:
        points = 100.0 * (old_acc - new_acc)
        return RuleResult.check("baseline:accuracy", "regression", points, s.max_accuracy_regression_points,
                                Evidence.MEASURED_HOST, detail + ", absolute points", unit="pt")  # fmt: skip
    if old_acc <= 0:
        return RuleResult.missing("baseline:accuracy", "regression", s.max_regression, "baseline accuracy is 0")
    relative = 100.0 * (old_acc - new_acc) / old_acc
    host = Evidence.MEASURED_HOST
    return RuleResult.check("baseline:accuracy", "regression", relative, s.max_regression, host, detail)


def _size(new: dict, old: dict, s: GateSettings) -> RuleResult:
    new_art, old_art = primary_artifact(new), primary_artifact(old)
    if not new_art or not old_art or not new_art.get("size_bytes") or not old_art.get("size_bytes"):
        return RuleResult.missing("baseline:size", "regression", s.max_regression, "a report has no artifact size")
    detail = f"{new_art['name']} {new_art['size_bytes']:,} B vs baseline {old_art['name']} {old_art['size_bytes']:,} B"
    value = _relative(float(new_art["size_bytes"]), float(old_art["size_bytes"]))
    return RuleResult.check("baseline:size", "regression", value, s.max_regression, "file", detail)


def baseline_rules(new: dict, old: dict, profile: TargetProfile, settings: GateSettings) -> list[RuleResult]:
    """Latency, accuracy and size of ``new`` vs the baseline report ``old``.

    Args:
        new: the report being gated.
        old: the baseline report (same target).
        profile: the target profile (decides whether host measurements count).
        settings: ``max_regression`` (percent) and ``max_accuracy_regression_points``.

    Raises:
        InputError: the baseline is for another target or lacks required keys.
    """
    old_target = (old.get("target") or {}).get("name")
    if old_target != new["target"]["name"]:
        raise InputError(f"the baseline report is for target '{old_target}', this report for "
                         f"'{new['target']['name']}'; compare builds of the same target")  # fmt: skip
    for key in ("student", "budget"):
        if key not in old:
            raise InputError(f"the baseline report lacks '{key}'; re-run `edgekd build` to regenerate it")
    return [_latency(new, old, profile, settings), _accuracy(new, old, settings), _size(new, old, settings)]
