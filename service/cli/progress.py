"""Progress of a long command, shown on stderr so that stdout stays the result
(``--json`` output included).

The library calls report ``(done, total, what)`` (:mod:`supernets.progress`);
:func:`progress_reporter` turns that into a rich progress bar with the time
left when stderr is a terminal, and into plain lines (at most one per
``interval_s``, plus the first and the last) when it is a file or a pipe,
where a bar would be a mess of carriage returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from supernets.progress import ProgressCallback

__all__ = ["PlainProgress", "progress_reporter"]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class PlainProgress:
    """Progress as lines of text: ``title: done/total (pct) what; about T left``."""

    def __init__(self, title: str, stream: IO[str], interval_s: float = 5.0) -> None:
        self.title, self.stream, self.interval_s = title, stream, interval_s
        self.started = time.monotonic()
        self.last_line: float | None = None
        self.first_done: int | None = None

    def __call__(self, done: int, total: int, what: str) -> None:
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = done
        finished = total > 0 and done >= total
        if not finished and self.last_line is not None and now - self.last_line < self.interval_s:
            return
        self.last_line = now
        pct = f" ({done / total:.0%})" if total > 0 else ""
        line = f"{self.title}: {done}/{total}{pct} {what}"
        rate_units = done - self.first_done
        if not finished and rate_units > 0:
            left = (now - self.started) / rate_units * (total - done)
            line += f"; about {_duration(left)} left"
        elif finished:
            line += f"; took {_duration(now - self.started)}"
        print(line, file=self.stream, flush=True)


class _RichProgress:
    """Progress as a rich bar on a terminal: description, bar, count, time left."""

    def __init__(self, title: str, progress: Any) -> None:
        self.title, self.progress = title, progress
        self.task: Any = None

    def __call__(self, done: int, total: int, what: str) -> None:
        description = f"{self.title}: {what}"
        if self.task is None:
            self.task = self.progress.add_task(description, total=total, completed=done)
        else:
            self.progress.update(self.task, total=total, completed=done, description=description)


@contextmanager
def progress_reporter(
    title: str, *, stream: IO[str] | None = None, interval_s: float = 5.0
) -> Iterator[ProgressCallback]:
    """A progress callback for one long command, shown on ``stream`` (stderr)."""
    out = stream if stream is not None else sys.stderr
    if not out.isatty():
        yield PlainProgress(title, out, interval_s)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("elapsed,"),
        TimeRemainingColumn(),
        TextColumn("left"),
        console=Console(file=out),
        transient=False,
    )
    with progress:
        yield _RichProgress(title, progress)
