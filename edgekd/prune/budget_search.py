"""Find the smallest pruning ratio whose predicted latency meets the budget."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from edgekd.errors import BudgetUnreachableError
from edgekd.pipeline.progress import NULL_PROGRESS, ProgressReporter
from edgekd.prune.pruner import PruneResult, PruneSettings, prune

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    result: PruneResult
    latency_ms: float
    target_ms: float
    evaluated: list[dict[str, float]] = field(default_factory=list)


def search_ratio(
    model: nn.Module,
    example: torch.Tensor,
    latency_ms: Callable[[nn.Module], float],
    budget_ms: float,
    settings: PruneSettings,
    margin: float = 0.05,
    iterations: int = 10,
    progress: ProgressReporter = NULL_PROGRESS,
) -> SearchResult:
    """Bisect the global channel ratio until ``latency_ms(pruned) <= budget_ms * (1 - margin)``.

    The smallest such ratio is returned (most capacity kept). Raises BudgetUnreachableError with the
    latency at ``settings.max_ratio`` when even that does not fit.
    """
    target = budget_ms * (1.0 - margin)
    evaluated: list[dict[str, float]] = []

    def evaluate(ratio: float) -> tuple[PruneResult, float]:
        res = prune(model, example, ratio, settings)
        ms = latency_ms(res.model)
        evaluated.append({"ratio": round(ratio, 4), "latency_ms": ms})
        log.info("prune ratio %.3f -> %.2f ms (target %.2f)", ratio, ms, target)
        return res, ms

    with progress.task("prune: search ratio", total=iterations + 2) as task:
        best, best_ms = evaluate(0.0)
        task.advance(1)
        if best_ms <= target:
            return SearchResult(best, best_ms, target, evaluated)
        hi_res, hi_ms = evaluate(settings.max_ratio)
        task.advance(1)
        if hi_ms > target:
            raise BudgetUnreachableError(
                f"no pruning ratio meets {budget_ms:g} ms: the nearest achievable is {hi_ms:.1f} ms "
                f"(at ratio {settings.max_ratio:g}); raise the budget or choose a smaller teacher",
                nearest_ms=hi_ms,
            )
        lo, hi, best, best_ms = 0.0, settings.max_ratio, hi_res, hi_ms
        for _ in range(iterations):
            mid = (lo + hi) / 2
            res, ms = evaluate(mid)
            task.advance(1)
            if ms <= target:
                hi, best, best_ms = mid, res, ms
            else:
                lo = mid
            if hi - lo < 0.005:
                break
    return SearchResult(best, best_ms, target, evaluated)
