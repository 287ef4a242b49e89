"""Checks at the door: every array, image, weight tensor and output folder a user hands edgekd.

Each check raises one :class:`InputError` (exit 2) saying what is wrong, where, and what to do,
before any stage runs. The rules:

* images: numeric, non-empty, finite; ``uint8`` as is; other integer types only when every value
  lies in [0, 255] (then stored as ``uint8``); ``uint16`` is refused (scale it yourself, e.g.
  ``x >> 8``, rather than have edgekd guess the bit depth); floats are used as given (the bundle's
  mean/std normalise them) and must lie within ``[-MAX_ABS_FLOAT_PIXEL, MAX_ABS_FLOAT_PIXEL]``;
  1 or 3 channels; one shape per split and across splits; not constant (std > 0);
* labels: integral (integer dtype, or floats with whole values), one per image, in ``[0, classes)``;
* class count: ``len(class_names)`` when given, else largest label + 1 (and the message says so);
* image files: decodable (a corrupt, truncated or zero-byte file is named), at most ``MAX_PIXELS``;
* weights: every parameter and buffer finite;
* output folder: not under a regular file, and writable (a probe file is written and removed in the
  nearest existing folder; nothing is created).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgekd.core.errors import InputError

MAX_ABS_FLOAT_PIXEL = 1000.0
MAX_NPZ_BYTES = 16 << 30  # arrays of an .npz once decompressed; more than this machine-sized limit is refused
MAX_PIXELS = 4096 * 4096
_CHUNK = 1 << 22  # elements per finiteness check, so a check never doubles memory


def _kind(a: np.ndarray) -> str:
    return a.dtype.kind  # b bool, i int, u uint, f float, c complex, O object, U/S str, V void, M/m time


def _all_finite(x: np.ndarray) -> bool:
    flat = x.reshape(-1)
    return all(np.isfinite(flat[i : i + _CHUNK]).all() for i in range(0, flat.size, _CHUNK))


def check_images(x: np.ndarray, where: str) -> np.ndarray:
    """Validated images of one split (any layout); returns ``uint8`` or ``float32`` data.

    Raises:
        InputError: empty, non-numeric, non-finite, out-of-range or uint16 pixels.
    """
    if x.size == 0 or x.ndim == 0 or x.shape[0] == 0:
        raise InputError(f"{where}: the split has no images; every split needs at least one")
    kind = _kind(x)
    if kind not in "iuf":
        raise InputError(
            f"{where}: pixels have dtype {x.dtype} (not numbers); store uint8 in [0, 255] or float32 pixels"
        )
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.uint16:
        raise InputError(
            f"{where}: pixels are uint16 and edgekd will not guess their bit depth; convert to uint8 "
            "(e.g. x >> 8 for 16-bit data) or to float32"
        )
    if kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            raise InputError(
                f"{where}: integer pixels span [{lo}, {hi}], outside [0, 255]; store uint8 or float32 pixels"
            )
        return x.astype(np.uint8)
    if not _all_finite(x):
        raise InputError(f"{where}: pixels include NaN or infinity; clean or drop those images")
    lo, hi = float(x.min()), float(x.max())
    if max(abs(lo), abs(hi)) > MAX_ABS_FLOAT_PIXEL:
        raise InputError(
            f"{where}: float pixels span [{lo:.4g}, {hi:.4g}], beyond ±{MAX_ABS_FLOAT_PIXEL:g}; "
            "scale them to [0, 1] or [0, 255]"
        )
    return x.astype(np.float32, copy=False)


def check_labels(y: np.ndarray, n_images: int, where: str) -> np.ndarray:
    """Labels of one split as int64 (N,); range is checked later by :func:`check_label_range`.

    Raises:
        InputError: non-numeric, fractional, non-finite labels or a count that differs from the images.
    """
    kind = _kind(y)
    if kind not in "iuf":
        raise InputError(f"{where}: labels have dtype {y.dtype}; store integer class indices")
    if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1) or y.ndim == 0:
        raise InputError(f"{where}: labels have shape {y.shape}; store one integer class index per image (N,)")
    y = y.reshape(-1)
    if y.shape[0] != n_images:
        raise InputError(f"{where}: {n_images} images but {y.shape[0]} labels; store one label per image")
    if kind == "f" and (not _all_finite(y) or not np.all(y == np.round(y))):
        raise InputError(f"{where}: labels are not whole numbers; store integer class indices")
    if kind == "u" and y.dtype.itemsize >= 8 and y.size and int(y.max()) > np.iinfo(np.int64).max:
        raise InputError(f"{where}: labels are too large for class indices")
    return y.astype(np.int64)


def check_label_range(y: np.ndarray, num_classes: int, where: str, counted: bool) -> None:
    """Every label in ``[0, num_classes)``; ``counted``: the count came from the largest label."""
    if y.size == 0:
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        basis = "counted from the largest label" if counted else "from class_names"
        raise InputError(
            f"{where}: labels span [{lo}, {hi}] but the dataset has {num_classes} classes ({basis}); "
            f"labels must be class indices in [0, {num_classes})"
        )


def check_split_shapes(shapes: Mapping[str, tuple[int, ...]], where: str) -> None:
    """One (C, H, W) across splits, with 1 or 3 channels."""
    distinct = sorted(set(shapes.values()))
    if len(distinct) > 1:
        listing = ", ".join(f"{s} {shape}" for s, shape in shapes.items())
        raise InputError(f"{where}: image shapes differ between splits ({listing}); resize to one size")
    c = distinct[0][0] if distinct else 0
    if c not in (1, 3):
        raise InputError(f"{where}: images have {c} channels; edgekd takes 1 (grey) or 3 (RGB)")


def check_not_constant(x: np.ndarray, where: str) -> None:
    """A split whose pixels are all equal carries no signal (std = 0)."""
    if x.size and x.reshape(-1)[0] == x.min() == x.max():
        raise InputError(f"{where}: every pixel has the same value (std = 0); pass real images")


def check_normalisation(mean: np.ndarray, std: np.ndarray, channels: int, where: str) -> None:
    """``mean``/``std`` arrays of an .npz: numeric, finite, one value or one per channel, std > 0."""
    for name, a in (("mean", mean), ("std", std)):
        if _kind(a) not in "iuf" or a.size not in (1, channels) or not _all_finite(a.astype(np.float64)):
            raise InputError(
                f"{where}: '{name}' must be 1 or {channels} finite numbers (got dtype {a.dtype}, {a.size} values)"
            )
    if np.any(std.astype(np.float64) <= 0):
        raise InputError(f"{where}: 'std' must be > 0 for every channel; fix the stored normalisation")


def check_class_names(names: np.ndarray, where: str) -> tuple[str, ...]:
    """``class_names`` of an .npz: a 1-D array of distinct, short strings (or numbers)."""
    if names.ndim != 1 or names.size == 0 or _kind(names) not in "USiu":
        raise InputError(f"{where}: 'class_names' must be a non-empty 1-D array of strings")
    out = tuple(str(n) for n in names)
    if len(set(out)) != len(out) or any(len(n) > 200 for n in out):
        raise InputError(f"{where}: 'class_names' must be distinct names of at most 200 characters")
    return out


def check_npz_size(path: Path) -> None:
    """An .npz whose arrays would decompress past ``MAX_NPZ_BYTES`` (a zip bomb, or the wrong file) is refused
    before anything is read. Files that are not zip archives are left to the loader's own error."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            total = sum(info.file_size for info in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    if total > MAX_NPZ_BYTES:
        raise InputError(
            f"{path}: arrays decompress to {total / 2**30:.1f} GiB, over the {MAX_NPZ_BYTES / 2**30:.0f} GiB limit; "
            "pass a smaller dataset or an image folder"
        )


