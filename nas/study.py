"""The Optuna side of the search: one trial per real evaluation.

Layout of a study created here (what the service and other workers can rely on):

* directions: ``["maximize"]`` (accuracy) then ``"minimize"`` per device
  (latency in ms), in the order of ``study.user_attrs["hwnas:devices"]``;
* params: the space's flat categorical view (``space.choices()``), so Optuna's
  own samplers and visualisations understand the trials;
* one trial user attr, ``hwnas`` (a dict: one storage write instead of ten):
  ``arch`` (config dict), ``arch_str``, ``arch_hash``, ``macs``, ``params``,
  ``latency_measured`` ({device: bool}), ``source``, ``round`` (the loop round
  of the proposing run), ``duration_s``,
  ``predicted_accuracy`` / ``predicted_std`` (the predictor's estimate at
  proposal time, labelled), ``latency_std_ms`` ({device: std} where the
  latency model gives one); a failed evaluation adds ``error``;
* states: COMPLETE (a real evaluation), RUNNING (being evaluated), FAIL
  (``evaluate`` raised), PRUNED (a claim withdrawn unevaluated because another
  worker's earlier trial holds the same architecture; attr ``duplicate_of``);
* constraints via ``trial.set_constraint`` (relative violation, <= 0 feasible,
  on a predicted latency's one-sided bound when it has a std), so
  ``study.best_trials`` is the feasible Pareto front;
* study user attrs ``hwnas:space`` / ``hwnas:space_config`` / ``hwnas:devices``:
  a resumed search checks that it continues the same problem;
* study user attrs ``hwnas:latency:<arch_hash>``: a true latency measurement
  (``measure_latency``, :mod:`nas.verify`): ``{"latency_ms": {device: ms},
  "errors": {device: message}}``, one attr per architecture so that workers
  never overwrite each other's; their number is what the cap counts.

Why trials are created from a template rather than sampled: the loop chooses
the architecture itself and only needs Optuna to *record* it, and a trial
created whole (params and attrs in one transaction) is never seen half-written
by another worker. Enqueuing the choice instead would let another worker pop
it. A private sampler returning the chosen params remains for the one case
that goes through ``ask()``: popping trials that someone else enqueued.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from nas.records import Evaluation
from supernets.spaces import SearchSpace

__all__ = ["OpenTrial", "SearchStudy", "fail_running_trials", "make_storage"]

SPACE_ATTR = "hwnas:space"
SPACE_CONFIG_ATTR = "hwnas:space_config"
DEVICES_ATTR = "hwnas:devices"
TRIAL_ATTR = "hwnas"
LATENCY_ATTR_PREFIX = "hwnas:latency:"
_SCHEMA_RETRIES = 5


class _ChosenParamsSampler(BaseSampler):
    """Returns the params set by the loop just before ``study.ask``."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.params[param_name]


def _stale(trial: FrozenTrial, now: float, stale_after_s: float | None) -> bool:
    """A RUNNING trial older than ``stale_after_s`` is presumed dead (its worker
    stopped without closing it) and no longer holds its architecture."""
    if stale_after_s is None or trial.datetime_start is None:
        return False
    return now - trial.datetime_start.timestamp() > stale_after_s


def make_storage(
    storage: str | optuna.storages.BaseStorage | None,
) -> optuna.storages.BaseStorage | None:
    """RDB storage for a URL; SQLite gets a busy timeout so that a few local
    workers wait for the write lock instead of failing with "database is locked"."""
    if storage is None or not isinstance(storage, str):
        return storage
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if storage.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": 60}}
    # Workers starting together on a fresh database race to create Optuna's
    # schema (both insert its version row, or on PostgreSQL both create its enum
    # types and tables); the loser retries and finds it made.
    for attempt in range(_SCHEMA_RETRIES):
        try:
            return optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs)
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == _SCHEMA_RETRIES - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def fail_running_trials(storage: str | optuna.storages.BaseStorage, study_name: str) -> int:
    """Mark every RUNNING trial of study ``study_name`` as FAIL; returns how many
    (0 when the study does not exist).

    Only safe when nobody is evaluating in that study right now: the caller
    must know that every RUNNING trial was left by a worker that died (the
    service knows it for a job's study, which only the worker holding the job's
    lease works on). A failed trial's architecture is not proposed again by the
    loop. Uses Optuna's public API only (``Study.tell`` by trial number).
    """
    rdb = make_storage(storage)
    assert rdb is not None  # a URL or a storage object, never None here
    try:
        study = optuna.load_study(study_name=study_name, storage=rdb)
    except KeyError:
        return 0
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for frozen in running:
        study.tell(frozen.number, state=TrialState.FAIL)
    return len(running)


