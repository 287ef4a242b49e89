"""The one stage runner: cache lookup, produce into a temporary folder, atomic publish, "reused"/"computed".

Every cached step of a build (and of the stand-alone commands) goes through :meth:`StageRunner.run`; no
other code calls the cache. Each published entry keeps the seconds it took to compute (``_timing.json``),
so a resumed build reports, per stage, whether it was reused and how long it originally took.

Example:
    >>> import tempfile
    >>> from edgekd.core.stage import StageSpec
    >>> runner = StageRunner(StageCache(Path(tempfile.mkdtemp())))
    >>> spec = StageSpec("answer", {"q": 1}, lambda out: (out / "a.txt").write_text("42"),
    ...                  lambda entry: (entry / "a.txt").read_text())
    >>> runner.run(spec), runner.run(spec), [r.status for r in runner.records]
    ('42', '42', ['computed', 'reused'])
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from edgekd.core.progress import NULL_PROGRESS, ProgressReporter
from edgekd.core.stage import Stage
from edgekd.pipeline.cache import StageCache

log = logging.getLogger(__name__)

T = TypeVar("T")
TIMING_FILE = "_timing.json"


@dataclass(frozen=True)
class StageRecord:
    """How one stage of this run was served: ``computed`` now, or ``reused`` from an earlier run."""

    name: str
    status: str
    seconds: float
    computed_seconds: float | None  # the compute time of the entry (this run's, or the original run's)

    def to_json(self) -> dict:
        return asdict(self)


class StageRunner:
    """Runs stages against one cache folder; see the module docstring."""

    def __init__(self, cache: StageCache, progress: ProgressReporter = NULL_PROGRESS) -> None:
        self.cache = cache
        self.progress = progress
        self.records: list[StageRecord] = []

    def run(self, stage: Stage[T]) -> T:
        inputs = stage.key()
        key = self.cache.key(inputs)
        t0 = time.perf_counter()
        entry = self.cache.lookup(stage.name, key)
        if entry is None:
            with self.cache.produce(stage.name, key, inputs) as tmp:
                stage.run(tmp, self.progress)
                seconds = round(time.perf_counter() - t0, 2)
                (tmp / TIMING_FILE).write_text(json.dumps({"seconds": seconds}))
            entry = self.cache.path(stage.name, key)
            log.info("stage %s: computed in %.1f s (%s)", stage.name, seconds, entry.name)
            self.records.append(StageRecord(stage.name, "computed", seconds, seconds))
        else:
            original = _computed_seconds(entry)
            log.info("stage %s: reused (%s)", stage.name, entry.name)
            self.records.append(StageRecord(stage.name, "reused", round(time.perf_counter() - t0, 2), original))
        return stage.load(entry)

    def reused(self) -> list[str]:
        return [r.name for r in self.records if r.status == "reused"]


def _computed_seconds(entry: Path) -> float | None:
    try:
        return float(json.loads((entry / TIMING_FILE).read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):  # entries from before timings were kept
        return None
