import numpy as np
import pytest

from edgekd.core.errors import InputError
from edgekd.validate.cascade import DEFAULT_THRESHOLDS, sweep_cascade

# sample: student probs, label -> student right?, confidence; teacher prediction -> teacher right?
# s0 [0.90, 0.10] y=0 -> right, 0.90; teacher 0 right
# s1 [0.80, 0.20] y=1 -> wrong, 0.80; teacher 1 right
# s2 [0.60, 0.40] y=0 -> right, 0.60; teacher 0 right
# s3 [0.30, 0.70] y=0 -> wrong, 0.70; teacher 0 right
# s4 [0.55, 0.45] y=1 -> wrong, 0.55; teacher 0 wrong
# student 2/5 = 0.4, teacher 4/5 = 0.8; student 2 ms, teacher 10 ms
# t=0.00: none escalated           rate 0.0, acc 2/5 = 0.4,  2 + 0  = 2 ms
# t=0.65: s2, s4                   rate 0.4, acc s0,s2 = 0.4, 2 + 4  = 6 ms
# t=0.75: s2, s3, s4               rate 0.6, acc s0,s2,s3 = 0.6, 2 + 6 = 8 ms
# t=0.85: s1, s2, s3, s4           rate 0.8, acc 4/5 = 0.8,  2 + 8  = 10 ms
# t=1.00: all                      rate 1.0, acc 0.8,        2 + 10 = 12 ms
PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.55, 0.45]])
TEACHER = np.array([0, 1, 0, 0, 0])
LABELS = np.array([0, 1, 0, 0, 1])
GRID = [0.0, 0.65, 0.75, 0.85, 1.0]


def _sweep(target: float):
    return sweep_cascade(PROBS, TEACHER, LABELS, student_ms=2.0, teacher_ms=10.0, target_accuracy=target,
                         thresholds=GRID)  # fmt: skip


def test_points_by_hand():
    sweep = _sweep(0.6)
    got = [(p.threshold, p.escalation_rate, p.cascade_accuracy, p.expected_ms) for p in sweep.points]
    want = [(0.0, 0.0, 0.4, 2.0), (0.65, 0.4, 0.4, 6.0), (0.75, 0.6, 0.6, 8.0), (0.85, 0.8, 0.8, 10.0),
            (1.0, 1.0, 0.8, 12.0)]  # fmt: skip
    assert got == [pytest.approx(w) for w in want]
    assert (sweep.student_accuracy, sweep.teacher_accuracy) == (pytest.approx(0.4), pytest.approx(0.8))


@pytest.mark.parametrize(("target", "threshold", "ms"), [(0.6, 0.75, 8.0), (0.8, 0.85, 10.0), (0.7, 0.85, 10.0)])
def test_recommends_cheapest_threshold_reaching_target(target, threshold, ms):
    rec = _sweep(target).recommended
    assert rec is not None
    assert (rec.threshold, rec.expected_ms) == (threshold, pytest.approx(ms))


def test_student_alone_enough():
    sweep = _sweep(0.4)
    assert sweep.recommended.threshold == 0.0 and sweep.recommended.escalation_rate == 0.0
    assert "student alone" in sweep.reason


def test_unreachable_target():
    sweep = _sweep(0.9)
    assert sweep.recommended is None
    assert "no threshold reaches 90.00 %" in sweep.reason and "80.00 %" in sweep.reason
    data = sweep.to_json()
    assert data["recommended"] is None and len(data["points"]) == 5


def test_default_grid_and_json():
    sweep = sweep_cascade(PROBS, TEACHER, LABELS, 2.0, 10.0, 0.6)
    assert [p.threshold for p in sweep.points] == list(DEFAULT_THRESHOLDS)
    assert sweep.recommended.threshold == 0.75  # 0.70 keeps s3 (0.70 is not < 0.70): acc 0.4
    data = sweep.to_json()
    assert data["recommended"] == {"threshold": 0.75, "escalation_rate": 0.6, "cascade_accuracy": 0.6,
                                   "expected_ms": 8.0}  # fmt: skip


def test_bad_inputs():
    with pytest.raises(InputError, match="thresholds"):
        sweep_cascade(PROBS, TEACHER, LABELS, 2.0, 10.0, 0.6, thresholds=[1.5])
    with pytest.raises(InputError, match="samples"):
        sweep_cascade(PROBS, TEACHER[:4], LABELS, 2.0, 10.0, 0.6)
