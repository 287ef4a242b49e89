"""The build's stages. Each takes typed inputs, is cached by its inputs' hashes, and returns data.

Stages never reach into each other's internals: they exchange files in cache entries and small
JSON-able records.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.bench.latency_model import LatencyModel, count_macs, trace_ops
from edgekd.bench.runner_base import BenchSettings
from edgekd.bench.stage import BenchResult, BenchStage
from edgekd.config.target_profile import host_cpu_name
from edgekd.core.errors import BudgetUnreachableError, ConfigError, RunnerError, ToolchainError
from edgekd.core.hashing import sha256_file
from edgekd.core.inference import predict_logits
from edgekd.core.progress import ProgressReporter
from edgekd.core.stage import StageSpec
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.loading import load_student, save_student
from edgekd.pipeline.cache import StageCache
from edgekd.pipeline.inputs import BuildInputs
from edgekd.pipeline.stage_runner import StageRunner
from edgekd.prune.budget_search import SearchResult, search_measured, search_ratio
from edgekd.prune.pruner import PruneResult, PruneSettings, calibration_batches
from edgekd.prune.sensitivity import refine, refine_measured

log = logging.getLogger(__name__)

REFINE_IMAGES = 32  # calibration images whose output KL scores the per-layer refinement (~15 s on the demo)


@dataclass
class StageContext:
    inputs: BuildInputs
    cache: StageCache
    progress: ProgressReporter
    runner: StageRunner = field(init=False)

    def __post_init__(self) -> None:
        self.runner = StageRunner(self.cache, self.progress)

    @property
    def example(self) -> torch.Tensor:
        return self.inputs.data.to_tensor(self.inputs.data.test.x[:1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, *self.inputs.data.input_shape)

    @property
    def data_key(self) -> str:
        """The data as models see it: the arrays' digest and every preprocessing field (normalisation, size, ...)."""
        return self.inputs.data.cache_digest


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def teacher_logits(ctx: StageContext, split: str, max_samples: int | None = None) -> np.ndarray:
    """Teacher logits on a split, cached by teacher and data hashes."""
    inp = ctx.inputs
    key_in = {"teacher": inp.teacher_key, "data": ctx.data_key, "split": split, "n": max_samples}

    def produce(tmp: Path) -> None:
        part = getattr(inp.data, split).subset(max_samples)
        with ctx.progress.task(f"teacher logits ({split}, {len(part)} images)", total=None):
            logits = predict_logits(inp.teacher, inp.data, part, device=inp.config.device)
        # fp16 keeps the training-set cache small; evaluation splits stay exact
        np.save(tmp / "logits.npy", logits.astype(np.float16 if split == "train" else np.float32))

    hit = ctx.runner.run(StageSpec(f"teacher-logits-{split}", key_in, produce))
    return np.load(hit / "logits.npy").astype(np.float32)


def host_measure(ctx: StageContext) -> Callable[[nn.Module], float]:
    """Measure a candidate as deployed: export the target's primary format and time it locally."""
    from edgekd.bench.local_runner import LocalRunner
    from edgekd.bench.runner_base import BenchSettings
    from edgekd.bench.stats import summarize
    from edgekd.export.base import SidecarInfo, get_exporter

    inp, profile = ctx.inputs, ctx.inputs.profile
    exporter = get_exporter(profile.primary.format)
    data = inp.data
    calib = data.to_tensor(data.train.subset(inp.config.export.calibration_samples).x[:]).numpy()
    info = SidecarInfo.from_bundle(data)
    settings = BenchSettings(threads=profile.budget.threads, warmup=inp.config.bench.warmup,
                             runs=inp.config.bench.runs)  # fmt: skip

    def measure(model: nn.Module) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            art = exporter.export(model, ctx.example, profile.primary.precision, Path(tmp), info, calib,
                                  profile.onnx_opset)  # fmt: skip
            with LocalRunner() as runner:
                result = runner.run(runner.push(Path(art.path)), settings)
        return summarize(result.samples_ms).stat(profile.budget.stat)

    return measure


