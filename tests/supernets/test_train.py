"""Supernet training: a whole schedule in one call, checkpoints, manifest,
resume after a kill (bit-identical to an uninterrupted run), torchrun/DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from supernets import ImageDataset, build_subnet, evaluate_subnet, load_dataset
from supernets.schedules import deps_schedule, get_schedule, progressive_shrinking
from supernets.spaces import OFAMobileNetV3Space
from supernets.train import (
    ProgressEvent,
    TrainConfig,
    load_supernet,
    read_manifest,
    train_subnet,
    train_supernet,
)

REPO = Path(__file__).resolve().parents[2]
FAST = TrainConfig(batch_size=16, max_steps_per_epoch=2, eval_after_phase=False)


@pytest.fixture(scope="module")
def small_digits() -> ImageDataset:
    return load_dataset("digits").subset(n_train=64, n_holdout=40)


class Killed(Exception):
    """Stands in for SIGKILL: raised from the progress callback mid-phase."""


def _kill_at(phase: str, step: int) -> Callable[[ProgressEvent], None]:
    def callback(event: ProgressEvent) -> None:
        if event.kind == "step" and event.phase == phase and event.step == step:
            raise Killed

    return callback


@pytest.mark.slow
def test_progressive_shrinking_resumes_after_kill_identically(
    tiny_space: OFAMobileNetV3Space, small_digits: ImageDataset, tmp_path: Path
) -> None:
    schedule = progressive_shrinking(tiny_space, epochs=8, lr=0.05)
    assert [p.epochs for p in schedule][:2] == [2, 2]  # the kill lands in epoch 2 of 2

    events: list[ProgressEvent] = []
    final = train_supernet(
        tiny_space, small_digits, schedule, tmp_path / "a", config=FAST, progress=events.append
    )
    assert final == tmp_path / "a" / "phase-05-elastic-expand-2.pt"
    kinds = [(e.kind, e.phase) for e in events if e.kind != "step"]
    assert kinds[:2] == [("phase_start", "full"), ("phase_end", "full")]
    assert sum(e.kind == "step" for e in events) == 8 * 2
    assert events[-1].kind == "phase_end" and events[-1].step == events[-1].total_steps

    # Killed in the 2nd epoch of the elastic-kernel phase, then run again.
    with pytest.raises(Killed):
        train_supernet(
            tiny_space, small_digits, schedule, tmp_path / "b", config=FAST,
            progress=_kill_at("elastic-kernel", 4),
        )  # fmt: skip
    manifest = read_manifest(tmp_path / "b")
    assert manifest["phases_completed"] == 1 and not manifest["complete"]
    assert (tmp_path / "b" / "last.pt").is_file()  # epoch 1 of elastic-kernel is saved
    resumed: list[ProgressEvent] = []
    final_b = train_supernet(
        tiny_space, small_digits, schedule, tmp_path / "b", config=FAST, progress=resumed.append
    )
    first = resumed[0]
    assert (first.kind, first.phase, first.epoch, first.step) == (
        "phase_start", "elastic-kernel", 1, 2,
    )  # fmt: skip
    a = torch.load(final, weights_only=False)["state_dict"]
    b = torch.load(final_b, weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

    # A finished run returns at once; a different schedule is refused.
    assert (
        train_supernet(tiny_space, small_digits, schedule, tmp_path / "b", config=FAST) == final_b
    )
    with pytest.raises(ValueError, match="different schedule"):
        train_supernet(
            tiny_space, small_digits, progressive_shrinking(tiny_space, epochs=9),
            tmp_path / "b", config=FAST,
        )  # fmt: skip


def test_manifest_checkpoints_and_load_supernet(
    tiny_space: OFAMobileNetV3Space, small_digits: ImageDataset, tmp_path: Path
) -> None:
    schedule = deps_schedule(tiny_space, epochs=2, lr=0.05)
    config = TrainConfig(
        batch_size=16, max_steps_per_epoch=2, eval_after_phase=True, eval_calibration_images=32
    )
    final = train_supernet(tiny_space, small_digits, schedule, tmp_path, config=config)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["complete"] and manifest["final_checkpoint"] == final.name
    assert manifest["space"] == {"name": "ofa-mbv3-tiny", "config": tiny_space.config()}
    assert manifest["dataset"]["kind"] == "digits" and manifest["n_classes"] == 10
    assert [p["name"] for p in manifest["phases"]] == ["full", "sandwich"]
    for record in manifest["phases"]:
        assert (tmp_path / record["checkpoint"]).is_file()
        assert record["images_per_s"] > 0
        assert 0.0 <= record["accuracy_min_r32"] <= 100.0  # percent
    assert not (tmp_path / "last.pt").exists()

    space, net, meta = load_supernet(tmp_path)
    assert space == tiny_space and meta["complete"] and meta["phase"] == "sandwich"
    _, net_file, _ = load_supernet(final)
    for (k, v), w in zip(net.state_dict().items(), net_file.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    # Everything the service needs to rebuild comes from the metadata.
    dataset = load_dataset(meta["dataset"])
    ev = evaluate_subnet(net, space.min_arch(), dataset, n_calibration=32)
    assert 0.0 <= ev.accuracy <= 100.0 and ev.n_holdout == dataset.n_holdout
    with pytest.raises(ValueError, match="no supernet checkpoint"):
        load_supernet(tmp_path / "nothing-here")


def test_training_refuses_non_ofa_space(small_digits: ImageDataset, tmp_path: Path) -> None:
    from supernets import get_space

    tiny = get_space("ofa-mbv3-tiny")
    with pytest.raises(ValueError, match="OFA-MobileNetV3"):
        train_supernet(get_space("nb201"), small_digits, get_schedule("deps", tiny), tmp_path)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path: Path) -> None:
    """DistributedDataParallel over gloo with 2 CPU processes, via torchrun."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "supernets.launch", "--schedule", "deps", "--epochs", "2", "--batch-size", "16",
        "--max-steps-per-epoch", "2", "--no-eval", "--out", str(tmp_path),
    ]  # fmt: skip
    # Own session: on a timeout the whole group goes (torchrun's workers included).
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun did not finish in 300 s:\n{stderr[-3000:]}")
    assert proc.returncode == 0, stderr[-3000:]
    assert stdout.strip().endswith("phase-01-sandwich.pt")
    manifest = read_manifest(tmp_path)
    assert manifest["complete"] and manifest["world_size"] == 2
    # Both ranks ended every phase with identical weights.
    assert all(p["replicas_in_sync"] for p in manifest["phases"])


