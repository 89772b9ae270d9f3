"""The search loop: predictors propose, real evaluations decide.

One round (after a random initial design):

1. refit the accuracy predictor on every real evaluation so far (this
   worker's and, with a shared study, every other worker's);
2. run the inner search over the predictors (:mod:`nas.inner`) for a pool of
   unmeasured candidates with predicted accuracy, latency and costs;
3. pick a diverse, predicted-feasible batch (:mod:`nas.acquisition`);
4. evaluate it for real: each evaluation is an Optuna trial (and, through
   ``on_evaluation``, a row in the caller's table).

The state and the steps are a :class:`nas.search.Search`; when to stop is
:mod:`nas.stopping`; the answers are :mod:`nas.pareto`'s. This module is the
driver that puts them in order, Optuna-style (a study object, a short loop).
No loop in here waits for a condition: every round evaluates at least one new
architecture or ends the search.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from nas.candidates import FeatureCache
from nas.constraints import Constraints
from nas.latency import LatencyLike, latency_models
from nas.records import Evaluation
from nas.result import SearchResult
from nas.search import Search
from nas.settings import AccuracyModel, SearchSettings, StopReason, default_predictor
from nas.stopping import StopRules
from nas.verify import LatencyMeasure

if TYPE_CHECKING:
    import optuna

    from supernets.spaces import SearchSpace

# SearchResult, SearchSettings, AccuracyModel and default_predictor moved to
# their own modules; they stay importable from here (benchmarks, old callers).
__all__ = [
    "AccuracyModel",
    "SearchResult",
    "SearchSettings",
    "default_predictor",
    "drive",
    "run_search",
]


def run_search(
    space: SearchSpace[Any],
    evaluate: Callable[[Any], float],
    latency: LatencyLike | Mapping[str, LatencyLike],
    budget_ms: float | Mapping[str, float] | None = None,
    n_evaluations: int = 100,
    seed: int = 0,
    *,
    constraints: Constraints | None = None,
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
    measure_latency: LatencyMeasure | Mapping[str, LatencyMeasure] | None = None,
    max_latency_measurements: int | None = None,
    exclusive_study: bool = False,
    feature_cache: FeatureCache | None = None,
    verify_later: bool = False,
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
    constraints:
        All the bounds as one :class:`Constraints` value, instead of
        ``budget_ms`` / ``max_macs`` / ``max_params`` (giving both is an error).
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
    measure_latency, max_latency_measurements:
        Verification on the device (:mod:`nas.verify`): a callable ``arch ->
        ms`` measuring the true latency on the first device, or ``{device:
        callable}`` (each such device needs a budget), and how many distinct
        architectures may be measured in the whole study (default 10; a
        measurement that raises counts and is recorded with its error). The
        measurements correct the device model during the search, and
        ``best`` is then an architecture whose *measured* latency is within
        budget (None if every measured one is over: ``closest`` lists them
        with their measured latencies). Without a callable, or with a cap of
        0, nothing is measured and ``best`` is chosen by the chance
        constraint (``SearchSettings.feasibility_confidence``), its latency
        labelled predicted (``SearchResult.best_latency_measured``). A cap
        without a callable, or a negative cap, is a ``ValueError``.
    exclusive_study:
        True when nobody else adds trials to the study while this search runs
        (a job queue that hands a study to one worker at a time): the re-reads
        of the study before and after each start, which keep the workers of a
        shared study from evaluating one architecture twice, are skipped.
    feature_cache:
        A :class:`nas.candidates.FeatureCache` kept across searches (a worker
        process running one job after another): architectures featurised by
        an earlier search on the same space and latency models are reused.
    verify_later:
        True when the answer's latency will be measured after the search, on a
        device this process cannot reach (the service's remote devices): the
        search explores at ``settings.verified_feasibility_confidence`` as one
        with ``measure_latency`` does, while its answer, still predicted,
        keeps the chance constraint at ``feasibility_confidence``.
    """
    settings = settings or SearchSettings()
    stop_rules = StopRules(
        n_evaluations, time_budget_s, settings.patience, settings.infeasible_rounds, should_stop
    )
    models = latency_models(latency, space)
    loose = (budget_ms, max_macs, max_params)
    if constraints is None:
        constraints = Constraints.of(budget_ms, next(iter(models)), max_macs, max_params)
    elif any(v is not None for v in loose):
        raise ValueError("give either constraints= or budget_ms / max_macs / max_params, not both")
    search = Search(
        space,
        evaluate,
        models,
        constraints,
        mode=mode,
        settings=settings,
        predictor_factory=predictor_factory,
        storage=storage,
        study_name=study_name,
        on_evaluation=on_evaluation,
        seed=seed,
        measure_latency=measure_latency,
        max_latency_measurements=max_latency_measurements,
        exclusive_study=exclusive_study,
        feature_cache=feature_cache,
        verify_later=verify_later,
    )
    return drive(search, stop_rules)


def drive(search: Search, rules: StopRules) -> SearchResult:
    """Run ``search`` round after round until a rule of ``rules`` stops it."""
    search.sync()
    rng = search.rng()
    n_initial = min(search.settings.n_initial, max(5, rules.n_evaluations // 3))
    stopper = rules.start(search.score())
    stop: StopReason = "n_evaluations"
    for round_no in range(rules.max_rounds):
        search.sync()
        reason = stopper.before_round(search.n_done, search.n_in_flight)
        if reason is not None:
            stop = reason
            break
        remaining = stopper.remaining(search.n_done, search.n_in_flight)
        batch = search.propose(remaining, n_initial, round_no, rng)
        if not batch.picks:
            reason = "exhausted" if len(batch.candidates) == 0 else stopper.nothing_feasible()
            if reason is not None:
                stop = reason
                break
            batch = batch.closest()
        else:
            stopper.something_feasible()
        for i, source in batch.picks:
            if stopper.interrupted() is not None:
                break
            if search.taken(batch.candidates.hashes[i]):
                continue  # another worker started it since this round's sync
            if stopper.remaining(search.n_done, search.n_in_flight) <= 0:
                break  # other workers filled the study meanwhile
            search.run_one(batch.candidates, i, source, batch.pool, round_no)
        search.refine()
        reason = stopper.after_round(search.score())
        if reason is not None:
            stop = reason
            break
    # The final verification runs after a spent time budget too (it is what makes
    # the answer hold), but not after a cancellation: that answers with what it has.
    if stop != "stopped":
        search.verify()
    return search.result(stop)
