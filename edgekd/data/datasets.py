"""Dataset contract and loaders.

A dataset is a :class:`DatasetBundle`: ``train``/``val``/``test`` splits of uint8 or float images in
NCHW layout with int64 labels, class names, and the declared preprocessing
(:class:`~edgekd.config.preprocess.PreprocessConfig`). Three on-disk forms are accepted:

* an ``.npz`` with ``x_train, y_train, x_val, y_val, x_test, y_test`` (optional ``class_names``,
  ``mean``, ``std``); images ``(N, H, W)``, ``(N, C, H, W)`` or ``(N, H, W, C)`` for C in {1, 3};
* an image folder ``DIR/{train,val,test}/<class>/*.{jpg,jpeg,png,bmp,webp}`` of any sizes and modes,
  decoded lazily (see :mod:`edgekd.data.folders`);
* an index file ``*.csv`` of ``path,label[,split]`` rows.

Two digests: ``digest`` covers the pixels (files) and labels only; ``cache_digest`` adds the
preprocessing (mean/std, size, resize policy, ...) and is what stage cache keys use.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.errors import InputError
from edgekd.core.hashing import sha256_json
from edgekd.data import validation
from edgekd.data.images import IMAGE_SUFFIXES, LazyImages, take_rows
from edgekd.data.subsets import stratified_indices

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
__all__ = ["IMAGE_SUFFIXES", "SPLITS", "DatasetBundle", "Split"]


@dataclass(frozen=True)
class Split:
    """One split: images ``x`` (N, C, H, W) uint8 or float32 (or lazily decoded files), labels ``y`` (N,) int64.

    A label of -1 marks an unlabeled image (transfer set).
    """

    x: np.ndarray | LazyImages
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, n: int | None) -> Split:
        """A seeded, class-stratified sample of ``n`` (all when ``n`` is None or not smaller than the split).

        The same ``n`` gives the same samples in every run and every stage (see :mod:`edgekd.data.subsets`).
        """
        if n is None or n >= len(self):
            return self
        return self.take(self.subset_indices(n))

    def subset_indices(self, n: int | None) -> np.ndarray:
        """The positions :meth:`subset` takes, to index arrays computed on the whole split (reference logits)."""
        return np.arange(len(self)) if n is None or n >= len(self) else stratified_indices(self.y, n)

    def take(self, idx: np.ndarray) -> Split:
        """The samples ``idx`` (lazy images stay lazy)."""
        return Split(take_rows(self.x, idx), self.y[idx])


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
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig, compare=False)
    unlabeled: Split | None = None
    """Images without labels (``train/unlabeled/``, ``--transfer DIR``): distilled from teacher outputs alone."""
    notes: dict[str, Any] = field(default_factory=dict, compare=False)
    """What the loader decided (carved splits, inferred size, counts), for the report."""

    @property
    def cache_digest(self) -> str:
        """Pixels, labels and preprocessing: the dataset part of every stage cache key."""
        return sha256_json({"data": self.digest, "mean": list(self.mean), "std": list(self.std),
                            "preprocess": self.preprocess.model_dump(mode="json")})  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """The dataset as report.json records it (``preprocess`` is the effective preprocessing)."""
        c, h, w = self.input_shape
        return {
            "labeled": len(self.train), "unlabeled": len(self.unlabeled) if self.unlabeled is not None else 0,
            "preprocess": {**self.preprocess.model_dump(mode="json"), "input_size": [h, w], "channels": c,
                           "mean": list(self.mean), "std": list(self.std),
                           "crop_fraction": self.preprocess.effective_crop_fraction()},
            "cache_digest": self.cache_digest, **self.notes,
        }  # fmt: skip

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
        return normalise(x, self.mean, self.std, self.preprocess.channel_order == "bgr")

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


def normalise(x: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], bgr: bool = False) -> torch.Tensor:
    """Images (N, C, H, W) to model input: uint8 scaled by 1/255, channels reversed for BGR, then (x - mean) / std."""
    t = torch.from_numpy(np.ascontiguousarray(x)).float()
    if x.dtype == np.uint8:
        t = t / 255.0
    if bgr and t.shape[1] == 3:
        t = t.flip(1)
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (t - m) / s


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


def _resize_arrays(x: np.ndarray, cfg: PreprocessConfig, where: str) -> np.ndarray:
    """In-memory images brought to ``cfg.input_size`` by the declared policy (uint8 only)."""
    from PIL import Image

    from edgekd.data.images import fit

    size = cfg.input_size
    if size is None or tuple(x.shape[2:]) == tuple(size):
        return x
    if x.dtype != np.uint8:
        raise InputError(f"{where}: float images cannot be resized to input_size {size}; store uint8 or resize them")
    out = np.empty((len(x), x.shape[1], *size), np.uint8)
    for i, img in enumerate(x):
        im = Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0))
        arr = np.asarray(fit(im, size, cfg))
        out[i] = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return out


def load_npz(path: Path, cfg: PreprocessConfig) -> DatasetBundle:
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
    digest = _digest([a for s in splits.values() for a in (s.x, s.y)])
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
    if cfg.channels is not None and cfg.channels != channels:
        raise InputError(f"{path}: images have {channels} channels but preprocess.channels is {cfg.channels}")
    splits = {s: Split(_resize_arrays(sp.x, cfg, f"{path} x_{s}"), sp.y) for s, sp in splits.items()}
    mean_a, std_a = arrays.get("mean", np.zeros(channels)), arrays.get("std", np.ones(channels))
    validation.check_normalisation(mean_a, std_a, channels, str(path))
    own_mean = tuple(float(v) for v in mean_a.reshape(-1))
    own_std = tuple(float(v) for v in std_a.reshape(-1))
    mean, std = cfg.normalisation(channels, (own_mean, own_std))
    return DatasetBundle(
        name=path.stem, class_names=names, mean=mean, std=std, source=str(path), digest=digest,
        preprocess=cfg, **splits,
    )  # fmt: skip
