"""Which distillation losses help a strongly pruned student on the bundled Fashion-MNIST data?

One fixed student architecture (the bundled teacher pruned by ``--ratio`` with L1 importance) is
re-initialised from random weights (same init per seed for every config) and trained with:
CE only (from scratch), ``kd``, ``kd+hint``, ``kd+at``, ``kd+rkd``, ``kd+spkd``, ``kd`` from two teachers
(the bundled teacher and a teacher assistant: the teacher pruned by ``--ta-ratio`` — 0.7 is about
the geometric mean of teacher and student sizes, as ``--assistant auto`` picks — and KD-fine-tuned for
``--ta-epochs``). Same schedule for all
(AdamW, warm-up + cosine, no augmentation). Teacher logits and the paired teacher feature maps are
computed once for the training subset (fp16) and shared by every run; the cost of running the teacher
live instead is measured and recorded.

Usage: python benchmarks/distill_families.py [--seeds 0,1,2] [--epochs 8] [--train-samples 12000] [--ratio 0.9]
    [--temperature T] [--alpha A] [--cache-file /tmp/edgekd_families_cache.npz] [--out-name distill_families]
Writes benchmarks/results/<out-name>.json and .md (rewritten after every run, so a stopped run
leaves its finished points). T/alpha defaults were picked on the validation split by
distill_kd_check.py; distill_diagnosis.md explains why the earlier 3-epoch/2000-image schedule made
KD lose to CE-only training.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime
import json
import os
import platform
import re
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig
from edgekd.core.atomic import atomic_write_text
from edgekd.core.inference import accuracy, predict_logits
from edgekd.core.registry import LOSSES
from edgekd.data.bundled import example_dataset
from edgekd.distill.loss_setup import feature_pairs, make_loss
from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_weights import TEACHER_CHECKPOINT
from edgekd.models.loading import load_model
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


def cached_teacher_outputs(
    path: Path | None, teachers: list[nn.Module], data, split, paths: list[str], key: str
) -> tuple[TeacherCache, float]:
    """Teacher cache from ``path`` when it was written for the same ``key``, else one pass (saved there)."""
    if path is not None and path.exists():
        with np.load(path) as z:
            if str(z["key"]) == key:
                return TeacherCache(z["logits"], {p: z[f"f:{p}"] for p in paths}), 0.0
    t0 = time.perf_counter()
    cache = compute_teacher_cache(teachers, data, split, paths)
    seconds = time.perf_counter() - t0
    if path is not None:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, key=np.array(key), logits=cache.logits, **{f"f:{p}": v for p, v in cache.features.items()})
        tmp.replace(path)
    return cache, seconds


def summarise(record: dict) -> None:
    """Fill ``record["table"]``: per config mean ± std of test accuracy and of the paired Δ vs scratch."""
    scratch = {r["seed"]: r["test_accuracy"] for r in record["runs"] if r["config"] == "scratch (CE only)"}
    record["table"] = {}
    for name in record["configs"]:
        rows = [r for r in record["runs"] if r["config"] == name]
        if not rows:
            continue
        accs = [r["test_accuracy"] for r in rows]
        deltas = [r["test_accuracy"] - scratch[r["seed"]] for r in rows if r["seed"] in scratch]
        record["table"][name] = {
            "mean": statistics.mean(accs),
            "std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "n": len(accs),
            "paired_delta_mean": statistics.mean(deltas) if deltas else None,
            "paired_delta_std": statistics.stdev(deltas) if len(deltas) > 1 else 0.0,
            "seconds": statistics.mean(r["seconds"] for r in rows),
        }


def merge(stems: list[str], out: str) -> None:
    """Combine per-seed result files (run in parallel) into one record and table."""
    records = [json.loads((RESULTS / f"{stem}.json").read_text()) for stem in stems]
    record = copy.deepcopy(records[0])
    record["runs"] = [run for r in records for run in r["runs"]]
    record["configs"] = {n: c for n in CONFIGS for r in records for m, c in r["configs"].items() if m == n}
    for r in records[1:]:
        if r["assistant"].get("params"):
            record["assistant"] = r["assistant"]
        if r["teacher_cache"]["megabytes"] > record["teacher_cache"]["megabytes"]:
            record["teacher_cache"] = r["teacher_cache"]
    # a seed is done when every config has a run for it (parts may split configs or seeds)
    seeds = {run["seed"] for run in record["runs"]}
    record["seeds_done"] = sorted(
        s
        for s in seeds
        if all(any(r["config"] == n and r["seed"] == s for r in record["runs"]) for n in record["configs"])
    )
    kd_parts = [r for r in records if any(c["teachers"] != "none" for c in r["configs"].values())]
    if len({(r["settings"]["temperature"], r["settings"]["alpha"]) for r in kd_parts}) > 1:
        raise SystemExit("the parts were run with different KD temperature/alpha; merge only matching runs")
    if kd_parts:  # a CE-only part's T/alpha are unused defaults
        record["settings"] = kd_parts[0]["settings"]
    if (
        len(
            {json.dumps({k: v for k, v in r["settings"].items() if k not in ("temperature", "alpha")}) for r in records}
        )
        > 1
    ):
        raise SystemExit("the parts were run with different schedules; merge only matching runs")
    record["load_average"] = " | ".join(r["load_average"] for r in records)
    record["command"] = " + ".join(r["command"] for r in records) + f"; merged with --merge {','.join(stems)}"
    summarise(record)
    write(record, out)


def write(record: dict, stem: str = "distill_families") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(record, indent=2) + "\n")
    lines = [
        f"Test accuracy (mean ± std over seeds {record['seeds_done'] or 'as counted in the runs column: partial'}) "
        "of the fixed pruned student "
        f"({record['student_params']:,} params, teacher {record['teacher_params']:,}, teacher test acc "
        f"{record['teacher_test_accuracy']:.4f}); {record['settings']['epochs']} epochs on "
        f"{record['settings']['train_samples']} training images, KD T={record['settings']['temperature']:g}, "
        f"alpha={record['settings']['alpha']:g} (picked on validation), lr {record['settings']['lr']:g}. "
        f"Second teacher: an assistant with test acc {record['assistant']['test_accuracy']:.4f}. "
        f"{record['machine']}; load average {record['load_average']}; {record['date']}.",
        "",
        "| config | test acc mean ± std | Δ vs scratch (paired by seed) | runs | s/run |",
        "|---|---|---|---|---|",
    ]
    for name, row in record["table"].items():
        delta = ""
        if row.get("paired_delta_mean") is not None and name != "scratch (CE only)":
            delta = f"{100 * row['paired_delta_mean']:+.2f} ± {100 * row['paired_delta_std']:.2f} pt"
        lines.append(f"| {name} | {row['mean']:.4f} ± {row['std']:.4f} | {delta} | {row['n']} | {row['seconds']:.0f} |")
    atomic_write_text(RESULTS / f"{stem}.md", "\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--train-samples", type=int, default=12000)
    ap.add_argument("--ratio", type=float, default=0.9)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--threads", type=int, default=1, help="1 suits a shared, oversubscribed machine")
    ap.add_argument("--val-samples", type=int, default=2000)
    ap.add_argument("--temperature", type=float, default=4.0, help="KD temperature (pick with distill_kd_check)")
    ap.add_argument("--alpha", type=float, default=0.7)
    ap.add_argument("--ta-ratio", type=float, default=0.7, help="prune ratio of the teacher assistant")
    ap.add_argument("--ta-file", type=Path, default=None, help="reuse/save the trained assistant's weights here")
    ap.add_argument("--merge", default=None, help="comma-separated result stems to merge into --out-name, then exit")
    ap.add_argument("--ta-epochs", type=int, default=1, help="KD fine-tuning epochs of the teacher assistant")
    ap.add_argument("--cache-file", type=Path, default=None, help="reuse/save the teacher cache (.npz) here")
    ap.add_argument("--teacher-logits", type=Path, default=None, help="distill_diagnosis.py logits .npz (no features)")
    ap.add_argument("--out-name", default="distill_families", help="result file stem in benchmarks/results/")
    ap.add_argument(
        "--configs", default=None, help="subset of config names: 'scratch', 'kd', 'kd+at', 'kd, two teachers', ..."
    )
    args = ap.parse_args()
    if args.merge:
        merge(args.merge.split(","), args.out_name)
        return
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
    names = list(CONFIGS)
    if args.configs:
        wanted = re.split(r",(?! )", args.configs)  # "kd, two teachers" keeps its comma
        names = [n for n in names if any(n == w or n.startswith((w + " ", w + ",")) for w in wanted)]
    wants_features = any(getattr(LOSSES.get(loss), "needs_features", False) for n in names for loss in CONFIGS[n][0])
    wants_teacher = any(CONFIGS[n][1] != "none" for n in names)
    cache, cache_seconds = None, 0.0
    if wants_features or (wants_teacher and args.teacher_logits is None):
        key = f"{EXAMPLE_FACTORY} {TEACHER_CHECKPOINT.stat().st_size} {data.digest} {len(split)} {pairs}"
        paths = [t for t, _ in pairs] if wants_features else []
        cache, cache_seconds = cached_teacher_outputs(args.cache_file, [teacher], data, split, paths, key)
    elif wants_teacher:  # logits only (no feature loss selected): a distill_diagnosis.py logits file
        with np.load(args.teacher_logits) as z:
            cache = TeacherCache(z["train"][: len(split)])
        check = predict_logits(teacher, data, split.subset(16))
        np.testing.assert_allclose(cache.logits[:16].astype(np.float32), check, atol=0.05, rtol=0.01)
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
    sources: dict = {"none": (None, 1), "teacher": (cache, 1)}
    ta_record: dict = {"ratio": args.ta_ratio, "epochs": args.ta_epochs, "test_accuracy": float("nan")}
    if any(CONFIGS[n][1] == "two" for n in names):
        # teacher assistant: the teacher pruned by --ta-ratio, KD-fine-tuned from the teacher's cached logits
        t0 = time.perf_counter()
        assistant = prune(teacher, example[:1], args.ta_ratio, PruneSettings()).model
        ta_settings = dataclasses.replace(settings, epochs=args.ta_epochs, lr=1e-3, patience=args.ta_epochs)
        ta_loss = make_loss(DistillConfig(), teacher, assistant, example)
        if args.ta_file is not None and args.ta_file.exists():
            assistant.load_state_dict(torch.load(args.ta_file, weights_only=True))
            ta_val = accuracy(predict_logits(assistant, data, data.val), data.val.y)
        else:
            ta_val = train(assistant, data, ta_settings, ta_loss, cache, description="assistant").best_val_accuracy
            if args.ta_file is not None:
                torch.save(assistant.state_dict(), args.ta_file.with_suffix(".tmp"))
                args.ta_file.with_suffix(".tmp").replace(args.ta_file)
        ta_cache = compute_teacher_cache([assistant], data, split)
        two = TeacherCache(
            torch.stack([torch.from_numpy(cache.logits), torch.from_numpy(ta_cache.logits)], 1).numpy(), cache.features
        )
        sources["two"] = (two, 2)
        ta_record.update(
            params=params(assistant),
            test_accuracy=accuracy(predict_logits(assistant, data, data.test), data.test.y),
            val_accuracy=ta_val,
            seconds=round(time.perf_counter() - t0, 1),
        )
    record: dict = {
        "benchmark": "distill_families",
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"{torch.get_num_threads()} torch thread per run",
        "load_average": f"{os.getloadavg()[0]:.1f} at start",
        "command": "python benchmarks/distill_families.py " + " ".join(sys.argv[1:]),
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
        "assistant": ta_record,
        "teacher_cache": {
            "seconds": round(cache_seconds, 1),
            "megabytes": round(cache.nbytes / 1e6, 1) if cache is not None else 0.0,
            "note": "one teacher pass over the training subset (0 = loaded from --cache-file); "
            "a live teacher costs this per epoch",
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
            summarise(record)
            write(record, args.out_name)
        record["seeds_done"].append(seed)
        record["load_average"] = record["load_average"].split(";")[0] + f"; {os.getloadavg()[0]:.1f} after seed {seed}"
        write(record, args.out_name)


if __name__ == "__main__":
    main()
