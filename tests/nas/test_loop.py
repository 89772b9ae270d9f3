"""run_search end to end on the tabular NB201 space and on small synthetic spaces."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import optuna
import pytest

from nas import (
    Evaluation,
    SearchSettings,
    TabularEvaluator,
    best_under_budget,
    macs_and_params,
    run_search,
)
from supernets import NB201Arch, get_space
from supernets.spaces import SearchSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)

EV = TabularEvaluator()
SPACE = EV.space
LAT = EV.latency("pixel3")
BUDGET = float(np.percentile(LAT.values, 25))
FAST = SearchSettings(batch_size=10, n_initial=10)


def small_predictor(seed: int) -> Any:
    """A cheap predictor for tests about bookkeeping rather than search quality."""
    from predictors.accuracy import GBDTAccuracyPredictor

    return GBDTAccuracyPredictor(seed=seed, n_models=2, bootstrap=True, params={"n_rounds": 40})


class Counting:
    """An evaluate() that counts its calls (real evaluations)."""

    def __init__(self, fn: Any = EV) -> None:
        self.fn = fn
        self.calls: list[str] = []

    def __call__(self, arch: Any) -> float:
        self.calls.append(str(arch))
        return float(self.fn(arch))


def test_entry_point_contract() -> None:
    evaluate = Counting()
    result = run_search(SPACE, evaluate, LAT, BUDGET, 30, seed=0)
    assert len(result.history) == 30 == len(evaluate.calls)
    history = cast(list[tuple[NB201Arch, float, float]], result.history)
    hashes = [SPACE.arch_hash(a) for a, _, _ in history]
    assert len(set(hashes)) == 30  # never evaluates an architecture twice
    for arch, acc, lat in history:
        assert acc == EV(arch) and lat == LAT(arch)
    assert [str(a) for a, _, _ in result.history] == evaluate.calls  # in evaluation order
    feasible = [(acc, a) for a, acc, lat in result.history if lat <= BUDGET]
    assert result.best is not None and result.feasible
    best_arch = cast(NB201Arch, result.best)
    assert EV(best_arch) == max(acc for acc, _ in feasible)
    assert LAT(best_arch) <= BUDGET
    assert result.stop_reason == "n_evaluations"
    # The initial design covers the whole space (feasible or not); the
    # predictor-guided rounds propose only predicted-feasible architectures: with
    # an exact latency model every one of them meets the budget.
    n0 = 30 // 3  # a short search: a third of its evaluations (n_initial is 20)
    initial, guided = result.evaluations[:n0], result.evaluations[n0:]
    assert {e.source for e in initial} == {"initial"} and any(not e.feasible for e in initial)
    assert guided and all(e.feasible and e.predicted_accuracy is not None for e in guided)
    assert {e.source for e in guided} == {"exploit"}  # the default batch: all best guesses
    assert result.proposals and all(p.arch_hash not in hashes for p in result.proposals)


def test_batch_slots_and_a_feasible_initial_design() -> None:
    settings = SearchSettings(
        batch_size=10, n_initial=10, initial_design="feasible", n_explore=3, n_local=1, n_random=2
    )
    result = run_search(
        SPACE, EV, LAT, BUDGET, 30, seed=1, settings=settings, predictor_factory=small_predictor
    )
    assert len(result.history) == 30 and all(e.feasible for e in result.evaluations)
    counts = Counter(e.source for e in result.evaluations)
    # Two predictor rounds of 4 exploit + 1 local + 3 explore + 2 random slots.
    assert counts == {"initial": 10, "exploit": 8, "local": 2, "explore": 6, "random": 4}
    assert Counter(e.round_no for e in result.evaluations) == {0: 10, 1: 10, 2: 10}


def test_a_short_search_spends_at_most_a_third_on_the_initial_design() -> None:
    result = run_search(SPACE, EV, LAT, BUDGET, 12, seed=0, predictor_factory=small_predictor)
    sources = [e.source for e in result.evaluations]
    assert sources == ["initial"] * 5 + ["exploit"] * 7  # 5: the predictor's minimum


def test_plain_callables_and_determinism() -> None:
    def latency(arch: Any) -> float:  # no batch form: called per architecture
        return LAT(arch)

    def evaluate(arch: Any) -> float:
        return EV(arch)

    a = run_search(
        SPACE,
        evaluate,
        latency,
        BUDGET,
        20,
        seed=3,
        settings=FAST,
        predictor_factory=small_predictor,
    )
    b = run_search(
        SPACE,
        evaluate,
        latency,
        BUDGET,
        20,
        seed=3,
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert [str(x) for x, _, _ in a.history] == [str(x) for x, _, _ in b.history]
    assert a.devices == ["latency"]


def test_finds_good_architectures_quickly() -> None:
    budget = float(np.percentile(LAT.values, 75))
    _, oracle = EV.oracle("pixel3", budget)
    result = run_search(SPACE, EV, LAT, budget, 60, seed=0)
    assert result.best_evaluation is not None
    assert oracle - result.best_evaluation.accuracy < 1.0  # random search: ~1.5 at 60


def test_infeasible_budget_stops_and_reports_closest() -> None:
    evaluate = Counting()
    tiny = float(LAT.values.min()) / 2
    result = run_search(
        SPACE, evaluate, LAT, tiny, 100, seed=0, settings=FAST, predictor_factory=small_predictor
    )
    assert result.stop_reason == "infeasible"
    assert result.best is None and not result.feasible
    assert result.closest and all(not e.feasible for e in result.closest)
    assert result.closest[0].latency_ms["pixel3"] == pytest.approx(LAT.values.min())
    assert "no architecture" in result.message
    assert len(evaluate.calls) <= FAST.n_initial * FAST.infeasible_rounds  # bounded, no hang


def test_macs_and_params_constraints() -> None:
    max_macs, max_params = 60e6, 0.5e6
    result = run_search(
        SPACE,
        EV,
        LAT,
        None,
        30,
        seed=1,
        max_macs=max_macs,
        max_params=max_params,
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert result.best_evaluation is not None
    for e in result.evaluations:
        assert e.macs == pytest.approx(macs_and_params(SPACE, [e.arch]).macs[0])
        assert e.macs is not None and e.params is not None
        assert e.feasible == (e.macs <= max_macs and e.params <= max_params)
    # MACs and params are exact: after the space-filling design, every guided pick meets them.
    assert all(e.feasible for e in result.evaluations[FAST.n_initial :])
    impossible = run_search(
        SPACE,
        EV,
        LAT,
        None,
        30,
        seed=1,
        max_macs=1e6,
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert impossible.stop_reason == "infeasible" and impossible.best is None


def test_several_devices_and_budgets() -> None:
    fpga = EV.latency("fpga")
    budgets = {"pixel3": float(np.median(LAT.values)), "fpga": float(np.median(fpga.values))}
    result = run_search(
        SPACE,
        EV,
        {"pixel3": LAT, "fpga": fpga},
        budgets,
        25,
        seed=0,
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert result.devices == ["pixel3", "fpga"]
    for e in result.evaluations:
        arch = cast(NB201Arch, e.arch)
        assert e.latency_ms == {"pixel3": LAT(arch), "fpga": fpga(arch)}
        assert e.latency_measured == {"pixel3": True, "fpga": True}
    best = result.best_evaluation
    assert best is not None and all(best.latency_ms[d] <= b for d, b in budgets.items())
    with pytest.raises(ValueError, match="without a latency model"):
        run_search(SPACE, EV, LAT, {"gpu": 1.0}, 10)


def test_pareto_mode_spreads_over_the_front() -> None:
    result = run_search(
        SPACE, EV, LAT, None, 40, seed=0, settings=FAST, predictor_factory=small_predictor
    )
    front = result.pareto_front()
    assert len(front) >= 4
    lats = [e.latency_ms["pixel3"] for e in front]
    assert lats == sorted(lats)
    assert max(lats) > 2 * min(lats)  # not collapsed on one point


def test_pareto_mode_without_a_bound_covers_the_fast_end() -> None:
    """Without a bound the reference accuracy is lower and the front is measured on
    the latency quantile scale, so the fast (less accurate) end is not neglected."""
    fpga = EV.latency("fpga")
    median = float(np.median(fpga.values))

    def fast_share(settings: SearchSettings) -> float:
        result = run_search(
            SPACE, EV, fpga, None, 50, seed=1, settings=settings, predictor_factory=small_predictor
        )
        guided = result.evaluations[settings.n_initial :]
        return sum(e.latency_ms["fpga"] <= median for e in guided) / len(guided)

    default = fast_share(FAST)
    assert default >= 0.5
    assert default > 2 * fast_share(replace(FAST, ref_accuracy_quantile_unbounded=0.75))


def test_hooks_and_optuna_trials(tmp_path: Path) -> None:
    seen: list[Evaluation] = []
    url = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_search(
        SPACE,
        EV,
        LAT,
        BUDGET,
        15,
        storage=url,
        study_name="s",
        on_evaluation=seen.append,
        settings=FAST,
    )
    assert [e.trial_number for e in seen] == list(range(15))
    assert seen == result.evaluations
    study = optuna.load_study(study_name="s", storage=url)
    trials = study.get_trials()
    assert len(trials) == 15 and all(t.state.name == "COMPLETE" for t in trials)
    t = trials[-1]
    attrs = t.user_attrs["hwnas"]
    assert t.values[0] == EV(SPACE.validate(attrs["arch"]))
    assert t.values[1] == LAT(SPACE.validate(attrs["arch"]))
    assert SPACE.from_params(t.params) == SPACE.validate(attrs["arch"])
    assert set(t.constraints) == {"latency_ms:pixel3"}
    assert attrs["predicted_accuracy"] is not None  # labelled as predicted
    assert attrs["duration_s"] >= 0 and attrs["arch_str"] == str(SPACE.validate(attrs["arch"]))
    feasible_front = study.best_trials
    assert feasible_front and all(tr.values[1] <= BUDGET for tr in feasible_front)
    # The JSON view is what the service stores.
    row = seen[0].to_dict()
    assert row["arch_str"] == str(seen[0].arch) and row["feasible"] is True


def test_resume_and_extend_without_re_evaluating(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    first = Counting()
    r1 = run_search(
        SPACE,
        first,
        LAT,
        BUDGET,
        20,
        storage=url,
        study_name="job-1",
        settings=FAST,
        predictor_factory=small_predictor,
    )
    second = Counting()
    r2 = run_search(
        SPACE,
        second,
        LAT,
        BUDGET,
        30,
        storage=url,
        study_name="job-1",
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert len(first.calls) == 20 and len(second.calls) == 10
    assert r2.n_new == 10 and len(r2.history) == 30
    assert [str(a) for a, _, _ in r2.history[:20]] == [str(a) for a, _, _ in r1.history]
    assert not set(second.calls) & set(first.calls)
    # Same target again: nothing left to do.
    third = Counting()
    r3 = run_search(
        SPACE,
        third,
        LAT,
        BUDGET,
        30,
        storage=url,
        study_name="job-1",
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert third.calls == [] and r3.n_new == 0 and r3.stop_reason == "n_evaluations"
    assert r3.best_evaluation == r2.best_evaluation
    # A study of another problem is refused.
    with pytest.raises(ValueError, match="another search problem"):
        run_search(SPACE, EV, EV.latency("fpga"), 3.0, 5, storage=url, study_name="job-1")


def test_running_trials_of_live_workers_are_not_repeated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_search(
        SPACE,
        EV,
        LAT,
        BUDGET,
        10,
        storage=url,
        study_name="w",
        settings=FAST,
        predictor_factory=small_predictor,
    )
    # Another worker is evaluating an architecture right now.
    from nas import SearchStudy

    other = SearchStudy(SPACE, ["pixel3"], storage=url, study_name="w")
    busy = SPACE.sample(np.random.default_rng(123))
    other.start(busy, {"arch": busy.to_dict(), "arch_hash": SPACE.arch_hash(busy)})
    evaluate = Counting()
    result = run_search(
        SPACE,
        evaluate,
        LAT,
        BUDGET,
        20,
        storage=url,
        study_name="w",
        settings=FAST,
        predictor_factory=small_predictor,
    )
    assert str(busy) not in evaluate.calls
    assert len(evaluate.calls) == 9  # 20 wanted: 10 stored + 1 running elsewhere
    assert len(result.history) == 19


def test_two_claims_on_one_architecture_leave_one_evaluation(db_url: str) -> None:
    """Two workers that both passed their pre-start check for one architecture:
    the later claim sees the earlier one and yields; the earlier never yields."""
    from nas import SearchStudy

    first = SearchStudy(SPACE, ["pixel3"], storage=db_url, study_name="claims")
    second = SearchStudy(SPACE, ["pixel3"], storage=db_url, study_name="claims")
    arch = SPACE.sample(np.random.default_rng(7))
    other = SPACE.sample(np.random.default_rng(8))
    arch_hash = SPACE.arch_hash(arch)
    attrs = {"arch": arch.to_dict(), "arch_hash": arch_hash}
    t1 = first.start(arch, attrs)
    t2 = second.start(arch, attrs)
    t3 = second.start(other, {"arch": other.to_dict(), "arch_hash": SPACE.arch_hash(other)})
    assert t1.number < t2.number
    assert first.earlier_claim(t1, arch_hash, None) is None
    assert second.earlier_claim(t2, arch_hash, None) == t1.number
    assert second.earlier_claim(t3, SPACE.arch_hash(other), None) is None
    # A claim older than the staleness limit belongs to a dead worker: no rival.
    assert second.earlier_claim(t2, arch_hash, 0.0) is None
    second.withdraw(t2, duplicate_of=t1.number)
    withdrawn = second.study.get_trials()[t2.number]
    assert withdrawn.state == optuna.trial.TrialState.PRUNED
    assert withdrawn.user_attrs["hwnas"]["duplicate_of"] == t1.number
    assert arch_hash not in second.failed_hashes()  # still worth evaluating
    assert second.pending_hashes(None) == {arch_hash, SPACE.arch_hash(other)}


def test_a_lost_claim_is_withdrawn_unevaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the pre-start re-read cannot see: another worker claims the
    loop's next architecture between that re-read and the loop's own start."""
    from nas import SearchStudy

    url = f"sqlite:///{tmp_path / 'race.db'}"
    rival = SearchStudy(SPACE, ["pixel3"], storage=url, study_name="race")
    stolen: list[Any] = []
    real_start = SearchStudy.start

    def start_after_a_rival(
        self: SearchStudy, arch: Any, attrs: Mapping[str, Any], *rest: Any
    ) -> Any:
        if not stolen and self is not rival:
            stolen.append(arch)
            real_start(rival, arch, attrs, *rest)
        return real_start(self, arch, attrs, *rest)

    monkeypatch.setattr(SearchStudy, "start", start_after_a_rival)
    evaluate = Counting()
    result = run_search(
        SPACE,
        evaluate,
        LAT,
        BUDGET,
        12,
        storage=url,
        study_name="race",
        settings=SearchSettings(batch_size=4, n_initial=6),
        predictor_factory=small_predictor,
    )
    assert str(stolen[0]) not in evaluate.calls
    assert len(evaluate.calls) == len(set(evaluate.calls)) == 11  # 12 = 11 + the rival's
    trials = optuna.load_study(study_name="race", storage=url).get_trials()
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) == 1 and pruned[0].user_attrs["hwnas"]["duplicate_of"] == 0
    assert len(result.history) == 11


