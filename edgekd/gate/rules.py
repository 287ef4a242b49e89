"""Gate rules: pass/fail of one report against the target's budgets and the project's limits.

Rules, in order (names as they appear in tables, JSON and JUnit):

- ``latency``: the deployed artifact at the chosen percentile ≤ the budget, using the best evidence
  for the target (:mod:`edgekd.gate.evidence`); no usable figure fails the rule.
- ``accuracy_drop``: PyTorch student vs teacher, top-1 points.
- ``accuracy_drop:<artifact>``: the deployed artifact in its own runtime vs teacher (when it has parity data).
- ``parity:<artifact>``: top-1 agreement of every exported artifact with PyTorch ≥ the minimum.
- Only when configured: ``per_class_drop``, ``ece``, ``size``, ``energy``. When the report lacks the
  data they read, the row is ``not-evaluated`` (never a silent pass).

Optional report fields these read (additive to schema 1.0; absent in reports that predate them):

- ``teacher.per_class_accuracy`` / ``student.per_class_accuracy``: ``{class name: top-1 0-1}`` (a list
  aligned with ``dataset.classes`` is accepted too);
- ``student.ece``: expected calibration error of the student, 0-1;
- ``student.energy``: list of ``{mj, evidence, method, precision, threads, artifact?}`` entries, where
  ``evidence`` is an evidence level as for latency.

Example:
    >>> profile = load_target(report["target"]["name"])  # doctest: +SKIP
    >>> config = GateRulesConfig(stat="p90", rules=MetricLimits(size="2MB"))  # doctest: +SKIP
    >>> evaluate(report, profile, resolve_settings(config, profile, report)).exit_code  # doctest: +SKIP
    0
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from edgekd.config.target_profile import TargetProfile
from edgekd.core.errors import InputError
from edgekd.core.evidence import Evidence
from edgekd.gate.evidence import (
    best_energy,
    deployed_latency,
    latency_candidates,
    primary_artifact,
    primary_identity,
    usable_evidence,
)
from edgekd.gate.gate_config import GateRulesConfig, GateSettings, MetricLimits, resolve_settings
from edgekd.gate.metrics import RuleResult

__all__ = ["GateEvaluation", "check_target", "evaluate", "evaluate_gate"]


@dataclass(frozen=True)
class GateEvaluation:
    """All rule results of one report and the verdict.

    Attributes:
        target: the target profile's name.
        stat: latency percentile used.
        rules: every row, in order; with ``strict`` no row is ``not-evaluated`` (they become failures).
    """

    target: str
    stat: str
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.rules if r.status == "failed"]

    @property
    def not_evaluated(self) -> list[RuleResult]:
        return [r for r in self.rules if r.status == "not-evaluated"]

    @property
    def passed(self) -> bool:
        """No evaluated rule failed (not-evaluated rows do not fail the gate unless strict)."""
        return not self.failed

    @property
    def exit_code(self) -> int:
        """0 when the gate passed, 1 when it failed."""
        return 0 if self.passed else 1

    def extended(self, rules: list[RuleResult], strict: bool = False) -> GateEvaluation:
        """A copy with ``rules`` appended (e.g. baseline comparisons), strictness applied to them."""
        return replace(self, rules=[*self.rules, *_strict(rules, strict)])

    def to_json(self) -> dict:
        """JSON-able summary: verdict, counts and every rule."""
        return {"passed": self.passed, "target": self.target, "stat": self.stat,
                "counts": {"rules": len(self.rules), "failed": len(self.failed),
                           "not_evaluated": len(self.not_evaluated)},
                "rules": [r.to_json() for r in self.rules]}  # fmt: skip


def _strict(rules: list[RuleResult], strict: bool) -> list[RuleResult]:
    if not strict:
        return list(rules)
    return [replace(r, status="failed", detail=f"not evaluated (strict): {r.detail}")
            if r.status == "not-evaluated" else r for r in rules]  # fmt: skip


def _require(report: dict, *keys: str) -> object:
    node: object = report
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise InputError(f"report.json lacks '{'.'.join(keys[: i + 1])}'; re-run `edgekd build` to regenerate it")
        node = node[key]
    return node


def check_target(report: dict, profile: TargetProfile) -> None:
    """Refuse to gate a report against another target's profile."""
    name = _require(report, "target", "name")
    if name != profile.name:
        raise InputError(f"the report is for target '{name}' but the profile is '{profile.name}'; "
                         "gate a report against its own target")  # fmt: skip


