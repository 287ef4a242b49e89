"""Find the smallest pruning ratio whose predicted latency meets the budget."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from edgekd.core.errors import BudgetUnreachableError
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.prune.pruner import PruneResult, PruneSettings, default_ignored, prune

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """The chosen pruning; ``latency_ms`` is predicted, or measured when ``rounds`` is non-empty."""

    result: PruneResult
    latency_ms: float
    target_ms: float
    evaluated: list[dict[str, float]] = field(default_factory=list)
    rounds: list[dict[str, float]] = field(default_factory=list)


def max_ratio(model: nn.Module, settings: PruneSettings) -> float:
    """The largest ratio worth trying: past it every prunable layer is at its ``round_to`` floor.

    The pruner clamps each layer at ``round_to`` channels (see :class:`~edgekd.prune.pruner.ClampedPruner`),
    so latency keeps falling with the ratio until the widest layer reaches the floor too.
    """
    ignored = set(settings.ignored or default_ignored(model))
    widths = [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
              for name, m in model.named_modules()
              if isinstance(m, nn.Conv2d | nn.Linear) and name not in ignored
              and not (isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels)]  # fmt: skip
    widest = max((w for w in widths if w > settings.round_to), default=0)
    if not widest:
        return settings.max_ratio
    # a hair below the exact ratio: float rounding at it could round the last multiple away
    return min(settings.max_ratio, 1.0 - settings.round_to / widest - 0.01)


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
    latency at the largest usable ratio (:func:`max_ratio`) when even that does not fit.
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
        top = max_ratio(model, settings)
        hi_res, hi_ms = evaluate(top)
        task.advance(1)
        if hi_ms > target:
            raise BudgetUnreachableError(
                f"no pruning ratio meets {budget_ms:g} ms: the nearest achievable is {hi_ms:.1f} ms "
                f"(at ratio {top:.3g}); raise the budget or choose a smaller teacher",
                nearest_ms=hi_ms,
            )
        lo, hi, best, best_ms = 0.0, top, hi_res, hi_ms
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


def _times(predict_ms: Callable[[nn.Module], float], factor: float, model: nn.Module) -> float:
    return predict_ms(model) * factor


def scaled(predict_ms: Callable[[nn.Module], float], factor: float) -> Callable[[nn.Module], float]:
    """``predict_ms`` corrected by ``factor`` (measured / predicted), picklable (a partial, not a closure)."""
    return functools.partial(_times, predict_ms, factor)


def search_measured(
    model: nn.Module,
    example: torch.Tensor,
    predict_ms: Callable[[nn.Module], float],
    measure_ms: Callable[[nn.Module], float],
    budget_ms: float,
    settings: PruneSettings,
    margin: float = 0.05,
    rounds: int = 3,
    progress: ProgressReporter = NULL_PROGRESS,
) -> SearchResult:
    """Search with the latency model, confirm the pick by measurement, and correct the model.

    After each search the chosen student is measured; the ratio measured / predicted scales the
    model for the next round. The result is the measured candidate closest to the budget from
    below (most capacity kept); ``evaluated`` records every round. Raises BudgetUnreachableError
    when no measured candidate fits.
    """
    # The unpruned model, measured once, gives the first correction of the latency model.
    teacher_measured, teacher_predicted = measure_ms(model), predict_ms(model)
    correction = teacher_measured / teacher_predicted if teacher_predicted > 0 else 1.0
    rounds_log: list[dict[str, float]] = [{"round": 0, "ratio": 0.0, "predicted_ms": round(teacher_predicted, 4),
                                           "measured_ms": round(teacher_measured, 4), "correction": 1.0}]  # fmt: skip
    best: SearchResult | None = None
    if teacher_measured <= budget_ms * (1.0 - margin):
        unpruned = prune(model, example, 0.0, settings)
        return SearchResult(unpruned, teacher_measured, budget_ms * (1.0 - margin), [], rounds_log)
    for round_no in range(1, rounds + 1):
        corrected = scaled(predict_ms, correction)
        found = search_ratio(model, example, corrected, budget_ms, settings, margin, progress=progress)
        raw = predict_ms(found.result.model)
        measured = measure_ms(found.result.model)
        rounds_log.append({"round": round_no, "ratio": found.result.ratio, "predicted_ms": round(raw * correction, 4),
                           "measured_ms": round(measured, 4), "correction": round(correction, 4)})  # fmt: skip
        log.info("round %d: ratio %.3f predicted %.2f ms measured %.2f ms", round_no, found.result.ratio,
                 raw * correction, measured)  # fmt: skip
        fits = measured <= budget_ms * (1.0 - margin)  # the margin absorbs run-to-run noise
        if fits and (best is None or measured > best.latency_ms):
            best = SearchResult(found.result, measured, found.target_ms, found.evaluated)
        if fits and measured >= budget_ms * (1.0 - 2 * margin - 0.05):
            break  # close enough under the budget
        if found.result.ratio == 0.0 and fits:
            break  # the unpruned model already fits
        new_correction = measured / raw if raw > 0 else correction
        if fits and abs(new_correction - correction) <= 0.01 * correction:
            break  # the model already agrees with the measurement: another round would pick the same plan
        correction = new_correction
    if best is None:
        last = rounds_log[-1]
        raise BudgetUnreachableError(
            f"no measured candidate meets {budget_ms:g} ms: the nearest measured is {last['measured_ms']:.2f} ms "
            f"(ratio {last['ratio']:.3f}); raise the budget or choose a smaller teacher",
            nearest_ms=last["measured_ms"],
        )
    best.evaluated = [*best.evaluated, *({"measure_" + k: v for k, v in r.items()} for r in rounds_log)]
    best.rounds = rounds_log
    return best
