"""``edgekd build``: prune → distill → export → bench → gate → report, each stage cached."""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from edgekd import __version__
from edgekd.bench.energy import energy_entries, measured_by_artifact
from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.bench.precision_compare import compare_precisions
from edgekd.config.build_config import BuildConfig
from edgekd.core.evidence import Evidence
from edgekd.core.hashing import sha256_file
from edgekd.core.inference import accuracy, predict_logits
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.gate.rules import evaluate_gate
from edgekd.models.loading import load_student
from edgekd.pipeline.arm_parity_stage import arm_parity_stage
from edgekd.pipeline.cache import StageCache, remove_interrupted
from edgekd.pipeline.inputs import BuildInputs, resolve
from edgekd.pipeline.qat_stage import QatStage, quantization_record
from edgekd.pipeline.stages import (
    DeviceBench,
    StageContext,
    bench_stage,
    copy_artifact,
    distill_stage,
    export_stage,
    model_facts,
    prune_stage,
    teacher_logits,
)
from edgekd.pipeline.validate_stage import apply_validation, energy_breakeven_section, run_validation
from edgekd.report.markdown_renderer import summary_line
from edgekd.report.report_data import SCHEMA_VERSION, latency_entry
from edgekd.report.writer import write_report

log = logging.getLogger(__name__)


@dataclass
class BuildOutcome:
    report: dict
    report_path: Path
    passed: bool

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1


