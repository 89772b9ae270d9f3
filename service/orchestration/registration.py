"""Device registration, service side: measure or receive latencies, store them
with how they were taken, adapt the meta-learned latency predictor, and store
the adapted model as a new version with its quality.

The flow (``predictors.latency.registration`` does the ML):

* this machine: :func:`measure_local` measures the space's reference subnets
  (and a few extra ones for an honest quality figure) with the chosen backend,
  threads and batch;
* any other device: :func:`reference_package` writes the reference subnets as
  ONNX files plus a standalone runner; the user runs it there and hands the
  output to :func:`submit_latencies`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from service.db import Device, LatencyMeasurement
from service.domain import devices, predictor_records
from service.domain.devices import MeasurementIn
from service.domain.errors import ConflictError, DomainError
from service.domain.owners import LOCAL
from service.runtime import Runtime

if TYPE_CHECKING:
    from predictors.latency import DeviceSpec

__all__ = [
    "Registered",
    "device_spec",
    "is_local",
    "local_device_name",
    "measure_here",
    "measure_local",
    "parse_latency_file",
    "reference_package",
    "reference_zip",
    "registration_anchors",
    "space_with_predictor",
    "submit_latencies",
    "submit_latency_file",
    "verify_latency",
]

_KIND_OF_BACKEND = {
    "torch-cpu": "local-cpu",
    "onnxruntime-cpu": "local-onnxruntime",
    "torch-cuda": "local-cuda",
}


@dataclass(frozen=True)
class Registered:
    device: str
    space: str
    version: int
    quality: dict[str, float]
    n_measurements: int
    #: Why the measurements taken here should not be trusted (empty: the
    #: machine was quiet enough; :func:`predictors.latency.anchored.noise_warnings`).
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "space": self.space,
            "version": self.version,
            "quality": self.quality,
            "n_measurements": self.n_measurements,
            "warnings": list(self.warnings),
        }


def space_with_predictor(space_name: str) -> Any:
    """The space, if a meta-learned latency predictor can be adapted for it:
    a shipped one, or (``predictors.latency.load_pretrained``) any registered
    OFA-MobileNetV3 space, e.g. ``ofa-mbv3-w1.2`` of an imported OFA w1.2
    network, whose prior is meta-trained from the bundled w1.0 latencies and
    then adapted to the device's own measurements of that space's subnets."""
    from predictors.latency import pretrained_spaces
    from supernets import OFAMobileNetV3Space, available_spaces, get_space

    if space_name in pretrained_spaces():
        return get_space(space_name)
    if space_name in available_spaces():
        space = get_space(space_name)
        if isinstance(space, OFAMobileNetV3Space):
            return space
    raise DomainError(
        f"no meta-learned latency predictor ships for space {space_name!r}; "
        f"available: {', '.join(pretrained_spaces())} and OFA-MobileNetV3 spaces"
    )


def local_device_name(backend: str, threads: int, batch: int) -> str:
    """Default name of this machine with a backend: ``<host>-<backend>-t<threads>-b<batch>``."""
    from predictors.latency.measure import host_name

    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in host_name())
    return f"{host}-{backend}-t{threads}-b{batch}"


def _store(
    rt: Runtime,
    device_name: str,
    space: Any,
    references: Sequence[tuple[dict[str, Any], float, dict[str, Any]]],
    extra: Sequence[tuple[dict[str, Any], float, dict[str, Any]]],
    method: str,
) -> Registered:
    """Store every measurement, adapt, and store the adapted model (one transaction)."""
    from predictors.latency import adapt_device

    adaptation = adapt_device(
        space,
        [ms for _, ms, _ in references],
        extra=[(arch, ms) for arch, ms, _ in extra],
        device=device_name,
        # Extras measured here are real data too: the stored model uses them,
        # while the quality reported is that of the references-only model on
        # them (a conservative figure).
        refit_with_extra=True,
    )
    with rt.session() as s:
        device = devices.get_device(s, device_name)
        rows = [
            MeasurementIn(
                space_name=space.name,
                arch=arch,
                arch_hash=space.arch_hash(space.validate(arch)),
                latency_ms=float(ms),
                method=method,
                spread_ms=details.get("iqr_ms"),
                details=details,
                is_reference=is_ref,
            )
            for group, is_ref in ((references, True), (extra, False))
            for arch, ms, details in group
        ]
        devices.add_measurements(s, device, rows)
        stored = predictor_records.store_predictor(
            s,
            kind="latency",
            space_name=space.name,
            blob=adaptation.model.to_bytes(),
            metrics={**adaptation.quality, "outliers": list(adaptation.outliers)},
            n_train=len(references),
            device_id=device.id,
        )
        return Registered(
            device.name, space.name, stored.version, dict(adaptation.quality), len(rows)
        )


def measure_local(
    rt: Runtime,
    space_name: str,
    *,
    backend: str = "torch-cpu",
    threads: int = 1,
    batch: int = 1,
    name: str | None = None,
    n_extra: int = 10,
    repeats: int = 30,
    seed: int = 0,
    description: str = "",
    owner: str = LOCAL,
) -> Registered:
    """Register this machine (with ``backend``/``threads``/``batch``) for
    ``space_name``: measure the reference subnets and ``n_extra`` random ones for
    real, adapt the latency predictor, store everything."""
    import numpy as np

    from predictors.latency import DeviceSpec, measure_archs, reference_archs
    from predictors.latency.anchored import noise_warnings
    from predictors.latency.measure import host_name

    space = space_with_predictor(space_name)
    spec = DeviceSpec(backend=backend, threads=threads, batch=batch)
    device_name = name or local_device_name(backend, threads, batch)
    with rt.session() as s:
        existing = s.scalar(select(Device).where(Device.name == device_name))
        if existing is None:
            devices.create_device(
                s,
                device_name,
                kind=_KIND_OF_BACKEND.get(backend, "local-cpu"),
                description=description or f"{spec.name} (measured by hwnas)",
                host=host_name(),
                backend=backend,
                threads=threads,
                batch_size=batch,
                properties={"device_spec": spec.to_dict()},
                owner=owner,
            )
        elif existing.owner != owner or existing.bundled:
            raise ConflictError(f"device {device_name!r} already exists; give another name")
        elif (
            existing.backend != backend
            or existing.threads != threads
            or existing.batch_size != batch
        ):
            raise DomainError(
                f"device {device_name!r} is {existing.backend}/t{existing.threads}/b{existing.batch_size}; "
                "a different backend, thread count or batch is a different device: give another name"
            )
    refs = reference_archs(space)
    rng = np.random.default_rng(seed)
    extras = [space.sample(rng).to_dict() for _ in range(n_extra)]
    measured = measure_archs(space, [*refs, *extras], spec, repeats=repeats)
    rows = [
        (arch, m.median_ms, m.to_dict(samples=False))
        for arch, m in zip([*refs, *extras], measured, strict=True)
    ]
    stored = _store(rt, device_name, space, rows[: len(refs)], rows[len(refs) :], backend)
    warnings = noise_warnings(measured, [])
    if warnings:
        _warn(f"device {device_name}: this machine is too noisy to measure latency", warnings)
    return replace(stored, warnings=tuple(warnings))


def _warn(what: str, reasons: Sequence[str]) -> None:
    import logging

    logging.getLogger("hwnas.latency").warning(
        "%s: %s; latencies measured now may be off, measure again when it is quieter",
        what,
        "; ".join(reasons),
    )


def registration_anchors(
    session: Any, device: Device, space_name: str, n: int = 3
) -> list[tuple[dict[str, Any], float]]:
    """``n`` reference measurements of ``device``'s latest registration for
    ``space_name``, spread over their latency range: the anchors a later
    measurement on this machine is interleaved with, so that the machine's
    drift since registration cancels out (:mod:`predictors.latency.anchored`)."""
    from predictors.latency.anchored import choose_anchors

    rows = session.scalars(
        select(LatencyMeasurement)
        .where(
            LatencyMeasurement.device_id == device.id,
            LatencyMeasurement.space_name == space_name,
            LatencyMeasurement.is_reference.is_(True),
        )
        .order_by(LatencyMeasurement.id.desc())
    ).all()
    latest: dict[str, tuple[dict[str, Any], float]] = {}
    for row in rows:  # newest first: a re-registration's references win
        latest.setdefault(row.arch_hash, (dict(row.arch), float(row.latency_ms)))
    return choose_anchors(list(latest.values()), n)


def reference_package(
    rt: Runtime, device_name: str, space_name: str, out_dir: Path, *, batch: int | None = None
) -> dict[str, Any]:
    """Write the reference subnets of ``space_name`` as ONNX files, a manifest and
    a standalone ``measure.py`` for ``device_name`` to run."""
    from predictors.latency import export_reference_onnx, reference_archs

    space = space_with_predictor(space_name)
    with rt.session() as s:
        device = devices.get_device(s, device_name)
        batch = batch or device.batch_size
    paths = export_reference_onnx(space, out_dir, batch=batch)
    return {
        "device": device_name,
        "space": space.name,
        "out_dir": str(out_dir),
        "files": [p.name for p in paths],
        "references": reference_archs(space),
        "next": (
            f"on the device: python measure.py ref_*.onnx --threads N --batch {batch} > latencies.jsonl; "
            f"then: hwnas device submit {device_name} --space {space.name} --file latencies.jsonl"
        ),
    }


def reference_zip(rt: Runtime, device_name: str, space_name: str, batch: int | None = None) -> Path:
    """The reference package for ``device_name`` as a zip file, built once per
    (space, batch, reference set) and kept under ``<home>/artifacts/references``:
    building it exports ONNX files for seconds of CPU, and its content does not
    depend on the device beyond the batch size."""
    import hashlib
    import os
    import tempfile
    import zipfile

    from predictors.latency import reference_archs

    space = space_with_predictor(space_name)
    with rt.read_session() as s:
        batch = batch or devices.get_device(s, device_name).batch_size
    digest = hashlib.sha256(
        json.dumps(reference_archs(space), sort_keys=True).encode()
    ).hexdigest()[:12]
    cache = rt.settings.artifacts_dir / "references"
    target = cache / f"{space.name}-b{batch}-{digest}.zip"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        files = Path(tmp) / "package"
        reference_package(rt, device_name, space_name, files, batch=batch)
        partial = Path(tmp) / "package.zip"
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(files.iterdir()):
                if f.is_file():
                    zf.write(f, f.name)
        # Atomic: a concurrent request sees no file or a whole one.
        os.replace(partial, target)
    return target


def parse_latency_file(
    text: str,
    n_references: int,
    *,
    space: str | None = None,
    reference_set: str | None = None,
    prefix: str = "ref",
) -> tuple[list[float], list[tuple[dict[str, Any], float]], list[dict[str, Any]]]:
    """Read submitted latencies (the one reader of measured-latency files: the
    reference packages' and the search verification packages').

    Accepts measurement records (``predictors.latency.records``: what the
    package's ``measure.py`` prints; checked against ``space`` and
    ``reference_set`` when given; a verification package's reference set is
    ``job-<id>``), the JSON lines of older ``measure.py`` copies (one per
    ``<prefix>_NN.onnx``; ``median_ms`` is used), or, for references only, a JSON
    object ``{"reference_ms": [...], "extra": [{"arch": {...}, "ms": ...}]}``.
    Returns latencies in file-index order, extra pairs and per-file details.
    """
    text = text.strip()
    if not text:
        raise DomainError("the latency file is empty")
    if '"hwnas-latency-measurement"' in text.splitlines()[0]:
        from predictors.latency.records import read_records, split_records

        try:
            recs = read_records(text, space=space, reference_set=reference_set)
            ref_ms, extras = split_records(recs, n_references)
        except ValueError as exc:
            raise DomainError(str(exc)) from None
        details = {r.ref: r.details for r in recs if r.ref is not None}
        return ref_ms, extras, [details.get(i, {}) for i in range(n_references)]
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None  # JSON lines, or garbage: decided line by line below
    if isinstance(whole, dict) and "file" not in whole:
        if prefix != "ref":
            raise DomainError(
                f"give the JSON lines that measure.py printed for the {prefix}_NN.onnx files"
            )
        refs = whole.get("reference_ms")
        if not isinstance(refs, list):
            raise DomainError(
                "latency JSON needs a 'reference_ms' list (one latency per reference arch)"
            )
        extra = []
        for i, item in enumerate(whole.get("extra", [])):
            if not isinstance(item, dict) or "arch" not in item or "ms" not in item:
                raise DomainError(f"extra[{i}] must be an object with 'arch' and 'ms'")
            extra.append((item["arch"], float(item["ms"])))
        return [float(v) for v in refs], extra, [{} for _ in refs]
    records: dict[int, dict[str, Any]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DomainError(f"line {line_no} of the latency file is not JSON: {exc}") from None
        if not isinstance(record, dict):
            raise DomainError(f"line {line_no} of the latency file is not a JSON object")
        name = str(record.get("file", ""))
        head, index = f"{prefix}_", name[len(prefix) + 1 : -5]
        if not (name.startswith(head) and name.endswith(".onnx") and index.isdigit()):
            raise DomainError(f"line {line_no}: 'file' must be {prefix}_NN.onnx, got {name!r}")
        if "median_ms" not in record:
            raise DomainError(f"line {line_no}: no 'median_ms'")
        records[int(index)] = record
    what = "reference" if prefix == "ref" else "candidate"
    unknown = sorted(set(records) - set(range(n_references)))
    if unknown:
        raise DomainError(
            f"latencies for {what}(s) {unknown} that the package does not have "
            f"(it has {n_references}, numbered from 0)"
        )
    missing = sorted(set(range(n_references)) - set(records))
    if missing:
        raise DomainError(f"latencies missing for {what}(s) {missing}; expected {n_references}")
    ordered = [records[i] for i in range(n_references)]
    return [float(r["median_ms"]) for r in ordered], [], ordered


def submit_latencies(
    rt: Runtime,
    device_name: str,
    space_name: str,
    reference_ms: Sequence[float],
    *,
    extra: Sequence[tuple[dict[str, Any], float]] = (),
    details: Sequence[dict[str, Any]] | None = None,
) -> Registered:
    """Adapt ``device_name``'s latency model from latencies measured elsewhere."""
    from predictors.latency import reference_archs

    space = space_with_predictor(space_name)
    refs = reference_archs(space)
    if len(reference_ms) != len(refs):
        raise DomainError(
            f"wrong number of reference latencies: got {len(reference_ms)}, "
            f"space {space.name!r} has {len(refs)} reference architectures"
        )
    with rt.session() as s:
        devices.get_device(s, device_name)
    info = list(details) if details is not None else [{} for _ in refs]
    references = [
        (arch, float(ms), d) for arch, ms, d in zip(refs, reference_ms, info, strict=True)
    ]
    extras: list[tuple[dict[str, Any], float, dict[str, Any]]] = [
        (space.validate(arch).to_dict(), float(ms), {}) for arch, ms in extra
    ]
    return _store(rt, device_name, space, references, extras, "submitted")


