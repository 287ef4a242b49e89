"""OpenVINO IR export: ``openvino.convert_model`` from torch; int8 by NNCF post-training quantisation.

The artifact is a folder ``model-<precision>.openvino/`` holding ``model.xml`` and ``model.bin``,
so its sha256 covers both files; the sidecar sits beside the folder.

Choices, measured on openvino 2026.4 / nncf 3.4 on an AVX-512 (VNNI, BF16) x86 host:

* The CPU plugin runs float layers in bf16 by default on CPUs that have it (logit error ~0.1);
  the runtime asks for ``INFERENCE_PRECISION_HINT=f32`` so parity reflects the artifact, not the host.
* ``nncf.quantize`` works on the converted OpenVINO model (no NNCF torch extension to build).
  Its default fast bias correction *raised* the logit error ~4x on small CNNs (top-1 agreement
  91-92 %); the full bias correction (``fast_bias_correction=False``) is used instead (97-99 %).
* The MatMul producing the logits (the classifier head) stays in float: quantised, it raised the
  largest logit error ~4x (6.8 vs 1.8) for a negligible share of the compute.
* ``overflow_fix`` (7-bit weights) only helps x86 CPUs without VNNI, whose u8s8 multiply-add
  saturates: by default it is on exactly there (``int8_saturates_here``); ``OpenvinoExporter(reduce_range=...)``
  overrides it.
* :meth:`OpenvinoExporter.export_quantized` takes a model already fake-quantised and fine-tuned by NNCF
  QAT (``edgekd.distill.qat_nncf``): ``convert_model`` turns its quantisers into int8 FakeQuantize ops.
* OpenVINO and NNCF telemetry write under ``$HOME`` (and may send data) on first import unless a CI
  environment is detected: imports and conversions run with ``CI=true`` / ``NNCF_CI=1`` set.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.core.artifact import Artifact
from edgekd.core.errors import InputError, ToolchainError
from edgekd.export.base import (
    INPUT_NAME,
    OUTPUT_NAME,
    PRECISIONS,
    QuantizedModel,
    RuntimeFn,
    SidecarInfo,
    artifact_path,
    as_input,
    check_quantized,
    check_request,
    conversion_error,
    float_nchw_sidecar,
    int8_saturates_here,
    publish_artifact,
    staging_dir,
    temp_environ,
)
from edgekd.export.sidecar import read_sidecar

log = logging.getLogger(__name__)

XML_NAME = "model.xml"


def _no_telemetry() -> contextlib.AbstractContextManager[None]:
    """OpenVINO and NNCF decide on telemetry at import/conversion time from these variables."""
    return temp_environ(CI="true", NNCF_CI="1")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No telemetry, warnings or NNCF progress bars while converting or quantising.

    Never import a library inside this block: NNCF binds its log handler to the ``sys.stdout`` it
    sees on import, and would then log into the discarded buffer for the rest of the process.
    """
    with _no_telemetry(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _openvino() -> ModuleType:
    with _no_telemetry():
        try:
            import openvino
        except ImportError as exc:
            raise ToolchainError(
                f"openvino export needs openvino ({exc}); pip install 'edgekd[openvino]' or use onnx"
            ) from exc
    return openvino


class OpenvinoExporter:
    """OpenVINO IR folder with a dynamic batch dimension; fp32 or NNCF int8.

    Example:
        >>> artifact = OpenvinoExporter().export(model, example, "fp32", out_dir, info)  # doctest: +SKIP
        >>> artifact.path.name  # doctest: +SKIP
        'model-fp32.openvino'
    """

    name = "openvino"
    precisions = PRECISIONS
    suffix = ".openvino"

    def __init__(self, reduce_range: bool | None = None) -> None:
        # None: 7-bit weights (NNCF overflow_fix) where int8 saturates on this CPU (x86 without VNNI)
        self.reduce_range = int8_saturates_here() if reduce_range is None else reduce_range

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
        """Export ``model`` to ``<out_dir>/model-<precision>.openvino/`` (``opset`` is ignored)."""
        check_request(self, precision, info, calibration)
        ov = _openvino()
        final = artifact_path(out_dir, precision, self.suffix)
        started = time.perf_counter()
        ov_model = _convert(ov, model, example, info)
        extra: dict[str, object] = {"xml": XML_NAME}
        if precision == "int8":
            assert calibration is not None  # checked by check_request
            ov_model = _quantize(ov_model, calibration, self.reduce_range)
            extra["reduce_range"] = self.reduce_range
        artifact = self._save(ov, ov_model, final, precision, info, out_dir, extra)
        log.info("openvino %s export took %.1f s", precision, time.perf_counter() - started)
        return artifact

    def export_quantized(
        self, qmodel: QuantizedModel, example: torch.Tensor, out_dir: Path, info: SidecarInfo, opset: int = 17
    ) -> Artifact:
        """Export an NNCF-QAT model to ``<out_dir>/model-int8.openvino/`` without calibration.

        Raises:
            ConfigError: ``qmodel`` was not quantised for openvino.
            ToolchainError: the conversion failed.
        """
        check_quantized(self, qmodel)
        ov = _openvino()
        final = artifact_path(out_dir, "int8", self.suffix)
        started = time.perf_counter()
        ov_model = _convert(ov, qmodel.module, example, info)
        extra: dict[str, object] = {"xml": XML_NAME, "quantization": qmodel.method}
        artifact = self._save(ov, ov_model, final, "int8", info, out_dir, extra)
        log.info("openvino int8 (%s) export took %.1f s", qmodel.method, time.perf_counter() - started)
        return artifact

    def _save(
        self, ov: ModuleType, ov_model: Any, final: Path, precision: str, info: SidecarInfo, out_dir: Path, extra: dict
    ) -> Artifact:
        with staging_dir(out_dir) as tmp:
            staged = tmp / final.name
            staged.mkdir()
            ov.save_model(ov_model, str(staged / XML_NAME), compress_to_fp16=False)
            sidecar = float_nchw_sidecar(self.name, precision, info)
            return publish_artifact(self.name, precision, staged, final, sidecar, **extra)

    def load_runtime(self, artifact: Artifact, threads: int = 1) -> RuntimeFn:
        """OpenVINO CPU plugin, ``threads`` threads, latency hint, f32 (see :class:`Exporter`)."""
        ov = _openvino()
        path = Path(artifact.path)
        sidecar = read_sidecar(path)
        xml = path / XML_NAME if path.is_dir() else path
        if not xml.is_file():
            raise InputError(f"{xml} does not exist; export the model first")
        config = {
            "INFERENCE_NUM_THREADS": threads,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32",
        }
        try:
            compiled = ov.Core().compile_model(str(xml), "CPU", config)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1][:160] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{xml} is not a loadable OpenVINO model ({first}); re-export it") from exc
        request = compiled.create_infer_request()
        shape = tuple(sidecar.input.shape[1:])

        def run(x: np.ndarray) -> np.ndarray:
            request.infer({0: as_input(x, shape)})
            return np.array(request.get_output_tensor(0).data, dtype=np.float32)

        return run


