"""One benchmark of one model file, runner-independent: pick the runner, run, judge the spread, report.

This is what ``edgekd bench`` calls. The coefficient-of-variation rule lives here so every runner
gets it: a run whose CV exceeds ``max_cv`` is repeated (at most ``repeats`` more times) and, if it
stays above, kept but flagged ``unstable``.

Example:
    >>> report = bench_model(Path("student.onnx"), load_target("x86-64-host"), "local",  # doctest: +SKIP
    ...                      BenchSettings(runs=100))
    >>> report.stats.p50_ms, report.unstable  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekd.bench.runner_base import BenchSettings, Runner, RunResult, check_model_file
from edgekd.bench.stats import DEFAULT_MAX_CV, LatencyStats, is_unstable, summarize
from edgekd.core.atomic import atomic_write_text
from edgekd.core.errors import ConfigError

if TYPE_CHECKING:
    from edgekd.config.target_profile import PowerSpec, TargetProfile

logger = logging.getLogger(__name__)

PROFILE_RUNNER = "profile"
"""``--runner profile`` means the runner the target profile names (``runner.kind``)."""


@dataclass
class CheckedRun:
    """A run judged by its spread: the result kept, its stats, every attempt's CV, and the verdict."""

    result: RunResult
    stats: LatencyStats
    cvs: list[float]
    unstable: bool
    max_cv: float


@dataclass
class BenchReport:
    """What ``edgekd bench`` prints or writes."""

    model: str
    target: str
    runner: str
    checked: CheckedRun
    settings: BenchSettings
    notes: list[str] = field(default_factory=list)
    power: PowerSpec | None = None
    """The target's power figures, for an estimate where the device has no sensor."""

    @property
    def stats(self) -> LatencyStats:
        return self.checked.stats

    @property
    def unstable(self) -> bool:
        return self.checked.unstable

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict: figures, evidence, the CV verdict and the raw run."""
        result = self.checked.result
        return {
            "model": self.model,
            "target": self.target,
            "runner": self.runner,
            "evidence": result.evidence,
            "runtime": result.runtime,
            "threads": self.settings.threads,
            "batch": self.settings.batch_size,
            "stats": self.stats.to_json(),
            "unstable": self.unstable,
            "max_cv": self.checked.max_cv,
            "attempt_cvs": self.checked.cvs,
            "notes": list(self.notes),
            "energy": self.energy,
            "run": result.to_json(),
        }

    @property
    def energy(self) -> dict | None:
        """Energy per inference: measured where the runner's device has a sensor, else estimated from the
        profile's power figures x this run's p50 (labelled either way, with its method)."""
        from edgekd.bench.energy import estimate_energy, figure_from_script

        result = self.checked.result
        figure = figure_from_script(result.extra, len(result.samples_ms))
        if figure is None and self.power is not None:
            figure = estimate_energy(self.stats.p50_ms, self.settings.threads, self.power)
        if figure is None:
            return None
        return {**figure.to_json(), "latency_evidence": result.evidence}

    def write(self, path: Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically (readers see the old file or the whole new one)."""
        return atomic_write_text(Path(path), json.dumps(self.to_json(), indent=2) + "\n")


def run_checked(
    runner: Runner, remote_path: str, settings: BenchSettings, max_cv: float = DEFAULT_MAX_CV, repeats: int = 1
) -> CheckedRun:
    """Run once; while the CV exceeds ``max_cv`` repeat (at most ``repeats`` more times), then flag it.

    The kept result is the attempt with the lowest CV; ``unstable`` is True when even that one exceeds
    ``max_cv``. Every attempt's CV is recorded so a repeat is visible in the report.
    """
    if repeats < 0 or max_cv <= 0:
        raise ConfigError("--repeats must be >= 0 and --max-cv > 0")
    best: tuple[RunResult, LatencyStats] | None = None
    cvs: list[float] = []
    for attempt in range(repeats + 1):
        result = runner.run(remote_path, settings)
        stats = summarize(result.samples_ms, result.init_ms)
        cvs.append(stats.cv)
        if best is None or stats.cv < best[1].cv:
            best = (result, stats)
        if not is_unstable(stats, max_cv):
            break
        if result.evidence == "measured-emulated":
            break  # emulated wall time is not performance: repeating cannot make it a latency figure
        if attempt < repeats:
            logger.warning("latency spread cv %.3f > %.3f; repeating the run (%d/%d)", stats.cv, max_cv,
                           attempt + 1, repeats)  # fmt: skip
    assert best is not None
    return CheckedRun(best[0], best[1], cvs, is_unstable(best[1], max_cv), max_cv)


def calibration_inputs(count: int) -> np.ndarray:
    """The first ``count`` validation images of the bundled calibration data, normalised as models expect."""
    from edgekd.data.bundled import example_dataset

    bundle = example_dataset()
    return bundle.to_tensor(bundle.val.subset(count).x[:]).numpy()


def resolve_runner_name(name: str, profile: TargetProfile) -> str:
    """``profile`` → the profile's runner kind; anything else unchanged."""
    return profile.runner.kind if name == PROFILE_RUNNER else name


def bench_model(
    model: Path,
    profile: TargetProfile,
    runner_name: str,
    settings: BenchSettings,
    options: dict[str, Any] | None = None,
    max_cv: float = DEFAULT_MAX_CV,
    repeats: int = 1,
) -> BenchReport:
    """Benchmark ``model`` with the named runner built from ``profile`` and ``options``.

    The model file is checked before any runner is built or connected (InputError, exit 2).

    Raises:
        InputError: the model or input file is unusable.
        ConfigError: unknown runner, or an option the runner does not take.
        RunnerError: the runner could not reach or run on its device.
    """
    from edgekd.core.registry import RUNNERS

    check_model_file(model)
    name = resolve_runner_name(runner_name, profile)
    runner_cls = RUNNERS.get(name)
    runner = runner_cls.from_profile(profile, **(options or {}))
    with runner:
        checked = run_checked(runner, runner.push(model), settings, max_cv, repeats)
    report = BenchReport(str(model), profile.name, name, checked, settings, power=profile.power)
    if name == "local" and not profile.measured_locally:
        report.notes.append(f"{profile.name} is not this machine; these are host figures, not {profile.name} ones")
    if checked.unstable:
        report.notes.append(
            f"unstable: cv {checked.stats.cv:.3f} > {max_cv:g} after {len(checked.cvs)} run(s); "
            "quiet the machine, pin CPUs (--pin) or raise --min-seconds"
        )
    return report
