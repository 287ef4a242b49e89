"""TFLite (LiteRT) export through litert-torch; int8 through PT2E post-training quantisation.

* The model is wrapped with ``litert_torch.to_channel_last_io`` so the ``.tflite`` takes NHWC input
  with no transpose at its entry (the layout TFLite kernels use); the sidecar says ``NHWC``.
* The batch is fixed at 1: litert-torch 0.10 cannot lower a dynamic batch through adaptive pooling,
  and batch 1 is what an edge device runs. :meth:`TfliteExporter.load_runtime` loops over samples.
* int8: litert-torch's ``PT2EQuantizer`` (symmetric, per-channel weights, histogram observers on
  activations), ``prepare_pt2e``, calibration, ``convert_pt2e(fold_quantize=False)`` and
  ``litert_torch.convert(..., quant_config=QuantConfig(pt2e_quantizer=...))``. The result is fully
  int8 including its input and output; the runtime quantises inputs and dequantises outputs with the
  scales recorded in the sidecar. Before ``prepare_pt2e``, a conv/linear shared by a BatchNorm and
  other users is copied for the BatchNorm (torchao's folding would otherwise change the function, see
  :mod:`edgekd.export.tflite_quant_config`), and the first calibration batch checks the prepared graph
  still computes the model's output. Standalone BatchNorms (after a concat or pool) stay float.
* :meth:`TfliteExporter.export_quantized` takes a graph already quantised by PT2E QAT
  (``edgekd.distill.qat_pt2e``): it skips calibration and converts that graph as it is.
* litert-torch and ai-edge-litert are imported only inside the methods (they are heavy and optional:
  ``pip install edgekd[tflite]``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from edgekd.core.artifact import Artifact
from edgekd.core.errors import InputError, ToolchainError
from edgekd.export.base import (
    PRECISIONS,
    QuantizedModel,
    RuntimeFn,
    SidecarInfo,
    artifact_path,
    as_input,
    check_quantized,
    check_request,
    conversion_error,
    publish_artifact,
    run_in_chunks,
    staging_dir,
    temp_environ,
)
from edgekd.export.sidecar import (
    QuantParams,
    Sidecar,
    TensorSpec,
    read_sidecar,
    sidecar_path,
)
from edgekd.export.tflite_quant_config import check_prepared, ptq_quantizer, unshare_bn_producers

log = logging.getLogger(__name__)

# litert-torch prints a progress tree and the converter logs through absl unless told not to.
_QUIET_ENV = {"LITERT_TORCH_SHOW_PROGRESS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
CALIBRATION_BATCH = 32


class TfliteExporter:
    """``.tflite`` with NHWC input and batch 1; fp32, or full int8 (int8 input and output).

    Example:
        >>> artifact = TfliteExporter().export(model, example, "int8", out_dir, info, calib)  # doctest: +SKIP
    """

    name = "tflite"
    precisions = PRECISIONS
    suffix = ".tflite"

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
        """Export ``model`` to ``<out_dir>/model-<precision>.tflite`` (``opset`` is ignored)."""
        check_request(self, precision, info, calibration)
        final = artifact_path(out_dir, precision, self.suffix)
        started = time.perf_counter()
        with staging_dir(out_dir) as tmp:
            staged = tmp / final.name
            _convert(model, example, precision, calibration, staged)
            sidecar = _sidecar_for(staged, precision, info)
            artifact = publish_artifact(self.name, precision, staged, final, sidecar)
        log.info("tflite %s export took %.1f s", precision, time.perf_counter() - started)
        return artifact

    def export_quantized(
        self, qmodel: QuantizedModel, example: torch.Tensor, out_dir: Path, info: SidecarInfo, opset: int = 17
    ) -> Artifact:
        """Export a PT2E-QAT graph (NHWC input) to ``<out_dir>/model-int8.tflite`` without calibration.

        Raises:
            ConfigError: ``qmodel`` was not quantised for tflite.
            ToolchainError: the converter failed.
        """
        check_quantized(self, qmodel)
        final = artifact_path(out_dir, "int8", self.suffix)
        started = time.perf_counter()
        litert_torch = _import_litert()
        sample = example[:1].permute(0, 2, 3, 1).contiguous()
        with staging_dir(out_dir) as tmp:
            staged = tmp / final.name
            printed = io.StringIO()
            with temp_environ(**_QUIET_ENV), warnings.catch_warnings(), contextlib.redirect_stdout(printed):
                warnings.simplefilter("ignore")
                try:
                    _from_pt2e(litert_torch, qmodel.module, sample, qmodel.quantizer).export(str(staged))
                except Exception as exc:  # litert-torch raises RuntimeError, NotImplementedError, jax errors...
                    raise conversion_error("tflite", exc) from exc
            sidecar = _sidecar_for(staged, "int8", info)
            artifact = publish_artifact(self.name, "int8", staged, final, sidecar, quantization=qmodel.method)
        log.info("tflite int8 (%s) export took %.1f s", qmodel.method, time.perf_counter() - started)
        return artifact

    def load_runtime(self, artifact: Artifact, threads: int = 1) -> RuntimeFn:
        """ai-edge-litert interpreter (XNNPACK) with ``threads`` threads (see :class:`Exporter`)."""
        path = Path(artifact.path)
        sidecar = read_sidecar(path)
        interp = _interpreter(path, threads)
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        actual = _spec(inp, sidecar.input.layout)
        if (actual.shape, actual.dtype, actual.quantization) != (
            sidecar.input.shape,
            sidecar.input.dtype,
            sidecar.input.quantization,
        ):
            raise InputError(f"{sidecar_path(path)} does not describe {path.name}; re-export the model")
        nhwc = sidecar.input.layout == "NHWC"
        n, *dims = sidecar.input.shape
        chw = (dims[2], dims[0], dims[1]) if nhwc else tuple(dims)
        in_q, out_q = sidecar.input.quantization, sidecar.output.quantization
        in_dtype = sidecar.input.dtype

        def run_fixed(chunk: np.ndarray) -> np.ndarray:
            if nhwc:
                chunk = chunk.transpose(0, 2, 3, 1)
            chunk = in_q.quantize(chunk, in_dtype) if in_q else chunk
            interp.set_tensor(inp["index"], np.ascontiguousarray(chunk))
            interp.invoke()
            y = interp.get_tensor(out["index"])
            return out_q.dequantize(y) if out_q else y.astype(np.float32)

        return lambda x: run_in_chunks(as_input(x, chw), n, run_fixed)


def _convert(
    model: nn.Module, example: torch.Tensor, precision: str, calibration: np.ndarray | None, path: Path
) -> None:
    litert_torch = _import_litert()
    printed = io.StringIO()  # litert-torch print()s partitioning notes
    with temp_environ(**_QUIET_ENV), warnings.catch_warnings(), contextlib.redirect_stdout(printed):
        warnings.simplefilter("ignore")
        # torch.export/PT2E work on a traced copy; test_export_leaves_the_model_unchanged checks it.
        wrapped = litert_torch.to_channel_last_io(model.eval(), args=[0]).eval()
        sample = example[:1].permute(0, 2, 3, 1).contiguous()
        try:
            if precision == "int8":
                assert calibration is not None  # checked by check_request
                edge = _quantized(litert_torch, wrapped, sample, calibration)
            else:
                edge = litert_torch.convert(wrapped, (sample,))
            edge.export(str(path))
        except Exception as exc:  # litert-torch raises RuntimeError, NotImplementedError, jax errors...
            raise conversion_error("tflite", exc) from exc
    if printed.getvalue().strip():
        log.debug("litert-torch output:\n%s", printed.getvalue().strip())


def _import_litert() -> ModuleType:
    """Import litert-torch and the PT2E modules up front, outside any stdout redirection."""
    with temp_environ(**_QUIET_ENV), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import litert_torch
            import litert_torch.quantize.pt2e_quantizer
            import litert_torch.quantize.quant_config
            import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
        except ImportError as exc:
            raise ToolchainError(
                f"tflite export needs litert-torch ({exc}); pip install 'edgekd[tflite]' or use onnx"
            ) from exc
    return litert_torch


def _quantized(litert_torch: ModuleType, wrapped: nn.Module, sample: torch.Tensor, calibration: np.ndarray) -> Any:
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = ptq_quantizer()
    # Trace with a dynamic batch so calibration runs in batches: the histogram observers cost
    # ~0.2 s per call, which made per-sample calibration of 256 samples take a minute.
    batch = torch.export.Dim("batch", max=1 << 16)
    two = torch.cat([sample, sample])  # a batch of 1 would be specialised to a constant
    graph = torch.export.export(wrapped, (two,), dynamic_shapes=(({0: batch},),)).module()
    unshare_bn_producers(graph)  # else prepare_pt2e's BatchNorm folding can change the model's function
    prepared = move_exported_model_to_eval(prepare_pt2e(graph, quantizer))
    nhwc = torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32)).permute(0, 2, 3, 1)
    with torch.no_grad():
        for i in range(0, len(nhwc), CALIBRATION_BATCH):
            chunk = nhwc[i : i + CALIBRATION_BATCH].contiguous()
            observed = prepared(chunk)
            if i == 0:  # observers only, nothing rounded yet: the output must still be the model's
                check_prepared(wrapped(chunk), observed)
    converted = move_exported_model_to_eval(convert_pt2e(prepared, fold_quantize=False))
    return _from_pt2e(litert_torch, converted, sample, quantizer)


def _from_pt2e(litert_torch: ModuleType, converted: nn.Module, sample: torch.Tensor, quantizer: Any) -> Any:
    """litert-torch conversion of a converted PT2E graph (NHWC input) into a full-int8 edge model."""
    from litert_torch.quantize.quant_config import QuantConfig

    # Converting with a batch-1 sample gives the batch-1 model deployed on the device.
    return litert_torch.convert(converted, (sample,), quant_config=QuantConfig(pt2e_quantizer=quantizer))


def _interpreter(path: Path, threads: int) -> Any:  # an ai_edge_litert Interpreter
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise ToolchainError(f"running .tflite needs ai-edge-litert ({exc}); pip install 'edgekd[tflite]'") from exc
    if not path.is_file():
        raise InputError(f"{path} does not exist; export the model first")
    try:
        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{path} is not a loadable TFLite model ({exc}); re-export it") from exc
    return interp


def _spec(detail: dict, layout: str | None) -> TensorSpec:
    dtype = np.dtype(detail["dtype"]).name
    scale, zero_point = detail["quantization"]
    quant = QuantParams(float(scale), int(zero_point)) if dtype in ("int8", "uint8") and scale else None
    shape = tuple(int(v) for v in detail["shape"])
    return TensorSpec(detail["name"], shape, dtype, layout, quant)


def _sidecar_for(path: Path, precision: str, info: SidecarInfo) -> Sidecar:
    interp = _interpreter(path, threads=1)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    return Sidecar(
        format="tflite",
        precision=precision,
        input=_spec(inp, "NHWC"),
        output=_spec(out, None),
        mean=info.mean,
        std=info.std,
        class_names=info.class_names,
        preprocessing=info.preprocess,
    )
