import numpy as np
import pytest
from PIL import Image

from edgekd.core.errors import InputError
from edgekd.data.dataset_files import load_dataset


def _write_folder(root, size=(12, 12), mode="L"):
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        for cls in ("cat", "dog"):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                shape = size if mode == "L" else (*size, 3)
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(d / f"{i}.png")


def test_image_folder_loads_as_nchw_with_class_names(tmp_path):
    _write_folder(tmp_path)
    data = load_dataset(tmp_path)
    assert data.class_names == ("cat", "dog")
    assert data.train.x.shape == (6, 1, 12, 12) and data.train.x.dtype == np.uint8
    assert sorted(set(data.test.y.tolist())) == [0, 1]
    x = data.to_tensor(data.test.x[:2])
    assert x.shape == (2, 1, 12, 12) and float(x.abs().max()) <= 1.0 + 1e-6


def test_rgb_folder_has_three_channels(tmp_path):
    _write_folder(tmp_path, mode="RGB")
    assert load_dataset(tmp_path).input_shape == (3, 12, 12)


def test_npz_in_nhwc_is_transposed(tmp_path):
    arrays = {}
    for s in ("train", "val", "test"):
        arrays[f"x_{s}"] = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 3), dtype=np.uint8)
        arrays[f"y_{s}"] = np.array([0, 1, 2, 1])
    np.savez(tmp_path / "d.npz", **arrays)
    data = load_dataset(tmp_path / "d.npz")
    assert data.input_shape == (3, 8, 8) and data.num_classes == 3


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p.write_text("nope"), "not a readable .npz"),
        (lambda p: np.savez(p, x_train=np.zeros((2, 4, 4))), "missing arrays"),
        (lambda p: np.savez(p, **{f"{k}_{s}": np.zeros((2, 4, 4)) if k == "x" else np.zeros(3)
                                  for s in ("train", "val", "test") for k in ("x", "y")}), "labels"),
    ],
)  # fmt: skip
def test_bad_npz_is_a_one_line_input_error(tmp_path, make, match):
    path = tmp_path / "bad.npz"
    make(path)
    with pytest.raises(InputError, match=match) as info:
        load_dataset(path)
    assert "\n" not in str(info.value)


def test_missing_dataset(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_dataset(tmp_path / "none.npz")