def _machine() -> dict:
    import onnxruntime

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def run_build(config: BuildConfig, progress: ProgressReporter = NULL_PROGRESS) -> BuildOutcome:
    """Run the whole pipeline; raises EdgeKDError on bad input before writing anything."""
    started = time.perf_counter()
    inputs = resolve(config)
    out = inputs.out_dir
    remove_interrupted(out)  # a killed run's temporary folders and files; completed entries stay
    ctx = StageContext(inputs, StageCache(out / ".stages"), progress)
    profile, data = inputs.profile, inputs.data
    threads = config.bench.threads or profile.budget.threads
    timings: dict[str, float] = {}

    def timed(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    pruned_file, prune_record = prune_stage(ctx)  # first: an impossible budget fails fast
    timed("prune", t0)

    t0 = time.perf_counter()
    t_test = teacher_logits(ctx, "test")
    teacher_acc = accuracy(t_test, data.test.y)
    timed("teacher_eval", t0)

    t0 = time.perf_counter()
    student_file, distill_record = distill_stage(ctx, pruned_file)
    student = load_student(student_file, config.teacher.factory)
    student_key = sha256_file(student_file)
    s_test = predict_logits(student, data, data.test)
    student_acc = accuracy(s_test, data.test.y)
    timed("distill", t0)

    t0 = time.perf_counter()
    # the student's PyTorch logits on the test split are the parity reference of every artifact
    qat = QatStage(ctx, student, student_key, s_test)  # mode qat: int8 trained by QAT, parity vs the quantised model
    exports = [qat.export(e.format) if qat.applies(e.precision)
               else export_stage(ctx, student, student_key, e.format, e.precision, s_test)
               for e in profile.exports]  # fmt: skip
    teacher_onnx = export_stage(ctx, inputs.teacher, inputs.teacher_key, "onnx", "fp32", reference=None)
    timed("export", t0)

    t0 = time.perf_counter()
    for rec in exports:  # Arm targets: the .tflite artifacts also run on an emulated Arm core
        rec["arm_parity"] = arm_parity_stage(ctx, Path(rec["cache_path"]), rec["precision"], s_test)
    timed("arm_parity", t0)

    t0 = time.perf_counter()
    device = DeviceBench(ctx)
    for rec in exports:
        rec["bench"] = bench_stage(ctx, Path(rec["cache_path"]), threads).to_record()
        on_device = device.measure(Path(rec["cache_path"]), threads)  # None for a host target or no device
        rec["device_bench"] = on_device.to_record() if on_device is not None else None
    teacher_bench = bench_stage(ctx, Path(teacher_onnx["cache_path"]), threads, "teacher").to_record()
    timed("bench", t0)

    report = _assemble(ctx, inputs, threads, teacher_acc, student_acc, student, student_file,
                       prune_record, distill_record, exports, teacher_bench)  # fmt: skip
    report["timings_s"] = timings
    t0 = time.perf_counter()
    validation = run_validation(ctx, report, student, student_key, s_test, t_test, exports)
    apply_validation(report, validation, out)  # also stores the temperature in each artifact's sidecar
    report["validation"]["energy_breakeven"] = energy_breakeven_section(report)
    timed("validate", t0)
    report["stages"] = [r.to_json() for r in ctx.runner.records]  # reused or computed, with original times
    report["gate"] = evaluate_gate(report, profile, config.gate.max_accuracy_drop)
    timings["total"] = round(time.perf_counter() - started, 2)
    report["summary"] = summary_line(report)
    path = write_report(report, out)
    return BuildOutcome(report, path, report["gate"]["passed"])


def _measured(bench: dict, precision: str, threads: int, artifact: str) -> list[dict]:
    stats = bench["stats"]
    return [latency_entry(stats[f"{s}_ms"], s, bench["evidence"], bench["runtime"], precision, threads, artifact)
            for s in ("p50", "p90", "p99")]  # fmt: skip


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def _assemble(
    ctx: StageContext,
    inputs: BuildInputs,
    threads: int,
    teacher_acc: float,
    student_acc: float,
    student: torch.nn.Module,
    student_file: Path,
    prune_record: dict,
    distill_record: dict,
    exports: list[dict],
    teacher_bench: dict,
) -> dict:
    profile, data, config = inputs.profile, inputs.data, inputs.config
    model = LatencyModel.for_target(profile)
    shape = ctx.input_shape
    precisions = sorted({e.precision for e in profile.exports})

    def predicted(net: torch.nn.Module) -> list[dict]:
        ops = trace_ops(net, shape)
        how = model.describe()
        return [latency_entry(model.predict_ms(ops, p, threads), "p50", Evidence.PREDICTED, how, p, threads)
                for p in precisions]  # fmt: skip

    teacher = {**model_facts(inputs.teacher, shape, inputs.teacher_weights), "accuracy": teacher_acc}
    teacher["latency"] = predicted(inputs.teacher) + _measured(teacher_bench, "fp32", threads, "teacher onnx-fp32")
    teacher["energy"] = energy_entries(teacher["latency"], profile.power,
                                       measured_by_artifact({"teacher onnx-fp32": teacher_bench}))  # fmt: skip
    artifacts_dir = inputs.out_dir / "artifacts"
    artifacts, student_latency = [], predicted(student)
    for rec in exports:
        name = f"student-{rec['format']}-{rec['precision']}{Path(rec['file']).suffix}"
        dst = copy_artifact(Path(rec["cache_path"]), artifacts_dir, name)
        lat = _measured(rec["bench"], rec["precision"], threads, name)
        if rec.get("device_bench"):
            lat += _measured(rec["device_bench"], rec["precision"], threads, name)
        student_latency += lat
        artifacts.append({
            "name": name, "path": str(dst.relative_to(inputs.out_dir)), "format": rec["format"],
            "precision": rec["precision"], "sha256": sha256_file(dst), "size_bytes": _size(dst),
            "parity": rec["parity"], "arm_parity": rec.get("arm_parity"), "latency": lat, "bench": rec["bench"],
            "device_bench": rec.get("device_bench"),
            "primary": rec is exports[0], "quantization": quantization_record(config, rec),
        })  # fmt: skip
    student_pt = copy_artifact(student_file, artifacts_dir, "student.pt")
    student_info = {**model_facts(student, shape, student_pt), "accuracy": student_acc,
                    "latency": student_latency, "prune": prune_record, "distill": distill_record,
                    "checkpoint": str(student_pt.relative_to(inputs.out_dir))}  # fmt: skip
    sensors = measured_by_artifact({a["name"]: a["bench"] for a in artifacts})
    student_info["energy"] = energy_entries(student_latency, profile.power, sensors)
    max_drop = config.gate.max_accuracy_drop
    # host latency of each artifact at the same threads: int8 vs fp32 per runtime, and why when int8 loses
    int8_vs_fp32 = compare_precisions(
        {"format": a["format"], "precision": a["precision"], "ms": a["bench"]["stats"]["p50_ms"],
         "runtime": a["bench"]["runtime"]} for a in artifacts
    )  # fmt: skip
    return {
        "schema_version": SCHEMA_VERSION,
        "edgekd_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"name": profile.name, "description": profile.description, "arch": profile.arch,
                   "runner": profile.runner.kind, "measured_locally": profile.measured_locally},
        "budget_ms": inputs.budget_ms,
        "budget": {"stat": profile.budget.stat, "threads": threads, "precision": profile.primary.precision,
                   "format": profile.primary.format,
                   "max_accuracy_drop": profile.budget.max_accuracy_drop if max_drop is None else max_drop},
        "machine": _machine(),
        "preprocess": data.describe()["preprocess"],
        "dataset": {"name": data.name, "source": data.source, "digest": data.digest, **data.describe(),
                    "splits": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
                    "classes": list(data.class_names)},
        "teacher": teacher,
        "student": student_info,
        "artifacts": artifacts,
        "int8_vs_fp32": int8_vs_fp32,
        "lineage": {"cache_hits": ctx.cache.hits, "computed": ctx.cache.misses,
                    "teacher_key": inputs.teacher_key, "student_sha256": sha256_file(student_file)},
    }  # fmt: skip
