"""Train a supernet for a user and register it: the service side of
:class:`supernets.launch.TrainRequest` (in this process, or under ``torchrun``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.db import Supernet
from service.domain import subnets, supernet_records
from service.domain.errors import ConflictError, DomainError
from service.runtime import Runtime

if TYPE_CHECKING:
    from supernets.launch import TrainRequest

__all__ = ["register_checkpoint", "register_pretrained", "train_and_register"]


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
        existing.dataset = meta["dataset"]
        existing.n_classes = int(meta["n_classes"])
        existing.checkpoint_path = str(Path(checkpoint).resolve())
        existing.schedule = {
            "phases": meta["schedule"],
            "train_config": meta.get("train_config", {}),
        }
        existing.metrics = {
            "phases": manifest["phases"],  # after-phase checks: percent (supernets.train)
            "world_size": manifest.get("world_size", 1),
            subnets.ACCURACY_UNIT: "percent",
        }
        existing.status = "ready"
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