def test_failed_evaluation_marks_the_trial_and_propagates() -> None:
    def broken(arch: Any) -> float:
        raise RuntimeError("GPU fell off")

    storage = optuna.storages.InMemoryStorage()
    with pytest.raises(RuntimeError, match="GPU fell off"):
        run_search(SPACE, broken, LAT, BUDGET, 5, storage=storage, study_name="f")
    trial = optuna.load_study(study_name="f", storage=storage).get_trials()[0]
    assert trial.state.name == "FAIL" and "GPU fell off" in trial.user_attrs["hwnas"]["error"]


def test_time_budget_should_stop_and_patience() -> None:
    evaluate = Counting()
    result = run_search(SPACE, evaluate, LAT, BUDGET, 50, time_budget_s=0.0)
    assert result.stop_reason == "time_budget" and evaluate.calls == []
    assert result.best is None and result.message == "no architecture was evaluated"
    stopped = run_search(SPACE, EV, LAT, BUDGET, 50, should_stop=lambda: True)
    assert stopped.stop_reason == "stopped" and stopped.n_new == 0

    flat = run_search(
        SPACE,
        lambda arch: 50.0,  # nothing ever improves
        LAT,
        BUDGET,
        100,
        settings=SearchSettings(batch_size=5, n_initial=5, patience=2),
    )
    assert flat.stop_reason == "converged" and len(flat.history) < 100


