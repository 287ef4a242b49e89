"""Structured channel pruning on Torch-Pruning's dependency graph.

Channels are physically removed (residual adds, depthwise convs and linear heads are kept
consistent by the dependency graph); the result is an ordinary, smaller ``nn.Module``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import fx, nn

from edgekd.errors import ConfigError
from edgekd.registry import IMPORTANCES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneSettings:
    """How to prune: criterion, channel multiple and layers to leave alone (module paths)."""

    importance: str = "l1"
    round_to: int = 8
    ignored: tuple[str, ...] = ()
    max_ratio: float = 0.9


@dataclass
class PruneResult:
    model: nn.Module
    ratio: float
    channels: dict[str, int] = field(default_factory=dict)


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


def prune(
    model: nn.Module,
    example: torch.Tensor,
    ratio: float,
    settings: PruneSettings,
    calibration: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> PruneResult:
    """A pruned copy of ``model`` with ``ratio`` of each prunable layer's channels removed."""
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"pruning ratio {ratio} must be in [0, 1)")
    pruned = copy.deepcopy(model).eval()
    if ratio == 0.0:
        return PruneResult(pruned, 0.0, conv_channels(pruned))
    factory = IMPORTANCES.get(settings.importance)
    ignored = _resolve(pruned, settings.ignored or default_ignored(pruned))
    pruner = tp.pruner.BasePruner(
        pruned,
        example,
        importance=factory(),
        pruning_ratio=ratio,
        ignored_layers=ignored,
        round_to=settings.round_to,
    )
    if getattr(factory, "needs_gradients", False):
        if not calibration:
            raise ConfigError(f"importance '{settings.importance}' needs calibration batches")
        pruned.zero_grad()
        for x, y in calibration:
            F.cross_entropy(pruned(x), y).backward()
    pruner.step()
    pruned.zero_grad(set_to_none=True)
    return PruneResult(pruned.eval(), ratio, conv_channels(pruned))
