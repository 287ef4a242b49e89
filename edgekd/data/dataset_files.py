"""Open a dataset file or folder by its form: ``.npz`` arrays, an image folder or a ``.csv`` index."""

from __future__ import annotations

from pathlib import Path

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.errors import InputError
from edgekd.data.datasets import DatasetBundle, load_npz
from edgekd.data.folders import attach_transfer, load_image_folder, load_index_file


def load_dataset(
    path: str | Path, preprocess: PreprocessConfig | None = None, transfer: str | Path | None = None
) -> DatasetBundle:
    """Load an ``.npz`` dataset, an image folder or a ``.csv`` index file, preprocessed as declared.

    Args:
        path: The dataset.
        preprocess: Declared preprocessing; None = the dataset's own (npz mean/std) or the folder default.
        transfer: A folder of unlabeled images (any layout below it) added as the transfer set.

    Raises:
        InputError: the path does not exist or does not hold a dataset in a known form.
    """
    cfg = preprocess or PreprocessConfig()
    p = Path(path)
    if not p.exists():
        raise InputError(f"dataset {p} does not exist; pass an .npz file, a .csv index or an image folder")
    if p.is_dir():
        bundle = load_image_folder(p, cfg)
    elif not p.is_file():
        raise InputError(f"dataset {p} is not a regular file (a pipe or device?); pass an .npz file or an image folder")
    elif p.suffix.lower() == ".csv":
        bundle = load_index_file(p, cfg)
    elif p.suffix == ".npz":
        bundle = load_npz(p, cfg)
    else:
        raise InputError(f"dataset {p} is neither an .npz file, a .csv index nor an image folder")
    return attach_transfer(bundle, Path(transfer)) if transfer is not None else bundle
