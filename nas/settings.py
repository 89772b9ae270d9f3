"""Settings of the search loop, and what it needs from an accuracy predictor."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from nas.constraints import (
    DEFAULT_FEASIBILITY_CONFIDENCE,
    DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE,
    confidence_z,
    exploring_z,
)
from nas.correction import (
    DEFAULT_CORRECTION_COMMON_SHARE,
    DEFAULT_CORRECTION_LENGTH_SCALE,
    LatencyCorrection,
)

if TYPE_CHECKING:
    from predictors.accuracy import SumFeatures

__all__ = ["AccuracyModel", "SearchSettings", "StopReason", "default_predictor"]

#: Why a search ended (one value per rule of :class:`nas.stopping.StopRules`).
StopReason = Literal[
    "n_evaluations", "time_budget", "stopped", "converged", "exhausted", "infeasible"
]


class AccuracyModel(Protocol):
    """What the loop needs from an accuracy predictor (``GBDTAccuracyPredictor`` fits)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> object: ...

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def default_predictor(
    seed: int, *, bootstrap: bool = False, features: SumFeatures | Literal["auto"] = "auto"
) -> AccuracyModel:
    """The loop's accuracy predictor: a 5-member GBDT ensemble, with the
    space's derived ``features`` (:func:`predictors.accuracy.predictor_features`).

    ``bootstrap`` resamples each member's rows, so that the members' spread is
    an uncertainty worth trading against the mean; :func:`run_search` turns it
    on only when the acquisition uses that spread (``kappa`` slots). Otherwise
    resampling only blurs the mean: on the search benchmark (NB201, pixel3 and
    fpga latency) plain members reached within 0.2 points of the oracle in as
    few or fewer evaluations at every budget (fpga's median budget: 61.5
    against 80 over 20 seeds).
    """
    from predictors.accuracy import GBDTAccuracyPredictor

    return GBDTAccuracyPredictor(seed=seed, bootstrap=bootstrap, features=features, n_jobs=1)