def test_settings_validation() -> None:
    with pytest.raises(ValueError, match="n_initial"):
        SearchSettings(n_initial=2)
    with pytest.raises(ValueError, match="batch_size"):
        SearchSettings(batch_size=0)
    for bad in (
        {"inner_population": 3},
        {"inner_generations": 0},
        {"n_random": -1},
        {"n_explore": -1},
        {"pareto_n_random": -1},
        {"initial_design": "grid"},
        {"min_distance": float("nan")},
        {"kappa": -1.0},
        {"pareto_kappa": (0.0, float("inf"))},
        {"ref_accuracy_quantile": 1.5},
        {"ref_accuracy_quantile_unbounded": -0.1},
        {"pending_timeout_s": 0.0},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SearchSettings(**bad)
    SearchSettings(kappa=(0.0, 2.0), n_random=0, pending_timeout_s=None)  # edge values pass
    with pytest.raises(ValueError, match="mode"):
        run_search(SPACE, EV, LAT, BUDGET, 5, mode="fast")  # type: ignore[arg-type]


# -- a space small enough to exhaust ------------------------------------------------------
@dataclass(frozen=True)
class Bits:
    bits: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"bits": list(self.bits)}

    def __str__(self) -> str:
        return "".join(map(str, self.bits))


@dataclass(frozen=True)
class BitSpace(SearchSpace[Bits]):
    name: str = "bits"
    n: int = 3

    def sample(self, rng: np.random.Generator) -> Bits:
        return Bits(tuple(int(b) for b in rng.integers(2, size=self.n)))

    def validate(self, arch: Bits | Mapping[str, Any] | str) -> Bits:
        if isinstance(arch, Mapping):
            arch = Bits(tuple(int(b) for b in arch["bits"]))
        elif isinstance(arch, str):
            arch = Bits(tuple(int(c) for c in arch))
        if len(arch.bits) != self.n or set(arch.bits) - {0, 1}:
            raise ValueError(f"field 'bits' must be {self.n} zeros/ones")
        return arch

    def encode(self, arch: Bits) -> np.ndarray:
        return np.eye(2, dtype=np.float32)[list(arch.bits)].reshape(-1)

    def decode(self, vector: np.ndarray) -> Bits:
        return Bits(tuple(int(np.argmax(r)) for r in np.asarray(vector).reshape(self.n, 2)))

    @property
    def feature_dim(self) -> int:
        return 2 * self.n

    def choices(self) -> dict[str, list[Any]]:
        return {f"b{i}": [0, 1] for i in range(self.n)}

    def to_params(self, arch: Bits) -> dict[str, Any]:
        return {f"b{i}": b for i, b in enumerate(arch.bits)}

    def from_params(self, params: Mapping[str, Any]) -> Bits:
        return self.validate(Bits(tuple(int(params[f"b{i}"]) for i in range(self.n))))

    def config(self) -> dict[str, Any]:
        return {"n": self.n}

    def all_archs(self) -> list[Bits]:
        return [Bits(tuple((i >> k) & 1 for k in range(self.n))) for i in range(2**self.n)]


