"""NNCF QAT preparation for the OpenVINO/ONNX paths (pure-torch kernels: nothing is compiled in tests)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.distill.qat_nncf import (
    EXTENSIONS_DIR,
    NncfQatSettings,
    head_names,
    nncf_environment,
    nncf_quantized,
    prepare_nncf_qat,
    use_kernels,
)
from edgekd.models.example_teacher import ResidualCNN

SETTINGS = NncfQatSettings(kernels="reference")


@pytest.fixture(scope="module")
def student() -> ResidualCNN:
    torch.manual_seed(0)
    return ResidualCNN(widths=(8, 16), blocks_per_stage=1).eval()


@pytest.fixture(scope="module")
def calibration() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((40, 1, 28, 28)).astype(np.float32)


@pytest.fixture(scope="module")
def prepared(student: ResidualCNN, calibration: np.ndarray) -> nn.Module:
    return prepare_nncf_qat(student, calibration, SETTINGS)


def _scales(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        n: p.detach().clone() for n, p in model.named_parameters() if "nncf" in n and n.endswith("_scale_param_storage")
    }


def test_quantisers_cover_the_convs_but_not_the_head(prepared: nn.Module) -> None:
    scales = _scales(prepared)
    assert any("stem/0/conv2d" in n for n in scales), sorted(scales)
    assert sum("conv2d" in n for n in scales) >= 5  # every conv's weight
    assert not [n for n in scales if "classifier" in n]  # the head stays float, as in the OpenVINO PTQ path


def test_fine_tuning_moves_the_quantiser_scales_not_the_student(student: ResidualCNN, prepared: nn.Module) -> None:
    before_student = {k: v.clone() for k, v in student.state_dict().items()}
    before = _scales(prepared)
    opt = torch.optim.SGD(prepared.parameters(), lr=0.05)
    prepared.train()
    for _ in range(3):
        x = torch.randn(16, 1, 28, 28)
        loss = nn.functional.cross_entropy(prepared(x), torch.randint(0, 10, (16,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _scales(prepared)
    assert any(not torch.equal(before[n], after[n]) for n in before), "quantiser scales are not trained"
    assert all(torch.equal(before_student[k], v) for k, v in student.state_dict().items())


def test_fake_quantised_output_stays_close_to_float(student: ResidualCNN, calibration: np.ndarray) -> None:
    qmodel = prepare_nncf_qat(student, calibration, SETTINGS).eval()
    x = torch.from_numpy(calibration[:16])
    with torch.no_grad():
        ref, out = student(x), qmodel(x)
    assert not torch.equal(ref, out)  # really quantised
    assert float((ref - out).abs().max()) < 0.25 * float(ref.abs().max())


def test_head_names_point_at_the_last_linear() -> None:
    assert head_names(ResidualCNN((8, 16), 1)) == ["classifier/linear/0"]
    assert head_names(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.Flatten(), nn.Linear(4, 2)))) == [
        "1/1/linear/0"
    ]
    assert head_names(nn.Conv2d(1, 4, 3)) == []


def test_environment_owns_the_extension_folder_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)
    monkeypatch.delenv("NNCF_EXTENSION_LOAD_TIMEOUT", raising=False)
    with nncf_environment():
        assert os.environ["TORCH_EXTENSIONS_DIR"] == str(EXTENSIONS_DIR)
        assert int(os.environ["NNCF_EXTENSION_LOAD_TIMEOUT"]) > 60
        assert os.environ["NNCF_CI"] == "1"
    assert "TORCH_EXTENSIONS_DIR" not in os.environ
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", "/somewhere/else")
    with nncf_environment():
        assert os.environ["TORCH_EXTENSIONS_DIR"] == "/somewhere/else"


def test_bad_options_are_config_errors(prepared: nn.Module) -> None:
    with pytest.raises(ConfigError, match="kernels"):
        use_kernels("fast")
    with pytest.raises(ConfigError, match="tflite"):
        nncf_quantized(prepared, "tflite")
    q = nncf_quantized(prepared, "openvino")
    assert (q.format, q.method, q.layout) == ("openvino", "qat-nncf", "NCHW")
