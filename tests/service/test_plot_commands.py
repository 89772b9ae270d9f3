"""Stored results as PNG files: ``hwnas plot`` and the API's ``.png`` routes."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.api import create_app
from service.cli import app
from service.runtime import Runtime
from service.settings import load_settings

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def _hwnas(home: Path, *args: str) -> str:
    result = runner.invoke(app, ["--home", str(home), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_plots_from_the_cli_and_the_api(tmp_path: Path) -> None:
    home = tmp_path / "home"
    where = ["--supernet", "nb201", "--device", "nb201-pixel3"]
    _hwnas(home, "supernet", "register-benchmark", "nb201")
    _hwnas(home, "search", "submit", *where, "--budget-ms", "20", "--evaluations", "12")
    _hwnas(home, "worker", "--exit-when-idle")
    job_id = json.loads(_hwnas(home, "--json", "search", "list"))[0]["id"]

    front = tmp_path / "front.png"
    _hwnas(home, "plot", "pareto", *where, "--budget-ms", "20", "-o", str(front))
    progress = tmp_path / "progress.png"
    _hwnas(home, "plot", "progress", str(job_id), "-o", str(progress))
    for path in (front, progress):
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5_000

    # A table device has no stored measurements to compare: one clear line.
    bad = runner.invoke(
        app, ["--home", str(home), "plot", "latency", *where, "-o", str(tmp_path / "l.png")]
    )
    assert bad.exit_code == 1 and "has no stored latency measurement" in bad.stderr
    wrong = runner.invoke(
        app, ["--home", str(home), "plot", "pareto", *where, "-o", str(tmp_path / "f.jpg")]
    )
    assert wrong.exit_code == 1 and "PNG" in wrong.stderr

    with Runtime.open(load_settings(home=home)) as rt, TestClient(create_app(rt)) as client:
        got = client.get(
            "/v1/query/pareto.png",
            params={"supernet": "nb201", "device": "nb201-pixel3", "budget_ms": 20},
        )
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert got.content.startswith(PNG)
        job = client.get(f"/v1/searches/{job_id}/progress.png")
        assert job.status_code == 200 and job.content.startswith(PNG)
        assert client.get("/v1/searches/999/progress.png").status_code == 404


def test_latency_plot_of_a_measured_device(tmp_path: Path) -> None:
    from service.domain import devices, supernet_records
    from service.orchestration.plots import latency_png
    from service.orchestration.registration import submit_latencies
    from supernets import get_space

    space = "ofa-mbv3-tiny"
    with Runtime.open(load_settings(home=tmp_path / "home")) as rt:
        with rt.session() as s:
            devices.create_device(s, "phone", kind="remote")
            supernet_records.register_supernet(
                s, "tiny", space_name=space, space_config=get_space(space).config()
            )
        submit_latencies(rt, "phone", space, [2.0 + 0.3 * i for i in range(10)])
        with rt.read_session() as s:
            path = latency_png(
                s,
                supernet_records.get_supernet(s, "tiny"),
                devices.get_device(s, "phone"),
                tmp_path / "latency.png",
            )
    assert path.read_bytes().startswith(PNG)


def test_the_readme_shows_a_plot_with_the_command_that_drew_it() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", readme)
    assert images, "the README shows no plot"
    for image in images:
        data = (root / image).read_bytes()
        assert data.startswith(PNG) and len(data) < 200_000
        # the command that produced it is in the README, and parses as written
        command = re.search(rf"(hwnas [^`]*?-o {re.escape(image)})", readme.replace("\\\n", ""))
        assert command is not None, image
        args = shlex.split(command.group(1))[1:]
        assert runner.invoke(app, [*args, "--help"]).exit_code == 0
