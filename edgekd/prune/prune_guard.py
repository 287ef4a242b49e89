"""Finding the layers that cannot be pruned safely, before and after pruning.

Before: a ``torch.fx`` walk finds convs/linears whose output reaches, through parameter-free ops,
a channel split (``chunk``/``split``: ShuffleNet) or a reshape that changes the channel dimension
(attention heads, window partitions, patch folding: their forward hard-codes the width), and the
classifier (it keeps the class count). After: the pruned model must run and keep its output shape;
:func:`failing_scope` names the module where it broke so the pruner can leave it whole and retry.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

log = logging.getLogger(__name__)

SPLITS = {"chunk", "split", "tensor_split", "unbind"}
RESHAPES = {"view", "reshape", "unflatten", "flatten", "fold", "unfold", "pixel_shuffle", "pixel_unshuffle"}
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)

CLASSIFIER = "the classifier keeps the class count"
SPLIT = "its output reaches a channel split (chunk/split), which Torch-Pruning maps wrongly"
RESHAPE = "its output reaches a reshape that changes the channel dimension (attention heads, windows, patches)"


def _name(node: fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target)).strip("_")


def _shape(node: object) -> tuple[int, ...] | None:
    meta = node.meta.get("tensor_meta") if isinstance(node, fx.Node) else None
    shape = getattr(meta, "shape", None)
    return tuple(shape) if shape is not None else None


def _changes_channels(node: fx.Node) -> bool:
    """A reshape that does more than flatten a (N, C, 1, 1)-like tensor or merge/split dims after the channels."""
    src, out = _shape(node.args[0]) if node.args else None, _shape(node)
    if src is None or out is None:
        return True
    if len(out) == 2 and len(src) >= 2 and out[0] == src[0] and out[1] == math.prod(src[1:]):
        return False  # flatten (N, C, ...) to (N, features) before a linear: Torch-Pruning maps it
    return not (len(src) >= 2 and len(out) >= 2 and src[:2] == out[:2])


def _producers(start: object, modules: dict[str, nn.Module]) -> list[str]:
    """Convs/linears reached upstream of ``start`` through parameter-free ops (and norms, adds, concats)."""
    found: list[str] = []
    stack, seen = [start], set()
    while stack:
        cur = stack.pop()
        if not isinstance(cur, fx.Node) or cur in seen:
            continue
        seen.add(cur)
        if cur.op == "call_module" and isinstance(modules.get(cur.target), PRUNABLE):
            found.append(str(cur.target))
            continue
        if cur.op == "call_function" and _name(cur) in ("conv2d", "conv1d", "linear"):
            owner = _owner(cur, modules)
            if owner:
                found.append(owner)
                continue
        stack.extend(cur.all_input_nodes)
    return found


def _owner(node: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """The module owning the weight of a functional conv/linear (``F.conv2d(x, self.weight)``)."""
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    if isinstance(weight, fx.Node) and weight.op == "get_attr":
        owner = str(weight.target).rpartition(".")[0]
        return owner if owner in modules else None
    return None


def traced_hazards(model: nn.Module, example: torch.Tensor) -> dict[str, str]:
    """Layers whose output channels must stay whole -> why (an untraceable model gives none)."""
    try:
        gm = fx.symbolic_trace(model)
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
    except Exception as exc:  # fx raises many types for untraceable code; the run-time check still guards
        log.debug("prune guard: model not traceable (%s); relying on the run-time check", exc)
        return {}
    modules = dict(gm.named_modules())
    out: dict[str, str] = {}
    for node in gm.graph.nodes:
        if node.op not in ("call_function", "call_method") or not node.args:
            continue
        name = _name(node)
        if name in SPLITS:
            reason = SPLIT
        elif name in RESHAPES and _changes_channels(node):
            reason = RESHAPE
        else:
            continue
        for producer in _producers(node.args[0], modules):
            out.setdefault(producer, reason)
    return out


def classifier(model: nn.Module) -> str | None:
    """The last Linear (or last conv when there is none): the layer producing the class scores."""
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if linears:
        return linears[-1]
    convs = [n for n, m in model.named_modules() if isinstance(m, PRUNABLE)]
    return convs[-1] if convs else None


def hazards(model: nn.Module, example: torch.Tensor) -> dict[str, str]:
    """Every layer left whole by default -> the reason (classifier, channel splits, channel reshapes)."""
    head = classifier(model)
    found = {head: CLASSIFIER} if head else {}
    for name, reason in traced_hazards(model, example).items():
        found.setdefault(name, reason)
    return found


@dataclass(frozen=True)
class Breakage:
    """Where a pruned model's forward failed: the innermost running module, the last conv/linear run, the error."""

    scope: str
    last_layer: str | None
    error: BaseException


def failing_scope(model: nn.Module, run: Callable[[], object]) -> Breakage | None:
    """Run ``run``; if it raises, where (``scope`` ``""`` is the root) and the last conv/linear that ran."""
    names = {m: n for n, m in model.named_modules()}
    stack: list[str] = []
    last: list[str] = []
    handles = []

    def enter(mod: nn.Module, _args: object) -> None:
        stack.append(names[mod])

    def leave(mod: nn.Module, _args: object, _out: object) -> None:
        if stack:
            stack.pop()
        if isinstance(mod, PRUNABLE):
            last.append(names[mod])

    for m in names:
        handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        run()
    except Exception as exc:  # any error of the pruned model's forward
        return Breakage(stack[-1] if stack else "", last[-1] if last else None, exc)
    finally:
        for h in handles:
            h.remove()
    return None


def prunable_in(model: nn.Module, scope: str) -> list[str]:
    """Convs/linears at or under the module path ``scope``."""
    prefix = f"{scope}." if scope else ""
    return [n for n, m in model.named_modules() if isinstance(m, PRUNABLE) and (n == scope or n.startswith(prefix))]


def parent(scope: str) -> str:
    return scope.rpartition(".")[0]
