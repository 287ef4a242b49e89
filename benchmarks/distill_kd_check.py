"""Schedule and T/alpha check for KD vs CE-only on the bundled example (one seed, picked on VALIDATION).

Same student as ``distill_families.py`` (the teacher pruned by 0.9, re-initialised), AdamW lr 5e-3,
warm-up + cosine, no augmentation. The teacher logits of the train split come from ``--teacher-logits``
(written by ``distill_diagnosis.py``; checked against a live teacher on 16 rows) or one teacher pass.
Each run reports its best validation accuracy (full 2000-image val split) and its test accuracy;
choose T/alpha by validation only.

Usage: python benchmarks/distill_kd_check.py [--epochs 8] [--train-samples 12000] [--seed 0]
    [--runs ce,4:0.7,1:0.7] [--out-name distill_kd_check]
Writes benchmarks/results/<out-name>.json after every run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time
from importlib.metadata import version

import numpy as np
import torch

from benchmarks.distill_families import RESULTS, reinit
from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
from edgekd.core.atomic import atomic_write_text
from edgekd.core.inference import accuracy, predict_logits
from edgekd.data.bundled import example_dataset
from edgekd.distill.loss_setup import make_loss
from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_weights import TEACHER_CHECKPOINT
from edgekd.models.loading import load_model
from edgekd.prune.pruner import PruneSettings, prune


def load_cache(path: str | None, teacher: torch.nn.Module, data, n: int | None) -> TeacherCache:
    """Teacher logits of the first ``n`` training images: from an .npz ``train`` array or one teacher pass."""
    if path:
        with np.load(path) as z:
            logits = z["train"][:n]
        check = predict_logits(teacher, data, data.train.subset(16))
        np.testing.assert_allclose(logits[:16].astype(np.float32), check, atol=0.05, rtol=0.01)
        return TeacherCache(logits)
    return compute_teacher_cache([teacher], data, data.train.subset(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-samples", type=int, default=12000)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", default="ce,4:0.7,1:0.7", help="'ce' or 'T:alpha' entries, comma-separated")
    ap.add_argument("--teacher-logits", default=None, help=".npz with a 'train' (N, C) array of teacher logits")
    ap.add_argument("--out-name", default="distill_kd_check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = example_dataset()
    teacher = load_model(EXAMPLE_FACTORY, TEACHER_CHECKPOINT)
    example = data.to_tensor(data.test.x[:2])
    arch = prune(teacher, example[:1], 0.9, PruneSettings()).model
    cache = load_cache(args.teacher_logits, teacher, data, args.train_samples)
    settings = TrainSettings(epochs=args.epochs, batch_size=128, lr=args.lr, augment=False, seed=args.seed,
                             max_train_samples=args.train_samples, patience=100, warmup_epochs=0.1)  # fmt: skip
    out = []
    for spec in args.runs.split(","):
        student = reinit(arch, args.seed)
        t0 = time.perf_counter()
        if spec == "ce":
            result = train(student, data, settings, description=spec)
        else:
            temp, alpha = (float(v) for v in spec.split(":"))
            loss = make_loss(DistillConfig(temperature=temp, alpha=alpha), teacher, student, example)
            result = train(student, data, settings, loss, cache, description=spec)
        test = accuracy(predict_logits(student, data, data.test), data.test.y)
        out.append({"config": spec, "best_val_accuracy": result.best_val_accuracy, "test_accuracy": test,
                    "history": result.history, "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(
            f"{spec}: val {result.best_val_accuracy:.4f} test {test:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True
        )
        record = {"benchmark": "distill_kd_check", "date": datetime.date.today().isoformat(),
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, "
                             f"load avg {os.getloadavg()[0]:.1f}",
                  "versions": {"torch": torch.__version__, "edgekd": version("edgekd")},
                  "command": "python benchmarks/distill_kd_check.py " + " ".join(
                      f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None),
                  "seed": args.seed, "epochs": args.epochs, "train_samples": args.train_samples,
                  "lr": args.lr, "runs": out}  # fmt: skip
        atomic_write_text(RESULTS / f"{args.out_name}.json", json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
