"""The main job, end to end on the embedded database and bundled data.

A list of steps (configuration is data). Each does real work through the same
service functions the CLI and API use, and reports what it did:

1. zero-training search on NAS-Bench-201 (bundled tables), scored against the
   table's oracle;
2. train an ``ofa-mbv3-tiny`` supernet on scikit-learn's digits with the
   DεpS-style shrinking schedule, and register it;
3. register this machine's CPU as a device: measure the reference subnets for
   real, adapt the meta-learned latency predictor, store it;
4. search the supernet for the most accurate subnet under a latency budget on
   this CPU: predictors propose, real evaluations (BN-recalibrated holdout
   accuracy) decide;
5. answer "best under B ms", measure the chosen subnet's latency for real, and
   export it (ONNX, TorchScript, config + state_dict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.domain import jobs, searches, subnets, supernet_records
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.orchestration.worker import Worker
from service.runtime import Runtime

__all__ = ["QuickstartOptions", "Step", "run_quickstart", "steps"]

Report = Callable[[str], None]


@dataclass(frozen=True)
class QuickstartOptions:
    """Sizes of the main job; the defaults take a few minutes on 2 CPU cores.
    :meth:`smoke` gives the smallest sizes that still exercise every step."""

    nb201_device: str = "pixel3"
    nb201_evaluations: int = 60
    supernet: str = "quickstart-digits"
    #: DεpS-style shrinking: on digits it keeps every subnet within a point of
    #: its from-scratch accuracy, where OFA's schedule loses 13 points on the
    #: smallest (benchmarks/results/supernet_quality.md).
    schedule: str = "deps"
    epochs: int = 20
    max_steps_per_epoch: int | None = None
    batch_size: int = 64
    latency_extra: int = 10
    latency_repeats: int = 20
    predictor_samples: int = 20
    search_evaluations: int = 30
    search_batch: int = 6
    bn_images: int = 500
    seed: int = 0

    @classmethod
    def smoke(cls, seed: int = 0) -> QuickstartOptions:
        return cls(
            nb201_evaluations=20, epochs=6, max_steps_per_epoch=2, batch_size=32,
            latency_extra=3, latency_repeats=3, predictor_samples=10, search_evaluations=8,
            search_batch=4, bn_images=100, seed=seed,
        )  # fmt: skip


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Runtime, QuickstartOptions, dict[str, Any], Report], None]


def _run_job(rt: Runtime, spec: dict[str, Any], name: str) -> dict[str, Any]:
    with rt.session() as s:
        job_id = searches.submit_search(
            s, spec, owner="quickstart", name=name, check_latency=check_budget
        ).id
    Worker(rt, worker_id="quickstart").run(exit_when_idle=True)
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
    budget = float(np.percentile(latency, 50))
    device = f"nb201-{opts.nb201_device}"
    result = _run_job(
        rt,
        {
            "supernet": "nb201",
            "device": device,
            "latency_budget_ms": round(budget, 3),
            "n_evaluations": opts.nb201_evaluations,
            "seed": opts.seed,
        },
        "quickstart-nb201",
    )
    _, oracle = evaluator.oracle(opts.nb201_device, budget)
    with rt.session() as s:
        best, _ = subnets.best_under_budget(
            s, supernet_records.get_supernet(s, "nb201"), _device(s, device), budget
        )
    assert best is not None
    report(
        f"nb201 on {opts.nb201_device}, budget {budget:.2f} ms (median latency): best after "
        f"{result['n_evaluations']} real evaluations {best.accuracy:.2f}% at "
        f"{best.latency_ms:.2f} ms (oracle over all 15,625 cells: {oracle:.2f}%)"
    )
    out["nb201"] = {"budget_ms": budget, "best": best.to_dict(), "oracle_accuracy": oracle}


def _device(session: Any, name: str) -> Any:
    from service.domain import devices

    return devices.get_device(session, name)


def _train(rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report) -> None:
    from service.db import Supernet
    from service.orchestration.training import train_and_register
    from supernets.launch import TrainRequest

    with rt.session() as s:
        row = s.query(Supernet).filter(Supernet.name == opts.supernet).one_or_none()
        ready = row is not None and row.status == "ready"
    if not ready:
        req = TrainRequest(
            space="ofa-mbv3-tiny", dataset="digits", schedule=opts.schedule,
            epochs=opts.epochs, batch_size=opts.batch_size, seed=opts.seed,
            max_steps_per_epoch=opts.max_steps_per_epoch, eval_images=opts.bn_images,
        )  # fmt: skip
        train_and_register(rt, opts.supernet, req, progress=_phase_reporter(report))
    with rt.session() as s:
        row = supernet_records.get_supernet(s, opts.supernet)
        last = row.metrics["phases"][-1]
        out["supernet"] = {"name": row.name, "checkpoint": row.checkpoint_path, "last_phase": last}
    accs = ", ".join(
        f"{k[9:]} {100 * v:.1f}%" for k, v in last.items() if k.startswith("accuracy_")
    )
    report(
        f"supernet {opts.supernet} ({'trained' if not ready else 'already trained'}): holdout {accs}"
    )


def _phase_reporter(report: Report) -> Callable[[Any], None]:
    def progress(event: Any) -> None:
        if event.kind == "phase_end":
            report(f"  phase {event.phase_index + 1}/{event.n_phases} {event.phase} done")

    return progress


def _device_step(rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report) -> None:
    from service.orchestration.registration import measure_local

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


def _predictor_step(
    rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report
) -> None:
    import numpy as np

    from service.orchestration.evaluation import evaluate_subnets, fit_accuracy_predictor
    from supernets import get_space

    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(opts.seed)
    archs = [space.sample(rng) for _ in range(opts.predictor_samples)]
    evaluate_subnets(
        rt, opts.supernet, archs, n_bn_images=opts.bn_images, purpose="predictor-training"
    )
    fitted = fit_accuracy_predictor(rt, opts.supernet, seed=opts.seed, tune=False)
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
            s, supernet_records.get_supernet(s, opts.supernet), _device(s, device)
        )
    rng = np.random.default_rng(opts.seed)
    predicted = BatchLatency(model, space, device).predict_archs(
        [space.sample(rng) for _ in range(500)]
    )
    budget = round(float(np.percentile(predicted, 40)), 3)
    result = _run_job(
        rt,
        {
            "supernet": opts.supernet,
            "device": device,
            "latency_budget_ms": budget,
            "n_evaluations": opts.search_evaluations,
            "batch_size": opts.search_batch,
            "bn_images": opts.bn_images,
            "seed": opts.seed,
        },
        "quickstart-supernet",
    )
    out["search"] = {"budget_ms": budget, "result": result}
    report(f"search under {budget} ms on {device}: {result['message']}")
    for check in result.get("verified_latency", []):
        predicted = check.get("predicted_ms")
        said = "not predicted" if predicted is None else f"predicted {predicted:.3f} ms"
        report(f"  checked for real: {said}, measured {check['measured_ms']:.3f} ms")


def _export_step(rt: Runtime, opts: QuickstartOptions, out: dict[str, Any], report: Report) -> None:
    from service.orchestration.export import choose_subnet, export_subnet

    device, budget = out["device"]["device"], out["search"]["budget_ms"]
    with rt.session() as s:
        best, closest = subnets.best_under_budget(
            s, supernet_records.get_supernet(s, opts.supernet), _device(s, device), budget
        )
        if best is None:
            # Nothing met the budget: export the fastest evaluated subnet and say so.
            arch, provenance = choose_subnet(s, opts.supernet, trial_id=closest[0].trial_id)
            report(f"nothing evaluated meets {budget} ms; exporting the fastest evaluated subnet")
        else:
            arch, provenance = choose_subnet(s, opts.supernet, device=device, budget_ms=budget)
            report(
                f"best under {budget} ms: accuracy {best.accuracy:.2f}% ({best.accuracy_source}), "
                f"latency {best.latency_ms:.3f} ms ({best.latency_source})"
            )
    target = rt.settings.home / "exports" / opts.supernet
    target.mkdir(parents=True, exist_ok=True)
    files = export_subnet(
        rt, opts.supernet, arch, target, n_bn_images=opts.bn_images, provenance=provenance
    )
    out["export"] = files
    report(f"exported to {target}: {', '.join(sorted(Path(p).name for p in files.values()))}")


def steps() -> list[Step]:
    return [
        Step("zero-training search on NAS-Bench-201", _nb201_search),
        Step("train an ofa-mbv3-tiny supernet on digits (DεpS-style shrinking)", _train),
        Step("register this CPU: 10 reference measurements + adaptation", _device_step),
        Step("accuracy predictor from measured subnets", _predictor_step),
        Step("search the supernet under a latency budget on this CPU", _supernet_search),
        Step("best subnet under the budget, exported", _export_step),
    ]


def run_quickstart(rt: Runtime, opts: QuickstartOptions, report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, step in enumerate(steps(), start=1):
        report(f"[{i}/{len(steps())}] {step.name}")
        step.run(rt, opts, out, report)
    return out
