"""Contract: every registered exporter x {fp32, int8} x every zoo architecture.

Each zoo model (half width) comes trained from ``tests/export/zoo_weights/`` (made by
``python -m tests.export.make_zoo_weights``: random weights give near-flat logits where top-1
agreement says nothing, and training all eight takes minutes). Each is exported, loaded in its own
runtime and compared with PyTorch on a fixed test batch: top-1 agreement >= 99 % (fp32) / 97 % (int8),
output shape and sidecar.

Then every zoo entry, the field's structures of ``zoo_field`` included, pruned (random weights),
saved as a student file, rebuilt from its factory, cross-checked for costed MACs, and exported in
every format x precision (the ``zoo_field`` entries; fp32 ONNX for the others, whose unpruned
exports are covered above) with fp32 parity.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.bench.mac_check import check_macs
from edgekd.core.hashing import sha256_file
from edgekd.core.registry import EXPORTERS
from edgekd.data.bundled import example_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.export import check_parity, get_exporter, read_sidecar
from edgekd.export.base import PRECISIONS, SidecarInfo
from edgekd.models.loading import load_student, save_student
from edgekd.models.zoo import ZOO
from edgekd.models.zoo_field import FIELD_ZOO
from edgekd.prune.pruner import PruneResult, PruneSettings, prune
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


# ----------------------------------------------------------------------------------------------------
# Pruned students of every zoo entry, the field's structures included (zoo_field), with random
# weights: prune -> student file -> rebuilt from the factory -> costed -> exported -> parity.

ALL_ZOO = {**ZOO, **FIELD_ZOO}
PRUNE_RATIO = 0.5
PRUNED_CASES = [
    pytest.param(arch, fmt, precision, id=f"pruned-{arch}-{fmt}-{precision}")
    for arch in FIELD_ZOO
    for fmt in EXPORTERS.names()
    for precision in PRECISIONS
] + [pytest.param(arch, "onnx", "fp32", id=f"pruned-{arch}-onnx-fp32") for arch in ZOO]


@pytest.fixture(scope="module")
def pruned_student(bundle: DatasetBundle, tmp_path_factory):
    students: dict[str, tuple[nn.Module, PruneResult]] = {}

    def get(arch: str) -> tuple[nn.Module, PruneResult]:
        if arch not in students:
            factory = ALL_ZOO[arch]
            spec = f"{factory.__module__}:{factory.__name__}"
            torch.manual_seed(0)
            example = bundle.to_tensor(bundle.test.x[:1])
            result = prune(factory().eval(), example, PRUNE_RATIO, PruneSettings())
            path = save_student(result.model, tmp_path_factory.mktemp(arch) / "student.pt", spec)
            students[arch] = (load_student(path, spec), result)
        return students[arch]

    return get


@pytest.mark.parametrize("arch", list(ALL_ZOO))
def test_every_zoo_entry_prunes_reloads_from_its_file_and_is_fully_costed(pruned_student, bundle, arch):
    student, result = pruned_student(arch)
    x = bundle.to_tensor(bundle.test.x[:16])
    with torch.no_grad():
        assert torch.equal(student(x), result.model(x))
    before = sum(p.numel() for p in ALL_ZOO[arch]().parameters())
    assert sum(p.numel() for p in student.parameters()) < before or result.left_whole
    check = check_macs(student, (1, *bundle.input_shape))
    assert check.ok, check.warning()


@pytest.mark.parametrize(("arch", "fmt", "precision"), PRUNED_CASES)
def test_pruned_zoo_student_exports_and_agrees(pruned_student, bundle, arch, fmt, precision, tmp_path):
    student, _ = pruned_student(arch)
    x = bundle.to_tensor(bundle.test.x[:BATCH])
    with torch.no_grad():
        reference = student(x).numpy()
    calib = bundle.to_tensor(bundle.val.x[:37]).numpy() if precision == "int8" else None  # a last short batch
    exporter = get_exporter(fmt)
    artifact = exporter.export(student, x[:1], precision, tmp_path, SidecarInfo.from_bundle(bundle), calibration=calib)
    run = exporter.load_runtime(artifact, threads=1)
    out = run(x.numpy()[:3])
    assert out.shape == (3, bundle.num_classes) and np.isfinite(out).all()
    if precision == "fp32":  # random weights: only fp32 parity says something
        parity = check_parity(run, x.numpy(), reference, bundle.test.y[:BATCH])
        assert parity.max_abs_diff <= 1e-3 and parity.agreement >= MIN_AGREEMENT["fp32"], parity
