import numpy as np
import pytest

from edgekd.core.errors import InputError
from edgekd.validate.failure_modes import (
    detect_capacity_cliff,
    detect_minority_collapse,
    detect_overconfidence,
    findings_to_json,
)


def _pt(ratio, params, acc):
    return {"ratio": ratio, "params": params, "accuracy": acc}


def test_capacity_cliff_triggers():
    # 800 -> 760 params: 5 % fewer, 89 % -> 80 %: 9 points lost. 760 -> 500: 34 % fewer, fine.
    sweep = [_pt(0.5, 500, 0.70), _pt(0.0, 1000, 0.90), _pt(0.25, 760, 0.80), _pt(0.2, 800, 0.89)]  # unsorted
    f = detect_capacity_cliff(sweep)
    assert f.triggered and f.suggested_fix
    assert (f.evidence["ratio_before"], f.evidence["ratio_after"]) == (0.2, 0.25)
    assert f.evidence["drop_points"] == pytest.approx(9.0)
    assert f.evidence["param_reduction"] == pytest.approx(0.05)
    assert "5.0 %" in f.finding and "9.0 accuracy points" in f.finding


@pytest.mark.parametrize(
    "sweep",
    [
        [_pt(0.0, 1000, 0.90), _pt(0.2, 800, 0.88), _pt(0.4, 600, 0.85)],  # gradual
        [_pt(0.0, 1000, 0.90), _pt(0.05, 950, 0.85)],  # exactly 5 points: not more than 5
        [_pt(0.0, 1000, 0.90), _pt(0.1, 900, 0.70)],  # exactly 10 % fewer: not less than 10 %
        [_pt(0.0, 1000, 0.90)],  # one point
    ],
)
def test_capacity_cliff_not_triggered(sweep):
    f = detect_capacity_cliff(sweep)
    assert not f.triggered and f.suggested_fix == ""


def test_capacity_cliff_bad_point():
    with pytest.raises(InputError, match="ratio, params and accuracy"):
        detect_capacity_cliff([{"ratio": 0.1, "params": 10}])


def test_minority_collapse_by_drop_vs_teacher():
    teacher = {"a": 0.9, "b": 0.9, "c": 0.9}
    student = {"a": 0.88, "b": 0.85, "c": 0.78}  # c: 12 points below the teacher
    f = detect_minority_collapse(teacher, student, student_accuracy=0.84)
    assert f.triggered and f.evidence["class"] == "c"
    assert f.evidence["drop_points"] == pytest.approx(12.0)
    assert "'c'" in f.finding


def test_minority_collapse_by_share_of_overall():
    # b: only 5 points below the teacher, but 45 % < 0.7 * 80 % = 56 %
    f = detect_minority_collapse({"a": 0.9, "b": 0.5}, {"a": 0.88, "b": 0.45}, student_accuracy=0.8)
    assert f.triggered and f.evidence["class"] == "b"


def test_minority_collapse_not_triggered():
    f = detect_minority_collapse({"a": 0.9, "b": 0.85}, {"a": 0.87, "b": 0.80}, student_accuracy=0.835)
    assert not f.triggered
    assert f.evidence["class"] == "b" and f.evidence["drop_points"] == pytest.approx(5.0)


LABELS = np.array([0, 0, 0, 0])
STUDENT = np.array([[0.9, 0.1], [0.1, 0.9], [0.05, 0.95], [0.8, 0.2]])  # wrong on samples 1 and 2, 92.5 % sure


def test_overconfident_student_triggers():
    teacher = np.array([[0.95, 0.05], [0.4, 0.6], [0.45, 0.55], [0.9, 0.1]])  # 57.5 % sure on those
    f = detect_overconfidence(STUDENT, teacher, LABELS)
    assert f.triggered
    assert f.evidence["student_confidence_on_errors"] == pytest.approx(0.925)
    assert f.evidence["teacher_confidence_on_same"] == pytest.approx(0.575)
    assert f.evidence["excess"] == pytest.approx(0.35)
    assert "temperature" in f.suggested_fix


def test_overconfident_student_not_triggered():
    teacher = np.array([[0.95, 0.05], [0.15, 0.85], [0.1, 0.9], [0.9, 0.1]])  # 87.5 %: excess 0.05, not > 0.05
    assert not detect_overconfidence(STUDENT, teacher, LABELS).triggered
    assert not detect_overconfidence(STUDENT, STUDENT, LABELS).triggered
    no_errors = detect_overconfidence(STUDENT, STUDENT, np.array([0, 1, 1, 0]))
    assert not no_errors.triggered and "no error" in no_errors.finding


def test_findings_json_triggered_first():
    quiet = detect_capacity_cliff([_pt(0.0, 1000, 0.9)])
    loud = detect_minority_collapse({"a": 0.9}, {"a": 0.5}, student_accuracy=0.5)
    data = findings_to_json([quiet, loud])
    assert [d["name"] for d in data] == ["minority-slice-collapse", "capacity-cliff"]
    assert set(data[0]) == {"name", "triggered", "finding", "suggested_fix", "evidence"}
    assert data[0]["evidence"]["drop_points"] == 40.0
