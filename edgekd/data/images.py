"""Lazily decoded image files: any size and Pillow mode, brought to one declared input size on read.

:class:`LazyImages` stands where an in-memory ``(N, C, H, W)`` uint8 array stood: ``len``, ``shape``,
``dtype`` and indexing (``x[i]``, ``x[a:b]``, ``x[index_array]`` decode those images and return uint8
arrays), so code written for arrays keeps working while only the images asked for are in memory.
``take(idx)`` gives a lazy view (no decoding), which is what subsets use.

Decoding: EXIF orientation applied; palette, CMYK, alpha and 16-bit images converted (16-bit grey is
scaled to 8 bits, not clipped); then to 1 (L) or 3 (RGB) channels; then the geometry of
:class:`~edgekd.config.preprocess.PreprocessConfig` (centre crop, letterbox or stretch).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_EXIF_ORIENTATION = 0x0112


def _filter(name: str) -> int:
    from PIL import Image

    return {
        "nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
        "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX,
    }[name]  # fmt: skip


def _bad_file(path: Path, exc: Exception) -> InputError:
    detail = " ".join(str(exc).split())[:100] or type(exc).__name__
    return InputError(f"{path}: cannot decode image ({detail}); replace or remove the file")


def header(path: Path) -> tuple[tuple[int, int], str]:
    """((H, W) after EXIF rotation, Pillow mode) read from the file header, without decoding pixels."""
    from PIL import Image, UnidentifiedImageError

    from edgekd.data.validation import MAX_PIXELS

    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise InputError(f"{path}: image is {w}x{h}, over {MAX_PIXELS:,} pixels; resize it first")
            rotated = im.getexif().get(_EXIF_ORIENTATION) in _ROTATED
            return ((w, h) if rotated else (h, w)), im.mode
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _bad_file(path, exc) from None


def _to_mode(im, channels: int):  # PIL.Image -> PIL.Image in L or RGB
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):  # 16-bit grey: scale, do not clip
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(arr / 257.0, 0, 255).round().astype(np.uint8), "L")
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L")
    elif im.mode in ("P", "PA") or (im.mode not in ("L", "RGB") and channels == 3):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode in ("PA", "LA", "RGBA") else "RGB")
    if im.mode in ("RGBA", "LA"):  # composite transparent pixels on white, as viewers show them
        back = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(back, im.convert("RGBA"))
    return im.convert("L" if channels == 1 else "RGB")


def fit(im, size: tuple[int, int], cfg: PreprocessConfig):  # PIL.Image -> PIL.Image of (H, W) = size
    """Bring an image to ``size`` by the declared resize policy."""
    from PIL import Image

    th, tw = size
    w, h = im.size
    if (h, w) == (th, tw) and (cfg.resize != "center_crop" or cfg.effective_crop_fraction() == 1.0):
        return im
    resample = _filter(cfg.interpolation)
    if cfg.resize == "stretch":
        return im.resize((tw, th), resample)
    if cfg.resize == "letterbox":
        s = min(th / h, tw / w)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        fill = cfg.pad_value if im.mode == "L" else (cfg.pad_value,) * 3
        canvas = Image.new(im.mode, (tw, th), fill)
        canvas.paste(im.resize((nw, nh), resample), ((tw - nw) // 2, (th - nh) // 2))
        return canvas
    frac = cfg.effective_crop_fraction()
    s = max(th / frac / h, tw / frac / w)
    nw, nh = max(tw, round(w * s)), max(th, round(h * s))
    im = im.resize((nw, nh), resample)
    left, top = (nw - tw) // 2, (nh - th) // 2
    return im.crop((left, top, left + tw, top + th))


def decode(path: Path, size: tuple[int, int], channels: int, cfg: PreprocessConfig) -> np.ndarray:
    """One image file as a (C, H, W) uint8 array of ``size``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as raw:
            if raw.format == "JPEG" and raw.getexif().get(_EXIF_ORIENTATION) not in _ROTATED:
                w, h = raw.size  # decode at a reduced scale when the target is much smaller (fast for big photos)
                if cfg.resize == "letterbox":
                    s = min(size[0] / h, size[1] / w)
                else:
                    s = max(size[0] / h, size[1] / w) / cfg.effective_crop_fraction()
                raw.draft("L" if channels == 1 else "RGB", (max(1, int(w * s)), max(1, int(h * s))))
            im = ImageOps.exif_transpose(raw)
            im = fit(_to_mode(im, channels), size, cfg)
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _bad_file(path, exc) from None
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


class LazyImages:
    """Image files read on demand as uint8 ``(N, C, H, W)``; see the module docstring."""

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: Sequence[Path], size: tuple[int, int], channels: int, cfg: PreprocessConfig) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.size = (int(size[0]), int(size[1]))
        self.channels = int(channels)
        self.cfg = cfg

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), self.channels, *self.size)

    def decode(self, i: int) -> np.ndarray:
        return decode(self.paths[i], self.size, self.channels, self.cfg)

    def take(self, idx: Sequence[int] | np.ndarray) -> LazyImages:
        """A lazy view of the images ``idx`` (nothing decoded)."""
        return LazyImages([self.paths[int(i)] for i in np.asarray(idx).reshape(-1)], self.size, self.channels,
                          self.cfg)  # fmt: skip

    def __getitem__(self, key: int | slice | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.decode(int(key) % len(self))
        idx = range(len(self))[key] if isinstance(key, slice) else np.asarray(key).reshape(-1)
        out = np.empty((len(idx), self.channels, *self.size), dtype=np.uint8)
        for row, i in enumerate(idx):
            out[row] = self.decode(int(i))
        return out

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        if len(self) > 2000:
            log.warning("decoding all %d images of a lazy split into memory", len(self))
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


def take_rows(x: np.ndarray | LazyImages, idx: np.ndarray) -> np.ndarray | LazyImages:
    """Rows ``idx`` of an image array, or a lazy view of them."""
    return x.take(idx) if isinstance(x, LazyImages) else x[idx]
