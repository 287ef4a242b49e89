"""The build's validation stage: the logits validation needs (cached) and the report's ``validation`` section.

Cached like every stage (:class:`~edgekd.pipeline.cache.StageCache`): the student's validation logits, each
model's logits on the corruption suite (the teacher's entry survives a new student), and each exported
artifact's logits in its own runtime. The checks themselves are :func:`edgekd.validate.validate_build.validate_build`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.atomic import atomic_write_text
from edgekd.core.evidence import Evidence
from edgekd.core.hashing import sha256_file
from edgekd.core.inference import predict_logits, run_chunked
from edgekd.core.stage import StageSpec
from edgekd.gate.evidence import best_latency
from edgekd.pipeline.stages import StageContext
from edgekd.validate.corruptions import CORRUPTIONS, SEVERITIES, corruption_suite
from edgekd.validate.validate_build import ArtifactLogits, ValidationInputs, ValidationResult, validate_build

log = logging.getLogger(__name__)

#: Test images the corruption suite is made from (5 corruptions x 3 severities each).
CORRUPTION_SAMPLES = 150
#: Validation images the temperature is fitted on (None = the whole split: ECE on 1000 images moved by
#: ~0.01 with the draw, the size of the effect being fitted).
VAL_SAMPLES: int | None = None
#: At most this many test images per exported artifact in its runtime (parity already covers its accuracy).
ARTIFACT_SAMPLES = 1000
CORRUPTION_SEED = 0
DS_POLICY = "edge"


def split_logits(
    ctx: StageContext, model: nn.Module, model_key: str, who: str, split: str, n: int | None
) -> np.ndarray:
    """``model``'s logits on the first ``n`` images of ``split``, cached by model and data."""
    data = ctx.inputs.data
    key_in = {"model": model_key, "data": ctx.data_key, "split": split, "n": n}
    stage = f"logits-{who}-{split}"

    def produce(tmp: Path) -> None:
        part = getattr(data, split).subset(n)
        label = f"{who} logits ({split}, {len(part)} images)"
        with ctx.progress.task(label, total=None), torch.inference_mode():
            logits = predict_logits(model, data, part).astype(np.float32)
        np.save(tmp / "logits.npy", logits)

    return ctx.runner.run(StageSpec(stage, key_in, produce, lambda hit: np.load(hit / "logits.npy")))


def corruption_logits(ctx: StageContext, model: nn.Module, model_key: str, who: str) -> dict[str, np.ndarray]:
    """``model``'s logits on the clean and corrupted first :data:`CORRUPTION_SAMPLES` test images, cached."""
    data = ctx.inputs.data
    key_in = {"model": model_key, "data": ctx.data_key, "n": CORRUPTION_SAMPLES, "seed": CORRUPTION_SEED,
              "corruptions": list(CORRUPTIONS), "severities": list(SEVERITIES)}  # fmt: skip
    stage = f"corruptions-{who}"

    def produce(tmp: Path) -> None:
        test = data.test.subset(CORRUPTION_SAMPLES)
        variants = {"clean": test.x, **corruption_suite(test.x, seed=CORRUPTION_SEED)}
        out = {}
        label = f"{who} on {len(variants) - 1} corrupted copies of {len(test)} test images"
        with ctx.progress.task(label, total=None), torch.inference_mode():
            for name, x in variants.items():
                out[name] = predict_logits(model, data, type(test)(x, test.y)).astype(np.float32)
        np.savez(tmp / "logits.npz", **out)

    hit = ctx.runner.run(StageSpec(stage, key_in, produce))
    with np.load(hit / "logits.npz") as z:
        return {k: z[k] for k in z.files}


def artifact_samples(ctx: StageContext) -> int:
    """How many test images (a stratified subset) each artifact is validated on in its runtime."""
    return min(ctx.inputs.config.export.parity_samples or ARTIFACT_SAMPLES, ARTIFACT_SAMPLES)


def artifact_logits(ctx: StageContext, rec: dict, name: str) -> ArtifactLogits:
    """An exported artifact's logits in its own runtime on the parity test images, cached by its hash."""
    from edgekd.core.artifact import Artifact
    from edgekd.export.base import get_exporter

    data, n = ctx.inputs.data, artifact_samples(ctx)
    path = Path(rec["cache_path"])
    key_in = {"artifact": sha256_file(path), "data": ctx.data_key, "n": n}
    stage = f"runtime-logits-{rec['format']}-{rec['precision']}"

    def produce(tmp: Path) -> None:
        test = data.test.subset(n)
        exporter = get_exporter(rec["format"])
        with ctx.progress.task(f"validate {name} in its runtime ({len(test)} images)", total=None):
            run = exporter.load_runtime(Artifact.from_file(path, rec["format"], "export"),
                                        threads=max(1, torch.get_num_threads()))  # fmt: skip
            x = data.to_tensor(test.x).numpy()
            logits = run_chunked(run, x)
        np.save(tmp / "logits.npy", logits.astype(np.float32))

    hit = ctx.runner.run(StageSpec(stage, key_in, produce))
    runtime = (rec.get("bench") or {}).get("runtime") or rec["format"]
    return ArtifactLogits(name, runtime, np.load(hit / "logits.npy"))


