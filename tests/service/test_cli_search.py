"""The README's zero-training search, through the command line, on a fresh home."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from service.cli import app
from supernets import get_space, tables

runner = CliRunner()


def hwnas(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_tabular_search_then_best_and_pareto() -> None:
    hwnas("supernet", "register-benchmark", "nb201")
    where = ["--supernet", "nb201", "--device", "nb201-pixel3"]
    hwnas("search", "submit", *where, "--budget-ms", "20", "--evaluations", "15")
    hwnas("worker", "--exit-when-idle")

    best = json.loads(hwnas("--json", "query", "best", *where, "--budget-ms", "20"))["best"]
    assert best["latency_ms"] <= 20 and best["accuracy_source"] == "measured"
    space = get_space("nb201")
    cell = str(space.validate(best["arch"]))
    assert best["accuracy"] == tables.nb201_accuracy()[cell]  # the table's own number
    # The text answer names the cell by its official NAS-Bench-201 string.
    assert f"arch: {cell}" in hwnas("query", "best", *where, "--budget-ms", "20")

    front = json.loads(hwnas("--json", "query", "pareto", *where))
    lat = [p["latency_ms"] for p in front]
    acc = [p["accuracy"] for p in front]
    assert lat == sorted(lat) and acc == sorted(acc) and len(front) >= 1
    # The best under a budget is never dominated: its accuracy is on the front.
    assert best["accuracy"] in acc


def test_query_errors_name_the_problem() -> None:
    hwnas("supernet", "register-benchmark", "nb201")
    where = ["--supernet", "nb201", "--device", "nb201-pixel3"]
    bad = runner.invoke(app, ["query", "best", *where, "--budget-ms", "-3"])
    assert bad.exit_code != 0 and "budget_ms must be positive" in bad.output
    unknown = runner.invoke(
        app, ["query", "best", "--supernet", "nb201", "--device", "nope", "--budget-ms", "20"]
    )
    assert unknown.exit_code != 0 and "device 'nope' does not exist" in unknown.output
    empty = hwnas("query", "best", *where, "--budget-ms", "20")
    assert "no evaluated subnets" in empty


def test_a_budget_below_the_fastest_tabulated_subnet_is_refused_at_submit() -> None:
    hwnas("supernet", "register-benchmark", "nb201")
    # 1 ms: pixel3's table has cells at 0.003 ms, but those have no path from
    # input to output (chance accuracy); the fastest cell that computes runs
    # in 1.055 ms, so nothing worth answering meets the budget.
    result = runner.invoke(
        app, ["search", "submit", "-s", "nb201", "-d", "nb201-pixel3", "-b", "1"]
    )
    assert result.exit_code == 1
    assert (
        "no subnet of nb201 meets 1.0 ms on nb201-pixel3: the fastest cell that computes "
        "anything runs in 1.055 ms"
    ) in result.stderr
    listed = json.loads(hwnas("--json", "search", "list"))
    assert listed == []  # nothing queued
    hwnas("search", "submit", "-s", "nb201", "-d", "nb201-pixel3", "-b", "1.1")
