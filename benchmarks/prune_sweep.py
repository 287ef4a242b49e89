"""The capacity sweep on the bundled example: accuracy vs latency, Pareto front and the cliff verdict.

Runs ``edgekd prune --sweep`` on the bundled teacher and data for a target (default x86-64-host, so
every point is also measured as deployed) and stores its ``sweep.json`` with machine, versions,
date and wall time in benchmarks/results/prune_sweep_<target>.json; the printed table goes to stdout.

Usage: python benchmarks/prune_sweep.py [--target x86-64-host] [extra edgekd prune options]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="x86-64-host")
    args, extra = ap.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "edgekd", "prune", "--target", args.target, "--sweep", "--out", tmp,
               "--no-progress", *extra]  # fmt: skip
        load_before, t0 = os.getloadavg(), time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        print(proc.stdout, proc.stderr, sep="")
        if proc.returncode != 0:
            sys.exit(proc.returncode)
        sweep = json.loads((Path(tmp) / "sweep.json").read_text())
    result = {
        "what": f"edgekd prune --sweep on the bundled example for {args.target}",
        "command": "python benchmarks/prune_sweep.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpu": host_cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": {p: version(p) for p in ("edgekd", "torch", "torch-pruning", "onnxruntime")},
        "wall_seconds": round(seconds, 1),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "table": proc.stdout.strip().splitlines()[:-1],
        "sweep": sweep,
    }
    out = ROOT / "benchmarks" / "results" / f"prune_sweep_{args.target}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
