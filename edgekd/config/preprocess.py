"""Preprocessing as declared data: how raw images become the tensor the teacher (and the student) read.

A model input is built in this order:

1. decode (any Pillow mode; EXIF orientation applied), convert to ``channels`` (1 = L, 3 = RGB);
2. geometry to ``input_size`` (H, W) by ``resize``:
   ``center_crop`` — scale so the image covers ``input_size / crop_fraction``, then crop the centre;
   ``letterbox`` — scale so the whole image fits, pad the rest with ``pad_value``;
   ``stretch`` — scale each side independently;
   with the ``interpolation`` filter;
3. ``pixel / 255``, reorder to ``channel_order``, then ``(x - mean) / std`` per channel
   (``mean``/``std`` are in ``channel_order``).

Presets fill ``mean``/``std`` (and for ``imagenet`` the 0.875 crop fraction); fields given explicitly win:

* ``imagenet``: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225), crop fraction 0.875;
* ``tf``: inputs in [-1, 1] (mean 0.5, std 0.5);
* ``none``: inputs in [0, 1] (mean 0, std 1).

With no preset and no mean/std, an ``.npz`` keeps the mean/std it carries and an image folder uses 0.5/0.5
(inputs in [-1, 1]) — a warning says so, since a pretrained teacher almost always expects something declared.

Example (build YAML)::

    preprocess:
      preset: imagenet
      input_size: 224
      interpolation: bicubic
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgekd.core.errors import ConfigError

PRESETS: dict[str, dict[str, object]] = {
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "crop_fraction": 0.875},
    "tf": {"mean": (0.5,), "std": (0.5,)},
    "none": {"mean": (0.0,), "std": (1.0,)},
}


class PreprocessConfig(BaseModel):
    """How raw images are turned into model input (see the module docstring for the order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["imagenet", "tf", "none"] | None = Field(default=None, description="fills mean/std (see docs)")
    input_size: tuple[int, int] | None = Field(
        default=None, description="model input (H, W) or one int for a square; None = the images' own size"
    )
    resize: Literal["center_crop", "letterbox", "stretch"] = "center_crop"
    crop_fraction: float | None = Field(
        default=None, gt=0, le=1, description="center_crop: crop this fraction of the resized side (None = preset or 1)"
    )
    interpolation: Literal["nearest", "bilinear", "bicubic", "lanczos", "box"] = "bilinear"
    pad_value: int = Field(default=0, ge=0, le=255, description="letterbox padding, in raw pixel units")
    channels: Literal[1, 3] | None = Field(default=None, description="None = 3 unless every image is grey")
    channel_order: Literal["rgb", "bgr"] = "rgb"
    mean: tuple[float, ...] | None = Field(default=None, description="per channel, on pixel/255; None = preset")
    std: tuple[float, ...] | None = Field(default=None, description="per channel, on pixel/255; None = preset")

    @field_validator("input_size", mode="before")
    @classmethod
    def _square(cls, value: object) -> object:
        return (value, value) if isinstance(value, int) else value

    @field_validator("input_size")
    @classmethod
    def _positive(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and min(value) <= 0:
            raise ValueError(f"input_size must be positive (got {value})")
        return value

    @field_validator("std")
    @classmethod
    def _std_positive(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if value is not None and not all(v > 0 for v in value):
            raise ValueError(f"std must be > 0 per channel (got {value})")
        return value

    @model_validator(mode="after")
    def _lengths(self) -> PreprocessConfig:
        for name in ("mean", "std"):
            v = getattr(self, name)
            if v is not None and len(v) not in (1, 3):
                raise ValueError(f"{name} needs 1 or 3 values (got {len(v)})")
        return self

    @property
    def declared(self) -> bool:
        """Whether normalisation was declared (a preset or mean/std), rather than left to the dataset."""
        return self.preset is not None or self.mean is not None or self.std is not None

    def effective_crop_fraction(self) -> float:
        if self.crop_fraction is not None:
            return self.crop_fraction
        return float(PRESETS.get(self.preset or "", {}).get("crop_fraction", 1.0))  # type: ignore[arg-type]

    def normalisation(
        self, channels: int, fallback: tuple[tuple[float, ...], tuple[float, ...]]
    ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std), one value per channel: explicit fields, else the preset, else ``fallback``."""
        preset = PRESETS.get(self.preset or "", {})
        mean = self.mean if self.mean is not None else preset.get("mean", fallback[0])
        std = self.std if self.std is not None else preset.get("std", fallback[1])
        return _per_channel(tuple(mean), channels, "mean"), _per_channel(tuple(std), channels, "std")  # type: ignore[arg-type]


def _per_channel(values: tuple[float, ...], channels: int, name: str) -> tuple[float, ...]:
    if len(values) == channels:
        return tuple(float(v) for v in values)
    if len(values) == 1:
        return (float(values[0]),) * channels
    if channels == 1:  # a 3-channel preset on grey images: the mean of the channel statistics
        return (float(sum(values) / len(values)),)
    raise ConfigError(
        f"preprocess {name} has {len(values)} values but the images have {channels} channels; "
        f"declare 1 or {channels} values"
    )
