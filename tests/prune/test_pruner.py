import pytest
import torch

from edgekd.core.errors import ConfigError
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


def test_round_to_is_a_clamp_kept_counts_are_multiples_never_below(model):
    settings = PruneSettings(round_to=16)
    for ratio in (0.3, 0.6, 0.85):
        channels = prune(model, EXAMPLE, ratio, settings).channels
        for name, kept in channels.items():
            if name != "classifier":
                assert kept >= 16 and kept % 16 == 0, (ratio, name, kept)
    # at 0.85 the 32-wide layers would round to zero; the clamp keeps 16 while the 64-wide ones go on shrinking
    deep = prune(model, EXAMPLE, 0.85, settings).channels
    assert deep["stem.0"] == 16 and deep["stages.1.0.conv1"] == 16


def test_layer_at_or_below_round_to_is_left_alone():
    torch.manual_seed(0)
    narrow = ResidualCNN((8, 32), blocks_per_stage=1).eval()
    channels = prune(narrow, EXAMPLE, 0.5, PruneSettings(round_to=8)).channels
    assert channels["stem.0"] == 8 and channels["stages.1.0.conv1"] == 16


def test_per_layer_ratios_prune_only_the_named_groups(model):
    from edgekd.prune.pruner import prunable_groups

    groups = prunable_groups(model, EXAMPLE, PruneSettings())
    assert groups["stages.0.0.conv1"] == 32 and "classifier" not in groups
    result = prune(model, EXAMPLE, 0.0, PruneSettings(), layer_ratios={"stages.0.0.conv1": 0.5})
    before = conv_channels(model)
    changed = {n for n, c in result.channels.items() if c != before[n]}
    assert changed == {"stages.0.0.conv1"} and result.channels["stages.0.0.conv1"] == 16


@pytest.mark.parametrize("importance", ["l1", "l2", "groupnorm", "bnscale"])
def test_every_registered_criterion_prunes_to_a_working_model(model, importance):
    from edgekd.core.registry import IMPORTANCES

    assert importance in IMPORTANCES.names()
    result = prune(model, EXAMPLE, 0.5, PruneSettings(importance=importance))
    assert result.model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert result.channels["stages.0.0.conv1"] == 16


def test_bnscale_keeps_the_channels_with_the_largest_gamma(model):
    bn = model.stages[0][0].bn1
    with torch.no_grad():
        bn.weight.copy_(torch.linspace(0.01, 1.0, 32).flip(0))  # channel 0 largest, channel 31 smallest
    pruned = prune(model, EXAMPLE, 0.5, PruneSettings(importance="bnscale")).model
    kept = pruned.stages[0][0].bn1.weight.detach()
    assert torch.allclose(kept, bn.weight.detach()[:16])  # the 16 largest, in order


def test_groupnorm_keeps_the_channels_with_the_largest_group_weight(model):
    # the stem shares its channels with every layer of stage 0's residual stream (one group); boost 8 of them
    with torch.no_grad():
        model.stem[0].weight[:8] *= 100.0
        model.stem[0].weight[8:] *= 0.01
    g = prune(model, EXAMPLE, 0.5, PruneSettings(importance="groupnorm")).model
    assert g.stem[0].out_channels == 16
    assert (g.stem[0].weight.abs().amax((1, 2, 3)) > 1.0).sum() == 8  # the 8 boosted channels survive


def test_bnscale_falls_back_to_magnitude_where_a_group_has_no_batchnorm():
    from edgekd.models.zoo import ZOO

    torch.manual_seed(0)
    vit = ZOO["tiny_vit"]().eval()
    pruned = prune(vit, EXAMPLE, 0.5, PruneSettings(importance="bnscale")).model
    assert pruned(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in pruned.parameters()) < 0.6 * sum(p.numel() for p in vit.parameters())
