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
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from service.db import (
    SOURCES,
    Device,
    LatencyMeasurement,
    SearchJob,
    Supernet,
    Trial,
    TrialLatency,
)
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
    "bulk_record_trials",
    "get_trial",
    "index_trial",
    "list_trials",
    "measured_accuracies",
    "pareto_front",
    "record_trial",
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


def _trial_values(trial: TrialIn) -> dict[str, Any]:
    """The ``nas_trials`` columns of one evaluation, for :func:`record_trial` and
    :func:`bulk_record_trials` alike."""
    return {
        "job_id": trial.job_id,
        "supernet_id": trial.supernet_id,
        "device_id": trial.device_id,
        "space_name": trial.space_name,
        "arch": trial.arch,
        "arch_hash": trial.arch_hash,
        "accuracy": trial.accuracy,
        "accuracy_source": trial.accuracy_source,
        "latency_ms": trial.latency_ms,
        "latency_source": trial.latency_source,
        "latency_std_ms": trial.latency_std_ms,
        "latencies": trial.latencies or {},
        "macs": trial.macs,
        "params": trial.params,
        "optuna_trial_number": trial.optuna_trial_number,
        # Every stored accuracy is percent; the stamp is how migration 0004
        # tells rows written since from the fractions stored before it.
        "details": {**(trial.details or {}), ACCURACY_UNIT: "percent"},
    }


def record_trial(session: Session, trial: TrialIn) -> Trial:
    """Store an evaluation; idempotent per (job, architecture): a resumed job that
    re-reports an architecture gets the stored row back, never a duplicate."""
    if trial.job_id is not None:
        existing = session.scalar(
            select(Trial).where(Trial.job_id == trial.job_id, Trial.arch_hash == trial.arch_hash)
        )
        if existing is not None:
            return existing
    row = Trial(**_trial_values(trial))
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
    index_trial(session, row)
    return row


def _measured_by_device(session: Session, space_name: str, arch_hash: str) -> dict[str, float]:
    """Stored measurements of one architecture: device name -> smallest median."""
    rows = session.execute(
        select(Device.name, func.min(LatencyMeasurement.latency_ms))
        .join(Device, Device.id == LatencyMeasurement.device_id)
        .where(
            LatencyMeasurement.space_name == space_name,
            LatencyMeasurement.arch_hash == arch_hash,
        )
        .group_by(Device.name)
    )
    return {name: float(ms) for name, ms in rows}


def _latency_rows(
    trial: Trial | TrialIn,
    trial_id: int,
    primary_device: str | None,
    owner: str | None,
    measured: dict[str, float],
) -> list[dict[str, Any]]:
    """The ``trial_latencies`` rows of one trial (see ``TrialLatency``)."""
    if trial.accuracy is None or trial.accuracy_source != "measured" or trial.supernet_id is None:
        return []
    own: dict[str, tuple[float | None, str | None, bool]] = {}
    for name, entry in (trial.latencies or {}).items():
        own[name] = (float(entry["ms"]), str(entry.get("source", "predicted")), False)
    if primary_device is not None and trial.latency_ms is not None:
        own[primary_device] = (float(trial.latency_ms), trial.latency_source or "predicted", True)
    for name in measured:
        own.setdefault(name, (None, None, False))
    rows = []
    for name, (own_ms, own_source, primary) in own.items():
        m = measured.get(name)
        rows.append(
            {
                "trial_id": trial_id,
                "device_name": name,
                "supernet_id": trial.supernet_id,
                "arch_hash": trial.arch_hash,
                "accuracy": float(trial.accuracy),
                "latency_ms": m if m is not None else own_ms,
                "source": "measured" if m is not None else own_source,
                "own_ms": own_ms,
                "own_source": own_source,
                "is_primary": primary,
                "owner": owner,
            }
        )
    return rows


def index_trial(session: Session, row: Trial) -> None:
    """Write the trial's ``trial_latencies`` rows (its latency on every device
    it has one for, stored measurements winning)."""
    if row.accuracy is None or row.accuracy_source != "measured" or row.supernet_id is None:
        return
    supernet = session.get(Supernet, row.supernet_id)
    device = session.get(Device, row.device_id) if row.device_id is not None else None
    job = session.get(SearchJob, row.job_id) if row.job_id is not None else None
    measured = _measured_by_device(session, supernet.space_name, row.arch_hash) if supernet else {}
    rows = _latency_rows(
        row, row.id, device.name if device else None, job.owner if job else None, measured
    )
    if rows:
        session.execute(insert(TrialLatency), rows)


