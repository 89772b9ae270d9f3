"""Shared fixtures: a tiny supernet whose weights and BN statistics are not at
their initial values, so that equality tests exercise every copied tensor."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from supernets import build_supernet, get_space
from supernets.networks import OFAMobileNetV3
from supernets.spaces import OFAMobileNetV3Space


@pytest.fixture(scope="session")
def tiny_space() -> OFAMobileNetV3Space:
    space = get_space("ofa-mbv3-tiny")
    assert isinstance(space, OFAMobileNetV3Space)
    return space


def perturbed_supernet(space: OFAMobileNetV3Space, n_classes: int = 10) -> OFAMobileNetV3:
    torch.manual_seed(0)
    net = build_supernet(space, n_classes=n_classes)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "transforms" in name or name.endswith("bn.weight") or name.endswith("bn.bias"):
                p.add_(0.05 * torch.randn_like(p))
    net.train()
    rng = np.random.default_rng(0)
    with torch.no_grad():
        for _ in range(4):
            arch = space.sample(rng)
            net.set_active(arch)
            net(torch.randn(4, 3, arch.r, arch.r))
    net.set_active(space.max_arch())
    return net.eval()


@pytest.fixture(scope="session")
def tiny_supernet(tiny_space: OFAMobileNetV3Space) -> OFAMobileNetV3:
    with one_torch_thread():
        return perturbed_supernet(tiny_space)


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread: these tensors are tiny, and on a shared 2-core box
    OpenMP's spinning threads made the suite ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    with one_torch_thread():
        yield
