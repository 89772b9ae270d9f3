"""Device registration: real local measurement, remote reference packages,
submitted latencies, versioned latency models, bad input."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from predictors.latency import DeviceLatencyPredictor
from service.cli import app
from service.domain import devices, predictor_records
from service.domain.errors import DomainError
from service.orchestration.device_latency import latency_source
from service.orchestration.registration import measure_local, parse_latency_file, submit_latencies
from service.runtime import Runtime
from service.settings import load_settings

runner = CliRunner()
SPACE = "ofa-mbv3-tiny"


@pytest.fixture
def rt(sqlite_url: str):
    with Runtime.open(load_settings(database_url=sqlite_url)) as handle:
        yield handle


def test_measure_this_machine_stores_measurements_and_versions(rt: Runtime) -> None:
    reg = measure_local(rt, SPACE, threads=1, n_extra=3, repeats=3, name="here")
    assert (reg.device, reg.space, reg.version, reg.n_measurements) == ("here", SPACE, 1, 13)
    assert reg.quality["n_references"] == 10 and reg.quality["n_extra"] == 3
    with rt.session() as s:
        device = devices.get_device(s, "here")
        assert (device.kind, device.backend, device.threads, device.batch_size) == (
            "local-cpu",
            "torch-cpu",
            1,
            1,
        )
        rows = devices.list_measurements(s, device)
        assert sum(r.is_reference for r in rows) == 10
        assert all(r.latency_ms > 0 and r.method == "torch-cpu" for r in rows)
        assert all(r.details["repeats"] == 3 and r.details["threads"] == 1 for r in rows)
    again = measure_local(rt, SPACE, threads=1, n_extra=0, repeats=3, name="here")
    assert again.version == 2
    with pytest.raises(DomainError, match="different device"):
        measure_local(rt, SPACE, threads=2, n_extra=0, repeats=3, name="here")


@pytest.mark.slow
def test_remote_device_flow_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    base = ["--database-url", url]
    assert runner.invoke(app, [*base, "device", "add", "edge-box"]).exit_code == 0
    out = tmp_path / "refs"
    result = runner.invoke(
        app, [*base, "device", "references", "edge-box", "--space", SPACE, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in out.glob("ref_*.onnx"))
    assert len(files) == 10
    # "On the device": the standalone runner from the package, in its own process.
    measured = subprocess.run(
        [sys.executable, "measure.py", *files, "--repeats", "3", "--warmup", "1"],
        cwd=out, capture_output=True, text=True, check=True,
    )  # fmt: skip
    latencies = tmp_path / "latencies.jsonl"
    latencies.write_text(measured.stdout)
    result = runner.invoke(
        app,
        [*base, "--json", "device", "submit", "edge-box", "--space", SPACE, "-f", str(latencies)],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["version"] == 1
    models = json.loads(
        runner.invoke(app, [*base, "--json", "device", "models", "edge-box"]).output
    )
    assert [m["version"] for m in models] == [1] and models[0]["space_name"] == SPACE

    # The runner documents itself and lists this machine's execution providers.
    helped = subprocess.run(
        [sys.executable, "measure.py", "--help"], cwd=out, capture_output=True, text=True
    )
    assert helped.returncode == 0 and "--provider" in helped.stdout and "--submit" in helped.stdout
    listed = subprocess.run(
        [sys.executable, "measure.py", "--list-providers"], cwd=out, capture_output=True, text=True
    )
    assert "CPUExecutionProvider" in listed.stdout.split()
    bad = subprocess.run(
        [sys.executable, "measure.py", files[0], "--provider", "NoSuchProvider"],
        cwd=out, capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode == 2 and "not in this onnxruntime" in bad.stderr

    # Its output posted as it is, to a running server, with a write token.
    from service.domain import tokens
    from tests.service.live_server import serving

    with Runtime.open(load_settings(database_url=url, require_auth=True)) as rt:
        with rt.session() as s:
            # The token's own device (others' are invisible to it).
            devices.create_device(s, "phone", kind="remote", owner="lab")
            _, secret = tokens.create_token(s, "lab")
        with serving(rt) as server:
            posted = subprocess.run(
                [sys.executable, "measure.py", *files[:3], "--repeats", "3", "--warmup", "1",
                 "--submit", server, "--token", secret, "--device", "phone"],
                cwd=out, capture_output=True, text=True,
            )  # fmt: skip
            # Three of ten references: refused by the server, said in one line.
            assert posted.returncode == 2 and "refused the records (422)" in posted.stderr
            posted = subprocess.run(
                [sys.executable, "measure.py", *files, "--repeats", "3", "--warmup", "1",
                 "--submit", server, "--token", secret, "--device", "phone"],
                cwd=out, capture_output=True, text=True,
            )  # fmt: skip
            assert posted.returncode == 0, posted.stderr
            assert len(posted.stdout.strip().splitlines()) == 10
        with rt.session() as s:
            phone = devices.get_device(s, "phone")
            assert len(devices.list_measurements(s, phone)) == 10


def test_submitted_model_predicts_positive_latencies(rt: Runtime) -> None:
    from service.domain import supernet_records
    from supernets import get_space

    with rt.session() as s:
        devices.create_device(s, "phone", kind="remote")
    refs = [3.0 + i for i in range(10)]
    reg = submit_latencies(rt, "phone", SPACE, refs)
    assert reg.version == 1
    with rt.session() as s:
        sn = supernet_records.register_supernet(
            s,
            "fake",
            space_name=SPACE,
            space_config=get_space(SPACE).config(),
            checkpoint_path="/nowhere",
        )
        model = latency_source(s, sn, devices.get_device(s, "phone"))
        stored = predictor_records.latest_predictor(
            s, kind="latency", device_id=devices.get_device(s, "phone").id
        )
        assert stored.metrics["n_references"] == 10
    space = get_space(SPACE)
    import numpy as np

    assert isinstance(model, DeviceLatencyPredictor)
    X = space.encode_many([space.sample(np.random.default_rng(i)) for i in range(20)])
    pred = model.predict(X)
    assert pred.shape == (20,) and (pred > 0).all() and model.device == "phone"


@pytest.mark.parametrize(
    ("refs", "message"),
    [
        ([1.0] * 9, "wrong number of reference latencies"),
        ([1.0] * 9 + [math.nan], "NaN|finite"),
        ([1.0] * 9 + [-2.0], "positive"),
    ],
)
def test_bad_latencies_are_refused_and_nothing_is_stored(
    rt: Runtime, refs: list[float], message: str
) -> None:
    with rt.session() as s:
        devices.create_device(s, "phone", kind="remote")
    with pytest.raises(ValueError, match=message):
        submit_latencies(rt, "phone", SPACE, refs)
    with rt.session() as s:
        device = devices.get_device(s, "phone")
        assert devices.list_measurements(s, device) == []
        assert predictor_records.list_predictors(s, kind="latency", device_id=device.id) == []


def test_unknown_device_and_space(rt: Runtime) -> None:
    with pytest.raises(DomainError, match="does not exist"):
        submit_latencies(rt, "ghost", SPACE, [1.0] * 10)
    with pytest.raises(DomainError, match="no meta-learned latency predictor"):
        submit_latencies(rt, "ghost", "resnet", [1.0] * 10)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ('{"extra": []}', "reference_ms"),
        ('{"file": "model.onnx", "median_ms": 1}', "ref_NN.onnx"),
        ('{"file": "ref_00.onnx", "median_ms": 1}', r"missing for reference\(s\) \[1, 2"),
        ("not json", "not JSON"),
    ],
)
def test_latency_file_errors(text: str, message: str) -> None:
    with pytest.raises(DomainError, match=message):
        parse_latency_file(text, 10)


def test_budgets_out_of_reach_are_refused_or_warned_at_submit(rt: Runtime) -> None:
    from service.domain import searches, supernet_records
    from service.orchestration.device_latency import check_budget
    from supernets import get_space
    from supernets.spaces import OFAMobileNetV3Space

    measure_local(rt, SPACE, threads=1, n_extra=0, repeats=3, name="here")
    space = get_space(SPACE)
    assert isinstance(space, OFAMobileNetV3Space)
    spec = {"supernet": "tiny", "device": "here", "n_evaluations": 5}
    with rt.session() as s:
        supernet_records.register_supernet(
            s, "tiny", space_name=SPACE, space_config=space.config(), status="ready"
        )
    warnings: list[str] = []
    with rt.session() as s:
        # Below every predicted latency: queued, with a warning naming the latency.
        searches.submit_search(
            s, {**spec, "latency_budget_ms": 1e-6}, check_latency=check_budget,
            warn=warnings.append,
        )  # fmt: skip
    assert len(warnings) == 1 and "below the fastest predicted latency" in warnings[0]
    with rt.session() as s:
        device = devices.get_device(s, "here")
        smallest = space.min_arch()
        devices.add_measurements(
            s,
            device,
            [
                devices.MeasurementIn(
                    space_name=SPACE,
                    arch=smallest.to_dict(),
                    arch_hash=space.arch_hash(smallest),
                    latency_ms=50.0,
                    method="torch-cpu",
                )
            ],
        )
    with rt.session() as s, pytest.raises(DomainError, match="smallest subnet measured 50 ms"):
        # Below the measured latency of the space's smallest subnet: refused.
        searches.submit_search(s, {**spec, "latency_budget_ms": 10}, check_latency=check_budget)
    with rt.session() as s:
        searches.submit_search(s, {**spec, "latency_budget_ms": 60}, check_latency=check_budget)


def test_latency_file_of_measurement_records() -> None:
    from predictors.latency import MeasurementRecord, write_records

    def rec(i: int, ms: float, space: str = SPACE) -> MeasurementRecord:
        return MeasurementRecord(space=space, reference_set="rs1", ref=i, latency_ms=ms)

    buf = io.StringIO()
    write_records([rec(i, 1.0 + i) for i in reversed(range(10))], buf)
    refs, extra, details = parse_latency_file(buf.getvalue(), 10, space=SPACE, reference_set="rs1")
    assert refs == [1.0 + i for i in range(10)] and extra == [] and len(details) == 10
    with pytest.raises(DomainError, match="field 'reference_set'"):
        parse_latency_file(buf.getvalue(), 10, space=SPACE, reference_set="rs2")
    other = rec(0, 1.0, space="nb201").to_json()
    with pytest.raises(DomainError, match="line 1: field 'space'"):
        parse_latency_file(other, 10, space=SPACE)


def test_registration_hints_fit_the_device_and_parse(rt: Runtime) -> None:
    """A device hwnas measures gets `device measure` with its own identity; a
    remote one the reference package and submit; each parses as written."""
    import re
    import shlex

    from predictors.latency.measure import host_name
    from service.orchestration.registration import registration_hint

    with rt.session() as s:
        here = devices.create_device(
            s, "cpu4", kind="local-cpu", host=host_name(), backend="torch-cpu", threads=4
        )
        phone = devices.create_device(s, "phone", kind="remote")
        local, remote = registration_hint(here, SPACE), registration_hint(phone, SPACE)
    assert "`hwnas device measure --space ofa-mbv3-tiny --name cpu4 --backend torch-cpu " in local
    assert "--threads 4 --batch 1`" in local
    assert "device measure" not in remote and "device references phone" in remote
    for hint in re.findall(r"`(hwnas [^`]+)`", local + remote):
        parsed = runner.invoke(app, [*shlex.split(hint)[1:], "--help"])
        assert parsed.exit_code == 0, hint
