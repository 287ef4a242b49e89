"""A rich-backed ProgressReporter for the CLI (bars with loss / accuracy fields, spinners otherwise)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from edgekd.core.progress import LogProgress


class _RichTask:
    def __init__(self, progress: Progress, task_id: int, description: str) -> None:
        self._p, self._id, self._desc = progress, task_id, description

    def advance(self, amount: float = 1.0, **fields: object) -> None:
        extra = " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items())
        desc = f"{self._desc} {extra}" if extra else None
        if desc:
            self._p.update(self._id, advance=amount, description=desc)
        else:
            self._p.advance(self._id, amount)


class RichProgress:
    """Shows one line per task while it runs; completed tasks stay visible."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[_RichTask]:
        if not self.console.is_terminal:  # CI logs: a live bar never renders there; print periodic lines
            with LogProgress().task(description, total) as plain:
                yield plain
            return
        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn()]
        if total:
            columns.insert(3, TextColumn("{task.completed:.0f}/{task.total:.0f}"))
            columns.append(TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as progress:
            task_id = progress.add_task(description, total=total)
            yield _RichTask(progress, task_id, description)
            if total:
                progress.update(task_id, completed=total)
