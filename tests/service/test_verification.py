"""Searches that verify their answer with measured latencies: on a bundled
table, on this host's device, and on a remote device through the
awaiting_verification flow (verification package, submitted latencies,
re-ranked answer); jobs bound to a host; the spec's new fields."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nas.constraints import DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE
from nas.evaluators import TabularLatency
from predictors.latency import reference_archs
from service.api import create_app
from service.cli import app
from service.domain import devices, jobs, searches, subnets, supernet_records
from service.domain.errors import ConflictError, DomainError
from service.domain.specs import parse_spec
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.orchestration.registration import device_spec, submit_latencies
from service.orchestration.search import search_settings
from service.orchestration.verification import LocalMeasure, submit_verification
from service.orchestration.worker import Worker
from service.runtime import Runtime
from service.settings import load_settings
from supernets import get_space

runner = CliRunner()
NB201 = get_space("nb201")
RASPI4 = TabularLatency("raspi4")
R4_BUDGET = float(np.percentile(RASPI4.values, 50))


def _spec(device: str, budget: float, **kw: Any) -> dict[str, Any]:
    return {
        "supernet": "nb201",
        "device": device,
        "latency_budget_ms": budget,
        "n_evaluations": 15,
        "batch_size": 5,
        **kw,
    }


def _run(rt: Runtime, spec: dict[str, Any]) -> int:
    with rt.session() as s:
        job_id = searches.submit_search(s, spec, check_latency=check_budget).id
    assert Worker(rt).run(max_jobs=1, exit_when_idle=True) == 1
    return job_id


def _remote(rt: Runtime, name: str) -> None:
    """A remote device known only through 10 measured references (raspi4's table)."""
    with rt.session() as s:
        devices.create_device(s, name, kind="remote")
    refs = [RASPI4(NB201.validate(a)) for a in reference_archs(NB201)]
    submit_latencies(rt, name, "nb201", refs)


def _lines(candidates: list[dict[str, Any]], ms: Any) -> str:
    """What measure.py prints on the device: one JSON record per candidate file."""
    return "\n".join(
        json.dumps({"file": c["file"], "median_ms": ms(c), "iqr_ms": 0.01}) for c in candidates
    )


# -- the spec ------------------------------------------------------------------------------
def test_spec_fields_default_and_validate() -> None:
    spec = parse_spec(_spec("d", 1.0))
    assert spec.feasibility_confidence == 0.9 and spec.max_latency_measurements == 10
    assert parse_spec(_spec("d", 1.0, max_latency_measurements=0)).max_latency_measurements == 0
    for bad in (0.5, 1.0, 0.2):
        with pytest.raises(ValueError, match="feasibility_confidence"):
            parse_spec(_spec("d", 1.0, feasibility_confidence=bad))
    assert spec.verified_feasibility_confidence == 0.3 == DEFAULT_VERIFIED_FEASIBILITY_CONFIDENCE
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="verified_feasibility_confidence"):
            parse_spec(_spec("d", 1.0, verified_feasibility_confidence=bad))
    # Both reach the loop's settings.
    settings = search_settings(
        parse_spec(_spec("d", 1.0, feasibility_confidence=0.8, verified_feasibility_confidence=0.7))
    )
    assert (settings.feasibility_confidence, settings.confidence(verifying=True)) == (0.8, 0.7)
    for bad_n in (-1, 101):
        with pytest.raises(ValueError, match="max_latency_measurements"):
            parse_spec(_spec("d", 1.0, max_latency_measurements=bad_n))


