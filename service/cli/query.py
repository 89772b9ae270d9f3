"""``hwnas query``: best subnet under a budget, Pareto front."""

from __future__ import annotations

from typing import Any

import typer

from service.cli.common import emit, open_runtime
from service.domain import devices, subnets, supernet_records
from service.domain.subnets import SubnetAnswer

app = typer.Typer(
    help=(
        "Ask the stored evaluations: the most accurate subnet under a latency budget on a "
        "device, or the accuracy/latency Pareto front. Each number says if it was measured "
        "or predicted."
    ),
    no_args_is_help=True,
)


def _line(a: SubnetAnswer) -> str:
    return (
        f"trial {a.trial_id:>6}  accuracy {a.accuracy:7.3f} ({a.accuracy_source})  "
        f"latency {a.latency_ms:9.3f} ms ({a.latency_source})"
    )


def _arch_text(space_name: str, space_config: dict[str, Any], a: SubnetAnswer) -> str:
    """The space's own string for the arch (NAS-Bench-201's official cell string,
    OFA's compact form), or the stored config where the space cannot read it."""
    from supernets import space_from_config

    try:
        return str(space_from_config(space_name, space_config).validate(a.arch))
    except (KeyError, ValueError, TypeError):
        return str(a.arch)


@app.command("best")
def best_cmd(
    ctx: typer.Context,
    supernet: str = typer.Option(..., "--supernet", "-s", help="Supernet or tabular space name."),
    device: str = typer.Option(..., "--device", "-d", help="Device name."),
    budget_ms: float = typer.Option(..., "--budget-ms", "-b", help="Latency budget in ms."),
) -> None:
    """The most accurate evaluated subnet within the budget."""
    with open_runtime(ctx) as rt, rt.session() as s:
        sn, dev = supernet_records.get_supernet(s, supernet), devices.get_device(s, device)
        data = subnets.best_answer(s, sn, dev, budget_ms)
        found = SubnetAnswer(**data["best"]) if data["best"] else None
        closest = [SubnetAnswer(**c) for c in data["closest"]]
        if found:
            lines = [_line(found), f"arch: {_arch_text(sn.space_name, sn.space_config, found)}"]
        elif closest:
            lines = [
                f"nothing evaluated meets {budget_ms} ms on {dev.name}; the fastest (infeasible):"
            ]
            lines += [_line(c) for c in closest]
        else:
            lines = [f"no evaluated subnets of {sn.name} have a latency on {dev.name} yet"]
        emit(ctx, data, lines)


@app.command("pareto")
def pareto_cmd(
    ctx: typer.Context,
    supernet: str = typer.Option(..., "--supernet", "-s", help="Supernet or tabular space name."),
    device: str = typer.Option(..., "--device", "-d", help="Device name."),
) -> None:
    """The accuracy/latency Pareto front of the evaluated subnets, fastest first."""
    with open_runtime(ctx) as rt, rt.session() as s:
        sn, dev = supernet_records.get_supernet(s, supernet), devices.get_device(s, device)
        front = subnets.pareto_front(s, sn, dev)
        emit(
            ctx, [c.to_dict() for c in front], [_line(c) for c in front] or ["no evaluated subnets"]
        )
