"""Array-level dataset checks, image decoding, weight finiteness and the output-folder probe."""

import os

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.core.errors import InputError
from edgekd.data import validation as v


def test_uint8_passes_unchanged_and_small_ints_become_uint8():
    x = np.arange(12, dtype=np.uint8).reshape(3, 2, 2)
    assert v.check_images(x, "w") is x
    y = v.check_images(np.arange(12, dtype=np.int64).reshape(3, 2, 2), "w")
    assert y.dtype == np.uint8 and y.max() == 11


def test_float_pixels_are_float32_and_must_be_finite_and_sane():
    assert v.check_images(np.ones((2, 3, 3)), "w").dtype == np.float32
    with pytest.raises(InputError, match="NaN or infinity"):
        v.check_images(np.array([[[np.inf]]]), "w")
    with pytest.raises(InputError, match="scale them"):
        v.check_images(np.array([[[5000.0]]]), "w")


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.full((2, 3, 3), 40000, np.uint16), "uint16"),
        (np.full((2, 3, 3), "a"), "not numbers"),
        (np.ones((2, 3, 3), bool), "not numbers"),
        (np.zeros((0, 3, 3), np.uint8), "no images"),
        (np.full((2, 3, 3), 256, np.int32), r"outside \[0, 255\]"),
    ],
)
def test_refused_pixels(x, match):
    with pytest.raises(InputError, match=match):
        v.check_images(x, "data.npz x_train")


def test_labels():
    assert v.check_labels(np.array([[1.0], [2.0]]), 2, "w").tolist() == [1, 2]
    for y, match in ((np.array([0.5, 1.0]), "whole"), (np.array(["a", "b"]), "dtype"), (np.zeros(3), "labels")):
        with pytest.raises(InputError, match=match):
            v.check_labels(y, 2, "w")
    with pytest.raises(InputError, match=r"labels span \[0, 4\].*3 classes \(counted from the largest label\)"):
        v.check_label_range(np.array([0, 4]), 3, "w", counted=True)


def test_shapes_and_constant_images():
    with pytest.raises(InputError, match="differ between splits"):
        v.check_split_shapes({"train": (1, 8, 8), "test": (1, 9, 9)}, "w")
    with pytest.raises(InputError, match="channels"):
        v.check_split_shapes({"train": (4, 8, 8)}, "w")
    with pytest.raises(InputError, match="std = 0"):
        v.check_not_constant(np.full((2, 1, 3, 3), 0.5), "w")
    v.check_not_constant(np.eye(3)[None, None], "w")


def test_image_file_errors_name_the_file(tmp_path):
    from PIL import Image

    good = tmp_path / "ok.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(good)
    assert v.check_image_file(good).shape == (8, 8)
    for name, content in (("empty.png", b""), ("cut.png", good.read_bytes()[:40]), ("junk.jpg", b"junk" * 20)):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(InputError, match=name) as info:
            v.check_image_file(path)
        assert "\n" not in str(info.value)


def test_non_finite_weights_are_named():
    model = nn.Sequential(nn.Linear(2, 2))
    v.check_finite_weights(model, "t.pt")
    with torch.no_grad():
        model[0].bias[0] = float("nan")
    with pytest.raises(InputError, match=r"'0\.bias' holds NaN"):
        v.check_finite_weights(model, "t.pt")


def test_output_folder_checks_leave_nothing_behind(tmp_path):
    v.check_output_dir(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []  # nothing created, probe removed
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(InputError, match=r"is under .* a file"):
        v.check_output_dir(afile / "out")
    with pytest.raises(InputError, match="a file, not a folder"):
        v.check_output_dir(afile)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(InputError, match="cannot write"):
            v.check_output_dir(ro / "out")


def test_npz_that_would_decompress_past_the_limit_is_refused_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x_train=np.zeros((100, 28, 28), np.uint8))
    v.check_npz_size(path)
    monkeypatch.setattr(v, "MAX_NPZ_BYTES", 10_000)
    with pytest.raises(InputError, match="decompress to"):
        v.check_npz_size(path)
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a zip")
    v.check_npz_size(garbage)  # left to the loader's own message
