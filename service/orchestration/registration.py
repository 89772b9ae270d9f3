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

Active registration (the model asks for measurements where it is least sure):
``measure_local(max_extra=N)`` measures them one by one on this machine;
for any other device :func:`round_package` writes the K-th batch, chosen from
the device's stored measurements, and :func:`submit_latency_file` stores the
round's records and re-adapts the device from everything it measured
(:func:`readapt_stored`, also what a re-adapt for a new payload does).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import Device, LatencyMeasurement, PredictorModel
from service.domain import devices, predictor_records
from service.domain.devices import MeasurementIn
from service.domain.errors import ConflictError, DomainError
from service.domain.owners import LOCAL
from service.runtime import Runtime
from supernets.progress import ProgressCallback, ignore_progress, within

if TYPE_CHECKING:
    from predictors.latency import DeviceAdaptation, DeviceSpec, MeasurementRecord

__all__ = [
    "Registered",
    "device_spec",
    "is_local",
    "local_device_name",
    "measure_here",
    "measure_local",
    "parse_latency_file",
    "readapt_stored",
    "reference_package",
    "reference_zip",
    "registration_anchors",
    "registration_hint",
    "round_package",
    "round_zip",
    "space_with_predictor",
    "submit_latencies",
    "submit_latency_file",
    "submit_measurements",
    "verify_latency",
]

_KIND_OF_BACKEND = {
    "torch-cpu": "local-cpu",
    "onnxruntime-cpu": "local-onnxruntime",
    "torch-cuda": "local-cuda",
}


@dataclass(frozen=True)
class Registered:
    """What a registration stored. ``uncertainty`` is the stored model's mean
    relative predictive sd over random subnets of the space
    (:func:`predictors.latency.uncertainty_level`); ``active`` says what
    active registration did (measured, why it stopped, the uncertainty after
    the references and after each measurement), or for a submitted round its
    number and the uncertainty before it."""

    device: str
    space: str
    version: int
    quality: dict[str, float]
    n_measurements: int
    uncertainty: float | None = None
    active: dict[str, Any] = field(default_factory=dict)
    #: Why the measurements taken here should not be trusted (empty: the
    #: machine was quiet enough; :func:`predictors.latency.anchored.noise_warnings`).
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "device": self.device,
            "space": self.space,
            "version": self.version,
            "quality": self.quality,
            "n_measurements": self.n_measurements,
            "uncertainty": self.uncertainty,
            "warnings": list(self.warnings),
        }
        if self.active:
            out["active"] = self.active
        return out


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


def registration_hint(device: Device, space_name: str) -> str:
    """What to run to give ``device`` a latency model for ``space_name``: only
    commands that work as written for that device and space."""
    from supernets import OFAMobileNetV3Space

    try:
        space = space_with_predictor(space_name)
    except DomainError as exc:
        return str(exc)
    name, buildable = device.name, isinstance(space, OFAMobileNetV3Space)
    if device.backend is not None and buildable:
        measure = (
            f"`hwnas device measure --space {space.name} --name {name} --backend "
            f"{device.backend} --threads {device.threads or 1} --batch {device.batch_size}`"
        )
        where = "" if is_local(device) else f" on its host {device.host}"
        return f"measure it{where}: {measure}"
    if buildable:
        return (
            f"`hwnas device references {name} --space {space.name} -o refs/`, run "
            "refs/measure.py on the device, then "
            f"`hwnas device submit {name} --space {space.name} -f latencies.jsonl`"
        )
    return (
        f"`hwnas device references {name} --space {space.name} -o refs/` lists the "
        f"reference architectures (refs/manifest.json); time each on the device with the "
        "space's own implementation, then submit one latency per reference, in order: "
        f"`hwnas device submit {name} --space {space.name} -f latencies.json` "
        '(a JSON object {"reference_ms": [...]})'
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
    *,
    measure: Callable[[dict[str, Any]], tuple[float, dict[str, Any]]] | None = None,
    max_extra: int = 0,
) -> Registered:
    """Adapt, then store every measurement and the adapted model (one
    transaction). With ``measure`` (``config -> (ms, details)`` on the device)
    and ``max_extra``, active registration measures up to that many more
    subnets where the model is least sure; they are stored as measurements
    marked ``"active": true`` and train the model."""
    from predictors.latency import adapt_device, uncertainty_level

    taken: list[dict[str, Any]] = []

    def measure_ms(config: dict[str, Any]) -> float:
        assert measure is not None
        ms, details = measure(config)
        taken.append({**details, "active": True})
        return ms

    adaptation = adapt_device(
        space,
        [ms for _, ms, _ in references],
        extra=[(arch, ms) for arch, ms, _ in extra],
        device=device_name,
        # Extras measured here are real data too: the stored model uses them,
        # while the quality reported is that of the references-only model on
        # them (a conservative figure).
        refit_with_extra=True,
        measure=measure_ms if measure is not None and max_extra > 0 else None,
        max_extra=max_extra if measure is not None else 0,
    )
    active_rows = [
        (arch, ms, details) for (arch, ms), details in zip(adaptation.active, taken, strict=True)
    ]
    with rt.session() as s:
        device = devices.get_device(s, device_name)
        rows = [
            _measurement_in(space, arch, ms, method, details, is_reference=is_ref)
            for group, is_ref in ((references, True), (extra, False), (active_rows, False))
            for arch, ms, details in group
        ]
        devices.add_measurements(s, device, rows)
        stored = _store_adaptation(s, device, space, adaptation)
        return Registered(
            device.name,
            space.name,
            stored.version,
            dict(adaptation.quality),
            len(rows),
            uncertainty=uncertainty_level(adaptation.model, space),
            active=_active_summary(adaptation) if measure is not None and max_extra > 0 else {},
        )