class OpenTrial:
    """A RUNNING trial opened by :meth:`SearchStudy.start`: its storage id and
    params, its number and Optuna ``Trial`` read only when asked for (reading a
    trial back costs several queries on an RDB storage; the usual evaluation
    needs neither until it completes, and then only the number)."""

    def __init__(
        self,
        study: optuna.Study,
        storage: optuna.storages.BaseStorage,
        trial_id: int,
        params: Mapping[str, Any],
        trial: optuna.Trial | None = None,
        number: int | None = None,
    ) -> None:
        self.study = study
        self.storage = storage
        self.trial_id = trial_id
        self.params = dict(params)
        self._trial = trial
        self._number = trial.number if trial is not None else number

    @property
    def number(self) -> int:
        if self._number is None:
            self._number = self.storage.get_trial_number_from_id(self.trial_id)
        return self._number

    @property
    def trial(self) -> optuna.Trial:
        """Optuna's handle of the trial (for the less common changes)."""
        if self._trial is None:
            self._trial = optuna.Trial(self.study, self.trial_id)
        return self._trial


class SearchStudy:
    """An Optuna study holding the real evaluations of one search problem."""

    def __init__(
        self,
        space: SearchSpace[Any],
        devices: Sequence[str],
        *,
        storage: str | optuna.storages.BaseStorage | None = None,
        study_name: str | None = None,
        exclusive: bool = False,
    ) -> None:
        self.space = space
        self.devices = list(devices)
        self._sampler = _ChosenParamsSampler()
        #: Whether others may add trials while this search runs: not to an
        #: in-memory study (it lives in this process only), nor to one the
        #: caller holds ``exclusive``ly (the service's job lease guarantees that).
        self.is_shared = (
            not exclusive
            and storage is not None
            and not isinstance(storage, optuna.storages.InMemoryStorage)
        )
        self.distributions: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(values) for name, values in space.choices().items()
        }
        # Kept: trials are created on it directly (see :meth:`start`).
        self._storage = make_storage(storage) or optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(
            storage=self._storage,
            study_name=study_name,
            sampler=self._sampler,
            directions=[StudyDirection.MAXIMIZE] + [StudyDirection.MINIMIZE] * len(self.devices),
            load_if_exists=True,
        )
        self._check_or_tag()
        self._study_id = self._storage.get_study_id_from_name(self.name)
        #: The number of the next trial, where only this search creates trials
        #: and it has read them (see :meth:`trials`); None: ask the storage.
        self._next_number: int | None = None

    @property
    def name(self) -> str:
        return self.study.study_name

    def _check_or_tag(self) -> None:
        attrs = self.study.user_attrs
        mine = {
            SPACE_ATTR: self.space.name,
            SPACE_CONFIG_ATTR: self.space.config(),
            DEVICES_ATTR: self.devices,
        }
        if SPACE_ATTR not in attrs:
            # SPACE_ATTR is the "tagged" marker, so it is written last: another
            # worker that sees it sees the rest too. Two new workers may both tag;
            # re-reading settles which problem won (the loser fails below).
            for key in (SPACE_CONFIG_ATTR, DEVICES_ATTR, SPACE_ATTR):
                self.study.set_user_attr(key, mine[key])
            attrs = self.study.user_attrs
        for key, value in mine.items():
            if attrs.get(key) != value:
                raise ValueError(
                    f"study {self.name!r} belongs to another search problem: its {key} is "
                    f"{attrs.get(key)!r}, this search has {value!r}"
                )

    # -- reading -------------------------------------------------------------------
    def trials(self) -> list[FrozenTrial]:
        trials = self.study.get_trials(deepcopy=False)
        if not self.is_shared:
            # Optuna numbers a study's trials 0, 1, 2... in creation order, and
            # nobody else creates any here: the next number is known.
            self._next_number = len(trials)
        return trials

    def record_of(self, trial: FrozenTrial) -> Evaluation | None:
        """The evaluation record of a COMPLETE trial (``None`` if it is not one of ours
        and its params do not describe an architecture of this space)."""
        if trial.state != TrialState.COMPLETE or trial.values is None:
            return None
        attrs = trial.user_attrs.get(TRIAL_ATTR, {})
        try:
            arch = self.space.validate(attrs["arch"]) if "arch" in attrs else None
            if arch is None:
                arch = self.space.from_params(trial.params)
        except (ValueError, KeyError, TypeError):
            return None
        values = list(trial.values)
        constraints = trial.constraints
        return Evaluation(
            arch=arch,
            arch_hash=attrs.get("arch_hash") or self.space.arch_hash(arch),
            accuracy=float(values[0]),
            latency_ms={d: float(v) for d, v in zip(self.devices, values[1:], strict=False)},
            latency_measured=dict(attrs.get("latency_measured", {})),
            macs=attrs.get("macs"),
            params=attrs.get("params"),
            violations={k: max(0.0, float(v)) for k, v in constraints.items()},
            trial_number=trial.number,
            study_name=self.name,
            source=attrs.get("source", "external"),
            round_no=attrs.get("round"),
            predicted_accuracy=attrs.get("predicted_accuracy"),
            predicted_std=attrs.get("predicted_std"),
            duration_s=attrs.get("duration_s"),
            latency_std_ms=dict(attrs.get("latency_std_ms", {})),
        )

    def pending_hashes(
        self, stale_after_s: float | None, trials: Sequence[FrozenTrial] | None = None
    ) -> set[str]:
        """Architectures other workers are evaluating right now (RUNNING trials
        younger than ``stale_after_s``; older ones are presumed dead). ``trials``:
        the study's trials just read (else they are read here)."""
        now = time.time()
        out = set()
        for trial in self._in_state(trials, TrialState.RUNNING):
            if _stale(trial, now, stale_after_s):
                continue
            h = trial.user_attrs.get(TRIAL_ATTR, {}).get("arch_hash")
            if h is None:
                try:
                    h = self.space.arch_hash(self.space.from_params(trial.params))
                except (ValueError, KeyError):
                    continue
            out.add(h)
        return out

    def failed_hashes(self, trials: Sequence[FrozenTrial] | None = None) -> set[str]:
        """Architectures whose evaluation raised (``trials`` as in :meth:`pending_hashes`)."""
        return {
            t.user_attrs[TRIAL_ATTR]["arch_hash"]
            for t in self._in_state(trials, TrialState.FAIL)
            if "arch_hash" in t.user_attrs.get(TRIAL_ATTR, {})
        }

    def _in_state(
        self, trials: Sequence[FrozenTrial] | None, state: TrialState
    ) -> list[FrozenTrial]:
        if trials is None:
            return self.study.get_trials(deepcopy=False, states=(state,))
        return [t for t in trials if t.state == state]

    # -- writing -------------------------------------------------------------------
    def start(
        self,
        arch: Any,
        attrs: Mapping[str, Any],
        violations: Mapping[str, float] | None = None,
    ) -> OpenTrial:
        """Open a RUNNING trial for ``arch`` (visible to other workers as pending).

        The trial is created with its params, ``hwnas`` attr and (given
        ``violations``) its constraints in one storage transaction, so no other
        worker ever sees it half-written and :meth:`finish` has little left to
        write; Optuna
        serialises trial creation per study (it locks the study row), so trial
        numbers follow creation order. :meth:`earlier_claim` relies on both.
        Trials someone enqueued are still honoured: while any is waiting,
        ``ask()`` pops it and the caller evaluates its params instead."""
        params = self.space.to_params(arch)
        if self.is_shared and self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            self._sampler.params = params
            trial = self.study.ask(self.distributions)
            trial.set_user_attr(TRIAL_ATTR, dict(attrs))
            if trial.params == params:  # not a popped trial with its own params
                for name, value in (violations or {}).items():
                    trial.set_constraint(name, float(value))
            trial_id = self._storage.get_trial_id_from_study_id_trial_number(
                self._study_id, trial.number
            )
            return OpenTrial(self.study, self._storage, trial_id, trial.params, trial)
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING,
            params=params,
            distributions=self.distributions,
            user_attrs={TRIAL_ATTR: dict(attrs)},
        )
        for name, value in (violations or {}).items():
            template.set_constraint(name, float(value))
        trial_id = self._storage.create_new_trial(self._study_id, template_trial=template)
        number = self._next_number
        if number is not None:
            self._next_number = number + 1
        return OpenTrial(self.study, self._storage, trial_id, params, number=number)

    def earlier_claim(
        self, trial: OpenTrial, arch_hash: str, stale_after_s: float | None
    ) -> int | None:
        """Number of an earlier live trial of the same architecture (COMPLETE, or
        RUNNING and younger than ``stale_after_s``), or None.

        Two workers that pick one architecture at the same moment both pass their
        pre-start check; afterwards, the one whose trial was created second always
        sees the first one's (creation is serialised and atomic, see :meth:`start`)
        and yields, while the first never sees an earlier rival and proceeds. So
        exactly one of them evaluates it."""
        now = time.time()
        live = self.study.get_trials(
            deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE)
        )
        for other in live:
            if other.number >= trial.number:
                continue
            if other.state == TrialState.RUNNING and _stale(other, now, stale_after_s):
                continue
            if other.user_attrs.get(TRIAL_ATTR, {}).get("arch_hash") == arch_hash:
                return other.number
        return None

    def withdraw(self, trial: OpenTrial, duplicate_of: int) -> None:
        """Close a trial that lost its architecture to an earlier one (PRUNED: it
        counts as neither an evaluation nor a failure)."""
        self.annotate(trial, duplicate_of=duplicate_of)
        self.study.tell(trial.trial, state=TrialState.PRUNED)

    @staticmethod
    def annotate(trial: OpenTrial, **extra: Any) -> None:
        """Add keys to the trial's ``hwnas`` attr (rewritten whole: one write)."""
        attrs = dict(trial.trial.user_attrs.get(TRIAL_ATTR, {}))
        attrs.update(extra)
        trial.trial.set_user_attr(TRIAL_ATTR, attrs)

    def finish(
        self,
        trial: OpenTrial,
        accuracy: float,
        latency_ms: Mapping[str, float],
        violations: Mapping[str, float] | None = None,
        duration_s: float | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> int:
        """Complete ``trial``; returns its number. ``violations``: constraints
        not given to :meth:`start`. ``attrs``: the trial's ``hwnas`` attr as
        :meth:`start` wrote it (spares reading it back to add ``duration_s``).

        Written through the storage directly: ``Study.tell`` would read the
        whole trial back twice (a dozen queries on an RDB storage) for checks
        that hold here (a RUNNING trial of ours, finite values) and for a
        sampler hook the loop's own sampler does not use."""
        if duration_s is not None:  # the evaluation alone, not the trial's bookkeeping
            if attrs is None:
                self.annotate(trial, duration_s=duration_s)
            else:
                attrs = {**attrs, "duration_s": duration_s}
                self._storage.set_trial_user_attr(trial.trial_id, TRIAL_ATTR, attrs)
        for name, value in (violations or {}).items():
            trial.trial.set_constraint(name, float(value))
        values = [float(accuracy)] + [float(latency_ms[d]) for d in self.devices]
        if not all(math.isfinite(v) for v in values):
            self.study.tell(trial.trial, values)  # Optuna's own handling (it fails the trial)
        else:
            self._storage.set_trial_state_values(trial.trial_id, TrialState.COMPLETE, values)
        return trial.number

    def latency_measurements(self) -> dict[str, dict[str, Any]]:
        """``{arch_hash: measurement}`` of every stored latency measurement."""
        n = len(LATENCY_ATTR_PREFIX)
        return {
            key[n:]: dict(value)
            for key, value in self.study.user_attrs.items()
            if key.startswith(LATENCY_ATTR_PREFIX) and isinstance(value, Mapping)
        }

    def record_latency(self, arch_hash: str, measurement: Mapping[str, Any]) -> None:
        """Store one architecture's latency measurement (JSON-able)."""
        self.study.set_user_attr(LATENCY_ATTR_PREFIX + arch_hash, dict(measurement))

    def fail(self, trial: OpenTrial, error: BaseException) -> None:
        self.annotate(trial, error=f"{type(error).__name__}: {error}"[:2000])
        self.study.tell(trial.trial, state=TrialState.FAIL)
