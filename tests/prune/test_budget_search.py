import pytest
import torch

from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.config.targets import load_target
from edgekd.core.errors import BudgetUnreachableError
from edgekd.models.example_teacher import ResidualCNN
from edgekd.prune.budget_search import search_ratio
from edgekd.prune.pruner import PruneSettings

EXAMPLE = torch.randn(1, 1, 28, 28)


@pytest.fixture(scope="module")
def latency():
    model = LatencyModel(load_target("cortex-a76"))
    return lambda m: model.predict_ms(trace_ops(m, (1, 1, 28, 28)), "int8", 1)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return ResidualCNN((48, 96, 192), blocks_per_stage=2).eval()


def test_search_meets_budget_with_margin(teacher, latency):
    full = latency(teacher)
    budget = full * 0.6
    found = search_ratio(teacher, EXAMPLE, latency, budget, PruneSettings(), margin=0.05)
    assert found.latency_ms <= budget * 0.95
    assert latency(found.result.model) == pytest.approx(found.latency_ms)
    assert 0 < found.result.ratio < 0.9
    # the smallest ratio that fits: a clearly smaller ratio must not fit
    assert all(e["latency_ms"] > budget * 0.95 for e in found.evaluated if e["ratio"] < found.result.ratio - 0.02)


def test_no_pruning_when_teacher_already_fits(teacher, latency):
    found = search_ratio(teacher, EXAMPLE, latency, latency(teacher) * 2, PruneSettings())
    assert found.result.ratio == 0.0


def test_impossible_budget_reports_nearest(teacher, latency):
    with pytest.raises(BudgetUnreachableError, match="nearest achievable") as info:
        search_ratio(teacher, EXAMPLE, latency, 0.01, PruneSettings())
    assert info.value.nearest_ms > 0.01
    assert info.value.exit_code == 1


def test_measured_search_corrects_the_model_and_lands_just_under_the_budget(teacher, latency):
    from edgekd.prune.budget_search import search_measured

    device = lambda m: 0.5 * latency(m) + 0.2  # noqa: E731 - a 'device' twice as fast as predicted, plus overhead
    budget = device(teacher) * 0.6
    found = search_measured(teacher, EXAMPLE, latency, device, budget, PruneSettings(), margin=0.05)
    assert found.rounds[0]["round"] == 0 and found.rounds[0]["measured_ms"] == pytest.approx(device(teacher), abs=1e-4)
    assert 0.8 * budget <= found.latency_ms <= budget
    assert found.latency_ms == pytest.approx(device(found.result.model))
    # the uncorrected model believes the device twice as slow: it prunes more, or gives up
    try:
        plain = search_ratio(teacher, EXAMPLE, latency, budget, PruneSettings(), margin=0.05)
    except BudgetUnreachableError:
        plain = None
    assert plain is None or plain.result.ratio > found.result.ratio


def test_measured_search_returns_the_unpruned_model_when_it_fits(teacher, latency):
    from edgekd.prune.budget_search import search_measured

    found = search_measured(teacher, EXAMPLE, latency, latency, latency(teacher) * 2, PruneSettings())
    assert found.result.ratio == 0.0 and len(found.rounds) == 1


def test_measured_search_unreachable_reports_nearest_measured(teacher, latency):
    from edgekd.prune.budget_search import search_measured

    slow = lambda m: latency(m) + 100.0  # noqa: E731 - fixed overhead no pruning can remove
    with pytest.raises(BudgetUnreachableError, match="nearest"):
        search_measured(teacher, EXAMPLE, latency, slow, 50.0, PruneSettings(), rounds=2)


def test_max_ratio_goes_until_every_layer_is_at_the_round_to_floor(latency):
    from edgekd.prune.budget_search import max_ratio
    from edgekd.prune.pruner import prune

    torch.manual_seed(0)
    model = ResidualCNN((48, 96, 192), blocks_per_stage=1).eval()
    settings = PruneSettings(round_to=16, max_ratio=0.95)
    top = max_ratio(model, settings)
    assert top == pytest.approx(1 - 16 / 192 - 0.01)
    assert max_ratio(model, PruneSettings(round_to=16)) == 0.9  # the configured cap wins
    at_top = prune(model, EXAMPLE, top, settings)
    assert all(c == 16 for name, c in at_top.channels.items() if name != "classifier")
    # latency keeps falling past the narrowest layer's floor (48 -> 16 at ratio 2/3) ...
    assert latency(at_top.model) < latency(prune(model, EXAMPLE, 0.7, settings).model)
    assert latency(prune(model, EXAMPLE, 0.7, settings).model) < latency(prune(model, EXAMPLE, 0.5, settings).model)
    # ... and past the top nothing changes any more
    assert latency(prune(model, EXAMPLE, 0.95, settings).model) == pytest.approx(latency(at_top.model))