# -- a bundled table verifies for real -------------------------------------------------------
@dataclass
class Searched:
    rt: Runtime
    table_job: int
    unverified_job: int
    remote_job: int
    all_over_job: int
    remote_uncapped_job: int


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searched]:
    db = tmp_path_factory.mktemp("verification") / "hwnas.db"
    with Runtime.open(load_settings(database_url=f"sqlite:///{db}", require_auth=False)) as rt:
        with rt.session() as s:
            register_benchmark(s)
        _remote(rt, "edge")
        _remote(rt, "edge2")
        pixel3 = float(np.percentile(TabularLatency("pixel3").values, 25))
        yield Searched(
            rt,
            _run(rt, _spec("nb201-pixel3", pixel3, feasibility_confidence=0.75)),
            _run(rt, _spec("nb201-pixel3", pixel3, max_latency_measurements=0)),
            _run(rt, _spec("edge", R4_BUDGET, max_latency_measurements=4)),
            _run(rt, _spec("edge2", R4_BUDGET, max_latency_measurements=3, seed=1)),
            _run(rt, _spec("edge", R4_BUDGET, max_latency_measurements=0, seed=2)),
        )


@pytest.mark.slow  # the module's five searches take ~20 s
def test_a_table_device_is_verified_by_its_table(searched: Searched) -> None:
    with searched.rt.session() as s:
        job = jobs.get_job(s, searched.table_job)
        plain = jobs.get_job(s, searched.unverified_job)
        assert job.state == "succeeded" == plain.state, (job.error, plain.error)
        assert job.required_host is None
        result, unverified = job.result, plain.result
    assert result is not None and unverified is not None
    # The spec's confidence reached the loop's settings.
    assert result["feasibility_confidence"] == 0.75
    assert unverified["feasibility_confidence"] == 0.9
    assert 1 <= result["n_latency_measurements"] <= 10
    assert result["best_latency_measured"] is True
    best = result["best"]
    assert best["latency_ms"]["nb201-pixel3"] <= result["budget_ms"]
    assert best["latency_ms"]["nb201-pixel3"] == pytest.approx(
        TabularLatency("pixel3")(NB201.validate(best["arch"]))
    )
    # A cap of 0: nothing measured through the loop (the table is still the latency).
    assert unverified["n_latency_measurements"] == 0
    assert "verification" not in result and "verification" not in unverified


# -- a remote device: awaiting verification, then re-ranked ----------------------------------
@pytest.mark.slow  # the module's five searches take ~20 s
def test_a_remote_search_awaits_the_candidates_measurements(searched: Searched) -> None:
    with searched.rt.session() as s:
        job = jobs.get_job(s, searched.remote_job)
        assert job.state == "awaiting_verification", job.error
        assert job.worker_id is None and job.lease_expires_at is None
        result = job.result
    assert result is not None
    v = result["verification"]
    assert v["status"] == "awaiting" and v["device"] == "edge" and v["space"] == "nb201"
    cands = v["candidates"]
    assert 1 <= len(cands) <= 4
    assert [c["file"] for c in cands] == [f"cand_{i:02d}.onnx" for i in range(len(cands))]
    # Chosen by expected gain: distinct, none hopeless (each predicted within 4
    # std of the budget; a candidate may be predicted a little over it).
    assert all(c["latency_source"]["edge"] == "predicted" for c in cands)
    z = [(R4_BUDGET - c["latency_ms"]["edge"]) / c["latency_std_ms"]["edge"] for c in cands]
    assert all(v > -4 for v in z)
    assert len({c["arch_hash"] for c in cands}) == len(cands)
    assert "awaiting verification on edge" in result["message"]
    assert result["best_latency_measured"] is False


@pytest.mark.slow  # the module's five searches take ~20 s
def test_a_remote_search_with_no_measurements_succeeds_predicted(searched: Searched) -> None:
    with searched.rt.session() as s:
        job = jobs.get_job(s, searched.remote_uncapped_job)
        assert job.state == "succeeded", job.error
        result = job.result
    assert result is not None and "verification" not in result
    assert result["best"]["latency_source"]["edge"] == "predicted"
    assert result["best_latency_measured"] is False and result["n_latency_measurements"] == 0


