"""The bench stage: time one artifact with a runner from the registry, cached by artifact, settings and machine.

The runner comes from :data:`edgekd.core.registry.RUNNERS` by name: ``local`` times the artifact on this
machine (``measured-host``); the profile's runner (``ssh``, ``adb``, ...) times it on the target
(``measured-device``). The cache key names the machine that measured, so a ``.stages`` folder copied to
another machine, or pointed at another board, never serves the other machine's timings.

Example:
    >>> from edgekd.config.targets import load_target
    >>> stage = BenchStage.for_profile(Path("m.onnx"), "0" * 64, load_target("x86-64-host"),
    ...                                BenchSettings(threads=1, warmup=2, runs=10))  # doctest: +SKIP
    >>> stage.runner_name  # doctest: +SKIP
    'local'
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekd.bench.runner_base import BenchSettings
from edgekd.config.target_profile import TargetProfile, host_cpu_name
from edgekd.core.evidence import Evidence
from edgekd.core.progress import ProgressReporter

log = logging.getLogger(__name__)

RESULT_FILE = "bench.json"


@dataclass(frozen=True)
class BenchResult:
    """Raw samples and their summary, with where they were measured.

    ``stats`` is :meth:`edgekd.bench.stats.LatencyStats.to_json`; ``energy`` a sensed
    :class:`~edgekd.bench.energy.EnergyFigure` as JSON, or None without a power sensor.
    """

    samples_ms: tuple[float, ...]
    stats: dict[str, Any]
    evidence: Evidence
    runtime: str
    runner: str
    machine: str
    threads: int
    peak_rss_bytes: int | None = None
    energy: dict[str, Any] | None = None

    def to_record(self) -> dict[str, Any]:
        """The ``bench`` record of an artifact in report.json (schema 1.0)."""
        record = {"stats": dict(self.stats), "runtime": self.runtime, "evidence": str(self.evidence),
                  "threads": self.threads, "peak_rss_bytes": self.peak_rss_bytes}  # fmt: skip
        if self.energy is not None:
            record["energy"] = dict(self.energy)
        return record


def machine_of(profile: TargetProfile, runner_name: str) -> str:
    """Who measures: this host's CPU for ``local``, the board's address or serial for device runners."""
    spec = profile.runner
    if runner_name == "local":
        return f"host:{host_cpu_name()}"
    if runner_name == "ssh":
        return f"ssh:{spec.user or ''}@{spec.host or ''}:{spec.port or 22}"
    if runner_name == "adb":
        return f"adb:{spec.serial or 'default'}"
    if runner_name == "qemu":
        return f"qemu:{spec.qemu_cpu or 'default'}"
    return f"{runner_name}:{spec.model_dump_json()}"


@dataclass(frozen=True)
class BenchStage:
    """Time ``artifact`` (whose sha256 is ``artifact_sha256``) with the registry's ``runner_name``."""

    artifact: Path
    artifact_sha256: str
    profile: TargetProfile
    settings: BenchSettings
    runner_name: str
    label: str = "artifact"

    @classmethod
    def for_profile(
        cls, artifact: Path, sha256: str, profile: TargetProfile, settings: BenchSettings, label: str = "artifact"
    ) -> BenchStage:
        """The profile's own runner (``local`` for a host target)."""
        return cls(artifact, sha256, profile, settings, profile.runner.kind, label)

    @property
    def name(self) -> str:
        return "bench" if self.runner_name == "local" else f"bench-{self.runner_name}"

    def key(self) -> dict[str, Any]:
        s = self.settings
        return {"artifact": self.artifact_sha256, "threads": s.threads, "warmup": s.warmup, "runs": s.runs,
                "runner": self.runner_name, "machine": machine_of(self.profile, self.runner_name)}  # fmt: skip

    def run(self, out: Path, progress: ProgressReporter) -> None:
        from edgekd.bench.energy import figure_from_script
        from edgekd.bench.stats import summarize
        from edgekd.core.registry import RUNNERS

        runner = RUNNERS.get(self.runner_name).from_profile(self.profile)
        label = f"bench {self.label} {self.artifact.name} ({self.settings.runs} runs, {self.runner_name})"
        with progress.task(label, total=None), runner:
            result = runner.run(runner.push(self.artifact), self.settings)
        stats = summarize(result.samples_ms, result.init_ms)
        sensed = figure_from_script(result.extra, len(result.samples_ms))
        record = {"samples_ms": list(result.samples_ms), "stats": stats.to_json(), "evidence": str(result.evidence),
                  "runtime": result.runtime, "runner": self.runner_name,
                  "machine": machine_of(self.profile, self.runner_name), "threads": self.settings.threads,
                  "peak_rss_bytes": result.peak_rss_bytes,
                  "energy": sensed.to_json() if sensed is not None else None}  # fmt: skip
        (out / RESULT_FILE).write_text(json.dumps(record, indent=2))

    def load(self, entry: Path) -> BenchResult:
        r = json.loads((entry / RESULT_FILE).read_text())
        return BenchResult(tuple(r["samples_ms"]), r["stats"], Evidence(r["evidence"]), r["runtime"], r["runner"],
                           r["machine"], r["threads"], r.get("peak_rss_bytes"), r.get("energy"))  # fmt: skip
