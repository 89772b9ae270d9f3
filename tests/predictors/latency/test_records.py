"""The measurement-record format: round trip and strict, line-numbered errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from predictors.latency.records import (
    MeasurementRecord,
    read_records,
    reference_set_id,
    split_records,
    write_records,
)


def rec(ref: int | None = 0, ms: float = 5.0, **kw: object) -> MeasurementRecord:
    arch = None if ref is not None else {"ops": ["none"] * 6}
    return MeasurementRecord(
        space=str(kw.pop("space", "nb201")),
        reference_set=str(kw.pop("reference_set", "rs1")),
        ref=ref,
        arch=arch,
        latency_ms=ms,
        **kw,  # type: ignore[arg-type]
    )


def test_round_trip_through_a_file_and_a_stream(tmp_path: Path) -> None:
    records = [rec(0, 1.5, job="9", details={"backend": "x"}), rec(1, 2.5), rec(None, 3.0)]
    assert write_records(records, tmp_path / "m.jsonl") == 3
    assert read_records(tmp_path / "m.jsonl", space="nb201", reference_set="rs1") == records
    buf = io.StringIO()
    write_records(records, buf)
    assert read_records(buf.getvalue().splitlines()) == records
    refs, extra = split_records(records, 2)
    assert refs == [1.5, 2.5] and extra == [({"ops": ["none"] * 6}, 3.0)]


def test_reference_set_id_is_stable_and_order_sensitive() -> None:
    a, b = {"ops": ["none"] * 6}, {"ops": ["skip_connect"] * 6}
    assert reference_set_id([a, b]) == reference_set_id([dict(a), dict(b)])
    assert reference_set_id([a, b]) != reference_set_id([b, a])
    assert len(reference_set_id([a])) == 12


def line(**overrides: object) -> str:
    obj = {**rec(0, 5.0).to_dict(), **overrides}
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no measurement records"),
        ("{not json", "line 1: not a JSON record"),
        (line() + "\n[1, 2]", "line 2: a record must be a JSON object"),
        (line(format="other"), "line 1: field 'format'"),
        (line(version=2), "line 1: field 'version'"),
        (line(space=""), "line 1: field 'space'"),
        (line(ref=-1), "line 1: field 'ref'"),
        (line(arch={"ops": []}), "exactly one must name the architecture"),
        (line(latency_ms="5"), "line 1: field 'latency_ms': must be a number"),
        (line(latency_ms=float("nan")), "line 1: field 'latency_ms': must be finite"),
        (line(latency_ms=float("inf")), "line 1: field 'latency_ms': must be finite"),
        (line(latency_ms=-1.0), "line 1: field 'latency_ms': .* outside"),
        (line(latency_ms=5e7), "line 1: field 'latency_ms': .* outside"),
        (line(job=3), "line 1: field 'job'"),
        (line(details=[1]), "line 1: field 'details'"),
        (line(colour="red"), r"line 1: unknown field\(s\) \['colour'\]"),
        ("\n" + line() + "\n\n" + line(latency_ms=6.0), "line 4: field 'latency_ms': conflicting"),
    ],
)
def test_bad_records_are_refused_naming_line_and_field(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_records(text)


def test_identical_repeats_are_kept_once_and_jobs_are_distinct() -> None:
    text = "\n".join([line(), line(), line(job="1", latency_ms=7.0)])
    records = read_records(text)
    assert [(r.job, r.latency_ms) for r in records] == [(None, 5.0), ("1", 7.0)]
    with pytest.raises(ValueError, match="conflicting latencies for ref 0"):
        split_records(records, 1)


def test_wrong_space_or_reference_set_is_refused() -> None:
    with pytest.raises(ValueError, match=r"line 1: field 'space': .*'nb201', expected 'ofa-mbv3'"):
        read_records(line(), space="ofa-mbv3")
    with pytest.raises(ValueError, match="line 1: field 'reference_set'"):
        read_records(line(), reference_set="rs2")
    by_arch = rec(None, 4.0).to_json()
    with pytest.raises(ValueError, match="field 'reference_set'"):
        read_records(by_arch, reference_set="rs2")
    # a record naming its architecture by config means the same under any reference set
    assert read_records(by_arch, reference_set="rs2", allow_other_reference_set=True)
    with pytest.raises(ValueError, match="field 'reference_set'"):
        read_records(line(), reference_set="rs2", allow_other_reference_set=True)


def test_constructor_and_split_validate() -> None:
    with pytest.raises(ValueError, match="field 'latency_ms'"):
        rec(0, 0.0)
    with pytest.raises(ValueError, match="exactly one"):
        MeasurementRecord(space="s", reference_set="r", latency_ms=1.0)
    with pytest.raises(ValueError, match=r"missing for reference\(s\) \[1\]"):
        split_records([rec(0)], 2)
    with pytest.raises(ValueError, match="only 1 reference"):
        split_records([rec(0), rec(1)], 1)
