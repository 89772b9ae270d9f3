"""The search loop: predictors propose, real evaluations decide.

One round (after a random initial design):

1. refit the accuracy predictor on every real evaluation so far (this
   worker's and, with a shared study, every other worker's);
2. run the inner search over the predictors (:mod:`nas.inner`) for a pool of
   unmeasured candidates with predicted accuracy, latency and costs;
3. pick a diverse, predicted-feasible batch (:mod:`nas.acquisition`);
4. evaluate it for real: each evaluation is an Optuna trial (and, through
   ``on_evaluation``, a row in the caller's table).

It stops at ``n_evaluations`` real evaluations in the study, at the time
budget, when the space has nothing unmeasured left, after ``patience`` rounds
without improvement, or when no candidate is predicted feasible for
``infeasible_rounds`` rounds (then it says so and reports the closest
architectures). No loop in here waits for a condition: every round evaluates at
least one new architecture or ends the search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, Protocol

import numpy as np
import optuna

from nas.acquisition import (
    select_budget,
    select_closest,
    select_pareto,
    select_random,
)
from nas.candidates import CandidateSet, Featurizer
from nas.constraints import Constraints
from nas.inner import (
    EvolutionInner,
    ExhaustiveInner,
    InnerSearch,
    OptunaInner,
    Pool,
    space_size,
)
from nas.latency import BatchLatency, LatencyLike
from nas.pareto import pareto_front
from nas.records import Evaluation, Proposal
from nas.study import SearchStudy
from supernets.spaces import SearchSpace

__all__ = ["AccuracyModel", "SearchResult", "SearchSettings", "run_search"]

StopReason = Literal[
    "n_evaluations", "time_budget", "stopped", "converged", "exhausted", "infeasible"
]


class AccuracyModel(Protocol):
    """What the loop needs from an accuracy predictor (``GBDTAccuracyPredictor`` fits)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> Any: ...

    def predict_with_uncertainty(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def default_predictor(seed: int, *, bootstrap: bool = False) -> AccuracyModel:
    """The loop's accuracy predictor: a 5-member GBDT ensemble.

    ``bootstrap`` resamples each member's rows, so that the members' spread is
    an uncertainty worth trading against the mean; :func:`run_search` turns it
    on only when the acquisition uses that spread (``kappa`` slots). Otherwise
    resampling only blurs the mean: on the search benchmark (NB201, pixel3 and
    fpga latency) plain members reached within 0.2 points of the oracle in as
    few or fewer evaluations at every budget (fpga's median budget: 61.5
    against 80 over 20 seeds).
    """
    from predictors.accuracy import GBDTAccuracyPredictor

    return GBDTAccuracyPredictor(seed=seed, bootstrap=bootstrap, n_jobs=1)


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
        if self.pending_timeout_s is not None and not self.pending_timeout_s > 0:
            raise ValueError(f"pending_timeout_s must be > 0 or None, got {self.pending_timeout_s}")


@dataclass
class SearchResult:
    """Outcome of :func:`run_search`. Every accuracy in ``evaluations`` is real."""

    evaluations: list[Evaluation]
    devices: list[str]
    constraints: Constraints
    best_evaluation: Evaluation | None
    #: True if some real evaluation meets every constraint.
    feasible: bool
    #: When nothing is feasible: the real evaluations nearest to feasible.
    closest: list[Evaluation]
    stop_reason: StopReason
    message: str
    n_new: int
    study_name: str
    #: Predicted-best candidates not evaluated for real (all numbers predicted).
    proposals: list[Proposal] = field(default_factory=list)

    @property
    def best(self) -> Any | None:
        """Best architecture meeting every constraint (by real accuracy), or None."""
        return None if self.best_evaluation is None else self.best_evaluation.arch

    @property
    def history(self) -> list[tuple[Any, float, float]]:
        """``(arch, accuracy, latency_ms on the first device)`` in evaluation order."""
        dev = self.devices[0]
        return [(e.arch, e.accuracy, e.latency_ms[dev]) for e in self.evaluations]

    def pareto_front(self, device: str | None = None) -> list[Evaluation]:
        """Feasible accuracy-latency front on ``device`` (default: the first)."""
        return pareto_front(
            self.evaluations, device or self.devices[0], constraints=self.constraints
        )


def _quantile_scale(grid: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Share of ``grid`` (sorted latencies) at or below each latency, in (0, 1]."""
    return np.searchsorted(grid, latency, side="right") / max(len(grid), 1)


def _latency_models(
    latency: LatencyLike | Mapping[str, LatencyLike], space: SearchSpace[Any]
) -> dict[str, BatchLatency]:
    if isinstance(latency, Mapping):
        if not latency:
            raise ValueError("latency mapping is empty: give at least one device")
        return {str(d): BatchLatency(m, space, str(d)) for d, m in latency.items()}
    device = getattr(latency, "device", None)
    device = device if isinstance(device, str) else "latency"
    return {device: BatchLatency(latency, space, device)}


def _constraints(
    budget_ms: float | Mapping[str, float] | None,
    devices: Sequence[str],
    max_macs: float | None,
    max_params: float | None,
) -> Constraints:
    if budget_ms is None:
        per_device: dict[str, float] = {}
    elif isinstance(budget_ms, Mapping):
        per_device = {str(d): float(b) for d, b in budget_ms.items()}
    else:
        per_device = {devices[0]: float(budget_ms)}
    return Constraints(per_device, max_macs, max_params)


class _Search:
    """State of one run_search call (not reused across calls)."""

    def __init__(
        self,
        space: SearchSpace[Any],
        evaluate: Callable[[Any], float],
        featurizer: Featurizer,
        study: SearchStudy,
        mode: Literal["budget", "pareto"],
        settings: SearchSettings,
        predictor_factory: Callable[[int], AccuracyModel],
        on_evaluation: Callable[[Evaluation], None] | None,
        seed: int,
    ) -> None:
        self.space = space
        self.evaluate = evaluate
        self.featurizer = featurizer
        self.study = study
        self.mode = mode
        self.settings = settings
        self.predictor_factory = predictor_factory
        self.on_evaluation = on_evaluation
        self.seed = seed
        self.records: dict[int, Evaluation] = {}  # trial number -> record
        self.failed: set[str] = set()
        self.pending: set[str] = set()
        self.n_new = 0
        self.inner = self._make_inner()
        self.last_pool: Pool | None = None

    # -- setup ------------------------------------------------------------------
    def _make_inner(self) -> InnerSearch:
        s = self.settings
        kind = s.inner
        if kind == "auto":
            enumerable = hasattr(self.space, "all_archs")
            small = enumerable and space_size(self.space) <= s.max_enumerate
            kind = "exhaustive" if small else "evolution"
        if kind == "exhaustive":
            return ExhaustiveInner(self.featurizer)
        if kind == "evolution":
            return EvolutionInner(
                self.featurizer,
                population=s.inner_population,
                generations=s.inner_generations,
                kappa=s.max_kappa(self.mode),
                pareto=self.mode == "pareto",
            )
        return OptunaInner(
            self.featurizer,
            population=s.inner_population,
            generations=s.inner_generations,
            kappa=s.max_kappa(self.mode),
            pareto=self.mode == "pareto",
        )

    # -- study sync ---------------------------------------------------------------
    def sync(self) -> None:
        """Load every completed trial (ours and other workers') and the pending ones."""
        for trial in self.study.trials():
            if trial.number in self.records:
                continue
            record = self.study.record_of(trial)
            if record is not None:
                self.records[trial.number] = record
        self.failed = self.study.failed_hashes()
        self.pending = self.study.pending_hashes(self.settings.pending_timeout_s)

    def taken(self, arch_hash: str) -> bool:
        """Re-read the study just before starting an evaluation, so that a shared
        study rarely gets a second claim on an architecture; the claims that still
        collide are settled after the start (:meth:`SearchStudy.earlier_claim`)."""
        if self.study.is_shared:
            self.sync()
        return arch_hash in self.seen()

    @property
    def evaluations(self) -> list[Evaluation]:
        return [self.records[n] for n in sorted(self.records)]

    def seen(self) -> set[str]:
        return {r.arch_hash for r in self.records.values()} | self.failed | self.pending

    # -- one evaluation ---------------------------------------------------------------
    def run_one(
        self, cands: CandidateSet, i: int, source: str, pool: Pool | None, round_no: int
    ) -> Evaluation | None:
        """Evaluate candidate ``i`` for real; None if another worker's earlier trial
        claimed the same architecture (this trial is then withdrawn, unevaluated)."""
        arch = cands.archs[i]
        predicted: dict[str, Any] = {}
        if pool is not None:
            predicted = {
                "predicted_accuracy": float(pool.mean[i]),
                "predicted_std": float(pool.std[i]),
            }
        attrs = self._attrs(cands, i, source, predicted, round_no)
        trial = self.study.start(arch, attrs)
        actual = self.space.from_params(trial.params)
        if self.space.arch_hash(actual) != cands.hashes[i]:
            # ask() popped a trial someone enqueued with its own params: evaluate those.
            cands, i, arch, predicted = self.featurizer.featurize([actual]), 0, actual, {}
            attrs = self._attrs(cands, 0, "external", predicted, None)
            self.study.annotate(trial, **attrs)
        if self.study.is_shared:
            rival = self.study.earlier_claim(
                trial, attrs["arch_hash"], self.settings.pending_timeout_s
            )
            if rival is not None:
                self.study.withdraw(trial, duplicate_of=rival)
                self.pending.add(attrs["arch_hash"])
                return None
        start = time.perf_counter()
        try:
            accuracy = float(self.evaluate(arch))
            if not math.isfinite(accuracy):
                raise ValueError(f"evaluate() returned a non-finite accuracy {accuracy!r}")
        except BaseException as exc:
            self.study.fail(trial, exc)
            raise
        duration = time.perf_counter() - start
        latency = {d: float(cands.latency[i, j]) for j, d in enumerate(self.featurizer.devices)}
        violations = self._violations(cands, i)
        frozen = self.study.finish(trial, accuracy, latency, violations, duration)
        record = Evaluation(
            arch=arch,
            arch_hash=cands.hashes[i],
            accuracy=accuracy,
            latency_ms=latency,
            latency_measured=attrs["latency_measured"],
            macs=attrs["macs"],
            params=attrs["params"],
            violations=violations,
            trial_number=frozen.number,
            study_name=self.study.name,
            source=attrs["source"],
            round_no=attrs["round"],
            duration_s=duration,
            **predicted,
        )
        self.records[frozen.number] = record
        self.n_new += 1
        if self.on_evaluation is not None:
            self.on_evaluation(record)
        return record

    def _attrs(
        self,
        cands: CandidateSet,
        i: int,
        source: str,
        predicted: Mapping[str, Any],
        round_no: int | None,
    ) -> dict[str, Any]:
        arch = cands.archs[i]
        return {
            "arch": arch.to_dict(),
            "arch_str": str(arch),
            "arch_hash": cands.hashes[i],
            "macs": None if cands.macs is None else float(cands.macs[i]),
            "params": None if cands.params is None else float(cands.params[i]),
            "latency_measured": {d: m.measured for d, m in self.featurizer.latency.items()},
            "source": source,
            "round": round_no,
            **predicted,
        }

    def _violations(self, cands: CandidateSet, i: int) -> dict[str, float]:
        lat = {d: cands.latency[i, j] for j, d in enumerate(self.featurizer.devices)}
        macs = None if cands.macs is None else cands.macs[i]
        params = None if cands.params is None else cands.params[i]
        parts = self.featurizer.constraints.violations(lat, macs, params)
        return {name: float(v) for name, v in parts.items()}

    # -- proposing ----------------------------------------------------------------------
    def initial_batch(
        self, k: int, rng: np.random.Generator
    ) -> tuple[CandidateSet, list[tuple[int, str]]]:
        """Random unmeasured architectures (predicted-feasible ones only when
        ``initial_design`` is "feasible"), labelled "initial"; none if no sampled
        one is predicted feasible (a constraint nothing may meet: no design is
        spent on it)."""
        cands = self.inner.sample(rng, max(50 * k, 1000))
        seen = self.seen()
        fresh = [i for i, h in enumerate(cands.hashes) if h not in seen]
        cands = cands.take(fresh)
        feasible = np.flatnonzero(cands.feasible)
        if feasible.size == 0:
            return cands, []  # nothing predicted feasible: the caller measures the closest
        if self.settings.initial_design == "space":
            chosen = list(range(min(k, len(cands))))
        else:
            chosen = [int(i) for i in feasible[:k]]
        return cands, [(i, "initial") for i in chosen]

    def fit_predictor(self, round_no: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        records = self.evaluations
        X = self.space.encode_many([r.arch for r in records])
        y = np.array([r.accuracy for r in records])
        model = self.predictor_factory(self.seed * 100_003 + round_no)
        model.fit(X, y)
        return model.predict_with_uncertainty

    def predicted_batch(
        self, k: int, round_no: int, rng: np.random.Generator
    ) -> tuple[Pool, list[tuple[int, str]]]:
        """The next batch from the predictors: ``(pool index, arm that chose it)``."""
        predict = self.fit_predictor(round_no)
        records = self.evaluations
        feasible_records = [r for r in records if r.feasible]
        seeds = [r.arch for r in sorted(feasible_records or records, key=lambda r: -r.accuracy)]
        pool = self.inner.propose(predict, self.seen(), seeds, rng)
        self.last_pool = pool
        s = self.settings
        if self.mode == "budget":
            best = max(feasible_records, key=lambda r: r.accuracy, default=None)
            picks = select_budget(
                pool,
                self.budget_slots(k),
                kappa=s.kappa,
                incumbent=None if best is None else self.space.encode(best.arch),
                min_distance=s.min_distance,
                rng=rng,
            )
        else:
            n_random = min(s.pareto_n_random, k - 1)
            fronts, refs, scaled = self._fronts_and_refs(pool)
            front = select_pareto(
                pool,
                k - n_random,
                fronts,
                refs,
                kappa=s.pareto_kappa,
                min_distance=s.min_distance,
                latency=scaled,
            )
            extra = select_random(pool, n_random, front, rng) if front else []
            picks = [(i, "front") for i in front] + [(i, "random") for i in sorted(extra)]
        return pool, picks

    def budget_slots(self, k: int) -> dict[str, int]:
        """How many of ``k`` slots each arm gets (budget mode); at least one slot
        is left to the predictor's own picks."""
        s = self.settings
        n_random = min(s.n_random, k - 1)
        n_explore = min(s.n_explore, k - n_random)
        n_local = min(s.n_local, k - n_random - n_explore)
        return {
            "exploit": k - n_random - n_explore - n_local,
            "local": n_local,
            "explore": n_explore,
            "random": n_random,
        }

    def _fronts_and_refs(
        self, pool: Pool
    ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[float, float]], np.ndarray]:
        """Per device: the measured feasible front and the reference point of its
        hypervolume, and the pool's latencies on the scale the front is measured."""
        records = [r for r in self.evaluations if r.feasible]
        accs = np.array([r.accuracy for r in self.evaluations])
        budgets = self.featurizer.constraints.latency_ms
        s = self.settings
        bounded = all(dev in budgets for dev in self.featurizer.devices)
        quantile = s.ref_accuracy_quantile if bounded else s.ref_accuracy_quantile_unbounded
        ref_acc = float(np.quantile(accs, quantile))
        front_acc = np.array([r.accuracy for r in records])
        fronts, refs = [], []
        scaled = np.array(pool.candidates.latency, dtype=np.float64, copy=True)
        for j, dev in enumerate(self.featurizer.devices):
            measured = np.array([r.latency_ms[dev] for r in records])
            ref_lat = budgets.get(dev)
            if ref_lat is None:
                # No bound: measure the front on the latency *quantile* scale (a
                # monotone map, so dominance is unchanged), so every stretch of the
                # latency range weighs alike, not the slow tail most.
                grid = np.sort(np.concatenate([measured, pool.candidates.latency[:, j]]))
                scaled[:, j] = _quantile_scale(grid, pool.candidates.latency[:, j])
                measured = _quantile_scale(grid, measured)
                ref_lat = 1.0 + 1e-9
            fronts.append((measured, front_acc))
            refs.append((float(ref_lat), ref_acc))
        return fronts, refs, scaled

    def proposals(self) -> list[Proposal]:
        pool = self.last_pool
        if pool is None or len(pool) == 0:
            return []
        seen = self.seen()
        order = np.argsort(-pool.mean, kind="stable")
        out: list[Proposal] = []
        cands = pool.candidates
        for i in order:
            if len(out) >= self.settings.n_proposals:
                break
            if cands.hashes[i] in seen or not cands.feasible[i]:
                continue
            out.append(
                Proposal(
                    arch=cands.archs[i],
                    arch_hash=cands.hashes[i],
                    predicted_accuracy=float(pool.mean[i]),
                    predicted_std=float(pool.std[i]),
                    latency_ms={
                        d: float(cands.latency[i, j]) for j, d in enumerate(self.featurizer.devices)
                    },
                    violations=self._violations(cands, int(i)),
                )
            )
        return out

    def score(self) -> tuple[float, ...]:
        """Progress measure for ``patience``: best feasible accuracy (budget mode) or
        the set of feasible front members (Pareto mode)."""
        feasible = [r for r in self.records.values() if r.feasible]
        if self.mode == "budget":
            return (max((r.accuracy for r in feasible), default=-math.inf),)
        front = set()
        for dev in self.featurizer.devices:
            front |= {r.trial_number for r in pareto_front(feasible, dev)}
        return tuple(sorted(n for n in front if n is not None))


def run_search(
    space: SearchSpace[Any],
    evaluate: Callable[[Any], float],
    latency: LatencyLike | Mapping[str, LatencyLike],
    budget_ms: float | Mapping[str, float] | None = None,
    n_evaluations: int = 100,
    seed: int = 0,
    *,
    max_macs: float | None = None,
    max_params: float | None = None,
    mode: Literal["auto", "budget", "pareto"] = "auto",
    time_budget_s: float | None = None,
    settings: SearchSettings | None = None,
    predictor_factory: Callable[[int], AccuracyModel] | None = None,
    storage: str | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    on_evaluation: Callable[[Evaluation], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Predictor-guided, hardware-aware search for accurate architectures under budgets.

    Parameters
    ----------
    space:
        A registered search space (``supernets.get_space(name)``).
    evaluate:
        ``arch -> accuracy``: one *real* evaluation (the expensive call).
    latency:
        ``arch -> ms`` for one device, or ``{device: model}`` for several; a
        model may offer batch prediction (see :mod:`nas.latency`). With one
        model the device is named by its ``device`` attribute, else "latency".
    budget_ms:
        Latency budget on the first device, or ``{device: ms}``; None for none.
    n_evaluations:
        Total real evaluations wanted in the study, *including* those already
        stored: resuming with the same number finishes an interrupted search,
        a larger number extends it. Other workers' evaluations count too.
    mode:
        "budget" maximises accuracy subject to the constraints; "pareto"
        explores the accuracy-latency front of every device (constraints still
        apply); "auto" is "budget" when a latency budget is given.
    time_budget_s:
        No new evaluation starts after this many seconds.
    storage, study_name:
        Optuna storage (RDB URL such as ``sqlite:///hwnas.db`` or a storage
        object) and study name. An existing study is resumed: its trials are
        loaded, never re-evaluated. Several workers may share one study.
    on_evaluation:
        Called with each new :class:`Evaluation` right after its trial is
        stored (the service writes its trial-table row there). An exception
        raised there propagates (the trial itself is already complete).
    should_stop:
        Polled before every real evaluation; returning True ends the search
        cleanly with ``stop_reason="stopped"`` (job cancellation, a lease lost).
    """
    if n_evaluations < 0:
        raise ValueError(f"n_evaluations must be >= 0, got {n_evaluations}")
    if time_budget_s is not None and time_budget_s < 0:
        raise ValueError(f"time_budget_s must be >= 0, got {time_budget_s}")
    settings = settings or SearchSettings()
    models = _latency_models(latency, space)
    devices = list(models)
    constraints = _constraints(budget_ms, devices, max_macs, max_params)
    if mode == "auto":
        mode = "budget" if constraints.latency_ms else "pareto"
    if mode not in ("budget", "pareto"):
        raise ValueError(f"mode must be 'auto', 'budget' or 'pareto', got {mode!r}")
    deadline = None if time_budget_s is None else time.monotonic() + time_budget_s

    featurizer = Featurizer(space, models, constraints)
    study = SearchStudy(space, devices, storage=storage, study_name=study_name)
    search = _Search(
        space,
        evaluate,
        featurizer,
        study,
        mode,
        settings,
        predictor_factory or partial(default_predictor, bootstrap=settings.max_kappa(mode) > 0),
        on_evaluation,
        seed,
    )
    search.sync()
    # A resumed search must not replay the first run's random choices.
    rng = np.random.default_rng([seed, len(study.trials())])

    n_initial = min(settings.n_initial, max(5, n_evaluations // 3))
    stop: StopReason = "n_evaluations"
    stalled = infeasible = 0
    last_score = search.score()
    # Every round evaluates at least one new architecture or ends the search, so
    # this bound is never the reason to stop; it makes "cannot hang" evident.
    max_rounds = n_evaluations + settings.infeasible_rounds + 2
    for round_no in range(max_rounds):
        search.sync()
        remaining = n_evaluations - len(search.records) - len(search.pending)
        if remaining <= 0:
            stop = "n_evaluations"
            break
        if deadline is not None and time.monotonic() >= deadline:
            stop = "time_budget"
            break
        if should_stop is not None and should_stop():
            stop = "stopped"
            break
        k = min(settings.batch_size, remaining)
        pool: Pool | None = None
        if len(search.records) < n_initial:
            k = min(n_initial - len(search.records), remaining)
            cands, picks = search.initial_batch(k, rng)
        else:
            pool, picks = search.predicted_batch(k, round_no, rng)
            cands = pool.candidates
        if not picks:
            if len(cands) == 0:
                stop = "exhausted"
                break
            infeasible += 1
            if infeasible > settings.infeasible_rounds:
                stop = "infeasible"
                break
            # Nothing predicted feasible: measure the closest ones, so the answer
            # can show real numbers for them.
            picks = [(i, "closest") for i in select_closest(cands.violation, k)]
        else:
            infeasible = 0
        for i, source in picks:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if should_stop is not None and should_stop():
                break
            if search.taken(cands.hashes[i]):
                continue  # another worker started it since this round's sync
            if len(search.records) + len(search.pending) >= n_evaluations:
                break  # other workers filled the study meanwhile
            search.run_one(cands, i, source, pool, round_no)
        score = search.score()
        stalled = 0 if score != last_score else stalled + 1
        last_score = score
        if settings.patience is not None and stalled >= settings.patience:
            stop = "converged"
            break

    return _result(search, constraints, devices, stop)


def _result(
    search: _Search, constraints: Constraints, devices: list[str], stop: StopReason
) -> SearchResult:
    evaluations = search.evaluations
    feasible = [e for e in evaluations if e.feasible]
    best = max(feasible, key=lambda e: e.accuracy) if feasible else None
    closest: list[Evaluation] = []
    message = ""
    if best is None:
        closest = sorted(evaluations, key=lambda e: e.violation)[:3]
        if evaluations:
            message = (
                f"no evaluated architecture meets {constraints.describe()}; "
                f"the {len(closest)} closest are reported, marked infeasible"
            )
        else:
            message = "no architecture was evaluated"
    if stop == "infeasible":
        message = (
            f"no architecture of {search.space.name!r} is predicted to meet "
            f"{constraints.describe()}; stopped. " + message
        )
    return SearchResult(
        evaluations=evaluations,
        devices=devices,
        constraints=constraints,
        best_evaluation=best,
        feasible=best is not None,
        closest=closest,
        stop_reason=stop,
        message=message,
        n_new=search.n_new,
        study_name=search.study.name,
        proposals=search.proposals(),
    )
