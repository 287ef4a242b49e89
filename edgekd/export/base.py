"""The exporter contract shared by every export format, plus small helpers the exporters share.

Example:
    >>> exporter = get_exporter("onnx")  # doctest: +SKIP
    >>> artifact = exporter.export(model, example, "int8", out_dir, info, calibration=calib)  # doctest: +SKIP
    >>> run = exporter.load_runtime(artifact, threads=1)  # doctest: +SKIP
    >>> logits = run(x)  # (N, num_classes) float32  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from edgekd.core.artifact import Artifact
from edgekd.core.errors import ConfigError, InputError, ToolchainError
from edgekd.core.host import VNNI_FLAGS, cpu_flags
from edgekd.core.registry import EXPORTERS
from edgekd.data.datasets import DatasetBundle
from edgekd.export.sidecar import Sidecar, TensorSpec, sidecar_path, write_sidecar

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8")
RuntimeFn = Callable[[np.ndarray], np.ndarray]
"""A loaded model: normalised float32 NCHW batch in, float32 logits out."""

# Formats to suggest when one fails to convert an operator, most portable first.
_ALTERNATIVES = ("onnx", "openvino", "tflite")
_OP_PATTERNS = (
    re.compile(r"(aten::[A-Za-z0-9_]+)"),
    re.compile(r"(aten\.[A-Za-z0-9_]+)"),
    re.compile(r"operator '([^']+)'"),
)


@dataclass(frozen=True)
class SidecarInfo:
    """What the exporter cannot learn from the model: labels, normalisation and input shape.

    Attributes:
        class_names: one label per output logit.
        mean: per-channel mean subtracted after scaling raw pixels to [0, 1].
        std: per-channel standard deviation divided by after subtracting ``mean``.
        input_shape: (C, H, W) of one sample.
    """

    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    preprocess: dict | None = None
    """The declared preprocessing (resize, interpolation, channel order...), written into every sidecar."""

    @classmethod
    def from_bundle(cls, bundle: DatasetBundle) -> SidecarInfo:
        """Build from a dataset bundle."""
        return cls(
            class_names=tuple(bundle.class_names),
            mean=tuple(float(v) for v in bundle.mean),
            std=tuple(float(v) for v in bundle.std),
            input_shape=bundle.input_shape,
            preprocess=bundle.describe()["preprocess"],
        )


@dataclass(frozen=True)
class QuantizedModel:
    """A model already quantised by training (QAT), ready for one format's ``export_quantized``.

    Attributes:
        format: the exporter that takes it (``tflite``, ``openvino``, ``onnx``).
        module: the quantised torch model (a converted PT2E graph, or an NNCF-quantised model).
        method: how it was quantised (``qat-pt2e``, ``qat-nncf``); recorded in the artifact's meta.
        layout: input layout of ``module`` (``NHWC`` for the PT2E graph made for TFLite).
        quantizer: the PT2E quantiser the graph was prepared with (TFLite only).
    """

    format: str
    module: nn.Module
    method: str
    layout: str = "NCHW"
    quantizer: object | None = None


def check_quantized(exporter: Exporter, qmodel: QuantizedModel) -> None:
    """ConfigError unless ``qmodel`` was quantised for ``exporter``'s format."""
    if qmodel.format != exporter.name:
        raise ConfigError(
            f"a model quantised for {qmodel.format} ({qmodel.method}) cannot be exported as {exporter.name}; "
            f"run quantisation-aware training for {exporter.name} or use quantization mode 'ptq'"
        )


@runtime_checkable
class Exporter(Protocol):
    """Turns a torch model into one deployable file (or folder) and runs it back on the host.

    Attributes:
        name: registry key and artifact ``kind`` (``onnx``, ``tflite``, ``openvino``).
        precisions: precisions :meth:`export` accepts (``fp32``, ``int8``).
        suffix: file name suffix of the artifact.
    """

    name: str
    precisions: tuple[str, ...]
    suffix: str

    def export(
        self,
        model: nn.Module,
        example: torch.Tensor,
        precision: str,
        out_dir: Path,
        info: SidecarInfo,
        calibration: np.ndarray | None = None,
        opset: int = 17,
    ) -> Artifact:
        """Convert ``model`` and write it, with its sidecar, atomically under ``out_dir``.

        Args:
            model: the torch model (put in eval mode by the exporter).
            example: a normalised float32 NCHW batch used for tracing.
            precision: one of :attr:`precisions`.
            out_dir: folder to write into (created if missing).
            info: labels, normalisation and input shape for the sidecar.
            calibration: normalised float32 NCHW samples for int8 post-training quantisation.
            opset: ONNX opset (ignored by formats that have none).

        Returns:
            An artifact of ``kind == name``, ``stage == "export"`` and ``meta`` holding at least
            ``format``, ``precision`` and ``sidecar``.

        Raises:
            ConfigError: unsupported precision.
            InputError: int8 requested without usable calibration data.
            ToolchainError: the converter failed (e.g. an unsupported operator).
        """
        ...

    def load_runtime(self, artifact: Artifact, threads: int = 1) -> RuntimeFn:
        """A function mapping a normalised float32 NCHW batch (any size) to float32 logits.

        Raises:
            InputError: the artifact or its sidecar is missing, truncated or corrupt.
        """
        ...


