"""The quantised model's own PyTorch logits: the fake-quant parity reference of a QAT artifact."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from edgekd.distill.qat_run import quantized_logits
from edgekd.export.base import QuantizedModel


class ChannelsLast(nn.Module):
    """Accepts only NHWC input with 3 channels last (as a converted PT2E graph does) and at least 2 samples."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[1:] == (4, 5, 3) and len(x) >= 2, x.shape
        return self.fc(x.reshape(len(x), -1))


def test_nhwc_graphs_get_permuted_input_in_batches_and_a_lone_sample_works() -> None:
    torch.manual_seed(0)
    module = ChannelsLast().eval()
    x = np.random.default_rng(0).standard_normal((7, 3, 4, 5)).astype(np.float32)
    got = quantized_logits(QuantizedModel("tflite", module, "qat-pt2e", layout="NHWC"), x, batch_size=3)
    with torch.no_grad():
        want = module(torch.from_numpy(x).permute(0, 2, 3, 1)).numpy()
    assert got.shape == (7, 2)  # batches of 3, 3 and a lone last sample
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_nchw_models_take_the_input_as_is() -> None:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(12, 4)).eval()
    x = np.random.default_rng(1).standard_normal((5, 1, 3, 4)).astype(np.float32)
    got = quantized_logits(QuantizedModel("onnx", module, "qat-nncf"), x)
    with torch.no_grad():
        np.testing.assert_allclose(got, module(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)