def _teacher_ms(report: dict) -> tuple[float, str]:
    stat = report["budget"]["stat"]
    measured = [e for e in report["teacher"]["latency"] if e["evidence"] != Evidence.PREDICTED]
    entry = next((e for e in measured if e["stat"] == stat), measured[0] if measured else None)
    if entry is None:
        entry = report["teacher"]["latency"][0]
    label = f"{entry['evidence']} {entry['stat']}, {entry.get('artifact', entry['runtime'])}"
    return float(entry["ms"]), label


def _student_ms(report: dict, host_is_target: bool) -> tuple[float, str]:
    b = report["budget"]
    primary = f"student-{b['format']}-{b['precision']}"
    entry = best_latency(report["student"]["latency"], primary, b["precision"], b["stat"], host_is_target)
    if entry is None:
        entry = report["student"]["latency"][0]
    return float(entry["ms"]), f"{entry['evidence']} {entry['stat']}, {primary} on {report['target']['name']}"


def run_validation(
    ctx: StageContext,
    report: dict,
    student: nn.Module,
    student_key: str,
    student_test: np.ndarray,
    teacher_test: np.ndarray,
    exports: list[dict],
) -> ValidationResult:
    """Validate teacher vs student (and each exported artifact in its runtime) for ``report``."""
    inp = ctx.inputs
    data = inp.data
    s_val = split_logits(ctx, student, student_key, "student", "val", VAL_SAMPLES)
    corrupted = {
        "teacher": corruption_logits(ctx, inp.teacher, inp.teacher_key, "teacher"),
        "student": corruption_logits(ctx, student, student_key, "student"),
    }
    arts = [artifact_logits(ctx, rec, a["name"]) for rec, a in zip(exports, report["artifacts"], strict=True)]
    s_ms, s_label = _student_ms(report, inp.profile.measured_locally)
    t_ms, t_label = _teacher_ms(report)
    vi = ValidationInputs(
        class_names=data.class_names,
        test_labels=data.test.y,
        teacher_test=teacher_test,
        student_test=student_test,
        val_labels=data.val.subset(VAL_SAMPLES).y,
        artifact_labels=data.test.subset(artifact_samples(ctx)).y,
        student_val=s_val,
        student_size=report["student"]["params"],
        teacher_size=report["teacher"]["params"],
        student_ms=s_ms,
        teacher_ms=t_ms,
        student_ms_evidence=s_label,
        teacher_ms_evidence=t_label,
        artifacts=arts,
        corruption_labels=data.test.subset(CORRUPTION_SAMPLES).y,
        corruption_logits=corrupted,
        prune_sweep=report.get("prune_sweep"),
        ds_policy=DS_POLICY,
        corruption_seed=CORRUPTION_SEED,
    )
    return validate_build(vi)


def apply_validation(report: dict, result: ValidationResult, out_dir: Path) -> None:
    """Merge ``result`` into ``report`` and store the fitted temperature in each artifact's sidecar."""
    report["validation"] = result.section
    report["teacher"].update(result.teacher)
    report["student"].update(result.student)
    temperature = result.section["temperature"]
    fit = result.section["temperature_scaling"]["val"]
    for art in report["artifacts"]:
        art["temperature"] = temperature
        side = out_dir / "artifacts" / f"{art['name']}.sidecar.json"
        if not side.exists():
            continue
        sidecar = json.loads(side.read_text(encoding="utf-8"))
        sidecar["temperature"] = temperature
        sidecar["temperature_fit"] = {"split": "val", "samples": fit["fit_samples"],
                                      "note": "divide the output logits by temperature before softmax"}  # fmt: skip
        atomic_write_text(side, json.dumps(sidecar, indent=2) + "\n")


def energy_breakeven_section(report: dict, host_profile: str = "x86-64-host") -> dict | None:
    """Distillation energy on the training host vs energy saved per inference on the target.

    The per-inference figures are the first teacher and student energy entries at the budget's
    precision (the deployed precision, at the best evidence listed first); the host power comes from
    the ``host_profile`` target's power figures with every core busy, as torch trains here.
    """
    from edgekd.config.targets import load_target
    from edgekd.validate.energy_breakeven import breakeven, host_power_w

    precision = report["budget"]["precision"]

    def first(who: str) -> dict | None:
        return next((e for e in report[who].get("energy") or [] if e.get("precision") == precision), None)

    teacher, student = first("teacher"), first("student")
    seconds = (report["student"].get("distill") or {}).get("seconds")
    if teacher is None or student is None or seconds is None:
        return None
    host = load_target(host_profile)
    power = host_power_w(host.power, host.cpu.cores)
    section = breakeven(seconds, power, teacher["mj"], student["mj"])
    evidence = {"teacher": teacher["evidence"], "student": student["evidence"]}
    section.update({"host_profile": host_profile, "precision": precision, "per_inference_evidence": evidence})
    return section
