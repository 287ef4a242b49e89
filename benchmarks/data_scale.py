"""Memory and throughput of distillation from an image folder as the folder grows (issue 15).

Generates class folders of 224-px JPEGs (10 classes, sizes 224-320 px so every image is resized and
centre-cropped), then in a fresh process per folder: loads it lazily (``PreprocessConfig(input_size=224,
preset="imagenet")``), and runs ``--steps`` KD training steps of a small 3-channel student against a
live small teacher through :func:`edgekd.data.loader.batch_loader` with ``--workers`` workers.

Reports per folder: load time (headers + digest), peak RSS of the process and of its loader workers,
images/s through the training loop, and the share of loop time spent waiting for the loader.

Goals (issue 15): peak RSS grows < 25 % from 2,000 to 20,000 images and stays < 3 GiB; loader wait
< 10 % of step time with 2 workers.

Usage:
    python benchmarks/data_scale.py --images 2000 20000 --steps 40 --workers 2
    python benchmarks/data_scale.py --images 200 400 --steps 5          # a quick smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10
NOTE = (
    "compared totals = process peak RSS + the largest loader worker's peak RSS (worker RSS includes pages "
    "shared copy-on-write with the parent, so this overstates private memory; a second worker is not added). "
    "Only --steps KD steps are run (not a whole epoch); images/s is model compute of a 224-px ResidualCNN "
    "teacher/student on a shared 2-core machine, not a loader limit"
)


def generate(folder: Path, n: int, seed: int = 0) -> Path:
    """``folder/train/c<k>/*.jpg``: n JPEGs, 224-320 px per side, class-dependent colour (written once)."""
    from PIL import Image

    done = folder / ".complete"
    if done.exists():
        return folder
    rng = np.random.default_rng(seed)
    colours = rng.integers(40, 215, (CLASSES, 3))
    for i in range(n):
        c = i % CLASSES
        d = folder / "train" / f"c{c}"
        d.mkdir(parents=True, exist_ok=True)
        w, h = (int(v) for v in rng.integers(224, 321, 2))
        base = np.clip(colours[c] + rng.normal(0, 25, (h // 8, w // 8, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(base).resize((w, h)).save(d / f"{i:06d}.jpg", quality=85)
    done.write_text(str(n))
    return folder


def child(folder: Path, steps: int, workers: int, batch: int) -> dict:
    """One measurement in this (fresh) process."""
    import torch
    import torch.nn.functional as F

    from edgekd.config.preprocess import PreprocessConfig
    from edgekd.data.dataset_files import load_dataset
    from edgekd.data.loader import batch_loader
    from edgekd.models.example_teacher import ResidualCNN

    torch.set_num_threads(max(1, (os.cpu_count() or 2) - workers))
    started = time.perf_counter()
    data = load_dataset(folder, PreprocessConfig(input_size=224, preset="imagenet"))
    load_s = time.perf_counter() - started
    torch.manual_seed(0)
    teacher = ResidualCNN((16, 32), 1, in_channels=3, num_classes=data.num_classes).eval()
    student = ResidualCNN((8, 16), 1, in_channels=3, num_classes=data.num_classes)
    opt = torch.optim.AdamW(student.parameters(), 1e-3)
    loader = iter(batch_loader(data, data.train, batch, shuffle=True, seed=0, workers=workers))
    waited, images = 0.0, 0
    loop_start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        item = next(loader, None)
        waited += time.perf_counter() - t0
        if item is None:
            break
        x = item[0]
        with torch.no_grad():
            t = teacher(x)
        loss = F.kl_div(F.log_softmax(student(x) / 4, 1), F.softmax(t / 4, 1), reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        opt.step()
        images += len(x)
    loop_s = time.perf_counter() - loop_start
    del loader
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "images_in_folder": len(data.train) + len(data.val) + len(data.test),
        "load_s": round(load_s, 2), "steps": steps, "batch": batch, "workers": workers,
        "images_per_s": round(images / loop_s, 1), "loader_wait_share": round(waited / loop_s, 4),
        "peak_rss_mib": round(self_kb / 1024, 1), "peak_worker_rss_mib": round(children_kb / 1024, 1),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, nargs="+", default=[2000, 20000])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/edgekd-data-scale"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "data_scale.json")
    ap.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(child(args.child, args.steps, args.workers, args.batch)))
        return 0
    import torch
    from PIL import __version__ as pillow

    rows = []
    for n in args.images:
        t0 = time.perf_counter()
        folder = generate(args.scratch / str(n), n)
        print(f"{n} images ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, __file__, "--child", str(folder), "--steps", str(args.steps),
                              "--workers", str(args.workers), "--batch", str(args.batch)],
                             capture_output=True, text=True, env=env, check=True)  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    small, large = rows[0], rows[-1]
    total = [r["peak_rss_mib"] + r["peak_worker_rss_mib"] for r in rows]
    result = {
        "benchmark": "data_scale", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor(),
                    "load_average_at_end": os.getloadavg()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "pillow": pillow},
        "rows": rows,
        "peak_rss_growth": round(total[-1] / total[0] - 1, 4) if len(rows) > 1 else None,
        "goals": {"rss_growth_below_25pct": total[-1] / total[0] < 1.25 if len(rows) > 1 else None,
                  "rss_below_3GiB": max(total) < 3 * 1024,
                  "loader_wait_below_10pct": all(r["loader_wait_share"] < 0.10 for r in rows)},
        "note": NOTE,
        "compared": f"{small['images_in_folder']} vs {large['images_in_folder']} images",
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["goals"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
