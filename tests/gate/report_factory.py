"""Small hand-written report.json dicts (schema 1.0) for gate tests; no build runs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from edgekd.config.targets import load_target

CLASSES = ["T-shirt", "Trouser", "Pullover"]


def lat(ms: float, stat: str, evidence: str, precision: str, artifact: str | None = None) -> dict:
    """One latency entry as :func:`edgekd.report.report_data.latency_entry` writes it."""
    entry = {"ms": ms, "stat": stat, "evidence": evidence, "runtime": "rt", "precision": precision, "threads": 1}
    if artifact is not None:
        entry["artifact"] = artifact
    return entry


def measured(evidence: str, p50: float, p90: float, p99: float, fmt: str, precision: str) -> list[dict]:
    """p50/p90/p99 entries of one artifact at one evidence level."""
    name = f"student-{fmt}-{precision}.x"
    return [lat(ms, s, evidence, precision, name) for s, ms in (("p50", p50), ("p90", p90), ("p99", p99))]


def make_report(
    target: str = "x86-64-host",
    *,
    host: tuple[float, float, float] | None = (4.0, 5.0, 6.0),
    device: tuple[float, float, float] | None = None,
    emulated: tuple[float, float, float] | None = None,
    predicted: float | None = 7.0,
    budget_ms: float | None = None,
    teacher_acc: float = 0.90,
    student_acc: float = 0.89,
    deployed_acc: float = 0.888,
    agreement: float = 0.995,
    size_bytes: int = 1_000_000,
    **extra: object,
) -> dict:
    """A schema-1.0 report for ``target`` whose deployed artifact is the profile's primary export.

    Latency figures are given as (p50, p90, p99) per evidence level; ``extra`` keys are merged into
    the top level (``student``/``teacher`` dicts are updated, not replaced).
    """
    p = load_target(target)
    fmt, precision = p.primary.format, p.primary.precision
    latency = [lat(predicted, "p50", "predicted", precision)] if predicted is not None else []
    for evidence, figures in (("measured-device", device), ("measured-host", host), ("measured-emulated", emulated)):
        if figures is not None:
            latency += measured(evidence, *figures, fmt=fmt, precision=precision)
    artifacts = [
        {"name": f"student-{e.format}-{e.precision}.x", "path": f"artifacts/student-{e.format}-{e.precision}.x",
         "format": e.format, "precision": e.precision, "sha256": "0" * 64,
         "size_bytes": size_bytes if i == 0 else 2 * size_bytes, "primary": i == 0,
         "parity": {"agreement": agreement, "max_abs_diff": 1e-5, "mean_abs_diff": 1e-6,
                    "accuracy": deployed_acc if i == 0 else student_acc, "reference_accuracy": student_acc,
                    "samples": 100}, "latency": [], "bench": {}}
        for i, e in enumerate(p.exports)
    ]  # fmt: skip
    report = {
        "schema_version": "1.0", "edgekd_version": "0.1.0", "created": "2026-01-01T00:00:00Z", "summary": "-",
        "target": {"name": p.name, "description": p.description, "arch": p.arch, "runner": p.runner.kind,
                   "measured_locally": p.measured_locally},
        "budget_ms": budget_ms or p.budget.latency_ms,
        "budget": {"stat": p.budget.stat, "threads": 1, "precision": precision, "format": fmt,
                   "max_accuracy_drop": p.budget.max_accuracy_drop},
        "machine": {}, "dataset": {"name": "fixture", "classes": CLASSES},
        "teacher": {"params": 1000, "macs": 10_000, "size_bytes": 8000, "accuracy": teacher_acc, "latency": []},
        "student": {"params": 500, "macs": 5000, "size_bytes": 4000, "accuracy": student_acc, "latency": latency},
        "artifacts": artifacts,
        "gate": {"passed": True, "rules": []}, "lineage": {}, "timings_s": {},
    }  # fmt: skip
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            report[key].update(copy.deepcopy(value))
        else:
            report[key] = copy.deepcopy(value)
    return report


def write_report(directory: Path, report: dict, name: str = "report.json") -> Path:
    """Write ``report`` as JSON under ``directory``; returns the path."""
    path = Path(directory) / name
    path.write_text(json.dumps(report))
    return path
