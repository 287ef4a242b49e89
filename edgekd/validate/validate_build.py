"""The build's validation section: every check of :mod:`edgekd.validate` on one teacher/student pair.

Pure numpy on logits the pipeline already computed (see :mod:`edgekd.pipeline.validate_stage`), so it is
testable on small constructed arrays. :func:`validate_build` returns a :class:`ValidationResult` whose
``section`` is report.json's ``validation`` object (documented in docs/report-schema.md) and whose
``warnings`` count slice flags plus triggered failure modes.

Example:
    >>> import numpy as np
    >>> y = np.array([0, 1, 0, 1])
    >>> logits = np.array([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [2.0, 0.0]])
    >>> inp = ValidationInputs(["a", "b"], y, logits, logits, y, logits, 10, 100, 1.0, 5.0)
    >>> validate_build(inp).section["student"]["accuracy"]
    0.75
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from edgekd.validate import as_labels, as_scores, rounded
from edgekd.validate.calibration import calibration_report, softmax, temperature_scaling
from edgekd.validate.cascade import sweep_cascade
from edgekd.validate.corruptions import corruption_report
from edgekd.validate.distillation_score import distillation_score
from edgekd.validate.failure_modes import (
    Finding,
    detect_capacity_cliff,
    detect_minority_collapse,
    detect_overconfidence,
    findings_to_json,
)
from edgekd.validate.slices import per_class_regression, slice_report

#: Cascade target when none is given: the teacher's accuracy less this many points.
CASCADE_TARGET_DROP_POINTS = 0.5


@dataclass(frozen=True)
class ArtifactLogits:
    """One exported artifact's logits in its own runtime on the first ``len(logits)`` test samples."""

    name: str
    runtime: str
    logits: np.ndarray


@dataclass(frozen=True)
class ValidationInputs:
    """Everything validation reads; logits are ``(n, classes)``, labels ``(n,)``.

    Attributes:
        class_names: names by class index.
        test_labels, teacher_test, student_test: the test split and both models' logits on it.
        val_labels, student_val: the validation split (the temperature is fitted here).
        student_size, teacher_size: parameters (any one unit).
        student_ms: the deployed student's latency (best evidence); ``student_ms_evidence`` says which.
        teacher_ms: the teacher's latency on its deployment target; ``teacher_ms_evidence`` says which.
        artifacts: exported artifacts' runtime logits.
        artifact_labels: labels of the test images the artifacts ran on (a stratified subset of the test
            split); None = the first ``len(logits)`` test labels.
        corruption_labels: labels of the images the corruption suite was made from.
        corruption_logits: ``{"teacher"|"student": {"clean"|"<name>@<severity>": logits}}``; None = not run.
        prune_sweep: ``report["prune_sweep"]`` when an ``edgekd prune --sweep`` ran, else None.
        ds_policy: distillation-score policy (``edge``, ``balanced``, ``safety-critical``) or α.
        cascade_target: cascade target accuracy 0-1; None = teacher accuracy − 0.5 pt.
        corruption_seed: the suite's seed (recorded).
    """

    class_names: Sequence[str]
    test_labels: np.ndarray
    teacher_test: np.ndarray
    student_test: np.ndarray
    val_labels: np.ndarray
    student_val: np.ndarray
    student_size: float
    teacher_size: float
    student_ms: float
    teacher_ms: float
    student_ms_evidence: str = "predicted"
    teacher_ms_evidence: str = "measured-host"
    artifacts: Sequence[ArtifactLogits] = ()
    artifact_labels: np.ndarray | None = None
    corruption_labels: np.ndarray | None = None
    corruption_logits: Mapping[str, Mapping[str, np.ndarray]] | None = None
    prune_sweep: Mapping | None = None
    ds_policy: str | float = "edge"
    cascade_target: float | None = None
    corruption_seed: int = 0


@dataclass
class ValidationResult:
    """``section``: report.json's ``validation``; ``teacher``/``student``: top-level keys the gate reads."""

    section: dict
    teacher: dict
    student: dict
    warnings: list[str] = field(default_factory=list)
    temperature: float = 1.0


def _artifact_rows(inp: ValidationInputs, labels: np.ndarray, names: Sequence[str]) -> list[dict]:
    rows = []
    for art in inp.artifacts:
        logits = as_scores(art.logits, f"{art.name} logits")
        lab = labels[: len(logits)]
        rep = slice_report(logits.argmax(axis=1), lab, names)
        rows.append({
            "name": art.name, "runtime": art.runtime, "samples": len(lab), "accuracy": rounded(rep.accuracy),
            "per_class_accuracy": {k: rounded(v) for k, v in rep.per_class.items()},
            "ece": rounded(calibration_report(softmax(logits), lab).ece),
            "slice_findings": list(rep.findings),
        })  # fmt: skip
    return rows