def prune_stage(ctx: StageContext) -> tuple[Path, dict]:
    """Prune the teacher until the target's latency fits the budget.

    The latency model drives the search: a uniform ratio by bisection, then (``prune.refine``, off by
    default: it lost accuracy on the bundled example) latency-aware per-layer refinement, which removes
    channels where latency saved per calibration loss added is highest. Where the target is this
    machine, each pick is also measured as deployed and the model corrected until the measured latency fits.
    """
    inp, cfg = ctx.inputs, ctx.inputs.config.prune
    profile = inp.profile
    refine_on = cfg.refine
    settings = _prune_settings(ctx)
    model = LatencyModel.for_target(profile)
    measured = profile.measured_locally
    key_in = {
        "teacher": inp.teacher_key,
        "compute": model.compute.model_dump(),
        "calibration": (model.calibration or {}).get("date"),
        "cores": profile.cpu.cores,
        "budget": inp.budget_ms,
        "precision": profile.primary.precision,
        "format": profile.primary.format,
        "threads": profile.budget.threads,
        "stat": profile.budget.stat,
        "prune": cfg.model_dump(),
        "refine": refine_on,
        "round_to": profile.prune.round_to,
        "measured_on": host_cpu_name() if measured else None,
        "data": ctx.data_key if refine_on or settings.needs_gradients else None,
    }

    def produce(tmp: Path) -> None:
        precision, threads = profile.primary.precision, profile.budget.threads

        def latency(m: nn.Module) -> float:
            return model.predict_ms(trace_ops(m, ctx.input_shape), precision, threads)

        args = (inp.teacher, ctx.example)
        measure = host_measure(ctx) if measured else None
        if measure is not None:
            found = search_measured(*args, latency, measure, inp.budget_ms, settings, cfg.margin,
                                    progress=ctx.progress)  # fmt: skip
        else:
            found = search_ratio(*args, latency, inp.budget_ms, settings, cfg.margin, progress=ctx.progress)
        result, final_ms, refinement = found.result, found.latency_ms, None
        if refine_on:
            result, final_ms, refinement = _refine(ctx, settings, latency, measure, found)
        save_student(result.model, tmp / "student.pt", inp.config.teacher.factory)
        record = {
            "ratio": result.ratio,
            "predicted_ms": latency(result.model),
            "measured_ms": final_ms if found.rounds else None,
            "measure_rounds": found.rounds,
            "target_ms": found.target_ms,
            "precision": precision,
            "threads": threads,
            "importance": cfg.importance,
            "round_to": profile.prune.round_to,
            "latency_model": model.describe(),
            "channels": result.channels,
            "uniform_ratio": found.result.ratio,
            "refine": refine_on,
            "refinement": refinement,
            "evaluated": found.evaluated,
        }
        (tmp / "prune.json").write_text(json.dumps(record, indent=2))

    hit = ctx.runner.run(StageSpec("prune", key_in, produce))
    return hit / "student.pt", _read_json(hit / "prune.json")


def _prune_settings(ctx: StageContext) -> PruneSettings:
    """The build's pruning settings; gradient-based criteria (taylor) get calibration batches."""
    cfg, profile = ctx.inputs.config.prune, ctx.inputs.profile
    settings = PruneSettings(cfg.importance, profile.prune.round_to, tuple(cfg.ignored_layers), cfg.max_ratio)
    if settings.needs_gradients:
        settings = dataclasses.replace(settings, calibration=calibration_batches(ctx.inputs.data))
    return settings


def _refine(
    ctx: StageContext,
    settings: PruneSettings,
    latency: Callable[[nn.Module], float],
    measure: Callable[[nn.Module], float] | None,
    found: SearchResult,
) -> tuple[PruneResult, float, dict]:
    """Per-layer refinement of the uniform pick; with a runner, confirmed by measurement (see refine_measured)."""
    inp = ctx.inputs
    images = inp.data.to_tensor(inp.data.train.subset(REFINE_IMAGES).x[:])
    uniform_ms = found.latency_ms
    try:
        if measure is None:
            plan = refine(inp.teacher, ctx.example, latency, inp.budget_ms, settings, images, found,
                          progress=ctx.progress)  # fmt: skip
            return plan.result, plan.latency_ms, {**plan.to_json(), "confirm_rounds": []}
        plan, measured_ms, rounds = refine_measured(
            inp.teacher, ctx.example, latency, measure, inp.budget_ms, settings, images, found,
            inp.config.prune.margin, progress=ctx.progress,
        )  # fmt: skip
    except BudgetUnreachableError as exc:  # the uniform plan already fits; refinement only stalled
        log.warning("per-layer refinement stopped (%s); keeping the uniform plan", exc)
        return found.result, uniform_ms, {"chosen": "uniform", "stopped": str(exc), "confirm_rounds": []}
    return plan.result, measured_ms, {**plan.to_json(), "confirm_rounds": rounds}


