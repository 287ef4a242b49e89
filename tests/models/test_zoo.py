"""Contract tests over every zoo architecture: build, trace, prune, cost and export to ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import fx, nn

from edgekd.bench.latency_model import count_macs, trace_ops
from edgekd.export.base import SidecarInfo, get_exporter
from edgekd.models.zoo import ZOO
from edgekd.prune.pruner import PruneSettings, prune

INPUT_SHAPE = (1, 28, 28)
INFO = SidecarInfo(class_names=tuple(f"class{i}" for i in range(10)), mean=(0.5,), std=(0.5,), input_shape=INPUT_SHAPE)
RATIOS = (0.3, 0.6)

# The pruner's default ignores the classifier and the convs producing a channel split (chunk): Torch-Pruning
# mis-maps a split whose input is a concat + shuffle and crashes in ``pruner.step()`` (TOOLCHAIN.md, Pruning).
CASES = [pytest.param(name, ratio, id=f"{name}-{ratio}") for name in ZOO for ratio in RATIOS]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _convs(model: nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return ZOO[name]().eval()


def check_pruned_contract(name: str, ratio: float, settings: PruneSettings, tmp_path: Path) -> None:
    """Prune the ``name`` model at ``ratio`` and check it runs, shrinks, costs less and exports to ONNX."""
    model = _build(name)
    x = torch.randn(2, *INPUT_SHAPE)
    pruned = prune(model, x[:1], ratio, settings).model

    with torch.no_grad():
        expected = pruned(x)
    assert expected.shape == (2, 10)
    assert _params(pruned) < _params(model)

    before, after = _convs(model), _convs(pruned)
    for layer, channels in after.items():
        if channels != before[layer] and before[layer] >= 8:
            assert channels % 8 == 0 and channels >= 8, (layer, before[layer], channels)

    macs_before = count_macs(trace_ops(model, (1, *INPUT_SHAPE)))
    macs_after = count_macs(trace_ops(pruned, (1, *INPUT_SHAPE)))
    assert macs_after < macs_before

    exporter = get_exporter("onnx")
    artifact = exporter.export(pruned, x, "fp32", tmp_path, INFO)
    got = exporter.load_runtime(artifact)(x.numpy())
    np.testing.assert_allclose(got, expected.numpy(), rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_model_builds_traces_and_honours_its_arguments(name: str) -> None:
    fx.symbolic_trace(_build(name))
    wide = ZOO[name](width=1.5, num_classes=7, in_channels=3).eval()
    assert wide(torch.zeros(2, 3, 28, 28)).shape == (2, 7)
    assert _params(wide) > _params(_build(name))
    assert all(c % 8 == 0 for c in _convs(_build(name)).values() if c > 1)


@pytest.mark.parametrize(("name", "ratio"), CASES)
def test_pruned_zoo_model_runs_shrinks_and_exports(name: str, ratio: float, tmp_path: Path) -> None:
    check_pruned_contract(name, ratio, PruneSettings(round_to=8), tmp_path)


@pytest.mark.parametrize("ratio", RATIOS)
def test_shufflenet_prunes_when_split_producers_are_ignored(ratio: float, tmp_path: Path) -> None:
    producers = [
        name for name, _ in _build("shufflenet_v2").named_modules() if name.endswith(("branch1.1.0", "branch2.2.0"))
    ]
    settings = PruneSettings(round_to=8, ignored=("classifier", *producers))
    check_pruned_contract("shufflenet_v2", ratio, settings, tmp_path)


@pytest.mark.parametrize("importance", ["groupnorm", "bnscale"])
@pytest.mark.parametrize("name", list(ZOO))
def test_every_arch_prunes_with_the_newer_criteria(name: str, importance: str) -> None:
    model = _build(name)
    x = torch.randn(2, *INPUT_SHAPE)
    pruned = prune(model, x[:1], 0.5, PruneSettings(round_to=8, importance=importance)).model
    assert pruned(x).shape == (2, 10)
    assert _params(pruned) < 0.75 * _params(model)
