"""Progress reporting the library can call without knowing who displays it.

The library asks for a task and advances it; the CLI passes a rich-backed reporter on a terminal and
:class:`LogProgress` (periodic plain lines) otherwise, tests and library users get the silent default.

Example:
    >>> with NULL_PROGRESS.task("train", total=10) as task:
    ...     task.advance(1, loss=0.3)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
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


class _LogTask:
    def __init__(self, description: str, total: float | None, every_s: float, write: Callable[[str], None]) -> None:
        self.description, self.total, self.every_s, self.write = description, total, every_s, write
        self.done, self.fields = 0.0, {}
        self.started = self.last = time.monotonic()

    def line(self, state: str) -> str:
        count = f"{self.done:.0f}/{self.total:.0f}" if self.total else f"{self.done:.0f} steps"
        extra = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.fields.items())
        return f"[{state}] {self.description}: {count}, {time.monotonic() - self.started:.0f} s {extra}".rstrip()

    def advance(self, amount: float = 1.0, **fields: object) -> None:
        self.done += amount
        self.fields.update(fields)
        now = time.monotonic()
        if now - self.last >= self.every_s:
            self.last = now
            self.write(self.line("..."))


class LogProgress:
    """Plain lines for non-interactive runs (CI logs): a start line, one every ``every_s`` seconds, an end line.

    Example:
        >>> lines = []
        >>> with LogProgress(every_s=0, write=lines.append).task("refine", total=2) as t:
        ...     t.advance(1)
        >>> [line.split(":")[0] for line in lines]
        ['[start] refine', '[...] refine', '[done] refine']
    """

    def __init__(self, every_s: float = 30.0, write: Callable[[str], None] | None = None) -> None:
        self.every_s = every_s
        self.write = write or _stderr_line

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[ProgressTask]:
        task = _LogTask(description, total, self.every_s, self.write)
        self.write(task.line("start"))
        yield task
        if total:
            task.done = max(task.done, total)
        self.write(task.line("done"))


def _stderr_line(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
