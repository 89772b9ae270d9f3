"""Search-space objects: sampling, validation, encoding round trips, registry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from supernets import get_space, space_from_config
from supernets.spaces import NB201Arch, NB201Space, OFAArch, OFAMobileNetV3Space
from supernets.tables import nb201_accuracy, nb201_latency, ofa_mbv3_archs

SPACES = ["ofa-mbv3", "ofa-mbv3-tiny", "nb201"]


@pytest.mark.parametrize("name", SPACES)
def test_encode_decode_round_trip(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(100):
        arch = space.sample(rng)
        vec = space.encode(arch)
        assert vec.shape == (space.feature_dim,)
        assert space.decode(vec) == space.canonical(arch)
        assert space.from_params(space.to_params(arch)) == arch
        assert set(space.to_params(arch)) == set(space.choices())


@pytest.mark.parametrize("name", SPACES)
def test_sampling_is_driven_by_the_rng(name: str) -> None:
    space = get_space(name)
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    many = {space.arch_hash(space.sample(np.random.default_rng(s))) for s in range(20)}
    assert len(many) > 15


def _ofa(name: str, **kwargs: object) -> OFAMobileNetV3Space:
    space = get_space(name, **kwargs)
    assert isinstance(space, OFAMobileNetV3Space)
    return space


def _nb201() -> NB201Space:
    space = get_space("nb201")
    assert isinstance(space, NB201Space)
    return space


def test_ofa_encoding_layout_matches_ofa() -> None:
    space = _ofa("ofa-mbv3")
    assert space.feature_dim == 145  # 25 resolutions + 20x3 kernels + 20x3 expands
    arch = space.min_arch()
    vec = space.encode(arch)
    # depth 2 in every stage: 10 active slots, each with one kernel and one expand bit.
    assert vec.sum() == 1 + 10 + 10


def test_ofa_skipped_slots_do_not_change_identity() -> None:
    space = _ofa("ofa-mbv3-tiny")
    base = space.min_arch()
    ks = list(base.ks)
    ks[3] = 7  # slot 3 is beyond depth 2 of stage 0: not part of the network
    other = OFAArch(tuple(ks), base.e, base.d, base.r)
    assert other != base
    assert space.arch_hash(other) == space.arch_hash(base)
    assert np.array_equal(space.encode(other), space.encode(base))


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"ks": [4] * 20}, "'ks'[0]"),
        ({"e": [6] * 19}, "'e' must have 20"),
        ({"d": [2, 3, 4, 5, 2]}, "'d'[3]"),
        ({"r": 33}, "'r'"),
    ],
)
def test_ofa_validation_names_the_field(patch: dict, field: str) -> None:
    space = _ofa("ofa-mbv3-tiny")
    config = {**space.max_arch().to_dict(), **patch}
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        space.validate(config)


def test_ofa_validation_rejects_unknown_and_missing_fields() -> None:
    space = _ofa("ofa-mbv3")
    with pytest.raises(ValueError, match="missing"):
        space.validate({"ks": [3] * 20})
    with pytest.raises(ValueError, match="unknown"):
        space.validate({**space.max_arch().to_dict(), "w": 1})


def test_ofa_config_is_json_and_rebuilds_space() -> None:
    space = get_space("ofa-mbv3-tiny", width_mult=1.5)
    config = json.loads(json.dumps(space.config()))
    assert space_from_config("ofa-mbv3-tiny", config) == space
    arch = space.sample(np.random.default_rng(1))
    assert space.validate(json.loads(json.dumps(arch.to_dict()))) == arch
    assert space.validate(str(arch)) == arch


def test_shared_ofa_archs_are_valid_in_the_full_space() -> None:
    space = get_space("ofa-mbv3")
    archs = [space.validate(a) for a in ofa_mbv3_archs()[:200]]
    assert len(archs) == 200


def test_nb201_strings_and_indices_are_official() -> None:
    space = _nb201()
    text = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    arch = space.validate(text)
    assert str(arch) == text
    assert space.index(arch) == 1
    assert space.from_index(1) == arch
    assert nb201_accuracy()[text] == pytest.approx(93.66, abs=0.01)
    assert len(nb201_latency().arch_ids) == 15625


def test_nb201_validation() -> None:
    space = _nb201()
    with pytest.raises(ValueError, match="'ops'\\[2\\]"):
        space.validate(NB201Arch(("none", "none", "conv", "none", "none", "none")))
    with pytest.raises(ValueError, match="3 nodes"):
        space.validate("|none~0|")
    with pytest.raises(ValueError, match="index"):
        space.from_index(20000)


def test_unknown_space_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="known spaces: nb201"):
        get_space("resnet")


def test_mutate_and_crossover_stay_in_space() -> None:
    space = get_space("ofa-mbv3-tiny")
    rng = np.random.default_rng(3)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        space.validate(space.mutate(a, rng, 0.3))
        child = space.crossover(a, b, rng)
        for key, value in space.to_params(child).items():
            assert value in (space.to_params(a)[key], space.to_params(b)[key])
    assert space.mutate(a, rng, 0.0) == a
    with pytest.raises(ValueError, match="prob"):
        space.mutate(a, rng, 1.5)


def test_restricted_space_samples_inside_and_keeps_identity() -> None:
    from supernets.spaces import RestrictedSpace

    base = _ofa("ofa-mbv3-tiny")
    view = RestrictedSpace(base, {"ks0": [7], "d1": [2, 3], "r": [base.resolutions[0]]})
    rng = np.random.default_rng(0)
    for _ in range(50):
        arch = view.sample(rng)
        assert arch.ks[0] == 7 and arch.d[1] in (2, 3) and arch.r == base.resolutions[0]
        assert view.contains(arch)
        assert view.arch_hash(arch) == base.arch_hash(arch)
        assert np.array_equal(view.encode(arch), base.encode(arch))
    assert view.choices()["ks0"] == [7] and view.choices()["ks1"] == list(base.kernel_sizes)
    assert view.name == base.name and view.max_arch() == base.max_arch()
    assert not view.contains(base.min_arch())
    with pytest.raises(ValueError, match="not in space"):
        RestrictedSpace(base, {"width": [1]})
    with pytest.raises(ValueError, match="no value"):
        RestrictedSpace(base, {"ks0": [9]})
    with pytest.raises(ValueError, match="at least one"):
        RestrictedSpace(base, {"ks0": []})


def test_restricted_enumeration() -> None:
    from supernets.spaces import RestrictedSpace

    view = RestrictedSpace(_nb201(), {"edge0": ["none"], "edge1": ["skip_connect", "none"]})
    archs = view.all_archs()
    assert len(archs) == 2 * 5**4
    assert all(a.ops[0] == "none" and a.ops[1] in ("skip_connect", "none") for a in archs)


def test_nb201_cells_without_a_path_from_input_to_output_compute_nothing() -> None:
    from supernets.spaces import NB201Arch

    # edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3
    assert NB201Arch(("skip_connect",) * 6).computes_anything
    assert NB201Arch(("none", "none", "none", "avg_pool_3x3", "none", "none")).computes_anything
    # 0->1->2->3 through non-none edges only
    path = ("nor_conv_3x3", "none", "skip_connect", "none", "none", "nor_conv_1x1")
    assert NB201Arch(path).computes_anything
    # everything into node 3 is none: a constant output
    dead_end = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none", "none", "none")
    assert not NB201Arch(dead_end).computes_anything
    # node 2 feeds the output but nothing reaches node 2 from the input
    cut = ("none", "none", "none", "none", "none", "nor_conv_3x3")
    assert not NB201Arch(cut).computes_anything


@pytest.mark.parametrize("name", ["ofa-mbv3", "ofa-mbv3-tiny"])
def test_ofa_sampling_keeps_the_stream_of_one_choice_per_element(name: str) -> None:
    """Seeded samples (search initial designs, registration rounds, benchmarks)
    stay what they were when each element was drawn with ``rng.choice``."""
    space = get_space(name)
    assert isinstance(space, OFAMobileNetV3Space)
    fast, slow = np.random.default_rng(7), np.random.default_rng(7)
    for _ in range(200):
        arch = space.sample(fast)
        ks = tuple(int(slow.choice(space.kernel_sizes)) for _ in range(space.n_slots))
        e = tuple(int(slow.choice(space.expand_ratios)) for _ in range(space.n_slots))
        d = tuple(int(slow.choice(space.depths)) for _ in range(space.n_stages))
        assert arch == OFAArch(ks=ks, e=e, d=d, r=int(slow.choice(space.resolutions)))