@pytest.mark.slow  # the module's five searches take ~20 s
def test_submitted_measurements_rerank_the_answer(searched: Searched) -> None:
    rt, job_id = searched.rt, searched.remote_job
    with rt.session() as s:
        cands = jobs.get_job(s, job_id).result["verification"]["candidates"]  # type: ignore[index]
    if len(cands) < 2:
        pytest.skip("this search proposed a single candidate: nothing to re-rank")
    # What the device "measured": the most accurate candidate is over the budget
    # (its prediction was wrong), every other one fits.
    true_ms = {
        c["arch_hash"]: R4_BUDGET * (1.5 if i == 0 else 0.5 + 0.01 * i) for i, c in enumerate(cands)
    }
    text = _lines(cands, lambda c: true_ms[c["arch_hash"]])
    with pytest.raises(DomainError, match="verifies device 'edge', not 'edge2'"):
        submit_verification(rt, "edge2", None, text, job_id)
    with pytest.raises(DomainError, match="not 'ofa-mbv3'"):
        submit_verification(rt, "edge", "ofa-mbv3", text, job_id)
    with pytest.raises(DomainError, match=r"missing for candidate\(s\) \[0\]"):
        submit_verification(
            rt, "edge", None, text.split("\n", 1)[1] if len(cands) > 1 else "{}", job_id
        )
    out = submit_verification(rt, "edge", "nb201", text, job_id)
    assert out["state"] == "succeeded"
    result = out["result"]
    # Expected, written out: the most accurate candidate whose true latency fits.
    fitting = [c for c in cands if true_ms[c["arch_hash"]] <= R4_BUDGET]
    assert fitting and len(fitting) < len(cands)
    want = max(fitting, key=lambda c: (c["accuracy"], -true_ms[c["arch_hash"]]))
    assert result["best"]["arch_hash"] == want["arch_hash"]
    assert result["best"]["latency_ms"]["edge"] == true_ms[want["arch_hash"]]
    assert result["best"]["latency_source"]["edge"] == "measured"
    assert result["best_latency_measured"] is True and result["feasible"] is True
    assert result["n_latency_measurements"] == len(cands)
    assert result["verification"]["status"] == "verified"
    assert [c["measured_ms"] for c in result["verification"]["candidates"]] == [
        true_ms[c["arch_hash"]] for c in cands
    ]
    with rt.session() as s:
        device = devices.get_device(s, "edge")
        rows = [
            r
            for r in devices.list_measurements(s, device, space_name="nb201")
            if not r.is_reference
        ]
        assert {r.arch_hash for r in rows} == set(true_ms)
        assert all(
            r.method == "submitted"
            and r.details["provenance"] == "measured"
            and r.details["job_id"] == job_id
            for r in rows
        )
        # The stored answers now use the measured latency of these subnets.
        sn = supernet_records.get_supernet(s, "nb201")
        pool = {c.arch_hash: c for c in subnets.candidate_points(s, sn, device)}
        for arch_hash, ms in true_ms.items():
            assert pool[arch_hash].latency_source == "measured"
            assert pool[arch_hash].latency_ms == ms
    # Submitting again re-ranks from every stored measurement (still succeeded).
    again = submit_verification(rt, "edge", None, text, job_id)
    assert again["state"] == "succeeded" and again["result"]["best"] == result["best"]


@pytest.mark.slow  # the module's five searches take ~20 s
def test_every_candidate_over_budget_leaves_no_best(searched: Searched) -> None:
    rt, job_id = searched.rt, searched.all_over_job
    client = TestClient(create_app(rt))
    listed = client.get(f"/v1/searches/{job_id}/verification")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["state"] == "awaiting_verification" and body["device"] == "edge2"
    cands = body["candidates"]
    assert 1 <= len(cands) <= 3
    over = {c["arch_hash"]: 2.0 * R4_BUDGET + c["index"] for c in cands}
    records = [{"file": c["file"], "median_ms": over[c["arch_hash"]]} for c in cands]
    bad = client.post(
        "/v1/devices/edge2/latencies", json={"job": job_id, "reference_ms": [1.0] * 10}
    )
    assert bad.status_code == 422 and "records" in bad.json()["error"]["message"]
    posted = client.post("/v1/devices/edge2/latencies", json={"job": job_id, "records": records})
    assert posted.status_code == 201, posted.text
    out = posted.json()
    assert out["state"] == "succeeded"
    result = out["result"]
    assert result["best"] is None and result["feasible"] is False
    assert result["best_latency_measured"] is False
    assert "none of the" in result["message"]
    closest = result["closest"]
    assert sorted(c["arch_hash"] for c in closest) == sorted(over)
    # Nearest to the budget first, each with its measured latency.
    assert [c["latency_ms"]["edge2"] for c in closest] == sorted(over.values())
    assert all(c["latency_source"]["edge2"] == "measured" for c in closest)
    assert all(c["feasible"] is False for c in closest)


