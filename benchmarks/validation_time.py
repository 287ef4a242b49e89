"""Time the build's validation stage (slices, calibration, corruption suite, artifacts in their runtimes).

Copies an existing build folder with its stage cache (default ``build/cortex-a76``, as ``make demo``
leaves it), drops the validation cache entries and re-runs ``edgekd build`` with the same options, so
every other stage is a cache hit and ``timings_s.validate`` is the validation cost:

- ``cold``: nothing of validation cached (first build of a teacher);
- ``new_student``: the teacher's corruption logits cached, the student's not (a rebuild after a change
  to pruning or distillation);
- ``cached``: an unchanged re-run.

Usage: python benchmarks/validation_time.py [--build build/cortex-a76] [--budget-ms 30]
Writes benchmarks/results/validation_time.json (machine, versions, date and the load average, since
the figures mean little on a busy machine).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from edgekd.config.build_config import BuildConfig
from edgekd.pipeline.orchestrator import run_build

ROOT = Path(__file__).resolve().parents[1]
VALIDATION_STAGES = ("logits-student-", "corruptions-", "runtime-logits-")


def _drop(stages: Path, prefixes: tuple[str, ...]) -> list[str]:
    dropped = []
    for p in stages.iterdir():
        if p.name.startswith(prefixes):
            shutil.rmtree(p)
            dropped.append(p.name)
    return dropped


def _run(out: Path, target: str, budget_ms: float) -> dict:
    started = time.perf_counter()
    report = run_build(BuildConfig(target=target, budget_ms=budget_ms, out_dir=out)).report
    return {
        "validate_s": report["timings_s"]["validate"],
        "build_s": round(time.perf_counter() - started, 1),
        "computed": report["lineage"]["computed"],
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=ROOT / "build" / "cortex-a76")
    parser.add_argument("--target", default="cortex-a76")
    parser.add_argument("--budget-ms", type=float, default=30.0)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "build"
        shutil.copytree(args.build, out, ignore=shutil.ignore_patterns("report.*"))
        _drop(out / ".stages", VALIDATION_STAGES)
        results["cold"] = _run(out, args.target, args.budget_ms)
        _drop(out / ".stages", ("logits-student-", "corruptions-student-", "runtime-logits-"))
        results["new_student"] = _run(out, args.target, args.budget_ms)
        results["cached"] = _run(out, args.target, args.budget_ms)
    record = {
        "benchmark": "validation stage time, bundled example",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "versions": {p: version(p) for p in ("torch", "onnxruntime", "numpy", "scipy", "edgekd")},
        "target": args.target,
        "budget_ms": args.budget_ms,
        "results": results,
    }
    path = ROOT / "benchmarks" / "results" / "validation_time.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
