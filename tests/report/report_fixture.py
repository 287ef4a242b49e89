"""A small schema-1.0 report with a validation section computed from constructed logits (no build runs)."""

from __future__ import annotations

import numpy as np

from edgekd.pipeline.validate_stage import apply_validation
from edgekd.validate.validate_build import ArtifactLogits, ValidationInputs, validate_build

CLASSES = ["T-shirt", "Trouser", "Pullover"]


def _lat(ms: float, stat: str, evidence: str, precision: str, artifact: str | None = None) -> dict:
    e = {"ms": ms, "stat": stat, "evidence": evidence, "runtime": "rt", "precision": precision, "threads": 1}
    return {**e, "artifact": artifact} if artifact else e


def base_report() -> dict:
    """Everything ``edgekd build`` writes before validation, for a 3-class toy build on cortex-a76."""
    name = "student-tflite-int8.tflite"
    stats = {"mean_ms": 2.1, "std_ms": 0.1, "cv": 0.05, "min_ms": 1.9, "max_ms": 2.9, "p50_ms": 2.0,
             "p90_ms": 2.3, "p99_ms": 2.8, "runs": 20}  # fmt: skip
    host = [_lat(stats[f"{s}_ms"], s, "measured-host", "int8", name) for s in ("p50", "p90", "p99")]
    return {
        "schema_version": "1.0", "edgekd_version": "0.1.0", "created": "2026-01-01T00:00:00Z",
        "target": {"name": "cortex-a76", "description": "Pi 5 class board", "arch": "aarch64", "runner": "local",
                   "measured_locally": False},
        "budget_ms": 30.0,
        "budget": {"stat": "p90", "threads": 1, "precision": "int8", "format": "tflite", "max_accuracy_drop": 2},
        "machine": {"platform": "linux", "torch": "2.13.0", "onnxruntime": "1.32.0"},
        "dataset": {"name": "toy", "classes": CLASSES},
        "teacher": {"params": 10_000, "macs": 100_000, "size_bytes": 40_000, "accuracy": 0.9,
                    "latency": [_lat(60.0, "p50", "predicted", "int8"),
                                *[_lat(ms, s, "measured-host", "fp32", "teacher onnx-fp32")
                                  for s, ms in (("p50", 12.0), ("p90", 13.0), ("p99", 15.0))]]},
        "student": {"params": 1_000, "macs": 10_000, "size_bytes": 4_000, "accuracy": 0.88,
                    "latency": [_lat(24.1, "p50", "predicted", "int8"), *host],
                    "prune": {"ratio": 0.5, "importance": "l1", "round_to": 8, "predicted_ms": 24.1,
                              "target_ms": 28.5, "measured_ms": None},
                    "distill": {"loss": "kd", "temperature": 4.0, "alpha": 0.7, "epochs_run": 1,
                                "best_val_accuracy": 0.87}},
        "artifacts": [{"name": name, "path": f"artifacts/{name}", "format": "tflite", "precision": "int8",
                       "sha256": "0" * 64, "size_bytes": 5_000, "primary": True,
                       "parity": {"agreement": 0.99, "max_abs_diff": 0.1, "accuracy": 0.88}, "latency": host,
                       "bench": {"stats": stats, "runtime": "ai-edge-litert"}}],
        "gate": {"passed": True, "rules": [{"name": "latency", "value": 24.1, "limit": 30.0, "passed": True,
                                            "evidence": "predicted", "detail": "tflite int8 p90"}]},
        "lineage": {"cache_hits": [], "computed": []},
        "timings_s": {"total": 1.0},
    }  # fmt: skip


def validated_report(out_dir=None, collapse: bool = False, prune_sweep: dict | None = None) -> dict:
    """:func:`base_report` plus validation; ``collapse`` makes the student lose class 2."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)

    def logits(p_right: np.ndarray, scale: float) -> np.ndarray:
        right = rng.random(len(y)) < p_right
        pred = np.where(right, y, (y + 1) % 3)
        z = rng.normal(0, 0.5, (len(y), 3))
        z[np.arange(len(y)), pred] = z.max(axis=1) + np.where(right, 2.0, 0.5)
        return scale * z

    s_right = np.array([0.9, 0.9, 0.3 if collapse else 0.88])[y]
    s_test = logits(s_right, 3.0)
    corr = {who: {"clean": lg, "blur@1": lg, "blur@2": np.roll(lg, 1, axis=1)}
            for who, lg in (("teacher", logits(np.full(len(y), 0.9), 2.0)), ("student", s_test))}  # fmt: skip
    inp = ValidationInputs(
        class_names=CLASSES, test_labels=y, teacher_test=logits(np.full(len(y), 0.9), 2.0), student_test=s_test,
        val_labels=y, student_val=logits(s_right, 3.0), student_size=1_000, teacher_size=10_000,
        student_ms=24.1, teacher_ms=12.0, artifacts=[ArtifactLogits("student-tflite-int8.tflite", "litert", s_test)],
        corruption_labels=y, corruption_logits=corr, prune_sweep=prune_sweep,
    )  # fmt: skip
    report = base_report()
    if prune_sweep is not None:
        report["prune_sweep"] = prune_sweep
    apply_validation(report, validate_build(inp), out_dir) if out_dir else _merge(report, validate_build(inp))
    return report


def _merge(report: dict, result) -> None:
    report["validation"] = result.section
    report["teacher"].update(result.teacher)
    report["student"].update(result.student)
