"""A corruption suite generated from the test split: how much accuracy each model loses to everyday damage.

Corruptions act on the *raw* images (uint8 0-255, or float in the split's own value range) before
normalisation, as a camera or a preprocessing bug would: ``gaussian_noise``, ``blur``, ``brightness``,
``contrast`` and ``shift_rotate`` (a small translation plus rotation), each at severities 1-3. Every
corruption is deterministic: the same images, name, severity and seed give the same output.

Example:
    >>> import numpy as np
    >>> x = np.full((2, 1, 8, 8), 100, dtype=np.uint8)
    >>> corrupt(x, "brightness", 2).dtype, int(corrupt(x, "brightness", 2)[0, 0, 0, 0])
    (dtype('uint8'), 126)
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from edgekd.core.errors import InputError
from edgekd.validate import rounded

SEVERITIES: tuple[int, ...] = (1, 2, 3)
#: Per corruption, its parameter at severities 1, 2, 3 (fractions are of the value range).
LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.03, 0.06, 0.12),  # noise std
    "blur": (0.5, 0.9, 1.4),  # gaussian sigma, pixels
    "brightness": (0.05, 0.1, 0.2),  # added offset
    "contrast": (0.8, 0.6, 0.4),  # kept fraction of the deviation from the image mean
    "shift_rotate": (1.0, 2.0, 3.0),  # pixels of shift; the rotation is 5 degrees per pixel
}
CORRUPTIONS: tuple[str, ...] = tuple(LEVELS)


def _value_range(x: np.ndarray) -> tuple[float, float]:
    if x.dtype == np.uint8:
        return 0.0, 255.0
    lo, hi = float(np.min(x)), float(np.max(x))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _noise(x: np.ndarray, level: float, span: float, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, level * span, size=x.shape)


def _blur(x: np.ndarray, level: float, span: float, rng: np.random.Generator) -> np.ndarray:
    return ndimage.gaussian_filter(x, sigma=(0, 0, level, level), mode="nearest")


def _brightness(x: np.ndarray, level: float, span: float, rng: np.random.Generator) -> np.ndarray:
    return x + level * span


def _contrast(x: np.ndarray, level: float, span: float, rng: np.random.Generator) -> np.ndarray:
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return mean + (x - mean) * level


def _shift_rotate(x: np.ndarray, level: float, span: float, rng: np.random.Generator) -> np.ndarray:
    out = np.empty_like(x)
    h, w = x.shape[2:]
    centre = np.array([(h - 1) / 2.0, (w - 1) / 2.0])
    background = float(x.min())
    for i in range(len(x)):
        angle = math.radians(5.0 * level) * rng.choice((-1.0, 1.0))
        direction = rng.uniform(0.0, 2.0 * math.pi)
        shift = level * np.array([math.sin(direction), math.cos(direction)])
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        # output pixel o samples input at rot @ (o - centre - shift) + centre
        offset = centre - rot @ (centre + shift)
        for c in range(x.shape[1]):
            out[i, c] = ndimage.affine_transform(x[i, c], rot, offset=offset, order=1, cval=background)
    return out


_FUNCS: dict[str, Callable[[np.ndarray, float, float, np.random.Generator], np.ndarray]] = {
    "gaussian_noise": _noise,
    "blur": _blur,
    "brightness": _brightness,
    "contrast": _contrast,
    "shift_rotate": _shift_rotate,
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` (N, C, H, W) with corruption ``name`` at ``severity`` (1-3), same dtype and range.

    Raises:
        InputError: unknown corruption, severity outside 1-3, or not a 4-D image batch.
    """
    if name not in _FUNCS:
        raise InputError(f"unknown corruption '{name}'; choose from {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise InputError(f"corruption severity must be one of {SEVERITIES}, got {severity}")
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[0] == 0:
        raise InputError(f"corruptions need a non-empty (N, C, H, W) image batch, got shape {x.shape}")
    lo, hi = _value_range(x)
    rng = np.random.default_rng([seed, severity, zlib.crc32(name.encode())])
    out = _FUNCS[name](x.astype(np.float64), LEVELS[name][severity - 1], hi - lo, rng)
    out = np.clip(out, lo, hi)
    if x.dtype == np.uint8:
        return np.round(out).astype(np.uint8)
    return out.astype(x.dtype)


def corruption_suite(
    images: np.ndarray, names: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = SEVERITIES, seed: int = 0
) -> dict[str, np.ndarray]:
    """Every ``name`` at every ``severity``, keyed ``"<name>@<severity>"``."""
    return {f"{n}@{s}": corrupt(images, n, s, seed) for n in names for s in severities}


@dataclass(frozen=True)
class CorruptionReport:
    """Clean and corrupted accuracy of teacher and student.

    Attributes:
        clean: ``{"teacher": acc, "student": acc}`` on the same (clean) images, 0-1.
        rows: one per corruption and severity: accuracies 0-1 and drops vs clean, points.
        samples: images per variant.
        seed: the suite's seed.
    """

    clean: dict[str, float]
    rows: list[dict]
    samples: int
    seed: int

    def mean_drops(self) -> dict[str, dict[str, float]]:
        """Per corruption, the drop in points averaged over severities, for teacher and student."""
        out: dict[str, dict[str, float]] = {}
        for name in dict.fromkeys(r["corruption"] for r in self.rows):
            rows = [r for r in self.rows if r["corruption"] == name]
            out[name] = {who: float(np.mean([r[f"{who}_drop_points"] for r in rows])) for who in ("teacher", "student")}
        return out

    def to_json(self) -> dict:
        """JSON-able dict."""
        mean = self.mean_drops()
        worst = max(mean, key=lambda n: mean[n]["student"] - mean[n]["teacher"]) if mean else None
        return {
            "samples": self.samples,
            "seed": self.seed,
            "clean": {k: rounded(v) for k, v in self.clean.items()},
            "rows": [{k: rounded(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in self.rows],
            "mean_drop_points": {n: {k: rounded(v, 2) for k, v in d.items()} for n, d in mean.items()},
            "worst_for_student": worst,
        }


def corruption_report(
    labels: np.ndarray,
    clean: dict[str, np.ndarray],
    corrupted: dict[str, dict[str, np.ndarray]],
    seed: int = 0,
) -> CorruptionReport:
    """Accuracy drops per corruption from logits.

    Args:
        labels: true classes of the (clean) images, shape ``(n,)``.
        clean: ``{"teacher": logits, "student": logits}`` on the clean images.
        corrupted: ``{"teacher": {"<name>@<severity>": logits}, "student": {...}}``, the same keys for both.
        seed: the seed the suite was generated with (recorded).
    """
    lab = np.asarray(labels)

    def acc(logits: np.ndarray) -> float:
        if len(logits) != len(lab):
            raise InputError(f"corruption logits have {len(logits)} rows for {len(lab)} labels")
        return float(np.mean(np.asarray(logits).argmax(axis=1) == lab))

    base = {who: acc(clean[who]) for who in ("teacher", "student")}
    if set(corrupted["teacher"]) != set(corrupted["student"]):
        raise InputError("teacher and student corruption logits cover different variants")
    rows = []
    for key in corrupted["student"]:
        name, _, severity = key.partition("@")
        t_acc, s_acc = acc(corrupted["teacher"][key]), acc(corrupted["student"][key])
        rows.append({
            "corruption": name, "severity": int(severity), "teacher_accuracy": t_acc, "student_accuracy": s_acc,
            "teacher_drop_points": 100.0 * (base["teacher"] - t_acc),
            "student_drop_points": 100.0 * (base["student"] - s_acc),
        })  # fmt: skip
    return CorruptionReport(base, rows, len(lab), seed)