def test_exhausting_a_small_space_stops() -> None:
    space = BitSpace()
    evaluate = Counting(lambda a: 60.0 + 10 * sum(a.bits))
    result = run_search(
        space,
        evaluate,
        lambda a: 1.0 + sum(a.bits),
        None,
        50,
        settings=SearchSettings(batch_size=2, n_initial=5),
    )
    assert result.stop_reason == "exhausted"
    assert sorted(evaluate.calls) == sorted(str(a) for a in space.all_archs())


@pytest.mark.parametrize("inner", ["evolution", "optuna"])
def test_inner_searches_on_the_ofa_space(inner: Literal["evolution", "optuna"]) -> None:
    space = get_space("ofa-mbv3-tiny")

    def evaluate(arch: Any) -> float:  # synthetic: bigger is better, with diminishing returns
        return float(60 + 5 * np.log(macs_and_params(space, [arch], n_classes=10).macs[0]))

    def latency(arch: Any) -> float:
        return float(macs_and_params(space, [arch], n_classes=10).macs[0] / 1e6)

    budget = 6.0
    settings = SearchSettings(
        batch_size=5, n_initial=5, inner=inner, inner_population=20, inner_generations=3
    )
    result = run_search(space, evaluate, latency, budget, 15, seed=0, settings=settings)
    assert len(result.history) == 15
    assert result.best is not None and latency(result.best) <= budget
    assert all(lat <= budget for _, _, lat in result.history[5:])
    assert best_under_budget(result.evaluations, "latency", budget).best == result.best_evaluation


