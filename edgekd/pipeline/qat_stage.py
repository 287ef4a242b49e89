"""QAT in the build: with ``quantization.mode: qat`` each int8 artifact is the model trained for it.

:func:`edgekd.pipeline.stages.export_stage` makes int8 by the exporter's post-training quantisation
(``ptq``, the default). In ``qat`` mode the int8 exports of the profile come from :class:`QatStage`
instead: the distilled student is distilled further from the same teacher logits (the build's KD
temperature, alpha, batch size, sample limit and seed) with fake quantisation on the export's deploy
path — PT2E for ``tflite`` and ``executorch``, NNCF for ``openvino``/``onnx`` — and exported as trained
(:func:`edgekd.distill.qat_run.export_result`). One NNCF run serves both an ``openvino`` and an
``onnx`` export of the same build.

Each export is cached like the other stages and returns the record :func:`export_stage` returns
(``file``, ``format``, ``precision``, ``parity``, ``cache_path``) plus ``quantization``: ``{mode: qat,
method, val_accuracy, epochs, seconds, ..., parity_fp32}``. ``parity`` compares the artifact in its
runtime with the model it was exported from — the quantised model's own PyTorch logits — so the gate's
parity rule checks the exporter, as for PTQ artifacts; ``parity_fp32`` compares it with the fp32
student, which QAT has trained further (one QAT epoch changed ~8 % of the top-1 answers in a demo build).

Example:
    >>> qat = QatStage(ctx, student, student_key, s_test)  # doctest: +SKIP
    >>> record = qat.export("tflite") if qat.applies("int8") else export_stage(...)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.config.build_config import BuildConfig
from edgekd.core.inference import run_chunked
from edgekd.core.stage import StageSpec
from edgekd.distill.qat_run import QatResult, QatSettings
from edgekd.distill.trainer import TrainSettings
from edgekd.pipeline.stages import StageContext, teacher_logits

log = logging.getLogger(__name__)

FAMILIES = {"tflite": "pt2e", "executorch": "pt2e-xnnpack", "openvino": "nncf", "onnx": "nncf"}
"""Deploy path -> the fake quantisation trained for it (one trained model per family and build)."""


def qat_settings(config: BuildConfig) -> QatSettings:
    """The :class:`QatSettings` of a build config (``quantization:`` plus the build's KD options)."""
    q, d = config.quantization, config.distill
    train = TrainSettings(
        epochs=q.epochs, batch_size=d.batch_size, lr=q.lr, weight_decay=d.weight_decay, warmup_fraction=0.1,
        seed=d.seed, augment=False, max_train_samples=d.max_train_samples, patience=d.patience,
    )  # fmt: skip
    calibration = q.calibration_samples or config.export.calibration_samples
    return QatSettings(
        mode=q.mode, train=train, temperature=d.temperature, alpha=d.alpha, calibration_samples=calibration,
        overflow_fix=q.overflow_fix, nncf_kernels=q.nncf_kernels,
    )  # fmt: skip


def quantization_record(config: BuildConfig, record: dict) -> dict | None:
    """How an export's int8 came about, for the report: its QAT record, PTQ's calibration, or None for fp32."""
    if record.get("quantization") is not None:
        return record["quantization"]
    if record["precision"] != "int8":
        return None
    return {
        "mode": "ptq",
        "method": f"ptq-{record['format']}",
        "calibration_samples": config.export.calibration_samples,
    }


class QatStage:
    """The build's QAT exports: one training run per fake-quantisation family, each export cached.

    Args:
        ctx: the build's stage context.
        student: the distilled float student (left unchanged).
        student_key: sha256 of the student's file (part of every cache key).
        reference: the student's PyTorch logits on the whole test split (fp32 parity reference).
    """

    def __init__(self, ctx: StageContext, student: nn.Module, student_key: str, reference: np.ndarray) -> None:
        self.ctx = ctx
        self.student = student
        self.student_key = student_key
        self.reference = reference
        self.settings = qat_settings(ctx.inputs.config)
        self._trained: dict[str, QatResult] = {}

    def applies(self, precision: str) -> bool:
        """Whether an export of ``precision`` comes from QAT in this build."""
        return self.settings.mode == "qat" and precision == "int8"

    def _key_inputs(self, fmt: str) -> dict:
        inp, cfg = self.ctx.inputs, self.ctx.inputs.config
        return {
            "model": self.student_key,
            "teacher": inp.teacher_key,
            "data": self.ctx.data_key,
            "format": fmt,
            "family": FAMILIES.get(fmt, fmt),
            "quantization": cfg.quantization.model_dump(mode="json"),
            "settings": {
                **self.settings.train.fingerprint(),
                "temperature": self.settings.temperature,
                "alpha": self.settings.alpha,
                "calibration": self.settings.calibration_samples,
            },
            "opset": inp.profile.onnx_opset,
            "parity_samples": cfg.export.parity_samples,  # not all of `export`: arm_parity_samples must not retrain
        }

    def _train(self, fmt: str) -> QatResult:
        from edgekd.distill.qat_nncf import nncf_quantized
        from edgekd.distill.qat_run import qat_distill

        family = FAMILIES.get(fmt, fmt)
        done = self._trained.get(family)
        if done is not None and done.path != fmt:  # the other NNCF format: same trained model, its own exporter
            return replace(done, path=fmt, model=nncf_quantized(done.model.module, fmt))
        if done is None:
            inp = self.ctx.inputs
            soft = teacher_logits(self.ctx, "train", self.settings.train.max_train_samples)
            done = qat_distill(self.student, soft, inp.data, fmt, self.settings, self.ctx.progress)
            self._trained[family] = done
        return done

    def export(self, fmt: str) -> dict:
        """The int8 ``fmt`` artifact trained with fake quantisation, as a cached export record."""
        from edgekd.distill.qat_run import export_result, quantized_logits
        from edgekd.export.base import SidecarInfo, get_exporter
        from edgekd.export.parity import compare_logits

        inp, cfg = self.ctx.inputs, self.ctx.inputs.config
        stage = f"qat-{fmt}-int8"
        key_in = self._key_inputs(fmt)

        def produce(tmp: Path) -> None:
            result = self._train(fmt)
            data = inp.data
            idx = data.test.subset_indices(cfg.export.parity_samples)
            test = data.test.take(idx)
            x = data.to_tensor(test.x).numpy()
            with self.ctx.progress.task(f"export {fmt} int8 (QAT)", total=None):
                fake_quant = quantized_logits(result.model, x)  # before export: exporters may trace the module
                art = export_result(result, self.ctx.example, tmp, SidecarInfo.from_bundle(data),
                                    inp.profile.onnx_opset)  # fmt: skip
            with self.ctx.progress.task(f"parity {fmt} int8 QAT ({len(test)} images)", total=None):
                run = get_exporter(fmt).load_runtime(art, threads=max(1, torch.get_num_threads()))
                logits = run_chunked(run, x)
                fp32 = compare_logits(logits, self.reference[idx], test.y)
                fq = compare_logits(logits, fake_quant, test.y)
            described = self._describe(result, art.meta.get("quantization"), fp32.to_json())
            record = {"file": Path(art.path).name, "format": fmt, "precision": "int8", "parity": fq.to_json(),
                      "quantization": described}  # fmt: skip
            (tmp / "export.json").write_text(json.dumps(record, indent=2))

        hit = self.ctx.runner.run(StageSpec(stage, key_in, produce))
        record = json.loads((hit / "export.json").read_text())
        record["cache_path"] = str(hit / record["file"])
        return record

    def _describe(self, result: QatResult, method: object, parity_fp32: dict) -> dict:
        run, s = result.train, self.settings
        described = {
            "mode": "qat", "method": method or f"qat-{FAMILIES.get(result.path, result.path)}",
            "val_accuracy": result.val_accuracy,
            "initial_val_accuracy": run.initial_val_accuracy if run else None,
            "epochs": s.train.epochs, "epochs_run": run.epochs_run if run else 0, "lr": s.train.lr,
            "seconds": round(result.seconds, 2), "calibration_samples": s.calibration_samples,
            "temperature": s.temperature, "alpha": s.alpha, "parity_fp32": parity_fp32,
        }  # fmt: skip
        if FAMILIES.get(result.path) == "nncf":
            described |= {"overflow_fix": s.overflow_fix, "nncf_kernels": s.nncf_kernels}
        return described
