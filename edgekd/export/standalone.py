"""Export a user's checkpoint outside a build (``edgekd export``): load, export, check parity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgekd.core.artifact import Artifact
from edgekd.core.errors import InputError
from edgekd.core.inference import check_fit, predict_logits
from edgekd.data.bundled import example_dataset
from edgekd.data.dataset_files import load_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.data.validation import check_finite_weights, check_output_dir
from edgekd.export.base import SidecarInfo, get_exporter
from edgekd.export.parity import ParityResult, check_parity


@dataclass
class ExportOutcome:
    artifact: Artifact
    parity: ParityResult


def load_checkpoint(path: Path, factory: str | None) -> nn.Module:
    """An edgekd student file, or a state dict for ``factory`` (both loaded with weights_only=True)."""
    from edgekd.models.loading import load_model, load_student, load_weights_only

    if not Path(path).is_file():
        raise InputError(f"model file {path} does not exist")
    payload = load_weights_only(path, "pass an edgekd student.pt or a state dict with --factory")
    if isinstance(payload, dict) and "structure" in payload:
        return load_student(path, factory, payload)
    if factory is None:
        raise InputError(f"{path} is a plain state dict; pass --factory module:function to build the model")
    return load_model(factory, path)


def export_checkpoint(
    path: Path,
    fmt: str,
    precision: str,
    out_dir: Path,
    factory: str | None = None,
    data_path: Path | None = None,
    calibration_samples: int = 256,
    parity_samples: int | None = 500,
    opset: int = 17,
) -> ExportOutcome:
    """Export ``path`` as ``fmt``/``precision`` into ``out_dir`` and check parity on the test split."""
    exporter = get_exporter(fmt)
    check_output_dir(out_dir)
    model = load_checkpoint(path, factory)
    check_finite_weights(model, str(path))
    data: DatasetBundle = load_dataset(data_path) if data_path else example_dataset()
    data = check_fit(model, data)
    calib = data.to_tensor(data.train.subset(calibration_samples).x[:]).numpy()
    example = data.to_tensor(data.test.x[:1])
    info = SidecarInfo.from_bundle(data)
    artifact = exporter.export(model, example, precision, out_dir, info, calib, opset)
    test = data.test.subset(parity_samples)
    run = exporter.load_runtime(artifact, threads=max(1, torch.get_num_threads()))
    parity = check_parity(run, data.to_tensor(test.x).numpy(), predict_logits(model, data, test), test.y)
    return ExportOutcome(artifact, parity)
