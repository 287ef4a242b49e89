"""One error hierarchy for the whole project; the CLI maps each class to an exit code."""

from __future__ import annotations


class EdgeKDError(Exception):
    """Base class of every expected edgekd error. ``exit_code`` is what the CLI returns."""

    exit_code = 2


class ConfigError(EdgeKDError):
    """A configuration file, target profile or option is wrong."""

    exit_code = 2


class InputError(EdgeKDError):
    """A model, checkpoint or dataset handed to edgekd is unusable."""

    exit_code = 2


class BudgetUnreachableError(EdgeKDError):
    """No pruning plan meets the latency budget; ``nearest_ms`` is the best achievable figure."""

    exit_code = 1

    def __init__(self, message: str, nearest_ms: float) -> None:
        super().__init__(message)
        self.nearest_ms = nearest_ms


class ToolchainError(EdgeKDError):
    """An exporter, converter or runtime failed."""

    exit_code = 3


class RunnerError(EdgeKDError):
    """A benchmark runner could not reach or run on its device."""

    exit_code = 3
