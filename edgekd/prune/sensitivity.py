"""Latency-aware per-layer refinement of a uniform pruning ratio.

The uniform plan from :func:`~edgekd.prune.budget_search.search_ratio` prunes every group of channels
by the same share. Layers differ twice over: in how much latency their channels cost, and in how
much the network needs them. Refinement starts below the uniform ratio and, step by step, removes
channels from the group where **latency saved per loss added** is highest, until the predicted
latency meets the budget:

    score(g) = (latency now - latency with one more step removed from g) / max(loss increase, eps)

The loss is the KL divergence of the pruned model's outputs from the unpruned model's on a few
calibration images (no labels needed). Scores are kept lazily: after a step only the group that
moved is re-scored (the others' scores barely change), so a plan costs about ``groups + steps``
prunings instead of ``groups x steps``. The refined plan is kept only if its calibration loss is
not above the uniform plan's at the same budget; otherwise the uniform plan is returned and the
record says so.

Example:
    >>> found = search_ratio(model, example, latency, budget_ms, settings)  # doctest: +SKIP
    >>> plan = refine(model, example, latency, budget_ms, settings, images, found)  # doctest: +SKIP
    >>> plan.result.channels, plan.chosen  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.errors import BudgetUnreachableError
from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.prune.budget_search import SearchResult, scaled
from edgekd.prune.pruner import PruneResult, PruneSettings, prunable_groups, prune

log = logging.getLogger(__name__)

_EPS = 1e-6


@dataclass(frozen=True)
class RefineSettings:
    """How finely to refine.

    Attributes:
        step_fraction: channels removed per step, as a share of the group's width (rounded up to
            a multiple of ``round_to``, at least ``round_to``).
        start_fraction: the refinement starts at this share of the uniform ratio.
        max_steps: hard stop on the number of greedy steps.
    """

    step_fraction: float = 0.125
    start_fraction: float = 0.5
    max_steps: int = 64


@dataclass
class RefineResult:
    """The chosen plan; ``chosen`` is ``per-layer`` or ``uniform`` (when refinement did not help)."""

    result: PruneResult
    latency_ms: float
    target_ms: float
    chosen: str
    kept: dict[str, int]
    loss: float
    uniform_loss: float
    steps: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"chosen": self.chosen, "kept": self.kept, "latency_ms": round(self.latency_ms, 4),
                "target_ms": round(self.target_ms, 4), "calibration_kl": round(self.loss, 6),
                "uniform_calibration_kl": round(self.uniform_loss, 6), "steps": self.steps}  # fmt: skip


def output_kl(model: nn.Module, images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean KL(reference || model) of softmax outputs on ``images`` (the accuracy-loss proxy)."""
    with torch.no_grad():
        out = model.eval()(images)
    return float(F.kl_div(F.log_softmax(out, 1), F.log_softmax(reference, 1), reduction="batchmean", log_target=True))


def ratios_for(kept: dict[str, int], widths: dict[str, int]) -> dict[str, float]:
    """Per-group ratios that make Torch-Pruning keep exactly ``kept`` channels (it truncates C x (1 - r))."""
    return {g: max(0.0, 1.0 - k / widths[g] - 1e-6) for g, k in kept.items() if k < widths[g]}


def _round(value: float, multiple: int) -> int:
    return max(multiple, round(value / multiple) * multiple)


