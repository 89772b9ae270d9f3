"""The latency measurement record: one format for every measured latency.

A record is one JSON object per line (JSONL)::

    {"format": "hwnas-latency-measurement", "version": 1,
     "space": "ofa-mbv3-tiny", "reference_set": "3f2a9c0d81b7",
     "ref": 0,                       # or "arch": {...}: the architecture's config
     "latency_ms": 8.10,
     "job": "42",                    # optional: the search job it verifies
     "details": {...}}               # optional: how it was measured (backend, p90, ...)

* ``space`` names the search space; ``reference_set`` identifies the list of
  reference architectures the ``ref`` indices point into
  (:func:`reference_set_id`), so a record can never be matched to the wrong
  architecture after the shipped predictor's references change.
* a record names its architecture by ``ref`` (a reference index) or ``arch``
  (a config), never both.

``measure.py`` (also as the standalone copy in a reference package), the
service and the search's verification flow all read and write this format
through :func:`read_records` / :func:`write_records`. The reader is strict:
every problem is one line naming the line number and the field.

This module needs only the standard library: a reference package copies it
next to ``measure.py`` (as ``hwnas_records.py``) for devices without hwnas.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = [
    "MAX_LATENCY_MS",
    "MIN_LATENCY_MS",
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "MeasurementRecord",
    "read_records",
    "reference_set_id",
    "split_records",
    "write_records",
]

RECORD_FORMAT = "hwnas-latency-measurement"
RECORD_VERSION = 1
#: Bounds of a plausible single-inference latency. Outside them the number is a
#: unit mistake (seconds or microseconds for ms) or a broken timer, not a device.
MIN_LATENCY_MS = 1e-4
MAX_LATENCY_MS = 1e6

_FIELDS = {"format", "version", "space", "reference_set", "ref", "arch", "latency_ms", "job"}
_FIELDS |= {"details"}


def reference_set_id(configs: Sequence[Mapping[str, Any]]) -> str:
    """A short stable id of an ordered list of reference architecture configs."""
    canonical = json.dumps([dict(c) for c in configs], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class MeasurementRecord:
    """One measured latency of one architecture in one search space."""

    space: str
    reference_set: str
    latency_ms: float
    ref: int | None = None
    arch: dict[str, Any] | None = None
    job: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = _check(self.to_dict())
        if problem:
            raise ValueError(problem)

    @property
    def key(self) -> str:
        """What was measured: ``ref:N`` or the config's canonical JSON."""
        if self.ref is not None:
            return f"ref:{self.ref}"
        return "arch:" + json.dumps(self.arch, sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "space": self.space,
            "reference_set": self.reference_set,
        }
        if self.ref is not None:
            out["ref"] = self.ref
        if self.arch is not None:
            out["arch"] = self.arch
        out["latency_ms"] = self.latency_ms
        if self.job is not None:
            out["job"] = self.job
        if self.details:
            out["details"] = self.details
        return out

    def to_json(self) -> str:
        """One line of JSON (no newline)."""
        return json.dumps(self.to_dict(), allow_nan=False)


def _check(obj: Any) -> str | None:
    """The first problem of a decoded record, as ``field 'x': ...``; None if valid."""
    if not isinstance(obj, dict):
        return f"a record must be a JSON object, got {type(obj).__name__}"
    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        return f"unknown field(s) {unknown}"
    if obj.get("format") != RECORD_FORMAT:
        return f"field 'format': must be {RECORD_FORMAT!r}, got {obj.get('format')!r}"
    version = obj.get("version")
    if version != RECORD_VERSION or isinstance(version, bool):
        return f"field 'version': this hwnas reads version {RECORD_VERSION}, got {version!r}"
    for name in ("space", "reference_set"):
        value = obj.get(name)
        if not isinstance(value, str) or not value:
            return f"field {name!r}: must be a non-empty string, got {value!r}"
    has_ref, has_arch = obj.get("ref") is not None, obj.get("arch") is not None
    if has_ref == has_arch:
        return "fields 'ref'/'arch': exactly one must name the architecture"
    if has_ref:
        ref = obj["ref"]
        if not isinstance(ref, int) or isinstance(ref, bool) or ref < 0:
            return f"field 'ref': must be a reference index >= 0, got {ref!r}"
    elif not isinstance(obj["arch"], dict) or not obj["arch"]:
        return f"field 'arch': must be a non-empty config object, got {obj['arch']!r}"
    ms = obj.get("latency_ms")
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return f"field 'latency_ms': must be a number of milliseconds, got {ms!r}"
    if not math.isfinite(ms):
        return f"field 'latency_ms': must be finite, got {ms!r}"
    if not MIN_LATENCY_MS <= ms <= MAX_LATENCY_MS:
        return (
            f"field 'latency_ms': {ms!r} ms is outside [{MIN_LATENCY_MS:g}, {MAX_LATENCY_MS:g}] "
            "(seconds or microseconds given as milliseconds?)"
        )
    job = obj.get("job")
    if job is not None and not isinstance(job, str):
        return f"field 'job': must be a string or absent, got {job!r}"
    if "details" in obj and not isinstance(obj["details"], dict):
        return f"field 'details': must be an object, got {obj['details']!r}"
    return None