def _active_summary(adaptation: DeviceAdaptation) -> dict[str, Any]:
    return {
        "max_extra_used": len(adaptation.active),
        "stopped": adaptation.stopped,
        "uncertainty_trace": [round(u, 6) for u in adaptation.uncertainty],
    }


def _measurement_in(
    space: Any,
    arch: dict[str, Any],
    ms: float,
    method: str,
    details: dict[str, Any],
    *,
    is_reference: bool,
) -> MeasurementIn:
    return MeasurementIn(
        space_name=space.name,
        arch=arch,
        arch_hash=space.arch_hash(space.validate(arch)),
        latency_ms=float(ms),
        method=method,
        spread_ms=details.get("iqr_ms"),
        details=details,
        is_reference=is_reference,
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
    max_extra: int = 0,
    repeats: int = 30,
    seed: int = 0,
    description: str = "",
    owner: str = LOCAL,
    on_progress: ProgressCallback = ignore_progress,
) -> Registered:
    """Register this machine (with ``backend``/``threads``/``batch``) for
    ``space_name``: measure the reference subnets and ``n_extra`` random ones for
    real, adapt the latency predictor, store everything. ``on_progress``
    (``supernets.progress``) hears the measurement's units
    (:func:`predictors.latency.measure_archs`) and one more for adapting and
    storing the model (active measurements, if any, happen within that step).

    ``max_extra`` > 0 turns on active registration: after the references, up
    to that many further subnets are measured, each where the adapted model is
    least sure, stopping early once its uncertainty stops falling. They train
    the model; the ``n_extra`` random ones stay a held-out sample for the
    quality figure."""
    if max_extra < 0:
        raise DomainError(f"max_extra must be >= 0, got {max_extra}")
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
        elif existing.backend is None:
            raise DomainError(
                f"device {device_name!r} is a {existing.kind} device, whose latencies are "
                "submitted (`hwnas device references` / `hwnas device submit`); to measure "
                "this machine, give it another name (--name)"
            )
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
    measured = measure_archs(
        space, [*refs, *extras], spec, repeats=repeats, on_progress=within(on_progress, 0, 1)
    )
    rows = [
        (arch, m.median_ms, m.to_dict(samples=False))
        for arch, m in zip([*refs, *extras], measured, strict=True)
    ]

    def measure_one(config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        (m,) = measure_archs(space, [config], spec, repeats=repeats)
        return m.median_ms, m.to_dict(samples=False)

    total = len(rows) * (1 + min(5, repeats)) + 1  # measure_archs' units, then this step
    step = "measuring where the model is least sure, then adapting" if max_extra else "adapting"
    on_progress(total - 1, total, f"{step} the latency model")
    registered = _store(
        rt, device_name, space, rows[: len(refs)], rows[len(refs) :], backend,
        measure=measure_one, max_extra=max_extra,
    )  # fmt: skip
    on_progress(total, total, f"latency model v{registered.version} stored")
    warnings = noise_warnings(measured, [])
    if warnings:
        _warn(f"device {device_name}: this machine is too noisy to measure latency", warnings)
    return replace(registered, warnings=tuple(warnings))


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
    rt: Runtime,
    device_name: str,
    space_name: str,
    out_dir: Path,
    *,
    batch: int | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> dict[str, Any]:
    """Write the reference subnets of ``space_name`` as ONNX files, a manifest and
    a standalone ``measure.py`` for ``device_name`` to run: the files of
    :func:`reference_zip` (built once, then copied from its cache)."""
    from predictors.latency import reference_archs, reference_set
    from supernets import OFAMobileNetV3Space

    space = space_with_predictor(space_name)
    with rt.read_session() as s:
        batch = batch or devices.get_device(s, device_name).batch_size
    if not isinstance(space, OFAMobileNetV3Space):
        # No network builder (a tabular space such as nb201): the device times
        # the architectures with the space's own implementation.
        refs = reference_archs(space)
        submit = f"hwnas device submit {device_name} --space {space.name} -f latencies.json"
        manifest = {
            "space": space.name,
            "reference_set": reference_set(space),
            "references": [
                {"index": i, "arch": arch, "arch_str": str(space.validate(arch))}
                for i, arch in enumerate(refs)
            ],
            "how_to_measure": (
                "time each reference architecture on the device with the space's own "
                'implementation; write {"reference_ms": [one latency per reference, in order]}'
            ),
            "then": submit,
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        on_progress(1, 1, f"listed {len(refs)} reference architectures")
        return {
            "device": device_name,
            "space": space.name,
            "out_dir": str(out_dir),
            "files": [],
            "references": refs,
            "next": f"{manifest['how_to_measure']} to latencies.json; then: {submit}",
        }
    package = reference_zip(rt, device_name, space.name, batch, on_progress=on_progress)
    files = _unpack(package, out_dir, "ref_")
    return {
        "device": device_name,
        "space": space.name,
        "out_dir": str(out_dir),
        "files": files,
        "references": reference_archs(space),
        "next": (
            f"on the device: python measure.py ref_*.onnx --threads N > latencies.jsonl; "
            f"then: hwnas device submit {device_name} --space {space.name} --file latencies.jsonl"
        ),
    }


def reference_zip(
    rt: Runtime,
    device_name: str,
    space_name: str,
    batch: int | None = None,
    *,
    on_progress: ProgressCallback = ignore_progress,
) -> Path:
    """The reference package for ``device_name`` as a zip file, built once per
    (space, batch, reference set, exporter) and kept in the package cache
    (``Settings.packages_dir``): building it exports one ONNX file per
    reference (:func:`predictors.latency.export_reference_onnx`, the exporter
    of deployed subnets, seconds of CPU each), and its content does not depend
    on the device beyond the batch size. ``on_progress`` hears one unit per
    reference model exported (one unit in all when the package is cached)."""
    import torch

    from predictors.latency import export_reference_onnx, reference_archs
    from supernets.export import ONNX_EXPORTER

    space = space_with_predictor(space_name)
    with rt.read_session() as s:
        batch = batch or devices.get_device(s, device_name).batch_size
    key = {
        "references": reference_archs(space),
        # Another exporter or torch writes other graphs: a package built by
        # them is not the one deployed subnets are now exported like.
        "exporter": ONNX_EXPORTER,
        "torch": str(torch.__version__),
    }
    return _zip_once(
        rt.settings.packages_dir / f"{space.name}-b{batch}-{_digest(key)}.zip",
        lambda files: export_reference_onnx(space, files, batch=batch, on_progress=on_progress),
        on_progress,
        "reference package",
    )


def _digest(key: Any) -> str:
    """A short content key for a cached package's file name."""
    import hashlib

    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def _store_adaptation(
    session: Session, device: Device, space: Any, adaptation: DeviceAdaptation
) -> PredictorModel:
    """Store an adapted latency model as the device's next version, with its
    quality figures and the measurements it treated as outliers."""
    return predictor_records.store_predictor(
        session,
        kind="latency",
        space_name=space.name,
        blob=adaptation.model.to_bytes(),
        metrics={**adaptation.quality, "outliers": list(adaptation.outliers)},
        n_train=adaptation.model.n_measurements,
        device_id=device.id,
    )


def _zip_once(
    target: Path, build: Callable[[Path], object], on_progress: ProgressCallback, label: str
) -> Path:
    """``target``, a zip of the files ``build(folder)`` writes, built only when
    it is not there yet (its name carries the content key); ``label`` names
    the package in the progress line."""
    import fcntl
    import os
    import tempfile
    import zipfile

    # Served without the lock: reading a built package needs no lock file (a
    # shared cache may be read-only to some of its users).
    if target.is_file():
        on_progress(1, 1, f"{label} cached at {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time per package (requests, workers, processes sharing
    # the cache): the others wait for it and then serve its file.
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            on_progress(1, 1, f"{label} cached at {target}")
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            files = Path(tmp) / "package"
            build(files)
            partial = Path(tmp) / "package.zip"
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(files.iterdir()):
                    if f.is_file():
                        zf.write(f, f.name)
            # Atomic: a reader without the lock sees no file or a whole one.
            os.replace(partial, target)
    return target


def _unpack(package: Path, out_dir: Path, prefix: str = "") -> list[str]:
    """Extract a cached package into ``out_dir``; its ONNX files whose names
    start with ``prefix``, sorted."""
    import zipfile

    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(package) as zf:
        zf.extractall(out_dir)
        return sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".onnx"))


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
    and ``POST /v1/devices/{name}/records`` do with the same bytes. Records
    that name no reference (an active round's, :func:`round_package`) are
    stored and the device re-adapted from all it measured
    (:func:`submit_measurements`)."""
    from predictors.latency import reference_archs, reference_set

    space = space_with_predictor(space_name)
    first = text.strip().splitlines()[0] if text.strip() else ""
    if '"hwnas-latency-measurement"' in first:
        from predictors.latency import read_records

        try:
            records = read_records(text, space=space.name, reference_set=reference_set(space))
        except ValueError as exc:
            raise DomainError(str(exc)) from None
        if all(r.ref is None for r in records):
            # No reference in the file: further subnets (an active round's)
            jobs_named = sorted({r.job for r in records if r.job is not None})
            if jobs_named:
                raise DomainError(
                    f"these records verify search job(s) {jobs_named}: submit them with --job "
                    "(API: POST /v1/devices/{name}/latencies with job)"
                )
            return submit_measurements(rt, device_name, space, records)
    refs, extra, details = parse_latency_file(
        text,
        len(reference_archs(space)),
        space=space.name,
        reference_set=reference_set(space),
    )
    return submit_latencies(rt, device_name, space.name, refs, extra=extra, details=details)


# -- re-adapting from stored measurements; active rounds for remote devices ------------
def _round_of(details: dict[str, Any]) -> int | None:
    value = details.get("round")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def readapt_stored(
    session: Session, device: Device, space: Any, *, before_round: int | None = None
) -> DeviceAdaptation:
    """The device's latency model adapted afresh from every measurement stored
    for it in ``space`` (references, extras, active rounds, verified
    candidates), whatever reference set they were measured with
    (:func:`predictors.latency.readapt_device`). ``before_round`` leaves out
    the active rounds numbered from it on (what round K was chosen from)."""
    from predictors.latency import readapt_device

    rows = [
        r
        for r in devices.list_measurements(session, device, space_name=space.name)
        if before_round is None or (_round_of(r.details) or 0) < before_round
    ]
    refs = [r.arch for r in rows if r.is_reference]
    if not refs:
        raise DomainError(
            f"device {device.name!r} has no reference measurements for space {space.name!r}: "
            f"measure them first (`hwnas device references {device.name} --space {space.name} "
            "-o DIR`, then `hwnas device submit`)"
        )
    return readapt_device(
        space, [(r.arch, r.latency_ms) for r in rows], references=refs, device=device.name
    )


def _plan_round(
    rt: Runtime, device_name: str, space: Any, round_no: int, count: int, batch: int | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Round ``round_no``'s architectures, and what the answer reports about it."""
    from predictors.latency import propose_measurements, uncertainty_level

    if round_no < 1:
        raise DomainError(f"round must be >= 1, got {round_no}")
    if not 1 <= count <= 100:
        raise DomainError(f"count must be in [1, 100], got {count}")
    with rt.read_session() as s:
        device = devices.get_device(s, device_name)
        batch = batch or device.batch_size
        stored = devices.list_measurements(s, device, space_name=space.name)
        done = max((_round_of(r.details) or 0 for r in stored), default=0)
        if round_no > done + 1:
            raise DomainError(
                f"device {device_name!r} has submitted active rounds up to {done}: "
                f"write and submit round {done + 1} before round {round_no}"
            )
        adaptation = readapt_stored(s, device, space, before_round=round_no)
        measured = [r.arch for r in stored if (_round_of(r.details) or 0) < round_no]
    archs = propose_measurements(adaptation.model, space, count, measured=measured, seed=round_no)
    info = {
        "device": device_name,
        "space": space.name,
        "round": round_no,
        "batch": batch,
        "archs": archs,
        "n_measured_before": len(measured),
        "uncertainty": uncertainty_level(adaptation.model, space),
        "next": (
            f"on the device: python measure.py round{round_no}_*.onnx --threads N --batch {batch} "
            f"> round{round_no}.jsonl; then: hwnas device submit {device_name} --space "
            f"{space.name} --file round{round_no}.jsonl"
        ),
    }
    return archs, info


def round_package(
    rt: Runtime,
    device_name: str,
    space_name: str,
    out_dir: Path,
    round_no: int,
    *,
    count: int = 5,
    batch: int | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> dict[str, Any]:
    """Write active round ``round_no`` for a device measured elsewhere: the
    ``count`` subnets its model, re-adapted from the measurements stored before
    that round, is least sure of (:func:`predictors.latency.propose_measurements`,
    a batch that does not ask twice for the same information), as ONNX files
    with the standalone ``measure.py``: the files of :func:`round_zip` (built
    once, then copied from its cache). Deterministic: the same stored
    measurements give the same round. Round K needs rounds 1..K-1 submitted."""
    package, info = _round_zip(rt, device_name, space_name, round_no, count, batch, on_progress)
    return {**info, "out_dir": str(out_dir), "files": _unpack(package, out_dir)}


def round_zip(
    rt: Runtime,
    device_name: str,
    space_name: str,
    round_no: int,
    *,
    count: int = 5,
    batch: int | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> Path:
    """:func:`round_package` as a zip file, kept in the package cache
    (``Settings.packages_dir``, ``rounds/``) by its content (device, round,
    architectures, batch, uncertainty): asked again before anything new is
    stored, it is served without exporting again (the key also names the
    exporter and torch, as the reference package's does)."""
    return _round_zip(rt, device_name, space_name, round_no, count, batch, on_progress)[0]


def _round_zip(
    rt: Runtime,
    device_name: str,
    space_name: str,
    round_no: int,
    count: int,
    batch: int | None,
    on_progress: ProgressCallback,
) -> tuple[Path, dict[str, Any]]:
    import torch

    from predictors.latency import export_round_onnx
    from supernets.export import ONNX_EXPORTER

    space = space_with_predictor(space_name)
    archs, info = _plan_round(rt, device_name, space, round_no, count, batch)
    key = [
        device_name,
        space.name,
        round_no,
        info["batch"],
        archs,
        info["uncertainty"],  # written into the manifest
        ONNX_EXPORTER,
        str(torch.__version__),
    ]
    target = rt.settings.packages_dir / "rounds"
    package = _zip_once(
        target / f"{device_name}-{space.name}-round{round_no}-{_digest(key)}.zip",
        lambda files: export_round_onnx(
            space,
            archs,
            files,
            round_no=round_no,
            batch=info["batch"],
            manifest={"device": device_name, "uncertainty_before": info["uncertainty"]},
            on_progress=on_progress,
        ),
        on_progress,
        f"active round {round_no} package",
    )
    return package, info


def submit_measurements(
    rt: Runtime, device_name: str, space: Any, records: Sequence[MeasurementRecord]
) -> Registered:
    """Store measurement records that name their architectures by config (an
    active round's, or any further subnets measured on the device) and re-adapt
    the device's model from everything stored for it."""
    from predictors.latency import DeviceLatencyPredictor, uncertainty_level

    with rt.session() as s:
        device = devices.get_device(s, device_name)
        before: float | None = None
        previous = s.scalar(
            select(PredictorModel)
            .where(
                PredictorModel.kind == "latency",
                PredictorModel.scope == predictor_records.scope_of(device_id=device.id),
                PredictorModel.space_name == space.name,
            )
            .order_by(PredictorModel.version.desc())
            .limit(1)
        )
        if previous is not None and previous.blob is not None:
            old = DeviceLatencyPredictor.from_bytes(previous.blob)
            before = uncertainty_level(old, space) if old.has_uncertainty else None
        rounds = sorted({n for r in records if (n := _round_of(r.details)) is not None})
        rows = []
        for r in records:
            assert r.arch is not None
            try:
                arch = space.validate(r.arch).to_dict()
            except ValueError as exc:
                raise DomainError(f"record for {r.key[:80]}: {exc}") from None
            rows.append(_measurement_in(space, arch, r.latency_ms, "submitted", dict(r.details),
                                        is_reference=False))  # fmt: skip
        devices.add_measurements(s, device, rows)
        adaptation = readapt_stored(s, device, space)
        stored = _store_adaptation(s, device, space, adaptation)
        n_stored = len(devices.list_measurements(s, device, space_name=space.name))
        return Registered(
            device.name,
            space.name,
            stored.version,
            dict(adaptation.quality),
            n_stored,
            uncertainty=uncertainty_level(adaptation.model, space),
            active={"rounds": rounds, "n_submitted": len(rows), "uncertainty_before": before},
        )
