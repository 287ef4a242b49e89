"""Structured channel pruning on Torch-Pruning's dependency graph.

Channels are physically removed (residual adds, depthwise convs and linear heads are kept
consistent by the dependency graph); the result is an ordinary, smaller ``nn.Module``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import fx, nn

from edgekd.core.errors import ConfigError
from edgekd.core.registry import IMPORTANCES
from edgekd.data.datasets import DatasetBundle
from edgekd.prune import prune_guard as guard

log = logging.getLogger(__name__)


Batches = tuple[tuple[torch.Tensor, torch.Tensor], ...]


@dataclass(frozen=True)
class PruneSettings:
    """How to prune: criterion, channel multiple and layers to leave alone (module paths).

    ``calibration`` holds the (images, labels) batches gradient-based criteria (``taylor``) score
    with; every pruning of a search uses them (see :func:`calibration_batches`).
    """

    importance: str = "l1"
    round_to: int = 8
    ignored: tuple[str, ...] = ()
    max_ratio: float = 0.9
    calibration: Batches = field(default=(), repr=False, compare=False)

    @property
    def needs_gradients(self) -> bool:
        return bool(getattr(IMPORTANCES.get(self.importance), "needs_gradients", False))


def calibration_batches(data: DatasetBundle, batches: int = 2, batch_size: int = 32) -> Batches:
    """A stratified sample of ``batches`` x ``batch_size`` training images with labels, for gradient importance."""
    part = data.train.subset(batches * batch_size)
    return tuple((x, y) for x, y, _ in data.batches(part, batch_size))


@dataclass
class PruneResult:
    """The pruned model; ``left_whole`` maps each layer whose output channels were kept to why."""

    model: nn.Module
    ratio: float
    channels: dict[str, int] = field(default_factory=dict)
    left_whole: dict[str, str] = field(default_factory=dict)


SPLITS = {"chunk", "split", "tensor_split", "unbind"}


def split_producers(model: nn.Module) -> list[str]:
    """Convs/linears whose output reaches a chunk/split through parameter-free ops (cat, shuffle, BN, act).

    Torch-Pruning maps channels wrongly through ``chunk``/``split`` (ShuffleNet-style blocks crash at
    ``step()``), so these producers are left unpruned by default.
    """
    try:
        gm = fx.symbolic_trace(model)
    except (fx.proxy.TraceError, TypeError, NotImplementedError):  # untraceable: nothing to protect
        return []
    modules = dict(gm.named_modules())
    found: list[str] = []
    for node in gm.graph.nodes:
        name = getattr(node.target, "__name__", str(node.target))
        if node.op not in ("call_function", "call_method") or name not in SPLITS:
            continue
        stack, seen = [node.args[0]], set()
        while stack:
            cur = stack.pop()
            if not isinstance(cur, fx.Node) or cur in seen:
                continue
            seen.add(cur)
            if cur.op == "call_module" and isinstance(modules[cur.target], nn.Conv2d | nn.Linear):
                if cur.target not in found:
                    found.append(cur.target)
                continue
            stack.extend(cur.all_input_nodes)
    return found


def default_ignored(model: nn.Module) -> list[str]:
    """Safe defaults: the classifier (last Linear) keeps the class count; channel-split producers stay whole."""
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linears[-1:] + split_producers(model)


def _resolve(model: nn.Module, paths: Iterable[str]) -> list[nn.Module]:
    modules = dict(model.named_modules())
    missing = [p for p in paths if p not in modules]
    if missing:
        import difflib

        close = difflib.get_close_matches(missing[0], list(modules), n=3)
        raise ConfigError(f"layer '{missing[0]}' not found in the model; close matches: {', '.join(close) or 'none'}")
    return [modules[p] for p in paths]


def conv_channels(model: nn.Module) -> dict[str, int]:
    """Output channels of every conv/linear (to show what pruning kept)."""
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            out[name] = m.out_channels
        elif isinstance(m, nn.Linear):
            out[name] = m.out_features
    return out


class ClampedPruner(tp.pruner.BasePruner):
    """Torch-Pruning's pruner with ``round_to`` as a clamp: kept channels are a multiple of it, never fewer.

    Torch-Pruning rounds the kept count *down* to a multiple of ``round_to`` and, where that is zero,
    removes the whole layer's channels or leaves it whole. Here a layer keeps at least ``round_to``
    channels, and one already at or below ``round_to`` is left alone.
    """

    def _round_to(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        if current_channels <= round_to:
            return 0
        kept = max(round_to, (current_channels - n_pruned) // round_to * round_to)
        return max(current_channels - kept, 0)

    def _check_pruning_ratio(self, group: tp.Group) -> bool:
        self.current_group = group  # the group a failure inside Torch-Pruning is blamed on
        return super()._check_pruning_ratio(group)


def prunable_groups(model: nn.Module, example: torch.Tensor, settings: PruneSettings) -> dict[str, int]:
    """Root layer of every group of channels pruned together (not ignored) -> its channel count.

    These names are the keys of ``layer_ratios`` in :func:`prune`.
    """
    ignored = _resolve(model, settings.ignored or default_ignored(model))
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    names = {m: n for n, m in model.named_modules()}
    out: dict[str, int] = {}
    for group in graph.get_all_groups(ignored_layers=ignored, root_module_types=[nn.Conv2d, nn.Linear]):
        root = group[0].dep.target.module
        channels = graph.get_out_channels(root)
        if root in names and channels:
            out[names[root]] = int(channels)
    return out


def prune(
    model: nn.Module,
    example: torch.Tensor,
    ratio: float,
    settings: PruneSettings,
    calibration: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    layer_ratios: Mapping[str, float] | None = None,
) -> PruneResult:
    """A pruned copy of ``model`` with ``ratio`` of each prunable layer's channels removed.

    ``layer_ratios`` (group root name from :func:`prunable_groups` -> ratio) overrides ``ratio`` for
    those groups. Kept channel counts are multiples of ``settings.round_to`` and never below it.

    Layers that cannot be pruned safely (see :mod:`edgekd.prune.prune_guard`) are left whole. The
    pruned model must run on ``example`` and keep its output shape; where it does not, or where
    Torch-Pruning fails on a channel group, the layers involved are left whole too and pruning is
    retried. ``PruneResult.left_whole`` says which layers were kept and why.
    """
    layer_ratios = dict(layer_ratios or {})
    bad = [r for r in (ratio, *layer_ratios.values()) if not 0.0 <= r < 1.0]
    if bad:
        raise ConfigError(f"pruning ratio {bad[0]} must be in [0, 1); choose a smaller ratio")
    base = copy.deepcopy(model).eval()
    if ratio == 0.0 and not any(layer_ratios.values()):
        return PruneResult(base, 0.0, conv_channels(base))
    _resolve(base, [*settings.ignored, *layer_ratios])
    left = {name: "ignored by the configuration" for name in settings.ignored}
    for name, reason in guard.hazards(base, example).items():
        left.setdefault(name, reason)
    with torch.no_grad():
        expected = tuple(base(example).shape)
    for _ in range(MAX_REPAIRS):
        try:
            pruned = _prune_once(base, example, ratio, settings, calibration, layer_ratios, left, expected)
        except _Failure as failure:
            new = [name for name in failure.layers if name not in left]
            log.info("pruning: leaving %s whole: %s", ", ".join(new) or "the model", failure.reason)
            left.update(dict.fromkeys(new, failure.reason))
            if not new:
                break
            continue
        return PruneResult(pruned, ratio, conv_channels(pruned), left)
    return PruneResult(base, 0.0, conv_channels(base), left)


MAX_REPAIRS = 12


class _Failure(Exception):
    """Pruning broke these layers' channel group (Torch-Pruning raised, or the pruned model failed)."""

    def __init__(self, layers: list[str], reason: str) -> None:
        super().__init__(reason)
        self.layers, self.reason = layers, reason


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _producers_of(group: tp.Group | None, names: dict[nn.Module, str], fallback: list[str]) -> list[str]:
    """Layers whose output channels form ``group`` (all of ``fallback`` when unknown)."""
    if group is None:
        return fallback
    found = [names[dep.target.module] for dep, _ in group
             if getattr(dep.handler, "__name__", "") == "prune_out_channels" and dep.target.module in names
             and isinstance(dep.target.module, guard.PRUNABLE)]  # fmt: skip
    return found or fallback


