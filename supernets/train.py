"""Supernet training: run a schedule of phases, checkpoint, resume, scale out.

``train_supernet(space, dataset, schedule, out_dir)`` runs every phase of the
schedule in one call, each phase starting from the previous phase's weights
(never from a downloaded checkpoint), and returns the final checkpoint. The
output directory is the run's whole state:

* ``manifest.json`` -- space (name + config), dataset spec, class names,
  schedule, training config, and per completed phase its checkpoint file,
  duration, throughput and (optionally) BN-recalibrated holdout accuracy
  (percent) of the largest and smallest subnet of that phase;
* ``phase-NN-<name>.pt`` -- the supernet after phase NN (self-describing:
  :func:`load_supernet` rebuilds the network from the file alone);
* ``last.pt`` -- model + optimiser after the last finished epoch of the phase
  in progress (removed when the phase completes).

Calling ``train_supernet`` again with the same directory resumes after a
kill: completed phases are skipped and the phase in progress restarts from its
last finished epoch. Every random choice (data order, subnets, resolutions,
dropout) is seeded by ``(seed, phase, epoch)``, so a resumed run reproduces an
uninterrupted one.

Distributed: launched with ``torchrun --nproc_per_node=N`` (which sets
``WORLD_SIZE``/``RANK``), the same call trains with DistributedDataParallel
-- gloo on CPU, nccl on GPU. All ranks sample the same subnets and
resolutions; each takes its share of every global batch; rank 0 writes the
files (``out_dir`` must be on a file system every rank sees).
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from supernets.data import DatasetSpec, ImageDataset, resize_batch
from supernets.evaluate import evaluate_subnet
from supernets.networks import MobileNetV3Subnet, OFAMobileNetV3, build_supernet, extract_subnet
from supernets.schedules import Phase, schedule_from_dicts, schedule_to_dicts, validate_schedule
from supernets.spaces import OFAArch, OFAMobileNetV3Space, SearchSpace, space_from_config

__all__ = [
    "CHECKPOINT_FORMAT",
    "ProgressEvent",
    "TrainConfig",
    "load_supernet",
    "read_manifest",
    "train_subnet",
    "train_supernet",
]

CHECKPOINT_FORMAT = "hwnas-supernet/1"
MANIFEST_FILE = "manifest.json"
LAST_FILE = "last.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and loop settings shared by every phase (JSON-able)."""

    #: Global batch size (split across ranks under torchrun).
    batch_size: int = 64
    momentum: float = 0.9
    nesterov: bool = True
    #: No decay on BN parameters, biases and kernel-transform matrices.
    weight_decay: float = 3e-5
    label_smoothing: float = 0.1
    seed: int = 0
    #: ``None``: CUDA when available, else CPU.
    device: str | None = None
    #: Cap on steps per epoch (smoke tests); ``None``: one pass over the data.
    max_steps_per_epoch: int | None = None
    #: After each phase, measure the largest and smallest subnet of the phase
    #: (BN recalibrated on ``eval_calibration_images``, holdout accuracy).
    eval_after_phase: bool = True
    eval_calibration_images: int = 2000
    #: Intra-op CPU threads (``torch.set_num_threads``); ``None``: leave as is.
    num_threads: int | None = None
    #: Mixed precision on CUDA: float16 autocast for the forward passes, a
    #: gradient scaler for the backward pass, float32 master weights. Training
    #: on any other device with ``amp`` raises (CPUs gain nothing from float16).
    amp: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_steps_per_epoch is not None and self.max_steps_per_epoch < 1:
            raise ValueError("max_steps_per_epoch must be >= 1 or None")

    def steps_per_epoch(self, n_train: int) -> int:
        """Full batches per pass over ``n_train`` images (capped by ``max_steps_per_epoch``)."""
        steps = max(1, n_train // self.batch_size)
        if self.max_steps_per_epoch is not None:
            steps = min(steps, self.max_steps_per_epoch)
        return steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ProgressEvent:
    """What a progress callback receives (rank 0 only).

    ``kind`` is ``"phase_start"`` (``step`` > 0 when a phase resumes),
    ``"step"`` (after every optimiser step), or ``"phase_end"`` (``metrics``
    holds the phase's record). A CLI opens a bar on ``phase_start`` with
    ``total=total_steps, initial=step``, advances it on ``step`` and closes it
    on ``phase_end``.
    """

    kind: str
    phase_index: int
    n_phases: int
    phase: str
    epoch: int
    epochs: int
    step: int
    total_steps: int
    loss: float | None = None
    lr: float | None = None
    images_per_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


ProgressCallback = Callable[[ProgressEvent], None]


# -- distributed plumbing -------------------------------------------------------
@dataclass(frozen=True)
class _Dist:
    rank: int
    world: int
    device: torch.device
    owns_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def _setup_distributed(config: TrainConfig) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available() and config.device in (None, "cuda")
    if world == 1 and not dist.is_initialized():
        device = torch.device(config.device or ("cuda" if cuda else "cpu"))
        return _Dist(0, 1, device, owns_group=False)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    owns = False
    if not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend="nccl" if cuda else "gloo")
        owns = True
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device(config.device or "cpu")
    return _Dist(dist.get_rank(), dist.get_world_size(), device, owns_group=owns)


