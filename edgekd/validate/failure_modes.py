"""Failure-mode detectors: known ways a compressed student goes wrong, each with a suggested fix.

Every detector returns a :class:`Finding`, triggered or not, so a report can show what was checked:

- ``capacity-cliff``: along a pruning sweep, accuracy falls off a cliff for little parameter saving;
- ``minority-slice-collapse``: the student loses one class much more than the others;
- ``overconfident-student``: where the student is wrong, it is more sure of itself than the teacher.

Example:
    >>> sweep = [{"ratio": 0.3, "params": 1000, "accuracy": 0.90}, {"ratio": 0.35, "params": 950, "accuracy": 0.80}]
    >>> detect_capacity_cliff(sweep).triggered
    True
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from edgekd.core.errors import InputError
from edgekd.validate import as_labels, as_scores, rounded, same_length

#: Differences this small are floating-point noise: a value on a limit counts as on it (as in the gate).
_EPS = 1e-9


@dataclass(frozen=True)
class Finding:
    """Result of one detector.

    Attributes:
        name: detector name (``capacity-cliff``, ``minority-slice-collapse``, ``overconfident-student``).
        triggered: True when the failure mode is present.
        finding: one plain-language sentence on what was seen.
        suggested_fix: what to try; empty when not triggered.
        evidence: the numbers behind the finding.
    """

    name: str
    triggered: bool
    finding: str
    suggested_fix: str = ""
    evidence: dict[str, float | int | str | None] = field(default_factory=dict)

    def to_json(self) -> dict:
        """JSON-able dict (floats in ``evidence`` rounded, non-finite ones as None)."""
        evidence = {k: rounded(v) if isinstance(v, float) else v for k, v in self.evidence.items()}
        return {
            "name": self.name,
            "triggered": self.triggered,
            "finding": self.finding,
            "suggested_fix": self.suggested_fix,
            "evidence": evidence,
        }


def detect_capacity_cliff(
    sweep: Sequence[Mapping[str, float]], max_drop_points: float = 5.0, min_param_reduction: float = 0.10
) -> Finding:
    """A cliff: between neighbouring sweep points, > ``max_drop_points`` lost for < ``min_param_reduction`` saved.

    Args:
        sweep: points ``{ratio, params, accuracy}`` (accuracy 0-1), in any order; sorted by ``params``, largest first.
        max_drop_points: accuracy loss between neighbours, points, above which a step is steep.
        min_param_reduction: relative parameter reduction between neighbours below which a step is small.
    """
    try:
        points = sorted(
            (
                {"ratio": float(p["ratio"]), "params": float(p["params"]), "accuracy": float(p["accuracy"])}
                for p in sweep
            ),
            key=lambda p: -p["params"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"capacity sweep: every point needs numeric ratio, params and accuracy ({exc})") from None
    name = "capacity-cliff"
    if len(points) < 2:
        return Finding(
            name,
            False,
            "fewer than two sweep points: no neighbours to compare",
            evidence={"points": len(points)},
        )
    worst: tuple[float, dict, dict, float] | None = None
    for prev, nxt in itertools.pairwise(points):
        if prev["params"] <= 0:
            continue
        drop = 100.0 * (prev["accuracy"] - nxt["accuracy"])
        reduction = (prev["params"] - nxt["params"]) / prev["params"]
        if (
            drop > max_drop_points + _EPS
            and reduction < min_param_reduction - _EPS
            and (worst is None or drop > worst[0])
        ):
            worst = (drop, prev, nxt, reduction)
    if worst is None:
        return Finding(
            name,
            False,
            f"no step of the {len(points)}-point sweep loses more than {max_drop_points:g} "
            f"points for less than {100 * min_param_reduction:.0f} % fewer parameters",
        )
    drop, prev, nxt, reduction = worst
    evidence = {
        "ratio_before": prev["ratio"],
        "ratio_after": nxt["ratio"],
        "params_before": prev["params"],
        "params_after": nxt["params"],
        "accuracy_before": prev["accuracy"],
        "accuracy_after": nxt["accuracy"],
        "drop_points": drop,
        "param_reduction": reduction,
    }
    finding = (
        f"going from ratio {prev['ratio']:g} to {nxt['ratio']:g} removes only {100 * reduction:.1f} % of "
        f"the parameters but loses {drop:.1f} accuracy points"
    )
    fix = (
        f"stay at ratio {prev['ratio']:g} or below, or prune the layers near the cliff less (layer-wise "
        f"ratios) and distil longer; sweep finer steps around {nxt['ratio']:g} to locate the edge"
    )
    return Finding(name, True, finding, fix, evidence)


def detect_minority_collapse(
    teacher_per_class: Mapping[str, float],
    student_per_class: Mapping[str, float],
    student_accuracy: float,
    max_drop_points: float = 10.0,
    min_relative: float = 0.7,
) -> Finding:
    """A class where the student is ``max_drop_points`` or more below the teacher, or below ``min_relative`` x overall.

    Args:
        teacher_per_class: class name -> teacher top-1, 0-1.
        student_per_class: class name -> student top-1, 0-1.
        student_accuracy: the student's overall top-1, 0-1.
        max_drop_points: drop vs the teacher, points, from which a class has collapsed.
        min_relative: fraction of the overall accuracy below which a class has collapsed.
    """
    common = [c for c in student_per_class if c in teacher_per_class]
    if not common:
        raise InputError("teacher and student per-class accuracies have no class in common")
    name = "minority-slice-collapse"
    drops = {c: 100.0 * (float(teacher_per_class[c]) - float(student_per_class[c])) for c in common}
    collapsed = [
        c
        for c in common
        if drops[c] >= max_drop_points - _EPS or student_per_class[c] < min_relative * student_accuracy - _EPS
    ]
    worst = max(collapsed or common, key=lambda c: drops[c])
    evidence = {
        "class": worst,
        "teacher_accuracy": float(teacher_per_class[worst]),
        "student_accuracy": float(student_per_class[worst]),
        "drop_points": drops[worst],
        "overall_student_accuracy": float(student_accuracy),
        "classes_collapsed": len(collapsed),
    }
    if not collapsed:
        return Finding(
            name,
            False,
            f"every class is within {max_drop_points:g} points of the teacher and at least "
            f"{100 * min_relative:.0f} % of the overall accuracy (worst '{worst}', "
            f"{drops[worst]:.1f} points)",
            evidence=evidence,
        )
    names = ", ".join(f"'{c}'" for c in collapsed)
    finding = (
        f"the student has lost class(es) {names}: worst '{worst}' {100 * teacher_per_class[worst]:.1f} % → "
        f"{100 * student_per_class[worst]:.1f} % ({drops[worst]:.1f} points; overall "
        f"{100 * student_accuracy:.1f} %)"
    )
    fix = (
        "re-weight or over-sample the collapsed class(es) during distillation (class-balanced KD loss), "
        "prune less, or keep the teacher for these classes (cascade)"
    )
    return Finding(name, True, finding, fix, evidence)


def detect_overconfidence(
    student_probs: object, teacher_probs: object, labels: object, margin: float = 0.05
) -> Finding:
    """On the samples the student gets wrong: is its mean max-probability above the teacher's by > ``margin``?

    Args:
        student_probs: student probabilities, shape ``(n, classes)``.
        teacher_probs: teacher probabilities on the same samples.
        labels: true class indices, shape ``(n,)``.
        margin: tolerated excess confidence, 0-1.
    """
    s = as_scores(student_probs, "student_probs")
    t = as_scores(teacher_probs, "teacher_probs", rows=s.shape[0])
    lab = as_labels(labels)
    same_length("student_probs", s, "labels", lab)
    name = "overconfident-student"
    wrong = s.argmax(axis=1) != lab
    if not wrong.any():
        return Finding(name, False, "the student makes no error on these samples", evidence={"errors": 0})
    s_conf, t_conf = float(s[wrong].max(axis=1).mean()), float(t[wrong].max(axis=1).mean())
    excess = s_conf - t_conf
    evidence = {
        "errors": int(wrong.sum()),
        "student_confidence_on_errors": s_conf,
        "teacher_confidence_on_same": t_conf,
        "excess": excess,
        "margin": float(margin),
    }
    summary = (
        f"on the {int(wrong.sum())} samples the student gets wrong it is {100 * s_conf:.1f} % sure on "
        f"average, the teacher {100 * t_conf:.1f} %"
    )
    if excess <= margin + _EPS:
        return Finding(name, False, summary, evidence=evidence)
    fix = (
        "fit a temperature on validation logits (edgekd.validate.calibration.temperature_scaling) before "
        "thresholding; distil at a higher temperature or with label smoothing"
    )
    return Finding(name, True, f"{summary}: the student is overconfident where it errs", fix, evidence)


def findings_to_json(findings: Sequence[Finding]) -> list[dict]:
    """JSON-able list of findings, triggered ones first."""
    return [f.to_json() for f in sorted(findings, key=lambda f: not f.triggered)]
