"""The Stage protocol: what one cached step of a build declares.

A stage names itself, lists every input that changes its output (its cache key: upstream hashes, config,
data preprocessing, and for measuring stages the machine or device that measured), writes its output
files into a folder (``run``) and reads them back as a typed result (``load``). Only the stage runner
(:class:`edgekd.pipeline.stage_runner.StageRunner`) looks up, produces and publishes cache entries, so a
stage never touches the cache and the same stage object serves ``edgekd build`` and the stand-alone
commands.

Example:
    >>> from pathlib import Path
    >>> stage = StageSpec("double", {"x": 21}, lambda out: (out / "v.txt").write_text("42"),
    ...                   lambda entry: int((entry / "v.txt").read_text()))
    >>> stage.key()
    {'x': 21}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from edgekd.core.progress import ProgressReporter

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@runtime_checkable
class Stage(Protocol[T_co]):
    """One cached step: ``name``, ``key()``, ``run(out, progress)``, ``load(entry)``."""

    name: str

    def key(self) -> dict[str, Any]:
        """Every input that changes the output (JSON-able); hashed into the cache key."""
        ...

    def run(self, out: Path, progress: ProgressReporter) -> None:
        """Compute the output and write its files into ``out`` (a fresh temporary folder)."""
        ...

    def load(self, entry: Path) -> T_co:
        """The typed result from a published entry (fresh or reused)."""
        ...


def _entry(entry: Path) -> Path:
    return entry


@dataclass(frozen=True)
class StageSpec(Generic[T]):
    """A stage given as two functions, for adapters whose inputs are already at hand.

    ``write(out)`` writes the files; ``read(entry)`` (default: the entry folder itself) loads them.
    """

    name: str
    inputs: dict[str, Any]
    write: Callable[[Path], None]
    read: Callable[[Path], T] = _entry  # type: ignore[assignment]

    def key(self) -> dict[str, Any]:
        return self.inputs

    def run(self, out: Path, progress: ProgressReporter) -> None:
        self.write(out)

    def load(self, entry: Path) -> T:
        return self.read(entry)