def distill_stage(ctx: StageContext, pruned: Path) -> tuple[Path, dict]:
    """Fine-tune the pruned student with the configured distillation losses (default: response KD).

    Teacher logits come from the stage cache; feature losses (hint, at, rkd, spkd) add the paired
    teacher feature maps, computed once for the training split. The cache key covers the whole
    distill config, so any change of loss, weight or schedule retrains.
    """
    from edgekd.distill.loss_setup import make_loss
    from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache

    inp, cfg = ctx.inputs, ctx.inputs.config.distill
    if cfg.teachers or cfg.assistant is not None:
        raise ConfigError("distill.teachers and distill.assistant are for `edgekd distill`; the build uses one teacher")
    key_in = {"student": sha256_file(pruned), "teacher": inp.teacher_key, "data": ctx.data_key,
              "distill": cfg.model_dump(mode="json", exclude={"checkpoint_dir", "resume"})}  # fmt: skip

    def produce(tmp: Path) -> None:
        student = load_student(pruned, inp.config.teacher.factory)
        loss = make_loss(cfg, inp.teacher, student, ctx.inputs.data.to_tensor(inp.data.test.x[:2]))
        paths = loss.feature_paths()["teacher"]
        if paths:
            with ctx.progress.task("teacher features (cached once)", total=None):
                soft = compute_teacher_cache([inp.teacher], inp.data, inp.data.train.subset(cfg.max_train_samples),
                                             paths)  # fmt: skip
        else:
            soft = TeacherCache(teacher_logits(ctx, "train", cfg.max_train_samples))
        settings = TrainSettings(
            epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=cfg.weight_decay,
            warmup_epochs=cfg.warmup_epochs, seed=cfg.seed, augment=False, max_train_samples=cfg.max_train_samples,
            patience=cfg.patience, checkpoint_dir=cfg.checkpoint_dir, resume=cfg.resume,
            augmentation=cfg.augment, workers=cfg.workers, use_unlabeled=cfg.use_unlabeled, device=inp.config.device,
        )  # fmt: skip
        names = "+".join(cfg.losses) or "ce"
        result = train(student, inp.data, settings, loss, soft, ctx.progress, f"distill ({names})", teacher=inp.teacher)
        save_student(student, tmp / "student.pt", inp.config.teacher.factory)
        record = {"best_val_accuracy": result.best_val_accuracy, "epochs_run": result.epochs_run,
                  "initial_val_accuracy": result.initial_val_accuracy, "best_epoch": result.best_epoch,
                  "history": result.history, "seconds": result.seconds, "loss": names,
                  "losses": cfg.losses, "weight_ce": cfg.weight_ce,
                  "temperature": cfg.temperature, "alpha": cfg.alpha, "labeled_images": result.labeled,
                  "unlabeled_images": result.unlabeled, "device": result.device}  # fmt: skip
        (tmp / "distill.json").write_text(json.dumps(record, indent=2))

    hit = ctx.runner.run(StageSpec("distill", key_in, produce))
    return hit / "student.pt", _read_json(hit / "distill.json")