@pytest.mark.slow  # the module's five searches take ~20 s
def test_jobs_without_a_verification_list_refuse_it(searched: Searched) -> None:
    client = TestClient(create_app(searched.rt))
    answer = client.get(f"/v1/searches/{searched.table_job}/verification")
    assert answer.status_code == 409 and "no candidates" in answer.json()["error"]["message"]
    with pytest.raises(ConflictError, match="no candidates"):
        submit_verification(searched.rt, "nb201-pixel3", None, "{}", searched.table_job)


@pytest.mark.slow  # the module's five searches take ~20 s
def test_nb201_candidates_cannot_become_onnx(searched: Searched, tmp_path: Path) -> None:
    url = str(searched.rt.settings.resolved_database_url)
    result = runner.invoke(
        app,
        ["--database-url", url, "search", "verify", str(searched.remote_job), "-o", str(tmp_path)],
    )
    assert result.exit_code != 0
    assert "cannot write job" in result.output and "nb201" in result.output
    client = TestClient(create_app(searched.rt))
    zipped = client.get(f"/v1/searches/{searched.remote_job}/verification.zip")
    assert zipped.status_code == 422 and "cannot write job" in zipped.json()["error"]["message"]


# -- the remote flow with real ONNX files ------------------------------------------------------
@pytest.mark.slow
def test_verify_package_measure_and_submit_through_the_cli(tmp_path: Path) -> None:
    """An OFA space: the package's ONNX files run in measure.py in their own process,
    and the output re-ranks the job."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(2)]
    with Runtime.open(load_settings(database_url=url)) as rt, rt.session() as s:
        supernet_records.register_supernet(
            s, "tiny", space_name=space.name, space_config=space.config(), status="ready",
            checkpoint_path="/nowhere", n_classes=10,
        )  # fmt: skip
        devices.create_device(s, "board", kind="remote")
        job = jobs.submit_job(s, _spec("board", 1e6, supernet="tiny"))
        cands = [
            {
                "index": i, "file": f"cand_{i:02d}.onnx", "arch": a.to_dict(),
                "arch_str": str(a), "arch_hash": space.arch_hash(a), "trial_number": i,
                "accuracy": 50.0 - i, "accuracy_source": "measured",
                "latency_ms": {"board": 1.0}, "latency_source": {"board": "predicted"},
                "latency_std_ms": {}, "macs": None, "params": None, "measured_ms": None,
            }
            for i, a in enumerate(archs)
        ]  # fmt: skip
        job.state = "awaiting_verification"
        job.result = {
            "best": None,
            "verification": {
                "status": "awaiting", "device": "board", "space": space.name, "candidates": cands,
            },
        }  # fmt: skip
        job_id = job.id
    out = tmp_path / "verify"
    made = runner.invoke(
        app, ["--database-url", url, "search", "verify", str(job_id), "-o", str(out)]
    )
    assert made.exit_code == 0, made.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["job"] == job_id and manifest["device"] == "board"
    assert [c["file"] for c in manifest["candidates"]] == ["cand_00.onnx", "cand_01.onnx"]
    assert (out / "measure.py").exists()
    with Runtime.open(load_settings(database_url=url, require_auth=False)) as rt:
        zipped = TestClient(create_app(rt)).get(f"/v1/searches/{job_id}/verification.zip")
    assert zipped.status_code == 200, zipped.text
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert {"cand_00.onnx", "cand_01.onnx", "measure.py", "manifest.json"} <= set(
            archive.namelist()
        )
    measured = subprocess.run(
        [sys.executable, "measure.py", "cand_00.onnx", "cand_01.onnx", "--repeats", "3",
         "--warmup", "1"],
        cwd=out, capture_output=True, text=True, check=True,
    )  # fmt: skip
    latencies = tmp_path / "latencies.jsonl"
    latencies.write_text(measured.stdout)
    done = runner.invoke(
        app,
        ["--database-url", url, "--json", "device", "submit", "board", "-f", str(latencies),
         "--job", str(job_id)],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    answer = json.loads(done.output)
    assert answer["state"] == "succeeded"
    # Both fit the (huge) budget: the more accurate one, with its measured latency.
    best = answer["result"]["best"]
    assert best["arch_hash"] == cands[0]["arch_hash"]
    assert best["latency_source"]["board"] == "measured" and best["latency_ms"]["board"] > 0


# -- jobs bound to a host ------------------------------------------------------------------------
def test_local_device_jobs_are_claimed_only_on_their_host(sqlite_url: str) -> None:
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt, rt.session() as s:
        register_benchmark(s)
        devices.create_device(
            s, "lab-cpu", kind="local-cpu", host="lab-pc", backend="torch-cpu", threads=1
        )
        devices.create_device(
            s, "other-cpu", kind="local-cpu", host="other-pc", backend="torch-cpu", threads=1
        )
        bound = searches.submit_search(s, _spec("lab-cpu", 5.0))
        free = searches.submit_search(s, _spec("nb201-pixel3", 5.0))
        assert (bound.required_host, free.required_host) == ("lab-pc", None)
        with pytest.raises(DomainError, match="different hosts"):
            searches.submit_search(s, _spec("lab-cpu", 5.0, extra_devices=["other-cpu"]))
        # Bound to lab-pc, and older: a worker elsewhere (or of no host) skips it.
        elsewhere = jobs.claim_next_job(s, "w1", lease_s=30, max_attempts=3, host="other-pc")
        assert elsewhere is not None and elsewhere.id == free.id
        assert jobs.claim_next_job(s, "w2", lease_s=30, max_attempts=3, host="other-pc") is None
        assert jobs.claim_next_job(s, "w3", lease_s=30, max_attempts=3) is None
        here = jobs.claim_next_job(s, "w4", lease_s=30, max_attempts=3, host="lab-pc")
        assert here is not None and here.id == bound.id


def test_worker_claims_by_its_host(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_HOST", "lab-pc")
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        assert Worker(rt).host == "lab-pc"


def test_local_measure_is_a_real_stored_measurement(sqlite_url: str) -> None:
    """What the worker passes as measure_latency for this host's device."""
    from predictors.latency.measure import host_name

    space = get_space("ofa-mbv3-tiny")
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        with rt.session() as s:
            device = devices.create_device(
                s, "here", kind="local-cpu", host=host_name(), backend="torch-cpu", threads=1,
                properties={"device_spec": {"backend": "torch-cpu", "threads": 1, "batch": 1}},
            )  # fmt: skip
            spec = device_spec(device)
        assert (spec.backend, spec.threads, spec.batch, spec.host) == (
            "torch-cpu",
            1,
            1,
            host_name(),
        )
        measure = LocalMeasure(rt, "here", space, spec, job_id=7, repeats=3)
        arch = space.sample(np.random.default_rng(0))
        ms = measure(arch)
        (taken,) = measure.taken
        assert ms > 0 and taken["arch_hash"] == space.arch_hash(arch) and taken["measured_ms"] == ms
        assert taken["drift"] == 1.0 and taken["raw_ms"] == ms  # no anchors given
        with rt.session() as s:
            (row,) = devices.list_measurements(s, devices.get_device(s, "here"))
            assert row.latency_ms == ms and row.method == "torch-cpu"
            assert row.details["provenance"] == "measured" and row.details["job_id"] == 7


