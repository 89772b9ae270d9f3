"""Running one search job: from database rows to ``nas.run_search`` and back.

Everything the search evaluates for real becomes an Optuna trial (in the same
database, through Optuna's RDB storage, study ``hwnas-job-<id>``) and a row in
``nas_trials``. A job picked up again after its worker died resumes from the
Optuna study, so nothing is evaluated twice; rows the dead worker did not get to
write are reconciled from the study at the end (``record_trial`` is idempotent).

The answer is verified with real latencies where the worker can take them
(:mod:`service.orchestration.verification`): on a bundled table (the table is
the measurement) and on this machine (a local device; such jobs are claimed
only by a worker on its host) ``nas.run_search`` measures up to
``spec.max_latency_measurements`` candidates itself. On any other device the
job ends awaiting verification, with the candidates the loop would measure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import optuna
from sqlalchemy.orm import Session

from nas.candidates import FeatureCache
from nas.settings import SearchSettings
from service.db import Device, SearchJob, Supernet
from service.domain import devices, jobs, subnets, supernet_records
from service.domain.errors import DomainError
from service.domain.specs import SearchSpec, parse_spec
from service.orchestration.device_latency import ModelCache, has_table_latency, latency_source
from service.runtime import Runtime

if TYPE_CHECKING:
    from nas import Evaluation, SearchResult
    from supernets.spaces import SearchSpace

log = logging.getLogger("hwnas.worker")

__all__ = ["JobAborted", "SearchCache", "execute_search", "optuna_storage", "search_settings"]


class JobAborted(RuntimeError):
    """The job was cancelled or its lease was lost: stop without finishing it."""


@dataclass
class SearchCache:
    """What a worker keeps from one search job to the next, bounded: the latency
    models it loaded (:class:`ModelCache`) and nas's featurised architectures
    for them (:class:`nas.candidates.FeatureCache`; on NB201, every job would
    otherwise featurise all 15,625 cells again). Owned by the worker."""

    models: ModelCache = field(default_factory=ModelCache)
    features: FeatureCache = field(default_factory=FeatureCache)


def search_settings(spec: SearchSpec) -> SearchSettings:
    """The loop's settings a job's spec asks for (the rest at nas's defaults)."""
    return SearchSettings(
        batch_size=spec.batch_size,
        feasibility_confidence=spec.feasibility_confidence,
        verified_feasibility_confidence=spec.verified_feasibility_confidence,
    )


def optuna_storage(rt: Runtime) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the service's own database (created with retries:
    workers starting together on a fresh database race to create its schema)."""
    from nas.study import make_storage

    storage = make_storage(rt.settings.resolved_database_url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    return storage


def _evaluator(rt: Runtime, supernet: Supernet, spec: SearchSpec) -> Callable[[Any], float]:
    if supernet.checkpoint_path is None:
        from nas.evaluators import TabularEvaluator

        return TabularEvaluator(supernet.space_name)
    from nas.evaluators import SupernetEvaluator

    return SupernetEvaluator.from_checkpoint(
        supernet.checkpoint_path, n_calibration=spec.bn_images, seed=spec.seed
    )


def _latency_entry(evaluation: Evaluation, device: str, ms: float) -> dict[str, Any]:
    measured = bool(evaluation.latency_measured.get(device))
    entry: dict[str, Any] = {"ms": float(ms), "source": "measured" if measured else "predicted"}
    std = evaluation.latency_std_ms.get(device)
    if std is not None and not measured:
        entry["std_ms"] = float(std)
    return entry


def _trial_in(
    job: SearchJob, supernet: Supernet, device: Device, evaluation: Evaluation
) -> subnets.TrialIn:
    primary = device.name
    latencies = {
        name: _latency_entry(evaluation, name, ms) for name, ms in evaluation.latency_ms.items()
    }
    main = latencies.pop(primary, None)  # the trial's own columns; the rest in ``latencies``
    return subnets.TrialIn(
        space_name=supernet.space_name,
        arch=evaluation.arch.to_dict(),
        arch_hash=evaluation.arch_hash,
        accuracy=float(evaluation.accuracy),
        accuracy_source="measured",
        latency_ms=None if main is None else main["ms"],
        latency_source=None if main is None else main["source"],
        latency_std_ms=None if main is None else main.get("std_ms"),
        job_id=job.id,
        supernet_id=supernet.id,
        device_id=device.id,
        latencies=latencies,
        macs=None if evaluation.macs is None else int(evaluation.macs),
        params=None if evaluation.params is None else int(evaluation.params),
        optuna_trial_number=evaluation.trial_number,
        details={
            "source": evaluation.source,
            "round_no": evaluation.round_no,
            "predicted_accuracy": evaluation.predicted_accuracy,
            "predicted_std": evaluation.predicted_std,
            "duration_s": evaluation.duration_s,
            "feasible": evaluation.feasible,
        },
    )


def _load(session: Session, job_id: int) -> tuple[SearchJob, SearchSpec, Supernet, list[Device]]:
    job = jobs.get_job(session, job_id)
    spec = parse_spec(job.spec)
    supernet = supernet_records.get_supernet(session, spec.supernet)
    devs = [devices.get_device(session, n) for n in [spec.device, *spec.extra_devices]]
    return job, spec, supernet, devs


class _ProgressLog:
    """One log line per real evaluation: what it measured, the best feasible
    accuracy so far and the time left at the rate of this run."""

    def __init__(self, job_id: int, total: int, device: str) -> None:
        self.job_id, self.total, self.device = job_id, total, device
        self.best: float | None = None
        self.started = time.monotonic()
        self.first_count: int | None = None

    def log(self, count: int, e: Evaluation) -> None:
        if e.feasible and (self.best is None or e.accuracy > self.best):
            self.best = e.accuracy
        if self.first_count is None:  # a resumed job: rate from this run only
            self.first_count = count - 1
        done_here = count - self.first_count
        rate = (time.monotonic() - self.started) / max(done_here, 1)
        left = max(self.total - count, 0) * rate
        latency = e.latency_ms.get(self.device)
        log.info(
            "job %s: evaluation %d/%d accuracy %.2f at %s ms%s; best feasible %s; about %s left",
            self.job_id,
            count,
            self.total,
            e.accuracy,
            "?" if latency is None else f"{latency:.3f}",
            "" if e.feasible else " (infeasible)",
            "none yet" if self.best is None else f"{self.best:.2f}",
            _duration(left),
        )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def execute_search(
    rt: Runtime,
    job_id: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int], None] = lambda n: None,
    cache: SearchCache | None = None,
) -> dict[str, Any]:
    """Run job ``job_id`` to its end; returns the JSON result stored on the job.

    ``should_stop`` is polled after every real evaluation; when it says so the
    run stops with :class:`JobAborted` (evaluations done so far are kept).
    ``cache``: what the worker keeps between its jobs (none: nothing kept).

    The job's trials are written a round at a time (a batch of evaluations in
    a few statements); the study holds every evaluation the moment it ends, and
    the reconciliation at the end (or when a resumed job ends) stores whatever
    a lost worker had not written.
    """
    from nas import run_search
    from nas.study import fail_running_trials
    from supernets import space_from_config

    cache = cache if cache is not None else SearchCache()
    with rt.session() as s:
        job, spec, supernet, devs = _load(s, job_id)
        models = {d.name: latency_source(s, supernet, d, cache.models) for d in devs}
        context = subnets.JobTrials(job.id, job.owner, supernet.space_name, devs[0].name)
        space = space_from_config(supernet.space_name, supernet.space_config)
        budgets = {spec.device: spec.latency_budget_ms, **spec.extra_budgets_ms}
        study_name = job.study_name or f"hwnas-job-{job.id}"
        measures = _measures(rt, s, job.id, space, supernet, devs, models, budgets)
        s.expunge_all()
    if supernet.checkpoint_path is not None and not supernet.dataset:
        return _proxy_answer(rt, space, supernet, spec, models)
    evaluate = _evaluator(rt, supernet, spec)
    pruning: dict[str, Any] | None = None
    if spec.prune_space:
        space, pruning = _pruned(rt, supernet, space, spec.seed)
    storage = optuna_storage(rt)
    # Only the worker holding this job's lease works on its study: whatever is
    # RUNNING there was left by a worker that died.
    fail_running_trials(storage, study_name)
    count = 0
    tracker = _ProgressLog(job.id, spec.n_evaluations, spec.device)
    unwritten: list[subnets.TrialIn] = []

    def write() -> None:
        if unwritten:
            with rt.session() as s:
                subnets.record_job_trials(s, context, unwritten)
            unwritten.clear()

    def record(evaluation: Evaluation) -> None:
        nonlocal count
        unwritten.append(_trial_in(job, supernet, devs[0], evaluation))
        if len(unwritten) >= spec.batch_size:  # a round's worth
            write()
        count += 1
        on_progress(count)
        tracker.log(count, evaluation)

    try:
        result = run_search(
            space,
            evaluate,
            models,
            budgets,
            spec.n_evaluations,
            seed=spec.seed,
            max_macs=spec.max_macs,
            max_params=spec.max_params,
            time_budget_s=spec.time_budget_s,
            settings=search_settings(spec),
            storage=storage,
            study_name=study_name,
            on_evaluation=record,
            should_stop=should_stop,
            measure_latency=measures or None,
            max_latency_measurements=spec.max_latency_measurements if measures else None,
            # Only the worker holding the job's lease adds trials to its study.
            exclusive_study=True,
            feature_cache=cache.features,
            # A remote device: the user measures the candidates afterwards.
            verify_later=_awaits_verification(spec, measures),
        )
        if result.stop_reason == "stopped":
            write()  # a cancelled job keeps what it evaluated
            raise JobAborted(f"search job {job_id} was cancelled or lost its lease")
        # Reconcile: the last round, and evaluations a previous (dead) worker
        # stored in the study but not in our table, in one go.
        unwritten[:] = [_trial_in(job, supernet, devs[0], e) for e in result.evaluations]
        write()
    except Exception:
        # The search failed: keep the evaluations it made (a resumed job would
        # reconcile them from the study; a failed one would not).
        try:
            write()
        except Exception:
            log.warning("job %s: %d evaluation(s) not stored", job_id, len(unwritten))
        raise
    finally:
        storage.engine.dispose()
    summary = result.to_dict(spec.device)
    summary["pruning"] = pruning
    summary["verified_latency"] = _measured_here(rt, job_id, measures)
    if _awaits_verification(spec, measures):
        summary = _awaiting(summary, result, spec, supernet.space_name, job_id)
    return summary


def _measures(
    rt: Runtime,
    session: Session,
    job_id: int,
    space: SearchSpace[Any],
    supernet: Supernet,
    devs: list[Device],
    models: dict[str, Any],
    budgets: dict[str, float],
) -> dict[str, Callable[[Any], float]]:
    """The true latency measurement of each device with a budget that this worker
    can measure: a bundled table, or this machine (with its stored DeviceSpec)."""
    from service.orchestration.registration import device_spec, is_local, registration_anchors
    from service.orchestration.verification import LocalMeasure, TableMeasure

    out: dict[str, Callable[[Any], float]] = {}
    for d in devs:
        if d.name not in budgets:
            continue  # measurements verify budgets
        if has_table_latency(supernet.space_name, d):
            out[d.name] = TableMeasure(models[d.name])
        elif is_local(d):
            anchors = registration_anchors(session, d, space.name)
            out[d.name] = LocalMeasure(rt, d.name, space, device_spec(d), job_id, anchors=anchors)
    return out


def _measured_here(
    rt: Runtime, job_id: int, measures: dict[str, Callable[[Any], float]]
) -> list[dict[str, Any]]:
    """The measurements this worker took on its own machine, each with the latency
    predicted when its subnet was evaluated (the job's stored trial)."""
    from service.orchestration.verification import LocalMeasure

    taken = [m for fn in measures.values() if isinstance(fn, LocalMeasure) for m in fn.taken]
    if not taken:
        return []
    with rt.session() as s:
        trials = {t.arch_hash: t for t in subnets.list_trials(s, job_id=job_id, limit=10_000)}
        out = []
        for m in taken:
            t = trials.get(m["arch_hash"])
            predicted = t.latency_ms if t is not None and t.latency_source == "predicted" else None
            out.append({**m, "predicted_ms": predicted})
    return out


def _awaits_verification(spec: SearchSpec, measures: Mapping[str, Any]) -> bool:
    """The job's device cannot be measured here, and its answer is to be
    verified (the job will await the user's measurements)."""
    return spec.device not in measures and spec.max_latency_measurements > 0


def _awaiting(
    summary: dict[str, Any],
    result: SearchResult,
    spec: SearchSpec,
    space_name: str,
    job_id: int,
) -> dict[str, Any]:
    """A remote device: the answer waits for measurements of the candidates the
    loop would have measured (none to measure: the answer stands as it is)."""
    from service.orchestration.verification import verification_candidates

    # Chosen as the loop chooses what to measure (the measurements, not the
    # bound, decide the verified answer).
    cands = verification_candidates(
        result, spec.device, spec.max_latency_measurements, search_settings(spec)
    )
    if not cands:
        return summary
    summary["verification"] = {
        "status": "awaiting",
        "device": spec.device,
        "space": space_name,
        "candidates": cands,
    }
    write = f"`hwnas search verify {job_id} -o DIR`"
    submit = f"`hwnas device submit {spec.device} -f latencies.jsonl --job {job_id}`"
    summary["message"] = (
        f"awaiting verification on {spec.device}: its latencies are predicted; measure the "
        f"{len(cands)} candidate(s) there ({write}, run DIR/measure.py on the device, then "
        f"{submit}). Provisional answer: " + (summary.get("message") or "")
    )
    return summary


def _proxy_answer(
    rt: Runtime,
    space: SearchSpace[Any],
    supernet: Supernet,
    spec: SearchSpec,
    models: dict[str, Any],
) -> dict[str, Any]:
    """The search of a supernet without images (an OFA import without a
    dataset): nas's labelled proxy, never reported as a measured accuracy."""
    from nas.latency import BatchLatency
    from nas.proxy import largest_macs_under_budget
    from service.orchestration.registration import verify_latency

    if spec.extra_budgets_ms:
        raise DomainError(
            f"supernet {supernet.name!r} has no images, so its search answers with a proxy "
            "that takes one latency budget; drop extra_budgets_ms"
        )
    answer = largest_macs_under_budget(
        space,
        models[spec.device],
        spec.latency_budget_ms,
        device=spec.device,
        max_macs=spec.max_macs,
        max_params=spec.max_params,
        seed=spec.seed,
        n_classes=supernet.n_classes or 1000,
    )
    chosen = answer.to_dict()
    chosen["latency_ms"] = {spec.device: answer.latency_ms}
    for name in spec.extra_devices:
        extra = BatchLatency(models[name], space, name).predict_archs([answer.arch])
        chosen["latency_ms"][name] = float(extra[0])
    verb = "fits" if answer.feasible else "is the fastest found; nothing fits"
    message = (
        f"PROXY ANSWER, no accuracy measured ({supernet.name} has no images): the subnet with "
        f"the most MACs ({answer.macs / 1e6:.1f}M) whose predicted latency "
        f"{answer.latency_ms:.3f} ms {verb} the {spec.latency_budget_ms} ms budget on "
        f"{spec.device}; import with --dataset to search by measured accuracy"
    )
    checked = verify_latency(rt, spec.device, space, [answer.arch])
    return {
        "feasible": answer.feasible,
        "answer": "proxy",
        "proxy_rule": answer.rule,
        "message": message,
        "stop_reason": "proxy",
        "n_evaluations": 0,
        "n_new": 0,
        "budget_ms": spec.latency_budget_ms,
        "device": spec.device,
        "best": chosen if answer.feasible else None,
        "closest": [] if answer.feasible else [chosen],
        "proposals": [],
        "pruning": None,
        "verified_latency": [{**c, "predicted_ms": answer.latency_ms} for c in checked],
    }


#: Fewer measured subnets than this give SHAP effects too noisy to prune on.
MIN_PRUNING_SAMPLES = 20


def _pruned(
    rt: Runtime, supernet: Supernet, space: SearchSpace[Any], seed: int
) -> tuple[SearchSpace[Any], dict[str, Any]]:
    """Restrict ``space`` to the choices that do not measurably hurt accuracy,
    judged on every measured subnet of the supernet stored so far."""
    from predictors.accuracy import prune_space
    from service.orchestration.evaluation import accuracy_training_set
    from supernets.spaces import RestrictedSpace

    X, y = accuracy_training_set(rt, supernet.id, space)
    if len(y) < MIN_PRUNING_SAMPLES:
        return space, {
            "applied": False,
            "reason": f"{len(y)} measured subnets; pruning needs {MIN_PRUNING_SAMPLES}",
        }
    result = prune_space(space, X, y, seed=seed)
    return RestrictedSpace(space, result.choices), {"applied": True, **result.to_dict()}
