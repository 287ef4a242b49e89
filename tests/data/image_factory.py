"""Generated image folders of mixed sizes, formats and Pillow modes (used by data and end-to-end tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# (suffix, mode written) — every decode path of edgekd.data.images gets exercised
KINDS = [
    (".jpg", "RGB"), (".png", "L"), (".png", "P"), (".jpg", "CMYK"), (".png", "I;16"),
    (".webp", "RGBA"), (".bmp", "RGB"), (".jpeg", "RGB-exif-rotated"), (".png", "RGBA"),
]  # fmt: skip


def write_image(path: Path, kind: str, size: tuple[int, int], colour: np.ndarray, rng: np.random.Generator) -> None:
    """One image of ``size`` (W, H) whose mean colour depends on ``colour`` (so classes are learnable)."""
    w, h = size
    base = np.clip(colour[None, None, :] + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    rgb = Image.fromarray(base, "RGB")
    if kind == "L":
        rgb.convert("L").save(path)
    elif kind == "P":
        rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(path)
    elif kind == "CMYK":
        rgb.convert("CMYK").save(path, quality=95)
    elif kind == "I;16":
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(grey.astype(np.uint16)).save(path)
    elif kind == "RGBA":
        alpha = np.full((h, w, 1), 255, np.uint8)
        Image.fromarray(np.concatenate([base, alpha], axis=2), "RGBA").save(path)
    elif kind == "RGB-exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90° on display: stored as (H, W) swapped
        rgb.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    else:
        rgb.save(path, quality=95) if path.suffix in (".jpg", ".jpeg") else rgb.save(path)


def write_folder(
    root: Path,
    classes: int = 3,
    per_class: int = 12,
    splits: tuple[str, ...] = ("train",),
    unlabeled: int = 0,
    seed: int = 0,
) -> Path:
    """``root/<split>/c<k>/`` with mixed kinds and sizes (24–48 px); ``train/unlabeled/`` when asked."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(30, 225, (classes, 3)).astype(np.float64)
    n = 0
    for split in splits:
        for c in range(classes):
            d = root / split / f"c{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                suffix, kind = KINDS[n % len(KINDS)]
                size = (int(rng.integers(24, 49)), int(rng.integers(24, 49)))
                write_image(d / f"{i:03d}{suffix}", kind, size, colours[c], rng)
                n += 1
    if unlabeled:
        d = root / "train" / "unlabeled"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(unlabeled):
            suffix, kind = KINDS[i % len(KINDS)]
            write_image(d / f"u{i:03d}{suffix}", kind, (32, 40), colours[i % classes], rng)
    return root