def is_local(device: Device) -> bool:
    """True when ``device`` is this machine (measured by hwnas, same host)."""
    from predictors.latency.measure import host_name

    return (
        device.kind.startswith("local-")
        and device.host == host_name()
        and device.backend is not None
    )


def device_spec(device: Device) -> DeviceSpec:
    """How a local device is measured: the DeviceSpec stored when it was
    registered (``hwnas device measure``), else its backend, threads and batch."""
    from predictors.latency import DeviceSpec

    if device.backend is None:
        raise DomainError(f"device {device.name!r} has no backend: it is not measured by hwnas")
    stored = dict(device.properties.get("device_spec") or {})
    return DeviceSpec(
        backend=str(stored.get("backend", device.backend)),
        threads=int(stored.get("threads", device.threads or 1)),
        batch=int(stored.get("batch", device.batch_size)),
        host=str(stored.get("host") or device.host or ""),
    )


def verify_latency(
    rt: Runtime, device_name: str, space: Any, archs: Sequence[Any], *, repeats: int = 30
) -> list[dict[str, Any]]:
    """Measure ``archs`` for real on ``device_name`` if it is this machine, and
    store the measurements (they then take precedence over predictions in every
    answer). Each is interleaved with the device's registration anchors and
    stored at the registration's conditions (:func:`measure_here`). Returns
    :func:`measure_here`'s records; empty for other devices."""
    with rt.session() as s:
        device = devices.get_device(s, device_name)
        if not is_local(device) or not archs:
            return []
        spec = device_spec(device)
        anchors = registration_anchors(s, device, space.name)
    archs = [space.validate(a) for a in archs]
    rows, out = measure_here(space, archs, spec, anchors, repeats=repeats)
    with rt.session() as s:
        devices.add_measurements(s, devices.get_device(s, device_name), rows)
    return out


