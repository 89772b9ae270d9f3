"""``python -m supernets.launch``: train a supernet from the command line.

The plain entry point for ``torchrun`` (the product's CLI is ``hwnas supernet
train``, which registers the result in the database)::

    torchrun --nproc_per_node=2 -m supernets.launch \\
        --space ofa-mbv3-tiny --dataset digits --schedule progressive-shrinking \\
        --epochs 24 --out runs/ps

Prints the final checkpoint path on rank 0.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from supernets.data import DatasetSpec, load_dataset
from supernets.schedules import available_schedules, get_schedule, schedule_from_dicts
from supernets.spaces import get_space
from supernets.train import TrainConfig, train_supernet


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m supernets.launch", description=__doc__.split("\n")[0]
    )
    p.add_argument("--space", default="ofa-mbv3-tiny")
    p.add_argument("--dataset", default="digits", help="digits | folder:PATH | npz:PATH")
    p.add_argument(
        "--schedule",
        default="progressive-shrinking",
        help=f"one of {available_schedules()} or a JSON file with a list of phases",
    )
    p.add_argument("--epochs", type=int, default=None, help="total epochs (built-in schedules)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (built-in schedules)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps-per-epoch", type=int, default=None)
    p.add_argument("--no-eval", action="store_true", help="skip the per-phase accuracy check")
    p.add_argument("--threads", type=int, default=None, help="CPU threads per process")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--out", required=True, type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> Path:
    args = _parser().parse_args(argv)
    space = get_space(args.space)
    # The split seed follows --seed, as in `hwnas supernet train` (service.supernet_ops).
    dataset = load_dataset(DatasetSpec.parse(args.dataset, seed=args.seed))
    if Path(args.schedule).is_file():
        schedule = schedule_from_dicts(json.loads(Path(args.schedule).read_text()))
    else:
        overrides = {k: v for k, v in (("epochs", args.epochs), ("lr", args.lr)) if v is not None}
        schedule = get_schedule(args.schedule, space, **overrides)
    config = TrainConfig(
        batch_size=args.batch_size,
        seed=args.seed,
        max_steps_per_epoch=args.max_steps_per_epoch,
        eval_after_phase=not args.no_eval,
        num_threads=args.threads,
        amp=args.amp,
    )
    final = train_supernet(space, dataset, schedule, args.out, config=config)
    if int(os.environ.get("RANK", "0")) == 0:
        print(final)
    return final


if __name__ == "__main__":
    main()
