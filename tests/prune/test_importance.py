import pytest
import torch
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.prune.budget_search import search_ratio
from edgekd.prune.pruner import PruneSettings, calibration_batches, prune

EXAMPLE = torch.randn(1, 1, 12, 12)


def _decoy_model() -> nn.Sequential:
    """conv1's channels 0-7 have large weights but conv2 ignores them (zero weights); 8-15 are small but used.

    Magnitude (l1) keeps the large, useless channels; first-order Taylor (|w x dL/dw|) sees that their
    gradient is zero and keeps the used ones, so its pruned model computes exactly what the original does.
    """
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3), nn.ReLU(), nn.Conv2d(16, 8, 3), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))
    with torch.no_grad():
        model[0].weight[:8] *= 50.0
        model[2].weight[:, :8] = 0.0
    return model.eval()


@pytest.fixture
def batches():
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(16, 1, 12, 12, generator=g), torch.randint(0, 10, (16,), generator=g))]


def test_taylor_uses_gradients_and_differs_from_l1(batches):
    model = _decoy_model()
    x = torch.randn(4, 1, 12, 12)
    with torch.no_grad():
        reference = model(x)
    l1 = prune(model, EXAMPLE, 0.5, PruneSettings("l1", round_to=8)).model
    taylor = prune(model, EXAMPLE, 0.5, PruneSettings("taylor", round_to=8), calibration=batches).model
    assert l1[0].out_channels == taylor[0].out_channels == 8
    with torch.no_grad():
        assert torch.allclose(taylor(x), reference, atol=1e-5)  # only unused channels removed
        assert not torch.allclose(l1(x), reference, atol=1e-3)  # l1 kept the large decoys instead
        assert l1[0].weight.abs().mean() > 10 * taylor[0].weight.abs().mean()


def test_taylor_reads_calibration_from_the_settings(batches):
    model = _decoy_model()
    settings = PruneSettings("taylor", round_to=8, calibration=tuple(batches))
    assert settings.needs_gradients and not PruneSettings("l1").needs_gradients
    pruned = prune(model, EXAMPLE, 0.5, settings).model
    with torch.no_grad():
        assert torch.allclose(pruned(EXAMPLE), model(EXAMPLE), atol=1e-5)


def test_budget_search_prunes_with_taylor_when_settings_carry_batches(batches):
    model = _decoy_model()

    def latency(m: nn.Module) -> float:
        return float(m[0].out_channels)

    with pytest.raises(ConfigError, match="calibration"):
        search_ratio(model, EXAMPLE, latency, 10.0, PruneSettings("taylor", round_to=8), margin=0.0)
    found = search_ratio(model, EXAMPLE, latency, 10.0, PruneSettings("taylor", round_to=8,
                         calibration=tuple(batches)), margin=0.0)  # fmt: skip
    assert found.result.model[0].out_channels == 8
    with torch.no_grad():
        assert torch.allclose(found.result.model(EXAMPLE), model(EXAMPLE), atol=1e-5)


def test_calibration_batches_come_from_the_training_split():
    from edgekd.data.bundled import example_dataset

    data = example_dataset()
    got = calibration_batches(data, batches=2, batch_size=8)
    assert len(got) == 2 and got[0][0].shape == (8, *data.input_shape) and got[0][1].dtype == torch.int64
    assert torch.equal(got[1][1], torch.from_numpy(data.train.subset(16).y[8:16]).long())  # a stratified sample
