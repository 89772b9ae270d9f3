"""Long commands show progress on stderr (a bar on a terminal, plain lines in a
pipe), fed by the library's real callbacks; stdout stays the result, so
``--json`` output is still one JSON document."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from typer.testing import CliRunner

from service.cli import app
from service.cli.progress import PlainProgress, progress_reporter
from service.orchestration.training import register_pretrained
from service.runtime import Runtime
from service.settings import load_settings
from supernets import OFAMobileNetV3Space, space_from_config

runner = CliRunner()
LINE = re.compile(r"^(?P<title>[a-z ]+): (?P<done>\d+)/(?P<total>\d+) ")


def _progress_lines(stderr: str, title: str) -> list[tuple[int, int]]:
    found = [LINE.match(line) for line in stderr.splitlines()]
    return [(int(m["done"]), int(m["total"])) for m in found if m and m["title"] == title]


def test_plain_lines_are_periodic_with_the_time_left() -> None:
    out = io.StringIO()
    report = PlainProgress("exporting", out, interval_s=3600.0)
    for done in range(5):
        report(done, 4, f"step {done}")
    lines = out.getvalue().splitlines()
    # the first line, then nothing within the interval but the last one
    assert len(lines) == 2
    assert lines[0] == "exporting: 0/4 (0%) step 0"
    assert lines[1].startswith("exporting: 4/4 (100%) step 4; took ")
    every = io.StringIO()
    report = PlainProgress("measuring", every, interval_s=0.0)
    report(0, 4, "a")
    report(1, 4, "b")
    assert "measuring: 1/4 (25%) b; about " in every.getvalue()
    assert every.getvalue().rstrip().endswith(" left")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_and_a_pipe_gets_lines() -> None:
    terminal = _Terminal()
    with progress_reporter("exporting", stream=terminal) as report:
        assert not isinstance(report, PlainProgress)
        for done in range(4):
            report(done, 3, "writing onnx")
    drawn = terminal.getvalue()
    assert "exporting: writing onnx" in drawn and "3/3" in drawn
    pipe = io.StringIO()
    with progress_reporter("exporting", stream=pipe) as report:
        assert isinstance(report, PlainProgress)
        report(3, 3, "done")
    assert pipe.getvalue().startswith("exporting: 3/3 (100%) done")


def test_device_measure_reports_every_network_and_round_and_keeps_json(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path / "home")]
    result = runner.invoke(
        app,
        [*home, "device", "measure", "--name", "here", "--extra", "1", "--repeats", "3", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["device"] == "here"
    lines = _progress_lines(result.stderr, "measuring")
    # 10 references + 1 extra: prepared once and timed in 3 rounds each, then
    # the model is adapted and stored
    total = 11 * (1 + 3) + 1
    assert lines[0] == (0, total) and lines[-1] == (total, total)
    assert all(t == total for _, t in lines)


def test_export_reports_its_stages_and_keeps_json(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Runtime.open(load_settings(home=home)) as rt:
        row = register_pretrained(rt, "digits", "ofa-mbv3-tiny-digits-hard")
        space = space_from_config(row.space_name, row.space_config)
        assert isinstance(space, OFAMobileNetV3Space)
        arch = json.dumps(space.min_arch().to_dict())
    out = tmp_path / "export"
    result = runner.invoke(
        app,
        ["--home", str(home), "export", "subnet", "-s", "digits", "--arch", arch, "-o", str(out),
         "-f", "state_dict", "--bn-images", "50", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["files"]["state_dict"]).is_file()
    # loading the supernet and data, recalibrating BN, writing the state_dict
    lines = _progress_lines(result.stderr, "exporting")
    assert lines[0] == (0, 3) and lines[-1] == (3, 3)
    # (the middle stage's line appears only when it comes 5 s after the first:
    # off a terminal, lines are throttled; test_export checks every stage)
