"""Running one search job: from database rows to ``nas.run_search`` and back.

Everything the search evaluates for real becomes an Optuna trial (in the same
database, through Optuna's RDB storage, study ``hwnas-job-<id>``) and a row in
``nas_trials``. A job picked up again after its worker died resumes from the
Optuna study, so nothing is evaluated twice; rows the dead worker did not get to
write are reconciled from the study at the end (``record_trial`` is idempotent).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import optuna
from sqlalchemy.orm import Session

from service.db import Device, SearchJob, Supernet
from service.domain import devices, jobs, subnets, supernet_records
from service.domain.specs import SearchSpec, parse_spec
from service.orchestration.device_latency import latency_source
from service.runtime import Runtime

if TYPE_CHECKING:
    from nas import Evaluation, SearchResult
    from supernets.spaces import SearchSpace

__all__ = ["JobAborted", "execute_search", "fail_orphaned_trials", "optuna_storage"]


class JobAborted(RuntimeError):
    """The job was cancelled or its lease was lost: stop without finishing it."""


def optuna_storage(rt: Runtime) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage on the service's own database (created with retries:
    workers starting together on a fresh database race to create its schema)."""
    from nas.study import make_storage

    storage = make_storage(rt.settings.resolved_database_url)
    assert isinstance(storage, optuna.storages.RDBStorage)
    return storage


def fail_orphaned_trials(storage: optuna.storages.BaseStorage, study_name: str) -> int:
    """Mark the study's RUNNING trials as failed; returns how many.

    Only safe because a job's study is worked on by the one worker holding the
    job's lease: when a job is (re)started, any RUNNING trial in its study was
    left by a worker that died, and would otherwise count as in flight.
    """
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        return 0
    orphans = storage.get_all_trials(
        study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)
    )
    for trial in orphans:
        storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    return len(orphans)


def _evaluator(rt: Runtime, supernet: Supernet, spec: SearchSpec) -> Callable[[Any], float]:
    if supernet.checkpoint_path is None:
        from nas.evaluators import TabularEvaluator

        return TabularEvaluator(supernet.space_name)
    from nas.evaluators import SupernetEvaluator

    return SupernetEvaluator.from_checkpoint(
        supernet.checkpoint_path, n_calibration=spec.bn_images, seed=spec.seed
    )


def _trial_in(
    job: SearchJob, supernet: Supernet, device: Device, evaluation: Evaluation
) -> subnets.TrialIn:
    primary = device.name
    latencies = {
        name: {
            "ms": float(ms),
            "source": "measured" if evaluation.latency_measured.get(name) else "predicted",
        }
        for name, ms in evaluation.latency_ms.items()
    }
    main_ms = evaluation.latency_ms.get(primary)
    main_source = "measured" if evaluation.latency_measured.get(primary) else "predicted"
    return subnets.TrialIn(
        space_name=supernet.space_name,
        arch=evaluation.arch.to_dict(),
        arch_hash=evaluation.arch_hash,
        accuracy=float(evaluation.accuracy),
        accuracy_source="measured",
        latency_ms=None if main_ms is None else float(main_ms),
        latency_source=None if main_ms is None else main_source,
        job_id=job.id,
        supernet_id=supernet.id,
        device_id=device.id,
        latencies={k: v for k, v in latencies.items() if k != primary},
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


def execute_search(
    rt: Runtime,
    job_id: int,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[int], None] = lambda n: None,
) -> dict[str, Any]:
    """Run job ``job_id`` to its end; returns the JSON result stored on the job.

    ``should_stop`` is polled after every real evaluation; when it says so the
    run stops with :class:`JobAborted` (evaluations done so far are kept).
    """
    from nas import SearchSettings, run_search
    from supernets import space_from_config

    with rt.session() as s:
        job, spec, supernet, devs = _load(s, job_id)
        models = {d.name: latency_source(s, supernet, d) for d in devs}
        space = space_from_config(supernet.space_name, supernet.space_config)
        budgets = {spec.device: spec.latency_budget_ms, **spec.extra_budgets_ms}
        study_name = job.study_name or f"hwnas-job-{job.id}"
        s.expunge_all()
    evaluate = _evaluator(rt, supernet, spec)
    pruning: dict[str, Any] | None = None
    if spec.prune_space:
        space, pruning = _pruned(rt, supernet, space, spec.seed)
    storage = optuna_storage(rt)
    fail_orphaned_trials(storage, study_name)
    count = 0

    def record(evaluation: Evaluation) -> None:
        nonlocal count
        with rt.session() as s:
            subnets.record_trial(s, _trial_in(job, supernet, devs[0], evaluation))
        count += 1
        on_progress(count)

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
            settings=SearchSettings(batch_size=spec.batch_size),
            storage=storage,
            study_name=study_name,
            on_evaluation=record,
            should_stop=should_stop,
        )
        if result.stop_reason == "stopped":
            raise JobAborted(f"search job {job_id} was cancelled or lost its lease")
        # Reconcile: evaluations a previous (dead) worker stored in the study
        # but not in our table.
        with rt.session() as s:
            for evaluation in result.evaluations:
                subnets.record_trial(s, _trial_in(job, supernet, devs[0], evaluation))
    finally:
        storage.engine.dispose()
    summary = _summary(result, spec)
    summary["pruning"] = pruning
    summary["verified_latency"] = _verify(rt, space, spec, result)
    return summary


def _verify(
    rt: Runtime, space: SearchSpace[Any], spec: SearchSpec, result: SearchResult
) -> list[dict[str, Any]]:
    """Check the promising subnets' latency for real where the device is this
    machine: the best one and the fastest members of the front."""
    from service.orchestration.registration import verify_latency

    chosen = [] if result.best_evaluation is None else [result.best_evaluation]
    chosen += [e for e in result.pareto_front(spec.device) if e not in chosen][:4]
    if not chosen:
        chosen = list(result.closest[:3])
    predicted = {e.arch_hash: float(e.latency_ms[spec.device]) for e in chosen}
    checked = verify_latency(rt, spec.device, space, [e.arch for e in chosen])
    return [{**c, "predicted_ms": predicted[c["arch_hash"]]} for c in checked]


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


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _summary(result: SearchResult, spec: SearchSpec) -> dict[str, Any]:
    def ev(e: Evaluation) -> dict[str, Any]:
        return {
            "arch": e.arch.to_dict(),
            "arch_hash": e.arch_hash,
            "accuracy": e.accuracy,
            "accuracy_source": "measured",
            "latency_ms": {k: float(v) for k, v in e.latency_ms.items()},
            "latency_source": {
                k: "measured" if e.latency_measured.get(k) else "predicted" for k in e.latency_ms
            },
            "macs": _clean(e.macs),
            "params": _clean(e.params),
            "feasible": e.feasible,
        }

    message = result.message
    if result.best_evaluation is not None and not message:
        best = result.best_evaluation
        source = "measured" if best.latency_measured.get(spec.device) else "predicted"
        message = (
            f"best of {len(result.evaluations)} real evaluations: accuracy {best.accuracy:.2f} "
            f"at {best.latency_ms[spec.device]:.3f} ms ({source}) on {spec.device}"
        )
    return {
        "feasible": result.feasible,
        "message": message,
        "stop_reason": str(result.stop_reason),
        "n_evaluations": len(result.evaluations),
        "n_new": result.n_new,
        "budget_ms": spec.latency_budget_ms,
        "device": spec.device,
        "best": ev(result.best_evaluation) if result.best_evaluation is not None else None,
        "closest": [ev(e) for e in result.closest],
        "proposals": [p.to_dict() for p in result.proposals],
    }