def _latency_rule(report: dict, profile: TargetProfile, settings: GateSettings) -> RuleResult:
    budget, stat = settings.limits["latency"], settings.stat
    fmt, precision, primary = primary_identity(report)
    host_is_target = profile.measured_locally
    entry = deployed_latency(report, stat, host_is_target)
    seen = {e["evidence"] for e in latency_candidates(report["student"]["latency"], primary, precision, stat)}
    ignored = sorted(seen - set(usable_evidence(host_is_target)))
    note = f"; not used: {', '.join(ignored)}" if ignored else ""
    if entry is None:
        return RuleResult.missing("latency", "latency", budget, f"no usable latency figure for {fmt} {precision} "
                                  f"{stat}{note}", status="failed")  # fmt: skip
    detail = f"{fmt} {precision} {entry['stat']}, {entry.get('threads', '?')} thread(s), {entry.get('runtime', '?')}"
    if entry["stat"] != stat:
        detail += f" (the latency model gives one figure, used for the {stat} budget)"
    return RuleResult.check("latency", "latency", entry["ms"], budget, entry["evidence"], detail + note)


def _artifact_rules(report: dict, settings: GateSettings, teacher_acc: float) -> list[RuleResult]:
    rules = []
    limit = settings.limits["accuracy_drop"]
    for art in report.get("artifacts") or []:
        parity = art.get("parity")
        if not parity:
            continue
        if art.get("primary") and parity.get("accuracy") is not None:
            drop = 100.0 * (teacher_acc - parity["accuracy"])
            rules.append(RuleResult.check(f"accuracy_drop:{art['name']}", "accuracy_drop", drop, limit,
                                          Evidence.MEASURED_HOST, "deployed artifact in its runtime vs teacher, top-1 "
                                          "points"))  # fmt: skip
        need = settings.parity_min.get(art["precision"], settings.parity_min["fp32"])
        rules.append(RuleResult.check(f"parity:{art['name']}", "parity", parity["agreement"], need,
                                      Evidence.MEASURED_HOST,
                                      "top-1 agreement with PyTorch on the test split"))  # fmt: skip
        arm = art.get("arm_parity") or {}
        if arm.get("status") == "checked":
            rules.append(RuleResult.check(f"parity-arm:{art['name']}", "parity", arm["agreement"], need,
                                          Evidence.MEASURED_EMULATED,
                                          f"top-1 agreement with PyTorch on {arm['samples']} "
                                          f"test images, Arm kernels on an emulated {arm['qemu_cpu']}"))  # fmt: skip
    return rules


def _per_class(report: dict, who: str) -> dict[str, float] | None:
    data = report.get(who, {}).get("per_class_accuracy")
    if isinstance(data, list):
        names = report.get("dataset", {}).get("classes") or [str(i) for i in range(len(data))]
        data = dict(zip(names, data, strict=False))
    return data if isinstance(data, dict) and data else None


def _per_class_rule(report: dict, limit: float) -> RuleResult:
    teacher, student = _per_class(report, "teacher"), _per_class(report, "student")
    common = sorted(set(teacher or {}) & set(student or {}))
    if not common:
        return RuleResult.missing("per_class_drop", "per_class_drop", limit,
                                  "report has no per-class accuracy (teacher/student.per_class_accuracy)")  # fmt: skip
    drops = {c: 100.0 * (teacher[c] - student[c]) for c in common}
    worst = max(drops, key=drops.get)
    detail = (f"worst class '{worst}': {100 * teacher[worst]:.2f} % → {100 * student[worst]:.2f} %, "
              f"{len(common)} classes")  # fmt: skip
    return RuleResult.check("per_class_drop", "per_class_drop", drops[worst], limit, Evidence.MEASURED_HOST, detail)


