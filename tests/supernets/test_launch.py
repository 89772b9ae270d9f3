"""The training request survives the trip to ``torchrun`` and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from supernets.launch import TrainRequest


def test_every_option_round_trips_through_the_command_line(tmp_path: Path) -> None:
    request = TrainRequest(
        space="ofa-mbv3-tiny",
        dataset="npz:/data/x.npz",
        schedule="deps",
        epochs=7,
        lr=0.05,
        batch_size=32,
        seed=3,
        max_steps_per_epoch=2,
        threads=1,
        eval_after_phase=False,
        eval_images=123,
    )
    parsed, out = TrainRequest.parse_argv(request.to_argv(tmp_path / "run"))
    assert parsed == request
    assert out == tmp_path / "run"
    # Defaults round-trip too (nothing is printed for them).
    assert TrainRequest.parse_argv(TrainRequest().to_argv(tmp_path))[0] == TrainRequest()


def test_torchrun_command_carries_the_request(tmp_path: Path) -> None:
    cmd = TrainRequest(eval_images=500).torchrun_command(tmp_path, nproc=2)
    assert "--nproc_per_node=2" in cmd
    i = cmd.index("supernets.launch")
    parsed, _ = TrainRequest.parse_argv(cmd[i + 1 :])
    assert parsed.eval_images == 500
    with pytest.raises(ValueError, match="nproc"):
        TrainRequest().torchrun_command(tmp_path, nproc=0)


@pytest.mark.parametrize(
    ("field", "value"), [("batch_size", 0), ("eval_images", 0), ("epochs", 0), ("lr", -1.0)]
)
def test_bad_values_are_refused_by_name(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        TrainRequest(**{field: value})  # type: ignore[arg-type]
