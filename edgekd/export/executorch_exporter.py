"""ExecuTorch (``.pte``) export with the XNNPACK delegate; int8 through PT2E with the XNNPACK quantiser.

* fp32: ``torch.export`` -> ``to_edge_transform_and_lower(partitioner=[XnnpackPartitioner()])`` ->
  ``to_executorch()``. The program takes float32 NCHW input and returns float32 logits.
* The batch is fixed at 1 (what an edge device runs; a dynamic batch bound was narrowed to 15 by the
  lowering in ExecuTorch 1.5.1). :meth:`ExecutorchExporter.load_runtime` runs larger batches sample by sample.
* int8: ExecuTorch's ``XNNPACKQuantizer`` with ``get_symmetric_quantization_config(is_per_channel=True)``
  (symmetric per-channel int8 weights, int8 activations), ``prepare_pt2e``, calibration in batches of
  up to :data:`CALIBRATION_BATCH` with a dynamic batch dimension (any number of images, no batch of 1),
  ``convert_pt2e``, then the same lowering. The quantise/dequantise nodes at the edges run inside the
  delegate, so the ``.pte`` keeps float32 input and output and the sidecar has no quantisation.
  The BatchNorm-folding guard and the preparation check of the TFLite path
  (:mod:`edgekd.export.tflite_quant_config`) apply unchanged: they are torchao's, not LiteRT's.
* :meth:`ExecutorchExporter.export_quantized` takes a graph already converted by PT2E (e.g. trained with
  ``prepare_qat_pt2e`` under :func:`xnnpack_quantizer` ``(is_qat=True)``) and lowers it as it is.
* ExecuTorch is imported only inside the functions (``pip install 'edgekd[executorch]'``).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
import warnings
from pathlib import Path
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
    publish_artifact,
    run_in_chunks,
    staging_dir,
)
from edgekd.export.sidecar import Sidecar, TensorSpec, read_sidecar, sidecar_path
from edgekd.export.tflite_quant_config import check_prepared, unshare_bn_producers

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 32
MAX_BATCH = 1 << 16
_FLOAT = 6  # ExecuTorch ScalarType.Float


class ExecutorchExporter:
    """``.pte`` program lowered to XNNPACK, float32 NCHW input, batch 1; fp32 or int8 inside.

    Example:
        >>> artifact = ExecutorchExporter().export(model, example, "int8", out_dir, info, calib)  # doctest: +SKIP
        >>> logits = ExecutorchExporter().load_runtime(artifact, threads=2)(x)  # doctest: +SKIP
    """

    name = "executorch"
    precisions = PRECISIONS
    suffix = ".pte"

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
        """Export ``model`` to ``<out_dir>/model-<precision>.pte`` (``opset`` is ignored)."""
        check_request(self, precision, info, calibration)
        _import_executorch()
        started = time.perf_counter()
        sample = example[:1].detach().float().contiguous()
        final = artifact_path(out_dir, precision, self.suffix)
        with staging_dir(out_dir) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                if precision == "int8":
                    assert calibration is not None  # checked by check_request
                    graph = _ptq(model, sample, calibration)
                else:
                    graph = model.eval()
                staged = tmp / final.name
                staged.write_bytes(_lower(graph, sample))
            except ToolchainError:
                raise
            except Exception as exc:  # torch.export and the lowering raise many types
                raise conversion_error(self.name, exc) from exc
            artifact = publish_artifact(self.name, precision, staged, final, _sidecar(precision, info))
        log.info("executorch %s export took %.1f s", precision, time.perf_counter() - started)
        return artifact

    def export_quantized(
        self, qmodel: QuantizedModel, example: torch.Tensor, out_dir: Path, info: SidecarInfo, opset: int = 17
    ) -> Artifact:
        """Lower a converted PT2E graph (NCHW input) to ``<out_dir>/model-int8.pte`` without calibration.

        Raises:
            ConfigError: ``qmodel`` was not quantised for executorch.
            ToolchainError: the lowering failed.
        """
        check_quantized(self, qmodel)
        _import_executorch()
        started = time.perf_counter()
        final = artifact_path(out_dir, "int8", self.suffix)
        with staging_dir(out_dir) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            staged = tmp / final.name
            try:
                module = _fold_weight_quantize(qmodel.module)
                staged.write_bytes(_lower(module, example[:1].detach().float().contiguous()))
            except Exception as exc:  # torch.export and the lowering raise many types
                raise conversion_error(self.name, exc) from exc
            sidecar = _sidecar("int8", info)
            artifact = publish_artifact(self.name, "int8", staged, final, sidecar, quantization=qmodel.method)
        log.info("executorch int8 (%s) export took %.1f s", qmodel.method, time.perf_counter() - started)
        return artifact

    def load_runtime(self, artifact: Artifact, threads: int = 1) -> RuntimeFn:
        """``executorch.runtime`` with the XNNPACK delegate (see :class:`Exporter`).

        ExecuTorch has one thread pool per process: loading resets it to ``threads`` threads, which
        also applies to programs loaded earlier in the same process.
        """
        path = Path(artifact.path)
        sidecar = read_sidecar(path)
        method = load_method(path, threads)
        meta = method.metadata
        sizes = tuple(int(v) for v in meta.input_tensor_meta(0).sizes())
        if meta.num_inputs() != 1 or sizes != sidecar.input.shape or meta.input_tensor_meta(0).dtype() != _FLOAT:
            raise InputError(f"{sidecar_path(path)} does not describe {path.name}; re-export the model")
        n, *chw = sidecar.input.shape

        def run_fixed(chunk: np.ndarray) -> np.ndarray:
            out = method.execute([torch.from_numpy(np.ascontiguousarray(chunk))])[0]
            return out.detach().numpy().astype(np.float32, copy=False)

        return lambda x: run_in_chunks(as_input(x, tuple(chw)), n, run_fixed)


def xnnpack_quantizer(is_qat: bool = False) -> Any:  # an executorch XNNPACKQuantizer
    """ExecuTorch's XNNPACK PT2E quantiser: symmetric int8, per-channel weights (``is_qat`` for QAT)."""
    _import_executorch()
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=is_qat))


