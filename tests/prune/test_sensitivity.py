import pytest
import torch

from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.config.targets import load_target
from edgekd.core.errors import BudgetUnreachableError
from edgekd.models.example_teacher import ResidualCNN
from edgekd.prune.budget_search import search_ratio
from edgekd.prune.pruner import PruneSettings, conv_channels, prunable_groups, prune
from edgekd.prune.sensitivity import RefineSettings, output_kl, ratios_for, refine

EXAMPLE = torch.randn(1, 1, 28, 28)


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return ResidualCNN((32, 64), blocks_per_stage=1).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_ratios_for_make_torch_pruning_keep_exact_counts(teacher):
    widths = prunable_groups(teacher, EXAMPLE, PruneSettings())
    kept = {"stages.0.0.conv1": 24, "stages.1.0.conv1": 40}
    channels = prune(teacher, EXAMPLE, 0.0, PruneSettings(), layer_ratios=ratios_for(kept, widths)).channels
    assert channels["stages.0.0.conv1"] == 24 and channels["stages.1.0.conv1"] == 40


def test_refinement_spends_the_cut_where_latency_is(teacher, images):
    # a 'device' on which only stages.1.0.conv1 costs time: a latency-aware plan prunes only that group
    def latency(m):
        return float(conv_channels(m)["stages.1.0.conv1"])

    uniform = search_ratio(teacher, EXAMPLE, latency, 40.0, PruneSettings(), margin=0.0)
    plan = refine(teacher, EXAMPLE, latency, 40.0, PruneSettings(), images, uniform)
    assert plan.latency_ms <= 40.0
    moved = {s["group"] for s in plan.steps}
    assert moved == {"stages.1.0.conv1"}
    if plan.chosen == "per-layer":
        assert plan.loss <= plan.uniform_loss
        assert plan.result.channels["stages.1.0.conv1"] == plan.kept["stages.1.0.conv1"] <= 40
    else:  # the record still shows what refinement found and why it was not kept
        assert plan.loss > plan.uniform_loss


def test_refined_plan_meets_the_predicted_budget_and_is_not_worse_than_uniform(teacher, images):
    model = LatencyModel(load_target("cortex-a76"))

    def latency(m):
        return model.predict_ms(trace_ops(m, (1, 1, 28, 28)), "int8", 1)

    budget = latency(teacher) * 0.5
    uniform = search_ratio(teacher, EXAMPLE, latency, budget, PruneSettings(), margin=0.05)
    plan = refine(teacher, EXAMPLE, latency, budget, PruneSettings(), images, uniform, RefineSettings(max_steps=40))
    assert plan.latency_ms <= budget * 0.95
    assert latency(plan.result.model) == pytest.approx(plan.latency_ms)
    assert plan.result.model(images[:2]).shape == (2, 10)
    with torch.no_grad():
        reference = teacher(images)
    assert output_kl(plan.result.model, images, reference) == pytest.approx(min(plan.loss, plan.uniform_loss), rel=1e-4)
    assert all(c % 8 == 0 and c >= 8 for n, c in plan.result.channels.items() if n != "classifier")
    if plan.chosen == "per-layer":
        kept = set(plan.kept.values())
        assert len(kept) > 1  # not a uniform plan in disguise


def test_refinement_reports_nearest_when_every_layer_is_at_its_floor(teacher, images):
    def latency(m):
        return sum(conv_channels(m).values()) + 1000.0  # an overhead no pruning removes

    uniform = search_ratio(teacher, EXAMPLE, latency, 1e6, PruneSettings())
    uniform.target_ms = 10.0  # pretend the uniform search found the budget reachable
    uniform.result.ratio = 0.5
    with pytest.raises(BudgetUnreachableError, match="nearest achievable") as info:
        refine(teacher, EXAMPLE, latency, 10.0, PruneSettings(), images, uniform)
    assert info.value.nearest_ms > 1000.0


def _a76_latency():
    model = LatencyModel(load_target("cortex-a76"))
    return lambda m: model.predict_ms(trace_ops(m, (1, 1, 28, 28)), "int8", 1)


def test_measured_refinement_corrects_a_model_that_underestimates(teacher, images):
    from edgekd.prune.budget_search import search_measured
    from edgekd.prune.sensitivity import refine_measured

    predict = _a76_latency()
    calls = []

    def measure(m):  # the 'device' is 30 % slower than the model says
        calls.append(m)
        return predict(m) * 1.3

    budget = measure(teacher) * 0.5
    uniform = search_measured(teacher, EXAMPLE, predict, measure, budget, PruneSettings(), margin=0.05)
    plan, measured, rounds = refine_measured(teacher, EXAMPLE, predict, measure, budget, PruneSettings(), images,
                                             uniform, margin=0.05)  # fmt: skip
    assert measured <= budget * 0.95
    assert measured == pytest.approx(measure(plan.result.model))
    if plan.chosen == "per-layer":
        assert rounds and rounds[-1]["fits"] and rounds[-1]["measured_ms"] == pytest.approx(measured, rel=1e-3)
        assert rounds[0]["correction"] == pytest.approx(1.3, rel=1e-3)  # learnt from the measured uniform pick


def test_measured_refinement_falls_back_to_the_uniform_plan_when_nothing_fits(teacher, images):
    from edgekd.prune.budget_search import search_measured
    from edgekd.prune.sensitivity import refine_measured

    def predict(m):  # cheap stand-in for the latency model: total channels
        return float(sum(conv_channels(m).values()))

    uniform_channels: dict = {}

    def measure(m):  # per-layer plans run 100x slower than predicted on this 'device'; uniform ones as predicted
        channels = conv_channels(m)
        return predict(m) * (1.0 if not uniform_channels or channels == uniform_channels else 100.0)

    budget = predict(teacher) * 0.5
    uniform = search_measured(teacher, EXAMPLE, predict, measure, budget, PruneSettings(), margin=0.05)
    uniform_channels.update(uniform.result.channels)
    plan, measured, rounds = refine_measured(teacher, EXAMPLE, predict, measure, budget, PruneSettings(), images,
                                             uniform, margin=0.05, rounds=2,
                                             refine_settings=RefineSettings(max_steps=12))  # fmt: skip
    assert plan.chosen == "uniform" and plan.result is uniform.result
    assert measured == uniform.latency_ms <= budget * 0.95
    if rounds:  # refinement proposed a per-layer plan, measured and rejected it; the corrected model finds none
        assert not any(r["fits"] for r in rounds) and rounds[0]["measured_ms"] > budget