def read_records(
    source: str | Path | Iterable[str],
    *,
    space: str | None = None,
    reference_set: str | None = None,
    allow_other_reference_set: bool = False,
) -> list[MeasurementRecord]:
    """Parse measurement records (JSONL), strictly.

    ``source`` is a path, the text itself, or an iterable of lines. With
    ``space`` / ``reference_set`` given, a record for another space or
    reference set is refused (``allow_other_reference_set`` accepts records
    that name their architecture by config: they mean the same under any
    reference set; a ``ref`` index never does). Blank lines are skipped; an
    exact repeat of a record is kept once; two records of the same
    architecture (and job) with different latencies are refused. Every error
    is a ``ValueError`` naming the line and the field.
    """
    if isinstance(source, Path):
        lines: Iterable[str] = source.read_text(encoding="utf-8").splitlines()
    elif isinstance(source, str):
        lines = source.splitlines()
    else:
        lines = source
    out: list[MeasurementRecord] = []
    seen: dict[tuple[str, str | None], tuple[int, float]] = {}
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            # NaN / Infinity parse here and are refused below, naming the field
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"line {line_no}: not a JSON record ({exc})") from None
        problem = _check(obj)
        if problem:
            raise ValueError(f"line {line_no}: {problem}")
        if space is not None and obj["space"] != space:
            raise ValueError(
                f"line {line_no}: field 'space': record is for {obj['space']!r}, expected {space!r}"
            )
        other_set = reference_set is not None and obj["reference_set"] != reference_set
        if other_set and not (allow_other_reference_set and obj.get("arch") is not None):
            raise ValueError(
                f"line {line_no}: field 'reference_set': record is for reference set "
                f"{obj['reference_set']!r}, this predictor's is {reference_set!r} "
                "(measured with an older reference package? export it again)"
            )
        record = MeasurementRecord(
            space=obj["space"],
            reference_set=obj["reference_set"],
            latency_ms=float(obj["latency_ms"]),
            ref=obj.get("ref"),
            arch=obj.get("arch"),
            job=obj.get("job"),
            details=dict(obj.get("details") or {}),
        )
        key = (record.key, record.job)
        if key in seen:
            first, ms = seen[key]
            if ms != record.latency_ms:
                raise ValueError(
                    f"line {line_no}: field 'latency_ms': conflicting duplicate of line {first} "
                    f"for {record.key[:80]} ({record.latency_ms!r} ms vs {ms!r} ms)"
                )
            continue
        seen[key] = (line_no, record.latency_ms)
        out.append(record)
    if not out:
        raise ValueError("no measurement records (the input is empty)")
    return out


def write_records(records: Iterable[MeasurementRecord], dest: str | Path | IO[str]) -> int:
    """Write records as JSONL to a path (overwritten) or an open text stream;
    returns how many were written."""
    lines = [r.to_json() + "\n" for r in records]
    if isinstance(dest, str | Path):
        Path(dest).write_text("".join(lines), encoding="utf-8")
    else:
        dest.writelines(lines)
    return len(lines)


def split_records(
    records: Sequence[MeasurementRecord], n_references: int
) -> tuple[list[float], list[tuple[dict[str, Any], float]]]:
    """``(reference latencies in reference order, [(arch config, ms), ...])``.

    Every reference ``0 .. n_references - 1`` must be present once; ``arch``
    records are the extra measurements."""
    refs: dict[int, float] = {}
    extra: list[tuple[dict[str, Any], float]] = []
    for r in records:
        if r.ref is None:
            assert r.arch is not None
            extra.append((dict(r.arch), r.latency_ms))
        elif r.ref >= n_references:
            raise ValueError(
                f"record for ref {r.ref}: there are only {n_references} reference architectures"
            )
        elif r.ref in refs and refs[r.ref] != r.latency_ms:
            raise ValueError(f"conflicting latencies for ref {r.ref} (different jobs?)")
        else:
            refs[r.ref] = r.latency_ms
    missing = sorted(set(range(n_references)) - set(refs))
    if missing:
        raise ValueError(f"latencies missing for reference(s) {missing}; expected {n_references}")
    return [refs[i] for i in range(n_references)], extra
