"""The latency trace costs every conv/linear/matmul that runs, checked against PyTorch's own count."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

from edgekd.bench.latency_trace import count_macs, trace_ops
from edgekd.bench.mac_check import check_macs
from edgekd.models.zoo import ZOO
from edgekd.models.zoo_field import FIELD_ZOO

SHAPE = (1, 1, 28, 28)


@pytest.mark.parametrize("arch", list({**ZOO, **FIELD_ZOO}))
def test_traced_macs_match_the_counted_ones_for_every_zoo_structure(arch):
    model = {**ZOO, **FIELD_ZOO}[arch]().eval()
    check = check_macs(model, SHAPE)
    assert check.ok, check.warning()
    assert check.counted > 0 and check.uncosted == ()


def test_functional_convs_in_a_conv_subclass_forward_are_costed():
    model = FIELD_ZOO["timm_subclass"]().eval()
    ops = trace_ops(model, SHAPE)
    names = {op.name for op in ops if op.kind in ("conv", "depthwise", "pointwise")}
    assert {"stem", "block1.dw", "block1.pw", "expand"} <= names
    assert count_macs(ops) == check_macs(model, SHAPE).counted


class EinsumMixer(nn.Module):
    """A channel mixer written with einsum: real work the trace does not know."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.mix = nn.Parameter(torch.randn(16, 16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.einsum("nchw,oc->nohw", self.conv(x), self.mix)
        return self.fc(x.mean((2, 3)))


def test_a_gap_is_a_warning_naming_the_uncosted_module(caplog):
    with caplog.at_level(logging.WARNING):
        check = check_macs(EinsumMixer().eval(), SHAPE)
    assert not check.ok and check.gap > 0.5
    assert check.uncosted == ("<root>",)
    assert "uncosted: <root>" in check.warning() and check.as_dict()["warning"] == check.warning()
    assert any("MACs counted by PyTorch" in r.message for r in caplog.records)
