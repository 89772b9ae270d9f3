"""A failed training leaves the supernet `failed` with its reason; `hwnas
supernet remove` and `DELETE /v1/supernets/{name}` delete it and its files."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app
from service.domain import jobs, supernet_records
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.training import train_and_register
from service.runtime import Runtime
from service.settings import load_settings
from supernets.launch import TrainRequest


def test_failed_training_is_failed_with_its_reason_and_can_be_removed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(home=home)
    request = TrainRequest(dataset=f"folder:{tmp_path / 'no-such-dir'}", epochs=1)
    with Runtime.open(settings) as rt:
        try:
            train_and_register(rt, "broken", request)
        except Exception as exc:
            raised = str(exc)
        else:
            raise AssertionError("training on a missing folder must fail")
        with rt.read_session() as s:
            row = supernet_records.get_supernet(s, "broken")
            assert row.status == "failed"
            assert row.error is not None and "no-such-dir" in row.error
            assert raised in row.error
        # The run directory hwnas made for it goes with it.
        run_dir = home / "supernets" / "broken"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "partial.pt").write_bytes(b"x")

    result = CliRunner().invoke(
        app, ["--home", str(home), "--json", "supernet", "remove", "broken"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["files_removed"] == str(run_dir.resolve())
    assert not run_dir.exists()
    again = CliRunner().invoke(app, ["--home", str(home), "supernet", "remove", "broken"])
    assert again.exit_code == 1 and "does not exist" in again.output


def test_api_delete_refuses_bundled_and_busy_supernets(tmp_path: Path) -> None:
    with Runtime.open(load_settings(home=tmp_path / "home")) as rt:
        with rt.session() as s:
            register_benchmark(s)
            supernet_records.register_supernet(
                s, "mine", space_name="nb201", space_config={}, status="ready"
            )
            mine = supernet_records.get_supernet(s, "mine")
            job = jobs.submit_job(s, {}, supernet_id=mine.id)
        client = TestClient(create_app(rt))
        assert client.delete("/v1/supernets/nb201").status_code == 403
        busy = client.delete("/v1/supernets/mine")
        assert busy.status_code == 409 and "cancel" in busy.json()["error"]["message"]
        client.post(f"/v1/searches/{job.id}/cancel")
        assert client.delete("/v1/supernets/mine").status_code == 204
        assert client.get("/v1/supernets/mine").status_code == 404
        assert client.get(f"/v1/searches/{job.id}").json()["state"] == "cancelled"
