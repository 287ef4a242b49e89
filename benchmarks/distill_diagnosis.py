"""Why does KD not beat CE-only training on the bundled example? Decisive checks, one seed.

1. Pipeline: through ``trainer.train`` itself, a forward pre-hook records the images the student is fed
   and a spy loss records the teacher logits it is handed; a fresh eval-mode teacher forward of exactly
   those images must give the same logits (fp16 cache tolerance). Also: teacher in eval mode, labels.
2. Teacher soft targets: live teacher accuracy and mean max-probability at T=1 and T=4 on train vs val.
3. Step size: gradient norm (student parameters) of CE vs KD (T=1/4, alpha 0.7/1.0) on the same batch,
   at random init.

Teacher logits of the whole train split are saved to ``--cache-file`` (reused by distill_families.py).

Usage: python benchmarks/distill_diagnosis.py [--threads 1] [--cache-file /tmp/edgekd_teacher_train.npz]
Writes benchmarks/results/distill_diagnosis.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.distill_families import RESULTS, reinit
from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
from edgekd.core.atomic import atomic_write_text
from edgekd.core.inference import predict_logits
from edgekd.data.bundled import example_dataset
from edgekd.distill.loss_setup import make_loss
from edgekd.distill.teacher_cache import compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_weights import TEACHER_CHECKPOINT
from edgekd.models.loading import load_model
from edgekd.prune.pruner import PruneSettings, prune


class _Stop(Exception):
    """Ends the spied training run after a few batches."""


def pipeline_check(teacher, student, data, n_train: int, batches: int = 3) -> dict:
    """Cached teacher logits handed to the loss vs a fresh teacher forward of the student's inputs."""
    split = data.train.subset(n_train)
    cache = compute_teacher_cache([teacher], data, split)
    seen_x: list[torch.Tensor] = []
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    kd = make_loss(DistillConfig(), teacher, student, data.to_tensor(data.test.x[:2]))
    hook = student.register_forward_pre_hook(lambda m, args: seen_x.append(args[0].detach().clone()))

    def spy(s_logits: torch.Tensor, y: torch.Tensor, t_logits: torch.Tensor | None) -> torch.Tensor:
        seen.append((y.clone(), t_logits.clone()))
        if len(seen) > batches:
            raise _Stop
        return kd(s_logits, y, t_logits)

    settings = TrainSettings(epochs=1, batch_size=128, augment=False, max_train_samples=n_train, eval_initial=False)
    try:
        train(student, data, settings, spy, cache)
    except _Stop:
        pass
    finally:
        hook.remove()
    teacher.eval()
    diffs, label_ok, x_in_split = [], True, True
    train_x = data.to_tensor(split.x)
    for x, (y, t_logits) in zip(seen_x, seen, strict=False):
        with torch.no_grad():
            fresh = teacher(x)
        diffs.append(float((fresh - t_logits).abs().max()))
        # which training rows are these? match the images, then compare labels
        flat = train_x.flatten(1)
        rows = [int(torch.cdist(xi.flatten()[None], flat).argmin()) for xi in x]
        x_in_split &= bool(torch.allclose(train_x[rows], x))
        label_ok &= bool((torch.from_numpy(split.y[rows]) == y).all())
    return {
        "batches_checked": len(diffs),
        "max_abs_logit_diff": max(diffs),
        "logit_range": float(cache.logits.astype(np.float32).std()),
        "labels_match_images": label_ok,
        "student_inputs_are_train_rows": x_in_split,
        "teacher_training_flag_during_cache": teacher.training,
    }


def soft_target_stats(logits: np.ndarray, labels: np.ndarray) -> dict:
    t = torch.from_numpy(logits.astype(np.float32))
    out = {"accuracy": float((t.argmax(1).numpy() == labels).mean())}
    for temp in (1.0, 2.0, 4.0):
        p = F.softmax(t / temp, 1)
        ent = -(p * p.clamp_min(1e-12).log()).sum(1)
        out[f"T{temp:g}"] = {"mean_max_prob": float(p.max(1).values.mean()), "mean_entropy_nats": float(ent.mean())}
    return out


def grad_norms(student, teacher_logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor, example) -> dict:
    out = {}
    variants = {"ce": None, "kd T=1 a=0.7": (1.0, 0.7), "kd T=4 a=0.7": (4.0, 0.7), "kd T=4 a=1.0": (4.0, 1.0),
                "kd T=1 a=1.0": (1.0, 1.0)}  # fmt: skip
    student.train()
    for name, kd in variants.items():
        student.zero_grad()
        logits = student(x)
        if kd is None:
            loss = F.cross_entropy(logits, y)
        else:
            loss = make_loss(DistillConfig(temperature=kd[0], alpha=kd[1]), student, student, example)(
                logits, y, teacher_logits
            )
        loss.backward()
        norm = torch.sqrt(sum((p.grad**2).sum() for p in student.parameters() if p.grad is not None))
        out[name] = {"loss": float(loss), "grad_norm": float(norm)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ratio", type=float, default=0.9)
    ap.add_argument("--cache-file", default="/tmp/edgekd_teacher_logits.npz")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    full = example_dataset()
    data = dataclasses.replace(full, val=full.val)
    teacher = load_model(EXAMPLE_FACTORY, TEACHER_CHECKPOINT)
    example = data.to_tensor(data.test.x[:2])
    arch = prune(teacher, example[:1], args.ratio, PruneSettings()).model
    record: dict = {
        "benchmark": "distill_diagnosis",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, load avg {os.getloadavg()[0]:.1f}",
        "versions": {"torch": torch.__version__, "edgekd": version("edgekd"), "python": platform.python_version()},
        "teacher_training_flag_after_load": teacher.training,
    }
    t0 = time.perf_counter()
    record["pipeline"] = pipeline_check(teacher, reinit(arch, 0), data, 2000)
    record["pipeline"]["seconds"] = round(time.perf_counter() - t0, 1)
    print("pipeline", record["pipeline"], flush=True)
    path = Path(args.cache_file)
    if path.exists():
        with np.load(path) as z:
            logits = {k: z[k] for k in ("train", "val", "test")}
    else:
        t0 = time.perf_counter()
        logits = {s: predict_logits(teacher, data, getattr(data, s)) for s in ("train", "val", "test")}
        np.savez(path, **logits)
        record["teacher_pass_seconds"] = round(time.perf_counter() - t0, 1)
    record["teacher"] = {s: soft_target_stats(logits[s], getattr(data, s).y) for s in ("train", "val", "test")}
    print("teacher", json.dumps(record["teacher"]), flush=True)
    student = reinit(arch, 0)
    x, y, idx = next(data.batches(data.train, 128, True, 0))
    record["grad_norms_random_init"] = grad_norms(student, torch.from_numpy(logits["train"][idx]), x, y, example)
    print("grads", record["grad_norms_random_init"], flush=True)
    atomic_write_text(RESULTS / "distill_diagnosis.json", json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
