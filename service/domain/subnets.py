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

from sqlalchemy import ColumnElement, func, insert, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
    "CandidatePoint",
    "JobTrials",
    "SubnetAnswer",
    "TrialIn",
    "best_answer",
    "best_under_budget",
    "bulk_record_trials",
    "candidate_points",
    "get_trial",
    "index_trial",
    "list_trials",
    "measured_accuracies",
    "pareto_front",
    "record_job_trials",
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
        for name, entry in (self.latencies or {}).items():
            _check_entry(name, entry)


def _check_entry(device: str, entry: Any) -> None:
    """One ``latencies`` entry: ``{"ms": > 0, "source": ..., "std_ms": >= 0}``."""
    if not isinstance(entry, dict) or "ms" not in entry:
        raise ValueError(f"latencies[{device!r}] must be an object with 'ms', got {entry!r}")
    ms, std = entry["ms"], entry.get("std_ms")
    if not isinstance(ms, int | float) or not math.isfinite(ms) or ms <= 0:
        raise ValueError(f"latencies[{device!r}].ms must be positive and finite, got {ms!r}")
    if entry.get("source", "predicted") not in SOURCES:
        raise ValueError(
            f"latencies[{device!r}].source must be one of {list(SOURCES)}, "
            f"got {entry.get('source')!r}"
        )
    if std is not None and (not isinstance(std, int | float) or not math.isfinite(std) or std < 0):
        raise ValueError(f"latencies[{device!r}].std_ms must be finite and >= 0, got {std!r}")


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
    own: dict[str, tuple[float | None, str | None, float | None, bool]] = {}
    for name, entry in (trial.latencies or {}).items():
        std = entry.get("std_ms")
        own[name] = (
            float(entry["ms"]),
            str(entry.get("source", "predicted")),
            None if std is None else float(std),
            False,
        )
    if primary_device is not None and trial.latency_ms is not None:
        own[primary_device] = (
            float(trial.latency_ms),
            trial.latency_source or "predicted",
            trial.latency_std_ms,
            True,
        )
    for name in measured:
        own.setdefault(name, (None, None, None, False))
    rows = []
    for name, (own_ms, own_source, own_std, primary) in own.items():
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
                # Only a prediction has a std (a measured latency is exact).
                "own_std_ms": own_std if own_source == "predicted" else None,
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


@dataclass(frozen=True)
class JobTrials:
    """What every trial of one search job shares, looked up once per job: what
    :func:`record_job_trials` would otherwise read for each trial."""

    job_id: int
    owner: str
    space_name: str
    #: The job's main device (the trials' own latency columns).
    device_name: str


def record_job_trials(session: Session, job: JobTrials, trials: Sequence[TrialIn]) -> int:
    """Store evaluations of ``job`` (a round's, or all of them when the job
    reconciles with its study) in a few statements whatever their number:
    architectures the job stored already are skipped, as :func:`record_trial`
    would, and returns how many were new. Every trial must belong to ``job``."""
    if any(t.job_id != job.job_id for t in trials):
        raise ValueError(f"record_job_trials: every trial must belong to job {job.job_id}")
    hashes = sorted({t.arch_hash for t in trials})
    if not hashes:
        return 0
    stored = set(
        session.scalars(
            select(Trial.arch_hash).where(Trial.job_id == job.job_id, Trial.arch_hash.in_(hashes))
        )
    )
    fresh: dict[str, TrialIn] = {}
    for t in trials:
        if t.arch_hash not in stored:
            fresh.setdefault(t.arch_hash, t)
    if not fresh:
        return 0
    measured: dict[str, dict[str, float]] = {}
    for arch_hash, name, ms in session.execute(
        select(LatencyMeasurement.arch_hash, Device.name, func.min(LatencyMeasurement.latency_ms))
        .join(Device, Device.id == LatencyMeasurement.device_id)
        .where(
            LatencyMeasurement.space_name == job.space_name,
            LatencyMeasurement.arch_hash.in_(list(fresh)),
        )
        .group_by(LatencyMeasurement.arch_hash, Device.name)
    ):
        measured.setdefault(arch_hash, {})[name] = float(ms)
    part = list(fresh.values())
    try:
        with session.begin_nested():
            ids = list(
                session.scalars(
                    insert(Trial).returning(Trial.id, sort_by_parameter_order=True),
                    [_trial_values(t) for t in part],
                )
            )
    except IntegrityError:
        # Another worker stored some of them meanwhile (a lease taken over
        # mid-round): one at a time, each idempotent.
        for t in part:
            record_trial(session, t)
        return len(part)
    rows: list[dict[str, Any]] = []
    for t, trial_id in zip(part, ids, strict=True):
        rows.extend(
            _latency_rows(t, trial_id, job.device_name, job.owner, measured.get(t.arch_hash, {}))
        )
    if rows:
        session.execute(insert(TrialLatency), rows)
    return len(part)


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
#: How many of the nearest subnets an infeasible budget answers with
#: (:func:`nas.pareto.closest`'s default).
N_CLOSEST = 3
#: Best under a budget reads this many of the fastest candidates first; when
#: they include every candidate within the budget it ranks those directly
#: (a tight budget would otherwise walk nearly every row by accuracy).
RANGE_PROBE = 64


