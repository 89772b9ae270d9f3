"""Verifying a search's answer with latencies measured on the device.

Where the search's device can be measured by the worker (a bundled table, or
this machine), ``nas.run_search`` measures for itself (``measure_latency``):
:class:`TableMeasure` and :class:`LocalMeasure` are those measurements.

A remote device cannot be: the job ends ``awaiting_verification`` with the
candidates the loop would measure, chosen at once
(:func:`verification_candidates`). The user writes them as ONNX files with the
standalone runner (:func:`verification_package`, ``hwnas search verify JOB
-o DIR``), runs it on the device, and submits the output
(:func:`submit_verification`, ``hwnas device submit NAME -f FILE --job JOB``). The measurements are stored as the device's
latency measurements, and the job's answer is re-ranked by nas's rules on
the measured candidates only (:func:`rerank`): the best is the most accurate
candidate whose *measured* latency is within budget; if none is, there is no
best and the closest list the candidates with their measured latencies.
Only the job's main device is verified this way; a remote *extra* device
keeps its predicted latencies (under the chance constraint).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import LatencyMeasurement, SearchJob
from service.domain import devices, jobs, supernet_records
from service.domain.devices import MeasurementIn
from service.domain.errors import ConflictError, DomainError
from service.domain.specs import SearchSpec, parse_spec
from service.runtime import Runtime
from supernets.progress import ProgressCallback, ignore_progress

if TYPE_CHECKING:
    from nas import Constraints, Evaluation, SearchResult, SearchSettings
    from nas.evaluators import TabularLatency
    from predictors.latency import DeviceSpec
    from supernets.spaces import SearchSpace

__all__ = [
    "CANDIDATE_PREFIX",
    "LocalMeasure",
    "TableMeasure",
    "rerank",
    "spec_constraints",
    "submit_verification",
    "verification_candidates",
    "verification_of",
    "verification_package",
]

#: Candidate files are ``cand_00.onnx`` ...: measure.py prints the file name
#: with each record, which maps a measurement back to its candidate.
CANDIDATE_PREFIX = "cand"


@dataclass
class TableMeasure:
    """A bundled table as the device's measurement (``arch -> ms``): the table
    holds real measurements of every architecture of the space."""

    table: TabularLatency

    def __call__(self, arch: Any) -> float:
        return float(self.table.predict_archs([arch])[0])


@dataclass
class LocalMeasure:
    """A real measurement on this machine with the device's stored
    :class:`predictors.latency.DeviceSpec`, interleaved with ``anchors`` (the
    device's registration measurements, ``registration_anchors``) so that the
    machine's drift since registration cancels out: the latency returned and
    stored (provenance "measured") is the one at the registration's
    conditions, what the device's latency model predicts; the raw one and the
    drift go with it. Each is stored as soon as it is taken."""

    rt: Runtime
    device_name: str
    space: SearchSpace[Any]
    spec: DeviceSpec
    job_id: int
    repeats: int = 30
    anchors: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    #: ``{arch_hash, measured_ms, raw_ms, drift, anchor_ratios, warnings}`` of
    #: every measurement taken, in order.
    taken: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, arch: Any) -> float:
        from service.orchestration.registration import measure_here

        arch = self.space.validate(arch)
        rows, out = measure_here(
            self.space,
            [arch],
            self.spec,
            self.anchors,
            repeats=self.repeats,
            details={"provenance": "measured", "job_id": self.job_id},
        )
        with self.rt.session() as s:
            devices.add_measurements(s, devices.get_device(s, self.device_name), rows)
        self.taken.append(out[0])
        return float(out[0]["measured_ms"])


def spec_constraints(spec: SearchSpec) -> Constraints:
    """The constraints a job's spec sets (what the search ran under)."""
    from nas import Constraints

    return Constraints(
        {spec.device: spec.latency_budget_ms, **spec.extra_budgets_ms},
        spec.max_macs,
        spec.max_params,
    )


def _candidate(e: Evaluation, index: int) -> dict[str, Any]:
    """One candidate as stored in the job's result: the real evaluation with its
    latencies as the search knew them, and where its measurement goes."""
    from nas.result import evaluation_summary, json_ready

    return json_ready(
        {
            "index": index,
            "file": f"{CANDIDATE_PREFIX}_{index:02d}.onnx",
            **evaluation_summary(e),
            "measured_ms": None,
        }
    )


def verification_candidates(
    result: SearchResult, device: str, cap: int, settings: SearchSettings
) -> list[dict[str, Any]]:
    """The candidates to measure on ``device``, at most ``cap``, as the loop
    would choose them (``settings.measurement_choice``) but all at once: by
    expected gain (:func:`nas.verify.by_expected_gain`, each candidate's chance
    of fitting from its predicted latency and std, other devices held to the
    answer's chance constraint), or the best under the exploring bound and the
    best of the rest in order. When none qualifies, the closest
    (:func:`nas.pareto.closest`, at most 3) instead: they are what the answer
    reports, and a measurement may show them within budget."""
    from nas.constraints import confidence_z
    from nas.verify import best_exploring, by_expected_gain, closest_exploring

    # Any value in (0, 1): below 0.5 an optimistic bound, as the loop explores.
    exploring = settings.confidence(verifying=True)
    pool = list(result.evaluations)
    chosen: list[Evaluation] = []
    if settings.measurement_choice == "gain":
        floor = min((e.accuracy for e in pool), default=0.0)
        z = confidence_z(settings.feasibility_confidence)
        chosen = by_expected_gain(pool, result.constraints, {device}, z, floor, cap)
    else:
        while len(chosen) < cap:
            found = best_exploring(pool, result.constraints, exploring, device=device)
            if found is None:
                break
            chosen.append(found)
            pool = [e for e in pool if e is not found]
    if not chosen:
        chosen = closest_exploring(pool, result.constraints, min(cap, 3), exploring, device=device)
    return [_candidate(e, i) for i, e in enumerate(chosen)]


def verification_of(job: SearchJob) -> dict[str, Any]:
    """The job's verification block, or a ConflictError saying why there is none."""
    verification = (job.result or {}).get("verification") or {}
    if not verification.get("candidates"):
        raise ConflictError(
            f"search job {job.id} is {job.state} and has no candidates to verify "
            "(only a search on a remote device ends awaiting verification)"
        )
    return dict(verification)


def verification_set(job_id: int) -> str:
    """The "reference set" a verification package's measurement records name:
    its candidates are the job's own, so a file for another job is refused."""
    return f"job-{job_id}"


def verification_package(
    rt: Runtime,
    job_id: int,
    out_dir: Path,
    *,
    on_progress: ProgressCallback = ignore_progress,
) -> dict[str, Any]:
    """Write job ``job_id``'s verification candidates as ONNX files (exported as
    deployed subnets and reference models are), the standalone ``measure.py``
    and ``manifest.json``. ``on_progress`` (``supernets.progress``) hears one
    unit per candidate exported."""
    from predictors.latency import measure as measure_module
    from predictors.latency import records as records_module
    from predictors.latency.registration import build_networks
    from supernets import space_from_config
    from supernets.export import ONNX_EXPORTER, export_onnx

    with rt.session() as s:
        job = jobs.get_job(s, job_id)
        verification = verification_of(job)
        spec = parse_spec(job.spec)
        supernet = supernet_records.get_supernet(s, spec.supernet)
        device = devices.get_device(s, verification["device"])
        space = space_from_config(supernet.space_name, supernet.space_config)
        batch, n_classes, job_name = device.batch_size, supernet.n_classes, job.name
    cands = verification["candidates"]
    try:
        nets = build_networks(space, [c["arch"] for c in cands], n_classes=n_classes)
    except ValueError as exc:
        raise DomainError(f"cannot write job {job_id}'s candidates as ONNX: {exc}") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (c, (net, _)) in enumerate(zip(cands, nets, strict=True)):
        on_progress(i, len(cands), f"exporting candidate {c['file']}")
        export_onnx(net, out_dir / c["file"])
    on_progress(len(cands), len(cands), f"exported {len(cands)} candidates")
    shutil.copyfile(measure_module.__file__, out_dir / "measure.py")
    # measure.py writes measurement records with this module (standard library only)
    shutil.copyfile(records_module.__file__, out_dir / "hwnas_records.py")
    submit = (
        f"hwnas device submit {device.name} --space {space.name} -f latencies.jsonl --job {job_id}"
    )
    manifest = {
        "job": job_id,
        "job_name": job_name,
        "device": device.name,
        "space": space.name,
        "space_config": space.config(),
        # What measure.py's records name: the candidates are this job's own set.
        "reference_set": verification_set(job_id),
        "references": [{"index": c["index"], "file": c["file"]} for c in cands],
        "batch": batch,
        "exporter": ONNX_EXPORTER,
        "budget_ms": spec.latency_budget_ms,
        "candidates": [
            {
                "index": c["index"],
                "file": c["file"],
                "arch": c["arch"],
                "arch_hash": c["arch_hash"],
                "accuracy": c["accuracy"],
                "predicted_ms": c["latency_ms"].get(device.name),
                "predicted_std_ms": c["latency_std_ms"].get(device.name),
            }
            for c in cands
        ],
        "how_to_measure": (
            f"python measure.py {CANDIDATE_PREFIX}_*.onnx --threads N --batch {batch} "
            "> latencies.jsonl"
        ),
        "then": submit,
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return {
        "job": job_id,
        "device": device.name,
        "space": space.name,
        "out_dir": str(out_dir),
        "files": [c["file"] for c in cands],
        "next": f"on the device: {manifest['how_to_measure']}; then: {submit}",
    }


def _measured(
    session: Session, device_id: int, space_name: str, hashes: Sequence[str]
) -> dict[str, float]:
    """The stored measured latency of each candidate (the smallest stored median,
    as the answers of ``service.domain.subnets`` take it)."""
    out: dict[str, float] = {}
    rows = session.execute(
        select(LatencyMeasurement.arch_hash, LatencyMeasurement.latency_ms).where(
            LatencyMeasurement.device_id == device_id,
            LatencyMeasurement.space_name == space_name,
            LatencyMeasurement.arch_hash.in_(list(hashes)),
        )
    )
    for arch_hash, ms in rows:
        out[arch_hash] = min(float(ms), out.get(arch_hash, math.inf))
    return out


def _with_measurement(c: dict[str, Any], device: str, ms: float) -> dict[str, Any]:
    """Candidate ``c`` with its measured latency on ``device`` (as a nas.pareto
    record and as the summary the answer shows)."""
    out = {k: v for k, v in c.items() if k not in ("index", "file")}
    out["latency_ms"] = {**c["latency_ms"], device: ms}
    out["latency_source"] = {**c["latency_source"], device: "measured"}
    out["latency_measured"] = {d: s == "measured" for d, s in out["latency_source"].items()}
    out["latency_std_ms"] = {d: v for d, v in c["latency_std_ms"].items() if d != device}
    out["latency_errors"] = {}
    out["measured_ms"] = ms
    return out


def rerank(
    result: dict[str, Any], spec: SearchSpec, measured: dict[str, float]
) -> tuple[dict[str, Any], bool]:
    """The job's answer from its measured candidates (module docstring); returns
    the new result and whether the verification is complete (a candidate fits
    as measured, or every candidate has been measured)."""
    from nas.pareto import best, closest, violation

    verification = dict(result["verification"])
    device = verification["device"]
    cands = [{**c, "measured_ms": measured.get(c["arch_hash"])} for c in verification["candidates"]]
    records = [
        _with_measurement(c, device, c["measured_ms"])
        for c in cands
        if c["measured_ms"] is not None
    ]
    constraints = spec_constraints(spec)
    kw: dict[str, Any] = {"device": device, "feasibility_confidence": spec.feasibility_confidence}
    found = best(records, constraints, **kw)
    complete = found is not None or len(records) == len(cands)
    out = dict(result)
    for r in records:
        r["feasible"] = violation(r, constraints, spec.feasibility_confidence) <= 0.0
    if found is not None:
        out.update(
            best=found,
            feasible=True,
            closest=[],
            message=(
                f"verified on {device}: the most accurate of {len(records)} measured "
                f"candidate(s) fits, accuracy {found['accuracy']:.2f} at "
                f"{found['latency_ms'][device]:.3f} ms (measured)"
            ),
        )
    elif complete:
        near = closest(records, constraints, len(records), **kw)
        out.update(
            best=None,
            feasible=False,
            closest=near,
            message=(
                f"none of the {len(records)} candidates measured on {device} meets "
                f"{constraints.describe()}; they are listed in closest with their measured "
                "latencies, marked infeasible"
            ),
        )
    else:
        out["message"] = (
            f"{len(records)} of {len(cands)} candidates measured on {device}, none fits yet: "
            "measure the rest"
        )
    out["best_latency_measured"] = found is not None
    out["n_latency_measurements"] = len(records)
    verification.update(candidates=cands, status="verified" if complete else "awaiting")
    out["verification"] = verification
    return out, complete


def submit_verification(
    rt: Runtime, device_name: str, space_name: str | None, text: str, job_id: int
) -> dict[str, Any]:
    """Store the latencies measured on ``device_name`` for job ``job_id``'s
    candidates (measure.py's JSON lines) and re-rank the job's answer; returns
    the job's new result."""
    from service.orchestration.registration import parse_latency_file

    with rt.session() as s:
        job = jobs.get_job(s, job_id)
        verification = verification_of(job)
        if verification["device"] != device_name:
            raise DomainError(
                f"search job {job_id} verifies device {verification['device']!r}, "
                f"not {device_name!r}"
            )
        if space_name is not None and space_name != verification["space"]:
            raise DomainError(
                f"search job {job_id} searched space {verification['space']!r}, not {space_name!r}"
            )
        cands = verification["candidates"]
        ms, _, details = parse_latency_file(
            text,
            len(cands),
            prefix=CANDIDATE_PREFIX,
            space=verification["space"],
            reference_set=verification_set(job_id),
        )
        device = devices.get_device(s, device_name)
        devices.add_measurements(
            s,
            device,
            [
                MeasurementIn(
                    space_name=verification["space"],
                    arch=c["arch"],
                    arch_hash=c["arch_hash"],
                    latency_ms=float(value),
                    method="submitted",
                    spread_ms=info.get("iqr_ms"),
                    details={**info, "provenance": "measured", "job_id": job_id},
                )
                for c, value, info in zip(cands, ms, details, strict=True)
            ],
        )
        spec = parse_spec(job.spec)

        def rerun(locked: SearchJob) -> tuple[dict[str, Any], bool]:
            assert locked.result is not None
            hashes = [c["arch_hash"] for c in cands]
            return rerank(
                locked.result, spec, _measured(s, device.id, verification["space"], hashes)
            )

        settled = jobs.settle_verification(s, job_id, rerun)
        assert settled.result is not None
        return {"job": job_id, "state": settled.state, "result": settled.result}
