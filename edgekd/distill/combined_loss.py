"""Weighted sum of distillation losses: ``total = Σ weight_i · loss_i + weight_ce · CE(student, labels)``.

Two kinds of terms, told apart by a class attribute ``needs_features = True``:

- logit losses (``kd``, ``multi``): ``loss(student_logits, labels, teacher_logits) -> tensor``;
- feature losses (``hint``, ``at``, ``rkd``, ``spkd``): ``loss(features) -> tensor`` where ``features`` is
  ``{"teacher": {path: tensor}, "student": {path: tensor}}`` (see ``edgekd.distill.feature_hooks``).

:class:`CombinedLoss` has the trainer's signature plus an optional ``features`` keyword, and fills the
path ``""`` (the model itself) with the logits, so ``rkd`` / ``spkd`` on their default pair ``("", "")``
work without hooks. Feature losses with learned parts (``hint`` adapters) are sub-modules: pass
``loss.parameters()`` to the optimizer.

Example (one training step with a feature loss)::

    loss = build_loss(
        {"kd": 1.0, "hint": 0.5, "ce": 0.5},
        kd={"temperature": 4.0, "alpha": 1.0},
        hint={"pairs": [("stages.1", "stages.1")], "teacher_channels": [192], "student_channels": [64]},
    )
    opt = torch.optim.AdamW([*student.parameters(), *loss.parameters()])
    paths = loss.feature_paths()
    with FeatureHooks(teacher, paths["teacher"], detach=True) as th, FeatureHooks(student, paths["student"]) as sh:
        with torch.no_grad():
            teacher_logits = teacher(x)
        value = loss(student(x), y, teacher_logits, features={"teacher": th.features, "student": sh.features})
    value.backward()
    log.info("%s", loss.last_values)  # {"kd": ..., "hint": ..., "ce": ..., "total": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.core.errors import ConfigError
from edgekd.core.registry import LOSSES, Registry
from edgekd.distill.feature_hooks import FeatureMaps

LossTerm = Callable[..., torch.Tensor]
RESERVED = ("ce", "total")


def needs_features(loss: LossTerm) -> bool:
    """Whether ``loss`` is called with a features mapping rather than logits."""
    return bool(getattr(loss, "needs_features", False))


class CombinedLoss(nn.Module):
    """``Σ weight_i · loss_i + weight_ce · CE``, with the unweighted parts kept for logging.

    Args:
        terms: ``name -> (weight, loss)``; weights must be >= 0. ``"ce"`` and ``"total"`` are reserved.
        weight_ce: Weight of plain cross-entropy on the hard labels (0 leaves it out).

    Calling the module returns the total and stores ``last_values`` (floats: each term's unweighted
    value, ``"ce"`` when weighted in, and ``"total"``); :meth:`compute` returns both directly.
    """

    def __init__(self, terms: Mapping[str, tuple[float, LossTerm]], weight_ce: float = 0.0) -> None:
        super().__init__()
        for name, (weight, _) in terms.items():
            if name in RESERVED:
                raise ConfigError(f"loss term name '{name}' is reserved ({', '.join(RESERVED)})")
            if not weight >= 0:
                raise ConfigError(f"loss weight of '{name}' must be >= 0 (got {weight})")
        if not weight_ce >= 0:
            raise ConfigError(f"weight_ce must be >= 0 (got {weight_ce})")
        if not terms and weight_ce == 0:
            raise ConfigError("a combined loss needs at least one term or weight_ce > 0")
        self.weights = {name: float(weight) for name, (weight, _) in terms.items()}
        self.weight_ce = float(weight_ce)
        self.learned = nn.ModuleDict({n: loss for n, (_, loss) in terms.items() if isinstance(loss, nn.Module)})
        self._plain = {n: loss for n, (_, loss) in terms.items() if not isinstance(loss, nn.Module)}
        self.last_values: dict[str, float] = {}

    def term(self, name: str) -> LossTerm:
        """The loss object registered under ``name``."""
        return self.learned[name] if name in self.learned else self._plain[name]

    def feature_paths(self) -> dict[str, list[str]]:
        """Module paths the feature terms read, as ``{"teacher": [...], "student": [...]}`` for FeatureHooks.

        ``""`` (the model output) is left out: it is filled from the logits.
        """
        paths: dict[str, list[str]] = {"teacher": [], "student": []}
        for name in self.weights:
            loss = self.term(name)
            if not needs_features(loss):
                continue
            for t_path, s_path in getattr(loss, "pairs", ()):
                for role, path in (("teacher", t_path), ("student", s_path)):
                    if path and path not in paths[role]:
                        paths[role].append(path)
        return paths

    @staticmethod
    def _with_outputs(
        features: FeatureMaps | None, student_logits: torch.Tensor, teacher_logits: Any
    ) -> dict[str, dict[str, torch.Tensor]]:
        features = features or {}
        maps: dict[str, dict[str, torch.Tensor]] = {"student": {"": student_logits}, "teacher": {}}
        if isinstance(teacher_logits, torch.Tensor) and teacher_logits.dim() == 2:
            maps["teacher"][""] = teacher_logits
        for role in maps:
            maps[role].update(features.get(role, {}))
        return maps

    def compute(
        self,
        student_logits: torch.Tensor,
        labels: torch.Tensor,
        teacher_logits: Any = None,
        features: FeatureMaps | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The weighted total and each part's unweighted value (``"ce"`` included when weighted in)."""
        values: dict[str, torch.Tensor] = {}
        maps = None
        for name in self.weights:
            loss = self.term(name)
            if needs_features(loss):
                if features is None and teacher_logits is None:
                    raise ConfigError(
                        f"'{name}' is a feature loss: call with features={{'teacher': ..., 'student': ...}} "
                        "(see edgekd.distill.feature_hooks.FeatureHooks) or teacher logits"
                    )
                maps = maps if maps is not None else self._with_outputs(features, student_logits, teacher_logits)
                values[name] = loss(maps)
            else:
                values[name] = loss(student_logits, labels, teacher_logits)
        if self.weight_ce:
            values["ce"] = F.cross_entropy(student_logits, labels)
        total = student_logits.new_zeros(())
        for name, value in values.items():
            total = total + (self.weight_ce if name == "ce" else self.weights[name]) * value
        return total, values

    def forward(
        self,
        student_logits: torch.Tensor,
        labels: torch.Tensor,
        teacher_logits: Any = None,
        features: FeatureMaps | None = None,
    ) -> torch.Tensor:
        total, values = self.compute(student_logits, labels, teacher_logits, features)
        self.last_values = {name: float(value.detach()) for name, value in values.items()}
        self.last_values["total"] = float(total.detach())
        return total