def _feeding(graph: tp.DependencyGraph, module: nn.Module | None, names: dict[nn.Module, str]) -> list[str]:
    """Layers whose output channels are ``module``'s input channels (none if Torch-Pruning cannot say)."""
    handler = getattr(graph.get_pruner_of_module(module), "prune_in_channels", None) if module is not None else None
    if handler is None or module not in graph.module2node:
        return []
    try:
        group = graph.get_pruning_group(module, handler, idxs=[0])
    except Exception:
        return []
    return _producers_of(group, names, [])


def _prune_once(
    base: nn.Module,
    example: torch.Tensor,
    ratio: float,
    settings: PruneSettings,
    calibration: list[tuple[torch.Tensor, torch.Tensor]] | None,
    layer_ratios: dict[str, float],
    left: dict[str, str],
    expected: tuple[int, ...],
) -> nn.Module:
    pruned = copy.deepcopy(base).eval()
    names = {m: n for n, m in pruned.named_modules()}
    everything = guard.prunable_in(pruned, "")
    factory = IMPORTANCES.get(settings.importance)
    ratios = {name: r for name, r in layer_ratios.items() if name not in left}
    per_layer = dict(zip(_resolve(pruned, list(ratios)), ratios.values(), strict=True))
    try:
        pruner = ClampedPruner(
            pruned,
            example,
            importance=factory(),
            pruning_ratio=ratio,
            pruning_ratio_dict=per_layer or None,
            ignored_layers=_resolve(pruned, [n for n in left if n in dict(pruned.named_modules())]),
            round_to=settings.round_to,
        )
    except Exception as exc:  # Torch-Pruning could not build the model's dependency graph
        raise _Failure(everything, f"Torch-Pruning cannot trace the model ({_short(exc)})") from exc
    calibration = calibration or settings.calibration
    if getattr(factory, "needs_gradients", False):
        if not calibration:
            raise ConfigError(f"importance '{settings.importance}' needs calibration batches")
        pruned.zero_grad()
        for x, y in calibration:
            F.cross_entropy(pruned(x), y).backward()
    pruner.current_group = None
    try:
        for group in pruner.step(interactive=True):
            pruner.current_group = group
            group.prune()
    except Exception as exc:  # inside Torch-Pruning: blame the channel group it was working on
        layers = _producers_of(pruner.current_group, names, everything)
        raise _Failure(layers, f"Torch-Pruning failed on this layer's channels ({_short(exc)})") from exc
    pruned.zero_grad(set_to_none=True)
    pruned.eval()

    def check() -> None:
        with torch.no_grad():
            shape = tuple(pruned(example).shape)
        if shape != expected:
            raise RuntimeError(f"output shape {shape} instead of {expected}")

    broken = guard.failing_scope(pruned, check)
    if broken is None:
        return pruned
    scope, exc = broken.scope, broken.error
    # blame, in turn: the layers feeding the failing one, the last conv/linear that ran, the enclosing modules
    layers = [n for n in _feeding(pruner.DG, dict(pruned.named_modules()).get(scope), names) if n not in left]
    if not layers and broken.last_layer and broken.last_layer not in left:
        layers = [broken.last_layer]
    layers = layers or [n for n in guard.prunable_in(pruned, scope) if n not in left]
    while not layers and scope:
        scope = guard.parent(scope)
        layers = [n for n in guard.prunable_in(pruned, scope) if n not in left]
    where = f"'{scope}'" if scope else "the model"
    raise _Failure(layers, f"the pruned model failed in {where} ({_short(exc)})")
