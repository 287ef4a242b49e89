import numpy as np
import pytest

from edgekd.core.errors import InputError
from edgekd.validate.slices import accuracy, per_class_accuracy, per_class_regression, slice_report


def _preds(right: dict[int, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions with ``right[c] = (correct, total)`` for class c (errors predict class c+1)."""
    labels, preds = [], []
    for c, (ok, total) in right.items():
        labels += [c] * total
        preds += [c] * ok + [c + 1] * (total - ok)
    return np.array(preds), np.array(labels)


def test_accuracy_and_per_class():
    preds, labels = _preds({0: (9, 10), 1: (6, 10)})
    assert accuracy(preds, labels) == pytest.approx(0.75)
    assert per_class_accuracy(preds, labels, ["cat", "dog"]) == {"cat": 0.9, "dog": 0.6}
    assert per_class_accuracy(preds, labels) == {"0": 0.9, "1": 0.6}


def test_spread_flagged():
    # 90 % vs 60 %: spread 30 points > 20; 60 % is not below 0.7 * 75 % = 52.5 %
    rep = slice_report(*_preds({0: (9, 10), 1: (6, 10)}), class_names=["cat", "dog"])
    assert rep.spread_points == pytest.approx(30.0)
    assert rep.weak_classes == []
    assert rep.flagged and len(rep.findings) == 1
    assert "30.0 points" in rep.findings[0] and "'dog'" in rep.findings[0]


def test_minority_class_below_70_percent_of_overall():
    # class 1 has 2 samples, both wrong: overall 18/20 = 90 %, 0 % < 63 %
    rep = slice_report(*_preds({0: (18, 18), 1: (0, 2)}), class_names=["common", "rare"])
    assert rep.accuracy == pytest.approx(0.9)
    assert rep.minority_class == "rare" and rep.counts == {"common": 18, "rare": 2}
    assert rep.weak_classes == ["rare"]
    assert rep.findings[0].startswith("minority class 'rare' (2 samples)")


def test_even_classes_not_flagged():
    rep = slice_report(*_preds({0: (9, 10), 1: (8, 10)}))
    assert rep.spread_points == pytest.approx(10.0)
    assert not rep.flagged
    data = rep.to_json()
    assert data["flagged"] is False and data["per_class"] == {"0": 0.9, "1": 0.8} and data["spread_points"] == 10.0


def test_per_class_regression_points_and_worst():
    reg = per_class_regression({"cat": 0.9, "dog": 0.8, "emu": 0.7}, {"cat": 0.88, "dog": 0.65, "emu": 0.75})
    assert reg.drop_points == pytest.approx({"cat": 2.0, "dog": 15.0, "emu": -5.0})
    assert (reg.worst_class, reg.worst_drop_points) == ("dog", pytest.approx(15.0))
    assert reg.to_json() == {"drop_points": {"cat": 2.0, "dog": 15.0, "emu": -5.0}, "worst_class": "dog",
                             "worst_drop_points": 15.0}  # fmt: skip


def test_bad_inputs():
    with pytest.raises(InputError, match="samples"):
        accuracy([0, 1], [0])
    with pytest.raises(InputError, match="class names"):
        per_class_accuracy([0, 2], [0, 2], ["a", "b"])
    with pytest.raises(InputError, match="in common"):
        per_class_regression({"a": 1.0}, {"b": 1.0})


def test_spread_of_exactly_20_points_not_flagged():
    rep = slice_report(*_preds({0: (9, 10), 1: (7, 10)}))  # 90 % vs 70 %
    assert rep.spread_points == pytest.approx(20.0)
    assert not rep.flagged
