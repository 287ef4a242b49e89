"""Where the project's shipped data lives."""

from __future__ import annotations

from pathlib import Path

from edgekd.core.errors import InputError
from edgekd.data.datasets import DatasetBundle, load_dataset

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_DIR = PROJECT_ROOT / "calibration_data"
EXAMPLE_DATASET = CALIBRATION_DIR / "fashion-mnist" / "fashion_mnist_subset.npz"


def example_dataset() -> DatasetBundle:
    """The bundled Fashion-MNIST subset (12k train / 2k val / 2k test)."""
    if not EXAMPLE_DATASET.exists():
        raise InputError(
            f"bundled dataset {EXAMPLE_DATASET} is missing; run from a checkout with `pip install -e .` or pass --data"
        )
    return load_dataset(EXAMPLE_DATASET)
