"""Prune to three host budgets and check the measured latency lands in [0.8, 1.0] x budget.

Runs ``edgekd build --target x86-64-host --budget-ms B`` on the bundled example for three budgets
between the teacher's measured host latency and a quarter of it, and records, per budget, the
deployed artifact's measured p50 and whether it lies in [0.8 B, B], the pruning plan (uniform or
latency-aware per-layer, with the calibration KL of each), the build's wall time and the load average.

Usage: python benchmarks/host_budgets.py [--epochs 1] [--max-train-samples N]
(training length does not change the latency; shorter runs only lower the student's accuracy).
Writes benchmarks/results/host_budgets.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from edgekd.config.target_profile import host_cpu_name

ROOT = Path(__file__).resolve().parents[1]


def build(budget: float, out: Path, extra: list[str]) -> dict:
    cmd = [sys.executable, "-m", "edgekd", "build", "--target", "x86-64-host", "--budget-ms", f"{budget:.3f}",
           "--out", str(out), "--no-progress", *extra]  # fmt: skip
    load_before, started = os.getloadavg(), time.time()
    code = subprocess.run(cmd, cwd=ROOT, check=False).returncode
    report = json.loads((out / "report.json").read_text())
    return {"exit_code": code, "report": report, "seconds": round(time.time() - started, 1),
            "load_before": load_before, "load_after": os.getloadavg()}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", default="1")
    ap.add_argument("--max-train-samples", default=None)
    args = ap.parse_args()
    extra = ["--epochs", args.epochs] + (
        ["--max-train-samples", args.max_train_samples] if args.max_train_samples else []
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        first = build(1000.0, Path(tmp) / "teacher", extra)  # generous: nothing pruned, teacher measured
        rounds = first["report"]["student"]["prune"]["measure_rounds"]
        teacher_ms = rounds[0]["measured_ms"]
        for fraction in (0.75, 0.5, 0.3):
            budget = teacher_ms * fraction
            run = build(budget, Path(tmp) / f"b{fraction}", extra)
            r = run["report"]
            primary = next(a for a in r["artifacts"] if a["primary"])
            measured = next(e["ms"] for e in primary["latency"] if e["stat"] == "p50")
            prune = r["student"]["prune"]
            refinement = prune.get("refinement") or {}
            rows.append({
                "budget_ms": round(budget, 3), "fraction_of_teacher": fraction, "measured_p50_ms": measured,
                "ratio_to_budget": round(measured / budget, 3), "within_0.8_1.0": 0.8 <= measured / budget <= 1.0,
                "prune_ratio": prune["ratio"], "uniform_ratio": prune.get("uniform_ratio"),
                "plan": refinement.get("chosen", "uniform"), "per_layer_kept": refinement.get("kept"),
                "calibration_kl": refinement.get("calibration_kl"),
                "uniform_calibration_kl": refinement.get("uniform_calibration_kl"),
                "rounds": prune["measure_rounds"], "refine_rounds": refinement.get("confirm_rounds", []),
                "student_accuracy": r["student"]["accuracy"], "exit_code": run["exit_code"],
                "seconds": run["seconds"], "loadavg_before": run["load_before"], "loadavg_after": run["load_after"],
            })  # fmt: skip
    result = {
        "what": "x86-64-host builds at three budgets: measured p50 of the deployed artifact vs the budget",
        "command": "python benchmarks/host_budgets.py " + " ".join(extra),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpu": host_cpu_name(), "platform": platform.platform(), "python": platform.python_version()},
        "versions": {p: version(p) for p in ("edgekd", "torch", "torch-pruning", "onnxruntime")},
        "teacher_measured_p50_ms": teacher_ms,
        "runs": rows,
    }
    out = ROOT / "benchmarks" / "results" / "host_budgets.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    for row in rows:
        print(f"budget {row['budget_ms']:.2f} ms -> measured {row['measured_p50_ms']:.2f} ms "
              f"({row['ratio_to_budget']:.2f} x budget) {'OK' if row['within_0.8_1.0'] else 'OUTSIDE'}")  # fmt: skip


if __name__ == "__main__":
    main()