def bulk_record_trials(
    session: Session, trials: Sequence[TrialIn], *, chunk: int = 5000
) -> list[int]:
    """Store many evaluations at once (imports, benchmarks): multi-row inserts
    of the trials and their latency rows. Unlike :func:`record_trial` it does
    not deduplicate per (job, architecture): the caller vouches for that.
    Returns the new trial ids, in order."""
    device_names = dict(session.execute(select(Device.id, Device.name)).all())
    owners = dict(session.execute(select(SearchJob.id, SearchJob.owner)).all())
    spaces = dict(session.execute(select(Supernet.id, Supernet.space_name)).all())
    measured: dict[tuple[str, str, str], float] = {}
    for space, arch_hash, name, ms in session.execute(
        select(
            LatencyMeasurement.space_name,
            LatencyMeasurement.arch_hash,
            Device.name,
            LatencyMeasurement.latency_ms,
        ).join(Device, Device.id == LatencyMeasurement.device_id)
    ):
        key = (space, arch_hash, name)
        measured[key] = min(float(ms), measured.get(key, math.inf))
    by_arch: dict[tuple[str, str], dict[str, float]] = {}
    for (space, arch_hash, name), ms in measured.items():
        by_arch.setdefault((space, arch_hash), {})[name] = ms
    ids: list[int] = []
    for start in range(0, len(trials), chunk):
        part = trials[start : start + chunk]
        values = [_trial_values(t) for t in part]
        new_ids = list(
            session.scalars(insert(Trial).returning(Trial.id, sort_by_parameter_order=True), values)
        )
        rows: list[dict[str, Any]] = []
        for t, trial_id in zip(part, new_ids, strict=True):
            space_of = spaces.get(t.supernet_id) if t.supernet_id is not None else None
            rows.extend(
                _latency_rows(
                    t,
                    trial_id,
                    device_names.get(t.device_id) if t.device_id is not None else None,
                    owners.get(t.job_id) if t.job_id is not None else None,
                    by_arch.get((space_of, t.arch_hash), {}) if space_of else {},
                )
            )
        if rows:
            session.execute(insert(TrialLatency), rows)
        ids.extend(new_ids)
    return ids


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


#: Rows read per query while walking the Pareto front.
FRONT_PAGE = 256


def _visible_rows(table: Any, scope: Scope | None) -> ColumnElement[bool] | None:
    if scope is None or scope.sees_all:
        return None
    return or_(table.owner == scope.owner, table.owner.is_(None))


def _pool(supernet: Supernet, device: Device, scope: Scope | None) -> Select[Any]:
    """The candidate rows in SQL: per architecture, its latest visible trial
    with a latency on ``device`` (a stored measurement already folded in)."""
    row = TrialLatency
    newer = aliased(TrialLatency)
    later = exists().where(
        newer.supernet_id == row.supernet_id,
        newer.device_name == row.device_name,
        newer.arch_hash == row.arch_hash,
        newer.trial_id > row.trial_id,
    )
    query = select(row.trial_id, row.arch_hash, row.accuracy, row.latency_ms, row.source).where(
        row.supernet_id == supernet.id, row.device_name == device.name
    )
    visible = _visible_rows(row, scope)
    if visible is not None:
        query = query.where(visible)
        later = later.where(_visible_rows(newer, scope))  # type: ignore[arg-type]
    return cast("Select[Any]", query.where(~later))


def _answers(session: Session, rows: Sequence[Any]) -> list[SubnetAnswer]:
    """``SubnetAnswer`` for the few rows an answer needs (their arch loaded)."""
    if not rows:
        return []
    extra = {
        tid: (arch, job_id)
        for tid, arch, job_id in session.execute(
            select(Trial.id, Trial.arch, Trial.job_id).where(
                Trial.id.in_([r.trial_id for r in rows])
            )
        )
    }
    return [
        SubnetAnswer(
            r.trial_id,
            extra[r.trial_id][0],
            r.arch_hash,
            float(r.accuracy),
            "measured",
            float(r.latency_ms),
            r.source,
            extra[r.trial_id][1],
        )
        for r in rows
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
    :func:`nas.pareto.pareto_front`. SQL walks the front point by point (each
    the fastest candidate more accurate than the last, with every candidate
    equal to it), and the rule decides among those."""
    from nas.pareto import pareto_front as rule

    cand = _pool(supernet, device, scope).subquery()
    points: list[tuple[float, float]] = []
    latency, accuracy = -math.inf, -math.inf
    while True:
        # Candidates more accurate than the front so far, in latency order (a
        # range scan along the latency index), a page at a time: the walk
        # below keeps those that raise the front, and the next page starts
        # past the last latency seen, so each row is read at most once.
        page = session.execute(
            select(cand.c.latency_ms, cand.c.accuracy)
            .where(cand.c.latency_ms > latency, cand.c.accuracy > accuracy)
            .order_by(cand.c.latency_ms, cand.c.accuracy.desc())
            .limit(FRONT_PAGE)
        ).all()
        for lat, acc in page:
            if float(acc) > accuracy:  # the most accurate at its latency comes first
                accuracy = float(acc)
                points.append((float(lat), accuracy))
        if len(page) < FRONT_PAGE:
            break
        latency = float(page[-1].latency_ms)
    rows: list[Any] = []
    for start in range(0, len(points), 100):
        # Every candidate at a front point (equal latency and accuracy): which
        # of them the front keeps is the rule's call.
        at_point = [
            (cand.c.latency_ms == lat) & (cand.c.accuracy == acc)
            for lat, acc in points[start : start + 100]
        ]
        rows.extend(session.execute(select(cand).where(or_(*at_point))).all())
    rows.sort(key=lambda r: r.trial_id)
    records = _records(_answers(session, rows), device.name)
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
