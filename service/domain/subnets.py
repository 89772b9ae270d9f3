"""Evaluated subnets (trials) and the queries users ask of them.

"Best under B ms on device D" and the Pareto front are answered from stored
trials whose accuracy was *measured* (a real evaluation). A trial's latency may
be measured or predicted (by the device's latency model); a measured latency in
``latency_measurements`` for the same architecture and device takes precedence,
and every number in an answer says where it came from.

Accuracy is stored in percent (0-100), whoever wrote it: :class:`TrialIn`
refuses anything else and :func:`record_trial` stamps each row's details with
``accuracy_unit: "percent"`` (see migration 0002 for rows older than that).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.db import SOURCES, Device, LatencyMeasurement, SearchJob, Supernet, Trial
from service.domain.errors import NotFoundError
from service.domain.owners import Scope

#: Key in ``Trial.details`` / ``Supernet.metrics`` saying the accuracies are percent.
ACCURACY_UNIT = "accuracy_unit"

__all__ = [
    "ACCURACY_UNIT",
    "SubnetAnswer",
    "TrialIn",
    "best_answer",
    "best_under_budget",
    "candidates",
    "get_trial",
    "list_trials",
    "measured_accuracies",
    "pareto_front",
    "record_trial",
    "visible_trials",
]


@dataclass(frozen=True)
class TrialIn:
    """One evaluation to store."""

    space_name: str
    arch: dict[str, Any]
    arch_hash: str
    accuracy: float | None
    accuracy_source: str = "measured"
    latency_ms: float | None = None
    latency_source: str | None = None
    #: Std of a predicted ``latency_ms`` (the device model's uncertainty), if any.
    latency_std_ms: float | None = None
    job_id: int | None = None
    supernet_id: int | None = None
    device_id: int | None = None
    latencies: dict[str, Any] | None = None
    macs: int | None = None
    params: int | None = None
    optuna_trial_number: int | None = None
    details: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.accuracy_source not in SOURCES:
            raise ValueError(
                f"accuracy_source must be one of {list(SOURCES)}, got {self.accuracy_source!r}"
            )
        if self.latency_source is not None and self.latency_source not in SOURCES:
            raise ValueError(
                f"latency_source must be one of {list(SOURCES)}, got {self.latency_source!r}"
            )
        if self.accuracy is not None and not (
            math.isfinite(self.accuracy) and 0.0 <= self.accuracy <= 100.0
        ):
            raise ValueError(f"accuracy must be a percentage in [0, 100], got {self.accuracy!r}")
        if self.latency_ms is not None:
            if not math.isfinite(self.latency_ms) or self.latency_ms <= 0:
                raise ValueError(f"latency_ms must be positive and finite, got {self.latency_ms!r}")
            if self.latency_source is None:
                raise ValueError(
                    "latency_source (measured or predicted) must be given with latency_ms"
                )
        if self.latency_std_ms is not None:
            if not math.isfinite(self.latency_std_ms) or self.latency_std_ms < 0:
                raise ValueError(
                    f"latency_std_ms must be finite and >= 0, got {self.latency_std_ms!r}"
                )
            if self.latency_source != "predicted":
                raise ValueError("latency_std_ms belongs to a predicted latency only")


def record_trial(session: Session, trial: TrialIn) -> Trial:
    """Store an evaluation; idempotent per (job, architecture): a resumed job that
    re-reports an architecture gets the stored row back, never a duplicate."""
    if trial.job_id is not None:
        existing = session.scalar(
            select(Trial).where(Trial.job_id == trial.job_id, Trial.arch_hash == trial.arch_hash)
        )
        if existing is not None:
            return existing
    row = Trial(
        job_id=trial.job_id,
        supernet_id=trial.supernet_id,
        device_id=trial.device_id,
        space_name=trial.space_name,
        arch=trial.arch,
        arch_hash=trial.arch_hash,
        accuracy=trial.accuracy,
        accuracy_source=trial.accuracy_source,
        latency_ms=trial.latency_ms,
        latency_source=trial.latency_source,
        latency_std_ms=trial.latency_std_ms,
        latencies=trial.latencies or {},
        macs=trial.macs,
        params=trial.params,
        optuna_trial_number=trial.optuna_trial_number,
        # Every stored accuracy is percent; the stamp is how migration 0002
        # tells rows written since from the fractions stored before it.
        details={**(trial.details or {}), ACCURACY_UNIT: "percent"},
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # Another worker stored the same (job, arch) between our check and insert.
        stored = session.scalar(
            select(Trial).where(Trial.job_id == trial.job_id, Trial.arch_hash == trial.arch_hash)
        )
        if stored is None:
            raise
        return stored
    return row


def visible_trials(scope: Scope | None) -> ColumnElement[bool] | None:
    """The condition on trials that ``scope`` sees (None: all): trials of its
    own jobs, and trials stored outside any job (a supernet's own evaluations,
    visible with the supernet)."""
    if scope is None or scope.sees_all:
        return None
    own_jobs = select(SearchJob.id).where(SearchJob.owner == scope.owner)
    return or_(Trial.job_id.is_(None), Trial.job_id.in_(own_jobs))


def get_trial(session: Session, trial_id: int, scope: Scope | None = None) -> Trial:
    row = session.get(Trial, trial_id)
    if row is None or (
        scope is not None
        and not scope.sees_all
        and row.job is not None
        and row.job.owner != scope.owner
    ):
        raise NotFoundError(f"trial {trial_id} does not exist")
    return row


def list_trials(
    session: Session,
    *,
    job_id: int | None = None,
    supernet_id: int | None = None,
    device_id: int | None = None,
    limit: int = 100,
    after_id: int | None = None,
) -> Sequence[Trial]:
    """Oldest first; page with ``after_id`` (the largest id of the previous page)."""
    if not 1 <= limit <= 10_000:
        raise ValueError(f"limit must be in [1, 10000], got {limit}")
    query = select(Trial).order_by(Trial.id).limit(limit)
    if job_id is not None:
        query = query.where(Trial.job_id == job_id)
    if supernet_id is not None:
        query = query.where(Trial.supernet_id == supernet_id)
    if device_id is not None:
        query = query.where(Trial.device_id == device_id)
    if after_id is not None:
        query = query.where(Trial.id > after_id)
    return session.scalars(query).all()


def measured_accuracies(
    session: Session, supernet_id: int
) -> dict[str, tuple[dict[str, Any], float]]:
    """Every architecture of the supernet with a measured accuracy, uncapped:
    ``arch_hash -> (arch, accuracy)``, the latest evaluation of each. Only the
    three columns are loaded, so tens of thousands of trials stay cheap."""
    rows = session.execute(
        select(Trial.arch_hash, Trial.arch, Trial.accuracy)
        .where(
            Trial.supernet_id == supernet_id,
            Trial.accuracy.is_not(None),
            Trial.accuracy_source == "measured",
        )
        .order_by(Trial.id)
    )
    return {arch_hash: (arch, float(acc)) for arch_hash, arch, acc in rows}


@dataclass(frozen=True)
class SubnetAnswer:
    """A subnet in a query answer, with the provenance of each number."""

    trial_id: int
    arch: dict[str, Any]
    arch_hash: str
    accuracy: float
    accuracy_source: str
    latency_ms: float
    latency_source: str
    job_id: int | None
    #: Std of a predicted latency (the device model's uncertainty); None when
    #: measured or when the model gives none.
    latency_std_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "arch": self.arch,
            "arch_hash": self.arch_hash,
            "accuracy": self.accuracy,
            "accuracy_source": self.accuracy_source,
            "latency_ms": self.latency_ms,
            "latency_source": self.latency_source,
            "latency_std_ms": self.latency_std_ms,
            "job_id": self.job_id,
        }


def candidates(
    session: Session, supernet: Supernet, device: Device, scope: Scope | None = None
) -> list[SubnetAnswer]:
    """Every architecture with a measured accuracy and a latency on ``device``,
    one per architecture (the best-informed row), measured latencies first."""
    measured_latency: dict[str, float] = {}
    rows = session.execute(
        select(LatencyMeasurement.arch_hash, LatencyMeasurement.latency_ms).where(
            LatencyMeasurement.device_id == device.id,
            LatencyMeasurement.space_name == supernet.space_name,
        )
    )
    for arch_hash, ms in rows:
        # Several measurements of one architecture: keep the smallest run-to-run
        # noise-free estimate we have, the minimum of the stored medians.
        measured_latency[arch_hash] = min(ms, measured_latency.get(arch_hash, math.inf))
    query = select(Trial).where(
        Trial.supernet_id == supernet.id,
        Trial.accuracy.is_not(None),
        Trial.accuracy_source == "measured",
    )
    visible = visible_trials(scope)
    if visible is not None:
        query = query.where(visible)
    trials = session.scalars(query).all()
    best: dict[str, SubnetAnswer] = {}
    for t in trials:
        std: float | None = None
        if t.arch_hash in measured_latency:
            ms, source = measured_latency[t.arch_hash], "measured"
        elif t.device_id == device.id and t.latency_ms is not None:
            ms, source = t.latency_ms, t.latency_source or "predicted"
            std = t.latency_std_ms
        elif device.name in t.latencies:
            entry = t.latencies[device.name]
            ms, source = float(entry["ms"]), str(entry.get("source", "predicted"))
            std = None if entry.get("std_ms") is None else float(entry["std_ms"])
        else:
            continue
        assert t.accuracy is not None
        answer = SubnetAnswer(
            t.id,
            t.arch,
            t.arch_hash,
            t.accuracy,
            "measured",
            ms,
            source,
            t.job_id,
            std if source == "predicted" else None,
        )
        current = best.get(t.arch_hash)
        # The same arch evaluated by several jobs: keep the most recent evaluation.
        if current is None or t.id > current.trial_id:
            best[t.arch_hash] = answer
    return list(best.values())


def _records(pool: Sequence[SubnetAnswer], device: str) -> list[dict[str, Any]]:
    """Candidates as :mod:`nas.pareto` records (one device), in trial order, each
    carrying its answer so that the rule's choice maps back without a lookup."""
    return [
        {
            "answer": c,
            "trial_number": c.trial_id,
            "accuracy": c.accuracy,
            "latency_ms": {device: c.latency_ms},
            "latency_measured": {device: c.latency_source == "measured"},
            # A predicted latency's std: nas's rule then checks its upper bound.
            "latency_std_ms": {} if c.latency_std_ms is None else {device: c.latency_std_ms},
        }
        for c in sorted(pool, key=lambda c: c.trial_id)
    ]