def build_loss(
    spec: Mapping[str, float], *, registry: Registry | None = None, **hyper: Mapping[str, Any]
) -> CombinedLoss:
    """Build a :class:`CombinedLoss` from ``{name: weight}``, looking names up in ``LOSSES``.

    Args:
        spec: Loss name -> weight; the key ``"ce"`` sets ``weight_ce`` (default 0).
        registry: Where names are looked up (default ``edgekd.core.registry.LOSSES``).
        **hyper: Per-loss constructor arguments keyed by loss name, e.g. ``kd={"temperature": 4.0}``.

    Raises:
        ConfigError: Unknown loss name (the message lists the known ones), hyper-parameters for a loss
            not in ``spec``, or arguments the loss does not accept.
    """
    registry = registry if registry is not None else LOSSES
    weights = dict(spec)
    weight_ce = weights.pop("ce", 0.0)
    stray = sorted(set(hyper) - set(weights))
    if stray:
        raise ConfigError(f"hyper-parameters given for {', '.join(stray)}, which the loss spec does not use")
    terms: dict[str, tuple[float, LossTerm]] = {}
    for name, weight in weights.items():
        cls = registry.get(name)
        kwargs = hyper.get(name, {})
        if not isinstance(kwargs, Mapping):
            raise ConfigError(f"hyper-parameters of '{name}' must be a mapping of arguments (got {kwargs!r})")
        try:
            terms[name] = (weight, cls(**kwargs))
        except TypeError as err:
            raise ConfigError(f"bad hyper-parameters for loss '{name}': {err}") from err
    return CombinedLoss(terms, weight_ce)
