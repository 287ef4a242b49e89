"""Build the bundled example dataset from Debian's ``dataset-fashion-mnist`` package.

The subset is class-balanced and drawn with a fixed seed, so ``edgekd example make-data``
reproduces the same arrays (``content_sha256`` in the manifest) on any machine with that package.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np

from edgekd.core.errors import InputError
from edgekd.data.datasets import _digest

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# Mean and std of the full 60k Fashion-MNIST training set, pixel values scaled to [0, 1].
MEAN, STD = 0.2860, 0.3530
FILE_NAME = "fashion_mnist_subset.npz"


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format) into a numpy array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _balanced(y: np.ndarray, per_class: int, rng: np.random.Generator, exclude: np.ndarray) -> np.ndarray:
    picks = []
    for c in range(len(CLASS_NAMES)):
        candidates = np.setdiff1d(np.flatnonzero(y == c), exclude)
        picks.append(rng.choice(candidates, per_class, replace=False))
    return rng.permutation(np.concatenate(picks))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _debian_version() -> str:
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "dataset-fashion-mnist"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_subset(
    out_dir: Path,
    source_dir: Path = DEBIAN_DIR,
    train_per_class: int = 1200,
    val_per_class: int = 200,
    test_per_class: int = 200,
    seed: int = 0,
) -> Path:
    """Write ``fashion_mnist_subset.npz`` and ``MANIFEST.json`` into ``out_dir``; return the npz path."""
    files = {
        "train_images": source_dir / "train-images-idx3-ubyte.gz",
        "train_labels": source_dir / "train-labels-idx1-ubyte.gz",
        "test_images": source_dir / "t10k-images-idx3-ubyte.gz",
        "test_labels": source_dir / "t10k-labels-idx1-ubyte.gz",
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise InputError(f"Fashion-MNIST files not found ({missing[0]}); install Debian's dataset-fashion-mnist")
    x_tr, y_tr = read_idx(files["train_images"]), read_idx(files["train_labels"]).astype(np.int64)
    x_te, y_te = read_idx(files["test_images"]), read_idx(files["test_labels"]).astype(np.int64)
    rng = np.random.default_rng(seed)
    train_idx = _balanced(y_tr, train_per_class, rng, np.array([], dtype=np.int64))
    val_idx = _balanced(y_tr, val_per_class, rng, train_idx)
    test_idx = _balanced(y_te, test_per_class, rng, np.array([], dtype=np.int64))
    arrays = {
        "x_train": x_tr[train_idx][:, None], "y_train": y_tr[train_idx],
        "x_val": x_tr[val_idx][:, None], "y_val": y_tr[val_idx],
        "x_test": x_te[test_idx][:, None], "y_test": y_te[test_idx],
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / FILE_NAME
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays, class_names=np.array(CLASS_NAMES), mean=np.array([MEAN]), std=np.array([STD]))
    tmp.replace(out)
    split_digest = _digest([arrays[k] for s in ("train", "val", "test") for k in (f"x_{s}", f"y_{s}")])
    manifest = {
        "name": "fashion-mnist-subset",
        "source": {
            "debian_package": "dataset-fashion-mnist",
            "debian_version": _debian_version(),
            "upstream": "https://github.com/zalandoresearch/fashion-mnist",
            "files": {k: {"path": str(p), "sha256": _sha256(p)} for k, p in files.items()},
        },
        "licence": "MIT (Expat), Copyright 2017 Zalando SE",
        "how_made": (
            f"edgekd example make-data: class-balanced draw with numpy default_rng(seed={seed}); "
            f"train {train_per_class}/class and val {val_per_class}/class from the 60k training set "
            f"(disjoint), test {test_per_class}/class from the 10k test set"
        ),
        "splits": {s: int(arrays[f"y_{s}"].shape[0]) for s in ("train", "val", "test")},
        "normalisation": {"mean": [MEAN], "std": [STD], "scale": "pixel/255"},
        "class_names": list(CLASS_NAMES),
        "files": {FILE_NAME: {"sha256": _sha256(out), "content_sha256": split_digest}},
    }
    (out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out
