"""PT2E quantisation-aware training for the TFLite path (litert-torch's ``PT2EQuantizer``).

The student is wrapped with ``litert_torch.to_channel_last_io`` (as the TFLite exporter does), exported
with a dynamic batch dimension in train mode (a fixed batch of 1 would make BatchNorm train per sample),
and prepared with ``prepare_qat_pt2e`` under the quantiser the exporter uses for PTQ (symmetric,
per-channel weights) with ``is_qat=True``. :class:`Pt2eQatModule` puts the prepared graph behind an
ordinary NCHW ``nn.Module`` so any training loop can use it: ``train()``/``eval()`` call
``move_exported_model_to_train/eval`` (exported graphs refuse the usual methods) and switch the
observers on/off, so validation passes do not move the quantisation ranges. After training,
:func:`convert_pt2e_qat` gives the converted graph the TFLite exporter's ``export_quantized`` takes.

Workaround (litert-torch 0.10.0 with torch 2.13): litert-torch's conv-bn annotator passes a plain
function to torchao's ``_get_aten_graph_module_for_pattern``, which now hands it to ``torch.export``
that only accepts modules (``ValueError: Expected `mod` to be an instance of `torch.nn.Module```).
:func:`module_patterns` wraps such functions in torchao's ``WrapperModule`` while preparing, and
restores the original afterwards. ``tests/distill/test_qat_pt2e.py`` fails once the plain call works,
i.e. when the workaround can be removed.

The ExecuTorch path (``path="executorch"``) is the same with ExecuTorch's XNNPACK quantiser
(:func:`edgekd.export.executorch_exporter.xnnpack_quantizer`, ``is_qat=True``) on the NCHW model as it
is: no channel-last wrapper and no pattern workaround (that quantiser hands torch.export modules).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from edgekd.core.errors import ToolchainError
from edgekd.export.base import QuantizedModel, temp_environ

log = logging.getLogger(__name__)

_QUIET_ENV = {"LITERT_TORCH_SHOW_PROGRESS": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
MAX_BATCH = 1 << 16


def _imports() -> None:
    """Import litert-torch and torchao outside any output redirection (they are heavy and optional)."""
    with temp_environ(**_QUIET_ENV), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import litert_torch
            import litert_torch.quantize.pt2e_quantizer  # noqa: F401
            import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
        except ImportError as exc:
            raise ToolchainError(f"PT2E QAT needs litert-torch ({exc}); pip install 'edgekd[tflite]'") from exc


def qat_quantizer() -> Any:  # a litert_torch PT2EQuantizer
    """The exporter's PTQ quantiser with ``is_qat=True``: symmetric, per-channel weights."""
    _imports()
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    return PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_qat=True))