def test_local_measure_divides_out_the_drift_since_registration(sqlite_url: str) -> None:
    """Registered on a machine ten times as fast as now: the anchors, measured
    in between, scale the stored latency back to the registration's conditions
    (a factor of ten stays far outside this shared machine's load swings)."""
    from predictors.latency import measure_archs
    from predictors.latency.measure import host_name
    from service.domain.devices import MeasurementIn
    from service.orchestration.registration import registration_anchors

    space = get_space("ofa-mbv3-tiny")
    spec_dict = {"backend": "torch-cpu", "threads": 1, "batch": 1}
    refs = reference_archs(space)
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        with rt.session() as s:
            device = devices.create_device(
                s, "here", kind="local-cpu", host=host_name(), backend="torch-cpu", threads=1,
                properties={"device_spec": spec_dict},
            )  # fmt: skip
            spec = device_spec(device)
            now = measure_archs(space, refs, spec, repeats=5, rounds=1)

            def stored(factor: float) -> list[MeasurementIn]:
                return [
                    MeasurementIn(
                        space_name=space.name,
                        arch=a,
                        arch_hash=space.arch_hash(space.validate(a)),
                        latency_ms=m.median_ms * factor,
                        method="torch-cpu",
                        is_reference=True,
                    )
                    for a, m in zip(refs, now, strict=True)
                ]

            devices.add_measurements(s, device, stored(5.0))  # an older registration
            devices.add_measurements(s, device, stored(0.1))  # the latest one
            anchors = registration_anchors(s, device, space.name)
        # The latest registration's, spread from the fastest to the slowest reference.
        assert len(anchors) == 3
        latest = sorted(m.median_ms * 0.1 for m in now)
        middle = latest[round((len(latest) - 1) / 2)]
        assert [ms for _, ms in anchors] == [latest[0], middle, latest[-1]]
        measure = LocalMeasure(rt, "here", space, spec, job_id=7, repeats=9, anchors=anchors)
        ms = measure(space.sample(np.random.default_rng(1)))
        (taken,) = measure.taken
        assert 4.0 < taken["drift"] < 25.0 and len(taken["anchor_ratios"]) == 3
        assert ms == pytest.approx(taken["raw_ms"] / taken["drift"])
        with rt.session() as s:
            rows = devices.list_measurements(s, devices.get_device(s, "here"))
            row = rows[-1]
            assert row.latency_ms == pytest.approx(ms) and row.details["raw_ms"] == taken["raw_ms"]
            assert row.details["drift"] == taken["drift"] and row.details["anchors"] == 3