@dataclass(frozen=True)
class SearchSettings:
    """Knobs of the loop (defaults tuned on ``benchmarks/search_efficiency.py``)."""

    #: Real evaluations per round (the predictor is refitted between rounds).
    batch_size: int = 10
    #: Random architectures evaluated before the first refit; a short search
    #: spends at most a third of its ``n_evaluations`` on them (never fewer than 5).
    n_initial: int = 20
    #: Where the initial design is drawn: "space" (uniformly, feasible or not) or
    #: "feasible" (predicted-feasible only). A predictor trained only inside the
    #: constraints learns little about what makes a cell accurate: on
    #: NAS-Bench-201 with a latency budget, one fitted on 50 uniform draws ranks a
    #: cell within 0.2 points of the oracle among its top 50 in 65-100% of seeds,
    #: one fitted on 50 feasible draws in 10-80% (benchmarks/initial_design.py).
    initial_design: Literal["space", "feasible"] = "space"
    #: Optimism of the "explore" slots: predicted mean + kappa * ensemble std. A
    #: tuple makes a portfolio: the explore slots of a batch cycle through it.
    kappa: float | tuple[float, ...] = 1.0
    #: Budget mode: batch slots (:func:`nas.acquisition.select_budget`) for the
    #: highest optimistic score, for the best-predicted neighbours of the
    #: incumbent, and for uniformly random predicted-feasible candidates. The rest
    #: of the batch goes to the best predicted means ("exploit"), kept apart by
    #: ``min_distance``. All-exploit is the default because, after a space-filling
    #: initial design, every exploration slot tried cost evaluations on the
    #: benchmark devices: the spread of a batch of diverse best guesses explores
    #: enough, and it is where the accurate cells are.
    n_explore: int = 0
    n_local: int = 0
    n_random: int = 0
    #: Pareto mode: batch slots for uniformly random predicted-feasible candidates
    #: (exploration that does not trust the ensemble's spread; here it helped).
    pareto_n_random: int = 2
    #: Minimum number of changed choices between two architectures of one batch.
    min_distance: float = 2.0
    #: Inner search (:mod:`nas.inner`). "auto": "exhaustive" for spaces of at most
    #: ``max_enumerate`` architectures, else "evolution" (vectorised NSGA-II);
    #: "optuna" runs Optuna's NSGAIISampler through ask/tell (slower per candidate).
    inner: Literal["auto", "exhaustive", "evolution", "optuna"] = "auto"
    max_enumerate: int = 50_000
    inner_population: int = 100
    inner_generations: int = 20
    #: Stop after this many rounds without improvement (None: never on this ground).
    patience: int | None = None
    #: Stop after this many rounds in which no candidate was predicted feasible.
    infeasible_rounds: int = 2
    #: RUNNING trials older than this are presumed dead and no longer block their arch.
    pending_timeout_s: float | None = 6 * 3600.0
    #: Pareto mode's optimism. Zero: an optimistic accuracy inflates the hypervolume
    #: gain of exactly the candidates the predictor knows least, which on
    #: NAS-Bench-201 cost a third of the hypervolume at 100 evaluations.
    pareto_kappa: float | tuple[float, ...] = 0.0
    #: Pareto mode under latency bounds: reference accuracy = this quantile of
    #: measured accuracies (inside a bound the front of interest is its accurate
    #: end, not cheap-and-poor architectures).
    ref_accuracy_quantile: float = 0.75
    #: Pareto mode on a device without a bound: the same, lower, because the
    #: front then spans every latency, and its fast end is necessarily less
    #: accurate; with 0.75 the loop spent nearly all its evaluations on the slow
    #: end (NB201 on fpga: a third of the hypervolume below the median latency).
    ref_accuracy_quantile_unbounded: float = 0.5
    #: How many predicted-best unmeasured candidates to report in ``proposals``.
    n_proposals: int = 10
    #: Chance constraint on a latency model that gives a std per prediction
    #: (:class:`nas.latency.UncertainLatencyModel`): an architecture counts as
    #: feasible only when P(latency <= budget) >= this, on the normal one-sided
    #: bound ``mean + z * std``. With ``mean`` alone the loop aims right at the
    #: predicted boundary, where a few-shot model's errors sit: with a meta-test
    #: device's 10-measurement model, 8 of 10 answers were over the true budget.
    #: Models without a std (tables, plain callables) are unaffected.
    feasibility_confidence: float = DEFAULT_FEASIBILITY_CONFIDENCE
    #: The chance constraint's confidence while the search explores and picks
    #: what to measure when ``measure_latency`` verifies the answer (None: the
    #: same as ``feasibility_confidence``). The answer then rests on measured
    #: latencies, not on the bound, so the bound only steers: at 0.9 it kept
    #: the loop away from the accurate architectures just under the budget.
    #: Chosen on HELP's train devices (``benchmarks/search_realistic.py --role
    #: tune``: realistic mode, 10 measurements, 100 evaluations). With the
    #: earlier measurement rule ("best"): median regret 0.29 at 0.9, 0.24 at
    #: 0.75, 0.16 at 0.6, 0.11 at 0.5 (50 tasks), worse again below 0.5, where
    #: that rule spent measurements on candidates that did not fit. With the
    #: expected-gain rule, which weighs each candidate's chance to fit, a bound
    #: a little past the prediction pays: 0.3 (README, "Search loop").
    verified_feasibility_confidence: float | None = DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE
    #: Budget mode with ``measure_latency``: how the final verification picks
    #: the next architecture to measure (:mod:`nas.verify`). "gain": the
    #: evaluated one of largest expected gain over the best measured answer,
    #: ``(accuracy - its accuracy) * P(fits)`` under the corrected model,
    #: until none is expected to help; "best": the best under the exploring
    #: bound, until the best is measured (the earlier rule: after one near-
    #: identical architecture just over the budget, it measured the next).
    measurement_choice: Literal["gain", "best"] = "gain"
    #: The online latency correction (:class:`nas.correction.LatencyCorrection`):
    #: the share of a model's error common to all architectures of a device, and
    #: the distance (differing choices) over which the rest stays shared. Chosen
    #: on HELP's train devices with ``benchmarks/measurement_rules.py``.
    correction_common_share: float = DEFAULT_CORRECTION_COMMON_SHARE
    correction_length_scale: float = DEFAULT_CORRECTION_LENGTH_SCALE

    def confidence(self, verifying: bool) -> float:
        """The chance constraint's confidence for exploring: with measured
        verification (``verifying``) ``verified_feasibility_confidence``,
        else ``feasibility_confidence``."""
        if verifying and self.verified_feasibility_confidence is not None:
            return self.verified_feasibility_confidence
        return self.feasibility_confidence

    def correction(self) -> LatencyCorrection:
        """The unfitted online latency correction these settings describe."""
        try:
            return LatencyCorrection(self.correction_common_share, self.correction_length_scale)
        except ValueError as exc:
            raise ValueError(f"correction_{exc}") from None

    def max_kappa(self, mode: Literal["budget", "pareto"]) -> float:
        """The boldest optimism of ``mode`` (what the inner searches score with);
        zero in budget mode without explore slots, where every pick is by mean."""
        if mode == "budget" and self.n_explore == 0:
            return 0.0
        kappa = self.kappa if mode == "budget" else self.pareto_kappa
        return max(kappa) if isinstance(kappa, tuple) else float(kappa)

    def __post_init__(self) -> None:
        for name in ("kappa", "pareto_kappa"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
            if isinstance(value, tuple | list) and not value:
                raise ValueError(f"{name} must be a number or a non-empty tuple")
        if self.n_initial < 5:
            raise ValueError(f"n_initial must be >= 5 (predictor minimum), got {self.n_initial}")
        if self.inner not in ("auto", "exhaustive", "evolution", "optuna"):
            raise ValueError(
                f"inner must be 'auto', 'exhaustive', 'evolution' or 'optuna', got {self.inner!r}"
            )
        if self.initial_design not in ("space", "feasible"):
            raise ValueError(
                f"initial_design must be 'space' or 'feasible', got {self.initial_design!r}"
            )
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        # Checked here, not when the first inner search starts: by then the
        # initial design has already cost real evaluations.
        minimums = {
            "batch_size": 1,
            "infeasible_rounds": 1,
            "n_explore": 0,
            "n_local": 0,
            "n_random": 0,
            "pareto_n_random": 0,
            "n_proposals": 0,
            "min_distance": 0,
            "inner_population": 4,
            "inner_generations": 1,
            "max_enumerate": 1,
        }
        for name, minimum in minimums.items():
            value = getattr(self, name)
            if not math.isfinite(value) or value < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {value}")
        for name in ("kappa", "pareto_kappa"):
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            if not all(math.isfinite(v) and v >= 0 for v in values):
                raise ValueError(f"{name} must be finite and >= 0, got {value}")
        for name in ("ref_accuracy_quantile", "ref_accuracy_quantile_unbounded"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        confidence_z(self.feasibility_confidence)  # a ValueError naming the field
        if self.verified_feasibility_confidence is not None:
            exploring_z(self.verified_feasibility_confidence)  # a ValueError naming the field
        if self.measurement_choice not in ("gain", "best"):
            raise ValueError(
                f"measurement_choice must be 'gain' or 'best', got {self.measurement_choice!r}"
            )
        self.correction()  # a ValueError naming the field
        if self.pending_timeout_s is not None and not self.pending_timeout_s > 0:
            raise ValueError(f"pending_timeout_s must be > 0 or None, got {self.pending_timeout_s}")
