"""``edgekd prune --ratio R``: one uniform ratio, no budget search (as Torch-Pruning users prune).

Writes ``student.pt`` and ``prune.json`` (ratio, channels kept, layers left whole and why, params,
MACs with their cross-check, predicted latency) atomically into the output folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgekd.bench.latency_model import LatencyModel, count_macs, trace_ops
from edgekd.bench.mac_check import check_macs
from edgekd.core.atomic import atomic_write_text
from edgekd.core.errors import ConfigError
from edgekd.pipeline.inputs import BuildInputs
from edgekd.pipeline.prune_plan import PruneJob, prune_settings
from edgekd.prune.pruner import prune


def prune_at_ratio(inputs: BuildInputs, out_dir: Path, job: PruneJob, ratio: float) -> dict:
    """Prune ``ratio`` of every prunable layer's channels; write the student file and ``prune.json``."""
    from edgekd.models.loading import save_student

    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"--ratio {ratio} must be in [0, 1), e.g. --ratio 0.5")
    settings = prune_settings(inputs, job)
    example = inputs.data.to_tensor(inputs.data.test.x[:1])
    result = prune(inputs.teacher, example, ratio, settings)
    shape = (1, *inputs.data.input_shape)
    latency_model = LatencyModel.for_target(inputs.profile)
    ops = trace_ops(result.model, shape)
    precision, threads = inputs.profile.primary.precision, inputs.profile.budget.threads
    record = {
        "mode": "ratio", "ratio": result.ratio, "requested_ratio": ratio, "target": inputs.profile.name,
        "importance": settings.importance, "round_to": settings.round_to, "channels": result.channels,
        "left_whole": result.left_whole, "params": int(sum(p.numel() for p in result.model.parameters())),
        "teacher_params": int(sum(p.numel() for p in inputs.teacher.parameters())), "macs": count_macs(ops),
        "mac_check": check_macs(result.model, shape).as_dict(), "precision": precision, "threads": threads,
        "predicted_ms": round(latency_model.predict_ms(ops, precision, threads), 4), "evidence": "predicted",
    }  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    save_student(result.model, out_dir / "student.pt", inputs.config.teacher.factory)
    atomic_write_text(out_dir / "prune.json", json.dumps(record, indent=2) + "\n")
    return record
