"""/v1/query: best subnet under a latency budget, and the Pareto front."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from service.api.deps import Caller, ReadSessionDep, reader
from service.api.schemas import BudgetQuery, NameQuery, OptionalBudgetQuery
from service.domain import devices, subnets, supernet_records

router = APIRouter(prefix="/v1/query", tags=["query"])


@router.get("/best")
def best(
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    supernet: NameQuery,
    device: NameQuery,
    budget_ms: BudgetQuery,
    confidence: Annotated[float, Query(gt=0.5, lt=1.0)] = 0.9,
) -> dict[str, Any]:
    """The most accurate evaluated subnet within ``budget_ms`` on ``device``. When
    nothing meets the budget, ``best`` is null and ``closest`` lists the nearest.
    A predicted latency stored with its std fits only when P(latency <= budget)
    reaches ``confidence``; a measured latency fits when it is within budget."""
    sn = supernet_records.get_supernet(session, supernet, caller.scope)
    dev = devices.get_device(session, device, caller.scope)
    return subnets.best_answer(
        session, sn, dev, budget_ms, caller.scope, feasibility_confidence=confidence
    )


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


#: How the PNG routes describe their answer in the OpenAPI document.
PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "A PNG image."}
}


def png_response(draw: Callable[[Path], Path]) -> Response:
    """Run ``draw`` into a temporary PNG file and answer with its bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = draw(Path(tmp) / "plot.png")
        return Response(path.read_bytes(), media_type="image/png")


@router.get("/pareto.png", response_class=Response, responses=PNG_RESPONSE)
def pareto_png(
    session: ReadSessionDep,
    caller: Annotated[Caller, Depends(reader)],
    supernet: NameQuery,
    device: NameQuery,
    budget_ms: OptionalBudgetQuery = None,
) -> Response:
    """The evaluated subnets, their Pareto front and (with ``budget_ms``) the
    budget line and the best subnet under it, as a PNG."""
    from service.orchestration.plots import pareto_png as draw

    sn = supernet_records.get_supernet(session, supernet, caller.scope)
    dev = devices.get_device(session, device, caller.scope)
    return png_response(
        lambda path: draw(session, sn, dev, path, budget_ms=budget_ms, scope=caller.scope)
    )
