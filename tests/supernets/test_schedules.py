"""Schedules as data: progressive shrinking, the DεpS-style schedule, phases."""

from __future__ import annotations

import itertools

import pytest

from supernets import get_space
from supernets.launch import TrainRequest
from supernets.schedules import (
    DEFAULT_SCHEDULE,
    Phase,
    available_schedules,
    deps_schedule,
    get_schedule,
    progressive_shrinking,
    schedule_from_dicts,
    schedule_info,
    schedule_to_dicts,
    total_epochs,
)
from supernets.spaces import OFAMobileNetV3Space
from supernets.train import _lr_at


def test_progressive_shrinking_matches_ofa(tiny_space: OFAMobileNetV3Space) -> None:
    phases = progressive_shrinking(tiny_space, epochs=60, lr=0.1)
    assert [p.name for p in phases] == [
        "full",
        "elastic-kernel",
        "elastic-depth-1",
        "elastic-depth-2",
        "elastic-expand-1",
        "elastic-expand-2",
    ]
    assert total_epochs(phases) == 60
    assert [p.kernel_sizes for p in phases] == [(7,)] + [(3, 5, 7)] * 5
    assert [p.depths for p in phases] == [(4,), (4,), (3, 4), (2, 3, 4), (2, 3, 4), (2, 3, 4)]
    assert [p.expand_ratios for p in phases] == [(6,)] * 4 + [(4, 6), (3, 4, 6)]
    assert [p.subnets_per_step for p in phases] == [1, 1, 2, 2, 4, 4]
    assert [p.kd_weight for p in phases] == [0.0] + [1.0] * 5
    assert all(p.distill_from == "teacher" for p in phases)
    assert [p.sort_channels for p in phases] == [False] * 4 + [True, True]
    # OFA's proportions: the full network gets the most epochs, the short steps the fewest.
    epochs = [p.epochs for p in phases]
    assert epochs[0] == max(epochs)
    assert max(epochs[2], epochs[4]) < min(epochs[1], epochs[3], epochs[5])
    assert phases[0].lr == pytest.approx(0.1) and phases[2].lr < phases[3].lr < phases[1].lr
    assert all(p.warmup_epochs > 0 for p in (phases[0], phases[1], phases[3], phases[5]))


def test_deps_schedule(tiny_space: OFAMobileNetV3Space) -> None:
    full, shrink = deps_schedule(tiny_space, epochs=20, lr=0.1)
    assert full.epochs == 10 and shrink.epochs == 10
    assert (full.kernel_sizes, full.expand_ratios, full.depths) == ((7,), (6,), (4,))
    assert shrink.sampling == "sandwich" and shrink.distill_from == "largest"
    assert shrink.kd_weight == 1.0 and shrink.subnets_per_step == 4
    assert 0 < shrink.subnet_lr_ramp_epochs <= 5
    assert shrink.kernel_sizes == tiny_space.kernel_sizes
    # One cosine across both phases: the LR does not jump at the switch.
    spe = 10
    end_of_full = _lr_at(full, full.epochs * spe - 1, spe)
    start_of_shrink = _lr_at(shrink, 0, spe)
    assert start_of_shrink == pytest.approx(0.05, rel=0.02)
    assert end_of_full == pytest.approx(start_of_shrink, rel=0.05)
    assert _lr_at(shrink, shrink.epochs * spe, spe) == pytest.approx(0.0, abs=1e-9)


def test_lr_warmup_then_cosine(tiny_space: OFAMobileNetV3Space) -> None:
    phase = progressive_shrinking(tiny_space, epochs=60, lr=0.2)[0]
    spe = 10
    warm = round(phase.warmup_epochs * spe)
    lrs = [_lr_at(phase, s, spe) for s in range(phase.epochs * spe)]
    assert lrs[0] == pytest.approx(0.2 / warm)
    assert lrs[warm] == pytest.approx(0.2)
    assert all(a <= b for a, b in itertools.pairwise(lrs[: warm + 1]))
    assert all(a >= b for a, b in itertools.pairwise(lrs[warm:]))


def test_schedule_round_trip_and_registry(tiny_space: OFAMobileNetV3Space) -> None:
    assert available_schedules() == ["deps", "deps-max-res", "progressive-shrinking"]
    for name in available_schedules():
        phases = get_schedule(name, tiny_space, epochs=12)
        assert schedule_from_dicts(schedule_to_dicts(phases)) == phases
        assert total_epochs(phases) == 12
    with pytest.raises(ValueError, match="unknown schedule"):
        get_schedule("ofa-magic", tiny_space)
    with pytest.raises(ValueError, match="at least 6 epochs"):
        progressive_shrinking(tiny_space, epochs=5)
    with pytest.raises(ValueError, match="OFA-MobileNetV3"):
        get_schedule("deps", get_space("nb201"))


def test_each_schedule_states_its_minimum_and_defaults(tiny_space: OFAMobileNetV3Space) -> None:
    for name in available_schedules():
        info = schedule_info(name)
        # The stated minimum is the builder's real one: it builds, one less is refused.
        phases = get_schedule(name, tiny_space, epochs=info.min_epochs)
        assert total_epochs(phases) == info.min_epochs == len(phases)
        with pytest.raises(ValueError, match=f"at least {info.min_epochs} epochs"):
            get_schedule(name, tiny_space, epochs=info.min_epochs - 1)
        # The stated defaults are what a request without epochs/lr gets.
        default = get_schedule(name, tiny_space)
        assert total_epochs(default) == info.default_epochs
        assert max(p.lr for p in default) == pytest.approx(info.default_lr)
    assert DEFAULT_SCHEDULE in available_schedules()
    assert TrainRequest().schedule == DEFAULT_SCHEDULE


def test_phase_validation(tiny_space: OFAMobileNetV3Space) -> None:
    base = dict(name="p", kernel_sizes=(3,), expand_ratios=(3,), depths=(2,), epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="sandwich"):
        Phase(**base, kd_weight=1.0, distill_from="largest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epochs"):
        Phase(**{**base, "epochs": 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown field"):
        Phase.from_dict({**base, "colour": "red"})
    odd = Phase(**{**base, "kernel_sizes": (9,)})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not in the space"):
        odd.check_space(tiny_space)
    teacherless = Phase(**base, kd_weight=1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first phase"):
        schedule_from_dicts([teacherless.to_dict()])


def test_deps_max_res_trains_the_full_network_at_the_largest_resolution() -> None:
    from supernets import get_space
    from supernets.schedules import Phase, get_schedule, schedule_from_dicts, schedule_to_dicts

    space = get_space("ofa-mbv3-tiny")
    full, sandwich = get_schedule("deps-max-res", space, epochs=10)
    assert full.resolutions == (48,) and sandwich.resolutions == ()
    # Round trip; a phase without the field (older stored schedules) reads as "all".
    assert schedule_from_dicts(schedule_to_dicts([full, sandwich])) == [full, sandwich]
    assert "resolutions" not in sandwich.to_dict()
    bad = Phase("x", (3,), (3,), (2,), epochs=1, lr=0.1, resolutions=(50,))
    assert isinstance(space, OFAMobileNetV3Space)
    with pytest.raises(ValueError, match="resolutions"):
        bad.check_space(space)