def refine(
    model: nn.Module,
    example: torch.Tensor,
    latency_ms: Callable[[nn.Module], float],
    budget_ms: float,
    settings: PruneSettings,
    images: torch.Tensor,
    uniform: SearchResult,
    refine_settings: RefineSettings = RefineSettings(),
    progress: ProgressReporter = NULL_PROGRESS,
) -> RefineResult:
    """Per-layer plan meeting ``uniform.target_ms`` with the least calibration loss found greedily.

    Raises BudgetUnreachableError (nearest predicted latency) when every group is at its floor and
    the target is still not met.
    """
    target = uniform.target_ms
    with torch.no_grad():
        reference = model.eval()(images)
    uniform_loss = output_kl(uniform.result.model, images, reference)
    if uniform.result.ratio == 0.0:
        return RefineResult(uniform.result, uniform.latency_ms, target, "uniform", {}, uniform_loss, uniform_loss)
    widths = prunable_groups(model, example, settings)
    rs, r = refine_settings, settings.round_to
    floor = {g: min(w, max(r, math.ceil(w * (1 - settings.max_ratio) / r) * r)) for g, w in widths.items()}
    step = {g: min(w, _round(math.ceil(w * rs.step_fraction / r) * r, r)) for g, w in widths.items()}
    start = uniform.result.ratio * rs.start_fraction
    kept = {g: max(floor[g], min(w, _round(w * (1 - start), r))) for g, w in widths.items()}

    def evaluate(plan: dict[str, int]) -> tuple[PruneResult, float, float]:
        res = prune(model, example, 0.0, settings, layer_ratios=ratios_for(plan, widths))
        return res, latency_ms(res.model), output_kl(res.model, images, reference)

    current, cur_ms, cur_loss = evaluate(kept)
    scores: dict[str, tuple[float, float, float]] = {}  # group -> (score, saved ms, added loss)

    def score(group: str) -> None:
        if kept[group] - step[group] < floor[group]:
            scores.pop(group, None)
            return
        _, ms, loss = evaluate({**kept, group: kept[group] - step[group]})
        saved, added = cur_ms - ms, max(loss - cur_loss, _EPS)
        if saved <= 0:
            scores.pop(group, None)
        else:
            scores[group] = (saved / added, saved, added)

    steps: list[dict] = []
    with progress.task(f"prune: per-layer refinement ({len(widths)} groups)", total=None) as task:
        for group in widths:
            score(group)
            task.advance(1)
        while cur_ms > target and len(steps) < rs.max_steps:
            if not scores:
                raise BudgetUnreachableError(
                    f"no per-layer plan meets {budget_ms:g} ms: the nearest achievable is {cur_ms:.1f} ms "
                    "(every layer at its floor); raise the budget or choose a smaller teacher",
                    nearest_ms=cur_ms,
                )
            best = max(scores, key=lambda g: scores[g][0])
            kept[best] -= step[best]
            current, cur_ms, cur_loss = evaluate(kept)
            steps.append({"group": best, "kept": kept[best], "latency_ms": round(cur_ms, 4),
                          "calibration_kl": round(cur_loss, 6), "score": round(scores[best][0], 4)})  # fmt: skip
            log.info("refine: %s -> %d channels, %.2f ms, KL %.4f", best, kept[best], cur_ms, cur_loss)
            score(best)
            task.advance(1)
    if cur_ms > target:
        raise BudgetUnreachableError(
            f"per-layer refinement stopped after {len(steps)} steps at {cur_ms:.1f} ms, above {budget_ms:g} ms; "
            "raise RefineSettings.max_steps or the budget",
            nearest_ms=cur_ms,
        )
    overall = 1.0 - sum(kept.values()) / sum(widths.values())
    current.ratio = round(overall, 4)
    if cur_loss <= uniform_loss:
        return RefineResult(current, cur_ms, target, "per-layer", dict(kept), cur_loss, uniform_loss, steps)
    log.info("refine: per-layer KL %.4f above uniform %.4f; keeping the uniform plan", cur_loss, uniform_loss)
    return RefineResult(uniform.result, uniform.latency_ms, target, "uniform", dict(kept), cur_loss, uniform_loss,
                        steps)  # fmt: skip


def refine_measured(
    model: nn.Module,
    example: torch.Tensor,
    predict_ms: Callable[[nn.Module], float],
    measure_ms: Callable[[nn.Module], float],
    budget_ms: float,
    settings: PruneSettings,
    images: torch.Tensor,
    uniform: SearchResult,
    margin: float,
    rounds: int = 2,
    refine_settings: RefineSettings = RefineSettings(),
    progress: ProgressReporter = NULL_PROGRESS,
) -> tuple[RefineResult, float, list[dict]]:
    """Refine a measured uniform plan, confirm it by measurement and correct the model until it fits.

    ``uniform`` comes from :func:`~edgekd.prune.budget_search.search_measured` (its ``latency_ms`` is
    measured). The latency model is scaled by measured / predicted at the uniform pick; each refined
    plan is measured, and if it misses ``budget_ms * (1 - margin)`` the scale is corrected from that
    measurement and the refinement repeated. When no refined plan fits after ``rounds``, the measured
    uniform plan is kept. Returns the plan, its measured milliseconds and the confirmation log.
    """
    limit = budget_ms * (1.0 - margin)
    raw = predict_ms(uniform.result.model)
    correction = uniform.latency_ms / raw if raw > 0 else 1.0
    log_rounds: list[dict] = []
    plan: RefineResult | None = None
    for round_no in range(1, rounds + 1):
        corrected = scaled(predict_ms, correction)
        try:
            plan = refine(model, example, corrected, budget_ms, settings, images, uniform, refine_settings, progress)
        except BudgetUnreachableError as exc:  # the corrected model finds no per-layer plan; uniform still fits
            log.info("refine round %d: %s", round_no, exc)
            log_rounds.append({"round": round_no, "correction": round(correction, 4), "fits": False,
                               "stopped": str(exc)})  # fmt: skip
            break
        if plan.chosen != "per-layer":
            return plan, uniform.latency_ms, log_rounds
        measured = measure_ms(plan.result.model)
        raw = predict_ms(plan.result.model)
        log_rounds.append({"round": round_no, "predicted_ms": round(plan.latency_ms, 4),
                           "measured_ms": round(measured, 4), "correction": round(correction, 4),
                           "fits": measured <= limit})  # fmt: skip
        log.info("refine round %d: predicted %.2f ms, measured %.2f ms (limit %.2f)", round_no, plan.latency_ms,
                 measured, limit)  # fmt: skip
        if measured <= limit:
            plan.latency_ms = measured
            return plan, measured, log_rounds
        correction = measured / raw if raw > 0 else correction
    log.info("refine: no per-layer plan fitted by measurement; keeping the measured uniform plan")
    if plan is None:
        return RefineResult(uniform.result, uniform.latency_ms, uniform.target_ms, "uniform", {}, math.nan,
                            math.nan), uniform.latency_ms, log_rounds  # fmt: skip
    fallback = RefineResult(uniform.result, uniform.latency_ms, plan.target_ms, "uniform", plan.kept, plan.loss,
                            plan.uniform_loss, plan.steps)  # fmt: skip
    return fallback, uniform.latency_ms, log_rounds