def _ece_rule(report: dict, limit: float) -> RuleResult:
    ece = report["student"].get("ece")
    if not isinstance(ece, int | float) or isinstance(ece, bool):
        return RuleResult.missing("ece", "ece", limit, "report has no calibration figure (student.ece)")
    detail = "student expected calibration error"
    return RuleResult.check("ece", "ece", float(ece), limit, Evidence.MEASURED_HOST, detail)


def _size_rule(report: dict, limit: float) -> RuleResult:
    art = primary_artifact(report)
    if art is None or art.get("size_bytes") is None:
        return RuleResult.missing("size", "size", limit, "report has no deployed artifact size")
    return RuleResult.check("size", "size", float(art["size_bytes"]), limit, "file", f"{art['name']} on disk")


def _energy_rule(report: dict, profile: TargetProfile, limit: float) -> RuleResult:
    _, precision, _ = primary_identity(report)
    entries = report["student"].get("energy") or []
    entry = best_energy(entries, precision, profile.measured_locally)
    if entry is None:
        why = "no usable energy figure" if entries else "report has no energy figures (student.energy)"
        return RuleResult.missing("energy", "energy", limit, f"{why} for {precision}")
    detail = f"{precision}, {entry.get('method', 'unknown method')}, {entry.get('threads', '?')} thread(s)"
    return RuleResult.check("energy", "energy", float(entry["mj"]), limit, entry["evidence"], detail)


def evaluate(report: dict, profile: TargetProfile, settings: GateSettings) -> GateEvaluation:
    """Evaluate every configured rule on ``report``.

    Args:
        report: a report.json (schema 1.0) as a dict.
        profile: the report's target profile.
        settings: resolved limits (:func:`edgekd.gate.gate_config.resolve_settings`).

    Raises:
        InputError: the report lacks a required key.
    """
    _require(report, "student", "latency")
    _require(report, "budget", "precision")
    teacher_acc = float(_require(report, "teacher", "accuracy"))
    student_acc = float(_require(report, "student", "accuracy"))
    rules = [_latency_rule(report, profile, settings)]
    drop = 100.0 * (teacher_acc - student_acc)
    detail = "PyTorch student vs teacher, top-1 points on the test split"
    limit = settings.limits["accuracy_drop"]
    rules.append(RuleResult.check("accuracy_drop", "accuracy_drop", drop, limit, Evidence.MEASURED_HOST, detail))
    rules += _artifact_rules(report, settings, teacher_acc)
    optional = {
        "per_class_drop": lambda limit: _per_class_rule(report, limit),
        "ece": lambda limit: _ece_rule(report, limit),
        "size": lambda limit: _size_rule(report, limit),
        "energy": lambda limit: _energy_rule(report, profile, limit),
    }
    rules += [make(settings.limits[name]) for name, make in optional.items() if name in settings.limits]
    return GateEvaluation(profile.name, settings.stat, _strict(rules, settings.strict))


def evaluate_gate(report: dict, profile: TargetProfile, max_accuracy_drop: float | None = None) -> dict:
    """The build's gate (profile budgets, the report's ``budget_ms``): ``{passed, rules}`` for report.json.

    Rows have the schema-1.0 shape ``{name, value, limit, passed, evidence, detail}`` (``value`` NaN
    when no figure exists).
    """
    config = GateRulesConfig(rules=MetricLimits(accuracy_drop=max_accuracy_drop))
    evaluation = evaluate(report, profile, resolve_settings(config, profile, report))
    return {"passed": evaluation.passed, "rules": [r.to_report_rule() for r in evaluation.rules]}
