"""Turn a distillation config into a ready :class:`~edgekd.distill.combined_loss.CombinedLoss`.

Rules:
- ``kd`` and ``multi`` get ``temperature`` and ``alpha`` from the config; with more than one teacher a
  ``kd`` term becomes ``multi`` (mode ``multi_mode``), reading (B, n, C) cached logits.
- Feature losses (``hint``, ``at``, ``rkd``, ``spkd``) read the layer pairs ``hint_layers``
  (``[teacher_path, student_path]``); when none are given they are paired automatically by relative
  depth (:func:`~edgekd.distill.feature_hooks.auto_pair`, ``auto_pairs`` pairs). ``loss_options[name]``
  adds or overrides constructor arguments (e.g. ``{"rkd": {"w_angle": 0}}``).
- ``hint`` adapter widths are read from one forward pass of both models.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from edgekd.config.build_config import DistillConfig
from edgekd.core.errors import ConfigError, InputError
from edgekd.core.registry import LOSSES
from edgekd.distill.combined_loss import CombinedLoss, build_loss
from edgekd.distill.feature_hooks import Pair, auto_pair, check_pairs, unknown_path_message

log = logging.getLogger(__name__)


def check_outputs_match(teacher: nn.Module, student: nn.Module, example: torch.Tensor) -> int:
    """Number of classes both models predict; InputError when they differ."""
    with torch.no_grad():
        shapes = []
        for model in (teacher, student):
            was = model.training
            model.eval()
            shapes.append(tuple(model(example).shape))
            model.train(was)
    if shapes[0][1:] != shapes[1][1:]:
        raise InputError(
            f"teacher outputs {shapes[0][1:]} classes but the student {shapes[1][1:]}; "
            "distil a student built for the teacher's classes"
        )
    return int(shapes[0][1])


def check_paths(model: nn.Module, paths: list[str], role: str) -> None:
    """ConfigError naming close matches for a path that is not a module of ``model``."""
    modules = dict(model.named_modules())
    for path in paths:
        if path and path not in modules:
            raise ConfigError(unknown_path_message(path, modules, role))


def feature_pairs(cfg: DistillConfig, teacher: nn.Module, student: nn.Module) -> list[Pair]:
    """The configured layer pairs, or ``auto_pairs`` pairs by relative depth."""
    if cfg.hint_layers:
        pairs = check_pairs(cfg.hint_layers, "hint_layers")
    else:
        pairs = auto_pair(teacher, student, cfg.auto_pairs)
        log.info("feature losses pair layers by relative depth: %s", pairs)
    check_paths(teacher, [t for t, _ in pairs], "teacher")
    check_paths(student, [s for _, s in pairs], "student")
    return pairs


def loss_weights(cfg: DistillConfig, n_teachers: int = 1) -> dict[str, float]:
    """``{name: weight}`` with ``kd`` renamed ``multi`` for several teachers; unknown names are errors."""
    weights = dict(cfg.losses)
    for name in weights:
        LOSSES.get(name)  # ConfigError listing the known losses
    if n_teachers > 1 and "kd" in weights:
        if "multi" in weights:
            raise ConfigError("give either 'kd' or 'multi' with several teachers, not both")
        weights["multi"] = weights.pop("kd")
    if "multi" in weights and n_teachers < 2:
        raise ConfigError("loss 'multi' needs at least two teachers; add `teachers:` or use 'kd'")
    return weights


def make_loss(
    cfg: DistillConfig,
    teacher: nn.Module,
    student: nn.Module,
    example: torch.Tensor,
    n_teachers: int = 1,
) -> CombinedLoss:
    """The configured combined loss, with hint adapters sized for ``teacher`` and ``student``.

    Raises:
        ConfigError: Unknown loss or layer path (the message lists close matches), bad hyper-parameters.
        InputError: Teacher and student predict different numbers of classes.
    """
    check_outputs_match(teacher, student, example)
    weights = loss_weights(cfg, n_teachers)
    hyper: dict[str, dict[str, Any]] = {}
    pairs: list[Pair] | None = None
    for name in weights:
        options = dict(cfg.loss_options.get(name, {}))
        # what the loss class declares it needs (unknown names are left to build_loss's error)
        loss_cls = LOSSES.get(name) if name in LOSSES.names() else None
        if getattr(loss_cls, "uses_temperature", False):
            options.setdefault("temperature", cfg.temperature)
            options.setdefault("alpha", cfg.alpha)
            for option, field in getattr(loss_cls, "config_options", {}).items():
                options.setdefault(option, getattr(cfg, field))
            for option, value in getattr(loss_cls, "fixed_options", {}).items():
                options.setdefault(option, value)
        elif getattr(loss_cls, "needs_features", False) and "pairs" not in options:
            pairs = pairs if pairs is not None else feature_pairs(cfg, teacher, student)
            options["pairs"] = pairs
        elif getattr(loss_cls, "needs_features", False):
            given = check_pairs(options["pairs"], name)
            check_paths(teacher, [t for t, _ in given], "teacher")
            check_paths(student, [s for _, s in given], "student")
        hyper[name] = options
    hint = hyper.get("hint")
    if hint is not None and "teacher_channels" not in hint:
        from edgekd.distill.losses.hint_loss import HintLoss

        sized = HintLoss.from_models(teacher, student, hint["pairs"], example)
        hint.update(teacher_channels=sized.teacher_channels, student_channels=sized.student_channels)
    spec = {**weights, "ce": cfg.weight_ce}
    return build_loss(spec, **{k: v for k, v in hyper.items() if v})
