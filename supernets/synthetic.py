"""``digits-hard``: a harder image task rendered from scikit-learn's bundled digits.

scikit-learn's 8x8 digits are too easy for a supernet benchmark: every
subnet of ``ofa-mbv3-tiny`` scores 96-100 % on them, so the accuracy of
subnets is mostly noise and a search chooses among ties. This module renders
each source digit into a larger RGB scene -- random rotation, scale, shear
and position, a tinted background, faint distractor fragments cut from other
digits of the *same* split, a few random strokes and pixel noise -- so that
small, low-resolution subnets visibly lose to large ones.

Everything is generated from bundled data with a seeded generator (nothing is
downloaded), and the split is made on *source* digits before rendering: a
training image and a holdout image never come from the same handwritten
sample, so the holdout measures generalisation to unseen writing, not to an
unseen augmentation of a memorised one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["HardDigitsConfig", "render_digits", "split_sources"]


@dataclass(frozen=True)
class HardDigitsConfig:
    """How the scenes are drawn. The defaults are the registered ``digits-hard``
    task; changing them is a different task (and a different stored spec)."""

    #: Side of the rendered square image (the tiny space's largest resolution).
    size: int = 48
    #: Rendered images per source digit, per split.
    train_copies: int = 3
    holdout_copies: int = 6
    #: Digit height as a fraction of the image side (uniform in this range).
    scale: tuple[float, float] = (0.45, 0.7)
    #: Rotation range (degrees, symmetric) and shear range (symmetric).
    rotation_deg: float = 12.0
    shear: float = 0.1
    #: Distractor fragments per image (uniform integer range, inclusive).
    distractors: tuple[int, int] = (0, 1)
    #: Random straight strokes per image (uniform integer range, inclusive).
    strokes: tuple[int, int] = (0, 1)
    #: Standard deviation of the additive pixel noise (uniform in this range).
    noise: tuple[float, float] = (0.02, 0.06)
    #: Per-channel ranges of the background and the ink colour (0..1).
    background: tuple[float, float] = (0.0, 0.2)
    ink: tuple[float, float] = (0.8, 1.0)

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if self.train_copies < 1 or self.holdout_copies < 1:
            raise ValueError("train_copies and holdout_copies must be >= 1")
        for name in ("distractors", "strokes"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be a range 0 <= low <= high, got {(lo, hi)}")


def split_sources(
    labels: np.ndarray, holdout_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of *source* digits into sorted train and holdout indices."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(labels.shape[0])
    train, hold = train_test_split(
        idx, test_size=holdout_fraction, random_state=seed, stratify=labels
    )
    return np.sort(train), np.sort(hold)


def _affine_grids(
    rng: np.random.Generator, n: int, cfg: HardDigitsConfig, scale: tuple[float, float]
) -> torch.Tensor:
    """Sampling grids mapping the output canvas onto a source digit.

    ``affine_grid`` works in normalised coordinates ([-1, 1] on both sides),
    so a digit of height ``s`` (fraction of the canvas) needs the inverse
    scale ``1/s`` from canvas to source.
    """
    s = rng.uniform(*scale, n)
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg, n))
    shear = rng.uniform(-cfg.shear, cfg.shear, n)
    # Keep the digit's centre inside the canvas: shift at most 1 - s/2 (normalised).
    limit = np.clip(1.0 - s, 0.0, None)
    tx, ty = rng.uniform(-1, 1, n) * limit, rng.uniform(-1, 1, n) * limit
    cos, sin = np.cos(angle), np.sin(angle)
    # Forward map source -> canvas: rotate . shear . scale, then translate;
    # affine_grid wants the inverse (canvas -> source).
    rot = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shr = np.zeros((n, 2, 2))
    shr[:, 0, 0] = shr[:, 1, 1] = 1.0
    shr[:, 0, 1] = shear
    inv = np.linalg.inv(rot @ shr * s[:, None, None])
    theta = np.concatenate([inv, -inv @ np.stack([tx, ty], -1)[..., None]], axis=2)
    size = (n, 1, cfg.size, cfg.size)
    return F.affine_grid(torch.from_numpy(theta).float(), list(size), align_corners=False)


def _strokes(rng: np.random.Generator, n: int, cfg: HardDigitsConfig) -> torch.Tensor:
    """Random anti-aliased straight strokes, ``(n, 1, size, size)`` in [0, 1]."""
    size = cfg.size
    k = cfg.strokes[1]
    if k == 0:
        return torch.zeros(n, 1, size, size)
    coords = torch.arange(size, dtype=torch.float32)
    ys, xs = coords.view(1, 1, size, 1), coords.view(1, 1, 1, size)
    # All strokes at once: (n, k) parameters, strokes past an image's count are off.
    p0 = torch.from_numpy(rng.uniform(0, size, (n, k, 2))).float()
    angle = torch.from_numpy(rng.uniform(0, math.pi, (n, k))).float()
    length = torch.from_numpy(rng.uniform(0.2, 0.6, (n, k)) * size).float()
    width = torch.from_numpy(rng.uniform(0.6, 1.4, (n, k))).float()
    shade = torch.from_numpy(rng.uniform(0.3, 0.8, (n, k))).float()
    on = torch.from_numpy(
        np.arange(k)[None, :] < rng.integers(cfg.strokes[0], k + 1, n)[:, None]
    ).float()
    dx, dy = torch.cos(angle)[..., None, None], torch.sin(angle)[..., None, None]
    rel_x = xs - p0[..., 0, None, None]
    rel_y = ys - p0[..., 1, None, None]
    along = (rel_x * dx + rel_y * dy).clamp(min=0)
    along = torch.minimum(along, length[..., None, None])
    dist = torch.hypot(rel_x - along * dx, rel_y - along * dy)
    line = (1.0 - (dist - width[..., None, None] / 2).clamp(min=0)).clamp(0, 1)
    lines = line * (shade * on)[..., None, None]
    return lines.amax(dim=1, keepdim=True)


def render_digits(
    sources: np.ndarray,
    copies: int,
    seed: int,
    cfg: HardDigitsConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``copies`` scenes of each 8x8 source digit (values 0..1).

    Returns ``(images, source_of)``: float32 ``(len(sources) * copies, 3,
    size, size)`` in [0, 1], and for each image the position of its digit in
    ``sources``. Distractor fragments are drawn from ``sources`` too, so a
    split's images only ever contain that split's handwriting.
    """
    cfg = cfg or HardDigitsConfig()
    rng = np.random.default_rng(seed)
    n_src = sources.shape[0]
    source_of = np.repeat(np.arange(n_src), copies)
    n = source_of.shape[0]
    # Pad the 8x8 digit by one blank pixel so that sampling outside it is empty.
    src = F.pad(torch.from_numpy(sources.astype(np.float32))[:, None], (1, 1, 1, 1))
    grid = _affine_grids(rng, n, cfg, cfg.scale)
    digit = F.grid_sample(src[torch.from_numpy(source_of)], grid, align_corners=False)

    # Distractors: other digits, smaller and fainter, at random places.
    clutter = torch.zeros_like(digit)
    n_dis = rng.integers(cfg.distractors[0], cfg.distractors[1] + 1, n)
    for k in range(int(n_dis.max(initial=0))):
        active = torch.from_numpy((n_dis > k).astype(np.float32)).view(n, 1, 1, 1)
        other = torch.from_numpy(rng.integers(0, n_src, n))
        g = _affine_grids(rng, n, cfg, (cfg.scale[0] * 0.6, cfg.scale[1] * 0.8))
        frag = F.grid_sample(src[other], g, align_corners=False)
        strength = torch.from_numpy(rng.uniform(0.2, 0.4, n)).float().view(n, 1, 1, 1)
        clutter = torch.maximum(clutter, frag * strength * active)
    clutter = torch.maximum(clutter, _strokes(rng, n, cfg))
    ink = torch.maximum(digit, clutter).clamp(0, 1)

    # Colour: a dark tinted background and bright tinted ink, drawn per image
    # and channel. The polarity is fixed: with random polarity a small network
    # learns nothing in a CPU-sized budget (measured: chance after 3 epochs).
    lo, hi = cfg.background, cfg.ink
    bg = torch.from_numpy(rng.uniform(lo[0], lo[1], (n, 3, 1, 1))).float()
    fg = torch.from_numpy(rng.uniform(hi[0], hi[1], (n, 3, 1, 1))).float()
    img = bg + (fg - bg) * ink
    sigma = torch.from_numpy(rng.uniform(*cfg.noise, n)).float().view(n, 1, 1, 1)
    noise = torch.from_numpy(rng.standard_normal(img.shape).astype(np.float32))
    img = (img + sigma * noise).clamp(0, 1)
    return img.numpy(), source_of
