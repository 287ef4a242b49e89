"""The bundled Fashion-MNIST subset is what its MANIFEST.json says: same bytes, sizes, balance, provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edgekd.data.bundled import CALIBRATION_DIR
from edgekd.data.dataset_files import load_dataset
from edgekd.data.datasets import DatasetBundle, Split

DATA_DIR = CALIBRATION_DIR / "fashion-mnist"
MANIFEST = json.loads((DATA_DIR / "MANIFEST.json").read_text())
NPZ = DATA_DIR / "fashion_mnist_subset.npz"
PER_CLASS = {"train": 1200, "val": 200, "test": 200}
SOURCE_FILES = MANIFEST["source"]["files"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def image_rows(split: Split) -> set[bytes]:
    return {row.tobytes() for row in split.x.reshape(len(split), -1)}


@pytest.fixture(scope="module")
def bundle() -> DatasetBundle:
    return load_dataset(NPZ)


@pytest.mark.parametrize("name", sorted(MANIFEST["files"]))
def test_listed_file_sha256_matches(name: str) -> None:
    path = DATA_DIR / name
    assert path.is_file(), f"MANIFEST.json lists {name}, which is missing from {DATA_DIR}"
    assert sha256(path) == MANIFEST["files"][name]["sha256"], f"{path} differs from the manifest"


def test_no_unlisted_files() -> None:
    present = {p.name for p in DATA_DIR.iterdir() if p.name != "MANIFEST.json"}
    assert present == set(MANIFEST["files"]), "every file beside MANIFEST.json must be listed in it"


def test_content_sha256_matches_loaded_arrays(bundle: DatasetBundle) -> None:
    assert bundle.digest == MANIFEST["files"][NPZ.name]["content_sha256"]


def test_split_sizes(bundle: DatasetBundle) -> None:
    for split, per_class in PER_CLASS.items():
        n = len(getattr(bundle, split))
        assert n == MANIFEST["splits"][split] == per_class * len(MANIFEST["class_names"]), split


def test_images_and_labels_have_the_documented_form(bundle: DatasetBundle) -> None:
    assert bundle.class_names == tuple(MANIFEST["class_names"])
    assert bundle.num_classes == 10
    assert bundle.input_shape == (1, 28, 28)
    assert bundle.mean == tuple(MANIFEST["normalisation"]["mean"])
    assert bundle.std == tuple(MANIFEST["normalisation"]["std"])
    for split in PER_CLASS:
        s = getattr(bundle, split)
        assert s.x.dtype == np.uint8 and s.y.dtype == np.int64


@pytest.mark.parametrize("split", sorted(PER_CLASS))
def test_classes_are_balanced(bundle: DatasetBundle, split: str) -> None:
    counts = np.bincount(getattr(bundle, split).y, minlength=bundle.num_classes)
    assert counts.tolist() == [PER_CLASS[split]] * bundle.num_classes


def test_train_and_val_are_disjoint(bundle: DatasetBundle) -> None:
    train, val = image_rows(bundle.train), image_rows(bundle.val)
    assert len(train) == len(bundle.train) and len(val) == len(bundle.val), "duplicate images within a split"
    assert not train & val, f"{len(train & val)} images are in both train and val"


def test_test_split_shares_no_image_with_train_or_val(bundle: DatasetBundle) -> None:
    test = image_rows(bundle.test)
    assert not test & (image_rows(bundle.train) | image_rows(bundle.val))


def test_manifest_records_licence_and_source() -> None:
    assert "MIT" in MANIFEST["licence"] and "Zalando" in MANIFEST["licence"]
    source = MANIFEST["source"]
    assert source["debian_package"] == "dataset-fashion-mnist"
    assert source["debian_version"] not in ("", "unknown")
    assert source["upstream"] == "https://github.com/zalandoresearch/fashion-mnist"
    assert set(SOURCE_FILES) == {"train_images", "train_labels", "test_images", "test_labels"}
    assert all(len(f["sha256"]) == 64 for f in SOURCE_FILES.values())
    assert "edgekd example make-data" in MANIFEST["how_made"]


def test_readme_matches_manifest() -> None:
    readme = (CALIBRATION_DIR / "README.md").read_text()
    for fact in (
        MANIFEST["source"]["debian_package"],
        MANIFEST["source"]["debian_version"],
        MANIFEST["source"]["upstream"],
        MANIFEST["files"][NPZ.name]["content_sha256"],
        "edgekd example make-data",
    ):
        assert fact in readme, f"calibration_data/README.md does not mention {fact!r}"


@pytest.mark.parametrize("key", sorted(SOURCE_FILES))
def test_debian_source_file_sha256_matches(key: str) -> None:
    path = Path(SOURCE_FILES[key]["path"])
    assert path.exists(), f"{path} missing: install Debian's dataset-fashion-mnist (make setup does)"
    assert sha256(path) == SOURCE_FILES[key]["sha256"]


def test_make_subset_reproduces_the_bundled_arrays(tmp_path: Path) -> None:
    """``edgekd example make-data`` redraws the same arrays from the Debian files (fixed seed)."""
    missing = [f["path"] for f in SOURCE_FILES.values() if not Path(f["path"]).exists()]
    assert not missing, f"{missing} missing: install Debian's dataset-fashion-mnist (make setup does)"
    from edgekd.data.fashion_mnist_subset import make_subset

    make_subset(tmp_path)
    remade = json.loads((tmp_path / "MANIFEST.json").read_text())
    assert remade["files"][NPZ.name]["content_sha256"] == MANIFEST["files"][NPZ.name]["content_sha256"]
    assert remade["source"]["files"] == SOURCE_FILES
