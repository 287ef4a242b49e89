"""Datasets: the bundled example, ``.npz`` files, image folders and CSV index files; preprocessing and subsets."""

from edgekd.data.datasets import DatasetBundle, Split, load_dataset

__all__ = ["DatasetBundle", "Split", "load_dataset"]