@pytest.mark.postgres
def test_settling_rereads_the_locked_row(postgres_url: str) -> None:
    """settle_verification re-ranks what is stored under the lock, not what the
    session loaded before, and only for jobs with a verification list. (On
    SQLite the first session's write lock keeps the other out altogether.)"""
    from service.db import upgrade

    rt = Runtime.open(load_settings(database_url=postgres_url), check_schema=False)
    try:
        upgrade(rt.engine)
        with rt.session() as s:
            job = jobs.submit_job(s, _spec("d", 1.0))
            job_id = job.id
        with rt.session() as s, pytest.raises(ConflictError, match="is queued"):
            jobs.settle_verification(s, job_id, lambda j: ({}, True))
        with rt.session() as s:
            stale = jobs.get_job(s, job_id)  # loaded before another session's change
            with rt.session() as other:
                row = jobs.get_job(other, job_id)
                row.state = "awaiting_verification"
                row.result = {"verification": {"candidates": [{"arch_hash": "a"}]}, "n": 1}
            seen: list[dict[str, Any]] = []

            def rerank(locked: Any) -> tuple[dict[str, Any], bool]:
                seen.append(dict(locked.result))
                return {**locked.result, "n": 2}, True

            settled = jobs.settle_verification(s, job_id, rerank)
            assert settled is stale and seen[0]["n"] == 1
        with rt.session() as s:
            job = jobs.get_job(s, job_id)
            assert job.state == "succeeded" and job.result is not None and job.result["n"] == 2
            assert job.finished_at is not None
    finally:
        rt.close()


