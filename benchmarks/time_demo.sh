#!/usr/bin/env bash
# Times the README's two commands on a fresh clone of this repository:
#   set-up (make setup: venv + every package), the demo build (make demo) and, with --tests, make test.
# Writes benchmarks/results/demo_timing.json (machine, versions, date) in the repository it was run from.
# Usage: benchmarks/time_demo.sh [--tests]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/edgekd"
cd "$work/edgekd"
now() { date +%s.%N; }
t0=$(now); make setup > setup.log 2>&1; t1=$(now)
set +e
make demo > demo.log 2>&1; demo_code=$?
t2=$(now)
test_code=null; t3=$t2
if [ "${1:-}" = "--tests" ]; then make test > test.log 2>&1; test_code=$?; t3=$(now); fi
set -e
tail -n 3 demo.log
[ "$test_code" = null ] || tail -n 3 test.log
.venv/bin/python - "$t0" "$t1" "$t2" "$t3" "$demo_code" "$test_code" "$repo/benchmarks/results/demo_timing.json" <<'PY'
import json, platform, subprocess, sys, time
from importlib.metadata import version
t0, t1, t2, t3 = map(float, sys.argv[1:5])
demo_code, test_code, out = int(sys.argv[5]), sys.argv[6], sys.argv[7]
report = json.load(open("build/cortex-a76/report.json"))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
result = {
    "what": "README quick start on a fresh clone: make setup, make demo (build cortex-a76 at 30 ms), make test",
    "command": "benchmarks/time_demo.sh" + (" --tests" if test_code != "null" else ""),
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "machine": {"cpu": cpu, "cores": len(__import__("os").sched_getaffinity(0)), "platform": platform.platform(),
                "python": platform.python_version()},
    "versions": {p: version(p) for p in ("edgekd", "torch", "torch-pruning", "onnxruntime", "openvino", "nncf",
                                           "litert-torch", "ai-edge-litert")},
    "setup_seconds": round(t1 - t0, 1),
    "demo_build_seconds": round(t2 - t1, 1),
    "demo_exit_code": demo_code,
    "demo_stage_seconds": report.get("timings_s"),
    "demo_summary": report.get("summary"),
    "test_seconds": round(t3 - t2, 1) if test_code != "null" else None,
    "test_exit_code": None if test_code == "null" else int(test_code),
    "note": "pip reads this machine's local package mirror, so set-up on a machine that downloads is slower",
}
json.dump(result, open(out, "w"), indent=2)
print(json.dumps(result, indent=2))
PY