def test_train_subnet_from_scratch(
    tiny_space: OFAMobileNetV3Space, small_digits: ImageDataset
) -> None:
    arch = tiny_space.min_arch()
    torch.manual_seed(0)
    sub = build_subnet(tiny_space, arch, small_digits.n_classes)
    assert sub.config["arch"] == arch.to_dict() and sub.resolution == arch.r
    before = [p.detach().clone() for p in sub.parameters()]
    losses: list[float] = []
    out = train_subnet(
        sub, small_digits, epochs=2, lr=0.05, config=FAST,
        progress=lambda step, total, loss: losses.append(loss),
    )  # fmt: skip
    assert out is sub and not sub.training
    assert len(losses) == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, sub.parameters(), strict=True))
    with pytest.raises(ValueError, match="epochs"):
        train_subnet(sub, small_digits, epochs=0)


def test_every_rank_takes_the_same_manifest_branch(tmp_path: Path) -> None:
    """Regression: a slow rank 1 that looked for the manifest after rank 0 had
    written it skipped a barrier, and the next collective hung."""
    from supernets.train import _Dist, _open_manifest

    identity = {"space": {"name": "x"}}
    calls: dict[int, int] = {0: 0, 1: 0}

    class Rank(_Dist):
        def barrier(self) -> None:
            calls[self.rank] += 1
            if self.rank == 1 and calls[1] == 1:
                # Rank 0 passes the same barrier and writes the manifest at once.
                _open_manifest(tmp_path, identity, Rank(0, 2, torch.device("cpu"), False))

    manifest = _open_manifest(tmp_path, identity, Rank(1, 2, torch.device("cpu"), False))
    assert manifest["phases"] == [] and (tmp_path / "manifest.json").is_file()
    assert calls[0] == calls[1] == 2
