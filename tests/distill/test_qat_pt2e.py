"""PT2E QAT preparation for the TFLite path: the litert-torch workaround and the trainable wrapper."""

from __future__ import annotations

import pytest
import torch

from edgekd.distill.qat_pt2e import Pt2eQatModule, module_patterns, observe, prepare_pt2e_qat, qat_quantizer
from edgekd.models.example_teacher import ResidualCNN


@pytest.fixture(scope="module")
def student() -> ResidualCNN:
    torch.manual_seed(0)
    return ResidualCNN(widths=(8, 16), blocks_per_stage=1).eval()


@pytest.fixture(scope="module")
def prepared(student: ResidualCNN) -> Pt2eQatModule:
    return prepare_pt2e_qat(student, torch.randn(2, 1, 28, 28))


def test_litert_pattern_workaround_is_still_needed(student: ResidualCNN) -> None:
    """Fails once litert-torch/torch accept the conv-bn pattern as given: then drop ``module_patterns``."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e

    x = torch.randn(2, 1, 28, 28)
    batch = torch.export.Dim("batch", max=1024)
    graph = torch.export.export(ResidualCNN((8, 16), 1).train(), (x,), dynamic_shapes=({0: batch},)).module()
    with pytest.raises(ValueError, match=r"instance of `torch\.nn\.Module`"):
        prepare_qat_pt2e(graph, qat_quantizer())


def test_module_patterns_restores_the_original_helper() -> None:
    from litert_torch.quantize import pt2e_quantizer_utils as utils

    original = utils._get_aten_graph_module_for_pattern
    with pytest.raises(RuntimeError), module_patterns():
        assert utils._get_aten_graph_module_for_pattern is not original
        raise RuntimeError("boom")
    assert utils._get_aten_graph_module_for_pattern is original


def test_prepared_graph_has_fake_quantisers_and_leaves_the_student_alone(
    student: ResidualCNN, prepared: Pt2eQatModule
) -> None:
    fq = [m for m in prepared.graph.modules() if type(m).__name__.endswith("FakeQuantize")]
    assert len(fq) >= 6  # stem, two blocks' convs, shortcut, classifier weights and activations
    assert all(not p.requires_grad or p is not q for p in prepared.parameters() for q in student.parameters())
    before = {k: v.clone() for k, v in student.state_dict().items()}
    opt = torch.optim.SGD(prepared.parameters(), lr=0.1)
    prepared.train()
    for _ in range(2):
        loss = prepared(torch.randn(8, 1, 28, 28)).logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_eval_mode_freezes_ranges_and_batch_norm(prepared: Pt2eQatModule) -> None:
    prepared.train()
    prepared(torch.randn(16, 1, 28, 28) * 3)  # observers see data in train mode
    prepared.eval()
    assert not prepared.training
    state = {k: v.clone() for k, v in prepared.state_dict().items()}
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        first = prepared(x)
        prepared(torch.randn(16, 1, 28, 28) * 10)  # would widen the ranges if observers were on
        again = prepared(x)
        single = prepared(x[:1])
    assert torch.equal(first, again)
    # Ranges and running statistics stay put; the exported graph still counts batches (harmless).
    changed = [k for k, v in prepared.state_dict().items() if not torch.equal(state[k], v)]
    assert [k for k in changed if not k.endswith("num_batches_tracked")] == []
    torch.testing.assert_close(single, first[:1], atol=1e-5, rtol=0)  # running statistics: no batch effect
    prepared.train()
    assert prepared.training
    with torch.no_grad():
        batch_stats = prepared(x)
    assert not torch.allclose(batch_stats, first, atol=1e-3)  # train mode normalises with batch statistics


def test_observe_initialises_the_ranges_from_data(student: ResidualCNN) -> None:
    qat = prepare_pt2e_qat(student, torch.randn(2, 1, 28, 28))
    x = torch.randn(64, 1, 28, 28)
    observe(qat, x)
    qat.eval()
    scales = [float(m.scale.max()) for m in qat.graph.modules() if type(m).__name__.endswith("FakeQuantize")]
    assert scales and all(0 < s < 1 for s in scales)  # the default range (scale 1) would quantise coarsely
    with torch.no_grad():
        ref, out = student.eval()(x), qat(x)
    # loose: observe() also moved the BatchNorm running statistics, the float student kept its own
    assert float((ref - out).abs().mean()) < 0.25 * float(ref.abs().mean())
