"""Where the project's shipped data lives, and the preprocessing the bundled example declares."""

from __future__ import annotations

from pathlib import Path

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.errors import InputError
from edgekd.data.dataset_files import load_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.data.fashion_mnist_subset import MEAN, STD

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CALIBRATION_DIR = PROJECT_ROOT / "calibration_data"
EXAMPLE_DATASET = CALIBRATION_DIR / "fashion-mnist" / "fashion_mnist_subset.npz"
# The example's own declaration: 28x28 grey, statistics of the full Fashion-MNIST training set.
EXAMPLE_PREPROCESS = PreprocessConfig(input_size=(28, 28), channels=1, mean=(MEAN,), std=(STD,))


def example_preprocess(declared: PreprocessConfig | None = None) -> PreprocessConfig:
    """The example's preprocessing with the fields a user declared on top (a preset replaces its mean/std)."""
    if declared is None or not declared.model_fields_set:
        return EXAMPLE_PREPROCESS
    base = EXAMPLE_PREPROCESS.model_dump()
    if "preset" in declared.model_fields_set:
        base.update(mean=None, std=None)
    base.update({k: getattr(declared, k) for k in declared.model_fields_set})
    return PreprocessConfig.model_validate(base)


def example_dataset(preprocess: PreprocessConfig | None = None, transfer: Path | None = None) -> DatasetBundle:
    """The bundled Fashion-MNIST subset (12k train / 2k val / 2k test), preprocessed as it declares."""
    if not EXAMPLE_DATASET.exists():
        raise InputError(
            f"bundled dataset {EXAMPLE_DATASET} is missing; run from a checkout with `pip install -e .` or pass --data"
        )
    return load_dataset(EXAMPLE_DATASET, example_preprocess(preprocess), transfer)


def open_dataset(
    path: Path | None, preprocess: PreprocessConfig | None = None, transfer: Path | None = None
) -> DatasetBundle:
    """The dataset at ``path`` (the bundled example when None), preprocessed as declared, plus a transfer set."""
    return example_dataset(preprocess, transfer) if path is None else load_dataset(path, preprocess, transfer)