def export_stage(
    ctx: StageContext, model: nn.Module, model_key: str, fmt: str, precision: str, reference: np.ndarray | None
) -> dict:
    """Export one artifact; with ``reference`` (the model's PyTorch logits on the whole test split),
    also check its parity with PyTorch on the test split, in its runtime."""
    from edgekd.export.base import SidecarInfo, get_exporter
    from edgekd.export.parity import check_parity

    inp, cfg = ctx.inputs, ctx.inputs.config.export
    name = f"{fmt}-{precision}"
    key_in = {"model": model_key, "format": fmt, "precision": precision, "parity": reference is not None,
              "opset": inp.profile.onnx_opset, "export": cfg.model_dump(), "data": ctx.data_key}  # fmt: skip

    def produce(tmp: Path) -> None:
        exporter = get_exporter(fmt)
        data = inp.data
        calib = data.to_tensor(data.train.subset(cfg.calibration_samples).x[:]).numpy()
        info = SidecarInfo.from_bundle(data)
        with ctx.progress.task(f"export {fmt} {precision}", total=None):
            art = exporter.export(model, ctx.example, precision, tmp, info, calib, inp.profile.onnx_opset)
        record = {"file": Path(art.path).name, "format": fmt, "precision": precision, "parity": None}
        if reference is not None:
            idx = data.test.subset_indices(cfg.parity_samples)
            test = data.test.take(idx)
            with ctx.progress.task(f"parity {fmt} {precision} ({len(test)} images)", total=None):
                run = exporter.load_runtime(art, threads=max(1, torch.get_num_threads()))
                x = data.to_tensor(test.x).numpy()
                record["parity"] = check_parity(run, x, reference[idx], test.y).to_json()
        (tmp / "export.json").write_text(json.dumps(record, indent=2))

    hit = ctx.runner.run(StageSpec(f"export-{name}", key_in, produce))
    record = _read_json(hit / "export.json")
    record["cache_path"] = str(hit / record["file"])
    return record


def _bench_settings(ctx: StageContext, threads: int) -> BenchSettings:
    cfg = ctx.inputs.config.bench
    return BenchSettings(threads=threads, warmup=cfg.warmup, runs=cfg.runs)


def bench_stage(ctx: StageContext, artifact_path: Path, threads: int, who: str = "student") -> BenchResult:
    """Time an artifact on this machine (``local`` runner: warm-up, N timed runs, ``measured-host``)."""
    stage = BenchStage(artifact_path, sha256_file(artifact_path), ctx.inputs.profile, _bench_settings(ctx, threads),
                       "local", who)  # fmt: skip
    return ctx.runner.run(stage)


class DeviceBench:
    """Time artifacts with the profile's own runner when it is not this machine (``measured-device``).

    The first failure to reach the device (no address configured, connection refused, ...) is logged once
    and the build goes on without device figures: the gate then uses the best remaining evidence
    (``predicted`` for a target that is not this machine).
    """

    def __init__(self, ctx: StageContext) -> None:
        self.ctx = ctx
        self.kind = ctx.inputs.profile.runner.kind
        self.unreachable: str | None = None if self.kind != "local" else "the target is this machine"

    def measure(self, artifact_path: Path, threads: int, who: str = "student") -> BenchResult | None:
        if self.unreachable is not None:
            return None
        profile = self.ctx.inputs.profile
        stage = BenchStage.for_profile(artifact_path, sha256_file(artifact_path), profile,
                                       _bench_settings(self.ctx, threads), who)  # fmt: skip
        try:
            return self.ctx.runner.run(stage)
        except (RunnerError, ToolchainError, ConfigError, ImportError) as exc:  # ImportError: no boards extra
            self.unreachable = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("%s: %s runner unreachable (%s); no device figures, the gate uses predicted latency",
                        profile.name, self.kind, self.unreachable)  # fmt: skip
            return None


def model_facts(model: nn.Module, input_shape: tuple[int, ...], size_file: Path | None = None) -> dict:
    ops = trace_ops(model, input_shape)
    facts = {"params": int(sum(p.numel() for p in model.parameters())), "macs": count_macs(ops)}
    if size_file is not None:
        facts["size_bytes"] = Path(size_file).stat().st_size
    return facts


def copy_artifact(src: Path, dst_dir: Path, name: str) -> Path:
    """Copy a cached artifact (and its sidecar) into the build's artifacts folder atomically."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / name
    tmp = dst_dir / f".{name}.tmp"
    if src.is_dir():
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(src, tmp)
        shutil.rmtree(dst, ignore_errors=True)
    else:
        shutil.copy2(src, tmp)
    tmp.replace(dst)
    side = src.with_name(src.name + ".sidecar.json")
    if side.exists():
        shutil.copy2(side, dst_dir / f"{name}.sidecar.json")
    return dst
