"""Train a supernet for a user and register it: the service side of
:class:`supernets.launch.TrainRequest` (in this process, or under ``torchrun``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.db import Supernet
from service.domain import subnets, supernet_records
from service.domain.errors import ConflictError, DomainError
from service.domain.owners import Scope
from service.runtime import Runtime

if TYPE_CHECKING:
    from supernets.launch import TrainRequest

__all__ = [
    "import_ofa_supernet",
    "mark_failed",
    "register_checkpoint",
    "register_pretrained",
    "remove_supernet",
    "train_and_register",
]

log = logging.getLogger(__name__)


def register_checkpoint(
    rt: Runtime, name: str, checkpoint: Path, *, description: str = ""
) -> Supernet:
    """Register (or finish registering) a trained run directory under ``name``."""
    from supernets.train import load_supernet, read_manifest

    manifest = read_manifest(checkpoint)
    if not manifest.get("complete", False):
        done = len(manifest.get("phases", []))
        raise DomainError(f"training run {checkpoint} is not complete ({done} phase(s) done)")
    space, _, meta = load_supernet(checkpoint)
    with rt.session() as s:
        existing = s.query(Supernet).filter(Supernet.name == name).one_or_none()
        if existing is not None and existing.status == "ready":
            raise ConflictError(f"supernet {name!r} already exists")
        if existing is None:
            existing = supernet_records.register_supernet(
                s, name, space_name=space.name, space_config=space.config(), status="training"
            )
        existing.space_config = space.config()
        # An OFA import without images has no dataset: stored as {} (the
        # column is required), which the search reads as "no accuracy".
        existing.dataset = meta["dataset"] or {}
        existing.n_classes = int(meta["n_classes"])
        existing.checkpoint_path = str(Path(checkpoint).resolve())
        existing.schedule = {
            "phases": meta["schedule"],
            "train_config": meta.get("train_config", {}),
        }
        existing.metrics = {
            "phases": manifest["phases"],  # after-phase checks: percent (supernets.train)
            "world_size": manifest.get("world_size", 1),
            **({"imported_from": meta["imported_from"]} if "imported_from" in meta else {}),
            subnets.ACCURACY_UNIT: "percent",
        }
        existing.status = "ready"
        existing.error = None
        existing.description = description or existing.description
        return existing


def register_pretrained(rt: Runtime, name: str, shipped: str) -> Supernet:
    """Register the supernet ``shipped`` with hwnas (``supernets.pretrained``)
    under ``name``, or return the row if it is already registered from it.

    The row points at the packaged checkpoint file: nothing is copied or
    trained. Its metrics are the build record's per-phase checks.
    """
    from supernets.pretrained import pretrained_supernet_path
    from supernets.train import load_supernet

    path = pretrained_supernet_path(shipped).resolve()
    with rt.session() as s:
        existing = s.query(Supernet).filter(Supernet.name == name).one_or_none()
        if existing is not None:
            if existing.checkpoint_path != str(path) or existing.status != "ready":
                raise ConflictError(
                    f"supernet {name!r} exists and is not the shipped {shipped!r}; "
                    "register the shipped one under another name"
                )
            return existing
    space, _, meta = load_supernet(path)
    build = meta.get("build", {})
    with rt.session() as s:
        return supernet_records.register_supernet(
            s,
            name,
            space_name=space.name,
            space_config=space.config(),
            dataset=meta["dataset"],
            n_classes=int(meta["n_classes"]),
            checkpoint_path=str(path),
            schedule={"phases": meta["schedule"], "train_config": meta.get("train_config", {})},
            status="ready",
            metrics={
                "phases": build.get("phases", []),
                "build": {k: v for k, v in build.items() if k != "phases"},
                subnets.ACCURACY_UNIT: "percent",
            },
            description=f"shipped with hwnas: {shipped}",
        )


def train_and_register(
    rt: Runtime,
    name: str,
    request: TrainRequest,
    *,
    nproc: int = 1,
    out_dir: Path | None = None,
    progress: Callable[[Any], None] | None = None,
) -> Supernet:
    """Train a supernet (resuming an interrupted run of the same name) and register it.

    The row is created up front with status ``training`` and the run directory,
    so a killed run is visible and the same command resumes it. With ``nproc``
    above one the request runs under ``torchrun`` (DistributedDataParallel).
    """
    if nproc < 1:
        raise ValueError(f"nproc must be >= 1, got {nproc}")
    out = Path(out_dir or rt.settings.home / "supernets" / name).resolve()
    with rt.session() as s:
        row = s.query(Supernet).filter(Supernet.name == name).one_or_none()
        if row is not None and row.status == "ready":
            raise ConflictError(f"supernet {name!r} already exists")
        if row is not None and row.checkpoint_path and Path(row.checkpoint_path) != out:
            raise ConflictError(
                f"supernet {name!r} is being trained in {row.checkpoint_path}; "
                "use the same output directory to resume it"
            )
        from supernets import get_space

        space = get_space(request.space)
        if row is None:
            supernet_records.register_supernet(
                s,
                name,
                space_name=space.name,
                space_config=space.config(),
                dataset={"spec": request.dataset},
                checkpoint_path=str(out),
                status="training",
            )
        else:  # resuming a killed or failed run
            row.status, row.error = "training", None
    try:
        if nproc > 1:
            done = subprocess.run(
                request.torchrun_command(out, nproc), env=dict(os.environ), check=False
            )
            if done.returncode != 0:
                raise DomainError(
                    f"distributed training exited with code {done.returncode}; rerun to resume"
                )
        else:
            request.train(out, progress)
        return register_checkpoint(rt, name, out)
    except BaseException as exc:
        # A killed process (KeyboardInterrupt, SIGTERM) stays "training" so the
        # same command resumes it; anything else failed, and says why.
        if isinstance(exc, Exception):
            mark_failed(rt, name, f"{type(exc).__name__}: {exc}")
        raise


def mark_failed(rt: Runtime, name: str, reason: str) -> None:
    """Leave the supernet ``failed`` with ``reason`` (unless it became ready)."""
    log.error("training supernet %s failed: %s", name, reason)
    with rt.session() as s:
        row = s.query(Supernet).filter(Supernet.name == name).one_or_none()
        if row is not None and row.status != "ready":
            row.status, row.error = "failed", reason[:2000]


def _owned_files(rt: Runtime, checkpoint: str | None) -> Path | None:
    """The supernet's run directory if hwnas may delete it: one under
    ``<home>/supernets``, or any directory holding a supernet run manifest.
    Anything else (a path a user registered by hand) is left alone."""
    from supernets.train import MANIFEST_FILE

    if not checkpoint:
        return None
    path = Path(checkpoint).resolve()
    home = (rt.settings.home / "supernets").resolve()
    if not path.is_dir():
        return None
    if path.is_relative_to(home) and path != home:
        return path
    return path if (path / MANIFEST_FILE).is_file() else None


def remove_supernet(rt: Runtime, name: str, scope: Scope | None = None) -> dict[str, Any]:
    """Delete a supernet: its row (with its trials and predictors) and its run
    directory. Refused for bundled spaces and for supernets the scope does not see."""
    with rt.session() as s:
        row = supernet_records.remove_supernet(s, name, scope)
        files = _owned_files(rt, row.checkpoint_path)
    if files is not None:
        shutil.rmtree(files, ignore_errors=True)
    from service.orchestration.export import export_dir

    own = re.compile(rf"{re.escape(name)}-[0-9a-f]{{16}}\.zip")
    for cached in export_dir(rt).glob(f"{name}-*.zip"):  # exports built for the API
        if own.fullmatch(cached.name):
            cached.unlink(missing_ok=True)
    return {"name": name, "removed": True, "files_removed": str(files) if files else None}


def import_ofa_supernet(
    rt: Runtime,
    name: str,
    checkpoint: Path,
    *,
    width_mult: float = 1.0,
    dataset: str | None = None,
    n_classes: int = 1000,
    image_size: int = 224,
    out_dir: Path | None = None,
    description: str = "",
) -> Supernet:
    """Import an OFA ``OFAMobileNetV3`` checkpoint and register it as ``name``.

    ``dataset`` (e.g. ``folder:/data/imagenet/val``) is the user's images: BN
    recalibration uses its training split and accuracy its disjoint holdout
    split. Images get ImageNet's normalisation and centre crop, which OFA's
    networks expect, and labels are the positions of the class folder names
    in sorted order (OFA's ImageNet order), so every class must have its
    folder. Without a dataset the supernet is searchable for latency only.
    """
    import json as _json

    from supernets.data import DatasetSpec, folder_classes, load_dataset
    from supernets.ofa_import import import_ofa, save_imported

    with rt.session() as s:
        if s.query(Supernet).filter(Supernet.name == name).one_or_none() is not None:
            raise ConflictError(f"supernet {name!r} already exists")
    spec: DatasetSpec | None = None
    class_names: tuple[str, ...] | None = None
    if dataset:
        # What OFA's evaluation does to ImageNet images; a JSON spec may override.
        defaults = {"normalization": "imagenet", "crop_fraction": 0.875, "image_size": image_size}
        text = dataset.strip()
        if text.startswith("{"):
            spec = DatasetSpec.from_dict({**defaults, **_json.loads(text)})
        else:
            spec = DatasetSpec.parse(text, **defaults)
        if spec.kind == "folder":
            class_names = tuple(folder_classes(str(spec.path)))
        else:
            class_names = load_dataset(spec).class_names
        if len(class_names) != n_classes:
            raise DomainError(
                f"dataset {spec} has {len(class_names)} classes but the network has {n_classes} "
                "outputs: labels are the positions of the class folder names in sorted order, "
                "so every class needs its folder (empty folders are fine)"
            )
    net = import_ofa(checkpoint, width_mult=width_mult, n_classes=n_classes)
    out = Path(out_dir or rt.settings.home / "supernets" / name).resolve()
    if out.exists() and any(out.iterdir()):
        raise ConflictError(f"output directory {out} is not empty")
    save_imported(net, out, dataset=spec, class_names=class_names, source=str(checkpoint))
    return register_checkpoint(rt, name, out, description=description)
