"""Progress of long library calls, reported to whoever called them.

A long call (exporting a subnet, exporting reference models, timing many
networks) takes an optional ``on_progress`` callback and calls it as
``on_progress(done, total, what)``: ``done`` of ``total`` units are finished
and ``what`` says, for people, what runs now (or what finished last, once
``done == total``). It is called once before the first unit (``done == 0``)
and after every unit, so that a caller can draw a bar, log lines or store a
fraction without knowing what the units are. The libraries never print.

Defined here, in the package every other one depends on, so that the
libraries and the service share one shape.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["ProgressCallback", "ignore_progress", "within"]

#: ``(done, total, what)``; see the module docstring.
ProgressCallback = Callable[[int, int, str], None]


def ignore_progress(done: int, total: int, what: str) -> None:
    """The default callback: nobody is watching."""


def within(outer: ProgressCallback, before: int, after: int = 0) -> ProgressCallback:
    """A callback for an inner call that runs after ``before`` units of the
    outer work and before ``after`` more: the inner call's units are counted
    into the outer total, so one bar covers both."""

    def inner(done: int, total: int, what: str) -> None:
        outer(before + done, before + total + after, what)

    return inner