@contextlib.contextmanager
def module_patterns() -> Iterator[None]:
    """While active, litert-torch's pattern functions reach ``torch.export`` wrapped in a module.

    Needed with litert-torch 0.10.0 and torch 2.13 (see the module docstring); harmless otherwise.
    """
    _imports()
    from litert_torch.quantize import pt2e_quantizer_utils as utils
    from torchao.quantization.pt2e import WrapperModule

    original: Callable[..., Any] = utils._get_aten_graph_module_for_pattern

    def as_module(pattern: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return original(pattern if isinstance(pattern, nn.Module) else WrapperModule(pattern), *args, **kwargs)

    utils._get_aten_graph_module_for_pattern = as_module
    try:
        yield
    finally:
        utils._get_aten_graph_module_for_pattern = original


class Pt2eQatModule(nn.Module):
    """A prepared PT2E QAT graph (NHWC input) behind an NCHW module with working ``train()``/``eval()``.

    Example:
        >>> qat = prepare_pt2e_qat(student, example)  # doctest: +SKIP
        >>> train(qat, data, settings, KDLoss(), soft_targets)  # any ordinary loop  # doctest: +SKIP
        >>> qmodel = convert_pt2e_qat(qat)  # doctest: +SKIP
    """

    def __init__(self, graph: nn.Module, quantizer: Any, layout: str = "NHWC", fmt: str = "tflite") -> None:
        super().__init__()
        self.graph = graph
        self.quantizer = quantizer
        self.layout = layout
        self.format = fmt
        self.train()

    def train(self, mode: bool = True) -> Pt2eQatModule:
        """Train mode (batch statistics, observers on) or eval mode (running statistics, observers off)."""
        from torchao.quantization.pt2e import (
            disable_observer,
            enable_observer,
            move_exported_model_to_eval,
            move_exported_model_to_train,
        )

        self.training = mode  # not nn.Module.train: it would call the graph's refusing train()
        if mode:
            move_exported_model_to_train(self.graph)
            self.graph.apply(enable_observer)
        else:
            move_exported_model_to_eval(self.graph)
            self.graph.apply(disable_observer)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph(x.permute(0, 2, 3, 1) if self.layout == "NHWC" else x)


def prepare_pt2e_qat(student: nn.Module, example: torch.Tensor, path: str = "tflite") -> Pt2eQatModule:
    """A QAT-ready copy of ``student`` (left unchanged) for the PT2E path of ``tflite`` or ``executorch``.

    Args:
        student: the float model, NCHW input.
        example: a normalised float32 NCHW batch (at least one sample) for tracing.
        path: the exporter the trained graph is for (its quantiser and input layout).

    Raises:
        ToolchainError: litert-torch / ExecuTorch is missing or export/preparation failed.
    """
    if path == "executorch":
        return _prepare_xnnpack_qat(student, example)
    _imports()
    import litert_torch
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    started = time.perf_counter()
    quantizer = qat_quantizer()
    model = copy.deepcopy(student).train()  # train mode: BatchNorm is captured as the trainable op
    sample = example[:1].permute(0, 2, 3, 1).contiguous()
    two = torch.cat([sample, sample])  # a batch of 1 would be specialised to a constant
    batch = torch.export.Dim("batch", max=MAX_BATCH)
    printed = io.StringIO()
    try:
        with temp_environ(**_QUIET_ENV), warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.simplefilter("ignore")
            wrapped = litert_torch.to_channel_last_io(model, args=[0]).train()
            graph = torch.export.export(wrapped, (two,), dynamic_shapes=(({0: batch},),)).module()
            with module_patterns():
                prepared = prepare_qat_pt2e(graph, quantizer)
    except Exception as exc:  # torch.export and the quantiser raise many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ToolchainError(f"PT2E QAT preparation failed: {first}; use quantization mode 'ptq'") from exc
    log.info("PT2E QAT preparation took %.1f s", time.perf_counter() - started)
    return Pt2eQatModule(prepared, quantizer)


def _prepare_xnnpack_qat(student: nn.Module, example: torch.Tensor) -> Pt2eQatModule:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    from edgekd.export.executorch_exporter import xnnpack_quantizer

    started = time.perf_counter()
    quantizer = xnnpack_quantizer(is_qat=True)
    model = copy.deepcopy(student).train()  # train mode: BatchNorm is captured as the trainable op
    sample = example[:1].contiguous()
    two = torch.cat([sample, sample])  # a batch of 1 would be specialised to a constant
    batch = torch.export.Dim("batch", max=MAX_BATCH)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = torch.export.export(model, (two,), dynamic_shapes=({0: batch},)).module()
            prepared = prepare_qat_pt2e(graph, quantizer)
    except Exception as exc:  # torch.export and the quantiser raise many types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ToolchainError(f"PT2E QAT preparation failed: {first}; use quantization mode 'ptq'") from exc
    log.info("PT2E QAT preparation (executorch) took %.1f s", time.perf_counter() - started)
    return Pt2eQatModule(prepared, quantizer, layout="NCHW", fmt="executorch")


def observe(qat: Pt2eQatModule, calibration: torch.Tensor, batch_size: int = 32) -> None:
    """Initialise the quantisation ranges on ``calibration`` (NCHW) before training, as NNCF does.

    Without it the ranges start from the observers' defaults, so the trainer's initial validation
    (and a run whose epochs never beat it) would see an unusable model.
    """
    qat.train()
    with torch.no_grad():
        for i in range(0, len(calibration), batch_size):
            chunk = calibration[i : i + batch_size]
            if len(chunk) > 1:  # BatchNorm in train mode needs more than one sample
                qat(chunk)


def convert_pt2e_qat(qat: Pt2eQatModule) -> QuantizedModel:
    """Freeze the trained fake-quant graph into a quantised graph for its exporter's ``export_quantized``."""
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    started = time.perf_counter()
    qat.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            converted = move_exported_model_to_eval(convert_pt2e(qat.graph, fold_quantize=False))
    except Exception as exc:  # torchao raises assorted types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise ToolchainError(f"PT2E convert failed: {first}; use quantization mode 'ptq'") from exc
    log.info("PT2E convert took %.1f s", time.perf_counter() - started)
    return QuantizedModel(
        format=qat.format, module=converted, method="qat-pt2e", layout=qat.layout, quantizer=qat.quantizer
    )
