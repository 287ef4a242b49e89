"""Capture intermediate features by module path, and the interface feature losses consume them through.

Feature losses (``hint``, ``at``, ``rkd``, ``spkd``) name layers by their dotted module path (the names
of ``model.named_modules()``; ``""`` is the model itself, i.e. its output) in ``(teacher_path,
student_path)`` pairs, and read them from a :data:`FeatureMaps` mapping
``{"teacher": {path: tensor}, "student": {path: tensor}}`` — exactly what two :class:`FeatureHooks`
collect.

Example:
    >>> with FeatureHooks(teacher, ["stages.0"]) as th, FeatureHooks(student, ["stages.0"]) as sh:  # doctest: +SKIP
    ...     with torch.no_grad():
    ...         teacher_logits = teacher(x)
    ...     student_logits = student(x)
    >>> features = {"teacher": th.features, "student": sh.features}  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from edgekd.core.errors import ConfigError

Pair = tuple[str, str]
"""``(teacher_path, student_path)``."""

FeatureMaps = Mapping[str, Mapping[str, torch.Tensor]]
"""``{"teacher": {path: tensor}, "student": {path: tensor}}``."""

_OPENED_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def unknown_path_message(path: str, known: Iterable[str], model_name: str = "model") -> str:
    """One-line error text for an unknown module path, with the closest existing paths."""
    names = [n for n in known if n]
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.5)
    hint = f"close matches: {', '.join(close)}" if close else f"no close match; paths look like: {', '.join(names[:5])}"
    return f"unknown module path '{path}' in {model_name}; {hint}"


class FeatureHooks:
    """Context manager that records the outputs of modules named by dotted path.

    Every hook is removed on exit, also when the body raises. ``features`` maps each path to the
    latest output of its module (the first element if the module returns a tuple or list); it is
    cleared on enter and kept after exit.

    Args:
        model: The model whose modules are hooked.
        paths: Dotted module paths (``model.named_modules()`` names; ``""`` is the model itself).
        detach: Store detached outputs (for a frozen teacher).

    Raises:
        ConfigError: A path names no module; the message lists close matches.

    Example:
        >>> with FeatureHooks(model, ["stages.1"]) as hooks:  # doctest: +SKIP
        ...     model(x)
        >>> hooks.features["stages.1"].shape  # doctest: +SKIP
    """

    def __init__(self, model: nn.Module, paths: Iterable[str], *, detach: bool = False) -> None:
        modules = dict(model.named_modules())
        wanted = list(dict.fromkeys(paths))
        for path in wanted:
            if path not in modules:
                raise ConfigError(unknown_path_message(path, modules, type(model).__name__))
        self._targets = [(path, modules[path]) for path in wanted]
        self._detach = detach
        self._handles: list[RemovableHandle] = []
        self.features: dict[str, torch.Tensor] = {}

    def _hook(self, path: str) -> Callable[[nn.Module, Any, Any], None]:
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if isinstance(output, (tuple, list)):
                output = output[0]
            self.features[path] = output.detach() if self._detach else output

        return record

    def __enter__(self) -> FeatureHooks:
        if self._handles:
            raise RuntimeError("FeatureHooks is already active; it cannot be entered twice")
        self.features.clear()
        try:
            for path, module in self._targets:
                self._handles.append(module.register_forward_hook(self._hook(path)))
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove every hook this object registered (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def candidate_layers(model: nn.Module) -> list[str]:
    """Paths of the block/stage outputs :func:`auto_pair` chooses from, in registration order.

    Walk the module tree from the root: the root and plain containers (exactly ``nn.Sequential``,
    ``nn.ModuleList``, ``nn.ModuleDict``) are opened; any other module with an ``nn.Conv2d`` inside
    (or being one) is a candidate and is not opened further, so a residual block counts once with
    its post-residual output; modules without convolutions are skipped.
    """
    found: list[str] = []

    def visit(module: nn.Module, prefix: str) -> None:
        for name, child in module.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if type(child) in _OPENED_CONTAINERS:
                visit(child, path)
            elif any(isinstance(m, nn.Conv2d) for m in child.modules()):
                found.append(path)

    visit(model, "")
    return found


def auto_pair(teacher: nn.Module, student: nn.Module, n: int) -> list[Pair]:
    """Pair ``n`` teacher and student layers by relative depth.

    Rule: each model's :func:`candidate_layers` (K of them) are cut into ``n`` contiguous segments of
    equal relative depth, and the last layer of segment ``j`` (index ``ceil(j·K/n) - 1``) of the
    teacher is paired with the last layer of segment ``j`` of the student. The deepest candidate is
    always paired; for stage-structured CNNs with ``n`` = number of stages this picks the stage
    outputs. Registration order is assumed to be execution order (true for sequential backbones).

    Raises:
        ConfigError: ``n < 1`` or either model has fewer than ``n`` candidates.
    """
    if n < 1:
        raise ConfigError(f"auto_pair needs n >= 1 (got {n})")
    picks: list[list[str]] = []
    for role, model in (("teacher", teacher), ("student", student)):
        layers = candidate_layers(model)
        if len(layers) < n:
            raise ConfigError(f"auto_pair: the {role} has {len(layers)} conv blocks/layers, fewer than n={n}")
        picks.append([layers[math.ceil(j * len(layers) / n) - 1] for j in range(1, n + 1)])
    return list(zip(picks[0], picks[1], strict=True))


def check_pairs(pairs: Iterable[Sequence[str]], loss_name: str) -> list[Pair]:
    """``pairs`` as a non-empty list of ``(teacher_path, student_path)`` tuples (lists from YAML are fine)."""
    out: list[Pair] = []
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(p, str) for p in pair):
            raise ConfigError(f"{loss_name}: each pair must be (teacher_path, student_path), got {pair!r}")
        out.append((pair[0], pair[1]))
    if not out:
        raise ConfigError(f"{loss_name}: needs at least one (teacher_path, student_path) pair")
    return out


def _lookup(features: FeatureMaps, role: str, path: str, loss_name: str) -> torch.Tensor:
    if role not in features:
        raise ConfigError(f"{loss_name}: features has no '{role}' entry; expected {{'teacher': ..., 'student': ...}}")
    maps = features[role]
    if path not in maps:
        captured = ", ".join(repr(p) for p in maps) or "nothing"
        why = " ('' is the model output; CombinedLoss fills it from (B, C) logits)" if path == "" else ""
        raise ConfigError(f"{loss_name}: {role} feature {path!r} was not captured{why}; captured: {captured}")
    return maps[path]


def paired_features(
    features: FeatureMaps, pairs: Iterable[Pair], loss_name: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(teacher, student)`` tensors for each pair; teacher tensors are detached."""
    for t_path, s_path in pairs:
        yield _lookup(features, "teacher", t_path, loss_name).detach(), _lookup(features, "student", s_path, loss_name)


def match_spatial(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive-average-pool 4-D maps down to their common (smaller) height and width.

    2-D inputs pass through; mixing 2-D and 4-D is a ConfigError.
    """
    if a.dim() != b.dim():
        raise ConfigError(f"cannot match features of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() != 4 or a.shape[-2:] == b.shape[-2:]:
        return a, b
    size = (min(a.shape[-2], b.shape[-2]), min(a.shape[-1], b.shape[-1]))
    if a.shape[-2:] != size:
        a = F.adaptive_avg_pool2d(a, size)
    if b.shape[-2:] != size:
        b = F.adaptive_avg_pool2d(b, size)
    return a, b
