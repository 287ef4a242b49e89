import pytest
import torch

from edgekd.bench.latency_model import LatencyModel, trace_ops
from edgekd.config.targets import load_target
from edgekd.errors import BudgetUnreachableError
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
