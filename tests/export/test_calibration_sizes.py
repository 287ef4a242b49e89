"""int8 calibration with any number of images, a last short batch included, in every exporter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgekd.export import get_exporter
from edgekd.export.base import SidecarInfo
from edgekd.export.calibration_batches import even_batch_size, even_batches
from edgekd.models.example_teacher import ResidualCNN


@pytest.mark.parametrize(("count", "size"), [(256, 32), (200, 25), (37, 1), (1, 1), (31, 31), (96, 32)])
def test_batches_are_equal_and_cover_every_image(count, size):
    data = np.arange(count, dtype=np.float32).reshape(count, 1, 1, 1)
    batches = even_batches(data, 32)
    assert even_batch_size(count, 32) == size
    assert {len(b) for b in batches} == {size}
    assert np.array_equal(np.concatenate(batches), data)


def _export(fmt: str, count: int, tmp_path) -> np.ndarray:
    torch.manual_seed(0)
    model = ResidualCNN((16, 32), blocks_per_stage=1).eval()
    info = SidecarInfo(tuple(str(i) for i in range(10)), (0.5,), (0.25,), (1, 28, 28))
    calib = np.random.default_rng(0).random((count, 1, 28, 28), dtype=np.float32)
    exporter = get_exporter(fmt)
    artifact = exporter.export(model, torch.zeros(1, 1, 28, 28), "int8", tmp_path, info, calib)
    return exporter.load_runtime(artifact, threads=1)(calib[:3])


@pytest.mark.parametrize("count", [200, 37])
def test_onnx_int8_calibrates_on_counts_that_are_not_a_multiple_of_the_batch(count, tmp_path):
    out = _export("onnx", count, tmp_path)
    assert out.shape == (3, 10) and np.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "count"), [("tflite", 33), ("openvino", 37)])
def test_other_int8_exporters_calibrate_on_odd_counts(fmt, count, tmp_path):
    out = _export(fmt, count, tmp_path)
    assert out.shape == (3, 10) and np.isfinite(out).all()