def best_under_budget(
    session: Session,
    supernet: Supernet,
    device: Device,
    budget_ms: float,
    scope: Scope | None = None,
    *,
    feasibility_confidence: float | None = None,
) -> tuple[SubnetAnswer | None, list[SubnetAnswer]]:
    """The most accurate stored subnet within ``budget_ms`` on ``device``.

    Returns ``(best, closest)``: ``best`` is None when nothing stored meets the
    budget; ``closest`` then holds the stored subnets nearest to it. Both follow
    :func:`nas.pareto.best_under_budget`, the one definition of this answer; this
    function only gathers the candidates (stored measurements win over
    predictions, the latest evaluation of an architecture wins). A predicted
    latency stored with its std meets the budget only when its one-sided upper
    bound does (P(latency <= budget) >= ``feasibility_confidence``, default
    :data:`nas.constraints.DEFAULT_FEASIBILITY_CONFIDENCE`, the search's default).
    """
    from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE, Constraints
    from nas.pareto import best, closest

    if not math.isfinite(budget_ms) or budget_ms <= 0:
        raise ValueError(f"budget_ms must be positive, got {budget_ms}")
    records = _records(candidates(session, supernet, device, scope), device.name)
    constraints = Constraints({device.name: budget_ms})
    if feasibility_confidence is None:
        feasibility_confidence = DEFAULT_FEASIBILITY_CONFIDENCE
    kw: dict[str, Any] = {"device": device.name, "feasibility_confidence": feasibility_confidence}
    found = best(records, constraints, **kw)
    if found is not None:
        return found["answer"], []
    return None, [r["answer"] for r in closest(records, constraints, **kw)]


