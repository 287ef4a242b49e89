"""Where do the points go between Torch-Pruning + CE and edgekd's build at the same size? (issue 17, item 1)

The same bundled teacher is pruned to about half its channels and fine-tuned with the build's schedule
(``DistillConfig`` defaults: AdamW, warm-up then cosine, batch 128, no augmentation, the pruned weights
as the start) in several variants that each change one thing:

- plan: uniform 50 % (Torch-Pruning, ``round_to`` of the profile) vs edgekd's latency-aware per-layer
  refinement (``edgekd.prune.sensitivity.refine``, as the build runs it) at the same predicted latency;
- loss: plain CE vs KD (T, alpha, weight_ce);
- importance criterion: l1 / l2 / groupnorm / taylor at the uniform plan.

Test accuracy is measured in PyTorch fp32 on the whole 2,000-image test split. Teacher logits for the
training images are computed once and cached (``--logits-file``); the refined plan likewise (``--plan-file``).

Usage:
    python benchmarks/gap_diagnosis.py --variants A,B --seeds 0 [--train-samples 12000] [--val-samples 500]
    python benchmarks/gap_diagnosis.py --list
Results are merged into benchmarks/results/<out-name>.json (one row per variant, seed and train-sample
count; a re-run replaces its row) and the table in <out-name>.md (between its markers) is rewritten after every run.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from edgekd.bench.latency_model import LatencyModel, count_macs, trace_ops
from edgekd.config.build_config import EXAMPLE_FACTORY, DistillConfig, PruneConfig
from edgekd.config.targets import load_target
from edgekd.core.atomic import atomic_write_text
from edgekd.core.inference import accuracy, predict_logits
from edgekd.data.bundled import example_dataset
from edgekd.distill.loss_setup import make_loss
from edgekd.distill.teacher_cache import TeacherCache
from edgekd.distill.trainer import TrainSettings, ce_loss, train
from edgekd.models.example_weights import TEACHER_CHECKPOINT
from edgekd.models.loading import load_model
from edgekd.pipeline.stages import REFINE_IMAGES
from edgekd.prune.budget_search import SearchResult
from edgekd.prune.pruner import PruneSettings, calibration_batches, prunable_groups, prune
from edgekd.prune.sensitivity import ratios_for, refine

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET = "x86-64-host"
RATIO = 0.5
TABLE_START, TABLE_END = "<!-- table: written by gap_diagnosis.py -->", "<!-- end of table -->"

# name -> (plan, importance, loss); loss None = plain CE, else DistillConfig overrides; "default" = the
# current DistillConfig()/PruneConfig() defaults (what `edgekd build` does now)
VARIANTS: dict[str, tuple[str, str, dict | None]] = {
    "A uniform l1 + CE": ("uniform", "l1", None),
    "B uniform l1 + KD T4 a0.7": ("uniform", "l1", {"temperature": 4.0, "alpha": 0.7, "weight_ce": 0.0}),
    "C1 uniform l1 + KD T1 a0.7": ("uniform", "l1", {"temperature": 1.0, "alpha": 0.7, "weight_ce": 0.0}),
    "C2 uniform l1 + KD T2 a0.7": ("uniform", "l1", {"temperature": 2.0, "alpha": 0.7, "weight_ce": 0.0}),
    "C3 uniform l1 + KD T4 a0.3": ("uniform", "l1", {"temperature": 4.0, "alpha": 0.3, "weight_ce": 0.0}),
    "D1 refined l1 + KD T4 a0.7": ("refined", "l1", {"temperature": 4.0, "alpha": 0.7, "weight_ce": 0.0}),
    "D2 refined l1 + CE": ("refined", "l1", None),
    "E1 uniform l2 + CE": ("uniform", "l2", None),
    "E2 uniform groupnorm + CE": ("uniform", "groupnorm", None),
    "E3 uniform taylor + CE": ("uniform", "taylor", None),
    "F edgekd defaults": ("default", "default", {}),
}


def pick(names: str) -> list[str]:
    keys = [k.strip() for k in names.split(",") if k.strip()]
    out = [v for k in keys for v in VARIANTS if v.split()[0] == k]
    if len(out) != len(keys):
        raise SystemExit(f"unknown variant in {names!r}; known: {', '.join(v.split()[0] for v in VARIANTS)}")
    return out


def predicted_ms(model: torch.nn.Module, lat: LatencyModel, shape: tuple[int, ...]) -> float:
    return lat.predict_ms(trace_ops(model, shape), "fp32", 1)


def build_arch(plan: str, importance: str, ctx: dict) -> tuple[torch.nn.Module, dict]:
    """The pruned student (pruned weights kept) and facts about its plan."""
    teacher, example, data, shape, lat = ctx["teacher"], ctx["example"], ctx["data"], ctx["shape"], ctx["lat"]
    settings = PruneSettings(importance, ctx["round_to"])
    if settings.needs_gradients:
        settings = dataclasses.replace(settings, calibration=calibration_batches(data))
    uniform = prune(teacher, example, RATIO, settings)
    info: dict = {"plan": plan, "importance": importance}
    if plan == "uniform":
        model = uniform.model
    else:  # the build's refinement at the uniform plan's predicted latency (equal latency by construction)
        plan_file: Path = ctx["plan_file"]
        key = f"{importance} {ctx['round_to']} {RATIO} {data.digest}"
        cached = json.loads(plan_file.read_text()) if plan_file.exists() else {}
        if cached.get("key") != key:
            t0 = time.perf_counter()
            target = predicted_ms(uniform.model, lat, shape)
            found = SearchResult(uniform, target, target)
            images = data.to_tensor(data.train.x[:REFINE_IMAGES])
            res = refine(teacher, example, lambda m: predicted_ms(m, lat, shape), target, settings, images, found)
            cached = {"key": key, **res.to_json(), "seconds": round(time.perf_counter() - t0, 1)}
            atomic_write_text(plan_file, json.dumps(cached, indent=2))
        widths = prunable_groups(teacher, example, settings)
        model = prune(teacher, example, 0.0, settings, layer_ratios=ratios_for(cached["kept"], widths)).model
        info.update(refine_chosen=cached["chosen"], kept=cached["kept"], calibration_kl=cached["calibration_kl"],
                    uniform_calibration_kl=cached["uniform_calibration_kl"])  # fmt: skip
    ops = trace_ops(model, shape)
    info.update(params=sum(p.numel() for p in model.parameters()), macs=count_macs(ops),
                predicted_ms=round(lat.predict_ms(ops, "fp32", 1), 3))  # fmt: skip
    return model, info


def teacher_train_logits(ctx: dict, n: int) -> TeacherCache:
    path: Path = ctx["logits_file"]
    key = f"{TEACHER_CHECKPOINT.stat().st_size} {ctx['data'].digest}"
    if path.exists():
        with np.load(path) as z:
            if str(z["key"]) == key and len(z["logits"]) >= n:
                return TeacherCache(z["logits"][:n].astype(np.float32))
    t0 = time.perf_counter()
    logits = predict_logits(ctx["teacher"], ctx["data"], ctx["data"].train.subset(n))
    print(f"teacher logits for {n} images: {time.perf_counter() - t0:.0f} s", flush=True)
    np.savez(path.with_suffix(".tmp.npz"), key=np.array(key), logits=logits.astype(np.float16))
    path.with_suffix(".tmp.npz").replace(path)
    return TeacherCache(logits.astype(np.float16).astype(np.float32))  # as the build caches it (fp16)


def run_variant(name: str, seed: int, args: argparse.Namespace, ctx: dict) -> dict:
    plan, importance, overrides = VARIANTS[name]
    pcfg = PruneConfig()
    if plan == "default":
        plan, importance = ("refined" if pcfg.refine else "uniform"), pcfg.importance
    model, info = build_arch(plan, importance, ctx)
    cfg = DistillConfig(**(overrides or {}))
    settings = TrainSettings(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
                             warmup_epochs=cfg.warmup_epochs, seed=seed, augment=False,
                             max_train_samples=args.train_samples, patience=cfg.patience)  # fmt: skip
    data = ctx["data"]
    t0 = time.perf_counter()
    if overrides is None:
        loss, soft, loss_desc = ce_loss, None, "CE"
    else:
        loss = make_loss(cfg, ctx["teacher"], model, ctx["example"].repeat(2, 1, 1, 1))
        soft = teacher_train_logits(ctx, args.train_samples)
        loss_desc = f"kd T={cfg.temperature:g} alpha={cfg.alpha:g} weight_ce={cfg.weight_ce:g}"
    result = train(model, data, settings, loss, soft, description=name)
    test = accuracy(predict_logits(model, data, data.test), data.test.y)
    row = {"variant": name, "seed": seed, "train_samples": args.train_samples, "epochs": cfg.epochs, "lr": cfg.lr,
           "loss": loss_desc, **info, "test_accuracy": test, "val_accuracy": result.best_val_accuracy,
           "initial_val_accuracy": result.initial_val_accuracy, "best_epoch": result.best_epoch,
           "seconds": round(time.perf_counter() - t0, 1), "load_average": round(os.getloadavg()[0], 1)}  # fmt: skip
    print(f"{name} seed {seed} n={args.train_samples}: test {test:.4f} (start val {result.initial_val_accuracy:.4f},"
          f" {row['seconds']:.0f} s)", flush=True)  # fmt: skip
    return row


def write(record: dict, stem: str) -> None:
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in record["runs"]:
        groups.setdefault((r["variant"], r["train_samples"]), []).append(r)
    lines = [
        "Fine-tuned test accuracy (PyTorch fp32, 2,000-image test split) of the bundled teacher "
        f"(test {record['teacher_test_accuracy']:.4f}) pruned to about {RATIO:.0%} of its channels; "
        f"{record['machine']}; {record['date']}. Generated by `benchmarks/gap_diagnosis.py`.",
        "",
        "| variant | train images | params | MACs | predicted fp32 ms | loss | start val acc | test acc mean ± std "
        "| seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, n), rows in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        accs = [r["test_accuracy"] for r in rows]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        r0 = rows[0]
        lines.append(
            f"| {name} | {n} | {r0['params'] / 1e6:.3f} M | {r0['macs'] / 1e6:.0f} M | {r0['predicted_ms']:.2f} "
            f"| {r0['loss']} | {statistics.mean(r['initial_val_accuracy'] for r in rows):.4f} "
            f"| {statistics.mean(accs):.4f} ± {std:.4f} | {','.join(str(r['seed']) for r in rows)} |"
        )
    atomic_write_text(RESULTS / f"{stem}.json", json.dumps(record, indent=2) + "\n")
    # the table lives between markers in <stem>.md, so the written diagnosis around it survives a re-run
    md, table = RESULTS / f"{stem}.md", "\n".join([TABLE_START, *lines, TABLE_END])
    text = md.read_text() if md.exists() else f"# gap diagnosis\n\n{TABLE_START}\n{TABLE_END}\n"
    head, _, rest = text.partition(TABLE_START)
    atomic_write_text(md, head + table + (rest.partition(TABLE_END)[2] if TABLE_END in rest else "\n"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="A,B,C1,C2,D1,D2,E1,E2,E3")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--train-samples", type=int, default=12000, help="the build uses all 12,000 (1 epoch)")
    ap.add_argument("--val-samples", type=int, default=500, help="val images (best-epoch choice only)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--logits-file", type=Path, default=Path("/tmp/edgekd_gap_teacher_logits.npz"))
    ap.add_argument("--plan-file", type=Path, default=RESULTS / "gap_diagnosis_refined_plan.json")
    ap.add_argument("--out-name", default="gap_diagnosis")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        print("\n".join(VARIANTS))
        return
    torch.set_num_threads(args.threads)
    full = example_dataset()
    data = dataclasses.replace(full, val=full.val.subset(args.val_samples))
    profile = load_target(TARGET)
    teacher = load_model(EXAMPLE_FACTORY, TEACHER_CHECKPOINT)
    ctx = {"teacher": teacher, "data": data, "example": data.to_tensor(data.test.x[:1]), "lat":
           LatencyModel.for_target(profile), "shape": (1, *data.input_shape), "round_to": profile.prune.round_to,
           "plan_file": args.plan_file, "logits_file": args.logits_file}  # fmt: skip
    path = RESULTS / f"{args.out_name}.json"
    record = json.loads(path.read_text()) if path.exists() else {"runs": []}
    record.update({
        "benchmark": "gap_diagnosis", "date": datetime.date.today().isoformat(), "target": TARGET,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs, {args.threads} torch thread",
        "versions": {"torch": torch.__version__, "edgekd": version("edgekd"), "python": platform.python_version()},
        "teacher_test_accuracy": json.loads(TEACHER_CHECKPOINT.with_suffix(".json").read_text())["test_accuracy"],
        "val_samples": args.val_samples, "uniform_ratio": RATIO,
        "defaults": {"distill": DistillConfig().model_dump(include={"epochs", "lr", "temperature", "alpha",
                                                                    "weight_ce"}),
                     "prune": PruneConfig().model_dump(include={"importance", "refine"})},
    })  # fmt: skip
    record.setdefault("commands", []).append("python benchmarks/gap_diagnosis.py " + " ".join(sys.argv[1:]))
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in pick(args.variants):
            row = run_variant(name, seed, args, ctx)
            if name.startswith("F "):
                row["defaults"] = record["defaults"]
            same = (name, seed, args.train_samples)
            record["runs"] = [r for r in record["runs"] if (r["variant"], r["seed"], r["train_samples"]) != same]
            record["runs"].append(row)
            write(record, args.out_name)


if __name__ == "__main__":
    main()
