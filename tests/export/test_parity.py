"""check_parity on hand-made arrays, where every figure is known in advance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekd.core.errors import InputError
from edgekd.export import ParityResult, check_parity, compare_logits

REF = np.array(
    [
        [3.0, 1.0, 0.0],
        [0.0, 2.0, 1.0],
        [1.0, 0.0, 4.0],
        [2.0, 2.5, 0.0],
    ],
    dtype=np.float32,
)
LABELS = np.array([0, 1, 2, 0])  # the reference gets samples 0-2 right: accuracy 0.75
X = np.arange(4, dtype=np.float32).reshape(4, 1, 1, 1)  # sample i holds the value i


def _lookup(table: np.ndarray):
    """A runtime that returns row i of ``table`` for an input holding i."""
    return lambda x: table[x.reshape(len(x)).astype(int)]


def test_identical_outputs_agree_fully() -> None:
    result = check_parity(_lookup(REF), X, REF, LABELS)
    assert result == ParityResult(
        agreement=1.0,
        max_abs_diff=0.0,
        mean_abs_diff=0.0,
        accuracy=0.75,
        reference_accuracy=0.75,
        worst_sample=0,
        samples=4,
    )


def test_one_flipped_prediction_and_its_differences() -> None:
    out = REF.copy()
    out[3] = [3.0, 2.5, 0.0]  # sample 3 flips from class 1 to class 0 (its label): diff 1.0
    out[1, 2] += 0.25  # sample 1 keeps class 1: diff 0.25
    result = check_parity(_lookup(out), X, REF, LABELS)
    assert result.agreement == 0.75
    assert result.max_abs_diff == pytest.approx(1.0)
    assert result.mean_abs_diff == pytest.approx(1.25 / 12)
    assert result.worst_sample == 3
    assert result.accuracy == 1.0
    assert result.reference_accuracy == 0.75


def test_batches_cover_every_sample_once() -> None:
    sizes = []
    lookup = _lookup(REF)

    def run(x: np.ndarray) -> np.ndarray:
        sizes.append(len(x))
        return lookup(x)

    result = check_parity(run, X, REF, LABELS, batch_size=3)
    assert sizes == [3, 1]
    assert result.agreement == 1.0


def test_to_json_is_plain_json() -> None:
    data = check_parity(_lookup(REF), X, REF, LABELS).to_json()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {
        "agreement",
        "max_abs_diff",
        "mean_abs_diff",
        "accuracy",
        "reference_accuracy",
        "worst_sample",
        "samples",
    }


def test_wrong_runtime_output_shape_is_an_input_error() -> None:
    with pytest.raises(InputError, match="shape"):
        check_parity(lambda x: np.zeros((len(x), 2), dtype=np.float32), X, REF, LABELS)


@pytest.mark.parametrize(
    ("x", "ref", "labels"),
    [
        (X[:3], REF, LABELS),
        (X, REF[:3], LABELS),
        (X, REF, LABELS[:3]),
        (X[:0], REF[:0], LABELS[:0]),
        (X, REF[:, 0], LABELS),
    ],
)
def test_misaligned_inputs_are_input_errors(x: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> None:
    with pytest.raises(InputError):
        check_parity(_lookup(REF), x, ref, labels)


def test_compare_logits_is_check_parity_without_the_runtime():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(40, 5)).astype(np.float32)
    out = ref + rng.normal(scale=0.5, size=ref.shape).astype(np.float32)
    labels = rng.integers(0, 5, size=40)
    assert compare_logits(out, ref, labels) == check_parity(
        lambda b: out, np.zeros((40, 1)), ref, labels, batch_size=40
    )
    with pytest.raises(InputError, match="do not line up"):
        compare_logits(out[:39], ref, labels)
