"""When a search stops: every rule in one place.

The rules, in the order they are checked:

* before a round: ``n_evaluations`` (the study holds that many real
  evaluations, counting other workers' and those in flight), ``time_budget``
  (no evaluation starts after ``time_budget_s``), ``stopped`` (the caller's
  ``should_stop()`` said so);
* before each real evaluation of a batch: the time budget and ``should_stop``
  again (the batch is cut short; the next round's check names the reason),
  and the evaluation target (other workers may have filled the study);
* when a round has nothing to propose: ``exhausted`` (nothing unmeasured left)
  or, after more than ``infeasible_rounds`` rounds in a row in which nothing
  was predicted feasible, ``infeasible``;
* after a round: ``converged``, after ``patience`` rounds without progress.

No rule waits for a condition: every round evaluates at least one new
architecture or ends the search, and :attr:`StopRules.max_rounds` bounds the
rounds so that "cannot hang" is evident.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from nas.settings import StopReason

__all__ = ["StopRules", "Stopper"]


@dataclass(frozen=True)
class StopRules:
    """The stop rules of one search (validated; see the module docstring)."""

    n_evaluations: int
    time_budget_s: float | None = None
    patience: int | None = None
    infeasible_rounds: int = 2
    should_stop: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        if self.n_evaluations < 0:
            raise ValueError(f"n_evaluations must be >= 0, got {self.n_evaluations}")
        if self.time_budget_s is not None and not self.time_budget_s >= 0:
            raise ValueError(f"time_budget_s must be >= 0, got {self.time_budget_s}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.infeasible_rounds < 1:
            raise ValueError(f"infeasible_rounds must be >= 1, got {self.infeasible_rounds}")

    @property
    def max_rounds(self) -> int:
        """A bound on rounds that is never the reason to stop (each round evaluates
        at least one architecture or ends the search)."""
        return self.n_evaluations + self.infeasible_rounds + 2

    def start(self, score: Hashable) -> Stopper:
        """The running state of these rules, from now (the time budget starts here)."""
        return Stopper(self, score)


class Stopper:
    """The running state of :class:`StopRules` during one search."""

    def __init__(self, rules: StopRules, score: Hashable) -> None:
        self.rules = rules
        self.deadline = (
            None if rules.time_budget_s is None else time.monotonic() + rules.time_budget_s
        )
        self.last_score = score
        self.stalled = 0
        self.infeasible = 0

    def remaining(self, n_done: int, n_in_flight: int) -> int:
        """Real evaluations still to start."""
        return self.rules.n_evaluations - n_done - n_in_flight

    def interrupted(self) -> StopReason | None:
        """The time budget is spent or the caller asked to stop."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "time_budget"
        if self.rules.should_stop is not None and self.rules.should_stop():
            return "stopped"
        return None

    def before_round(self, n_done: int, n_in_flight: int) -> StopReason | None:
        if self.remaining(n_done, n_in_flight) <= 0:
            return "n_evaluations"
        return self.interrupted()

    def nothing_feasible(self) -> StopReason | None:
        """A round in which nothing was predicted feasible."""
        self.infeasible += 1
        return "infeasible" if self.infeasible > self.rules.infeasible_rounds else None

    def something_feasible(self) -> None:
        self.infeasible = 0

    def after_round(self, score: Hashable) -> StopReason | None:
        """``score``: the progress measure (changes when the search improved)."""
        self.stalled = 0 if score != self.last_score else self.stalled + 1
        self.last_score = score
        patience = self.rules.patience
        if patience is not None and self.stalled >= patience:
            return "converged"
        return None
