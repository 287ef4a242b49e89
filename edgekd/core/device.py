"""Which torch device runs teacher inference, distillation and validation: ``auto | cpu | cuda[:N]``.

``cpu`` is the default and the tested path. ``auto`` picks CUDA when torch sees a device, else the CPU.
On CUDA the trainer uses mixed precision (bf16 where supported, else fp16 with a gradient scaler) and
channels-last memory format for 4-D inputs; on the CPU it changes nothing.

Example:
    >>> resolve_device("auto", cuda_available=lambda: False)
    device(type='cpu')
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch

from edgekd.core.errors import ConfigError

_SPEC = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(
    spec: str | None,
    cuda_available: Callable[[], bool] = torch.cuda.is_available,
    device_count: Callable[[], int] = torch.cuda.device_count,
) -> torch.device:
    """The torch device for ``spec`` (None = ``cpu``).

    Raises:
        ConfigError: an unknown spec, or CUDA asked for where torch sees none (or not that index).
    """
    spec = (spec or "cpu").strip().lower()
    if not _SPEC.match(spec):
        raise ConfigError(f"device '{spec}' is not one of auto, cpu, cuda, cuda:N")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto":
        return torch.device("cuda") if cuda_available() else torch.device("cpu")
    if not cuda_available():
        raise ConfigError(f"device '{spec}' asked for but torch sees no CUDA device (a CPU wheel?); use --device cpu")
    index = int(spec.split(":")[1]) if ":" in spec else 0
    if index >= device_count():
        raise ConfigError(f"device '{spec}' asked for but torch sees {device_count()} CUDA device(s)")
    return torch.device("cuda", index)


def autocast(device: torch.device) -> AbstractContextManager:
    """Mixed precision on CUDA (bf16 when supported, else fp16); nothing on the CPU."""
    if device.type != "cuda":
        return nullcontext()
    return torch.autocast("cuda", dtype=amp_dtype(device))


def amp_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def grad_scaler(device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 autocast on CUDA; None elsewhere (bf16 and fp32 need none)."""
    if device.type == "cuda" and amp_dtype(device) == torch.float16:
        return torch.amp.GradScaler("cuda")
    return None


def place(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move a module to ``device``; channels-last on CUDA (faster convolutions with tensor cores)."""
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on ``device`` (non-blocking from pinned memory; channels-last for images on CUDA)."""
    if device.type == "cpu":
        return x
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x
