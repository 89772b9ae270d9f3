"""Importing OFA's released MobileNetV3 supernets: every subnet of the imported
network computes what OFA's own network computes with the same weights."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from supernets import extract_subnet, import_ofa, load_supernet
from supernets.ofa_import import ofa_space, save_imported

pytest.importorskip("ofa")

from tests.supernets.ofa_reference import ofa_mobilenet_v3


def randomised_ofa(width_mult: float, n_classes: int = 1000, seed: int = 0) -> Any:
    """OFA's network with every tensor away from its initial value (BN stats and
    kernel transform matrices included), so that a tensor mapped to the wrong
    place or not at all changes the outputs."""
    torch.manual_seed(seed)
    net = ofa_mobilenet_v3(width_mult, n_classes)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.dtype.is_floating_point:
                continue
            if "running_var" in name:
                t.copy_(torch.rand_like(t) + 0.5)
            elif name.endswith("_matrix"):
                t.add_(0.1 * torch.randn_like(t))
            elif name.endswith("bn.weight"):
                t.copy_(1.0 + 0.1 * torch.randn_like(t))
            else:
                t.copy_(0.1 * torch.randn_like(t))
    return net.eval()


def _subnets(seed: int, n_random: int) -> list[tuple[list[int], list[int], list[int], int]]:
    """All 8 combinations of kernel/expand/depth extremes (alternating 128 and
    224 px), then random subnets at random resolutions in 128..224."""
    out = []
    for i, (k, e, d) in enumerate(itertools.product((3, 7), (3, 6), (2, 4))):
        out.append(([k] * 20, [e] * 20, [d] * 5, 128 if i % 2 == 0 else 224))
    rng = random.Random(seed)
    for _ in range(n_random):
        out.append(
            (
                [rng.choice((3, 5, 7)) for _ in range(20)],
                [rng.choice((3, 4, 6)) for _ in range(20)],
                [rng.choice((2, 3, 4)) for _ in range(5)],
                rng.choice(range(128, 225, 4)),
            )
        )
    return out


def _check_agreement(width_mult: float, n_random: int) -> None:
    ref = randomised_ofa(width_mult)
    net = import_ofa(ref.state_dict(), width_mult=width_mult, n_classes=1000)
    assert net.space.width_mult == width_mult
    assert not net.training
    gen = torch.Generator().manual_seed(1)
    for ks, e, d, r in _subnets(seed=int(width_mult * 10), n_random=n_random):
        x = torch.randn(2, 3, r, r, generator=gen)
        arch = {"ks": ks, "e": e, "d": d, "r": r}
        with torch.no_grad():
            ref.set_active_subnet(ks=ks, e=e, d=d)
            theirs = ref(x)
            their_static = ref.get_active_subnet(preserve_weight=True).eval()(x)
            net.set_active(arch)
            ours = net(x)
            our_static = extract_subnet(net, arch).eval()(x)
        tol = 1e-4 * max(1.0, float(theirs.abs().max()))
        assert (ours - theirs).abs().max() <= tol, (arch, float((ours - theirs).abs().max()))
        assert (our_static - their_static).abs().max() <= tol, arch
        # The comparison is not vacuous: different subnets give different logits.
        assert theirs.abs().max() > 0.1


@pytest.mark.slow
def test_w10_every_subnet_agrees_with_ofa() -> None:
    _check_agreement(1.0, n_random=4)


@pytest.mark.slow
def test_w12_every_subnet_agrees_with_ofa() -> None:
    _check_agreement(1.2, n_random=4)


def test_w12_imports_into_its_own_space() -> None:
    space = ofa_space(1.2)
    assert space.name == "ofa-mbv3-w1.2"
    assert space.width(space.stem_width) == 24
    assert ofa_space(1.0).name == "ofa-mbv3"
    assert ofa_space(1.0).config() == ofa_space(1.0).__class__().config()


# -- checkpoint forms ----------------------------------------------------------
@pytest.fixture(scope="module")
def ofa_state() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in randomised_ofa(1.0, n_classes=10).state_dict().items()}


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_released_file_forms_are_read(ofa_state: dict[str, torch.Tensor], tmp_path: Path) -> None:
    """A file with {"state_dict": ...} (OFA's releases), the older block name
    ``mobile_inverted_conv`` and a DataParallel ``module.`` prefix all load."""
    direct = import_ofa(ofa_state, n_classes=10)
    legacy = {
        "module."
        + k.replace(".conv.inverted", ".mobile_inverted_conv.inverted")
        .replace(".conv.depth_conv", ".mobile_inverted_conv.depth_conv")
        .replace(".conv.point_linear", ".mobile_inverted_conv.point_linear"): v
        for k, v in ofa_state.items()
    }
    assert any("mobile_inverted_conv" in k for k in legacy)
    path = tmp_path / "ofa.pth"
    torch.save({"state_dict": legacy}, path)
    assert _same_weights(direct, import_ofa(path, n_classes=10))
    assert _same_weights(direct, import_ofa(str(path), n_classes=10))


def test_wrong_width_names_the_stem_key(ofa_state: dict[str, torch.Tensor]) -> None:
    with pytest.raises(
        ValueError, match=r"not width_mult 1\.2.*'first_conv\.conv\.weight'.*width_mult 1\.0"
    ):
        import_ofa(ofa_state, width_mult=1.2, n_classes=10)
    with pytest.raises(ValueError, match=r"width_mult \[1\.0, 1\.2\]"):
        import_ofa(ofa_state, width_mult=0.75, n_classes=10)


def test_missing_extra_and_misshapen_keys_are_named(ofa_state: dict[str, torch.Tensor]) -> None:
    key = "blocks.7.conv.depth_conv.conv.7to5_matrix"
    missing = {k: v for k, v in ofa_state.items() if k != key}
    with pytest.raises(ValueError, match=rf"missing key '{key}'$") as info:
        import_ofa(missing, n_classes=10)
    assert "\n" not in str(info.value)

    extra = {**ofa_state, "blocks.21.conv.point_linear.bn.bn.weight": torch.ones(3)}
    with pytest.raises(ValueError, match=r"unexpected key 'blocks\.21\.conv\.point_linear"):
        import_ofa(extra, n_classes=10)

    with pytest.raises(
        ValueError,
        match=r"'classifier\.linear\.weight' has shape \[10, 1280\], expected \[1000, 1280\]",
    ):
        import_ofa(ofa_state, n_classes=1000)

    bad = dict(ofa_state)
    bad["blocks.3.conv.depth_conv.conv.conv.weight"] = torch.zeros(72, 1, 5, 5)
    with pytest.raises(
        ValueError, match=r"'blocks\.3\.conv\.depth_conv\.conv\.conv\.weight' has shape"
    ):
        import_ofa(bad, n_classes=10)


def test_unreadable_checkpoint_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no OFA checkpoint at"):
        import_ofa(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read OFA checkpoint") as info:
        import_ofa(junk)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="is not a tensor"):
        import_ofa({"first_conv.conv.weight": [1, 2]})


def test_saved_import_loads_like_a_trained_run(
    ofa_state: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    net = import_ofa(ofa_state, n_classes=10)
    out = save_imported(net, tmp_path / "run", source="unit-test")
    space, loaded, meta = load_supernet(out)
    assert space == net.space
    assert _same_weights(net, loaded)
    assert meta["dataset"] is None and meta["imported_from"]["kind"] == "ofa"
    assert meta["class_names"] == [str(i) for i in range(10)]
