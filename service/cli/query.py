"""``hwnas query``: best subnet under a budget, Pareto front."""

from __future__ import annotations

from typing import Any

import typer

from service.cli.common import open_runtime
from service.cli.output import Column, emit_table, json_mode
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


_COLUMNS = [
    Column("trial", "trial_id", "right"),
    Column("accuracy", "accuracy", "right"),
    Column("accuracy is", "accuracy_source"),
    Column("latency ms", lambda r: f"{r['latency_ms']:.3f}", "right"),
    Column("latency is", "latency_source"),
    Column("arch", "arch_text"),
]


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
        shown = [found] if found else closest
        rows = [
            {**a.to_dict(), "arch_text": _arch_text(sn.space_name, sn.space_config, a)}
            for a in shown
        ]
        if found:
            title = f"best evaluated subnet of {sn.name} under {budget_ms} ms on {dev.name}"
        else:
            title = (
                f"nothing evaluated meets {budget_ms} ms on {dev.name}; the closest (infeasible):"
            )
        emit_table(
            ctx,
            rows,
            _COLUMNS[:-1],
            title=title,
            empty=f"no evaluated subnets of {sn.name} have a latency on {dev.name} yet",
            data=data,
        )
        if rows and not json_mode(ctx):
            # Archs are long (NAS-Bench-201's official cell string): one line each.
            for row in rows:
                typer.echo(f"arch: {row['arch_text']}")


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
        rows = [
            {**a.to_dict(), "arch_text": _arch_text(sn.space_name, sn.space_config, a)}
            for a in front
        ]
        emit_table(
            ctx,
            rows,
            _COLUMNS,
            title=f"Pareto front of {sn.name} on {dev.name}, fastest first",
            empty=f"no evaluated subnets of {sn.name} have a latency on {dev.name} yet",
            data=[a.to_dict() for a in front],
        )