def _corruptions(inp: ValidationInputs) -> dict | None:
    if inp.corruption_logits is None or inp.corruption_labels is None:
        return None
    clean = {who: inp.corruption_logits[who]["clean"] for who in ("teacher", "student")}
    corrupted = {who: {k: v for k, v in inp.corruption_logits[who].items() if k != "clean"} for who in clean}
    return corruption_report(inp.corruption_labels, clean, corrupted, inp.corruption_seed).to_json()


def _cliff(sweep: Mapping | None) -> Finding:
    points = (sweep or {}).get("points") or []
    usable = [p for p in points if p.get("accuracy") is not None and p.get("params") is not None]
    if len(usable) < 2:
        return Finding(
            "capacity-cliff",
            False,
            "not checked: this build has no pruning sweep (run `edgekd prune --sweep` to look for a cliff)",
            evidence={"points": len(usable)},
        )
    return detect_capacity_cliff(usable)


def validate_build(inp: ValidationInputs) -> ValidationResult:
    """Slices, calibration, temperature scaling, artifacts, corruptions, failure modes, DS and cascade."""
    names = [str(n) for n in inp.class_names]
    y = as_labels(inp.test_labels, "test labels")
    t_logits = as_scores(inp.teacher_test, "teacher test logits", rows=len(y))
    s_logits = as_scores(inp.student_test, "student test logits", rows=len(y))
    y_val = as_labels(inp.val_labels, "val labels")
    s_val = as_scores(inp.student_val, "student val logits", rows=len(y_val))

    t_slices = slice_report(t_logits.argmax(axis=1), y, names)
    s_slices = slice_report(s_logits.argmax(axis=1), y, names)
    regression = per_class_regression(t_slices.per_class, s_slices.per_class)

    t_probs, s_probs = softmax(t_logits), softmax(s_logits)
    ts_val = temperature_scaling(s_val, y_val, split="val")
    ts_test = temperature_scaling(s_val, y_val, s_logits, y, split="test")
    temp = ts_val.temperature
    s_cal = softmax(s_logits, temp)
    calibration = {
        "n_bins": 15,
        "teacher_test": calibration_report(t_probs, y).to_json(),
        "student_test": calibration_report(s_probs, y).to_json(),
        "student_test_calibrated": calibration_report(s_cal, y).to_json(),
        "student_val": calibration_report(softmax(s_val), y_val).to_json(),
        "student_val_calibrated": calibration_report(softmax(s_val, temp), y_val).to_json(),
    }

    findings = [
        _cliff(inp.prune_sweep),
        detect_minority_collapse(t_slices.per_class, s_slices.per_class, s_slices.accuracy),
        detect_overconfidence(s_probs, t_probs, y),
    ]
    ds = distillation_score(inp.student_size, inp.teacher_size, s_slices.accuracy, t_slices.accuracy, inp.ds_policy)
    target = inp.cascade_target
    if target is None:
        target = max(0.0, t_slices.accuracy - CASCADE_TARGET_DROP_POINTS / 100.0)
    cascade = sweep_cascade(s_cal, t_logits.argmax(axis=1), y, inp.student_ms, inp.teacher_ms, target).to_json()
    cascade.update({
        "probabilities": f"student calibrated at T={temp:.3f}",
        "student_ms_evidence": inp.student_ms_evidence,
        "teacher_ms_evidence": inp.teacher_ms_evidence,
        "target_rule": "given" if inp.cascade_target is not None
        else f"teacher accuracy - {CASCADE_TARGET_DROP_POINTS:g} pt",
    })  # fmt: skip

    warnings = [f"student slices: {f}" for f in s_slices.findings]
    warnings += [f"{f.name}: {f.finding}" for f in findings if f.triggered]
    section = {
        "split": "test",
        "samples": len(y),
        "teacher": t_slices.to_json(),
        "student": s_slices.to_json(),
        "per_class_regression": regression.to_json(),
        "calibration": calibration,
        "temperature_scaling": {"val": ts_val.to_json(), "test": ts_test.to_json()},
        "temperature": rounded(temp, 4),
        "artifacts": _artifact_rows(inp, y if inp.artifact_labels is None else inp.artifact_labels, names),
        "corruptions": _corruptions(inp),
        "failure_modes": findings_to_json(findings),
        "distillation_score": ds.to_json(),
        "cascade": cascade,
        "warnings": warnings,
    }
    teacher = {
        "per_class_accuracy": {k: rounded(v) for k, v in t_slices.per_class.items()},
        "ece": calibration["teacher_test"]["ece"],
    }
    student = {
        "per_class_accuracy": {k: rounded(v) for k, v in s_slices.per_class.items()},
        "ece": calibration["student_test"]["ece"],
        "ece_calibrated": calibration["student_test_calibrated"]["ece"],
        "temperature": rounded(temp, 4),
    }
    return ValidationResult(section, teacher, student, warnings, temp)
