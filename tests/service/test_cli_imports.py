"""Everyday commands stay light: `hwnas --help`, `query`, `search submit|list|show`
and `device list` import neither Optuna nor Alembic (checked in a fresh
interpreter, on an existing database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.domain import searches
from service.orchestration.benchmarks import register_benchmark
from service.orchestration.device_latency import check_budget
from service.runtime import Runtime
from service.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from service.cli import app
try:
    app(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in ("optuna", "alembic") if m in sys.modules)
with open(sys.argv[1], "w") as fh:
    json.dump({"code": code, "heavy": heavy}, fh)
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("light") / "home"
    with Runtime.open(load_settings(home=path)) as rt, rt.session() as s:
        register_benchmark(s)
        spec = {"supernet": "nb201", "device": "nb201-pixel3", "latency_budget_ms": 10}
        searches.submit_search(s, spec, check_latency=check_budget)
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["query", "best", "-s", "nb201", "-d", "nb201-pixel3", "-b", "20"],
        ["query", "pareto", "-s", "nb201", "-d", "nb201-pixel3"],
        ["search", "submit", "-s", "nb201", "-d", "nb201-pixel3", "-b", "20", "-n", "5"],
        ["search", "list"],
        ["search", "show", "1"],
        ["device", "list"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_command_imports_neither_optuna_nor_alembic(
    home: Path, tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / "probe.json"
    env = {**os.environ, "HWNAS_HOME": str(home), "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    result = json.loads(out.read_text())
    assert result["code"] in (0, None), result
    assert result["heavy"] == [], f"`hwnas {' '.join(args)}` imported {result['heavy']}"
