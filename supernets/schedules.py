"""Training schedules as data: a schedule is a list of :class:`Phase` values.

Two built-in schedules, registered by name:

* ``progressive-shrinking`` (OFA): full network -> elastic kernel -> elastic
  depth (two steps) -> elastic expand (two steps), with knowledge distillation
  from the full network after the first phase. Epochs and learning rates keep
  OFA's ImageNet proportions (180 : 125 : 25 : 125 : 25 : 125 epochs, LR 2.6 :
  0.96 : 0.08 : 0.24 : 0.08 : 0.24), scaled to the requested budget.
* ``deps`` -- in the spirit of DεpS (delayed ε-shrinking): the full network
  alone for half of the budget, then sandwich sampling (largest, smallest and
  random subnets each step) with in-place distillation from the largest, the
  subnets' learning-rate factor ramping from 0 to 1, and one cosine learning
  rate curve across both phases.

A trainer reads nothing but the phase fields, so new schedules need no code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from supernets.spaces import OFAMobileNetV3Space, SearchSpace

__all__ = [
    "DEFAULT_SCHEDULE",
    "DEFAULT_SCHEDULE_WHY",
    "Phase",
    "ScheduleInfo",
    "available_schedules",
    "deps_max_res_schedule",
    "deps_schedule",
    "get_schedule",
    "progressive_shrinking",
    "schedule_from_dicts",
    "schedule_info",
    "schedule_to_dicts",
    "total_epochs",
]

SAMPLING = ("uniform", "sandwich")
DISTILL_FROM = ("teacher", "largest")


@dataclass(frozen=True)
class Phase:
    """One phase of supernet training.

    Each step samples subnets from the candidate lists (resolution is sampled
    per batch from the space's list), backpropagates each on the same batch,
    sums the gradients and takes one optimiser step.
    """

    name: str
    #: Candidate kernel sizes, expand ratios and stage depths of this phase.
    kernel_sizes: tuple[int, ...]
    expand_ratios: tuple[int, ...]
    depths: tuple[int, ...]
    epochs: int
    #: Peak learning rate (SGD, Nesterov momentum).
    lr: float
    #: Linear warm-up from 0 to ``lr``, in epochs (fractions allowed).
    warmup_epochs: float = 0.0
    #: Subnets per step. ``uniform``: all sampled uniformly. ``sandwich``:
    #: the largest, the smallest, then ``n - 2`` uniform ones.
    subnets_per_step: int = 1
    sampling: str = "uniform"
    #: Weight of the distillation loss (soft-target cross-entropy) added to
    #: the label-smoothed cross-entropy; 0 disables distillation.
    kd_weight: float = 0.0
    #: ``teacher``: the full network as trained by the first phase (frozen).
    #: ``largest``: in-place, the largest subnet of the same step (sandwich).
    distill_from: str = "teacher"
    #: Factor on the loss of every subnet but the largest, ramped linearly from
    #: 0 to 1 over this many epochs (DεpS's subnet learning-rate ramp).
    subnet_lr_ramp_epochs: float = 0.0
    #: Re-sort middle channels by importance when the phase starts (before an
    #: expand phase); sorting stays within the widths of the previous phase.
    sort_channels: bool = False
    #: The part of one cosine curve this phase covers (0..1): a schedule can
    #: spread one cosine over several phases.
    cosine_start: float = 0.0
    cosine_end: float = 1.0
    #: Input resolutions sampled per step; empty: all of the space's. A
    #: first phase at the largest resolution only leaves the loss plateau
    #: far sooner on detailed images (measured on digits-hard: per-batch
    #: resolutions kept the full network at chance for hundreds of steps).
    resolutions: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for attr in ("kernel_sizes", "expand_ratios", "depths"):
            values = tuple(sorted({int(v) for v in getattr(self, attr)}))
            if not values:
                raise ValueError(f"phase {self.name!r}: {attr} must not be empty")
            object.__setattr__(self, attr, values)
        object.__setattr__(self, "resolutions", tuple(sorted({int(v) for v in self.resolutions})))
        if self.epochs < 1:
            raise ValueError(f"phase {self.name!r}: epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise ValueError(f"phase {self.name!r}: lr must be positive, got {self.lr}")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError(f"phase {self.name!r}: warmup_epochs must be in [0, epochs]")
        if self.subnets_per_step < 1:
            raise ValueError(f"phase {self.name!r}: subnets_per_step must be >= 1")
        if self.sampling not in SAMPLING:
            raise ValueError(f"phase {self.name!r}: sampling must be one of {list(SAMPLING)}")
        if self.sampling == "sandwich" and self.subnets_per_step < 2:
            raise ValueError(f"phase {self.name!r}: sandwich sampling needs subnets_per_step >= 2")
        if self.distill_from not in DISTILL_FROM:
            raise ValueError(
                f"phase {self.name!r}: distill_from must be one of {list(DISTILL_FROM)}"
            )
        if self.distill_from == "largest" and self.kd_weight > 0 and self.sampling != "sandwich":
            raise ValueError(
                f"phase {self.name!r}: in-place distillation (distill_from='largest') "
                "needs sandwich sampling, which trains the largest subnet first"
            )
        if self.kd_weight < 0 or self.subnet_lr_ramp_epochs < 0:
            raise ValueError(f"phase {self.name!r}: kd_weight and ramp must be >= 0")
        if not 0.0 <= self.cosine_start < self.cosine_end <= 1.0:
            raise ValueError(f"phase {self.name!r}: need 0 <= cosine_start < cosine_end <= 1")

    @property
    def uses_teacher(self) -> bool:
        return self.kd_weight > 0 and self.distill_from == "teacher"

    def check_space(self, space: OFAMobileNetV3Space) -> None:
        """Raise ``ValueError`` if a candidate is not in ``space``."""
        for attr, allowed in (
            ("kernel_sizes", space.kernel_sizes),
            ("expand_ratios", space.expand_ratios),
            ("depths", space.depths),
            ("resolutions", space.resolutions),
        ):
            bad = sorted(set(getattr(self, attr)) - set(allowed))
            if bad:
                raise ValueError(
                    f"phase {self.name!r}: {attr} {bad} are not in the space's {list(allowed)}"
                )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for attr in ("kernel_sizes", "expand_ratios", "depths", "resolutions"):
            data[attr] = list(data[attr])
        if not data["resolutions"]:
            del data["resolutions"]  # the default: stored schedules stay as they were
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Phase:
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"phase has unknown field(s) {unknown}")
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**kwargs)


def schedule_to_dicts(schedule: Sequence[Phase]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in schedule]


def schedule_from_dicts(data: Sequence[Mapping[str, Any]]) -> list[Phase]:
    phases = [Phase.from_dict(d) for d in data]
    validate_schedule(phases)
    return phases


def total_epochs(schedule: Sequence[Phase]) -> int:
    return sum(p.epochs for p in schedule)


def validate_schedule(schedule: Sequence[Phase], space: OFAMobileNetV3Space | None = None) -> None:
    if not schedule:
        raise ValueError("a schedule needs at least one phase")
    names = [p.name for p in schedule]
    if len(set(names)) != len(names):
        raise ValueError(f"phase names must be unique, got {names}")
    if schedule[0].uses_teacher:
        raise ValueError(
            "the first phase cannot distil from the teacher: the teacher is the "
            "full network that the first phase trains"
        )
    if space is not None:
        for phase in schedule:
            phase.check_space(space)


def _split_epochs(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``total`` epochs by ``weights``, at least 1 each."""
    if total < len(weights):
        raise ValueError(f"this schedule needs at least {len(weights)} epochs, got {total}")
    spare = total - len(weights)
    raw = [spare * w / sum(weights) for w in weights]
    out = [1 + int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - int(raw[i]), reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _ofa_space(space: SearchSpace[Any]) -> OFAMobileNetV3Space:
    if not isinstance(space, OFAMobileNetV3Space):
        raise ValueError(f"supernet schedules need an OFA-MobileNetV3 space, got {space.name!r}")
    return space


#: OFA's ImageNet phases: (epochs, LR relative to the full-network phase, warm-up share).
_OFA_PHASES = ((180, 1.0, 5 / 180), (125, 0.37, 5 / 125), (25, 0.03, 0.0),
               (125, 0.09, 5 / 125), (25, 0.03, 0.0), (125, 0.09, 5 / 125))  # fmt: skip


def progressive_shrinking(
    space: SearchSpace[Any], epochs: int = 60, lr: float = 0.1, kd_weight: float = 1.0
) -> list[Phase]:
    """OFA's progressive shrinking over ``epochs`` in total (see the module docstring)."""
    sp = _ofa_space(space)
    ks, es, ds = sp.kernel_sizes, sp.expand_ratios, sp.depths
    split = _split_epochs(epochs, [e for e, _, _ in _OFA_PHASES])
    # Depth and expand open up in two steps: first the two largest options, then all.
    stages = [
        ("full", ks[-1:], es[-1:], ds[-1:], 1, 0.0, False),
        ("elastic-kernel", ks, es[-1:], ds[-1:], 1, kd_weight, False),
        ("elastic-depth-1", ks, es[-1:], ds[-2:], 2, kd_weight, False),
        ("elastic-depth-2", ks, es[-1:], ds, 2, kd_weight, False),
        ("elastic-expand-1", ks, es[-2:], ds, 4, kd_weight, True),
        ("elastic-expand-2", ks, es, ds, 4, kd_weight, True),
    ]
    return [
        Phase(
            name=name,
            kernel_sizes=k,
            expand_ratios=e,
            depths=d,
            epochs=n,
            lr=lr * rel,
            warmup_epochs=min(float(n), round(n * warm, 2)),
            subnets_per_step=per_step,
            kd_weight=kd,
            sort_channels=sort,
        )
        for (name, k, e, d, per_step, kd, sort), n, (_, rel, warm) in zip(
            stages, split, _OFA_PHASES, strict=True
        )
    ]


def deps_schedule(
    space: SearchSpace[Any],
    epochs: int = 60,
    lr: float = 0.1,
    kd_weight: float = 1.0,
    full_share: float = 0.5,
    subnets_per_step: int = 4,
    ramp_epochs: float | None = None,
) -> list[Phase]:
    """DεpS-style delayed shrinking: ``full_share`` of ``epochs`` on the full
    network, the rest with sandwich sampling and in-place distillation."""
    sp = _ofa_space(space)
    if not 0.0 < full_share < 1.0:
        raise ValueError(f"full_share must be in (0, 1), got {full_share}")
    if epochs < 2:
        raise ValueError(f"this schedule needs at least 2 epochs, got {epochs}")
    n_full = min(epochs - 1, max(1, round(epochs * full_share)))
    n_shrink = epochs - n_full
    # DεpS ramps over ~5 of its epochs; a short budget ramps over a fifth of the phase.
    ramp = min(5.0, n_shrink / 5) if ramp_epochs is None else ramp_epochs
    switch = n_full / epochs
    return [
        Phase(
            name="full",
            kernel_sizes=sp.kernel_sizes[-1:],
            expand_ratios=sp.expand_ratios[-1:],
            depths=sp.depths[-1:],
            epochs=n_full,
            lr=lr,
            warmup_epochs=min(float(n_full), round(n_full * 0.05, 2)),
            cosine_end=switch,
        ),
        Phase(
            name="sandwich",
            kernel_sizes=sp.kernel_sizes,
            expand_ratios=sp.expand_ratios,
            depths=sp.depths,
            epochs=n_shrink,
            lr=lr,
            subnets_per_step=subnets_per_step,
            sampling="sandwich",
            kd_weight=kd_weight,
            distill_from="largest",
            subnet_lr_ramp_epochs=min(float(n_shrink), ramp),
            sort_channels=True,
            cosine_start=switch,
        ),
    ]


def deps_max_res_schedule(space: SearchSpace[Any], **kwargs: Any) -> list[Phase]:
    """:func:`deps_schedule` whose full-network phase sees only the space's
    largest resolution (the sandwich phase still samples all of them)."""
    full, *rest = deps_schedule(space, **kwargs)
    largest = (_ofa_space(space).resolutions[-1],)
    return [replace(full, resolutions=largest), *rest]


ScheduleBuilder = Callable[..., list[Phase]]


@dataclass(frozen=True)
class ScheduleInfo:
    """What a user choosing a built-in schedule needs to know (``--help``)."""

    name: str
    summary: str
    #: The fewest total epochs the builder accepts (one per phase).
    min_epochs: int
    #: The builder's own defaults, used when a request leaves them unset.
    default_epochs: int
    default_lr: float


_SCHEDULES: dict[str, tuple[ScheduleBuilder, str, int]] = {
    "progressive-shrinking": (
        progressive_shrinking,
        "OFA: full, then elastic kernel, depth, expand (6 phases, distilled)",
        6,
    ),
    "deps": (deps_schedule, "full network for half the epochs, then sandwich sampling", 2),
    "deps-max-res": (
        deps_max_res_schedule,
        "deps whose full-network phase sees only the largest resolution",
        2,
    ),
}

#: The schedule a request without one trains, and why (``--help`` says it).
#: Chosen by the supernet benchmark (``benchmarks/supernet_quality.py``).
DEFAULT_SCHEDULE = "deps-max-res"
DEFAULT_SCHEDULE_WHY = (
    "best mean inherited accuracy in the supernet benchmark (digits-hard, 3 seeds, "
    "10 epochs); progressive shrinking stayed near chance at that budget"
)


def available_schedules() -> list[str]:
    return sorted(_SCHEDULES)


def _builder_defaults(builder: ScheduleBuilder) -> dict[str, Any]:
    # deps-max-res forwards its keyword arguments to deps: read the target's.
    target = deps_schedule if builder is deps_max_res_schedule else builder
    params = inspect.signature(target).parameters
    return {k: params[k].default for k in ("epochs", "lr")}


def schedule_info(name: str) -> ScheduleInfo:
    """Summary, minimum epochs and default epochs/LR of a built-in schedule."""
    try:
        builder, summary, min_epochs = _SCHEDULES[name]
    except KeyError:
        raise ValueError(
            f"unknown schedule {name!r}; known schedules: {', '.join(available_schedules())}"
        ) from None
    defaults = _builder_defaults(builder)
    return ScheduleInfo(name, summary, min_epochs, int(defaults["epochs"]), float(defaults["lr"]))


def get_schedule(name: str, space: SearchSpace[Any], **kwargs: Any) -> list[Phase]:
    """Build a registered schedule for ``space``; ``kwargs`` (``epochs``, ``lr``,
    ...) go to its builder."""
    info = schedule_info(name)
    epochs = kwargs.get("epochs", info.default_epochs)
    if epochs < info.min_epochs:
        raise ValueError(
            f"schedule {name!r} needs at least {info.min_epochs} epochs "
            f"(one per phase), got {epochs}"
        )
    schedule = _SCHEDULES[name][0](space, **kwargs)
    validate_schedule(schedule, _ofa_space(space))
    return schedule
