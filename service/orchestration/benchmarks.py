"""Registering the bundled benchmark spaces and their devices.

``nb201`` is a zero-training space: accuracy of every cell comes from the
NAS-Bench-201 CIFAR-10 table, and its 27 devices' latencies from real
measurements (HELP / HW-NAS-Bench) shipped with hwnas. Registering it gives a
complete, realistic search service without training anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db import Device, Supernet
from service.domain import devices, supernet_records

__all__ = ["BENCHMARKS", "BenchmarkRegistration", "register_benchmark"]

BENCHMARKS = ("nb201",)


@dataclass(frozen=True)
class BenchmarkRegistration:
    supernet: Supernet
    devices: list[Device]
    created: bool


def register_benchmark(session: Session, name: str = "nb201") -> BenchmarkRegistration:
    """Register a bundled benchmark space and its table devices (idempotent)."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    from supernets import get_space
    from supernets.tables import nb201_latency

    created = False
    existing = session.scalar(select(Supernet).where(Supernet.name == name))
    if existing is None:
        space = get_space(name)
        existing = supernet_records.register_supernet(
            session,
            name,
            space_name=space.name,
            space_config=space.config(),
            dataset={
                "kind": "table",
                "name": "cifar10",
                "metric": "test accuracy after 200 epochs (%)",
            },
            n_classes=10,
            description="NAS-Bench-201 cell space, CIFAR-10 accuracy table (zero training)",
        )
        created = True
    rows: list[Device] = []
    for table_device in nb201_latency().devices:
        device_name = f"nb201-{table_device}"
        row = session.scalar(select(Device).where(Device.name == device_name))
        if row is None:
            batch = table_device.rsplit("_", 1)[-1]
            row = devices.create_device(
                session,
                device_name,
                kind="table",
                description=f"{table_device}: measured NAS-Bench-201 latencies (bundled table)",
                batch_size=int(batch) if batch.isdigit() else 1,
                properties={"table": name, "table_device": table_device},
            )
        rows.append(row)
    return BenchmarkRegistration(existing, rows, created)
