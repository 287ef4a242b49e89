"""Why does KD lose to CE-only training in ``distill_families`` at 3 epochs? Schedule length and T/alpha.

Same student, data subset, optimiser and seed as ``distill_families.py`` (defaults: ratio 0.9, first
2000 training images, lr 5e-3, 1000 val images); only the teacher logits (no features) are needed,
computed once (fp16). Trains: CE only and KD (T=4, alpha=0.7) at ``--long-epochs``; KD at 3 epochs
with T=1 and with alpha=0.3.

Usage: python benchmarks/distill_kd_check.py [--long-epochs 8] [--seed 0]
Writes benchmarks/results/distill_kd_check.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import time
from importlib.metadata import version

import numpy as np
import torch

from benchmarks.distill_families import RESULTS, reinit
from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
from edgekd.data.bundled import example_dataset
from edgekd.distill.loss_setup import make_loss
from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, accuracy, predict_logits, train
from edgekd.models.loading import load_model
from edgekd.models.teacher_training import TEACHER_CHECKPOINT
from edgekd.pipeline.atomic import atomic_write_text
from edgekd.prune.pruner import PruneSettings, prune


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--long-epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-samples", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--teacher-logits", default=None, help="precomputed (N, C) teacher logits of the train split")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    full = example_dataset()
    data = dataclasses.replace(full, val=full.val.subset(1000))
    teacher = load_model(EXAMPLE_FACTORY, TEACHER_CHECKPOINT)
    example = data.to_tensor(data.test.x[:2])
    arch = prune(teacher, example[:1], 0.9, PruneSettings()).model
    if args.teacher_logits:  # e.g. a build's cached teacher-logits-train/logits.npy: checked on 16 rows
        logits = np.load(args.teacher_logits)[: args.train_samples]
        check = predict_logits(teacher, data, data.train.subset(16))
        np.testing.assert_allclose(logits[:16].astype(np.float32), check, atol=0.05, rtol=0.01)
        cache = TeacherCache(logits)
    else:
        cache = compute_teacher_cache([teacher], data, data.train.subset(args.train_samples))
    base = TrainSettings(epochs=3, batch_size=128, lr=5e-3, augment=False, max_train_samples=args.train_samples,
                         patience=100, warmup_epochs=0.1, seed=args.seed)  # fmt: skip
    runs = [("ce", args.long_epochs, None), ("kd T=4 a=0.7", args.long_epochs, (4.0, 0.7)),
            ("kd T=1 a=0.7", 3, (1.0, 0.7)), ("kd T=4 a=0.3", 3, (4.0, 0.3))]  # fmt: skip
    out = []
    for name, epochs, kd in runs:
        student = reinit(arch, args.seed)
        settings = dataclasses.replace(base, epochs=epochs)
        t0 = time.perf_counter()
        if kd is None:
            result = train(student, data, settings, description=name)
        else:
            loss = make_loss(DistillConfig(temperature=kd[0], alpha=kd[1]), teacher, student, example)
            result = train(student, data, settings, loss, cache, description=name)
        test = accuracy(predict_logits(student, data, data.test), data.test.y)
        out.append({"config": name, "epochs": epochs, "test_accuracy": test, "history": result.history,
                    "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
        print(f"{name} {epochs} ep: test {test:.4f}", flush=True)
        record = {"benchmark": "distill_kd_check", "date": datetime.date.today().isoformat(),
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
                  "versions": {"torch": torch.__version__, "edgekd": version("edgekd")},
                  "seed": args.seed, "train_samples": args.train_samples, "runs": out}  # fmt: skip
        atomic_write_text(RESULTS / "distill_kd_check.json", json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
