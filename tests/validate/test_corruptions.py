"""The corruption suite: shapes, dtypes, determinism, severity ordering and the accuracy-drop table."""

import numpy as np
import pytest

from edgekd.core.errors import InputError
from edgekd.validate.corruptions import CORRUPTIONS, SEVERITIES, corrupt, corruption_report, corruption_suite


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    # smooth blobs on a dark background, like Fashion-MNIST: every corruption changes them
    yy, xx = np.mgrid[0:28, 0:28]
    rng = np.random.default_rng(1)
    out = []
    for _ in range(6):
        cy, cx = rng.uniform(9, 19, size=2)
        out.append(200 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0) + rng.uniform(0, 30, (28, 28)))
    return np.clip(np.array(out)[:, None], 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_shape_dtype_and_range_are_kept(images, name):
    for s in SEVERITIES:
        out = corrupt(images, name, s)
        assert out.shape == images.shape and out.dtype == np.uint8
    floats = images.astype(np.float32) / 255.0
    out = corrupt(floats, name, 2)
    assert out.dtype == np.float32 and out.min() >= floats.min() - 1e-6 and out.max() <= floats.max() + 1e-6


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_same_seed_same_output_and_input_untouched(images, name):
    before = images.copy()
    a, b = corrupt(images, name, 3, seed=7), corrupt(images, name, 3, seed=7)
    assert np.array_equal(a, b)
    assert np.array_equal(images, before)
    assert not np.array_equal(a, images)


def test_random_corruptions_depend_on_the_seed(images):
    for name in ("gaussian_noise", "shift_rotate"):
        assert not np.array_equal(corrupt(images, name, 2, seed=0), corrupt(images, name, 2, seed=1))


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_higher_severity_changes_pixels_more(images, name):
    change = [float(np.abs(corrupt(images, name, s).astype(float) - images).mean()) for s in SEVERITIES]
    assert change[0] > 0
    assert change[0] < change[1] < change[2], change


def test_suite_has_every_variant(images):
    suite = corruption_suite(images[:2])
    assert set(suite) == {f"{n}@{s}" for n in CORRUPTIONS for s in SEVERITIES}


@pytest.mark.parametrize(
    ("args", "match"),
    [(("fog", 1), "unknown corruption"), (("blur", 4), "severity"), (("blur", 0), "severity")],
)
def test_bad_requests_are_input_errors(images, args, match):
    with pytest.raises(InputError, match=match):
        corrupt(images, *args)


def test_non_image_batch_is_an_input_error():
    with pytest.raises(InputError, match="N, C, H, W"):
        corrupt(np.zeros((4, 28, 28), np.uint8), "blur", 1)


def test_report_computes_drops_from_logits():
    y = np.array([0, 1, 0, 1])
    right = np.eye(2)[y]
    half = np.eye(2)[[0, 0, 0, 0]]  # right on 2 of 4
    rep = corruption_report(
        y,
        {"teacher": right, "student": right},
        {"teacher": {"blur@1": right, "blur@2": half}, "student": {"blur@1": half, "blur@2": half}},
    )
    rows = {(r["corruption"], r["severity"]): r for r in rep.rows}
    assert rows[("blur", 1)]["teacher_drop_points"] == 0.0
    assert rows[("blur", 1)]["student_drop_points"] == pytest.approx(50.0)
    assert rep.mean_drops()["blur"] == pytest.approx({"teacher": 25.0, "student": 50.0})
    assert rep.to_json()["worst_for_student"] == "blur"


def test_report_refuses_mismatched_variants():
    y = np.array([0, 1])
    logits = np.eye(2)
    with pytest.raises(InputError, match="different variants"):
        corruption_report(y, {"teacher": logits, "student": logits}, {"teacher": {"blur@1": logits}, "student": {}})
