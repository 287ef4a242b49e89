"""Resolve and check a build's inputs before anything is written."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from pydantic import ValidationError
from torch import nn

from edgekd.config.build_config import EXAMPLE_FACTORY, BuildConfig
from edgekd.config.loading import format_validation_error
from edgekd.config.target_profile import TargetProfile
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError, InputError
from edgekd.core.hashing import sha256_file, sha256_json
from edgekd.data.bundled import open_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.data.validation import check_finite_weights, check_output_dir

log = logging.getLogger(__name__)


@dataclass
class BuildInputs:
    config: BuildConfig
    profile: TargetProfile
    budget_ms: float
    data: DatasetBundle
    teacher: nn.Module
    teacher_key: str
    teacher_weights: Path
    out_dir: Path


def make_config(**values: object) -> BuildConfig:
    """BuildConfig from keyword values, with a one-line error naming the bad option."""
    try:
        return BuildConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, BuildConfig, "build option")) from exc


def teacher_weights(config: BuildConfig) -> Path:
    if config.teacher.weights is not None:
        return config.teacher.weights
    if config.teacher.factory == EXAMPLE_FACTORY:
        from edgekd.models.teacher_training import TEACHER_CHECKPOINT

        if not TEACHER_CHECKPOINT.exists():
            raise InputError(f"bundled teacher {TEACHER_CHECKPOINT} is missing; run `edgekd example train-teacher`")
        return TEACHER_CHECKPOINT
    raise ConfigError(f"teacher '{config.teacher.factory}' needs --teacher-weights (a state-dict file)")


def check_fit(teacher: nn.Module, data: DatasetBundle) -> DatasetBundle:
    """The dataset's images must go through the teacher and give one logit per class.

    An .npz without ``class_names`` has its class count guessed from the largest label; when the
    teacher has more logits the teacher's count is the better guess, so the bundle is widened.
    """
    x = data.to_tensor(data.test.x[:2])
    try:
        with torch.no_grad():
            out = teacher(x)
    except Exception as exc:  # any shape error from user code
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"dataset images of shape {tuple(data.input_shape)} do not fit the teacher ({first}); "
            "resize the data or pass the matching teacher"
        ) from exc
    counted = data.class_names == tuple(str(i) for i in range(data.num_classes))
    if out.ndim == 2 and counted and out.shape[1] > data.num_classes:
        log.info("dataset has no class_names; taking the teacher's %d classes", out.shape[1])
        return replace(data, class_names=tuple(str(i) for i in range(out.shape[1])))
    if out.ndim != 2 or out.shape[1] != data.num_classes:
        basis = " (counted from the largest label)" if counted else ""
        raise InputError(
            f"teacher outputs shape {tuple(out.shape)} but the dataset has {data.num_classes} classes{basis}; "
            "pass a teacher with one logit per class"
        )
    return data


def resolve(config: BuildConfig) -> BuildInputs:
    """Load and check everything; raises an EdgeKDError on bad input, writes nothing."""
    from edgekd.models.loading import load_model

    profile = load_target(config.target)
    budget = config.budget_ms if config.budget_ms is not None else profile.budget.latency_ms
    if budget <= 0:
        raise ConfigError(f"budget {budget} ms must be > 0")
    out_dir = config.out_dir or Path("build") / profile.name
    check_output_dir(out_dir)
    data = open_dataset(config.data, config.preprocess, config.transfer)
    weights = teacher_weights(config)
    teacher = load_model(config.teacher.factory, weights)
    check_finite_weights(teacher, f"teacher weights {weights}")
    data = check_fit(teacher, data)
    teacher_key = sha256_json({"factory": config.teacher.factory, "weights": sha256_file(weights)})
    return BuildInputs(config, profile, budget, data, teacher, teacher_key, weights, out_dir)
