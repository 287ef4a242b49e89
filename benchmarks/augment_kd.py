"""KD with and without augmentation on the bundled example, over seeds (issue 15).

The bundled teacher is pruned by ``--ratio`` and the student distilled (response KD) with the
``edgekd distill`` job, once with no augmentation (teacher logits cached) and once per augmentation
recipe (teacher run live on every augmented batch), for each seed. Reports val/test accuracy and
wall time per run, and mean ± std per recipe.

Usage:
    python benchmarks/augment_kd.py --seeds 0 1 2 --epochs 1 --train-samples 2048
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "none": {},
    "flip+crop": {"flip": True, "random_resized_crop": 0.7},
    "flip+crop+mixup": {"flip": True, "random_resized_crop": 0.7, "mixup": 0.2},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-samples", type=int, default=2048)
    ap.add_argument("--ratio", type=float, default=0.5)
    ap.add_argument("--recipes", nargs="+", default=list(RECIPES))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "augment_kd.json")
    args = ap.parse_args(argv)

    import torch

    from edgekd.config.build_config import DistillConfig
    from edgekd.distill.distill_job import DistillJob, run_job

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 0))
    rows = []
    for seed in args.seeds:
        for name in args.recipes:
            cfg = DistillConfig(epochs=args.epochs, max_train_samples=args.train_samples, seed=seed,
                                augment=RECIPES[name])  # fmt: skip
            with tempfile.TemporaryDirectory() as tmp:
                started = time.perf_counter()
                record = run_job(DistillJob(cfg, Path(tmp), ratio=args.ratio)).record
                seconds = time.perf_counter() - started
            rows.append({"recipe": name, "seed": seed, "val_accuracy": round(record["best_val_accuracy"], 4),
                         "test_accuracy": round(record["test_accuracy"], 4), "seconds": round(seconds, 1)})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    summary = {}
    for name in args.recipes:
        acc = [r["test_accuracy"] for r in rows if r["recipe"] == name]
        secs = [r["seconds"] for r in rows if r["recipe"] == name]
        summary[name] = {"test_mean": round(statistics.mean(acc), 4),
                         "test_std": round(statistics.stdev(acc), 4) if len(acc) > 1 else 0.0,
                         "seconds_mean": round(statistics.mean(secs), 1)}  # fmt: skip
    result = {
        "benchmark": "augment_kd", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "setup": {"ratio": args.ratio, "epochs": args.epochs, "train_samples": args.train_samples, "loss": "kd"},
        "rows": rows, "summary": summary,
        "note": "times on a shared, loaded 2-core machine; augmented runs run the teacher on every batch",
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
