"""Evaluated subnets (trials) and the queries users ask of them.

"Best under B ms on device D" and the Pareto front are answered from stored
trials whose accuracy was *measured* (a real evaluation). A trial's latency may
be measured or predicted (by the device's latency model); a measured latency in
``latency_measurements`` for the same architecture and device takes precedence,
and every number in an answer says where it came from.
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

__all__ = [
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
        if self.accuracy is not None and not math.isfinite(self.accuracy):
            raise ValueError(f"accuracy must be finite, got {self.accuracy!r}")
        if self.latency_ms is not None:
            if not math.isfinite(self.latency_ms) or self.latency_ms <= 0:
                raise ValueError(f"latency_ms must be positive and finite, got {self.latency_ms!r}")
            if self.latency_source is None:
                raise ValueError(
                    "latency_source (measured or predicted) must be given with latency_ms"
                )


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
        latencies=trial.latencies or {},
        macs=trial.macs,
        params=trial.params,
        optuna_trial_number=trial.optuna_trial_number,
        details=trial.details or {},
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
        values = [
            {
                "job_id": t.job_id,
                "supernet_id": t.supernet_id,
                "device_id": t.device_id,
                "space_name": t.space_name,
                "arch": t.arch,
                "arch_hash": t.arch_hash,
                "accuracy": t.accuracy,
                "accuracy_source": t.accuracy_source,
                "latency_ms": t.latency_ms,
                "latency_source": t.latency_source,
                "latencies": t.latencies or {},
                "macs": t.macs,
                "params": t.params,
                "optuna_trial_number": t.optuna_trial_number,
                "details": t.details or {},
            }
            for t in part
        ]
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "arch": self.arch,
            "arch_hash": self.arch_hash,
            "accuracy": self.accuracy,
            "accuracy_source": self.accuracy_source,
            "latency_ms": self.latency_ms,
            "latency_source": self.latency_source,
            "job_id": self.job_id,
        }


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
        }
        for c in sorted(pool, key=lambda c: c.trial_id)
    ]


#: Relative slack of an index-friendly range filter that must keep every row
#: the rule's own arithmetic could rank first (a superset; the rule decides).
_SLACK = 1e-9
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
) -> tuple[SubnetAnswer | None, list[SubnetAnswer]]:
    """The most accurate stored subnet within ``budget_ms`` on ``device``.

    Returns ``(best, closest)``: ``best`` is None when nothing stored meets the
    budget; ``closest`` then holds the stored subnets nearest to it. Both are
    decided by :func:`nas.pareto.best_under_budget`, the one definition of this
    answer. SQL only narrows the candidates (indexed, a few rows) to a set that
    provably holds the rule's answer:

    * some candidate is feasible: every feasible candidate with the highest
      feasible accuracy (the rule takes the most accurate; ties are its call);
    * none is: every candidate whose violation is at most that of the third
      fastest (violation grows with latency; ties are again the rule's call).

    Feasibility is tested with the rule's arithmetic (``latency / budget <= 1``).
    """
    from nas.pareto import best_under_budget as rule

    if not math.isfinite(budget_ms) or budget_ms <= 0:
        raise ValueError(f"budget_ms must be positive, got {budget_ms}")
    cand = _pool(supernet, device, scope).subquery()
    # The rule's own arithmetic, deliberately not an index range: the planner
    # must then walk down the accuracy index and stop at the first feasible
    # row, instead of sorting every row under the budget.
    feasible = cand.c.latency_ms / budget_ms <= 1.0
    top = session.scalar(
        select(cand.c.accuracy).where(feasible).order_by(cand.c.accuracy.desc()).limit(1)
    )
    if top is not None:
        rows = session.execute(
            select(cand).where(feasible, cand.c.accuracy == top).order_by(cand.c.trial_id)
        ).all()
    else:
        fastest = session.execute(
            select(cand.c.latency_ms).order_by(cand.c.latency_ms, cand.c.trial_id).limit(3)
        ).all()
        if not fastest:
            return None, []
        third = float(fastest[-1].latency_ms)
        rows = session.execute(
            select(cand).where(cand.c.latency_ms <= third * (1 + _SLACK)).order_by(cand.c.trial_id)
        ).all()
    records = _records(_answers(session, rows), device.name)
    answer = rule(records, device.name, budget_ms)
    best = None if answer.best is None else answer.best["answer"]
    return best, [r["answer"] for r in answer.closest]


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
) -> dict[str, Any]:
    """:func:`best_under_budget` as the JSON the CLI and API return."""
    found, closest = best_under_budget(session, supernet, device, budget_ms, scope)
    return {
        "supernet": supernet.name,
        "device": device.name,
        "budget_ms": budget_ms,
        "feasible": found is not None,
        "best": found.to_dict() if found else None,
        "closest": [c.to_dict() for c in closest],
    }
