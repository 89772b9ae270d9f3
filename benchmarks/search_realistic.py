"""Search under a latency budget with fair baselines: exact-table and realistic mode.

Problem: NAS-Bench-201 CIFAR-10 accuracy (bundled table) under a latency
budget on one HELP device, budgets at its 10th, 25th, 50th and 75th latency
percentile; the oracle is the best accuracy under the budget in the table.
Every real evaluation is one table lookup and is counted.

Every method gets the same latency information (:class:`LatencyInfo`, one
object per task, handed to each method; its fingerprint is stored per row):

* ``exact`` mode: the device's table. ``random`` draws from the feasible cells
  only; ``tpe`` / ``nsga2`` (Optuna) have an infeasible proposal cost no
  evaluation and reveal nothing (told to Optuna as a constraint violation
  with a placeholder value), capped at 50x the evaluation budget in
  proposals; ``ours`` is ``nas.run_search`` on the table.
* ``realistic`` mode: only the few-shot latency model (the meta-learned
  predictor adapted with the device's 10 reference measurements) and at most
  10 true measurements. ``ours``: ``run_search(..., measure_latency=,
  max_latency_measurements=10)``, one search per checkpoint. A baseline
  searches with the model's predicted latency as its constraint, then
  measures its most accurate predicted-feasible evaluated cells in order and
  answers with the best one that truly fits (at most 10 measurements per
  checkpoint, as if that search had stopped there). Answers over the true
  budget are misses; "evaluations to reach oracle - 0.2" counts only verified
  answers, on the checkpoint grid (a method is credited with the first
  checkpoint whose answer reaches it).

Roles (the protocol; ``tests/nas/test_search_realistic_benchmark.py`` guards it):

* ``--role report`` runs HELP's six meta-test devices only, with the shipped
  latency meta-model (meta-trained on HELP's train devices);
* ``--role tune`` (for choosing defaults) runs HELP's train devices only; its
  device tables hold no meta-test device, and in realistic mode its latency
  meta-model is meta-trained without the device being tuned on.

Runs are cached in ``benchmarks/results/search_realistic_runs.jsonl`` (one line
per task: an interrupted run resumes) and can be split across sittings with
``--shard i/n`` and ``--max-tasks``; tasks run seed by seed, so a partial run
covers every device, budget and method for its first seeds. Each row records
the fingerprint of the latency information it ran under; a row whose
fingerprint is not what the code gives now (the latency model or a table
changed) is stale: it stays in the file as a record, the report tables it
apart, and a resumed run redoes its task. In realistic mode the fingerprint
is a digest of what the model is made from (:func:`realistic_digest`), not
of its predictions, which differ in the last digits from one machine to the
next; rows made before that change carry the old digest in
``latency_info_predictions``. Runs of the loop (``ours`` and its tuning
variants) also record a digest of the loop's settings (``loop``,
:func:`loop_fingerprint`): a run made under other settings (or before the
digest was kept) is stale in the same way.

Cost. The Optuna baselines cost O(proposals^2): every ask and tell is
O(trials) inside Optuna, and every free infeasible proposal is a trial. Under
cProfile, TPE on raspi4 p10 (realistic mode; 4,497 proposals for 400
evaluations) spent 99% of its time in ``TPESampler.sample_relative`` (45%
splitting the trials, mostly rebuilding each trial's constraint values; 37%
building the Parzen estimators) and under 1% in this wrapper; NSGA-II (exact
mode, raspi4 p10, 200 evaluations, 2,149 proposals) 85% in ``Study.ask``
(``get_trial_generation`` alone 39%) and 10% in finishing trials. Exact and
realistic mode run the same code; only the predicted latencies differ. In
the one realistic p10 run so far, NSGA-II reached the cap of 50x the budget
(20,000 proposals) before its 400th distinct evaluation. The wrapper keeps its own share small (it
asks with fixed distributions, maps parameters to cells through a table
built once, finishes trials without ``Study.tell``'s deep copy of each, and
builds a device's latency information once per process), which leaves the
answers unchanged; the sampler's own cost is what remains. Wall time per
task on the shared 2-core VM at load 15-19 (each process got about 7% of a
core): ``ours`` 100-150 s in realistic mode, ``random`` under a second,
``tpe`` 2-4 minutes at p25-p75 and far longer at p10. Run the Optuna
baselines in their own shards (``--methods tpe``, ``--shard i/3`` balances
the budgets). Usage::

    nice python benchmarks/search_realistic.py --mode realistic --seeds 10 --methods ours random
    nice python benchmarks/search_realistic.py --mode realistic --seeds 10 --methods tpe --shard 0/3
    nice python benchmarks/search_realistic.py --mode exact --seeds 20 --shard 0/4
    python benchmarks/search_realistic.py --summary-only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

if TYPE_CHECKING:
    from supernets.spaces import Arch

RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "search_realistic_runs.jsonl"
META_TEST = ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss")
QUANTILES = (10, 25, 50, 75)
METHODS = ("ours", "random", "tpe", "nsga2")
MODES = ("exact", "realistic")
TOLERANCE = 0.2
#: Real evaluations at which answers are read (realistic mode: one search each
#: for ``ours``; regret is reported at 100).
CHECKPOINTS = (10, 25, 50, 100, 200, 400)
#: ``ours``: one search of this many evaluations in exact mode (its history
#: gives every checkpoint); in realistic mode one search per checkpoint up to
#: ``OURS_MAX_EVALS`` (the targets are read at 100), later checkpoints unanswered.
OURS_EXACT_EVALS = 400
OURS_MAX_EVALS = 100
BASELINE_MAX_EVALS = 400
#: Tuning variants of ``ours`` (``--role tune`` only), as ``SearchSettings``
#: fields: ``ours@C`` one confidence ``C`` for exploring and answering (what
#: the chance constraint costs in reach); ``ours@vC`` the defaults but
#: exploring at ``C`` under measured verification (below 0.5 optimistic);
#: ``ours@best`` the earlier measurement rule (the best under the exploring
#: bound, then the next best) with a correction common to all architectures.
OURS_VARIANTS: Mapping[str, Mapping[str, Any]] = {
    **{
        f"ours@{c:g}": {"feasibility_confidence": c, "verified_feasibility_confidence": None}
        for c in (0.75, 0.6, 0.5)
    },
    **{f"ours@v{c:g}": {"verified_feasibility_confidence": c} for c in (0.5, 0.2)},
    "ours@best": {
        "verified_feasibility_confidence": 0.5,
        "measurement_choice": "best",
        "correction_common_share": 1.0,
    },
}
MEASURE_CAP = 10
PROPOSAL_FACTOR = 50


# -- the protocol: which devices a role may read ---------------------------------------
def role_devices(role: str) -> tuple[str, ...]:
    """Devices a role may run on (HELP's split)."""
    from supernets.tables import nb201_split

    split = nb201_split()
    if tuple(split.test) != META_TEST:
        raise AssertionError(f"HELP's meta-test devices changed: {split.test}")
    if role == "report":
        return META_TEST
    if role == "tune":
        return tuple(split.train)
    raise ValueError(f"role must be 'report' or 'tune', got {role!r}")


def readable_table(role: str) -> dict[str, np.ndarray]:
    """The latency tables a role may read: ``{device: latency by table row}``.
    The tuning role's copy holds no meta-test device at all."""
    from supernets.tables import nb201_latency

    table = nb201_latency()
    allowed = set(role_devices(role))
    if role == "tune":
        allowed -= set(META_TEST)
    return {d: np.asarray(table.latency[d]) for d in table.latency if d in allowed}


def meta_source_devices(role: str, device: str) -> tuple[str, ...]:
    """Devices the realistic mode's latency meta-model is trained on."""
    from supernets.tables import nb201_split

    train = tuple(nb201_split().train)
    if role == "report":
        return train
    return tuple(d for d in train if d != device)  # the tuning device is left out


class Problem:
    """One device's table problem, read through a role's allowed tables."""

    def __init__(self, role: str, device: str) -> None:
        from nas import TabularEvaluator
        from supernets.tables import nb201_latency

        if device not in role_devices(role):
            raise ValueError(f"role {role!r} may not run on device {device!r}")
        tables = readable_table(role)
        self.role, self.device = role, device
        self.evaluator = TabularEvaluator()
        self.space = self.evaluator.space
        # Table rows -> official index (the table's own order).
        ids = np.asarray(nb201_latency().arch_ids)
        lat = np.empty(len(ids))
        lat[ids] = tables[device]
        self.lat = lat  # by official index
        self.acc = self.evaluator.all_accuracy

    def index(self, arch: Arch) -> int:
        """Official index of an architecture a search returned."""
        return self.space.index(self.space.validate(arch.to_dict()))

    def budget(self, q: float) -> float:
        return float(np.percentile(self.lat, q))

    def oracle(self, budget: float) -> float:
        return float(self.acc[self.lat <= budget].max())


@cache
def problem(role: str, device: str) -> Problem:
    return Problem(role, device)


@cache
def meta_model(role: str, device: str) -> Any:
    """The latency meta-model of the realistic mode (see :func:`meta_source_devices`)."""
    from predictors.latency import MetaLatencyPredictor, load_pretrained
    from predictors.latency.pretrained import meta_training_data

    sources = meta_source_devices(role, device)
    if role == "report":
        meta = load_pretrained("nb201")
        if set(meta.metadata["meta_train"]["devices"]) & set(META_TEST):
            raise AssertionError("the shipped meta-model has seen a meta-test device")
        return meta
    _, _, X, Y = meta_training_data("nb201", devices="train")
    return MetaLatencyPredictor(seed=0).fit(X, {d: Y[d] for d in sources})


# -- the latency information every method gets ----------------------------------------
class Measurer:
    """True latency measurements of one method's search, capped (distinct cells)."""

    def __init__(self, info: LatencyInfo, cap: int) -> None:
        self.info, self.cap = info, cap
        self.measured: dict[int, float] = {}

    def __call__(self, arch: Any) -> float:
        i = self.info.problem.space.index(arch)
        if i not in self.measured:
            if len(self.measured) >= self.cap:
                raise RuntimeError(f"measurement cap of {self.cap} reached")
            self.measured[i] = float(self.info.problem.lat[i])
        return self.measured[i]


class LatencyInfo:
    """What every method of a task may know about the device's latency: a model
    (``predicted``, by official index, and the object the loop is given) and a
    capped measurer (realistic mode)."""

    def __init__(self, mode: str, p: Problem) -> None:
        self.mode, self.problem = mode, p
        if mode == "exact":
            self.model: Any = _TableModel(p)
            self.cap = 0
        elif mode == "realistic":
            meta = meta_model(p.role, p.device)
            X_ref = meta.reference_features
            refs = [p.space.index(p.space.decode(x)) for x in X_ref]
            self.model = meta.adapt(X_ref, p.lat[refs], device=p.device)
            self.cap = MEASURE_CAP
        else:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "exact":
            self.predicted = p.lat.copy()
            digest = hashlib.sha1(np.round(self.predicted, 6).tobytes()).hexdigest()
        else:
            X = p.space.encode_many(p.space.all_archs())  # by official index
            self.predicted = np.asarray(self.model.predict(X), dtype=np.float64)
            digest = realistic_digest(p, refs)
        self.fingerprint = f"{mode}:{p.device}:{digest[:12]}"

    def measurer(self) -> Measurer:
        return Measurer(self, self.cap)


def realistic_digest(p: Problem, refs: Sequence[int]) -> str:
    """What realistic mode's latency model is made from, as a digest: the
    meta-model (the shipped file, or the data a tuning meta-model is trained
    on), the device's reference latencies, and the source of the model code.

    Not a digest of the predictions: the same model adapted on another
    machine predicts within float rounding of the same values, which a digest
    of rounded numbers tells apart (every run would turn stale on a new VM).
    Any change to the inputs or to the code still makes older runs stale."""
    import inspect

    import predictors.latency.meta as meta_code
    from predictors.latency.pretrained import meta_training_data, pretrained_bytes

    h = hashlib.sha1()
    if p.role == "report":  # what load_pretrained("nb201") reads
        h.update(pretrained_bytes("nb201"))
    else:
        _, _, X, Y = meta_training_data("nb201", devices="train")
        h.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
        for d in meta_source_devices(p.role, p.device):
            h.update(d.encode() + np.ascontiguousarray(Y[d], dtype=np.float64).tobytes())
    h.update(np.asarray(refs, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(p.lat[list(refs)], dtype=np.float64).tobytes())
    h.update(inspect.getsource(meta_code).encode())
    return h.hexdigest()


@cache
def latency_info(role: str, mode: str, device: str) -> LatencyInfo:
    """A task's latency information. It depends on role, mode and device only
    (adapting the model involves no seed), so every method and seed run by one
    process shares it: the model is adapted and all cells predicted once."""
    return LatencyInfo(mode, problem(role, device))


class _TableModel:
    """The exact table as a latency model (measured numbers)."""

    measured = True

    def __init__(self, p: Problem) -> None:
        self.p = p
        self.device = p.device

    def predict_archs(self, archs: Sequence[Any]) -> np.ndarray:
        return self.p.lat[[self.p.space.index(a) for a in archs]]


# -- methods: each returns {checkpoint: answer index or None}, and what it cost ----------
Answers = dict[int, int | None]


def _verified(p: Problem, info: LatencyInfo, order: Sequence[int], budget: float) -> int | None:
    """A baseline's answer after evaluating ``order``: exact mode, the best truly
    feasible; realistic mode, its predicted-feasible cells by accuracy, measured
    in order (at most the cap), the first that truly fits."""
    if info.mode == "exact":
        feas = [i for i in order if p.lat[i] <= budget]
        return max(feas, key=lambda i: (p.acc[i], -i)) if feas else None
    cands = sorted(
        (i for i in set(order) if info.predicted[i] <= budget), key=lambda i: (-p.acc[i], i)
    )
    measure = info.measurer()
    for i in cands[: info.cap]:
        if measure(p.space.from_index(i)) <= budget:
            return i
    return None


def run_random(p: Problem, info: LatencyInfo, budget: float, seed: int) -> tuple[Answers, int]:
    feasible = np.flatnonzero(info.predicted <= budget)
    order = [int(i) for i in np.random.default_rng(seed).permutation(feasible)]
    return {n: _verified(p, info, order[:n], budget) for n in CHECKPOINTS}, len(order)


@cache
def optuna_space(p: Problem) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """The Optuna baselines' search space, built once per problem: one
    categorical distribution per choice (the trial is asked with all of them
    at once) and a map from a trial's parameter values to the official index."""
    from optuna.distributions import CategoricalDistribution

    choices = p.space.choices()
    distributions = {k: CategoricalDistribution(v) for k, v in choices.items()}
    index_of = {}
    for i, arch in enumerate(p.space.all_archs()):
        params = p.space.to_params(arch)
        index_of[tuple(params[k] for k in choices)] = i
    return distributions, index_of


def optuna_search(
    p: Problem, info: LatencyInfo, budget: float, seed: int, sampler_name: str
) -> tuple[Any, list[int]]:
    """A TPE / NSGA-II search under the shared latency information: the study
    (every proposal is one of its trials) and the distinct cells it evaluated,
    in order."""
    import optuna
    from optuna.study._tell import _tell_with_warning

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.TPESampler(seed=seed)
        if sampler_name == "tpe"
        else optuna.samplers.NSGAIISampler(seed=seed)
    )
    # In-memory storage (no URL): the study lives only as long as the task.
    study = optuna.create_study(direction="maximize", sampler=sampler)
    distributions, index_of = optuna_space(p)
    predicted = info.predicted
    order: list[int] = []
    seen: set[int] = set()
    proposals = 0
    while len(order) < BASELINE_MAX_EVALS and proposals < PROPOSAL_FACTOR * BASELINE_MAX_EVALS:
        proposals += 1
        # Asking with the fixed distributions samples exactly what one
        # suggest_categorical per choice would, in one call.
        trial = study.ask(distributions)
        params = trial.params
        i = index_of[tuple(params[k] for k in distributions)]
        violation = float(predicted[i]) - budget
        trial.set_constraint("latency", violation)
        if violation > 0:
            # Infeasible by the shared latency information: no evaluation, and
            # the accuracy stays unknown (a placeholder value; infeasible trials
            # are ranked by their violation, not their value).
            _tell_with_warning(study, trial, 0.0)
            continue
        # Finished as Study.optimize finishes a trial: Study.tell would also
        # deep-copy the finished trial to return it, unused here.
        _tell_with_warning(study, trial, float(p.acc[i]))  # a repeat: from a cache
        if i not in seen:
            seen.add(i)
            order.append(i)
    return study, order


def run_optuna(
    p: Problem, info: LatencyInfo, budget: float, seed: int, sampler_name: str
) -> tuple[Answers, int]:
    study, order = optuna_search(p, info, budget, seed, sampler_name)
    proposals = len(study.get_trials(deepcopy=False))
    return {n: _verified(p, info, order[:n], budget) for n in CHECKPOINTS}, proposals


def loop_settings(method: str) -> Any:
    """The ``SearchSettings`` an ``ours`` method runs with: the defaults, or a
    tuning variant's (:data:`OURS_VARIANTS`)."""
    from nas import SearchSettings

    if method == "ours":
        return SearchSettings()
    if method in OURS_VARIANTS:
        return SearchSettings(**OURS_VARIANTS[method])
    raise ValueError(f"{method!r} is not the loop or one of its variants")


def is_loop(method: str) -> bool:
    """``ours`` or one of its tuning variants (not a baseline)."""
    return method == "ours" or method in OURS_VARIANTS


#: ``SearchSettings`` fields that act only when the loop measures latencies
#: during a search. Exact mode gives the loop no measuring callable, so they do
#: not enter its digest.
MEASUREMENT_FIELDS = (
    "verified_feasibility_confidence",
    "measurement_choice",
    "correction_common_share",
    "correction_length_scale",
)


def loop_fingerprint(method: str, mode: str = "realistic") -> str | None:
    """A digest of the loop's settings for an ``ours`` method in ``mode`` (None
    for a baseline): a run made under other settings is stale."""
    if not is_loop(method):
        return None
    settings = loop_settings(method)
    omit = MEASUREMENT_FIELDS if mode == "exact" else ()
    # The dataclass's own repr, less the omitted fields.
    shown = ", ".join(
        f"{f.name}={getattr(settings, f.name)!r}" for f in fields(settings) if f.name not in omit
    )
    text = f"{type(settings).__name__}({shown})"
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def run_ours(
    p: Problem, info: LatencyInfo, budget: float, seed: int, method: str = "ours"
) -> tuple[Answers, int]:
    """``nas.run_search`` with :func:`loop_settings` of ``method``."""
    import optuna

    from nas import run_search

    settings = loop_settings(method)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    answers: Answers = {}
    if info.mode == "exact":
        result = run_search(
            p.space, p.evaluator, info.model, budget, OURS_EXACT_EVALS, seed=seed,
            settings=settings,
        )  # fmt: skip
        order = [p.index(a) for a, _, _ in result.history]
        return {n: _verified(p, info, order[:n], budget) for n in CHECKPOINTS}, len(order)
    spent = 0
    for n in CHECKPOINTS:
        if n > OURS_MAX_EVALS:
            answers[n] = None
            continue
        result = run_search(
            p.space,
            p.evaluator,
            {p.device: info.model},
            budget,
            n,
            seed=seed,
            measure_latency=info.measurer(),
            max_latency_measurements=info.cap,
            settings=settings,
        )
        spent += len(result.evaluations)
        answers[n] = None if result.best is None else p.index(result.best)
    return answers, spent


METHOD_FNS: Mapping[str, Callable[[Problem, LatencyInfo, float, int], tuple[Answers, int]]] = {
    "ours": run_ours,
    **{name: partial(run_ours, method=name) for name in OURS_VARIANTS},
    "random": run_random,
    "tpe": lambda p, info, b, s: run_optuna(p, info, b, s, "tpe"),
    "nsga2": lambda p, info, b, s: run_optuna(p, info, b, s, "nsga2"),
}


def run_task(role: str, mode: str, device: str, q: int, method: str, seed: int) -> dict[str, Any]:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    p = problem(role, device)
    info = latency_info(role, mode, device)
    budget, t0 = p.budget(q), time.perf_counter()
    loop = loop_fingerprint(method, mode)
    answers, cost = METHOD_FNS[method](p, info, budget, seed)
    oracle = p.oracle(budget)
    rows = {}
    for n, i in answers.items():
        rows[str(n)] = (
            None
            if i is None
            else {"acc": float(p.acc[i]), "lat": float(p.lat[i]), "over": bool(p.lat[i] > budget)}
        )
    return {
        "role": role,
        "mode": mode,
        "device": device,
        "q": q,
        "method": method,
        "seed": seed,
        "budget_ms": budget,
        "oracle": oracle,
        "answers": rows,
        # ours: real evaluations over its searches; random: predicted-feasible
        # cells it draws from; tpe / nsga2: Optuna proposals (free ones included).
        "cost": cost,
        "latency_info": info.fingerprint,
        **({} if loop is None else {"loop": loop}),
        "seconds": round(time.perf_counter() - t0, 2),
    }


# -- diagnosis: what each feasibility rule leaves reachable ------------------------------
def reachable_gaps(role: str, device: str, confidence: float) -> dict[int, tuple[float, float]]:
    """Realistic mode, per budget percentile: the oracle minus the best truly
    feasible accuracy among the cells the adapted model calls feasible, by
    its point prediction and by the chance constraint (upper bound at
    ``confidence``). A search restricted to the latter cannot do better."""
    from nas.constraints import confidence_z

    p = problem(role, device)
    model = latency_info(role, "realistic", device).model
    mean, std = model.predict_with_uncertainty(p.space.encode_many(p.space.all_archs()))
    upper = np.asarray(mean) + confidence_z(confidence) * np.asarray(std)
    out = {}
    for q in QUANTILES:
        budget = p.budget(q)
        fits = p.lat <= budget
        gaps = []
        for rule in (np.asarray(mean) <= budget, upper <= budget):
            ok = rule & fits
            gaps.append(p.oracle(budget) - (float(p.acc[ok].max()) if ok.any() else 0.0))
        out[q] = (gaps[0], gaps[1])
    return out


def reachable_table(role: str, devices: Sequence[str], confidence: float) -> str:
    lines = [
        f"Oracle minus the best reachable accuracy: point prediction / upper bound at {confidence}",
        "",
        "| device | " + " | ".join(f"p{q}" for q in QUANTILES) + " |",
        "|---|" + "---|" * len(QUANTILES),
    ]
    for d in devices:
        gaps = reachable_gaps(role, d, confidence)
        cells = [f"{a:.2f} / {b:.2f}" for a, b in (gaps[q] for q in QUANTILES)]
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- tasks, cache, shards -------------------------------------------------------------
def task_key(t: Sequence[Any]) -> str:
    return "/".join(str(x) for x in t)


def tasks(
    role: str,
    modes: Sequence[str],
    devices: Sequence[str],
    methods: Sequence[str],
    seeds: Mapping[str, int],
    quantiles: Sequence[int] = QUANTILES,
) -> list[tuple[Any, ...]]:
    # Seed-major: a run stopped part-way has covered every device, budget and
    # method for its first seeds, not every seed of its first devices.
    return [
        (role, mode, dev, q, m, s)
        for mode in modes
        for s in range(seeds[mode])
        for dev in devices
        for q in quantiles
        for m in methods
    ]


def load_rows(path: Path) -> list[dict[str, Any]]:
    """Every stored run, in the order written."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _row_key(r: Mapping[str, Any]) -> str:
    return task_key((r["role"], r["mode"], r["device"], r["q"], r["method"], r["seed"]))


def load_runs(path: Path) -> dict[str, dict[str, Any]]:
    """The last stored run of each task."""
    return {_row_key(r): r for r in load_rows(path)}


def current(
    rows: Sequence[dict[str, Any]], role: str
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """``role``'s stored runs split into those made with the latency information
    and (for the loop) the settings the code gives now (the last one per task)
    and the stale ones (the latency model, a table or the loop's settings
    changed since they ran). Stale runs stay in the file as a record, are
    compared only with each other, and their tasks run again."""
    fresh: dict[str, dict[str, Any]] = {}
    stale: list[dict[str, Any]] = []
    for r in rows:
        if r["role"] != role:
            continue
        info = latency_info(role, r["mode"], r["device"]).fingerprint
        if r["latency_info"] == info and r.get("loop") == loop_fingerprint(r["method"], r["mode"]):
            fresh[_row_key(r)] = r
        else:
            stale.append(r)
    return fresh, stale


# -- summary ------------------------------------------------------------------------------
def _limit(mode: str, method: str) -> int:
    """The last checkpoint a method answers at (later ones are unanswered)."""
    if is_loop(method):
        return OURS_MAX_EVALS if mode == "realistic" else min(OURS_EXACT_EVALS, max(CHECKPOINTS))
    return min(BASELINE_MAX_EVALS, max(CHECKPOINTS))


def _reach(r: dict[str, Any]) -> float:
    """Evaluations at which a run first gave a verified answer within
    ``TOLERANCE`` of the oracle (inf: never, by its last checkpoint)."""
    hit = [
        int(n)
        for n, a in r["answers"].items()
        if a is not None and not a["over"] and a["acc"] >= r["oracle"] - TOLERANCE
    ]
    return min(hit) if hit else math.inf


def _regret(r: dict[str, Any]) -> float:
    """Regret at 100 evaluations; no verified answer counts as the oracle."""
    a = r["answers"].get("100")
    return r["oracle"] - a["acc"] if a is not None and not a["over"] else r["oracle"]


def _over(r: dict[str, Any]) -> bool:
    a = r["answers"].get("100")
    return a is not None and bool(a["over"])


def _evals(med: float, mode: str, method: str) -> str:
    return f">{_limit(mode, method)}" if math.isinf(med) else f"{med:g}"


def _ratio(base: float, ours: float, mode: str, base_method: str) -> str:
    """How many times fewer evaluations ``ours`` needed than a baseline, from
    two medians either of which may be censored (inf: bounded by the method's
    last checkpoint)."""
    if math.isinf(base) and math.isinf(ours):
        return "?"
    if math.isinf(ours):
        return f"<{base / _limit(mode, 'ours'):.2g}"
    if math.isinf(base):
        return f">{_limit(mode, base_method) / ours:.2g}"
    return f"{base / ours:.2g}"


def _info(r: Mapping[str, Any]) -> str:
    """What a run was made under: its latency information and, for the loop,
    its settings' fingerprint ("loop ?" for loop runs made before it was kept)."""
    if is_loop(r["method"]):
        return f"{r['latency_info']} loop {r.get('loop', '?')}"
    return str(r["latency_info"])


def _table(rows: list[dict[str, Any]], with_info: bool = False) -> list[str]:
    head = "| mode | device | q | method | runs | misses | evals to target | regret@100 |"
    lines = [
        head + (" made under |" if with_info else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if with_info else ""),
    ]
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        cell = (r["mode"], r["device"], r["q"], r["method"])
        groups.setdefault(cell + ((_info(r),) if with_info else ()), []).append(r)
    for key, rs in sorted(groups.items()):
        mode, dev, q, method = key[:4]
        med = float(np.median([_reach(r) for r in rs]))
        reg = float(np.median([_regret(r) for r in rs]))
        lines.append(
            f"| {mode} | {dev} | p{q} | {method} | {len(rs)} | {sum(map(_over, rs))} | "
            f"{_evals(med, mode, method)} | {reg:.2f} |" + (f" {key[4]} |" if with_info else "")
        )
    return lines


def _paired(
    methods: Mapping[str, Mapping[int, dict[str, Any]]], base: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``ours``' runs and ``base``'s on the seeds both ran, in seed order."""
    ours, other = methods.get("ours", {}), methods.get(base, {})
    seeds = sorted(set(ours) & set(other))
    return [ours[s] for s in seeds], [other[s] for s in seeds]


def _targets(rows: list[dict[str, Any]]) -> list[str]:
    """``ours`` against each baseline on the seeds both have run (paired, and
    under the same latency information)."""
    by: dict[tuple[Any, ...], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in rows:
        key = (r["mode"], r["device"], r["q"], r["latency_info"])
        by.setdefault(key, {}).setdefault(r["method"], {})[r["seed"]] = r
    lines = [
        "| mode | device | q | baseline | paired seeds | ours | baseline | times fewer "
        "| ours misses | ours regret@100 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (mode, dev, q, _), methods in sorted(by.items()):
        for base in METHODS[1:]:
            o, b = _paired(methods, base)
            if not o:
                continue
            mo = float(np.median([_reach(r) for r in o]))
            mb = float(np.median([_reach(r) for r in b]))
            lines.append(
                f"| {mode} | {dev} | p{q} | {base} | {len(o)} | {_evals(mo, mode, 'ours')} "
                f"| {_evals(mb, mode, base)} | {_ratio(mb, mo, mode, base)} | {sum(map(_over, o))} "
                f"| {float(np.median([_regret(r) for r in o])):.2f} |"
            )
    return lines


def _paired_ratio(methods: Mapping[str, Mapping[int, dict[str, Any]]], mode: str, base: str) -> str:
    """ "Times fewer" evaluations than ``base``, on the seeds both ran ("-": none)."""
    o, b = _paired(methods, base)
    if not o:
        return "-"
    mo = float(np.median([_reach(r) for r in o]))
    mb = float(np.median([_reach(r) for r in b]))
    return _ratio(mb, mo, mode, base)


def _by_pair(
    rows: Sequence[dict[str, Any]], mode: str
) -> dict[tuple[str, int], dict[str, dict[int, dict[str, Any]]]]:
    by: dict[tuple[str, int], dict[str, dict[int, dict[str, Any]]]] = {}
    for r in rows:
        if r["mode"] == mode:
            by.setdefault((r["device"], r["q"]), {}).setdefault(r["method"], {})[r["seed"]] = r
    return by


def _order(pair: tuple[str, int]) -> tuple[int, int]:
    dev, q = pair
    return (META_TEST.index(dev) if dev in META_TEST else len(META_TEST), q)


def _overview(rows: Sequence[dict[str, Any]], mode: str) -> list[str]:
    """One line per device and budget: each method's median evaluations to
    target (median regret at 100; answers over budget when any) and ours'
    paired ratios to random and TPE."""
    lines = [
        "| device | budget | oracle | runs (" + " / ".join(METHODS) + ") | "
        + " | ".join(METHODS) + " | × fewer than random | × fewer than tpe |",
        "|---|---|---|---|" + "---|" * len(METHODS) + "---|---|",
    ]  # fmt: skip
    for pair, methods in sorted(_by_pair(rows, mode).items(), key=lambda kv: _order(kv[0])):
        dev, q = pair
        any_row = next(iter(next(iter(methods.values())).values()))
        cells = []
        for m in METHODS:
            rs = list(methods.get(m, {}).values())
            if not rs:
                cells.append("–")
                continue
            med = float(np.median([_reach(r) for r in rs]))
            reg = float(np.median([_regret(r) for r in rs]))
            over = sum(map(_over, rs))
            cells.append(
                f"{_evals(med, mode, m)} ({reg:.2f}" + (f"; {over} over)" if over else ")")
            )
        runs = "/".join(str(len(methods.get(m, {}))) for m in METHODS)
        lines.append(
            f"| {dev} | p{q} = {any_row['budget_ms']:.2f} ms | {any_row['oracle']:.2f} | {runs} | "
            + " | ".join(cells)
            + f" | {_paired_ratio(methods, mode, 'random')} | {_paired_ratio(methods, mode, 'tpe')} |"
        )
    return lines


def _verdict(ratio: str, target: float) -> str:
    """A paired ratio against a target: met, missed or undecided (censored)."""
    if ratio in ("-", "?"):
        return "undecided"
    if ratio.startswith(">"):
        return "met" if float(ratio[1:]) >= target else "undecided"
    if ratio.startswith("<"):
        return "missed" if float(ratio[1:]) < target else "undecided"
    return "met" if float(ratio) >= target else "missed"


def _verdicts(rows: Sequence[dict[str, Any]], mode: str) -> list[str]:
    """The issue's targets for ``ours``, pair by pair."""
    by = _by_pair(rows, mode)
    pairs = sorted(by, key=_order)
    ours = [r for p in pairs for r in by[p].get("ours", {}).values()]
    lines = [
        f"- answers over the true budget: {sum(map(_over, ours))} of {len(ours)} `ours` "
        "searches (target: at most 5%)"
    ]
    for base, target in (("random", 5.0), ("tpe", 2.0)):
        got: dict[str, list[str]] = {"missed": [], "met": [], "undecided": []}
        for dev, q in pairs:
            ratio = _paired_ratio(by[(dev, q)], mode, base)
            got[_verdict(ratio, target)].append(f"{dev} p{q} ({ratio})")
        lines.append(
            f"- at least {target:g}× fewer evaluations than {base}: "
            + "; ".join(f"{k} at {len(v)}" + (f": {', '.join(v)}" if v and k != "undecided" else "")
                        for k, v in got.items())
        )  # fmt: skip
    high = []
    for dev, q in pairs:
        rs = list(by[(dev, q)].get("ours", {}).values())
        if rs and float(np.median([_regret(r) for r in rs])) > 0.1:
            high.append(f"{dev} p{q} {float(np.median([_regret(r) for r in rs])):.2f}")
    n = sum(1 for p in pairs if by[p].get("ours"))
    lines.append(
        f"- median regret after 100 evaluations at most 0.1: missed at {len(high)} of {n} pairs"
        + (f": {', '.join(high)}" if high else "")
    )
    return lines


def summarise(rows: list[dict[str, Any]], stale: Sequence[dict[str, Any]] = ()) -> str:
    lines = [
        "# Search with fair baselines (benchmarks/search_realistic.py)",
        "",
        "Per mode, device and budget percentile: runs, answers over the true budget",
        "(misses), median evaluations to a verified answer within "
        f"{TOLERANCE} points of the oracle (checkpoints {list(CHECKPOINTS)}; '>N' when",
        "the median run never reached it by its last checkpoint N: realistic-mode",
        f"`ours` runs one search per checkpoint up to {OURS_MAX_EVALS}), median regret",
        "at 100 evaluations (a run without an answer counts as regret = oracle).",
        "",
        *_table(rows),
    ]
    for mode in MODES:
        if not any(r["mode"] == mode for r in rows):
            continue
        lines += [
            "",
            f"## {mode} mode at a glance",
            "",
            "Per method: median evaluations to target (median regret at 100; answers",
            "over budget when any); ratios on the seeds both methods ran.",
            "",
            *_overview(rows, mode),
            "",
            "Targets (`ours`):",
            "",
            *_verdicts(rows, mode),
        ]
    lines += [
        "",
        "## ours against each baseline, on the seeds both have run",
        "",
        "Medians over the paired seeds; 'times fewer' is the baseline's median over",
        "ours ('>' / '<' when one median is censored at its last checkpoint, '?'",
        "when both are).",
        "",
        *_targets(rows),
    ]
    if stale:
        lines += [
            "",
            f"## {len(stale)} stale runs (not comparable with the tables above)",
            "",
            "Made under latency information that differs from what the code gives now",
            "(the latency model or a table changed since); compare them only with runs",
            "of the same latency information. Kept as a record; their tasks run again.",
            "",
            *_table(list(stale), with_info=True),
            "",
            *_targets(list(stale)),
        ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", default="report", choices=("report", "tune"))
    ap.add_argument("--mode", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--devices", nargs="+", default=None)
    ap.add_argument(
        "--methods", nargs="+", default=list(METHODS), choices=[*METHODS, *OURS_VARIANTS]
    )
    ap.add_argument(
        "--seeds", type=int, default=None, help="seeds per mode (default 20 exact, 10 realistic)"
    )
    ap.add_argument(
        "--quantiles",
        nargs="+",
        type=int,
        default=list(QUANTILES),
        choices=QUANTILES,
        help="budget percentiles to run (a costly one, such as TPE's p10, in its own process)",
    )
    ap.add_argument("--shard", default="0/1", help="i/n: run every n-th task starting at i")
    ap.add_argument("--max-tasks", type=int, default=None, help="stop after this many new tasks")
    ap.add_argument("--runs", type=Path, default=RUNS)
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument(
        "--reachable",
        type=float,
        metavar="CONFIDENCE",
        default=None,
        help="print, per device and budget, what the point and chance-constrained "
        "feasibility rules leave reachable in realistic mode, and exit",
    )
    args = ap.parse_args(argv)
    devices = tuple(args.devices or role_devices(args.role))
    for d in devices:
        if d not in role_devices(args.role):
            ap.error(f"role {args.role!r} may not run on device {d!r}")
    variants = sorted(set(args.methods) & set(OURS_VARIANTS))
    if variants and args.role != "tune":
        ap.error(f"{variants} are tuning variants: --role tune only (the report runs the defaults)")
    if args.reachable is not None:
        print(reachable_table(args.role, devices, args.reachable))
        return 0
    seeds = {"exact": args.seeds or 20, "realistic": args.seeds or 10}
    shard_i, shard_n = (int(x) for x in args.shard.split("/"))
    if not 0 <= shard_i < shard_n:
        ap.error(f"--shard must be i/n with 0 <= i < n, got {args.shard}")
    args.runs.parent.mkdir(parents=True, exist_ok=True)
    done, stale = current(load_rows(args.runs), args.role)
    todo = [
        t
        for k, t in enumerate(
            tasks(args.role, args.mode, devices, args.methods, seeds, args.quantiles)
        )
        if k % shard_n == shard_i and task_key(t) not in done
    ]
    if not args.summary_only:
        for t in todo[: args.max_tasks]:
            row = run_task(*t)
            with args.runs.open("a") as f:
                f.write(json.dumps(row) + "\n")
            done[task_key(t)] = row
            print(f"{task_key(t)}: {row['seconds']} s", flush=True)
    text = summarise(list(done.values()), stale)
    (args.runs.parent / f"search_realistic_{args.role}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
