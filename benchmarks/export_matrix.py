"""Export the built student in every format x precision, check parity on the whole test split, time each.

Shows what issue 5 asks of the bundled example: every int8 artifact (every registered exporter: ONNX,
TFLite, OpenVINO, ExecuTorch) loses at most 1 point of test accuracy against the fp32 PyTorch student,
measured in its own runtime; and the host latency of each artifact at the same threads, int8 vs fp32
per runtime, with the reason when int8 is not faster.

Latency is measured in ``--rounds`` interleaved rounds (each round benchmarks every artifact once, in
a fresh process, ``--runs`` inferences), so a machine whose load changes during the run slows all
artifacts alike; each artifact's p50 is the median of its per-round p50s, and ``ratio_to_onnx_fp32``
(per round, then the median) is the figure to compare across loaded machines.

Usage (after ``make demo``, which writes build/cortex-a76/artifacts/student.pt):
    .venv/bin/python benchmarks/export_matrix.py [--student PATH] [--threads 1] [--runs 200] [--rounds 3]
Writes benchmarks/results/export_matrix.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekd import __version__  # noqa: E402
from edgekd.bench.local_runner import LocalRunner  # noqa: E402
from edgekd.bench.precision_compare import compare_precisions  # noqa: E402
from edgekd.bench.runner_base import BenchSettings  # noqa: E402
from edgekd.bench.stats import summarize  # noqa: E402
from edgekd.config.target_profile import host_cpu_name  # noqa: E402
from edgekd.core.host import cpu_flags  # noqa: E402
from edgekd.core.inference import accuracy, predict_logits  # noqa: E402
from edgekd.core.registry import EXPORTERS  # noqa: E402
from edgekd.data.bundled import example_dataset  # noqa: E402
from edgekd.export import check_parity, get_exporter  # noqa: E402
from edgekd.export.base import SidecarInfo  # noqa: E402
from edgekd.export.standalone import load_checkpoint  # noqa: E402

_ORDER = ("onnx", "tflite", "openvino", "executorch")  # the first is the latency ratios' reference
FORMATS = tuple(sorted(EXPORTERS.names(), key=lambda f: (_ORDER.index(f) if f in _ORDER else len(_ORDER), f)))
PRECISIONS = ("fp32", "int8")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def v(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    return {"edgekd": __version__, "torch": torch.__version__, "onnxruntime": v("onnxruntime"),
            "openvino": v("openvino"), "ai-edge-litert": v("ai-edge-litert"), "executorch": v("executorch"),
            "python": platform.python_version()}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--student", type=Path, default=ROOT / "build/cortex-a76/artifacts/student.pt")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved benchmark rounds over all artifacts")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/export_matrix.json")
    args = ap.parse_args()
    if not args.student.is_file():
        print(f"error: {args.student} not found; run `make demo` first or pass --student", file=sys.stderr)
        return 2

    load_start = os.getloadavg()[0]
    data = example_dataset()
    model = load_checkpoint(args.student, None).eval()
    reference = predict_logits(model, data, data.test)
    fp32_acc = accuracy(reference, data.test.y)
    x = data.to_tensor(data.test.x).numpy()
    calib = data.to_tensor(data.train.x[:256]).numpy()
    info = SidecarInfo(data.class_names, data.mean, data.std, data.input_shape)
    settings = BenchSettings(threads=args.threads, warmup=20, runs=args.runs)
    rows, paths = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            for precision in PRECISIONS:
                exporter = get_exporter(fmt)
                t0 = time.perf_counter()
                art = exporter.export(model, data.to_tensor(data.test.x[:1]), precision, Path(tmp) / fmt, info,
                                      calib if precision == "int8" else None)  # fmt: skip
                export_s = time.perf_counter() - t0
                parity = check_parity(exporter.load_runtime(art, threads=2), x, reference, data.test.y)
                row = {"format": fmt, "precision": precision, "size_bytes": art.size_bytes,
                       "export_s": round(export_s, 1), "accuracy": parity.accuracy,
                       "accuracy_drop_pt": round(100 * (fp32_acc - parity.accuracy), 2),
                       "agreement": parity.agreement, "max_abs_diff": parity.max_abs_diff}  # fmt: skip
                rows.append(row)
                paths.append(Path(art.path))
                print(f"{fmt:10s} {precision:5s} acc {parity.accuracy:.4f} ({row['accuracy_drop_pt']:+.2f} pt drop) "
                      f"agree {parity.agreement:.4f} maxdiff {parity.max_abs_diff:.3g} "
                      f"{art.size_bytes / 1e6:.2f} MB, export {export_s:.0f} s", flush=True)  # fmt: skip
        per_round: list[list[float]] = [[] for _ in rows]
        cvs: list[list[float]] = [[] for _ in rows]
        with LocalRunner() as runner:
            for r in range(args.rounds):  # interleaved: every artifact once per round
                for i, path in enumerate(paths):
                    result = runner.run(runner.push(path), settings)
                    stats = summarize(result.samples_ms, result.init_ms)
                    per_round[i].append(stats.p50_ms)
                    cvs[i].append(stats.cv)
                    rows[i]["runtime"], rows[i]["evidence"] = result.runtime, result.evidence
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{p[-1]:.3f}" for p in per_round), flush=True)
    base = per_round[0]  # onnx fp32
    for row, p50s, cv in zip(rows, per_round, cvs, strict=True):
        row["p50_ms"] = float(np.median(p50s))
        row["p50_ms_per_round"] = [round(v, 4) for v in p50s]
        row["cv_max"] = max(cv)
        row["ratio_to_onnx_fp32"] = round(float(np.median([a / b for a, b in zip(p50s, base, strict=True)])), 3)
        print(f"{row['format']:10s} {row['precision']:5s} p50 {row['p50_ms']:.3f} ms "
              f"(x{row['ratio_to_onnx_fp32']:.2f} of onnx fp32) {row['runtime']}")  # fmt: skip
    flags = cpu_flags()
    comparison = compare_precisions([{**r, "ms": r["p50_ms"]} for r in rows], flags)
    for c in comparison:
        print(c["note"])
    result = {
        "what": "every format x precision of the built student: parity on the whole test split, host latency",
        "command": "python benchmarks/export_matrix.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpu": host_cpu_name(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "int8_flags": sorted(f for f in flags if "vnni" in f or f in {"avx2", "amx_int8", "asimddp"}),
            "load_avg_1m_start": load_start,
            "load_avg_1m_end": os.getloadavg()[0],
        },
        "versions": _versions(),
        "student": str(args.student),
        "test_samples": len(data.test),
        "threads": args.threads,
        "runs": args.runs,
        "rounds": args.rounds,
        "note": "latency: median over interleaved rounds; compare ratio_to_onnx_fp32 when the machine was loaded "
        "(see machine.load_avg_1m_start/end)",
        "fp32_pytorch_accuracy": fp32_acc,
        "artifacts": rows,
        "int8_vs_fp32": comparison,
        "max_int8_drop_pt": max(r["accuracy_drop_pt"] for r in rows if r["precision"] == "int8"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}; worst int8 drop {result['max_int8_drop_pt']:.2f} pt")
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    raise SystemExit(main())