def measure_here(
    space: Any,
    archs: Sequence[Any],
    spec: DeviceSpec,
    anchors: Sequence[tuple[dict[str, Any], float]],
    *,
    repeats: int = 30,
    details: dict[str, Any] | None = None,
) -> tuple[list[MeasurementIn], list[dict[str, Any]]]:
    """Measure ``archs`` on this machine interleaved with ``anchors``: the rows
    to store (latency at the registration's conditions, the raw one and the
    drift in ``details``) and per arch ``{arch_hash, measured_ms, raw_ms,
    drift, warnings}``. A noisy machine is logged as a warning too."""
    from predictors.latency.anchored import measure_anchored

    measured = measure_anchored(space, archs, anchors, spec, repeats=repeats)
    rows, out = [], []
    for arch, m in zip(archs, measured, strict=True):
        arch_hash = space.arch_hash(arch)
        info = m.to_dict()
        rows.append(
            MeasurementIn(
                space_name=space.name,
                arch=arch.to_dict(),
                arch_hash=arch_hash,
                latency_ms=m.latency_ms,
                method=spec.backend,
                spread_ms=m.measurement.iqr_ms / m.drift,
                details={
                    **m.measurement.to_dict(samples=False),
                    **info,
                    "anchors": len(anchors),
                    **(details or {}),
                },
            )
        )
        out.append({"arch_hash": arch_hash, "measured_ms": m.latency_ms, **info})
    reasons = sorted({w for m in measured for w in m.warnings})
    if reasons:
        _warn(f"{spec.name}: this machine is too noisy to measure latency", reasons)
    return rows, out


def submit_latency_file(rt: Runtime, device_name: str, space_name: str, text: str) -> Registered:
    """Store a latency file as ``measure.py`` prints it (or an older accepted
    form, see :func:`parse_latency_file`), checked against the space and its
    reference set, and adapt the device's model: what ``hwnas device submit``
    and ``POST /v1/devices/{name}/records`` do with the same bytes."""
    from predictors.latency import reference_archs, reference_set

    space = space_with_predictor(space_name)
    refs, extra, details = parse_latency_file(
        text,
        len(reference_archs(space)),
        space=space.name,
        reference_set=reference_set(space),
    )
    return submit_latencies(rt, device_name, space.name, refs, extra=extra, details=details)
