"""Dataset contract and loaders.

A dataset is a :class:`DatasetBundle`: ``train``/``val``/``test`` splits of uint8 or float images in
NCHW layout with int64 labels, class names, and the normalisation the model expects. Two on-disk
forms are accepted:

* an ``.npz`` with ``x_train, y_train, x_val, y_val, x_test, y_test`` (optional ``class_names``,
  ``mean``, ``std``); images ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` for C in {1, 3};
* an image folder ``DIR/{train,val,test}/<class>/*.png|jpg``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgekd.core.errors import InputError
from edgekd.data import validation

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


@dataclass(frozen=True)
class Split:
    """One split: images ``x`` (N, C, H, W) uint8 or float32, labels ``y`` (N,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int | None) -> Split:
        """The first ``n`` samples (all when ``n`` is None or larger than the split)."""
        if n is None or n >= len(self):
            return self
        return Split(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class DatasetBundle:
    """Train/val/test splits plus what a model needs to read them."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: tuple[str, ...]
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    source: str = ""
    digest: str = field(default="", compare=False)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one sample."""
        c, h, w = self.test.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_tensor(self, x: np.ndarray) -> torch.Tensor:
        """Normalised float32 tensor for model input."""
        t = torch.from_numpy(np.ascontiguousarray(x)).float()
        if x.dtype == np.uint8:
            t = t / 255.0
        mean = torch.tensor(self.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(1, -1, 1, 1)
        return (t - mean) / std

    def batches(
        self, split: Split, batch_size: int, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, np.ndarray]]:
        """Yield ``(inputs, labels, indices)`` batches of a split."""
        idx = np.arange(len(split))
        if shuffle:
            idx = np.random.default_rng(seed).permutation(len(split))
        for start in range(0, len(split), batch_size):
            sel = idx[start : start + batch_size]
            yield self.to_tensor(split.x[sel]), torch.from_numpy(split.y[sel]).long(), sel


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None, :, :]
    if x.ndim == 4:
        if x.shape[1] in (1, 3):
            return x
        if x.shape[3] in (1, 3):
            return np.transpose(x, (0, 3, 1, 2))
    raise InputError(
        f"{where}: images have shape {x.shape}; expected (N,H,W), (N,C,H,W) or (N,H,W,C) with 1 or 3 channels"
    )


def _digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(str(a.shape).encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _load_npz(path: Path) -> DatasetBundle:
    validation.check_npz_size(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # numpy raises several types for a bad archive
        detail = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise InputError(f"{path}: not a readable .npz archive ({detail}); pass a valid dataset") from None
    missing = [f"{p}_{s}" for s in SPLITS for p in ("x", "y") if f"{p}_{s}" not in arrays]
    if missing:
        raise InputError(
            f"{path}: dataset is missing arrays {', '.join(missing)}; an .npz needs "
            "x_train, y_train, x_val, y_val, x_test, y_test"
        )
    splits = {}
    for s in SPLITS:
        where = f"{path} x_{s}"
        x = _to_nchw(validation.check_images(arrays[f"x_{s}"], where), where)
        y = validation.check_labels(arrays[f"y_{s}"], x.shape[0], f"{path} y_{s}")
        validation.check_not_constant(x, where)
        splits[s] = Split(x, y)
    validation.check_split_shapes({s: sp.x.shape[1:] for s, sp in splits.items()}, str(path))
    counted = "class_names" not in arrays
    if counted:
        n_classes = max(int(sp.y.max()) for sp in splits.values()) + 1
        names = tuple(str(i) for i in range(max(n_classes, 1)))
    else:
        names = validation.check_class_names(arrays["class_names"], str(path))
    for s, sp in splits.items():
        validation.check_label_range(sp.y, len(names), f"{path} y_{s}", counted)
    channels = splits["test"].x.shape[1]
    mean_a, std_a = arrays.get("mean", np.zeros(channels)), arrays.get("std", np.ones(channels))
    validation.check_normalisation(mean_a, std_a, channels, str(path))
    mean = tuple(float(v) for v in mean_a.reshape(-1))
    std = tuple(float(v) for v in std_a.reshape(-1))
    return DatasetBundle(
        name=path.stem,
        class_names=names,
        mean=mean,
        std=std,
        source=str(path),
        digest=_digest([a for s in splits.values() for a in (s.x, s.y)]),
        **splits,
    )


def _load_image_folder(root: Path) -> DatasetBundle:
    missing = [s for s in SPLITS if not (root / s).is_dir()]
    if missing:
        raise InputError(
            f"{root}: image folder lacks {', '.join(missing)}/; expected {root}/train|val|test/<class>/*.png"
        )
    classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir())
    if not classes:
        raise InputError(f"{root}/train has no class folders; expected {root}/train/<class>/*.png")
    splits = {}
    for s in SPLITS:
        xs, ys = [], []
        for label, cls in enumerate(classes):
            for f in sorted((root / s / cls).glob("*")):
                if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
                    xs.append(validation.check_image_file(f))
                    ys.append(label)
        if not xs:
            raise InputError(f"{root}/{s} holds no images of classes {classes}")
        shapes = {a.shape for a in xs}
        if len(shapes) != 1:
            raise InputError(f"{root}/{s}: images differ in size {sorted(shapes)}; resize them to one size")
        splits[s] = Split(_to_nchw(np.stack(xs), f"{root}/{s}"), np.asarray(ys, dtype=np.int64))
        validation.check_not_constant(splits[s].x, f"{root}/{s}")
    validation.check_split_shapes({s: sp.x.shape[1:] for s, sp in splits.items()}, str(root))
    channels = splits["test"].x.shape[1]
    return DatasetBundle(
        name=root.name,
        class_names=tuple(classes),
        mean=(0.5,) * channels,
        std=(0.5,) * channels,
        source=str(root),
        digest=_digest([a for sp in splits.values() for a in (sp.x, sp.y)]),
        **splits,
    )


def load_dataset(path: str | Path) -> DatasetBundle:
    """Load an ``.npz`` dataset or an image folder.

    Raises:
        InputError: the path does not exist or does not hold a dataset in a known form.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"dataset {p} does not exist; pass an .npz file or an image folder")
    if p.is_dir():
        return _load_image_folder(p)
    if not p.is_file():
        raise InputError(f"dataset {p} is not a regular file (a pipe or device?); pass an .npz file or an image folder")
    if p.suffix != ".npz":
        raise InputError(f"dataset {p} is neither an .npz file nor an image folder")
    return _load_npz(p)
