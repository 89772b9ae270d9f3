"""/v1/supernets: the registered supernets and tabular spaces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from service.api.deps import Caller, SessionDep, reader
from service.api.schemas import SupernetOut
from service.domain import supernets

router = APIRouter(prefix="/v1/supernets", tags=["supernets"])


@router.get("")
def list_supernets(session: SessionDep, _: Annotated[Caller, Depends(reader)]) -> list[SupernetOut]:
    return [SupernetOut.of(s) for s in supernets.list_supernets(session)]


@router.get("/{name}")
def get_supernet(
    name: str, session: SessionDep, _: Annotated[Caller, Depends(reader)]
) -> SupernetOut:
    return SupernetOut.of(supernets.get_supernet(session, name))
