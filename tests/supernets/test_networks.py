"""Elastic layers, the supernet and subnet extraction."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from supernets import build_supernet, extract_subnet, get_space
from supernets.elastic import ElasticBatchNorm2d, ElasticDepthwiseConv2d, ElasticMBConv
from supernets.networks import MobileNetV3Subnet, OFAMobileNetV3
from supernets.spaces import OFAMobileNetV3Space


def test_public_api_round_trip() -> None:
    space = get_space("ofa-mbv3-tiny")
    net = build_supernet(space, n_classes=10)
    arch = space.sample(np.random.default_rng(0))
    assert isinstance(arch.to_dict(), dict)
    x = space.encode(arch)
    assert x.ndim == 1
    net.set_active(arch)
    sub = extract_subnet(net, arch)
    assert isinstance(sub, torch.nn.Module) and not isinstance(sub, OFAMobileNetV3)
    out = sub.eval()(torch.randn(2, 3, arch.r, arch.r))
    assert out.shape == (2, 10)


def test_build_supernet_rejects_other_spaces() -> None:
    with pytest.raises(ValueError, match="OFA-MobileNetV3"):
        build_supernet(get_space("nb201"), n_classes=10)
    with pytest.raises(ValueError, match="n_classes"):
        build_supernet(get_space("ofa-mbv3-tiny"), n_classes=1)


def test_full_size_space_builds() -> None:
    net = build_supernet(get_space("ofa-mbv3"), n_classes=1000)
    n_params = sum(p.numel() for p in net.parameters())
    # OFA's w1.0 supernet has 7.7M parameters (plus the small kernel transforms).
    assert 7.0e6 < n_params < 8.5e6


def test_set_active_validates(tiny_space: OFAMobileNetV3Space) -> None:
    net = build_supernet(tiny_space, n_classes=10)
    bad = tiny_space.max_arch().to_dict()
    bad["ks"][0] = 4
    with pytest.raises(ValueError, match=r"'ks'\[0\]"):
        net.set_active(bad)


@pytest.mark.parametrize("seed", range(6))
def test_extracted_subnet_equals_supernet(
    tiny_supernet: OFAMobileNetV3, tiny_space: OFAMobileNetV3Space, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    arch = {0: tiny_space.max_arch(), 1: tiny_space.min_arch()}.get(seed) or tiny_space.sample(rng)
    net = tiny_supernet
    before = net.active_arch
    sub = extract_subnet(net, arch).eval()
    assert net.active_arch == before  # extraction leaves the supernet as it was
    assert sub.config["arch"] == arch.to_dict()
    x = torch.randn(3, 3, arch.r, arch.r)
    net.set_active(arch)
    with torch.no_grad():
        diff = (sub(x) - net(x)).abs().max().item()
    assert diff <= 1e-5
    n_blocks = 1 + sum(arch.d)
    assert len(sub.blocks) == n_blocks
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters())


def test_elastic_kernel_is_centre_crop_through_identity_transforms() -> None:
    conv = ElasticDepthwiseConv2d(8, (3, 5, 7), stride=1)
    w7 = conv.weight.detach()
    assert torch.equal(conv.filter(8, 7), w7)
    assert torch.allclose(conv.filter(8, 5), w7[:, :, 1:6, 1:6])
    assert torch.allclose(conv.filter(4, 3), w7[:4, :, 2:5, 2:5])
    assert set(conv.transforms.keys()) == {"7to5", "5to3"}
    assert conv.transforms["7to5"].shape == (25, 25)
    assert conv.transforms["5to3"].shape == (9, 9)
    # The chain is learned: a changed 7->5 matrix changes the 3x3 kernel too.
    with torch.no_grad():
        conv.transforms["7to5"].mul_(2.0)
    assert torch.allclose(conv.filter(4, 3), 2 * w7[:4, :, 2:5, 2:5])


def test_elastic_bn_updates_only_its_slice() -> None:
    bn = ElasticBatchNorm2d(16)
    bn.train()
    bn(torch.randn(8, 6, 4, 4) + 3.0)
    mean, var = bn.running_mean, bn.running_var
    assert mean is not None and var is not None
    assert torch.all(mean[:6] > 0.1)
    assert torch.all(mean[6:] == 0)
    bn.eval()
    x = torch.randn(2, 6, 4, 4)
    ref = (x - mean[:6].view(1, -1, 1, 1)) / torch.sqrt(var[:6].view(1, -1, 1, 1) + bn.eps)
    assert torch.allclose(bn(x), ref, atol=1e-6)


def test_sort_channels_keeps_largest_subnet_and_bands(tiny_supernet: OFAMobileNetV3) -> None:
    net = copy.deepcopy(tiny_supernet)
    space = net.space
    with torch.no_grad():
        for block in net.elastic_blocks():
            block.project_conv.weight.mul_(torch.rand_like(block.project_conv.weight) * 2)
    net.set_active(space.max_arch())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = net(x)
        block = next(net.elastic_blocks())
        w4 = block.mid_channels(4)
        inner = {tuple(r.tolist()) for r in block.expand_conv.weight[:w4].flatten(1)}
        net.sort_channels(keep_expand_ratios=(4,))
        after = net(x)
    assert torch.allclose(before, after, atol=1e-5)
    # Channels of the e=4 band stay inside it, sorted by importance.
    assert {tuple(r.tolist()) for r in block.expand_conv.weight[:w4].flatten(1)} == inner
    imp = block.project_conv.weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(imp[: w4 - 1] >= imp[1:w4])
    assert torch.all(imp[w4:-1] >= imp[w4 + 1 :])


def test_first_block_of_stage_changes_width_others_are_residual(
    tiny_supernet: OFAMobileNetV3,
) -> None:
    for s in range(tiny_supernet.space.n_stages):
        blocks = tiny_supernet.stage_blocks(s)
        assert all(isinstance(b, ElasticMBConv) for b in blocks)
        assert all(b.residual for b in blocks[1:])
        assert all(b.stride == 1 for b in blocks[1:])


def test_subnet_rebuilds_from_config_alone(tiny_supernet: OFAMobileNetV3) -> None:
    arch = tiny_supernet.space.sample(np.random.default_rng(7))
    sub = extract_subnet(tiny_supernet, arch).eval()
    clone = MobileNetV3Subnet(sub.config)
    clone.load_state_dict(sub.state_dict())
    x = torch.randn(2, 3, arch.r, arch.r)
    with torch.no_grad():
        assert torch.equal(clone.eval()(x), sub(x))
    with pytest.raises(ValueError, match="format"):
        MobileNetV3Subnet({**sub.config, "format": "other/9"})
