"""/v1/query: best subnet under a latency budget, and the Pareto front."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from service.api.deps import Caller, SessionDep, reader
from service.domain import devices, subnets, supernet_records

router = APIRouter(prefix="/v1/query", tags=["query"])


@router.get("/best")
def best(
    session: SessionDep,
    _: Annotated[Caller, Depends(reader)],
    supernet: str,
    device: str,
    budget_ms: Annotated[float, Query(gt=0)],
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.9,
) -> dict[str, Any]:
    """The most accurate evaluated subnet within ``budget_ms`` on ``device``. When
    nothing meets the budget, ``best`` is null and ``closest`` lists the fastest.
    A predicted latency stored with its std fits only when P(latency <= budget)
    reaches ``confidence``; a measured latency fits when it is within budget."""
    sn = supernet_records.get_supernet(session, supernet)
    dev = devices.get_device(session, device)
    return subnets.best_answer(session, sn, dev, budget_ms, feasibility_confidence=confidence)


@router.get("/pareto")
def pareto(
    session: SessionDep, _: Annotated[Caller, Depends(reader)], supernet: str, device: str
) -> dict[str, Any]:
    sn = supernet_records.get_supernet(session, supernet)
    dev = devices.get_device(session, device)
    front = subnets.pareto_front(session, sn, dev)
    return {"supernet": sn.name, "device": dev.name, "front": [c.to_dict() for c in front]}
