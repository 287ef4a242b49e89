"""Datasets: the bundled example, ``.npz`` files, image folders and CSV index files; preprocessing and subsets."""

from edgekd.data.dataset_files import load_dataset
from edgekd.data.datasets import DatasetBundle, Split

__all__ = ["DatasetBundle", "Split", "load_dataset"]