def test_a_predicted_latency_keeps_its_std_in_the_trial_row(sqlite_url: str) -> None:
    """A latency model with a std (nas.UncertainLatencyModel): each trial stores the
    std of its predicted latencies, on the main device and on extra ones, and the
    answers apply the chance constraint to it."""
    from nas.records import Evaluation
    from service.db import Device, SearchJob, Supernet
    from service.orchestration.search import _trial_in

    arch = NB201.sample(np.random.default_rng(3))
    evaluation = Evaluation(
        arch=arch,
        arch_hash=NB201.arch_hash(arch),
        accuracy=90.0,
        latency_ms={"main": 4.0, "extra": 7.0, "table": 2.0},
        latency_measured={"main": False, "extra": False, "table": True},
        latency_std_ms={"main": 0.5, "extra": 1.5},
    )
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt, rt.session() as s:
        sn = supernet_records.register_supernet(
            s, "sn", space_name="nb201", space_config={}, status="ready"
        )
        main = devices.create_device(s, "main", kind="remote")
        extra = devices.create_device(s, "extra", kind="remote")
        job = jobs.submit_job(s, _spec("main", 5.0))
        row = subnets.record_trial(
            s,
            _trial_in(
                SearchJob(id=job.id),
                Supernet(id=sn.id, space_name="nb201"),
                Device(id=main.id, name="main"),
                evaluation,
            ),
        )
        assert (row.latency_ms, row.latency_source, row.latency_std_ms) == (4.0, "predicted", 0.5)
        assert row.latencies["extra"] == {"ms": 7.0, "source": "predicted", "std_ms": 1.5}
        assert row.latencies["table"] == {"ms": 2.0, "source": "measured"}
        (on_extra,) = subnets.candidate_points(s, sn, extra)
        assert on_extra.latency_std_ms == 1.5
        # 4.0 + z(0.9) * 0.5 = 4.64 ms: within 5 ms at 90%, not at 99% (5.16 ms).
        found, _ = subnets.best_under_budget(s, sn, main, 5.0)
        assert found is not None and found.latency_std_ms == 0.5
        found, closest = subnets.best_under_budget(s, sn, main, 5.0, feasibility_confidence=0.99)
        assert found is None and [c.arch_hash for c in closest] == [evaluation.arch_hash]


def test_the_remote_list_is_chosen_at_an_optimistic_exploring_confidence() -> None:
    # Default settings explore at 0.3 (below what nas.pareto judges answers
    # at). When nothing is worth measuring (every candidate predicted far over
    # the budget) the list falls back to the closest, and the "best" rule picks
    # at the same bound: neither may fail.
    from nas import Constraints, Evaluation, SearchResult, SearchSettings, TabularEvaluator
    from service.orchestration.verification import verification_candidates

    space = TabularEvaluator().space
    archs = [space.from_index(i) for i in range(4)]
    evaluations = [
        Evaluation(
            arch=a,
            arch_hash=space.arch_hash(a),
            accuracy=90.0 + i,
            latency_ms={"edge": 20.0 + i},
            latency_std_ms={"edge": 0.1},
            latency_measured={"edge": False},
        )
        for i, a in enumerate(archs)
    ]
    result = SearchResult(
        evaluations, ["edge"], Constraints({"edge": 10.0}), None, False, [], "n_evaluations",
        "", 4, "s",
    )  # fmt: skip
    settings = SearchSettings()
    assert settings.confidence(verifying=True) < 0.5
    cands = verification_candidates(result, "edge", 10, settings)
    assert [c["latency_ms"]["edge"] for c in cands] == [20.0, 21.0, 22.0]  # the 3 closest
    near = replace(evaluations[0], latency_ms={"edge": 10.02})  # fits at 0.3, not at 0.5
    result = replace(result, evaluations=[near, *evaluations[1:]])
    best_rule = verification_candidates(
        result, "edge", 10, replace(settings, measurement_choice="best")
    )
    assert [c["arch_hash"] for c in best_rule] == [near.arch_hash]