@runtime_checkable
class QuantizedExporter(Protocol):
    """An exporter that also writes a model already quantised by training (see :class:`QuantizedModel`)."""

    name: str

    def export_quantized(
        self, qmodel: QuantizedModel, example: torch.Tensor, out_dir: Path, info: SidecarInfo, opset: int = 17
    ) -> Artifact:
        """Write ``qmodel`` as ``<out_dir>/model-int8<suffix>`` with its sidecar, atomically, no calibration."""
        ...


@functools.cache
def int8_saturates_here() -> bool:
    """True on an x86 CPU without VNNI, where int8 u8*s8 multiply-adds saturate (``vpmaddubsw``).

    There, ONNX Runtime and OpenVINO int8 kernels lose accuracy unless weights use 7 bits
    (``reduce_range`` / NNCF ``overflow_fix``); with VNNI (``avx512_vnni``, ``avx_vnni``) or on Arm they
    do not saturate. Artifacts are checked for parity on this CPU, so the exporters default to 7-bit
    weights where it saturates and record the choice in the sidecar.
    """
    flags = cpu_flags()
    return "avx2" in flags and not flags & set(VNNI_FLAGS)


def get_exporter(name: str) -> Exporter:
    """A fresh instance of the exporter registered as ``name`` (ConfigError if unknown)."""
    return EXPORTERS.get(name)()


def check_request(exporter: Exporter, precision: str, info: SidecarInfo, calibration: np.ndarray | None) -> None:
    """Validate an export request before any slow work starts."""
    if precision not in exporter.precisions:
        raise ConfigError(
            f"{exporter.name} exporter has no precision '{precision}'; choose {', '.join(exporter.precisions)}"
        )
    if precision != "int8":
        return
    if calibration is None or len(calibration) == 0:
        raise InputError(f"{exporter.name} int8 export needs calibration samples; pass a calibration set")
    if calibration.ndim != 4 or tuple(calibration.shape[1:]) != tuple(info.input_shape):
        raise InputError(
            f"calibration data has shape {tuple(calibration.shape)}; "
            f"expected (N, {', '.join(map(str, info.input_shape))})"
        )


def conversion_error(fmt: str, exc: BaseException) -> ToolchainError:
    """A one-line ToolchainError naming the format, the failing operator if known, and alternatives."""
    text = str(exc)
    op = next((m.group(1) for p in _OP_PATTERNS if (m := p.search(text))), None)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
    if len(first) > 160:
        first = first[:157] + "..."
    others = ", ".join(f for f in _ALTERNATIVES if f != fmt)
    what = f"unsupported operator {op}" if op else first
    return ToolchainError(f"{fmt} conversion failed: {what}; try another format ({others})")


def artifact_path(out_dir: Path, precision: str, suffix: str) -> Path:
    """Where an exporter writes its artifact: ``<out_dir>/model-<precision><suffix>``."""
    return Path(out_dir) / f"model-{precision}{suffix}"


@contextmanager
def staging_dir(out_dir: Path) -> Iterator[Path]:
    """A scratch folder inside ``out_dir`` (same file system, so renames are atomic); always removed."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(staged: Path, final: Path) -> None:
    """Move a fully written file or folder from the staging folder to its final place."""
    if staged.is_dir():
        from edgekd.core.atomic import atomic_replace_dir

        atomic_replace_dir(staged, final)
    else:
        os.replace(staged, final)


INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def float_nchw_sidecar(fmt: str, precision: str, info: SidecarInfo) -> Sidecar:
    """Sidecar of a model with float32 NCHW input and float32 logits, any batch size."""
    return Sidecar(
        format=fmt,
        precision=precision,
        input=TensorSpec(INPUT_NAME, (-1, *info.input_shape), "float32", "NCHW"),
        output=TensorSpec(OUTPUT_NAME, (-1, len(info.class_names)), "float32"),
        mean=info.mean,
        std=info.std,
        class_names=info.class_names,
        preprocessing=info.preprocess,
    )


def publish_artifact(fmt: str, precision: str, staged: Path, final: Path, sidecar: Sidecar, **meta: object) -> Artifact:
    """Write the sidecar, move sidecar then model into place, and describe the result as an Artifact."""
    write_sidecar(staged, sidecar)
    publish(sidecar_path(staged), sidecar_path(final))
    publish(staged, final)
    meta = {"format": fmt, "precision": precision, "sidecar": str(sidecar_path(final)), **meta}
    return Artifact.from_file(final, kind=fmt, stage="export", meta=meta)


def run_in_chunks(x: np.ndarray, batch: int, run_fixed: RuntimeFn) -> np.ndarray:
    """Run a fixed-batch model over any number of samples, padding the last chunk."""
    if x.shape[0] == 0:
        raise InputError("cannot run a model on an empty batch")
    outs = []
    for start in range(0, x.shape[0], batch):
        chunk = x[start : start + batch]
        n = chunk.shape[0]
        if n < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - n, axis=0)])
        outs.append(run_fixed(chunk)[:n])
    return np.concatenate(outs).astype(np.float32, copy=False)


def as_input(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Check a runtime input against the sidecar's (C, H, W) and return it as float32."""
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape):
        expected = ", ".join(map(str, shape))
        raise InputError(f"model input has shape {tuple(x.shape)}; expected (N, {expected})")
    return np.ascontiguousarray(x, dtype=np.float32)


@contextmanager
def temp_environ(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, restoring the old values after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
