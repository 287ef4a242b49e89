"""Hyper-parameter grids for distillation: ``--sweep temperature=1,2,4,8 --sweep alpha=0.3,0.5,0.7``.

Each axis names a numeric :class:`~edgekd.config.build_config.DistillConfig` field (or a loss weight
as ``loss.<name>``); the grid is their product. Every point is validated as a whole DistillConfig
(so ``temperature=0`` or ``alpha=1.5`` is a one-line ConfigError before any training), trained on a
short schedule by the caller's ``run_point``, and the best by validation accuracy wins.

Example:
    >>> grid = parse_sweep(["temperature=2,4", "alpha=0.5"])
    >>> [p for p in grid_points(grid)]
    [{'temperature': 2.0, 'alpha': 0.5}, {'temperature': 4.0, 'alpha': 0.5}]
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from edgekd.config.build_config import DistillConfig
from edgekd.config.loading import format_validation_error
from edgekd.core.errors import ConfigError

log = logging.getLogger(__name__)

SWEEPABLE = ("temperature", "alpha", "lr", "weight_decay", "weight_ce", "epochs", "warmup_epochs")
LOSS_PREFIX = "loss."


def parse_sweep(items: Iterable[str] | Mapping[str, Iterable[float]]) -> dict[str, list[float]]:
    """``["name=v1,v2", ...]`` (or a mapping) as ``{name: [values]}``; one-line ConfigError when malformed."""
    grid: dict[str, list[float]] = {}
    pairs = items.items() if isinstance(items, Mapping) else (_split(item) for item in items)
    for name, values in pairs:
        if name not in SWEEPABLE and not name.startswith(LOSS_PREFIX):
            raise ConfigError(
                f"cannot sweep '{name}'; sweepable: {', '.join(SWEEPABLE)} or {LOSS_PREFIX}<name> (a loss weight)"
            )
        if name in grid:
            raise ConfigError(f"'{name}' is swept twice; give all its values in one --sweep {name}=v1,v2")
        try:
            grid[name] = [float(v) for v in values]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"sweep values of '{name}' must be numbers (got {list(values)!r})") from exc
        if not grid[name]:
            raise ConfigError(f"sweep '{name}' has no values")
    return grid


def _split(item: str) -> tuple[str, list[str]]:
    name, sep, values = item.partition("=")
    if not sep or not name.strip() or not values.strip():
        raise ConfigError(f"sweep '{item}' is not of the form name=v1,v2,... (e.g. temperature=1,2,4,8)")
    return name.strip(), [v.strip() for v in values.split(",") if v.strip()]


def grid_points(grid: Mapping[str, list[float]]) -> Iterator[dict[str, float]]:
    """Every combination, first axis slowest."""
    names = list(grid)
    for values in itertools.product(*(grid[n] for n in names)):
        yield dict(zip(names, values, strict=True))


def apply_point(cfg: DistillConfig, point: Mapping[str, float]) -> DistillConfig:
    """``cfg`` with the point's values, validated as a whole (ConfigError naming the bad value)."""
    values = cfg.model_dump()
    for name, value in point.items():
        if name.startswith(LOSS_PREFIX):
            values["losses"] = {**values["losses"], name[len(LOSS_PREFIX) :]: value}
        elif name == "epochs":
            values[name] = int(value)
        else:
            values[name] = value
    try:
        return DistillConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, DistillConfig, "sweep value")) from exc


@dataclass
class SweepPoint:
    values: dict[str, float]
    val_accuracy: float
    record: dict[str, Any] = field(default_factory=dict)


@dataclass
class SweepResult:
    points: list[SweepPoint]
    best: SweepPoint

    def to_json(self) -> dict[str, Any]:
        return {
            "points": [{"values": p.values, "val_accuracy": p.val_accuracy, **p.record} for p in self.points],
            "best": {"values": self.best.values, "val_accuracy": self.best.val_accuracy},
            "chosen_by": "validation accuracy",
        }


def run_sweep(
    cfg: DistillConfig,
    grid: Mapping[str, list[float]],
    run_point: Callable[[DistillConfig, dict[str, float]], tuple[float, dict[str, Any]]],
    on_point: Callable[[SweepResult], None] | None = None,
) -> SweepResult:
    """Train every grid point with ``run_point(cfg_at_point, point) -> (val_accuracy, record)``.

    All points are validated before the first is trained. Ties keep the earlier point.
    ``on_point`` sees the partial result after every point (e.g. to write it to disk).
    """
    points = list(grid_points(grid))
    configs = [apply_point(cfg, p) for p in points]
    done: list[SweepPoint] = []
    for point, point_cfg in zip(points, configs, strict=True):
        acc, record = run_point(point_cfg, point)
        done.append(SweepPoint(point, acc, record))
        log.info("sweep %s: val acc %.4f", point, acc)
        if on_point is not None:
            on_point(SweepResult(done, max(done, key=lambda p: p.val_accuracy)))
    best = max(done, key=lambda p: p.val_accuracy)  # max keeps the first of equal values
    return SweepResult(done, best)
