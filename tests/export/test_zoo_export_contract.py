"""Contract: every registered exporter x {fp32, int8} x every zoo architecture.

Each zoo model (half width) comes trained from ``tests/export/zoo_weights/`` (made by
``python -m tests.export.make_zoo_weights``: random weights give near-flat logits where top-1
agreement says nothing, and training all eight takes minutes). Each is exported, loaded in its own
runtime and compared with PyTorch on a fixed test batch: top-1 agreement >= 99 % (fp32) / 97 % (int8),
output shape and sidecar.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from edgekd.core.hashing import sha256_file
from edgekd.core.registry import EXPORTERS
from edgekd.data.bundled import example_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.export import check_parity, get_exporter, read_sidecar
from edgekd.export.base import PRECISIONS, SidecarInfo
from edgekd.models.zoo import ZOO
from tests.export.make_zoo_weights import FOLDER, build, held_out_accuracy

pytestmark = pytest.mark.slow

BATCH = 256  # the fixed comparison batch
CALIBRATION = 256  # the build's default (export.calibration_samples)
MIN_AGREEMENT = {"fp32": 0.99, "int8": 0.97}
MIN_TRAINED_ACCURACY = 0.7  # the shipped weights are trained, not random (10 classes: chance is 0.1)
CASES = [
    pytest.param(arch, fmt, precision, id=f"{arch}-{fmt}-{precision}")
    for arch in ZOO
    for fmt in EXPORTERS.names()
    for precision in PRECISIONS
]


@pytest.fixture(scope="module")
def bundle() -> DatasetBundle:
    return example_dataset()


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((FOLDER / "MANIFEST.json").read_text())


@pytest.fixture(scope="module")
def zoo_model(bundle: DatasetBundle, manifest: dict):
    models: dict[str, nn.Module] = {}

    def get(arch: str) -> nn.Module:
        if arch not in models:
            path = FOLDER / f"{arch}.pt"
            assert sha256_file(path) == manifest["models"][arch]["sha256"], f"{path} differs from its manifest"
            model = build(arch, bundle)
            model.load_state_dict(torch.load(path, weights_only=True))
            models[arch] = model.eval()
        return models[arch]

    return get


@pytest.mark.parametrize("arch", list(ZOO))
def test_shipped_zoo_weights_are_trained_for_this_data(zoo_model, bundle: DatasetBundle, manifest: dict, arch):
    assert manifest["data_digest"] == bundle.digest
    acc = held_out_accuracy(zoo_model(arch), bundle)
    assert acc >= MIN_TRAINED_ACCURACY
    assert acc == pytest.approx(manifest["models"][arch]["test_accuracy_1000"], abs=0.005)


@pytest.mark.parametrize(("arch", "fmt", "precision"), CASES)
def test_zoo_model_exports_loads_and_agrees(zoo_model, bundle: DatasetBundle, arch, fmt, precision, tmp_path):
    model = zoo_model(arch)
    info = SidecarInfo.from_bundle(bundle)
    x = bundle.to_tensor(bundle.test.x[:BATCH])
    with torch.no_grad():
        reference = model(x).numpy()
    calib = bundle.to_tensor(bundle.val.x[:CALIBRATION]).numpy() if precision == "int8" else None
    exporter = get_exporter(fmt)

    started = time.perf_counter()
    artifact = exporter.export(model, x[:1], precision, tmp_path, info, calibration=calib)
    seconds = time.perf_counter() - started

    run = exporter.load_runtime(artifact, threads=1)
    out = run(x.numpy()[:3])
    assert out.shape == (3, bundle.num_classes)
    parity = check_parity(run, x.numpy(), reference, bundle.test.y[:BATCH])
    assert parity.agreement >= MIN_AGREEMENT[precision], (
        f"{arch} {fmt} {precision}: agreement {parity.agreement:.3f}, max diff {parity.max_abs_diff:.3g}, "
        f"export took {seconds:.1f} s"
    )

    sidecar = read_sidecar(Path(artifact.path))
    assert sidecar.format == fmt
    assert sidecar.precision == precision
    assert list(sidecar.class_names) == list(bundle.class_names)
    assert tuple(sidecar.input.shape[1:]) in {(1, 28, 28), (28, 28, 1)}
