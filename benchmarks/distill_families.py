"""Which distillation losses help a strongly pruned student on the bundled Fashion-MNIST data?

One fixed student architecture (the bundled teacher pruned by ``--ratio`` with L1 importance) is
re-initialised from random weights (same init per seed for every config) and trained with:
CE only (from scratch), ``kd``, ``kd+hint``, ``kd+at``, ``kd+rkd``, ``kd+spkd``, ``kd`` from two teachers
(the bundled teacher and a teacher assistant: the teacher pruned by 0.5 and KD-fine-tuned for one
epoch). Same schedule for all
(AdamW, warm-up + cosine, no augmentation). Teacher logits and the paired teacher feature maps are
computed once for the training subset (fp16) and shared by every run; the cost of running the teacher
live instead is measured and recorded.

Usage: python benchmarks/distill_families.py [--seeds 0,1,2] [--epochs 3] [--train-samples 2000] [--ratio 0.9]
    [--temperature 4] [--alpha 0.7] [--out-name distill_families]
Writes benchmarks/results/<out-name>.json and .md (rewritten after every run, so a stopped run
leaves its finished points). See distill_kd_check.py for why T=4 hurts this small student.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import platform
import statistics
import time
from importlib.metadata import version
from pathlib import Path

import torch
from torch import nn

from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
from edgekd.data.bundled import example_dataset
from edgekd.distill.loss_setup import feature_pairs, make_loss
from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, accuracy, predict_logits, train
from edgekd.models.loading import load_model
from edgekd.models.teacher_training import TEACHER_CHECKPOINT
from edgekd.pipeline.atomic import atomic_write_text
from edgekd.prune.pruner import PruneSettings, prune

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# name -> (losses {name: weight}, teacher source); weights follow each paper's usual scale
CONFIGS: dict[str, tuple[dict[str, float], str]] = {
    "scratch (CE only)": ({}, "none"),
    "kd": ({"kd": 1.0}, "teacher"),
    "kd+hint": ({"kd": 1.0, "hint": 1.0}, "teacher"),
    "kd+at": ({"kd": 1.0, "at": 1.0}, "teacher"),
    "kd+rkd": ({"kd": 1.0, "rkd": 1.0}, "teacher"),
    "kd+spkd": ({"kd": 1.0, "spkd": 3000.0}, "teacher"),
    "kd, two teachers (teacher + TA, mean)": ({"kd": 1.0}, "two"),
}


def reinit(model: nn.Module, seed: int) -> nn.Module:
    out = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in out.modules():
        if m is not out and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return out


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def write(record: dict, stem: str = "distill_families") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(record, indent=2) + "\n")
    lines = [
        f"Test accuracy (mean ± std over seeds {record['seeds_done']}) of the fixed pruned student "
        f"({record['student_params']:,} params, teacher {record['teacher_params']:,}, teacher test acc "
        f"{record['teacher_test_accuracy']:.4f}); {record['settings']['epochs']} epochs on "
        f"{record['settings']['train_samples']} training images.",
        "",
        "| config | test acc mean ± std | Δ vs scratch | runs | s/run |",
        "|---|---|---|---|---|",
    ]
    base = record["table"].get("scratch (CE only)", {}).get("mean")
    for name, row in record["table"].items():
        delta = f"{100 * (row['mean'] - base):+.2f} pt" if base is not None and name != "scratch (CE only)" else ""
        lines.append(f"| {name} | {row['mean']:.4f} ± {row['std']:.4f} | {delta} | {row['n']} | {row['seconds']:.0f} |")
    atomic_write_text(RESULTS / f"{stem}.md", "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-samples", type=int, default=2000)
    ap.add_argument("--ratio", type=float, default=0.9)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--threads", type=int, default=1, help="1 suits a shared, oversubscribed machine")
    ap.add_argument("--val-samples", type=int, default=1000)
    ap.add_argument(
        "--temperature", type=float, default=4.0, help="KD temperature (distill_kd_check: 1 suits this student)"
    )
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--out-name", default="distill_families", help="result file stem in benchmarks/results/")
    ap.add_argument("--configs", default=None, help="comma-separated subset of config names (prefix match)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    full = example_dataset()
    # a smaller validation split (early stopping / best epoch) keeps the per-epoch cost down; test stays whole
    data = dataclasses.replace(full, val=full.val.subset(args.val_samples))
    teacher = load_model(EXAMPLE_FACTORY, TEACHER_CHECKPOINT)
    example = data.to_tensor(data.test.x[:2])
    student_arch = prune(teacher, example[:1], args.ratio, PruneSettings()).model
    base_cfg = DistillConfig(
        epochs=args.epochs,
        lr=args.lr,
        max_train_samples=args.train_samples,
        patience=args.epochs,
        temperature=args.temperature,
        alpha=args.alpha,
    )
    pairs = feature_pairs(base_cfg, teacher, student_arch)
    split = data.train.subset(args.train_samples)
    t0 = time.perf_counter()
    cache = compute_teacher_cache([teacher], data, split, [t for t, _ in pairs])
    cache_seconds = time.perf_counter() - t0
    # the teacher's test accuracy as recorded with its weights (same bundled test split); saves a teacher pass
    teacher_test = json.loads(TEACHER_CHECKPOINT.with_suffix(".json").read_text())["test_accuracy"]
    settings = TrainSettings(
        epochs=args.epochs,
        batch_size=128,
        lr=args.lr,
        augment=False,
        max_train_samples=args.train_samples,
        patience=args.epochs,
        warmup_epochs=0.1,
    )
    # teacher assistant: the teacher pruned by 0.5, KD-fine-tuned one epoch from the teacher's cached logits
    t0 = time.perf_counter()
    assistant = prune(teacher, example[:1], 0.5, PruneSettings()).model
    ta_settings = dataclasses.replace(settings, epochs=1, lr=1e-3, patience=1)
    ta_loss = make_loss(DistillConfig(), teacher, assistant, example)
    ta_result = train(assistant, data, ta_settings, ta_loss, cache, description="assistant")
    ta_cache = compute_teacher_cache([assistant], data, split)
    two = TeacherCache(
        torch.stack([torch.from_numpy(cache.logits), torch.from_numpy(ta_cache.logits)], 1).numpy(), cache.features
    )
    ta_seconds = time.perf_counter() - t0
    ta_test = accuracy(predict_logits(assistant, data, data.test), data.test.y)
    sources = {"none": (None, 1), "teacher": (cache, 1), "two": (two, 2), "assistant": (ta_cache, 1)}
    names = list(CONFIGS)
    if args.configs:
        wanted = args.configs.split(",")
        names = [n for n in names if any(n.startswith(w) for w in wanted)]
    record: dict = {
        "benchmark": "distill_families",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, {platform.processor() or 'cpu'}",
        "versions": {"torch": torch.__version__, "edgekd": version("edgekd"), "python": platform.python_version()},
        "settings": {
            "epochs": args.epochs,
            "train_samples": len(split),
            "ratio": args.ratio,
            "lr": args.lr,
            "batch_size": 128,
            "temperature": base_cfg.temperature,
            "alpha": base_cfg.alpha,
            "augment": False,
            "val_samples": len(data.val),
            "feature_pairs": pairs,
            "init": "random re-init, same per seed",
        },
        "teacher_params": params(teacher),
        "teacher_test_accuracy": teacher_test,
        "student_params": params(student_arch),
        "assistant": {
            "params": params(assistant),
            "test_accuracy": ta_test,
            "val_accuracy": ta_result.best_val_accuracy,
            "seconds": round(ta_seconds, 1),
        },
        "teacher_cache": {
            "seconds": round(cache_seconds, 1),
            "megabytes": round(cache.nbytes / 1e6, 1),
            "note": "one teacher pass over the training subset; a live teacher costs this per epoch",
        },
        "configs": {n: {"losses": CONFIGS[n][0], "teachers": CONFIGS[n][1]} for n in names},
        "runs": [],
        "table": {},
        "seeds_done": [],
    }
    for seed in seeds:
        for name in names:
            weights, source = CONFIGS[name]
            student = reinit(student_arch, seed)
            teachers, n_teachers = sources[source]
            if weights:
                cfg = base_cfg.model_copy(update={"losses": weights})
                loss = make_loss(cfg, teacher, student, example, n_teachers)
            else:
                loss = None
            run_settings = dataclasses.replace(settings, seed=seed)
            t0 = time.perf_counter()
            if loss is None:
                result = train(student, data, run_settings, description=name)
            else:
                result = train(student, data, run_settings, loss, teachers, description=name)
            test = accuracy(predict_logits(student, data, data.test), data.test.y)
            record["runs"].append(
                {
                    "config": name,
                    "seed": seed,
                    "test_accuracy": test,
                    "val_accuracy": result.best_val_accuracy,
                    "history": result.history,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
            print(f"{name} seed {seed}: test {test:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
            rows = [r for r in record["runs"] if r["config"] == name]
            accs = [r["test_accuracy"] for r in rows]
            record["table"][name] = {
                "mean": statistics.mean(accs),
                "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                "n": len(accs),
                "seconds": statistics.mean(r["seconds"] for r in rows),
            }
            write(record, args.out_name)
        record["seeds_done"].append(seed)
        write(record, args.out_name)


if __name__ == "__main__":
    main()
