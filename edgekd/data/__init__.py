"""Datasets: the bundled Fashion-MNIST example, ``.npz`` files and image folders."""

from edgekd.data.datasets import DatasetBundle, Split, load_dataset

__all__ = ["DatasetBundle", "Split", "load_dataset"]
