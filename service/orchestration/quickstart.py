"""The main job, end to end on the embedded database and bundled data.

A list of steps (configuration is data). Each does real work through the same
service functions the CLI and API use, reports what it did, and reuses what an
earlier run stored (a second run only redoes what is missing):

1. zero-training search on NAS-Bench-201 (bundled tables), scored against the
   table's oracle;
2. the supernet: the one shipped with hwnas (``ofa-mbv3-tiny`` trained on
   ``digits-hard``, see :mod:`supernets.pretrained`) is registered as is; with
   ``train=True`` the same recipe trains one from scratch instead (progress
   bar with ETA);
3. register this machine's CPU as a device: measure the reference subnets for
   real, adapt the meta-learned latency predictor, store it;
4. evaluate sampled subnets for real and fit the accuracy predictor on them;
5. search the supernet for the most accurate subnet under a latency budget on
   this CPU: predictors propose, real evaluations (BN-recalibrated holdout
   accuracy) decide;
6. answer "best under B ms", export that subnet (ONNX, TorchScript, config +
   state_dict, with its preprocessing), and write the plots (Pareto front
   with the budget line, best accuracy vs real evaluations, predicted vs
   measured latency) under ``<home>/plots``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.db import SearchJob
from service.domain import jobs, searches, subnets, supernet_records
from service.domain.owners import LOCAL
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.orchestration.search import execute_search
from service.orchestration.worker import Worker
from service.runtime import Runtime

__all__ = ["QuickstartOptions", "Step", "latency_agreement", "run_quickstart", "steps"]

Report = Callable[[str], None]

#: The shipped supernet the main job searches (``supernets.pretrained``).
SHIPPED = "ofa-mbv3-tiny-digits-hard"


@dataclass(frozen=True)
class QuickstartOptions:
    """Sizes of the main job; the defaults take a few minutes on 2 CPU cores.
    :meth:`smoke` gives the smallest sizes that still exercise every step."""

    nb201_device: str = "pixel3"
    nb201_evaluations: int = 60
    #: Search the shipped supernet (False) or train one from scratch (True).
    train: bool = False
    supernet: str = "quickstart-digits-hard"
    #: Overrides of ``train=True``; None: the shipped supernet's recipe
    #: (``supernets.build_pretrained.RECIPES``).
    schedule: str | None = None
    dataset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    max_steps_per_epoch: int | None = None
    latency_extra: int = 10
    latency_repeats: int = 20
    #: Real evaluations the accuracy predictor is fitted on. 60, not 40: on
    #: subsets of a development pool of measured subnets (drawn apart from the
    #: reported seeds; ``benchmarks/main_job_predictor.py --tune``), 40 gave a
    #: cross-validated Kendall tau under 0.5 in a third of the draws, 60 in none.
    predictor_samples: int = 60
    search_evaluations: int = 30
    search_batch: int = 6
    bn_images: int = 500
    seed: int = 0
    #: Progress bars (tqdm, on stderr) for the long steps.
    bars: bool = True

    def __post_init__(self) -> None:
        if self.predictor_samples < 10:
            raise ValueError("predictor_samples must be >= 10 (the predictor's minimum)")

    @property
    def supernet_name(self) -> str:
        """A trained-from-scratch supernet never replaces the shipped one's row."""
        return f"{self.supernet}-trained" if self.train else self.supernet

    @classmethod
    def smoke(cls, seed: int = 0, train: bool = False) -> QuickstartOptions:
        return cls(
            nb201_evaluations=20, train=train, epochs=2 if train else None,
            max_steps_per_epoch=2 if train else None, latency_extra=3, latency_repeats=3,
            predictor_samples=10, search_evaluations=8, search_batch=4, bn_images=100,
            seed=seed,
        )  # fmt: skip


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Runtime, QuickstartOptions, dict[str, Any], Report], None]


@contextmanager
def _bar(opts: QuickstartOptions, total: float, desc: str, unit: str = "it") -> Iterator[Any]:
    from tqdm import tqdm

    bar = tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=not opts.bars,
        dynamic_ncols=True, leave=True,
    )  # fmt: skip
    try:
        yield bar
    finally:
        bar.close()


