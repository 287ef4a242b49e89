"""NNCF quantisation-aware training for the OpenVINO and ONNX paths.

``nncf.quantize`` on the torch student inserts fake quantisers (trainable scales) initialised from
calibration data; the returned model is an ordinary ``nn.Module`` that any training loop fine-tunes.
Choices match the OpenVINO exporter's post-training path so QAT and PTQ compare like for like: the
classifier head (last ``nn.Linear``) stays in float, and ``overflow_fix`` (7-bit weights, for x86
CPUs without VNNI) is off unless asked for.

NNCF compiles a C++ extension for its CPU fake-quantise kernels on first use, with a 60 s timeout
that fails on a loaded machine and can leave a stale lock behind. :func:`nncf_environment` points
``TORCH_EXTENSIONS_DIR`` at a folder edgekd owns (unless set) and raises the timeout; with
``kernels="reference"`` NNCF's pure-torch kernels are used instead, run eagerly, and nothing is
compiled (NNCF itself falls back to them, under ``torch.compile``, when no compiler is installed).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.errors import ConfigError, ToolchainError
from edgekd.export.base import QuantizedModel, temp_environ

log = logging.getLogger(__name__)

KERNELS = ("compiled", "reference")
EXTENSIONS_DIR = Path.home() / ".cache" / "edgekd" / "torch_extensions"
LOAD_TIMEOUT_S = "900"
CALIBRATION_BATCH = 32


@dataclass(frozen=True)
class NncfQatSettings:
    """How NNCF quantises before fine-tuning.

    Attributes:
        overflow_fix: 7-bit weights, for x86 CPUs without VNNI whose u8s8 multiply-add saturates.
        kernels: ``compiled`` (NNCF's C++ extension, built once) or ``reference`` (pure torch).
        ignore_head: keep the classifier head (last ``nn.Linear``) in float.
    """

    overflow_fix: bool = False
    kernels: str = "compiled"
    ignore_head: bool = True


@contextlib.contextmanager
def nncf_environment() -> Iterator[None]:
    """No telemetry; the torch extension built under a folder edgekd owns, with a generous timeout."""
    values = {"CI": "true", "NNCF_CI": "1"}
    values["TORCH_EXTENSIONS_DIR"] = os.environ.get("TORCH_EXTENSIONS_DIR", str(EXTENSIONS_DIR))
    values["NNCF_EXTENSION_LOAD_TIMEOUT"] = os.environ.get("NNCF_EXTENSION_LOAD_TIMEOUT", LOAD_TIMEOUT_S)
    with temp_environ(**values):
        yield


def _import_nncf() -> None:
    with nncf_environment(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import nncf
            import nncf.torch.quantization.extensions  # noqa: F401
        except ImportError as exc:
            raise ToolchainError(f"NNCF QAT needs nncf ({exc}); pip install 'edgekd[openvino]'") from exc


def use_kernels(kernels: str) -> None:
    """Select NNCF's CPU fake-quantise kernels (process-wide); compiles the extension if needed.

    Raises:
        ConfigError: unknown ``kernels``.
        ToolchainError: the extension build timed out (e.g. a stale lock from an interrupted build).
    """
    if kernels not in KERNELS:
        raise ConfigError(f"unknown NNCF kernels '{kernels}'; choose {', '.join(KERNELS)}")
    _import_nncf()
    from nncf.torch.extensions import ExtensionLoaderTimeoutException
    from nncf.torch.quantization.extensions import QuantizedFunctionsCPU, QuantizedFunctionsCPULoader
    from nncf.torch.quantization.reference import torch_executor

    class EagerReference:
        """NNCF's pure-torch kernels (its own fallback when compiling fails) run eagerly: NNCF wraps them in
        ``torch.compile``, which recompiles for every new input shape and took minutes on a tiny model."""

        Quantize_forward = torch_executor.forward
        Quantize_backward = torch_executor.backward

    if kernels == "reference":
        QuantizedFunctionsCPU._loaded_namespace = EagerReference
        return
    if getattr(QuantizedFunctionsCPU._loaded_namespace, "__name__", "") == "EagerReference":
        QuantizedFunctionsCPU._loaded_namespace = None
    from nncf.common.logging import nncf_logger

    started = time.perf_counter()
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)  # "Compiling and loading torch extension..."
    with nncf_environment():
        try:
            QuantizedFunctionsCPU.get("Quantize_forward")
        except ExtensionLoaderTimeoutException as exc:
            build_dir = QuantizedFunctionsCPULoader.get_build_dir()
            raise ToolchainError(
                f"NNCF's C++ extension did not build in {os.environ['NNCF_EXTENSION_LOAD_TIMEOUT']} s; remove "
                f"{build_dir} if a build was interrupted, raise NNCF_EXTENSION_LOAD_TIMEOUT or use kernels 'reference'"
            ) from exc
        finally:
            nncf_logger.setLevel(level)
    log.debug("NNCF CPU kernels ready in %.1f s", time.perf_counter() - started)


def head_names(model: nn.Module) -> list[str]:
    """NNCF node name of the classifier head (the last ``nn.Linear``), if the model has one."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return [f"{linears[-1].replace('.', '/')}/linear/0"] if linears else []


def prepare_nncf_qat(student: nn.Module, calibration: np.ndarray, settings: NncfQatSettings | None = None) -> nn.Module:
    """A fake-quantised copy of ``student`` (left unchanged), initialised on ``calibration``, ready to train.

    Args:
        student: the float model, NCHW input.
        calibration: normalised float32 NCHW samples for the initial quantisation ranges.
        settings: quantiser options.

    Raises:
        ToolchainError: nncf is missing or quantisation failed.
    """
    settings = settings or NncfQatSettings()
    use_kernels(settings.kernels)
    import nncf
    from nncf.common.logging import nncf_logger
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    started = time.perf_counter()
    data = torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32))
    batches = [data[i : i + CALIBRATION_BATCH] for i in range(0, len(data), CALIBRATION_BATCH)]
    params = AdvancedQuantizationParameters(
        overflow_fix=OverflowFix.ENABLE if settings.overflow_fix else OverflowFix.DISABLE
    )
    ignored = nncf.IgnoredScope(names=head_names(student) if settings.ignore_head else [], validate=False)
    level = nncf_logger.level
    nncf_logger.setLevel(logging.WARNING)
    try:
        with nncf_environment(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qmodel = nncf.quantize(
                copy.deepcopy(student).eval(),
                nncf.Dataset(batches),
                subset_size=len(batches),
                ignored_scope=ignored,
                advanced_parameters=params,
            )
    except Exception as exc:  # NNCF raises its own and torch's error types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ToolchainError(f"NNCF quantisation failed: {first}; use quantization mode 'ptq'") from exc
    finally:
        nncf_logger.setLevel(level)
    log.info("NNCF QAT preparation took %.1f s", time.perf_counter() - started)
    return qmodel


def nncf_quantized(qmodel: nn.Module, fmt: str) -> QuantizedModel:
    """Wrap a fine-tuned NNCF model for ``OpenvinoExporter``/``OnnxExporter.export_quantized``."""
    if fmt not in ("openvino", "onnx"):
        raise ConfigError(f"NNCF QAT exports to openvino or onnx, not '{fmt}'; use PT2E QAT for tflite")
    return QuantizedModel(format=fmt, module=qmodel.eval(), method="qat-nncf")
