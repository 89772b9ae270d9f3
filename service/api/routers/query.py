"""/v1/query: best subnet under a latency budget, and the Pareto front."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from service.api.deps import Caller, ReadSessionDep, reader
from service.api.schemas import BudgetQuery, NameQuery
from service.domain import devices, subnets, supernet_records

router = APIRouter(prefix="/v1/query", tags=["query"])


@router.get("/best")
def best(
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    supernet: NameQuery,
    device: NameQuery,
    budget_ms: BudgetQuery,
) -> dict[str, Any]:
    """The most accurate evaluated subnet within ``budget_ms`` on ``device``. When
    nothing meets the budget, ``best`` is null and ``closest`` lists the fastest."""
    sn = supernet_records.get_supernet(session, supernet, caller.scope)
    dev = devices.get_device(session, device, caller.scope)
    return subnets.best_answer(session, sn, dev, budget_ms, caller.scope)


@router.get("/pareto")
def pareto(
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    supernet: NameQuery,
    device: NameQuery,
) -> dict[str, Any]:
    sn = supernet_records.get_supernet(session, supernet, caller.scope)
    dev = devices.get_device(session, device, caller.scope)
    front = subnets.pareto_front(session, sn, dev, caller.scope)
    return {"supernet": sn.name, "device": dev.name, "front": [c.to_dict() for c in front]}
