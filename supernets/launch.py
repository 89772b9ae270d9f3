"""Training requests, and ``python -m supernets.launch`` (the ``torchrun`` entry point).

A :class:`TrainRequest` is the one description of "train a supernet of this
space on this data with this schedule": the service builds one from ``hwnas
supernet train``, runs it in-process or hands it to ``torchrun`` through
:meth:`TrainRequest.torchrun_command`, and the launched processes parse it
back from the command line here. Both directions live in this module so that
no option is lost on the way (a round trip is tested)::

    torchrun --nproc_per_node=2 -m supernets.launch \\
        --space ofa-mbv3-tiny --dataset digits --schedule progressive-shrinking \\
        --epochs 24 --out runs/ps

Prints the final checkpoint path on rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supernets.schedules import DEFAULT_SCHEDULE

if TYPE_CHECKING:
    from supernets.data import ImageDataset
    from supernets.schedules import Phase
    from supernets.spaces import SearchSpace
    from supernets.train import ProgressCallback, TrainConfig

__all__ = ["TrainRequest", "main"]


@dataclass(frozen=True)
class TrainRequest:
    """What to train (everything but where the run directory is)."""

    space: str = "ofa-mbv3-tiny"
    #: ``digits`` | ``digits-hard`` | ``folder:PATH`` | ``npz:PATH`` (see :mod:`supernets.data`).
    dataset: str = "digits"
    #: A built-in schedule's name, or a JSON file holding a list of phases.
    schedule: str = DEFAULT_SCHEDULE
    #: Total epochs and peak learning rate of a built-in schedule (its defaults if None).
    epochs: int | None = None
    lr: float | None = None
    batch_size: int = 64
    #: Seeds the training and the train/holdout split of the dataset.
    seed: int = 0
    max_steps_per_epoch: int | None = None
    #: CPU threads per process (None: leave torch's default).
    threads: int | None = None
    #: Measure the largest and smallest subnet after each phase.
    eval_after_phase: bool = True
    #: Training images for BN recalibration in that check.
    eval_images: int = 2000
    #: Mixed precision (float16 autocast + gradient scaling); CUDA only.
    amp: bool = False

    def __post_init__(self) -> None:
        for name in ("batch_size", "eval_images"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "max_steps_per_epoch", "threads"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or unset, got {value}")
        if self.lr is not None and not (0.0 < self.lr < float("inf")):
            raise ValueError(f"lr must be positive and finite, got {self.lr}")

    # -- building the pieces ----------------------------------------------------------
    def build(self) -> tuple[SearchSpace[Any], ImageDataset, list[Phase], TrainConfig]:
        """Space, dataset, schedule and training config, ready for ``train_supernet``."""
        from supernets.data import DatasetSpec, load_dataset
        from supernets.schedules import get_schedule, schedule_from_dicts
        from supernets.spaces import get_space
        from supernets.train import TrainConfig

        space = get_space(self.space)
        dataset = load_dataset(DatasetSpec.parse(self.dataset, seed=self.seed))
        if Path(self.schedule).is_file():
            schedule = schedule_from_dicts(json.loads(Path(self.schedule).read_text()))
        else:
            overrides = {
                k: v for k, v in (("epochs", self.epochs), ("lr", self.lr)) if v is not None
            }
            schedule = get_schedule(self.schedule, space, **overrides)
        config = TrainConfig(
            batch_size=self.batch_size,
            seed=self.seed,
            max_steps_per_epoch=self.max_steps_per_epoch,
            eval_after_phase=self.eval_after_phase,
            eval_calibration_images=self.eval_images,
            num_threads=self.threads,
            amp=self.amp,
        )
        return space, dataset, list(schedule), config

    def train(
        self, out_dir: str | os.PathLike[str], progress: ProgressCallback | None = None
    ) -> Path:
        """Train in this process (resuming ``out_dir``); returns the final checkpoint."""
        from supernets.train import train_supernet

        space, dataset, schedule, config = self.build()
        return train_supernet(space, dataset, schedule, out_dir, config=config, progress=progress)

    # -- the command line, both ways ----------------------------------------------------
    def to_argv(self, out_dir: str | os.PathLike[str]) -> list[str]:
        """Arguments of ``python -m supernets.launch`` that reproduce this request."""
        argv = ["--out", str(out_dir)]
        defaults = TrainRequest()
        for f in fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if f.name == "eval_after_phase":
                if not value:
                    argv.append("--no-eval")
            elif isinstance(value, bool):
                if value:
                    argv.append(flag)
            elif value is not None and value != getattr(defaults, f.name):
                argv += [flag, str(value)]
        return argv

    def torchrun_command(self, out_dir: str | os.PathLike[str], nproc: int) -> list[str]:
        """``torchrun`` (as ``python -m torch.distributed.run``) with ``nproc``
        processes on this machine (DistributedDataParallel; gloo on CPU)."""
        if nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {nproc}")
        return [
            sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", "-m", "supernets.launch", *self.to_argv(out_dir),
        ]  # fmt: skip

    @classmethod
    def parse_argv(cls, argv: Sequence[str] | None = None) -> tuple[TrainRequest, Path]:
        """The request and run directory given on a ``supernets.launch`` command line."""
        args = _parser().parse_args(argv)
        # One flag per field (``--batch-size`` for ``batch_size``), except that
        # ``eval_after_phase`` is spelled ``--no-eval``.
        values = {
            f.name: getattr(args, f.name) for f in fields(cls) if f.name != "eval_after_phase"
        }
        request = cls(**values, eval_after_phase=not args.no_eval)
        return request, args.out


def _parser() -> argparse.ArgumentParser:
    from supernets.schedules import available_schedules

    d = TrainRequest()
    p = argparse.ArgumentParser(
        prog="python -m supernets.launch", description=(__doc__ or "").split("\n")[0]
    )
    p.add_argument("--space", default=d.space)
    p.add_argument(
        "--dataset", default=d.dataset, help="digits | digits-hard | folder:PATH | npz:PATH"
    )
    p.add_argument(
        "--schedule",
        default=d.schedule,
        help=f"one of {available_schedules()} or a JSON file with a list of phases",
    )
    p.add_argument("--epochs", type=int, default=None, help="total epochs (built-in schedules)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (built-in schedules)")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--no-eval", action="store_true", help="skip the per-phase accuracy check")
    p.add_argument(
        "--eval-images",
        type=int,
        default=d.eval_images,
        help="training images for BN recalibration in the per-phase check",
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--out", required=True, type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> Path:
    request, out = TrainRequest.parse_argv(argv)
    final = request.train(out)
    if int(os.environ.get("RANK", "0")) == 0:
        print(final)
    return final


if __name__ == "__main__":
    main()
