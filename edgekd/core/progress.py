"""Progress reporting the library can call without knowing who displays it.

The library asks for a task and advances it; the CLI passes a rich-backed reporter, tests and
library users get the silent default.

Example:
    >>> with NULL_PROGRESS.task("train", total=10) as task:
    ...     task.advance(1, loss=0.3)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class ProgressTask(Protocol):
    def advance(self, amount: float = 1.0, **fields: object) -> None: ...


class ProgressReporter(Protocol):
    def task(self, description: str, total: float | None = None): ...  # -> ContextManager[ProgressTask]


class _NullTask:
    def advance(self, amount: float = 1.0, **fields: object) -> None:
        return None


class NullProgress:
    """Reports nothing."""

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        yield _NullTask()


NULL_PROGRESS = NullProgress()