def _stored_job(rt: Runtime, name: str, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The result of an earlier succeeded quickstart job with the same spec."""
    with rt.session() as s:
        rows = (
            s.query(SearchJob)
            .filter(SearchJob.name == name, SearchJob.owner == LOCAL)
            .filter(SearchJob.state == "succeeded")
            .order_by(SearchJob.id.desc())
            .all()
        )
        for job in rows:
            if all(job.spec.get(k) == v for k, v in spec.items()):
                return {"id": job.id, **(job.result or {}), "reused": True}
    return None


def _run_job(
    rt: Runtime, opts: QuickstartOptions, spec: dict[str, Any], name: str
) -> dict[str, Any]:
    """Run a search job here (or reuse the stored result of the same one),
    with a bar over its real evaluations."""
    stored = _stored_job(rt, name, spec)
    if stored is not None:
        return stored
    with rt.session() as s:
        job_id = searches.submit_search(s, spec, name=name, check_latency=check_budget).id
    with _bar(opts, spec["n_evaluations"], f"  {name}", "eval") as bar:

        def runner(
            rt_: Runtime,
            jid: int,
            should_stop: Callable[[], bool],
            on_progress: Callable[[int], None],
        ) -> dict[str, Any]:
            def progress(n: int) -> None:
                on_progress(n)
                bar.update(n - bar.n)

            return execute_search(rt_, jid, should_stop=should_stop, on_progress=progress)

        Worker(rt, worker_id="quickstart", runner=runner).run(exit_when_idle=True)
    with rt.session() as s:
        job = jobs.get_job(s, job_id)
        if job.state != "succeeded":
            raise RuntimeError(f"search job {job_id} ended {job.state}: {job.error}")
        return {"id": job.id, **(job.result or {})}


def _nb201_search(
    rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report
) -> None:
    import numpy as np

    from nas.evaluators import TabularEvaluator

    with rt.session() as s:
        reg = register_benchmark(s, "nb201")
        report(f"registered space nb201 with {len(reg.devices)} measured devices")
    evaluator = TabularEvaluator()
    latency = evaluator.latency(opts.nb201_device).values
    budget = round(float(np.percentile(latency, 50)), 3)
    device = f"nb201-{opts.nb201_device}"
    spec = {
        "supernet": "nb201",
        "device": device,
        "latency_budget_ms": budget,
        "n_evaluations": opts.nb201_evaluations,
        "seed": opts.seed,
    }
    result = _run_job(rt, opts, spec, "quickstart-nb201")
    _, oracle = evaluator.oracle(opts.nb201_device, budget)
    with rt.session() as s:
        best, _ = subnets.best_under_budget(
            s, supernet_records.get_supernet(s, "nb201"), _device(s, device), budget
        )
    assert best is not None
    reused = " (stored from an earlier run)" if result.get("reused") else ""
    report(
        f"nb201 on {opts.nb201_device}, budget {budget:.2f} ms (median latency): best after "
        f"{result['n_evaluations']} real evaluations {best.accuracy:.2f}% at "
        f"{best.latency_ms:.2f} ms (oracle over all 15,625 cells: {oracle:.2f}%){reused}"
    )
    out["nb201"] = {"budget_ms": budget, "best": best.to_dict(), "oracle_accuracy": oracle}


def _device(session: Any, name: str) -> Any:
    from service.domain import devices

    return devices.get_device(session, name)


def _supernet_step(
    rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report
) -> None:
    from service.db import Supernet
    from service.orchestration.training import register_pretrained

    name = opts.supernet_name
    with rt.session() as s:
        row = s.query(Supernet).filter(Supernet.name == name).one_or_none()
        ready = row is not None and row.status == "ready"
    if opts.train and not ready:
        _train_from_scratch(rt, opts, report)
        how = "trained from scratch"
    elif opts.train:
        how = "trained by an earlier run"
    else:
        register_pretrained(rt, name, SHIPPED)
        how = f"shipped with hwnas ({SHIPPED}), no training"
    with rt.session() as s:
        row = supernet_records.get_supernet(s, name)
        phases = row.metrics.get("phases") or [{}]
        last = phases[-1]
        out["supernet"] = {
            "name": row.name, "checkpoint": row.checkpoint_path, "dataset": row.dataset,
            "last_phase": last, "how": how,
        }  # fmt: skip
    accs = ", ".join(f"{k[9:]} {v:.1f}%" for k, v in last.items() if k.startswith("accuracy_"))
    report(f"supernet {name} on digits-hard: {how}; after training, holdout {accs}")


def _train_from_scratch(rt: Runtime, opts: QuickstartOptions, report: Report) -> None:
    """The shipped supernet's recipe, trained here, with a bar over the whole
    run weighted by each phase's cost (subnets per step), so its ETA holds."""
    from dataclasses import replace

    from service.orchestration.training import train_and_register
    from supernets.build_pretrained import RECIPES

    request = RECIPES[SHIPPED]
    overrides: dict[str, Any] = {"seed": opts.seed, "eval_images": opts.bn_images}
    for key in ("schedule", "dataset", "epochs", "batch_size", "max_steps_per_epoch"):
        if getattr(opts, key) is not None:
            overrides[key] = getattr(opts, key)
    request = replace(request, **overrides)
    report(f"  loading {request.dataset} and planning {request.schedule} ({request.epochs} epochs)")
    _, dataset, schedule, config = request.build()
    spe = config.steps_per_epoch(dataset.n_train)
    cost = {p.name: p.subnets_per_step for p in schedule}
    total = sum(p.epochs * spe * p.subnets_per_step for p in schedule)
    with _bar(opts, total, "  training", "subnet-step") as bar:

        def progress(event: Any) -> None:
            if event.kind == "phase_start":
                done = sum(
                    p.epochs * spe * p.subnets_per_step for p in schedule[: event.phase_index]
                )
                bar.n = done + event.step * cost[event.phase]
                bar.set_postfix_str(f"phase {event.phase_index + 1}/{event.n_phases} {event.phase}")
                bar.refresh()
            elif event.kind == "step":
                bar.update(cost[event.phase])
            elif event.kind == "phase_end":
                m = event.metrics
                accs = ", ".join(
                    f"{k[9:]} {v:.1f}%" for k, v in m.items() if k.startswith("accuracy_")
                )
                bar.write(
                    f"  phase {event.phase_index + 1}/{event.n_phases} {event.phase} done: {accs}"
                )

        train_and_register(rt, opts.supernet_name, request, progress=progress)


def _device_step(rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report) -> None:
    from service.domain import predictor_records
    from service.orchestration.registration import local_device_name, measure_local

    name = local_device_name("torch-cpu", 1, 1)
    with rt.session() as s:
        from service.db import Device
        from service.domain.errors import NotFoundError

        row = s.query(Device).filter(Device.name == name).one_or_none()
        try:
            model = (
                None
                if row is None
                else predictor_records.latest_predictor(s, kind="latency", device_id=row.id)
            )
        except NotFoundError:
            model = None
        if model is not None:
            out["device"] = {"device": name, "version": model.version, "reused": True}
            report(f"device {name}: latency model v{model.version} stored by an earlier run")
            return
    report(f"  measuring 10 reference + {opts.latency_extra} extra subnets on this CPU")
    reg = measure_local(
        rt, "ofa-mbv3-tiny", threads=1, n_extra=opts.latency_extra,
        repeats=opts.latency_repeats, seed=opts.seed,
    )  # fmt: skip
    out["device"] = reg.to_dict()
    q = reg.quality
    quality = (
        f"; on {int(q['n_extra'])} extra measured subnets Spearman {q['spearman_rho']:.3f}, "
        f"{100 * q.get('within_10pct', 0):.0f}% within ±10%"
        if "spearman_rho" in q
        else ""
    )
    report(
        f"device {reg.device}: latency model v{reg.version} adapted from 10 real measurements{quality}"
    )
    for warning in reg.warnings:
        report(f"  WARNING: this machine is too noisy to measure latency: {warning}")


def _predictor_step(
    rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report
) -> None:
    import numpy as np

    from service.orchestration.evaluation import evaluate_subnets, fit_accuracy_predictor
    from supernets import get_space

    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(opts.seed)
    archs = [space.sample(rng) for _ in range(opts.predictor_samples)]
    with rt.session() as s:
        row = supernet_records.get_supernet(s, opts.supernet_name)
        done = set(subnets.measured_accuracies(s, row.id))
    todo = [a for a in archs if space.arch_hash(a) not in done]
    if todo:
        with _bar(opts, len(todo), "  evaluating subnets", "subnet") as bar:
            evaluate_subnets(
                rt, opts.supernet_name, todo, n_bn_images=opts.bn_images,
                purpose="predictor-training", progress=lambda i: bar.update(1),
            )  # fmt: skip
    report(
        f"  {len(archs) - len(todo)} of {len(archs)} sampled subnets already measured, "
        f"{len(todo)} evaluated now (BN recalibrated, holdout accuracy)"
    )
    fitted = fit_accuracy_predictor(rt, opts.supernet_name, seed=opts.seed, tune=False)
    out["accuracy_predictor"] = fitted
    m = fitted["metrics"]["metrics"]
    report(
        f"accuracy predictor v{fitted['version']} on {fitted['n_train']} measured subnets: "
        f"cross-validated Kendall tau {m['kendall_tau']:.3f}"
    )


def _supernet_search(
    rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report
) -> None:
    import numpy as np

    from nas.latency import BatchLatency
    from service.orchestration.device_latency import latency_source
    from supernets import get_space

    device = out["device"]["device"]
    space = get_space("ofa-mbv3-tiny")
    with rt.session() as s:
        model = latency_source(
            s, supernet_records.get_supernet(s, opts.supernet_name), _device(s, device)
        )
    rng = np.random.default_rng(opts.seed)
    predicted = BatchLatency(model, space, device).predict_archs(
        [space.sample(rng) for _ in range(500)]
    )
    budget = round(float(np.percentile(predicted, 40)), 3)
    spec = {
        "supernet": opts.supernet_name,
        "device": device,
        "latency_budget_ms": budget,
        "n_evaluations": opts.search_evaluations,
        "batch_size": opts.search_batch,
        "bn_images": opts.bn_images,
        "seed": opts.seed,
    }
    report(f"  budget {budget} ms (40th percentile of this CPU's predicted latencies)")
    result = _run_job(rt, opts, spec, "quickstart-supernet")
    out["search"] = {"budget_ms": budget, "result": result}
    reused = " (stored from an earlier run)" if result.get("reused") else ""
    report(f"search under {budget} ms on {device}: {result['message']}{reused}")
    checks = result.get("verified_latency", [])
    for check in checks:
        predicted = check.get("predicted_ms")
        said = "not predicted" if predicted is None else f"predicted {predicted:.3f} ms"
        drift = check.get("drift")
        how = (
            ""
            if drift is None
            else f" (raw {check['raw_ms']:.3f} ms; reference anchors ran x{drift:.2f} "
            "their registered latency, divided out)"
        )
        report(f"  checked for real: {said}, measured {check['measured_ms']:.3f} ms{how}")
        for warning in check.get("warnings", []):
            report(f"  WARNING: this machine is too noisy to measure latency: {warning}")
    agreement = latency_agreement(checks)
    if agreement is not None:
        out["search"]["latency_error"] = agreement
        report(
            f"  predicted vs measured latency: median error {100 * agreement['median']:.1f}% "
            f"over {agreement['n']} checked subnet(s)"
        )


def latency_agreement(checks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Median and each |predicted - measured| / measured of the subnets checked
    for real that had a prediction (None when none had)."""
    import numpy as np

    errors = [
        abs(c["predicted_ms"] - c["measured_ms"]) / c["measured_ms"]
        for c in checks
        if c.get("predicted_ms") is not None and c.get("measured_ms")
    ]
    if not errors:
        return None
    return {"n": len(errors), "median": float(np.median(errors)), "errors": errors}


def _export_step(rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report) -> None:
    from service.orchestration.export import choose_subnet, export_subnet

    name = opts.supernet_name
    device, budget = out["device"]["device"], out["search"]["budget_ms"]
    with rt.session() as s:
        best, closest = subnets.best_under_budget(
            s, supernet_records.get_supernet(s, name), _device(s, device), budget
        )
        if best is None:
            # Nothing met the budget: export the fastest evaluated subnet and say so.
            arch, provenance = choose_subnet(s, name, trial_id=closest[0].trial_id)
            report(f"nothing evaluated meets {budget} ms; exporting the fastest evaluated subnet")
        else:
            arch, provenance = choose_subnet(s, name, device=device, budget_ms=budget)
            report(
                f"best under {budget} ms: accuracy {best.accuracy:.2f}% ({best.accuracy_source}), "
                f"latency {best.latency_ms:.3f} ms ({best.latency_source})"
            )
    target = rt.settings.home / "exports" / name
    target.mkdir(parents=True, exist_ok=True)
    files = export_subnet(rt, name, arch, target, n_bn_images=opts.bn_images, provenance=provenance)
    out["export"] = files
    report(f"exported to {target}: {', '.join(sorted(Path(p).name for p in files.values()))}")
    out["plots"] = _plots(rt, opts, out)
    report(f"plots in {rt.settings.home / 'plots'}: {', '.join(sorted(out['plots']))}")


def _plots(rt: Runtime, opts: QuickstartOptions, out: dict[str, Any]) -> dict[str, str]:
    """The search's plots (every path a PNG): the front and the best under the
    budget as the service answers them (stored measurements over predictions,
    nas's rule), the job's progress, and predicted vs measured latency of the
    subnets checked for real."""
    from nas.plots import plot_latency_agreement
    from service.domain import devices
    from service.orchestration.plots import pareto_png, progress_png

    search = out["search"]
    budget = float(search["budget_ms"])
    folder = rt.settings.home / "plots"
    paths: dict[str, str] = {}
    with rt.read_session() as s:
        supernet = supernet_records.get_supernet(s, opts.supernet_name)
        device = devices.get_device(s, out["device"]["device"])
        paths["pareto"] = str(
            pareto_png(s, supernet, device, folder / "pareto.png", budget_ms=budget)
        )
        job = jobs.get_job(s, int(search["result"]["id"]))
        paths["best_vs_evaluations"] = str(progress_png(s, job, folder / "best_vs_evaluations.png"))
    checks = search["result"].get("verified_latency", [])
    checks = [c for c in checks if c.get("predicted_ms") is not None]
    if checks:
        paths["latency"] = str(
            plot_latency_agreement(
                [c["predicted_ms"] for c in checks], [c["measured_ms"] for c in checks],
                folder / "latency.png",
            )
        )  # fmt: skip
    return paths


def steps() -> list[Step]:
    return [
        Step("zero-training search on NAS-Bench-201", _nb201_search),
        Step("the supernet (shipped weights; --train: from scratch)", _supernet_step),
        Step("register this CPU: 10 reference measurements + adaptation", _device_step),
        Step("accuracy predictor from measured subnets", _predictor_step),
        Step("search the supernet under a latency budget on this CPU", _supernet_search),
        Step("best subnet under the budget: export and plots", _export_step),
    ]


def run_quickstart(rt: Runtime, opts: QuickstartOptions, report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": []}
    all_steps = steps()
    for i, step in enumerate(all_steps, start=1):
        report(f"[{i}/{len(all_steps)}] {step.name}")
        start = time.monotonic()
        step.run(rt, opts, out, report)
        seconds = time.monotonic() - start
        out["steps"].append({"step": step.name, "seconds": round(seconds, 1)})
        report(f"  ({seconds:.0f} s)")
    return out
