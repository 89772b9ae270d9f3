"""Active registration: this machine asks for more measurements where its model
is least sure (``device measure --max-extra``); a remote device gets them in
rounds (``device references --round K``), measured by the package's own
``measure.py`` and submitted as measurement records."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from predictors.latency import (
    MeasurementRecord,
    measure_archs,
    reference_archs,
    reference_set,
    write_records,
)
from service.api import create_app
from service.cli import app
from service.domain import devices
from service.domain.errors import DomainError
from service.orchestration.registration import measure_local, round_package
from service.runtime import Runtime
from service.settings import load_settings
from supernets import get_space

runner = CliRunner()
SPACE = "ofa-mbv3-tiny"


def test_measure_with_max_extra_reports_what_it_measured(sqlite_url: str) -> None:
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        reg = measure_local(rt, SPACE, n_extra=2, max_extra=3, repeats=3, name="here")
        active = reg.to_dict()["active"]
        n = active["max_extra_used"]
        assert 1 <= n <= 3
        assert active["stopped"] in ("max_extra reached", "uncertainty stopped falling")
        assert len(active["uncertainty_trace"]) == n + 1
        assert reg.quality["n_active"] == n and reg.quality["n_extra"] == 2
        assert reg.n_measurements == 10 + 2 + n
        assert reg.uncertainty is not None and reg.uncertainty > 0
        with rt.session() as s:
            rows = devices.list_measurements(s, devices.get_device(s, "here"))
            chosen = [r for r in rows if r.details.get("active")]
            assert len(chosen) == n and not any(r.is_reference for r in chosen)
            assert all(r.method == "torch-cpu" and r.latency_ms > 0 for r in chosen)
        # --extra stays random and held out: without --max-extra nothing is chosen
        plain = measure_local(rt, SPACE, n_extra=1, repeats=3, name="here")
        assert "active" not in plain.to_dict() and plain.quality["n_active"] == 0
        with pytest.raises(DomainError, match="max_extra must be >= 0"):
            measure_local(rt, SPACE, max_extra=-1, repeats=3, name="here")


def test_api_local_measure_takes_max_extra(sqlite_url: str) -> None:
    with Runtime.open(load_settings(database_url=sqlite_url)) as rt:
        client = TestClient(create_app(rt))
        body = {"space": SPACE, "extra": 0, "max_extra": 1, "repeats": 3}
        reply = client.post("/v1/devices/local/measure", json=body)
        assert reply.status_code == 201, reply.text
        out = reply.json()
        assert out["active"]["max_extra_used"] == 1 and out["n_measurements"] == 11
        assert out["active"]["stopped"] == "max_extra reached" and out["uncertainty"] > 0
        bad = client.post("/v1/devices/local/measure", json={**body, "max_extra": -1})
        assert bad.status_code == 422


def _reference_records(path: Path) -> None:
    """The references measured on this CPU, written as measure.py writes records."""
    space = get_space(SPACE)
    refs = reference_archs(space)
    measured = measure_archs(space, refs, repeats=3, rounds=1)
    write_records(
        [
            MeasurementRecord(
                space=SPACE, reference_set=reference_set(space), ref=i, latency_ms=m.median_ms
            )
            for i, m in enumerate(measured)
        ],
        path,
    )


@pytest.mark.slow
def test_remote_active_round_end_to_end(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    base = ["--database-url", url]

    def cli(*args: str) -> dict:
        result = runner.invoke(app, [*base, "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    cli("device", "add", "edge-box")
    early = runner.invoke(
        app, [*base, "device", "references", "edge-box", "--round", "1", "-o", str(tmp_path)]
    )
    assert early.exit_code != 0 and "no reference measurements" in early.output
    refs = tmp_path / "refs.jsonl"
    _reference_records(refs)
    first = cli("device", "submit", "edge-box", "--space", SPACE, "-f", str(refs))
    assert first["version"] == 1 and first["n_measurements"] == 10

    out = tmp_path / "round1"
    info = cli("device", "references", "edge-box", "--space", SPACE, "--round", "1",
               "--count", "2", "-o", str(out))  # fmt: skip
    assert info["round"] == 1 and info["files"] == [f"round1_0{i}.onnx" for i in range(2)]
    assert info["n_measured_before"] == 10 and info["uncertainty"] > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["round"] == 1 and manifest["reference_set"] == reference_set(SPACE)
    # "On the device": the package's standalone runner, in its own process.
    measured = subprocess.run(
        [sys.executable, "measure.py", *info["files"], "--repeats", "3", "--warmup", "1"],
        cwd=out, capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = measured.stdout.strip().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["arch"] for r in records] == info["archs"]
    assert all(r["space"] == SPACE and r["details"]["round"] == 1 for r in records)

    with Runtime.open(load_settings(database_url=url)) as rt:
        client = TestClient(create_app(rt))
        # The existing checks hold for a round's records: another reference set
        # or another space is refused, and nothing is stored.
        for field, value, says in (
            ("reference_set", "0123456789ab", "reference set"),
            ("space", "ofa-mbv3", "expected 'ofa-mbv3-tiny'"),
        ):
            bad = "\n".join(json.dumps({**r, field: value}) for r in records)
            reply = client.post(
                f"/v1/devices/edge-box/records?space={SPACE}",
                content=bad,
                headers={"Content-Type": "text/plain"},
            )
            assert reply.status_code in (400, 422) and says in reply.text, reply.text
        with rt.session() as s:
            assert len(devices.list_measurements(s, devices.get_device(s, "edge-box"))) == 10
        # Round 1 is deterministic, and round 3 needs round 2 first.
        again = round_package(rt, "edge-box", SPACE, tmp_path / "again", 1, count=2)
        assert again["archs"] == info["archs"]
        with pytest.raises(DomainError, match="round 1 before round 3"):
            round_package(rt, "edge-box", SPACE, tmp_path / "r3", 3)

    round1 = tmp_path / "round1.jsonl"
    round1.write_text(measured.stdout)
    second = cli("device", "submit", "edge-box", "--space", SPACE, "-f", str(round1))
    assert second["version"] == 2 and second["n_measurements"] == 12
    assert second["quality"]["n_measured"] == 12
    assert second["active"]["rounds"] == [1] and second["active"]["n_submitted"] == 2
    assert second["uncertainty"] > 0 and second["active"]["uncertainty_before"] > 0
    models = cli("device", "models", "edge-box")
    assert [m["version"] for m in models] == [1, 2] and models[1]["n_train"] == 12

    with Runtime.open(load_settings(database_url=url)) as rt:
        # Written again after it was submitted, round 1 is still the same batch
        # (chosen from what was stored before it); round 2 asks for others.
        assert (
            round_package(rt, "edge-box", SPACE, tmp_path / "a", 1, count=2)["archs"]
            == (info["archs"])
        )
        two = round_package(rt, "edge-box", SPACE, tmp_path / "b", 2, count=2)
        assert two["n_measured_before"] == 12
        assert not {json.dumps(a, sort_keys=True) for a in two["archs"]} & {
            json.dumps(a, sort_keys=True) for a in info["archs"]
        }
        # The same round over HTTP, zipped (built once, then served as a file).
        client = TestClient(create_app(rt))
        got = client.get(f"/v1/devices/edge-box/references.zip?space={SPACE}&round=2&count=2")
        assert got.status_code == 200, got.text
        package = zipfile.ZipFile(io.BytesIO(got.content))
        manifest = json.loads(package.read("manifest.json"))
        assert [r["arch"] for r in manifest["references"]] == two["archs"]
        assert {"measure.py", "hwnas_records.py", "round2_01.onnx"} <= set(package.namelist())
        cached = client.get(f"/v1/devices/edge-box/references.zip?space={SPACE}&round=2&count=2")
        assert cached.content == got.content
        assert client.get("/v1/devices/edge-box/references.zip?round=4").status_code == 422