# -- files ----------------------------------------------------------------------
def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_write_json(data: Mapping[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's ``manifest.json`` (``ValueError`` if there is none)."""
    path = Path(out_dir) / MANIFEST_FILE
    if not path.is_file():
        raise ValueError(f"{str(out_dir)!r} is not a supernet run directory (no {MANIFEST_FILE})")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _phase_file(index: int, phase: Phase) -> str:
    return f"phase-{index:02d}-{phase.name}.pt"


def _run_identity(
    space: OFAMobileNetV3Space,
    dataset: ImageDataset,
    schedule: Sequence[Phase],
    config: TrainConfig,
) -> dict[str, Any]:
    """What must match for a run directory to be resumed (and what checkpoints carry)."""
    train = config.to_dict()
    # ``amp`` changes how, not what, is trained: a run may resume with or without it.
    for volatile in (
        "device",
        "num_threads",
        "eval_after_phase",
        "eval_calibration_images",
        "amp",
    ):
        train.pop(volatile)
    return {
        "space": {"name": space.name, "config": space.config()},
        "n_classes": dataset.n_classes,
        "class_names": list(dataset.class_names),
        "dataset": dataset.spec.to_dict(),
        "schedule": schedule_to_dicts(schedule),
        "train_config": train,
    }


# -- the loop ---------------------------------------------------------------------
def _cosine_lr(
    lr: float,
    epochs: int,
    warmup_epochs: float,
    step: int,
    steps_per_epoch: int,
    cosine: tuple[float, float] = (0.0, 1.0),
) -> float:
    """Linear warm-up to ``lr``, then the ``cosine`` segment of a cosine decay to 0."""
    total = epochs * steps_per_epoch
    warmup = round(warmup_epochs * steps_per_epoch)
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    point = cosine[0] + (cosine[1] - cosine[0]) * progress
    return lr * 0.5 * (1.0 + math.cos(math.pi * point))


def _lr_at(phase: Phase, step: int, steps_per_epoch: int) -> float:
    return _cosine_lr(
        phase.lr,
        phase.epochs,
        phase.warmup_epochs,
        step,
        steps_per_epoch,
        (phase.cosine_start, phase.cosine_end),
    )


def _optimizer(net: nn.Module, config: TrainConfig, lr: float) -> torch.optim.Optimizer:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in net.named_parameters():
        # Conv/linear weights decay; BN, biases and kernel transforms do not
        # (decaying a transform matrix would shrink the small kernels).
        (decay if p.ndim > 1 and "transforms" not in name else no_decay).append(p)
    return torch.optim.SGD(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
        momentum=config.momentum,
        nesterov=config.nesterov and config.momentum > 0,
    )


def _sample_arch(
    space: OFAMobileNetV3Space, phase: Phase, rng: np.random.Generator, r: int, which: str
) -> OFAArch:
    n_slots, n_stages = space.n_slots, space.n_stages
    if which == "max":
        k, e, d = phase.kernel_sizes[-1], phase.expand_ratios[-1], phase.depths[-1]
        return OFAArch((k,) * n_slots, (e,) * n_slots, (d,) * n_stages, r)
    if which == "min":
        k, e, d = phase.kernel_sizes[0], phase.expand_ratios[0], phase.depths[0]
        return OFAArch((k,) * n_slots, (e,) * n_slots, (d,) * n_stages, r)
    return OFAArch(
        tuple(int(v) for v in rng.choice(phase.kernel_sizes, n_slots)),
        tuple(int(v) for v in rng.choice(phase.expand_ratios, n_slots)),
        tuple(int(v) for v in rng.choice(phase.depths, n_stages)),
        r,
    )


def _step_archs(
    space: OFAMobileNetV3Space, phase: Phase, rng: np.random.Generator, r: int
) -> list[OFAArch]:
    if phase.sampling == "sandwich":
        kinds = ["max", "min"] + ["random"] * (phase.subnets_per_step - 2)
    else:
        kinds = ["random"] * phase.subnets_per_step
    return [_sample_arch(space, phase, rng, r, kind) for kind in kinds]


class _Precision:
    """Mixed precision (or not) for one training loop: ``autocast()`` around
    forward passes and the loss, ``backward``/``step`` through the scaler."""

    def __init__(self, amp: bool, device: torch.device) -> None:
        if amp and device.type != "cuda":
            raise ValueError(
                f"amp (mixed precision) needs a CUDA device; this run trains on {device.type}"
            )
        self.enabled = amp
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def autocast(self) -> Any:
        return torch.autocast(self.device_type, dtype=torch.float16, enabled=self.enabled)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        # With amp off both are plain ``optimizer.step()``.
        self.scaler.step(optimizer)
        self.scaler.update()


def _soft_cross_entropy(logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    return -(F.softmax(target_logits, dim=1) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def _params_checksum(net: nn.Module) -> float:
    with torch.no_grad():
        return float(sum(p.double().sum() for p in net.parameters()))


@dataclass
class _Run:
    """Everything one phase needs; built once per ``train_supernet`` call."""

    space: OFAMobileNetV3Space
    dataset: ImageDataset
    schedule: list[Phase]
    config: TrainConfig
    out: Path
    dist: _Dist
    progress: ProgressCallback | None
    manifest: dict[str, Any]

    def emit(self, event: ProgressEvent) -> None:
        if self.progress is not None and self.dist.main:
            self.progress(event)

    def steps_per_epoch(self) -> int:
        return self.config.steps_per_epoch(self.dataset.n_train)


def _train_phase(
    run: _Run,
    index: int,
    net: OFAMobileNetV3,
    model: nn.Module,
    teacher: MobileNetV3Subnet | None,
    resume: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Train phase ``index``; ``model`` is ``net`` itself or its DDP wrapper."""
    phase, config, space, d = run.schedule[index], run.config, run.space, run.dist
    spe = run.steps_per_epoch()
    total = phase.epochs * spe
    optimizer = _optimizer(net, config, phase.lr)
    precision = _Precision(config.amp, d.device)
    start_epoch = 0
    elapsed = 0.0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        if config.amp and "scaler" in resume:
            precision.scaler.load_state_dict(resume["scaler"])
        start_epoch = int(resume["epochs_done"])
        elapsed = float(resume.get("seconds", 0.0))

    def event(kind: str, epoch: int, step: int, **extra: Any) -> None:
        run.emit(
            ProgressEvent(
                kind=kind,
                phase_index=index,
                n_phases=len(run.schedule),
                phase=phase.name,
                epoch=epoch,
                epochs=phase.epochs,
                step=step,
                total_steps=total,
                **extra,
            )
        )

    event("phase_start", start_epoch, start_epoch * spe)
    images = 0
    session_seconds = 0.0
    loss_value = float("nan")
    for epoch in range(start_epoch, phase.epochs):
        net.train()
        if teacher is not None:
            teacher.train()  # batch statistics, as the student sees them
            teacher.head.dropout.eval()
        rng = np.random.default_rng([config.seed, index, epoch])
        torch.manual_seed(int(rng.integers(2**62)))
        perm = rng.permutation(run.dataset.n_train)
        t0 = time.perf_counter()
        for step in range(spe):
            global_step = epoch * spe + step
            lr = _lr_at(phase, global_step, spe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = perm[step * config.batch_size : (step + 1) * config.batch_size]
            r = int(rng.choice(phase.resolutions or space.resolutions))
            archs = _step_archs(space, phase, rng, r)
            x, y = _batch(run.dataset, batch[d.rank :: d.world], r, d.device)
            optimizer.zero_grad(set_to_none=True)
            soft: torch.Tensor | None = None
            if teacher is not None and phase.uses_teacher:
                with torch.no_grad(), precision.autocast():
                    soft = teacher(x).float()
            ramp = 1.0
            if phase.subnet_lr_ramp_epochs > 0:
                ramp = min(1.0, (global_step + 1) / (phase.subnet_lr_ramp_epochs * spe))
            step_loss = 0.0
            for j, arch in enumerate(archs):
                net.set_active(arch)
                with precision.autocast():
                    out = model(x).float()
                    loss = F.cross_entropy(out, y, label_smoothing=config.label_smoothing)
                    if soft is not None and phase.kd_weight > 0:
                        loss = loss + phase.kd_weight * _soft_cross_entropy(out, soft)
                if j == 0 and phase.distill_from == "largest" and phase.kd_weight > 0:
                    soft = out.detach()  # in-place distillation target (sandwich: j=0 is max)
                if j > 0:
                    loss = loss * ramp
                precision.backward(loss)
                step_loss += float(loss.detach())
            precision.step(optimizer)
            loss_value = step_loss / len(archs)
            images += len(batch)
            event("step", epoch, global_step + 1, loss=loss_value, lr=lr)
        session_seconds += time.perf_counter() - t0
        elapsed += time.perf_counter() - t0
        if d.main:
            state = {
                **_run_identity(space, run.dataset, run.schedule, config),
                "format": CHECKPOINT_FORMAT,
                "phase_index": index,
                "epochs_done": epoch + 1,
                "seconds": elapsed,
                "state_dict": net.state_dict(),
                "optimizer": optimizer.state_dict(),
                **({"scaler": precision.scaler.state_dict()} if config.amp else {}),
            }
            _atomic_save(state, run.out / LAST_FILE)
        d.barrier()
    net.set_active(space.max_arch())
    rate = images / session_seconds if images and session_seconds > 0 else None
    return {
        "seconds": round(elapsed, 3),
        "final_loss": loss_value,
        "steps": total,
        # Global batch images per second of training (teacher and all subnets
        # of a step included); subnet-images also count each subnet's pass.
        "images_per_s": None if rate is None else round(rate, 2),
        "subnet_images_per_s": None if rate is None else round(rate * phase.subnets_per_step, 2),
    }


def _phase_metrics(run: _Run, index: int, net: OFAMobileNetV3) -> dict[str, Any]:
    """Holdout accuracy of the phase's largest and smallest subnet (BN recalibrated)."""
    phase, space = run.schedule[index], run.space
    out: dict[str, Any] = {}
    measured: dict[OFAArch, float] = {}
    for which in ("max", "min"):
        for r in sorted({space.resolutions[0], space.resolutions[-1]}):
            arch = _sample_arch(space, phase, np.random.default_rng(0), r, which)
            if arch not in measured:  # the full-network phase's max and min coincide
                ev = evaluate_subnet(
                    net, arch, run.dataset, n_calibration=run.config.eval_calibration_images
                )
                measured[arch] = round(ev.accuracy, 3)  # percent
            out[f"accuracy_{which}_r{r}"] = measured[arch]
    return out


def train_supernet(
    space: SearchSpace[Any],
    dataset: ImageDataset,
    schedule: Sequence[Phase],
    out_dir: str | os.PathLike[str],
    *,
    config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Train a supernet of ``space`` on ``dataset`` through every phase of
    ``schedule``; returns the final checkpoint (``out_dir/phase-NN-<name>.pt``).

    Resumes from ``out_dir`` if it holds an unfinished run of the same space,
    dataset, schedule and config (``ValueError`` if it holds a different one);
    returns at once if that run is complete. ``progress`` receives
    :class:`ProgressEvent` values on rank 0.
    """
    if not isinstance(space, OFAMobileNetV3Space):
        raise ValueError(f"supernet training needs an OFA-MobileNetV3 space, got {space.name!r}")
    schedule = list(schedule)
    validate_schedule(schedule, space)
    config = config or TrainConfig()
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    out = Path(out_dir)
    d = _setup_distributed(config)
    try:
        if config.amp and d.device.type != "cuda":
            # Before anything is written: a CPU run with --amp is a mistake.
            raise ValueError(
                f"amp (mixed precision) needs a CUDA device; this run trains on {d.device.type}"
            )
        if d.main:
            out.mkdir(parents=True, exist_ok=True)
        identity = _run_identity(space, dataset, schedule, config)
        manifest = _open_manifest(out, identity, d)
        run = _Run(space, dataset, schedule, config, out, d, progress, manifest)
        with warnings.catch_warnings():
            # DDP notes that a sliced weight's gradient is laid out unlike the
            # channels-last bucket: a copy, not an error.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
            return _train(run)
    finally:
        if d.owns_group:
            dist.destroy_process_group()


def _open_manifest(out: Path, identity: dict[str, Any], d: _Dist) -> dict[str, Any]:
    path = out / MANIFEST_FILE
    # Every rank must take the same branch (the new-run branch has a barrier):
    # all look before rank 0 may write, or a slow rank would see rank 0's new
    # manifest, skip the barrier and hang the next collective.
    exists = path.is_file()
    d.barrier()
    if exists:
        manifest = read_manifest(out)
        for key, value in identity.items():
            if manifest.get(key) != value:
                raise ValueError(
                    f"{str(out)!r} holds a run with a different {key}; "
                    "resume it with the same settings or use another output directory"
                )
        return manifest
    manifest = {
        "format": CHECKPOINT_FORMAT,
        **identity,
        "created_at": _now(),
        "updated_at": _now(),
        "world_size": d.world,
        "phases": [],
        "phases_completed": 0,
        "complete": False,
        "final_checkpoint": None,
    }
    if d.main:
        _atomic_write_json(manifest, path)
    d.barrier()
    return manifest


def _train(run: _Run) -> Path:
    space, d, out, manifest = run.space, run.dist, run.out, run.manifest
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.config.seed)  # same initial weights on every rank and rerun
        net = build_supernet(space, run.dataset.n_classes).to(d.device)
    if d.device.type == "cpu":
        _channels_last(net)
    done = int(manifest["phases_completed"])
    if done:
        _load_weights(net, out / manifest["phases"][done - 1]["checkpoint"], d.device)
    model: nn.Module = net
    if d.world > 1:
        # Different subnets leave different parameters without gradients;
        # every rank runs the same subnet, so such parameters are unused on all
        # ranks and DDP leaves their (already synchronised) gradients alone.
        model = nn.parallel.DistributedDataParallel(
            net,
            device_ids=[d.device.index] if d.device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    teacher: MobileNetV3Subnet | None = None
    for index in range(done, len(run.schedule)):
        phase = run.schedule[index]
        if phase.uses_teacher and teacher is None:
            teacher = _teacher(run, net)
        resume = _resume_state(out / LAST_FILE, index, d.device)
        if resume is not None:
            net.load_state_dict(resume["state_dict"])
        elif phase.sort_channels:
            previous = run.schedule[index - 1].expand_ratios if index else ()
            net.sort_channels(keep_expand_ratios=previous)
        record = _train_phase(run, index, net, model, teacher, resume)
        if run.config.eval_after_phase and d.main:
            record.update(_phase_metrics(run, index, net))
        record["replicas_in_sync"] = _replicas_in_sync(net, d)
        filename = _phase_file(index, phase)
        if d.main:
            payload = {
                **_run_identity(space, run.dataset, run.schedule, run.config),
                "format": CHECKPOINT_FORMAT,
                "phase_index": index,
                "phase": phase.name,
                "complete": index == len(run.schedule) - 1,
                "state_dict": net.state_dict(),
            }
            _atomic_save(payload, out / filename)
            entry = {"index": index, "name": phase.name, "checkpoint": filename}
            manifest["phases"].append({**entry, "finished_at": _now(), **record})
            manifest["phases_completed"] = index + 1
            manifest["updated_at"] = _now()
            manifest["world_size"] = d.world
            if index == len(run.schedule) - 1:
                manifest["complete"] = True
                manifest["final_checkpoint"] = filename
            _atomic_write_json(manifest, out / MANIFEST_FILE)
            (out / LAST_FILE).unlink(missing_ok=True)
        d.barrier()
        steps = phase.epochs * run.steps_per_epoch()
        run.emit(
            ProgressEvent(
                "phase_end",
                index,
                len(run.schedule),
                phase.name,
                phase.epochs,
                phase.epochs,
                steps,
                steps,
                loss=record.get("final_loss"),
                metrics=record,
            )
        )
    final = read_manifest(out)["final_checkpoint"]
    return out / str(final)


def _replicas_in_sync(net: nn.Module, d: _Dist) -> bool:
    if d.world == 1:
        return True
    local = torch.tensor([_params_checksum(net)], dtype=torch.float64, device=d.device)
    gathered = [torch.zeros_like(local) for _ in range(d.world)]
    dist.all_gather(gathered, local)
    values = [float(g) for g in gathered]
    return max(values) - min(values) <= 1e-6 * max(1.0, abs(values[0]))


def _teacher(run: _Run, net: OFAMobileNetV3) -> MobileNetV3Subnet:
    """The full network after the first phase, frozen (a static copy: faster)."""
    first = run.out / _phase_file(0, run.schedule[0])
    source = build_supernet(run.space, run.dataset.n_classes).to(run.dist.device)
    _load_weights(source, first, run.dist.device)
    teacher = extract_subnet(source, run.space.max_arch())
    if run.dist.device.type == "cpu":
        _channels_last(teacher)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _batch(
    dataset: ImageDataset, idx: np.ndarray, resolution: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images ``idx`` resized to ``resolution``, on ``device`` (NHWC on CPU)."""
    rows = torch.from_numpy(idx)
    x = resize_batch(dataset.train_x[rows], resolution).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    return x, dataset.train_y[rows].to(device)


def _channels_last(module: nn.Module) -> None:
    """NHWC weights: on CPU (oneDNN) depthwise convs run about twice as fast."""
    module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _resume_state(path: Path, index: int, device: torch.device) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    return state if state.get("phase_index") == index else None


def _load_weights(net: nn.Module, path: Path, device: torch.device) -> dict[str, Any]:
    payload: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    net.load_state_dict(payload["state_dict"])
    return payload


def train_subnet(
    subnet: MobileNetV3Subnet,
    dataset: ImageDataset,
    *,
    epochs: int,
    lr: float = 0.1,
    warmup_epochs: float = 0.0,
    config: TrainConfig | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> MobileNetV3Subnet:
    """Train a static subnet on its own, at its own resolution (in place).

    The from-scratch baseline of the supernet benchmark, and fine-tuning of an
    extracted subnet: the same optimiser, label smoothing, warm-up + cosine
    learning rate and seeding as a supernet phase, without distillation.
    ``progress(step, total_steps, loss)`` is called after every step. Single
    process (no DDP); returns the subnet in eval mode.
    """
    config = config or TrainConfig()
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    device = next(subnet.parameters()).device
    if device.type == "cpu":
        _channels_last(subnet)
    spe = config.steps_per_epoch(dataset.n_train)
    optimizer = _optimizer(subnet, config, lr)
    precision = _Precision(config.amp, device)
    r = subnet.resolution
    for epoch in range(epochs):
        subnet.train()
        rng = np.random.default_rng([config.seed, epoch])
        torch.manual_seed(int(rng.integers(2**62)))
        perm = rng.permutation(dataset.n_train)
        for step in range(spe):
            global_step = epoch * spe + step
            for group in optimizer.param_groups:
                group["lr"] = _cosine_lr(lr, epochs, warmup_epochs, global_step, spe)
            idx = perm[step * config.batch_size : (step + 1) * config.batch_size]
            x, y = _batch(dataset, idx, r, device)
            optimizer.zero_grad(set_to_none=True)
            with precision.autocast():
                logits = subnet(x).float()
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            precision.backward(loss)
            precision.step(optimizer)
            if progress is not None:
                progress(global_step + 1, epochs * spe, float(loss.detach()))
    return subnet.eval()


def load_supernet(
    checkpoint: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[OFAMobileNetV3Space, OFAMobileNetV3, dict[str, Any]]:
    """Rebuild ``(space, supernet, metadata)`` from a run directory (its final
    checkpoint, or the latest completed phase if the run is unfinished) or from
    one ``phase-NN-*.pt`` file. The supernet is in eval mode on its largest subnet.

    ``metadata`` holds ``space``, ``n_classes``, ``class_names``, ``dataset``
    (a :class:`DatasetSpec` dict: ``load_dataset(metadata["dataset"])``
    reloads the same split), ``schedule``, ``train_config``, ``phase_index``,
    ``phase``, ``complete`` and ``checkpoint`` (the file loaded); for a
    supernet imported from OFA (:func:`supernets.ofa_import.save_imported`)
    also ``imported_from``, an empty schedule, and ``dataset`` ``None`` when
    it was imported without images.
    """
    path = Path(checkpoint)
    if path.is_dir():
        manifest = read_manifest(path)
        if not manifest["phases"]:
            raise ValueError(f"run {str(path)!r} has no completed phase yet")
        path = path / manifest["phases"][-1]["checkpoint"]
    if not path.is_file():
        raise ValueError(f"no supernet checkpoint at {str(path)!r}")
    payload: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT or "state_dict" not in payload:
        raise ValueError(f"{str(path)!r} is not a {CHECKPOINT_FORMAT} checkpoint")
    space = space_from_config(payload["space"]["name"], payload["space"]["config"])
    assert isinstance(space, OFAMobileNetV3Space)
    net = build_supernet(space, int(payload["n_classes"]))
    net.load_state_dict(payload["state_dict"])
    net = net.to(map_location).eval()
    metadata = {k: v for k, v in payload.items() if k not in ("state_dict", "optimizer")}
    metadata["checkpoint"] = str(path)
    # Validate what the service will rebuild from the metadata. An imported
    # supernet (``imported_from``) was not trained here: no schedule, and
    # possibly no dataset.
    if metadata.get("dataset") is not None or "imported_from" not in metadata:
        DatasetSpec.from_dict(metadata["dataset"])
    if "imported_from" not in metadata:
        schedule_from_dicts(metadata["schedule"])
    return space, net, metadata
