"""Analytic MACs / parameter counts against published numbers and the real networks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nas import has_cost_model, macs_and_params
from nas.costs import nb201_cost_weights
from supernets import get_space
from supernets.spaces import NB201Space, OFAMobileNetV3Space


def ofa(name: str) -> OFAMobileNetV3Space:
    space = get_space(name)
    assert isinstance(space, OFAMobileNetV3Space)
    return space


def test_nb201_range_matches_nas_bench_201() -> None:
    space = NB201Space()
    costs = macs_and_params(space, space.all_archs())
    # NAS-Bench-201's published extremes: 7.78M-220.11M FLOPs (MACs), 0.073M-1.53M params.
    assert costs.macs.min() == pytest.approx(7.78304e6)
    assert costs.macs.max() == pytest.approx(220.11968e6)
    assert costs.params.min() == pytest.approx(0.073306e6)
    assert costs.params.max() == pytest.approx(1.531546e6)


def test_nb201_cost_is_linear_in_the_encoding() -> None:
    space = get_space("nb201")
    macs_w, _, (macs0, _) = nb201_cost_weights()
    arch = space.validate(
        "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
    )
    # one 3x3 conv edge and one 1x1 conv edge, each in 15 cells
    assert macs_and_params(space, [arch]).macs[0] == pytest.approx(
        macs0 + space.encode(arch) @ macs_w
    )
    per_3x3 = 15 * 9 * 16 * 16 * 32 * 32
    per_1x1 = 15 * 16 * 16 * 32 * 32
    assert macs_and_params(space, [arch]).macs[0] == pytest.approx(macs0 + per_3x3 + per_1x1)


def test_ofa_costs_grow_with_the_architecture() -> None:
    space = ofa("ofa-mbv3")
    small, big = space.min_arch(), space.max_arch()
    costs = macs_and_params(space, [small, big])
    assert costs.macs[0] < costs.macs[1]
    assert costs.params[0] < costs.params[1]
    # Resolution changes MACs, never parameters.
    lo = macs_and_params(space, [small])
    hi = macs_and_params(space, [space.validate({**small.to_dict(), "r": 224})])
    assert hi.macs[0] > lo.macs[0] and hi.params[0] == lo.params[0]
    # ImageNet-sized max subnet: ~7.7M params (OFA's supernet), a few hundred M MACs.
    assert 7.0e6 < costs.params[1] < 8.5e6
    assert 4.0e8 < costs.macs[1] < 7.0e8


def test_ofa_counts_match_the_extracted_subnet() -> None:
    torch = pytest.importorskip("torch")
    from supernets import build_supernet, extract_subnet

    space = ofa("ofa-mbv3-tiny")
    supernet = build_supernet(space, 10)
    rng = np.random.default_rng(0)
    for arch in [space.min_arch(), space.max_arch(), space.sample(rng)]:
        subnet = extract_subnet(supernet, arch).eval()
        macs = 0

        def hook(module: Any, inputs: Any, output: Any) -> None:
            nonlocal macs
            if isinstance(module, torch.nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                macs += output.numel() * module.in_channels // module.groups * k
            elif isinstance(module, torch.nn.Linear):
                macs += output.numel() * module.in_features

        handles = [
            m.register_forward_hook(hook)
            for m in subnet.modules()
            if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)
        ]
        with torch.no_grad():
            subnet(torch.zeros(1, 3, arch.r, arch.r))
        for h in handles:
            h.remove()
        costs = macs_and_params(space, [arch], n_classes=10)
        assert costs.params[0] == sum(p.numel() for p in subnet.parameters())
        assert costs.macs[0] == macs


def test_unknown_space_has_no_cost_model() -> None:
    class Other:
        name = "other"

    assert not has_cost_model(Other())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no MACs/params model"):
        macs_and_params(Other(), [])  # type: ignore[arg-type]