def load_method(path: Path, threads: int = 1) -> Any:  # an executorch.runtime.Method
    """Load ``forward`` of the ``.pte`` at ``path`` with the process thread pool at ``threads`` threads.

    Raises:
        InputError: the file is missing or not a loadable ExecuTorch program.
        ToolchainError: ExecuTorch is not installed.
    """
    _import_executorch()
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    if not path.is_file():
        raise InputError(f"{path} does not exist; export the model first")
    threads = max(1, int(threads))
    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(threads)
    try:
        method = Runtime.get().load_program(path).load_method("forward")
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"{path} is not a loadable ExecuTorch program ({exc}); re-export it") from exc
    if method is None:
        raise InputError(f"{path} has no 'forward' method; re-export it with edgekd")
    return method


def calibration_chunks(n: int, batch: int = CALIBRATION_BATCH) -> list[slice]:
    """Near-equal slices of ``n`` samples, none over ``batch`` and none of one sample unless ``n == 1``.

    The prepared graph has a dynamic batch dimension that torch.export bounds below by 2.
    """
    if n <= 0:
        return []
    count = math.ceil(n / batch)  # for n >= 2, every slice then holds at least 2 samples
    edges = np.linspace(0, n, count + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _ptq(model: nn.Module, sample: torch.Tensor, calibration: np.ndarray) -> nn.Module:
    """Post-training int8 through PT2E with :func:`xnnpack_quantizer`, calibrated on ``calibration``."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    model = model.eval()
    batch = torch.export.Dim("batch", max=MAX_BATCH)
    two = torch.cat([sample, sample])  # a batch of 1 would be specialised to a constant
    graph = torch.export.export(model, (two,), dynamic_shapes=({0: batch},)).module()
    unshare_bn_producers(graph)  # else torchao's BatchNorm folding can change the model's function
    prepared = move_exported_model_to_eval(prepare_pt2e(graph, xnnpack_quantizer()))
    data = torch.from_numpy(np.ascontiguousarray(calibration, dtype=np.float32))
    with torch.no_grad():
        for i, part in enumerate(calibration_chunks(len(data))):
            chunk = data[part]
            if len(chunk) == 1:  # a single image: duplicated, which leaves min/max and histogram shape alike
                chunk = torch.cat([chunk, chunk])
            observed = prepared(chunk)
            if i == 0:  # observers only, nothing rounded yet: the output must still be the model's
                check_prepared(model(chunk), observed)
    return move_exported_model_to_eval(convert_pt2e(prepared))


def _fold_weight_quantize(graph: nn.Module) -> nn.Module:
    """A copy of a converted PT2E graph with the weights' quantize ops folded into int8 constants.

    ``convert_pt2e_qat`` converts with ``fold_quantize=False`` (what litert-torch wants); left unfolded,
    the XNNPACK partitioner sees computed weights, delegates no conv, and the lowering fails with
    "Missing out variants: quantized_decomposed::quantize_per_channel". Folding is exact.
    """
    from torchao.quantization.pt2e.constant_fold import constant_fold
    from torchao.quantization.pt2e.quantize_pt2e import _quant_node_constraint

    folded = copy.deepcopy(graph)
    constant_fold(folded, _quant_node_constraint)
    return folded


def _lower(model: nn.Module, sample: torch.Tensor) -> bytes:
    """The ``.pte`` bytes of ``model`` traced at ``sample``'s (batch-1) shape and lowered to XNNPACK."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    program = torch.export.export(model, (sample,))
    edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
    return edge.to_executorch().buffer


def _sidecar(precision: str, info: SidecarInfo) -> Sidecar:
    return Sidecar(
        format="executorch",
        precision=precision,
        input=TensorSpec(INPUT_NAME, (1, *info.input_shape), "float32", "NCHW"),
        output=TensorSpec(OUTPUT_NAME, (1, len(info.class_names)), "float32"),
        mean=info.mean,
        std=info.std,
        class_names=info.class_names,
    )


def _import_executorch() -> None:
    """Import ExecuTorch's exporter and runtime modules, or say how to install them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import executorch.exir
            import executorch.runtime  # noqa: F401
    except ImportError as exc:
        raise ToolchainError(
            f"executorch export needs ExecuTorch ({exc}); pip install 'edgekd[executorch]' or use onnx"
        ) from exc