def pareto_front(
    session: Session, supernet: Supernet, device: Device, scope: Scope | None = None
) -> list[SubnetAnswer]:
    """Non-dominated subnets (higher accuracy, lower latency), fastest first, by
    :func:`nas.pareto.pareto_front`."""
    from nas.pareto import pareto_front as rule

    records = _records(candidates(session, supernet, device, scope), device.name)
    return [r["answer"] for r in rule(records, device.name)]


def best_answer(
    session: Session,
    supernet: Supernet,
    device: Device,
    budget_ms: float,
    scope: Scope | None = None,
    *,
    feasibility_confidence: float | None = None,
) -> dict[str, Any]:
    """:func:`best_under_budget` as the JSON the CLI and API return."""
    from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE

    if feasibility_confidence is None:
        feasibility_confidence = DEFAULT_FEASIBILITY_CONFIDENCE
    found, closest = best_under_budget(
        session, supernet, device, budget_ms, scope, feasibility_confidence=feasibility_confidence
    )
    return {
        "supernet": supernet.name,
        "device": device.name,
        "budget_ms": budget_ms,
        "feasibility_confidence": feasibility_confidence,
        "feasible": found is not None,
        "best": found.to_dict() if found else None,
        "closest": [c.to_dict() for c in closest],
    }
