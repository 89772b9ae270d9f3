"""The state of one search and its steps: what :func:`nas.run_search` drives.

A :class:`Search` holds everything a search knows: its Optuna study (the real
evaluations, this worker's and others'), the cheap per-architecture features
(:class:`nas.candidates.Featurizer`), the inner search over the predictors, and
the hooks. Its steps are what one round does (:mod:`nas.loop` has the order):
:meth:`Search.sync` with the study, :meth:`Search.propose` a batch,
:meth:`Search.run_one` real evaluation per pick, and at the end
:meth:`Search.result`, whose answers come from :mod:`nas.pareto`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from nas.acquisition import select_budget, select_closest, select_pareto, select_random
from nas.candidates import CandidateSet, FeatureCache, Featurizer
from nas.constraints import Constraints, confidence_z
from nas.inner import EvolutionInner, ExhaustiveInner, InnerSearch, OptunaInner, Pool, space_size
from nas.latency import BatchLatency
from nas.pareto import best, closest, pareto_front
from nas.records import Evaluation, Proposal
from nas.result import SearchResult
from nas.settings import AccuracyModel, SearchSettings, StopReason, default_predictor
from nas.study import SearchStudy
from nas.verify import (
    LatencyMeasure,
    Verifier,
    best_exploring,
    by_expected_gain,
    measure_map,
)

if TYPE_CHECKING:
    import optuna

    from supernets.spaces import SearchSpace

__all__ = ["Batch", "Search"]

Mode = Literal["budget", "pareto"]


@dataclass(frozen=True)
class Batch:
    """One round's proposal: candidates and the picks among them, each
    ``(index, why)`` (the why becomes :attr:`nas.records.Evaluation.source`)."""

    candidates: CandidateSet
    picks: list[tuple[int, str]]
    #: The predictors' pool (None for the random initial design).
    pool: Pool | None
    #: How many evaluations the round wanted.
    size: int

    def closest(self) -> Batch:
        """Nothing was predicted feasible: the least-violating candidates instead,
        so that the answer can show real numbers for them."""
        picks = [(i, "closest") for i in select_closest(self.candidates.violation, self.size)]
        return Batch(self.candidates, picks, self.pool, self.size)


def _quantile_scale(grid: np.ndarray, latency: np.ndarray) -> np.ndarray:
    """Share of ``grid`` (sorted latencies) at or below each latency, in (0, 1]."""
    return np.searchsorted(grid, latency, side="right") / max(len(grid), 1)


class Search:
    """State of one search (one call of :func:`nas.run_search`; not reused)."""

    def __init__(
        self,
        space: SearchSpace[Any],
        evaluate: Callable[[Any], float],
        latency: Mapping[str, BatchLatency],
        constraints: Constraints,
        *,
        mode: Literal["auto", "budget", "pareto"] = "auto",
        settings: SearchSettings | None = None,
        predictor_factory: Callable[[int], AccuracyModel] | None = None,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        on_evaluation: Callable[[Evaluation], None] | None = None,
        seed: int = 0,
        measure_latency: LatencyMeasure | Mapping[str, LatencyMeasure] | None = None,
        max_latency_measurements: int | None = None,
        exclusive_study: bool = False,
        feature_cache: FeatureCache | None = None,
        verify_later: bool = False,
    ) -> None:
        measures, cap = measure_map(
            measure_latency, max_latency_measurements, list(latency), constraints
        )
        if mode == "auto":
            mode = "budget" if constraints.latency_ms else "pareto"
        if mode not in ("budget", "pareto"):
            raise ValueError(f"mode must be 'auto', 'budget' or 'pareto', got {mode!r}")
        self.settings = settings = settings or SearchSettings()
        self.space = space
        self.evaluate = evaluate
        self.constraints = constraints
        self.mode: Mode = mode
        #: The chance constraint's confidence for exploring and for choosing what
        #: to measure; answers that rest on predictions alone use
        #: ``settings.feasibility_confidence``. A search whose answer is measured
        #: after it (``verify_later``: a remote device) explores as one that
        #: measures for itself.
        self.confidence = settings.confidence(
            verifying=(bool(measures) and cap > 0) or verify_later
        )
        self.featurizer = Featurizer(
            space,
            latency,
            constraints,
            feasibility_confidence=self.confidence,
            cache=feature_cache,
        )
        self.devices = self.featurizer.devices
        self.study = SearchStudy(
            space, self.devices, storage=storage, study_name=study_name, exclusive=exclusive_study
        )
        if predictor_factory is None:
            # Imported here: predictors.accuracy loads XGBoost.
            from predictors.accuracy import predictor_features

            predictor_factory = partial(
                default_predictor,
                bootstrap=settings.max_kappa(mode) > 0,
                features=predictor_features(space),
            )
        self.predictor_factory = predictor_factory
        self.on_evaluation = on_evaluation
        self.seed = seed
        self.records: dict[int, Evaluation] = {}  # trial number -> record
        self._synced = False
        self.failed: set[str] = set()
        self.pending: set[str] = set()
        self.n_new = 0
        self.inner = self._make_inner()
        self.last_pool: Pool | None = None
        self.verifier = Verifier(
            measures, cap, self.study, self.featurizer, self.settings.correction()
        )

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

    def rng(self) -> np.random.Generator:
        """This run's random stream: a resumed search must not replay the first
        run's random choices, so it depends on how many trials the study has."""
        return np.random.default_rng([self.seed, len(self.study.trials())])

    # -- study sync ---------------------------------------------------------------
    def sync(self) -> None:
        """Load every completed trial (ours and other workers') and the pending ones.

        A study nobody else writes to (:attr:`SearchStudy.is_shared` false)
        changes only through this search once loaded, and the search keeps its
        own records as it makes them: only the first call reads it."""
        if self._synced and not self.study.is_shared:
            return
        self._synced = True
        trials = self.study.trials()  # one read serves all three
        for trial in trials:
            if trial.number in self.records:
                continue
            record = self.study.record_of(trial)
            if record is not None:
                self.records[trial.number] = record
        self.failed = self.study.failed_hashes(trials)
        self.pending = self.study.pending_hashes(self.settings.pending_timeout_s, trials)
        if self.verifier.active:
            self.verifier.load()

    def taken(self, arch_hash: str) -> bool:
        """Re-read the study just before starting an evaluation, so that a shared
        study rarely gets a second claim on an architecture; the claims that still
        collide are settled after the start (:meth:`SearchStudy.earlier_claim`)."""
        if self.study.is_shared:
            self.sync()
        return arch_hash in self.seen()

    @property
    def evaluations(self) -> list[Evaluation]:
        """Every real evaluation of the study, in trial-number order; with latency
        measurements, seen with the latencies known now (:meth:`Verifier.view`)
        and judged at the exploring confidence."""
        return self._evaluations(self.confidence)

    def _evaluations(self, confidence: float) -> list[Evaluation]:
        records = [self.records[n] for n in sorted(self.records)]
        if not self.verifier.active and confidence == self.confidence:
            return records
        z = None if confidence == self.confidence else confidence_z(confidence)
        return [self.verifier.view(r, self.constraints, z) for r in records]

    @property
    def n_done(self) -> int:
        return len(self.records)

    @property
    def n_in_flight(self) -> int:
        return len(self.pending)

    def seen(self) -> set[str]:
        return {r.arch_hash for r in self.records.values()} | self.failed | self.pending

    def _best(self, records: list[Evaluation]) -> Evaluation | None:
        """The best of ``records`` by the exploring confidence (with measured
        verification, the one to measure next; its measured latency decides)."""
        return best_exploring(records, self.constraints, self.confidence, device=self.devices[0])

    # -- one evaluation ---------------------------------------------------------------
    def run_one(
        self, cands: CandidateSet, i: int, source: str, pool: Pool | None, round_no: int
    ) -> Evaluation | None:
        """Evaluate candidate ``i`` for real; None if another worker's earlier trial
        claimed the same architecture (this trial is then withdrawn, unevaluated)."""
        arch = cands.archs[i]
        predicted: dict[str, float] = {}
        if pool is not None:
            predicted = {
                "predicted_accuracy": float(pool.mean[i]),
                "predicted_std": float(pool.std[i]),
            }
        attrs = self._attrs(cands, i, source, predicted, round_no)
        violations = self._violations(cands, i)
        trial = self.study.start(arch, attrs, violations)
        unset: dict[str, float] = {}  # constraints the trial does not carry yet
        actual = self.space.from_params(trial.params)
        if self.space.arch_hash(actual) != cands.hashes[i]:
            # ask() popped a trial someone enqueued with its own params: evaluate those.
            cands, i, arch, predicted = self.featurizer.featurize([actual]), 0, actual, {}
            attrs = self._attrs(cands, 0, "external", predicted, None)
            self.study.annotate(trial, **attrs)
            violations = unset = self._violations(cands, i)
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
        latency = {d: float(cands.latency[i, j]) for j, d in enumerate(self.devices)}
        number = self.study.finish(trial, accuracy, latency, unset, duration, attrs)
        record = Evaluation(
            arch=arch,
            arch_hash=cands.hashes[i],
            accuracy=accuracy,
            latency_ms=latency,
            latency_measured=attrs["latency_measured"],
            macs=attrs["macs"],
            params=attrs["params"],
            violations=violations,
            trial_number=number,
            study_name=self.study.name,
            source=attrs["source"],
            round_no=attrs["round"],
            duration_s=duration,
            latency_std_ms=attrs.get("latency_std_ms", {}),
            predicted_accuracy=predicted.get("predicted_accuracy"),
            predicted_std=predicted.get("predicted_std"),
        )
        self.records[number] = record
        self.n_new += 1
        if self.on_evaluation is not None:
            self.on_evaluation(record)
        return record

    def _attrs(
        self,
        cands: CandidateSet,
        i: int,
        source: str,
        predicted: Mapping[str, float],
        round_no: int | None,
    ) -> dict[str, Any]:
        arch = cands.archs[i]
        attrs: dict[str, Any] = {
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
        if cands.latency_std is not None:
            attrs["latency_std_ms"] = {
                d: float(cands.latency_std[i, j])
                for j, d in enumerate(self.devices)
                if self.featurizer.latency[d].uncertain
            }
        return attrs

    def _violations(self, cands: CandidateSet, i: int, z: float | None = None) -> dict[str, float]:
        """Relative violations on the latencies' one-sided bounds ``latency + z *
        std`` (default: the exploring ``z``, what decides feasibility in the
        search and what Optuna's constraints store)."""
        z = self.featurizer.z if z is None else z
        std = cands.std
        lat = {d: cands.latency[i, j] + z * std[i, j] for j, d in enumerate(self.devices)}
        macs = None if cands.macs is None else cands.macs[i]
        params = None if cands.params is None else cands.params[i]
        parts = self.constraints.violations(lat, macs, params)
        return {name: float(v) for name, v in parts.items()}

    # -- proposing ----------------------------------------------------------------------
    def propose(
        self, remaining: int, n_initial: int, round_no: int, rng: np.random.Generator
    ) -> Batch:
        """This round's batch: the random initial design while the study holds
        fewer than ``n_initial`` evaluations, then the predictors' picks. No
        picks: nothing unmeasured is left (no candidates) or nothing is
        predicted feasible (see :meth:`Batch.closest`)."""
        if self.n_done < n_initial:
            k = min(n_initial - self.n_done, remaining)
            cands, picks = self.initial_batch(k, rng)
            return Batch(cands, picks, None, k)
        k = min(self.settings.batch_size, remaining)
        pool, picks = self.predicted_batch(k, round_no, rng)
        return Batch(pool.candidates, picks, pool, k)

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
            incumbent = max(feasible_records, key=lambda r: r.accuracy, default=None)
            picks = select_budget(
                pool,
                self.budget_slots(k),
                kappa=s.kappa,
                incumbent=None if incumbent is None else self.space.encode(incumbent.arch),
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
        budgets = self.constraints.latency_ms
        s = self.settings
        bounded = all(dev in budgets for dev in self.devices)
        quantile = s.ref_accuracy_quantile if bounded else s.ref_accuracy_quantile_unbounded
        ref_acc = float(np.quantile(accs, quantile))
        front_acc = np.array([r.accuracy for r in records])
        fronts, refs = [], []
        scaled = np.array(pool.candidates.latency, dtype=np.float64, copy=True)
        for j, dev in enumerate(self.devices):
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

    def proposals(self, z: float | None = None) -> list[Proposal]:
        """The predicted-best unmeasured candidates of the last pool that meet
        the constraints on the bound ``latency + z * std`` (default: the
        exploring ``z``)."""
        pool = self.last_pool
        if pool is None or len(pool) == 0:
            return []
        seen = self.seen()
        order = np.argsort(-pool.mean, kind="stable")
        out: list[Proposal] = []
        cands = pool.candidates
        feasible = cands.feasible
        if z is not None and z != self.featurizer.z:
            std = cands.std
            feasible = (
                self.constraints.total_violation(
                    {d: cands.latency[:, j] + z * std[:, j] for j, d in enumerate(self.devices)},
                    cands.macs,
                    cands.params,
                )
                <= 0.0
            )
        for i in order:
            if len(out) >= self.settings.n_proposals:
                break
            if cands.hashes[i] in seen or not feasible[i]:
                continue
            std = cands.std
            out.append(
                Proposal(
                    arch=cands.archs[i],
                    arch_hash=cands.hashes[i],
                    predicted_accuracy=float(pool.mean[i]),
                    predicted_std=float(pool.std[i]),
                    latency_ms={d: float(cands.latency[i, j]) for j, d in enumerate(self.devices)},
                    violations=self._violations(cands, int(i), z),
                    latency_std_ms={}
                    if cands.latency_std is None
                    else {d: float(std[i, j]) for j, d in enumerate(self.devices)},
                )
            )
        return out

    def score(self) -> tuple[float, ...]:
        """Progress measure for ``patience``: best feasible accuracy (budget mode) or
        the set of feasible front members (Pareto mode)."""
        feasible = [r for r in self.evaluations if r.feasible]
        if self.mode == "budget":
            return (max((r.accuracy for r in feasible), default=-math.inf),)
        front = set()
        for dev in self.devices:
            front |= {r.trial_number for r in pareto_front(feasible, dev)}
        return tuple(sorted(n for n in front if n is not None))

    # -- measured verification (nas.verify) ------------------------------------------
    def refine(self) -> None:
        """After a round: measure the current best when its latency is unverified,
        while the in-search half of the cap lasts (this refits the correction)."""
        v = self.verifier
        if not v.active or v.n_used >= v.in_search:
            return
        # In search, the current best: its measurement corrects the model
        # where the search is heading (by expected gain, these measurements went
        # to long shots the final verification weighs anyway: on HELP's train
        # devices median regret 0.17 against 0.11).
        found = self._next_to_measure("best")
        if found is not None:
            v.measure(found.arch, found.arch_hash)

    def _verifiable(self) -> list[Evaluation]:
        """Evaluations that are measured or may still be: a failed measurement
        is not retried (it used its share of the cap), so its architecture can
        be neither verified nor the answer."""
        v = self.verifier
        return [e for e in self.evaluations if e.arch_hash not in v.measurements or v.verified(e)]

    def verify(self) -> None:
        """Before answering: measure the best under the corrected model until the
        best has a measured latency or the cap is reached."""
        v = self.verifier
        if not v.active:
            return
        v.load()
        while v.remaining > 0:
            found = self._next_to_measure(self.settings.measurement_choice)
            if found is None:
                return  # no measurement can improve the answer
            v.measure(found.arch, found.arch_hash)

    def _next_to_measure(self, choice: Literal["gain", "best"]) -> Evaluation | None:
        """The evaluated architecture to measure next, or None when no
        measurement is expected to improve the answer (``measurement_choice``)."""
        v = self.verifier
        records = self._verifiable()
        if self.mode != "budget" or choice == "best":
            found = self._best(records)
            return None if found is None or found.arch_hash in v.measurements else found
        # The answer a measurement has to beat: the best measured one as result()
        # would choose it; with none yet, the worst evaluated accuracy (having no
        # answer is worth no more than the worst architecture seen).
        confidence = self.settings.feasibility_confidence
        measured = [e for e in self._evaluations(confidence) if v.verified(e)]
        answer = best(
            measured, self.constraints, device=self.devices[0], feasibility_confidence=confidence
        )
        if answer is not None:
            floor = answer.accuracy
        else:
            floor = min((e.accuracy for e in records), default=0.0)
        unmeasured = [e for e in records if e.arch_hash not in v.measurements]
        picks = by_expected_gain(
            unmeasured, self.constraints, v.measures, confidence_z(confidence), floor, 1
        )
        return picks[0] if picks else None

    # -- the answer -------------------------------------------------------------------
    def result(self, stop: StopReason) -> SearchResult:
        """The search's answer, by :mod:`nas.pareto`'s rules; with latency
        measurements, from the measured architectures only."""
        # Judged at the answer's confidence: a latency still predicted (a device
        # without a measuring callable, or no verification) must meet the
        # chance constraint at ``feasibility_confidence``, whatever the search
        # explored at.
        confidence = self.settings.feasibility_confidence
        evaluations = self._evaluations(confidence)
        v = self.verifier
        describe = self.constraints.describe()
        candidates = evaluations
        if v.active:
            candidates = [e for e in evaluations if v.verified(e)]
        found = best(
            candidates, self.constraints, device=self.devices[0], feasibility_confidence=confidence
        )
        near: list[Evaluation] = []
        message = ""
        if found is None:
            near = closest(
                candidates or evaluations,
                self.constraints,
                3,
                device=self.devices[0],
                feasibility_confidence=confidence,
            )
            if v.active and candidates:
                message = (
                    f"none of the {len(candidates)} architectures measured on "
                    f"{sorted(v.measures)} meets {describe}; the {len(near)} closest are "
                    "reported with their measured latencies, marked infeasible"
                )
            elif v.active and evaluations:
                message = (
                    f"no architecture's latency was verified on {sorted(v.measures)} "
                    f"({v.n_used} measurement(s) of {v.cap} allowed); the {len(near)} closest "
                    f"to {describe} by predicted latency are reported, marked infeasible"
                )
            elif evaluations:
                message = (
                    f"no evaluated architecture meets {describe}; "
                    f"the {len(near)} closest are reported, marked infeasible"
                )
            else:
                message = "no architecture was evaluated"
        if stop == "infeasible":
            message = (
                f"no architecture of {self.space.name!r} is predicted to meet {describe}; "
                "stopped. " + message
            )
        return SearchResult(
            evaluations=evaluations,
            devices=list(self.devices),
            constraints=self.constraints,
            best_evaluation=found,
            feasible=found is not None,
            closest=near,
            stop_reason=stop,
            message=message,
            n_new=self.n_new,
            study_name=self.study.name,
            proposals=self.proposals(confidence_z(confidence)),
            n_latency_measurements=v.n_used,
            best_latency_measured=found is not None and self._all_measured(found),
            feasibility_confidence=confidence,
        )

    def _all_measured(self, record: Evaluation) -> bool:
        devices = list(self.constraints.latency_ms) or self.devices
        return all(record.latency_measured.get(d, False) for d in devices)