# The candidate rule, written once, in SQL: per architecture, its latest
# visible trial with a latency on the device (a stored measurement already
# folded in by ``trial_latencies``, see ``TrialLatency``). The std counts only
# for a predicted latency (a measurement is exact). The covering indexes of
# ``trial_latencies`` answer it without reading a table row. Plain SQL text
# rather than expressions: building and compiling the expression tree cost
# more than running the query on 100,000 trials.
_POOL = """
SELECT r.trial_id, r.arch_hash, r.accuracy, r.latency_ms, r.source,
       CASE WHEN r.source = 'predicted' THEN r.own_std_ms END AS std_ms
FROM trial_latencies r
WHERE r.supernet_id = :supernet AND r.device_name = :device {visible_r}
  AND NOT EXISTS (
    SELECT 1 FROM trial_latencies n
    WHERE n.supernet_id = r.supernet_id AND n.device_name = r.device_name
      AND n.arch_hash = r.arch_hash AND n.trial_id > r.trial_id {visible_n})
"""
#: A scope that does not see everything sees its own trials and those outside any job.
_VISIBLE = "AND ({t}.owner = :owner OR {t}.owner IS NULL)"
#: :func:`nas.pareto.effective_latency`: what is checked against a budget.
_EFFECTIVE = "CASE WHEN std_ms IS NULL THEN latency_ms ELSE latency_ms + :z * std_ms END"


def _pool_sql(scope: Scope | None) -> str:
    """The candidates (rule above) as a subquery ``c`` to select from."""
    if scope is None or scope.sees_all:
        visible_r = visible_n = ""
    else:
        visible_r, visible_n = _VISIBLE.format(t="r"), _VISIBLE.format(t="n")
    return "(" + _POOL.format(visible_r=visible_r, visible_n=visible_n) + ") c"


def _pool_params(supernet: Supernet, device: Device, scope: Scope | None) -> dict[str, Any]:
    params: dict[str, Any] = {"supernet": supernet.id, "device": device.name}
    if scope is not None and not scope.sees_all:
        params["owner"] = scope.owner
    return params


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
            None if r.std_ms is None else float(r.std_ms),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class CandidatePoint:
    """A candidate (the rule of ``_POOL``) without its architecture: one point
    of a plot of the whole supernet on a device."""

    trial_id: int
    arch_hash: str
    accuracy: float
    latency_ms: float
    latency_source: str
    latency_std_ms: float | None


