"""int8 accuracy after QAT-in-KD vs PTQ after KD, measured on the exported artifacts in their runtimes.

Bundled Fashion-MNIST, bundled teacher, a fixed pruned student (L1, ``--ratio``). The student is first
distilled in float (``--epochs`` epochs of KD). Then, per deploy path:

* ``ptq``: the KD student, int8 by the exporter's post-training quantisation (calibration on
  ``--calibration`` training samples): PT2E for TFLite, NNCF for OpenVINO, onnxruntime static QDQ for ONNX;
* ``qat``: the KD student distilled ``--qat-epochs`` more epoch(s) with fake quantisation in the same loop
  (PT2E for TFLite, NNCF for OpenVINO/ONNX — one NNCF run exported to both), exported as trained;
* ``ptq+``: control for the extra training: the KD student distilled the same extra epoch(s) in float
  with the same schedule, then PTQ.

Accuracy is top-1 on the whole test split, computed from the logits each exported int8 artifact gives in
its runtime (LiteRT interpreter, OpenVINO CPU, onnxruntime), via the exporters' ``load_runtime``; the
fp32 student's PyTorch accuracy is given for reference.

Usage: python benchmarks/qat_vs_ptq.py [--train-samples 2048] [--epochs 1] [--qat-epochs 1] [--threads 1]
Writes benchmarks/results/qat_vs_ptq.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import platform
import tempfile
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from edgekd.config.target_profile import host_cpu_name
from edgekd.core.inference import predict_logits
from edgekd.data.bundled import example_dataset
from edgekd.distill.losses.kd_loss import KDLoss
from edgekd.distill.qat_nncf import nncf_quantized
from edgekd.distill.qat_run import QatResult, QatSettings, export_result, qat_distill
from edgekd.distill.trainer import TrainSettings, train
from edgekd.export.base import SidecarInfo, get_exporter
from edgekd.models.example_weights import TEACHER_CHECKPOINT
from edgekd.models.loading import load_model
from edgekd.prune.pruner import PruneSettings, prune

ROOT = Path(__file__).resolve().parents[1]
FACTORY = "edgekd.models.example_teacher:example_teacher"
log = logging.getLogger("qat_vs_ptq")


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return round(float((logits.argmax(1) == labels).mean()), 4)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*")) if path.is_dir() else path.stat().st_size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-samples", type=int, default=2048)
    ap.add_argument("--val-samples", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--ratio", type=float, default=0.75)
    ap.add_argument("--calibration", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--paths", default="tflite,openvino,onnx")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("nncf").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    paths = args.paths.split(",")
    started = time.perf_counter()
    full = example_dataset()
    data = replace(full, train=full.train.subset(args.train_samples), val=full.val.subset(args.val_samples))
    info = SidecarInfo.from_bundle(data)
    example = data.to_tensor(data.test.x[:4])
    x_test, y_test = data.to_tensor(data.test.x).numpy(), data.test.y

    teacher = load_model(FACTORY, TEACHER_CHECKPOINT)
    soft = predict_logits(teacher, data, data.train)
    student = prune(teacher, example, args.ratio, PruneSettings()).model
    params = sum(p.numel() for p in student.parameters())
    kd = KDLoss(4.0, 0.7)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    base = TrainSettings(epochs=args.epochs, lr=1e-3, threads=args.threads, eval_initial=False)
    train(student, data, base, kd, soft, description="KD (float)")
    seconds["kd_float"] = round(time.perf_counter() - t, 1)
    extra = TrainSettings(epochs=args.qat_epochs, lr=2e-4, warmup_fraction=0.1, threads=args.threads)
    t = time.perf_counter()
    longer = copy.deepcopy(student)
    train(longer, data, replace(extra, eval_initial=True), kd, soft, description="KD (float, control)")
    seconds["kd_float_control"] = round(time.perf_counter() - t, 1)

    rows: list[dict] = []
    fp32 = {"student": _accuracy(predict_logits(student, data, data.test), y_test)}
    fp32["student_control"] = _accuracy(predict_logits(longer, data, data.test), y_test)
    fp32["teacher"] = _accuracy(predict_logits(teacher, data, data.test), y_test)
    qat_settings = QatSettings(mode="qat", train=extra, calibration_samples=args.calibration)
    ptq_settings = QatSettings(mode="ptq", train=replace(extra, epochs=0), calibration_samples=args.calibration)
    nncf_result: QatResult | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            variants: list[tuple[str, QatResult]] = []
            variants.append(("ptq", qat_distill(student, soft, data, path, ptq_settings)))
            variants.append(("ptq+", qat_distill(longer, soft, data, path, ptq_settings)))
            t = time.perf_counter()
            if path == "onnx" and nncf_result is not None:  # the NNCF QAT model serves OpenVINO and ONNX
                qat = replace(nncf_result, path="onnx", model=nncf_quantized(nncf_result.model.module, "onnx"))
            else:
                qat = qat_distill(student, soft, data, path, qat_settings)
                if path == "openvino":
                    nncf_result = qat
                seconds[f"qat_{path}"] = round(time.perf_counter() - t, 1)
            variants.append(("qat", qat))
            exporter = get_exporter(path)
            for name, result in variants:
                t = time.perf_counter()
                art = export_result(result, example, Path(tmp) / f"{path}-{name}", info)
                export_s = time.perf_counter() - t
                logits = exporter.load_runtime(art, threads=args.threads)(x_test)
                rows.append({
                    "path": path, "variant": name,
                    "method": art.meta.get("quantization", f"ptq-{path}"),
                    "int8_test_accuracy_in_runtime": _accuracy(logits, y_test),
                    "torch_val_accuracy": round(result.val_accuracy, 4),
                    "export_seconds": round(export_s, 1),
                    "artifact_bytes": _size(Path(art.path)),
                })  # fmt: skip
                log.info("%s", rows[-1])
    result = {
        "what": "int8 test accuracy of exported artifacts run in their runtimes: QAT-in-KD vs PTQ after KD",
        "command": "python benchmarks/qat_vs_ptq.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpu": host_cpu_name(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "threads": args.threads,
            "note": "2 shared cores, heavily loaded by other jobs during the run",
        },
        "versions": {
            p: version(p)
            for p in ("edgekd", "torch", "torchao", "litert-torch", "ai-edge-litert", "nncf", "openvino", "onnxruntime")
        },
        "setup": {
            "data": f"bundled Fashion-MNIST subset: {len(data.train)} train, {len(data.val)} val (early stopping), "
            f"{len(data.test)} test",
            "teacher": "bundled example teacher (ResidualCNN 96/192/384)",
            "student": f"teacher L1-pruned at ratio {args.ratio}, {params} parameters",
            "kd": f"{args.epochs} epoch(s) float KD (T=4, alpha=0.7, lr 1e-3) before any quantisation",
            "qat": f"{args.qat_epochs} more epoch(s) KD with fake quantisation (lr 2e-4)",
            "ptq_plus": f"{args.qat_epochs} more epoch(s) KD in float with the QAT schedule, then PTQ",
            "calibration_samples": args.calibration,
        },
        "fp32_torch_test_accuracy": fp32,
        "rows": rows,
        "seconds": {**seconds, "total": round(time.perf_counter() - started, 1)},
    }
    out = ROOT / "benchmarks" / "results" / "qat_vs_ptq.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(_markdown(result))
    print(_markdown(result))


def _markdown(r: dict) -> str:
    lines = [
        "# QAT-in-KD vs PTQ after KD (int8 accuracy measured in the runtimes)",
        "",
        f"{r['date']} — {r['machine']['cpu']}, {r['machine']['threads']} thread(s); `{r['command']}`",
        "",
        *(f"- {k}: {v}" for k, v in r["setup"].items()),
        "",
        f"fp32 PyTorch test accuracy: {r['fp32_torch_test_accuracy']}",
        "",
        "| path | variant | method | int8 test acc (runtime) | torch val acc | export s |",
        "|---|---|---|---|---|---|",
        *(
            f"| {x['path']} | {x['variant']} | {x['method']} | {x['int8_test_accuracy_in_runtime']:.4f} "
            f"| {x['torch_val_accuracy']:.4f} | {x['export_seconds']} |"
            for x in r["rows"]
        ),
        "",
        f"seconds: {r['seconds']}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
