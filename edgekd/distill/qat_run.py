"""Knowledge distillation with quantisation-aware training in one loop, or KD then post-training quantisation.

The fake quantisation matches the target's deploy path, so the int8 model exported is the one trained:

* ``tflite``: PT2E (litert-torch's quantiser) — :mod:`edgekd.distill.qat_pt2e`;
* ``executorch``: PT2E (ExecuTorch's XNNPACK quantiser) — the same module;
* ``openvino`` / ``onnx``: NNCF — :mod:`edgekd.distill.qat_nncf`.

Mode ``ptq`` distils in float and leaves int8 to the exporter's post-training quantisation, calibrated
on training samples of the bundled/user dataset (``calibration_data/`` by default): faster, and the
baseline QAT is compared against (``benchmarks/qat_vs_ptq.py``).

Example:
    >>> result = qat_distill(student, teacher_logits, data, "tflite", QatSettings())  # doctest: +SKIP
    >>> artifact = export_result(result, example, out_dir, SidecarInfo.from_bundle(data))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.artifact import Artifact
from edgekd.core.errors import ConfigError, InputError
from edgekd.core.inference import predict_logits
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.data.datasets import DatasetBundle
from edgekd.distill.losses.kd_loss import KDLoss
from edgekd.distill.trainer import TrainResult, TrainSettings, train
from edgekd.export.base import QuantizedExporter, QuantizedModel, SidecarInfo, get_exporter

log = logging.getLogger(__name__)

MODES = ("ptq", "qat")
PATHS = ("tflite", "openvino", "onnx", "executorch")


def _qat_train_settings() -> TrainSettings:
    # A short, gentle fine-tune: the student arrives distilled in float; QAT adapts it to int8.
    return TrainSettings(epochs=1, lr=2e-4, warmup_fraction=0.1, augment=True)


@dataclass(frozen=True)
class QatSettings:
    """What :func:`qat_distill` does (``quantization:`` section of a build config).

    Attributes:
        mode: ``qat`` (KD with fake quantisation) or ``ptq`` (KD in float, exporter's PTQ).
        train: the KD schedule (in ``ptq`` mode, ``epochs=0`` skips training).
        temperature: KD temperature.
        alpha: weight of the soft targets against the labels.
        calibration_samples: training samples for PTQ calibration and NNCF's initial ranges.
        overflow_fix: NNCF 7-bit weights (x86 CPUs without VNNI); NNCF paths only.
        nncf_kernels: ``compiled`` or ``reference`` NNCF fake-quantise kernels.
    """

    mode: str = "qat"
    train: TrainSettings = field(default_factory=_qat_train_settings)
    temperature: float = 4.0
    alpha: float = 0.7
    calibration_samples: int = 256
    overflow_fix: bool = False
    nncf_kernels: str = "compiled"


@dataclass
class QatResult:
    """The distilled student, ready for its exporter.

    Attributes:
        path: ``tflite``, ``openvino`` or ``onnx``.
        mode: ``qat`` or ``ptq``.
        model: a :class:`QuantizedModel` (``qat``) or the float student (``ptq``).
        calibration: normalised samples for the exporter's PTQ (``ptq``; empty for ``qat``).
        train: the training run (None when no training ran).
        val_accuracy: validation accuracy of the trained model in PyTorch (fake-quantised for ``qat``).
        seconds: wall time of preparation, training and conversion.
    """

    path: str
    mode: str
    model: QuantizedModel | nn.Module
    calibration: np.ndarray
    train: TrainResult | None
    val_accuracy: float
    seconds: float = 0.0


def _check(path: str, settings: QatSettings) -> None:
    if path not in PATHS:
        raise ConfigError(f"unknown quantisation path '{path}'; choose {', '.join(PATHS)}")
    if settings.mode not in MODES:
        raise ConfigError(f"unknown quantization mode '{settings.mode}'; choose {', '.join(MODES)}")
    if settings.calibration_samples <= 0:
        raise ConfigError(f"calibration_samples must be > 0 (got {settings.calibration_samples})")


def _soft_targets(
    teacher: nn.Module | np.ndarray | None, data: DatasetBundle, settings: TrainSettings
) -> np.ndarray | None:
    """Teacher logits on the (subset of the) training split, computed once."""
    if teacher is None or isinstance(teacher, np.ndarray):
        return teacher
    part = data.train.subset(settings.max_train_samples)
    sub = replace(data, train=part)
    return predict_logits(teacher.eval(), sub, sub.train)


def qat_distill(
    student: nn.Module,
    teacher: nn.Module | np.ndarray | None,
    data: DatasetBundle,
    path: str,
    settings: QatSettings | None = None,
    progress: ProgressReporter = NULL_PROGRESS,
) -> QatResult:
    """Distil ``student`` from ``teacher`` with fake quantisation for ``path`` (or in float for ``ptq``).

    Args:
        student: the (pruned) float student; left unchanged in ``qat`` mode, trained in place in ``ptq``.
        teacher: a frozen teacher module, its logits on the training split (one row per sample, same
            order), or None for plain cross-entropy fine-tuning.
        data: train/val splits; calibration samples come from the start of the training split.
        path: deploy path whose quantisation is trained: ``tflite``, ``executorch``, ``openvino`` or ``onnx``.
        settings: mode, schedule and quantiser options.
        progress: progress reporter for the training loop.

    Raises:
        ConfigError: unknown path or mode.
        InputError: no training samples for calibration.
        ToolchainError: the quantisation tool chain failed.
    """
    settings = settings or QatSettings()
    _check(path, settings)
    if len(data.train) == 0:
        raise InputError(f"dataset {data.name} has no training samples to calibrate on")
    started = time.perf_counter()
    calibration = data.to_tensor(data.train.subset(settings.calibration_samples).x[:]).numpy()
    soft = _soft_targets(teacher, data, settings.train)
    loss = KDLoss(settings.temperature, settings.alpha)
    if settings.mode == "ptq":
        run = None
        if settings.train.epochs > 0:
            run = train(student, data, settings.train, loss, soft, progress, "distill (KD, float)")
        acc = _val_accuracy(student, data)
        return QatResult(path, "ptq", student.eval(), calibration, run, acc, time.perf_counter() - started)
    example = torch.from_numpy(calibration[:2])
    if path in ("tflite", "executorch"):
        from edgekd.distill.qat_pt2e import convert_pt2e_qat, observe, prepare_pt2e_qat

        qat = prepare_pt2e_qat(student, example, path)
        observe(qat, torch.from_numpy(calibration))
        run = train(qat, data, settings.train, loss, soft, progress, "distill (KD + PT2E QAT)")
        acc = _val_accuracy(qat, data)
        qmodel = convert_pt2e_qat(qat)
    else:
        from edgekd.distill.qat_nncf import NncfQatSettings, nncf_environment, nncf_quantized, prepare_nncf_qat

        nncf_settings = NncfQatSettings(overflow_fix=settings.overflow_fix, kernels=settings.nncf_kernels)
        prepared = prepare_nncf_qat(student, calibration, nncf_settings)
        with nncf_environment():
            run = train(prepared, data, settings.train, loss, soft, progress, "distill (KD + NNCF QAT)")
            acc = _val_accuracy(prepared, data)
        qmodel = nncf_quantized(prepared, path)
    seconds = time.perf_counter() - started
    log.info("KD + QAT for %s: val acc %.4f (fake-quantised) in %.1f s", path, acc, seconds)
    return QatResult(path, "qat", qmodel, np.zeros((0, *calibration.shape[1:]), np.float32), run, acc, seconds)


def _val_accuracy(model: nn.Module, data: DatasetBundle) -> float:
    logits = predict_logits(model, data, data.val)
    return float((logits.argmax(1) == data.val.y).mean()) if len(data.val) else 0.0


def quantized_logits(qmodel: QuantizedModel, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The quantised model's own PyTorch logits on normalised NCHW ``x``: the parity reference of its artifact.

    That is the fake-quantised NNCF model, or the converted PT2E graph (quantise/dequantise ops, NHWC input).
    """
    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32))
            n = len(chunk)
            if n == 1:  # exported graphs trace the batch as a dynamic dim >= 2; eval mode makes a copy harmless
                chunk = torch.cat([chunk, chunk])
            if qmodel.layout == "NHWC":
                chunk = chunk.permute(0, 2, 3, 1).contiguous()
            outs.append(qmodel.module(chunk)[:n].float().numpy())
    return np.concatenate(outs)


def export_result(
    result: QatResult, example: torch.Tensor, out_dir: Path, info: SidecarInfo, opset: int = 17
) -> Artifact:
    """Export ``result`` as int8 with its path's exporter: as trained (``qat``) or by the exporter's PTQ."""
    exporter = get_exporter(result.path)
    if isinstance(result.model, QuantizedModel):
        if not isinstance(exporter, QuantizedExporter):
            raise ConfigError(f"the {result.path} exporter cannot export a quantised model; use mode 'ptq'")
        return exporter.export_quantized(result.model, example, out_dir, info, opset)
    return exporter.export(result.model, example, "int8", out_dir, info, result.calibration, opset)
