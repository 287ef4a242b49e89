"""Resolve and check a build's inputs before anything is written."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError
from torch import nn

from edgekd.config.build_config import BuildConfig
from edgekd.config.loading import format_validation_error
from edgekd.config.target_profile import TargetProfile
from edgekd.config.targets import load_target
from edgekd.core.errors import ConfigError
from edgekd.core.hashing import sha256_file, sha256_json
from edgekd.core.inference import check_fit
from edgekd.data.bundled import open_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.data.validation import check_finite_weights, check_output_dir
from edgekd.models.example_weights import teacher_weights_path

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
    return teacher_weights_path(config.teacher.factory, config.teacher.weights)


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
