import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.models.example_teacher import ResidualCNN
from edgekd.prune.pruner import PruneSettings, conv_channels, prune


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ResidualCNN((32, 64), blocks_per_stage=2).eval()


EXAMPLE = torch.randn(1, 1, 28, 28)


@pytest.mark.parametrize("ratio", [0.3, 0.6])
def test_pruned_model_runs_keeps_output_shape_and_shrinks(model, ratio):
    result = prune(model, EXAMPLE, ratio, PruneSettings(round_to=8))
    out = result.model(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    before = sum(p.numel() for p in model.parameters())
    after = sum(p.numel() for p in result.model.parameters())
    assert after < before * (1 - ratio) ** 2 * 1.5
    # the original is untouched
    assert conv_channels(model)["stem.0"] == 32


def test_round_to_is_respected(model):
    result = prune(model, EXAMPLE, 0.37, PruneSettings(round_to=8))
    for name, channels in result.channels.items():
        if name != "classifier":
            assert channels % 8 == 0, (name, channels)


def test_ignored_layers_untouched(model):
    result = prune(model, EXAMPLE, 0.5, PruneSettings(ignored=("classifier", "stages.1.1.conv1")))
    assert result.channels["classifier"] == 10
    assert result.channels["stages.1.1.conv1"] == 64
    assert result.channels["stages.0.0.conv1"] < 32


def test_unknown_layer_lists_close_matches(model):
    with pytest.raises(ConfigError, match=r"close matches: .*stages\.0\.0\.conv1"):
        prune(model, EXAMPLE, 0.5, PruneSettings(ignored=("stages.0.0.conv9",)))


def test_taylor_needs_and_uses_calibration(model):
    with pytest.raises(ConfigError, match="calibration"):
        prune(model, EXAMPLE, 0.5, PruneSettings(importance="taylor"))
    batch = [(torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,)))]
    result = prune(model, EXAMPLE, 0.5, PruneSettings(importance="taylor"), calibration=batch)
    assert result.model(EXAMPLE).shape == (1, 10)


def test_ratio_out_of_range(model):
    with pytest.raises(ConfigError):
        prune(model, EXAMPLE, 1.0, PruneSettings())


def test_channel_split_producers_are_left_whole_by_default():
    from edgekd.models.zoo import ZOO
    from edgekd.prune.pruner import default_ignored, split_producers

    model = ZOO["shufflenet_v2"]().eval()
    producers = split_producers(model)
    assert producers and all(p in default_ignored(model) for p in producers)
    assert split_producers(ResidualCNN((16, 32), 1)) == []
    pruned = prune(model, EXAMPLE, 0.5, PruneSettings()).model
    assert pruned(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    before, after = conv_channels(model), conv_channels(pruned)
    assert all(after[p] == before[p] for p in producers)
