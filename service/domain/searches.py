"""Submitting searches: a spec is checked against what is registered before it
is queued, so a job never fails later for a typo in a name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from service.db import Device, SearchJob, Supernet
from service.domain import devices, jobs, supernet_records
from service.domain.errors import ConflictError, DomainError
from service.domain.owners import LOCAL, Scope
from service.domain.specs import SearchSpec, parse_spec

__all__ = ["required_host", "submit_search"]

#: Checks that a device can give latencies for a supernet's space and that its
#: budget (None: no budget there) can be met; raises a DomainError saying what to
#: do otherwise, returns warnings. Supplied by the caller so that this module
#: stays free of ML code.
LatencyCheck = Callable[[Session, Supernet, Device, float | None], list[str]]


def submit_search(
    session: Session,
    spec_data: dict[str, Any] | SearchSpec,
    *,
    scope: Scope | None = None,
    name: str = "",
    check_latency: LatencyCheck | None = None,
    warn: Callable[[str], None] | None = None,
) -> SearchJob:
    """Queue a search for ``scope``'s owner (``local`` without a scope), on a
    supernet and devices that the owner sees; ``warn`` receives what the latency
    check found doubtful but not fatal."""
    spec: SearchSpec = spec_data if isinstance(spec_data, SearchSpec) else parse_spec(spec_data)
    supernet = supernet_records.get_supernet(session, spec.supernet, scope)
    if supernet.status != "ready":
        raise ConflictError(
            f"supernet {supernet.name!r} is {supernet.status}, not ready for search"
        )
    budgets = {spec.device: spec.latency_budget_ms, **spec.extra_budgets_ms}
    rows = []
    for device_name in [spec.device, *spec.extra_devices]:
        device = devices.get_device(session, device_name, scope)
        rows.append(device)
        if check_latency is not None:
            for message in check_latency(session, supernet, device, budgets.get(device_name)):
                if warn is not None:
                    warn(message)
    return jobs.submit_job(
        session,
        spec.model_dump(),
        name=name,
        owner=scope.owner if scope is not None else LOCAL,
        supernet_id=supernet.id,
        required_host=required_host(rows),
    )


def required_host(rows: list[Device]) -> str | None:
    """The host whose worker must run a search on these devices: the host of its
    local devices (measured by hwnas on that machine, so only a worker there can
    verify their latencies); None when there is none. Local devices on two hosts
    cannot be measured by one worker: refused."""
    hosts = sorted({d.host for d in rows if d.kind.startswith("local-") and d.host})
    if len(hosts) > 1:
        raise DomainError(
            f"the search's local devices live on different hosts ({', '.join(hosts)}); "
            "one worker measures one machine: search them in separate jobs"
        )
    return hosts[0] if hosts else None