def _convert(ov: ModuleType, model: nn.Module, example: torch.Tensor, info: SidecarInfo) -> Any:
    try:
        with _quiet(), torch.no_grad():
            ov_model = ov.convert_model(model.eval(), example_input=example[:1], input=[(-1, *info.input_shape)])
    except Exception as exc:  # OpConversionFailure, RuntimeError, torch tracing errors...
        raise conversion_error("openvino", exc) from exc
    ov_model.inputs[0].get_tensor().set_names({INPUT_NAME})
    ov_model.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    return ov_model


def _quantize(ov_model: Any, calibration: np.ndarray, reduce_range: bool) -> Any:
    with _no_telemetry():
        import nncf
        from nncf.common.logging import nncf_logger
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    with _quiet():
        data = np.ascontiguousarray(calibration, dtype=np.float32)
        dataset = nncf.Dataset([data[i : i + 1] for i in range(len(data))])
        head = _output_matmuls(ov_model)
        params = AdvancedQuantizationParameters(
            overflow_fix=OverflowFix.ENABLE if reduce_range else OverflowFix.DISABLE
        )
        level = nncf_logger.level
        nncf_logger.setLevel(logging.WARNING)
        try:
            return nncf.quantize(
                ov_model,
                dataset,
                subset_size=len(data),
                fast_bias_correction=False,
                advanced_parameters=params,
                ignored_scope=nncf.IgnoredScope(names=head, validate=False),
            )
        except Exception as exc:  # NNCF raises its own and OpenVINO's error types
            raise conversion_error("openvino", exc) from exc
        finally:
            nncf_logger.setLevel(level)


def _output_matmuls(ov_model: Any) -> list[str]:
    """Names of the MatMuls that produce the model outputs (the classifier head), kept in float."""
    names = []
    for result in ov_model.get_results():
        node = result.input_value(0).get_node()
        while node.get_type_name() in ("Add", "Reshape", "Convert"):  # bias, flatten, casts
            inputs = [v.get_node() for v in node.input_values() if v.get_node().get_type_name() != "Constant"]
            if len(inputs) != 1:
                break
            node = inputs[0]
        if node.get_type_name() == "MatMul":
            names.append(node.get_friendly_name())
    return names