def candidate_points(
    session: Session, supernet: Supernet, device: Device, scope: Scope | None = None
) -> list[CandidatePoint]:
    """Every candidate on ``device`` (one per architecture), in trial order."""
    rows = session.execute(
        text(f"SELECT * FROM {_pool_sql(scope)} ORDER BY trial_id"),
        _pool_params(supernet, device, scope),
    )
    return [
        CandidatePoint(
            int(r.trial_id),
            r.arch_hash,
            float(r.accuracy),
            float(r.latency_ms),
            r.source,
            None if r.std_ms is None else float(r.std_ms),
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
    budget; ``closest`` then holds the :data:`N_CLOSEST` stored subnets nearest
    to it. This is :func:`nas.pareto.best` and :func:`nas.pareto.closest` (the
    one definition of this answer, tie-breaks included) written as indexed SQL
    over the candidates (``_POOL``); a property test holds the two equal. A
    predicted latency stored with its std meets the budget only when its
    one-sided upper bound does (P(latency <= budget) >= ``feasibility_confidence``,
    default :data:`nas.constraints.DEFAULT_FEASIBILITY_CONFIDENCE`, the search's
    default); a measured latency, or a predicted one without a std, exactly.
    """
    from nas.constraints import DEFAULT_FEASIBILITY_CONFIDENCE, confidence_z

    if not math.isfinite(budget_ms) or budget_ms <= 0:
        raise ValueError(f"budget_ms must be positive, got {budget_ms}")
    if feasibility_confidence is None:
        feasibility_confidence = DEFAULT_FEASIBILITY_CONFIDENCE
    pool = _pool_sql(scope)
    params = {
        **_pool_params(supernet, device, scope),
        # z >= 0: the bound is never below the reported latency.
        "z": confidence_z(feasibility_confidence),
        "budget": float(budget_ms),
        "n": N_CLOSEST,
    }
    # The fastest candidates by reported latency: when even the fastest is
    # over the budget nothing fits; the first N bound the nearest ones below.
    probe = max(N_CLOSEST, RANGE_PROBE)
    fastest = session.execute(
        text(
            f"SELECT latency_ms, {_EFFECTIVE} AS effective FROM {pool} "
            "ORDER BY latency_ms LIMIT :probe"
        ),
        {**params, "probe": probe},
    ).all()
    if not fastest:
        return None, []

    def probed(limit: float) -> bool:
        """Whether the probe read every candidate with latency_ms <= ``limit``."""
        return len(fastest) < probe or float(fastest[-1].latency_ms) > limit

    def within(limit: float) -> str:
        """The candidates with latency_ms <= ``limit`` (bound as :limit): when
        the probe read them all, as that short, ordered range of the latency
        index (a LIMIT the planner cannot misjudge: PostgreSQL, misestimating
        a 3-row range, hashed every row of the supernet and device instead)."""
        if probed(limit):
            return (
                f"(SELECT * FROM {pool} WHERE latency_ms <= :limit "
                "ORDER BY latency_ms LIMIT :probe) p"
            )
        return f"(SELECT * FROM {pool} WHERE latency_ms <= :limit) p"

    if float(fastest[0].latency_ms) <= budget_ms:
        # Feasible: violation max(0, effective / budget - 1) is 0, i.e.
        # effective <= budget (so latency_ms <= budget too). Few rows that
        # fast: rank them. Many: walk the accuracy index from the top; the
        # first feasible row is the answer. (No range on the reported latency
        # in the walk, although it would drop nothing feasible: it would lure
        # SQLite's planner onto the latency index and a sort of every row.)
        found = session.execute(
            text(
                f"SELECT * FROM {within(budget_ms) if probed(budget_ms) else pool} "
                f"WHERE {_EFFECTIVE} <= :budget "
                "ORDER BY accuracy DESC, latency_ms, trial_id LIMIT 1"
            ),
            {**params, "limit": float(budget_ms), "probe": probe},
        ).all()
        if found:
            return _answers(session, found)[0], []
    # Nothing fits: the nearest by violation (then accuracy, latency, trial
    # order). The N fastest reported latencies bound the N smallest effective
    # ones (effective >= reported), so only rows up to that bound are ranked;
    # a relative slack keeps rows whose violation rounds equal to the bound's.
    bound = max(float(r.effective) for r in fastest[:N_CLOSEST]) * (1 + 1e-9)
    near = session.execute(
        text(
            f"SELECT * FROM {within(bound)} "
            f"ORDER BY ({_EFFECTIVE}) / :budget - 1.0, accuracy DESC, latency_ms, trial_id "
            "LIMIT :n"
        ),
        {**params, "limit": bound, "probe": probe},
    ).all()
    return None, _answers(session, near)


def pareto_front(
    session: Session, supernet: Supernet, device: Device, scope: Scope | None = None
) -> list[SubnetAnswer]:
    """Non-dominated subnets (higher accuracy, lower latency), fastest first, by
    :func:`nas.pareto.pareto_front`. SQL reads the candidates in the rule's own
    order (latency, then higher accuracy, then trial order), keeping only those
    more accurate than the front so far; the rule then confirms the front
    among them. At most ``FRONT_PAGE`` + 1 rows are held at a time."""
    from nas.pareto import pareto_front as rule

    pool = _pool_sql(scope)
    remaining = f"SELECT * FROM {pool} WHERE latency_ms > :latency AND accuracy > :accuracy"
    # Along the latency index: the next page of candidates more accurate than
    # the front so far, past the last latency read (each entry read once).
    by_latency = text(remaining + " ORDER BY latency_ms, accuracy DESC, trial_id LIMIT :page")
    # Along the accuracy index: the candidates more accurate than the front so
    # far, when there are few of them (typical once the fastest page is read:
    # the scan along latency would then read every entry to find them).
    by_accuracy = text(remaining + " ORDER BY accuracy DESC, latency_ms, trial_id LIMIT :more")
    params = {**_pool_params(supernet, device, scope), "page": FRONT_PAGE, "more": FRONT_PAGE + 1}
    rows: list[Any] = []
    # Below every stored value (latencies are positive, accuracies percent).
    latency, accuracy = -1.0, -1.0
    tried_accuracy = False
    while True:
        at = {**params, "latency": latency, "accuracy": accuracy}
        if rows and not tried_accuracy:
            tried_accuracy = True
            rest = session.execute(by_accuracy, at).all()
            if len(rest) <= FRONT_PAGE:  # all of them: finish in the rule's order
                ordered = sorted(rest, key=lambda r: (r.latency_ms, -r.accuracy, r.trial_id))
                accuracy = _extend_front(rows, ordered, accuracy)
                break
        page = session.execute(by_latency, at).all()
        accuracy = _extend_front(rows, page, accuracy)
        if len(page) < FRONT_PAGE:
            break
        # The rows of the page's last latency not read yet are no more accurate
        # than the one read: none of them can join the front.
        latency = float(page[-1].latency_ms)
    rows.sort(key=lambda r: r.trial_id)
    records = _records(_answers(session, rows), device.name)
    return [r["answer"] for r in rule(records, device.name)]


def _extend_front(front: list[Any], ordered: Sequence[Any], accuracy: float) -> float:
    """Append to ``front`` the rows of ``ordered`` (by latency, then higher
    accuracy, then trial) more accurate than every one before them; returns the
    front's accuracy after them. The first row of a latency is its most
    accurate, earliest trial: it joins when it beats every faster one."""
    for r in ordered:
        if float(r.accuracy) > accuracy:
            accuracy = float(r.accuracy)
            front.append(r)
    return accuracy


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
