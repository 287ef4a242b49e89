"""The sidecar: a small JSON file next to each exported model saying how to feed it and read it.

A deployment needs more than the model file: the input layout and dtype, how raw pixels are
normalised, the quantisation of int8 inputs/outputs and the class labels. The sidecar of
``model-int8.tflite`` is ``model-int8.tflite.sidecar.json``::

    {"schema": 1, "edgekd_version": "0.1.0", "format": "tflite", "precision": "int8",
     "input": {"name": "serving_default_args_0", "shape": [1, 28, 28, 1], "layout": "NHWC",
               "dtype": "int8", "quantization": {"scale": 0.0286, "zero_point": 6}},
     "output": {"name": "...", "shape": [1, 10], "layout": null, "dtype": "int8",
                "quantization": {"scale": 0.098, "zero_point": -70}},
     "normalization": {"scale": 0.00392156862745098, "mean": [0.286], "std": [0.353]},
     "class_names": ["T-shirt/top", ...],
     "preprocessing": {"input_size": [28, 28], "resize": "center_crop", "interpolation": "bilinear",
                       "crop_fraction": 1.0, "channels": 1, "channel_order": "rgb", ...}}

A model input is ``(raw_pixel * scale - mean) / std``, then quantised with the input
quantisation when there is one. ``-1`` in a shape is a dynamic dimension. ``preprocessing`` (when
present) says how a raw image became those pixels — resize policy, interpolation, crop fraction,
channel order (mean/std are in that order) — exactly as the teacher was fed
(:class:`edgekd.config.preprocess.PreprocessConfig`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekd import __version__
from edgekd.core.atomic import atomic_write_text
from edgekd.core.errors import InputError

MAX_SIDECAR_BYTES = 1 << 20  # a sidecar is a few KB: class names, normalisation, shapes

SIDECAR_SUFFIX = ".sidecar.json"
SCHEMA_VERSION = 1
PIXEL_SCALE = 1.0 / 255.0


@dataclass(frozen=True)
class QuantParams:
    """Affine int8/uint8 quantisation of a tensor: ``real = (q - zero_point) * scale``."""

    scale: float
    zero_point: int

    def quantize(self, x: np.ndarray, dtype: str) -> np.ndarray:
        """Real values to integers of ``dtype`` (``int8`` or ``uint8``), rounded and clipped."""
        info = np.iinfo(np.dtype(dtype))
        q = np.round(x / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(dtype)

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """Integers back to float32 real values."""
        return ((q.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the deployed runtime sees it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str | None = None
    quantization: QuantParams | None = None


@dataclass(frozen=True)
class Sidecar:
    """Everything needed to feed an exported model and read its output."""

    format: str
    precision: str
    input: TensorSpec
    output: TensorSpec
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...]
    scale: float = PIXEL_SCALE
    edgekd_version: str = __version__
    preprocessing: dict | None = None

    def to_json(self) -> dict:
        """The JSON-able form written to disk."""
        return {
            "schema": SCHEMA_VERSION,
            "edgekd_version": self.edgekd_version,
            "format": self.format,
            "precision": self.precision,
            "input": _spec_json(self.input),
            "output": _spec_json(self.output),
            "normalization": {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)},
            "class_names": list(self.class_names),
            **({"preprocessing": dict(self.preprocessing)} if self.preprocessing is not None else {}),
        }

    @classmethod
    def from_json(cls, data: dict) -> Sidecar:
        """Inverse of :meth:`to_json` (KeyError/TypeError/ValueError on malformed data)."""
        norm = data["normalization"]
        return cls(
            format=str(data["format"]),
            precision=str(data["precision"]),
            input=_spec_from_json(data["input"]),
            output=_spec_from_json(data["output"]),
            mean=tuple(float(v) for v in norm["mean"]),
            std=tuple(float(v) for v in norm["std"]),
            class_names=tuple(str(c) for c in data["class_names"]),
            scale=float(norm["scale"]),
            edgekd_version=str(data["edgekd_version"]),
            preprocessing=dict(data["preprocessing"]) if data.get("preprocessing") is not None else None,
        )


def _spec_json(spec: TensorSpec) -> dict:
    d = asdict(spec)
    d["shape"] = list(spec.shape)
    return d


def _spec_from_json(d: dict) -> TensorSpec:
    q = d.get("quantization")
    return TensorSpec(
        name=str(d["name"]),
        shape=tuple(int(v) for v in d["shape"]),
        dtype=str(d["dtype"]),
        layout=d.get("layout"),
        quantization=QuantParams(float(q["scale"]), int(q["zero_point"])) if q else None,
    )


def sidecar_path(artifact_path: Path) -> Path:
    """``<artifact>.sidecar.json`` beside the artifact file (or folder)."""
    p = Path(artifact_path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def write_sidecar(artifact_path: Path, sidecar: Sidecar) -> Path:
    """Write the sidecar of ``artifact_path`` atomically and return its path."""
    path = sidecar_path(artifact_path)
    atomic_write_text(path, json.dumps(sidecar.to_json(), indent=2) + "\n")
    return path


def read_sidecar(artifact_path: Path) -> Sidecar:
    """Read the sidecar of ``artifact_path``.

    Raises:
        InputError: the sidecar is missing or malformed.
    """
    path = sidecar_path(artifact_path)
    if path.is_file() and path.stat().st_size > MAX_SIDECAR_BYTES:
        raise InputError(f"{path} is over {MAX_SIDECAR_BYTES // 1024} KiB, not an edgekd sidecar; re-export the model")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA_VERSION}")
        return Sidecar.from_json(data)
    except FileNotFoundError:
        raise InputError(f"{path} is missing; re-export the model to write its sidecar") from None
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        detail = " ".join(str(exc).split())[:120]
        raise InputError(f"{path} is not a valid edgekd sidecar ({detail}); re-export the model") from None