def check_image_file(path: Path) -> np.ndarray:
    """Decode one image file to ``uint8`` (H, W) grey or (H, W, 3) RGB.

    Raises:
        InputError: naming ``path`` when the file is empty, corrupt, truncated, too large or not 8-bit.
    """
    from PIL import Image

    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise InputError(
                    f"{path}: image is {im.width}x{im.height}, over {MAX_PIXELS:,} pixels; resize it first"
                )
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                raise InputError(f"{path}: image mode {im.mode} is not 8-bit; save it as 8-bit grey or RGB")
            im.load()
            arr = np.asarray(im.convert("L") if im.mode in ("L", "1", "P") else im.convert("RGB"))
    except InputError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        detail = " ".join(str(exc).split())[:100] or type(exc).__name__
        raise InputError(f"{path}: cannot decode image ({detail}); replace or remove the file") from None
    return arr


def check_finite_weights(model: object, where: str) -> None:
    """Every parameter and buffer of a torch module is finite."""
    import torch

    for name, t in [*model.named_parameters(), *model.named_buffers()]:  # type: ignore[attr-defined]
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputError(f"{where}: tensor '{name[:80]}' holds NaN or infinity; pass trained, finite weights")


def check_output_dir(path: Path) -> None:
    """``path`` can become (or is) a writable folder; nothing is left behind by the check.

    Raises:
        InputError: ``path`` or a parent is a regular file, or the nearest existing folder is not writable.
    """
    path = Path(path)
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            raise InputError(f"output path {path}: {existing} is a broken link; choose another --out")
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == path else f"is under {existing}, which is"
        raise InputError(f"output path {path} {where} a file, not a folder; choose another --out")
    try:
        fd, probe = tempfile.mkstemp(prefix=".edgekd-probe-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise InputError(f"output path {path}: cannot write in {existing} ({reason}); pick a writable --out") from None
