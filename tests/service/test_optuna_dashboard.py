"""The README's optuna-dashboard recipe works: optuna-dashboard, pointed at the
service's database URL, lists each search job's study (``hwnas-job-<id>``) and
its trials, with the same numbers the hwnas API reports."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app as cli
from service.runtime import Runtime
from service.settings import load_settings

optuna_dashboard = pytest.importorskip(
    "optuna_dashboard", reason="optuna-dashboard is not installed (pip install optuna-dashboard)"
)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log in the test output."""


@contextmanager
def dashboard(storage_url: str) -> Iterator[str]:
    """optuna-dashboard's WSGI app over ``storage_url``, served on a free port
    (what ``optuna-dashboard URL`` runs, without the command-line wrapper)."""
    server = make_server("127.0.0.1", 0, optuna_dashboard.wsgi(storage_url), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


@pytest.mark.slow
def test_optuna_dashboard_lists_the_stored_studies_and_their_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hwnas.db'}"
    base = ["--home", str(tmp_path), "--database-url", url]
    runner = CliRunner()
    for args in (
        ["supernet", "register-benchmark", "nb201"],
        ["search", "submit", "-s", "nb201", "-d", "nb201-pixel3", "-b", "20", "--evaluations", "8"],
        ["worker", "--exit-when-idle"],
    ):
        result = runner.invoke(cli, [*base, *args])
        assert result.exit_code == 0, result.output
    with Runtime.open(load_settings(database_url=url)) as rt, TestClient(create_app(rt)) as api:
        trials = api.get("/v1/searches/1/trials").json()
    assert len(trials) == 8

    with dashboard(url) as site:
        studies = _get(f"{site}/api/studies")["study_summaries"]
        by_name = {s["study_name"]: s for s in studies}
        assert set(by_name) == {"hwnas-job-1"}
        study = by_name["hwnas-job-1"]
        assert study["directions"] == ["maximize", "minimize"]  # accuracy, latency

        detail = _get(f"{site}/api/studies/{study['study_id']}?after=0")
        shown = [t for t in detail["trials"] if t["state"] == "Complete"]
        assert len(shown) == len(trials)
        # The dashboard's objective values are hwnas's real evaluations.
        assert sorted((t["values"][0], t["values"][1]) for t in shown) == sorted(
            (t["accuracy"], t["latency_ms"]) for t in trials
        )