@pytest.mark.slow
def test_two_workers_share_one_study(db_url: str) -> None:
    import threading

    url = db_url
    calls: list[str] = []
    errors: list[BaseException] = []

    def evaluate(arch: Any) -> float:
        calls.append(str(arch))
        return EV(arch)

    def worker(seed: int) -> None:
        try:
            run_search(
                SPACE,
                evaluate,
                LAT,
                BUDGET,
                24,
                seed=seed,
                storage=url,
                study_name="shared",
                settings=SearchSettings(batch_size=4, n_initial=8),
            )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    trials = optuna.load_study(study_name="shared", storage=url).get_trials()
    done = [t for t in trials if t.state.name == "COMPLETE"]
    # The only other state: a claim withdrawn because the other worker's came first.
    assert all(t.state.name == "PRUNED" for t in trials if t not in done)
    # Both workers stop at the shared target (a race can overshoot by one per extra worker).
    assert 24 <= len(done) <= 25
    hashes = [t.user_attrs["hwnas"]["arch_hash"] for t in done]
    assert len(calls) == len(done)
    assert len(hashes) == len(set(hashes))  # no architecture evaluated twice


def test_with_an_adapted_meta_latency_predictor() -> None:
    from predictors.latency import load_pretrained

    meta = load_pretrained("nb201")
    X_ref = meta.reference_features
    device = meta.adapt(X_ref, LAT.predict_archs([SPACE.decode(x) for x in X_ref]), device="pixel3")
    result = run_search(
        SPACE, EV, device, BUDGET, 20, seed=0, settings=FAST, predictor_factory=small_predictor
    )
    assert result.devices == ["pixel3"]
    for e in result.evaluations:
        assert e.latency_measured == {"pixel3": False}  # a prediction, labelled so
        assert e.latency_ms["pixel3"] == pytest.approx(
            float(device.predict(SPACE.encode(cast(NB201Arch, e.arch)))[0])
        )
    assert result.best_evaluation is not None
    assert result.best_evaluation.latency_ms["pixel3"] <= BUDGET
