import json
import math

import numpy as np
import pytest

from edgekd.core.errors import InputError
from edgekd.validate.calibration import (
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    fit_temperature_ece,
    nll,
    softmax,
    temperature_scaling,
)

# Four samples, three classes. Confidences 0.95 (right), 0.94 (wrong), 0.55 (right), 0.45 (wrong).
# 15 bins of width 1/15: 0.95 and 0.94 fall in bin 14 (0.9333, 1], 0.55 in bin 8 (0.5333, 0.6],
# 0.45 in bin 6 (0.4, 0.4667].
# bin 14: accuracy 1/2, confidence 0.945 -> gap 0.445, weight 2/4 -> 0.2225
# bin 8:  accuracy 1,   confidence 0.55  -> gap 0.45,  weight 1/4 -> 0.1125
# bin 6:  accuracy 0,   confidence 0.45  -> gap 0.45,  weight 1/4 -> 0.1125
# ECE = 0.4475, MCE = 0.45
PROBS = np.array(
    [
        [0.95, 0.03, 0.02],
        [0.94, 0.04, 0.02],
        [0.25, 0.55, 0.20],
        [0.45, 0.30, 0.25],
    ]
)
LABELS = np.array([0, 1, 1, 2])


def test_ece_four_samples_by_hand():
    rep = calibration_report(PROBS, LABELS)
    assert rep.ece == pytest.approx(0.4475)
    assert rep.mce == pytest.approx(0.45)
    assert expected_calibration_error(PROBS, LABELS) == pytest.approx(0.4475)


def test_reliability_bins_by_hand():
    rep = calibration_report(PROBS, LABELS)
    assert len(rep.bins) == 15
    assert [b.count for b in rep.bins] == [0] * 6 + [1, 0, 1] + [0] * 5 + [2]
    top = rep.bins[14]
    assert (top.confidence, top.accuracy) == (pytest.approx(0.945), 0.5)
    assert rep.bins[8].accuracy == 1.0 and rep.bins[6].accuracy == 0.0
    assert rep.bins[0].confidence is None
    data = rep.to_json()
    assert data["ece"] == 0.4475 and data["n_bins"] == 15 and data["samples"] == 4
    json.dumps(data, allow_nan=False)  # empty bins are null, never NaN
    assert data["bins"][14] == {"lower": 0.9333, "upper": 1.0, "count": 2, "confidence": 0.945, "accuracy": 0.5}


def test_confidence_on_bin_edge_goes_to_lower_bin():
    # 0.6 = 9/15 is the upper edge of bin 8 (right-closed bins)
    rep = calibration_report(np.array([[0.6, 0.4]]), np.array([0]))
    assert rep.bins[8].count == 1
    assert rep.ece == pytest.approx(0.4)


def test_perfect_calibration_is_zero():
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])  # 50 % sure, right once out of twice
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.0)


def test_probs_must_be_probabilities():
    with pytest.raises(InputError, match="softmax"):
        calibration_report(np.array([[2.0, -1.0]]), np.array([0]))
    with pytest.raises(InputError, match="samples"):
        calibration_report(PROBS, LABELS[:3])


def test_softmax_and_nll():
    p = softmax(np.array([[0.0, math.log(3.0)]]))
    assert p == pytest.approx(np.array([[0.25, 0.75]]))
    assert nll(np.array([[0.0, math.log(3.0)]]), np.array([1])) == pytest.approx(-math.log(0.75))
    assert softmax(np.array([[1000.0, 0.0]]))[0, 0] == pytest.approx(1.0)  # stable


def _calibrated(seed: int, n: int = 20000, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Logits whose softmax is calibrated by construction: labels drawn from softmax(logits)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(n, k))
    p = softmax(logits)
    labels = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return logits, labels


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_recovers_known_t(true_t):
    logits, labels = _calibrated(seed=1)
    fitted = fit_temperature(logits * true_t, labels)
    assert fitted == pytest.approx(true_t, rel=0.05)


def test_temperature_scaling_lowers_ece_on_held_out_split():
    val_logits, val_labels = _calibrated(seed=2)
    test_logits, test_labels = _calibrated(seed=3)
    res = temperature_scaling(
        val_logits * 3.0, val_labels, test_logits * 3.0, test_labels, split="test", objective="nll"
    )
    assert res.temperature == pytest.approx(3.0, rel=0.05)
    assert res.ece_after < res.ece_before / 3
    assert res.nll_after < res.nll_before
    data = res.to_json()
    assert set(data) == {"temperature", "split", "ece_before", "ece_after", "nll_before", "nll_after",
                         "fit_samples", "samples", "objective", "nll_temperature"}  # fmt: skip
    assert data["split"] == "test" and data["samples"] == 20000
    assert data["objective"] == "nll" and data["nll_temperature"] == data["temperature"]


def test_ece_objective_finds_the_overconfidence_factor_and_generalises():
    val_logits, val_labels = _calibrated(seed=2)
    test_logits, test_labels = _calibrated(seed=3)
    res = temperature_scaling(val_logits * 3.0, val_labels, test_logits * 3.0, test_labels, split="test")
    assert res.objective == "ece"
    assert res.temperature == pytest.approx(3.0, rel=0.1)
    assert res.ece_after < res.ece_before / 3
    assert res.nll_temperature == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("seed", range(5))
def test_ece_objective_never_raises_validation_ece(seed):
    # Nearly calibrated logits: the NLL optimum may move ECE either way; the ECE fit keeps T = 1 if nothing is better.
    logits, labels = _calibrated(seed=10 + seed, n=400)
    res = temperature_scaling(logits, labels, split="val")
    assert res.ece_after <= res.ece_before
    assert res.ece_after == pytest.approx(expected_calibration_error(softmax(logits, res.temperature), labels))


def test_ece_fit_picks_the_grid_minimum():
    logits, labels = _calibrated(seed=20, n=300)
    t = fit_temperature_ece(logits, labels)
    best = expected_calibration_error(softmax(logits, t), labels)
    for other in (0.5, 0.8, 1.0, 1.25, 2.0):
        assert best <= expected_calibration_error(softmax(logits, other), labels) + 1e-12


def test_unknown_objective_and_bounds_are_input_errors():
    logits, labels = _calibrated(seed=4, n=50)
    with pytest.raises(InputError, match=r"objective 'brier'.*ece, nll"):
        temperature_scaling(logits, labels, objective="brier")
    with pytest.raises(InputError, match="bounds"):
        fit_temperature_ece(logits, labels, bounds=(2.0, 5.0))


def test_temperature_scaling_needs_both_eval_arrays():
    logits, labels = _calibrated(seed=4, n=50)
    with pytest.raises(InputError, match="both"):
        temperature_scaling(logits, labels, eval_logits=logits)
