"""Import MIT HAN Lab's released Once-for-All MobileNetV3 supernets.

OFA's ``OFAMobileNetV3`` (``ofa_mbv3_d234_e346_k357_w1.0`` and ``_w1.2``) has
exactly the topology of our ``ofa-mbv3`` space at the same width multiplier:
the same stem, fixed first block, 5 stages x 4 elastic blocks with the same
strides, activations and SE placement, the same ``make_divisible`` rounding of
every width (middle widths from the block's input width times the expand
ratio, SE hidden width a quarter of that), the same chained kernel transforms
(7->5 then 5->3, each applied to the centre crop of the previous kernel), and
the same head. So importing is a renaming of state_dict keys, one to one,
checked for completeness and shape; the agreement test
(``tests/supernets/test_ofa_import.py``) runs OFA's own classes against ours.

Key names: OFA wraps every elastic layer in a module holding the plain one
(``...inverted_bottleneck.conv.conv.weight``, ``...bn.bn.weight``); releases
made with older OFA code name a block's body ``mobile_inverted_conv`` instead of
``conv``, and checkpoints saved from a ``DataParallel`` prefix ``module.``. All
three spellings are accepted (OFA's own loader accepts the first two).

:func:`save_imported` writes the imported network as an hwnas run directory
(``manifest.json`` + one checkpoint) that :func:`supernets.load_supernet`,
evaluation, export and the service read like a trained run.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from supernets.data import DatasetSpec
from supernets.networks import OFAMobileNetV3, build_supernet
from supernets.spaces import OFAMobileNetV3Space, get_space

__all__ = [
    "IMPORT_PHASE",
    "OFA_SPACES",
    "import_ofa",
    "ofa_key_map",
    "ofa_space",
    "read_ofa_state_dict",
    "save_imported",
]

#: Released width multipliers and the space each one is imported into. w1.2
#: gets a space name of its own so that nothing keyed by space name (the
#: shipped latency predictor is a w1.0 model) applies to it by mistake.
OFA_SPACES: dict[float, str] = {1.0: "ofa-mbv3", 1.2: "ofa-mbv3-w1.2"}

#: The name of the one "phase" of an imported run directory.
IMPORT_PHASE = "ofa-import"
_CHECKPOINT_FILE = "ofa-import.pt"


def ofa_space(width_mult: float) -> OFAMobileNetV3Space:
    """Our space that matches OFA's released supernet of ``width_mult``."""
    name = OFA_SPACES.get(float(width_mult))
    if name is None:
        raise ValueError(
            f"OFA released MobileNetV3 supernets at width_mult {sorted(OFA_SPACES)}, "
            f"got {width_mult}"
        )
    space = get_space(name)
    assert isinstance(space, OFAMobileNetV3Space)
    return space


def _bn(ofa: str, ours: str) -> dict[str, str]:
    stats = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    return {f"{ofa}.{s}": f"{ours}.{s}" for s in stats}


def ofa_key_map(net: OFAMobileNetV3) -> dict[str, str]:
    """OFA state_dict key (current spelling) -> our key, for every tensor of ``net``."""
    out: dict[str, str] = {"first_conv.conv.weight": "stem.conv.weight"}
    out.update(_bn("first_conv.bn", "stem.bn"))
    first = "blocks.0.conv"
    out[f"{first}.depth_conv.conv.weight"] = "first_block.dw.conv.weight"
    out.update(_bn(f"{first}.depth_conv.bn", "first_block.dw.bn"))
    out[f"{first}.point_linear.conv.weight"] = "first_block.project.conv.weight"
    out.update(_bn(f"{first}.point_linear.bn", "first_block.project.bn"))
    index = 1
    for s in range(net.space.n_stages):
        for i, block in enumerate(net.stage_blocks(s)):
            o, w = f"blocks.{index}.conv", f"stages.{s}.{i}"
            out[f"{o}.inverted_bottleneck.conv.conv.weight"] = f"{w}.expand_conv.weight"
            out.update(_bn(f"{o}.inverted_bottleneck.bn.bn", f"{w}.expand_bn"))
            out[f"{o}.depth_conv.conv.conv.weight"] = f"{w}.dw_conv.weight"
            for step in block.dw_conv.transforms:
                out[f"{o}.depth_conv.conv.{step}_matrix"] = f"{w}.dw_conv.transforms.{step}"
            out.update(_bn(f"{o}.depth_conv.bn.bn", f"{w}.dw_bn"))
            if block.se is not None:
                for part in ("reduce", "expand"):
                    for t in ("weight", "bias"):
                        out[f"{o}.depth_conv.se.fc.{part}.{t}"] = f"{w}.se.{part}.{t}"
            out[f"{o}.point_linear.conv.conv.weight"] = f"{w}.project_conv.weight"
            out.update(_bn(f"{o}.point_linear.bn.bn", f"{w}.project_bn"))
            index += 1
    out["final_expand_layer.conv.weight"] = "head.final_expand.conv.weight"
    out.update(_bn("final_expand_layer.bn", "head.final_expand.bn"))
    out["feature_mix_layer.conv.weight"] = "head.feature_mix.weight"
    out["classifier.linear.weight"] = "head.classifier.weight"
    out["classifier.linear.bias"] = "head.classifier.bias"
    return out


# Spellings of the same tensor across OFA versions, tried in order when a key
# is not one of the expected ones (the same rewrites OFA's own loader makes).
_ALTERNATIVES = (
    (".bn.", ".bn.bn."),
    (".bn.bn.", ".bn."),
    (".conv.weight", ".conv.conv.weight"),
    (".conv.conv.weight", ".conv.weight"),
    (".linear.", ".linear.linear."),
    (".linear.linear.", ".linear."),
)


def _canonical(key: str, expected: Mapping[str, str]) -> str:
    if key.startswith("module."):
        key = key[len("module.") :]
    key = key.replace(".mobile_inverted_conv.", ".conv.")
    if key in expected:
        return key
    for old, new in _ALTERNATIVES:
        if old in key:
            candidate = key.replace(old, new, 1)
            if candidate in expected:
                return candidate
    return key


def read_ofa_state_dict(
    source: Mapping[str, Any] | str | os.PathLike[str],
) -> dict[str, torch.Tensor]:
    """The tensors of an OFA checkpoint: a state_dict, or a file holding one
    (bare, or under ``"state_dict"`` as OFA's released files have it)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"no OFA checkpoint at {str(path)!r}")
        try:
            # Tensors and plain containers only: a checkpoint is data, not code.
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # any unreadable file gets one clear line
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ValueError(f"cannot read OFA checkpoint {str(path)!r}: {first}") from None
    if not isinstance(source, Mapping):
        raise ValueError(f"an OFA checkpoint must be a state_dict, got {type(source).__name__}")
    if "state_dict" in source and isinstance(source["state_dict"], Mapping):
        source = source["state_dict"]
    out: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"OFA checkpoint key {key!r} is not a tensor")
        out[str(key)] = value
    return out


def import_ofa(
    state_dict_or_path: Mapping[str, Any] | str | os.PathLike[str],
    width_mult: float = 1.0,
    n_classes: int = 1000,
) -> OFAMobileNetV3:
    """Our supernet with the weights of an OFA ``OFAMobileNetV3`` checkpoint.

    Every subnet computes the same function as OFA's network with the same
    weights (``set_active_subnet``/``get_active_subnet`` there,
    :meth:`OFAMobileNetV3.set_active` / :func:`supernets.extract_subnet` here).
    A checkpoint of another width, a missing or extra key, or a tensor of the
    wrong shape raises a one-line ``ValueError`` naming the key. The network is
    returned in eval mode on its largest subnet.
    """
    space = ofa_space(width_mult)
    state = read_ofa_state_dict(state_dict_or_path)
    net = build_supernet(space, n_classes)
    ours = net.state_dict()
    expected = ofa_key_map(net)
    stem_key = "first_conv.conv.weight"
    stem = next((v for k, v in state.items() if _canonical(k, expected) == stem_key), None)
    stem_width = ours[expected[stem_key]].shape[0]
    if stem is not None and stem.ndim == 4 and stem.shape[0] != stem_width:
        found = [
            w for w in OFA_SPACES if ofa_space(w).width(ofa_space(w).stem_width) == stem.shape[0]
        ]
        hint = f" (that is width_mult {found[0]})" if found else ""
        raise ValueError(
            f"OFA checkpoint is not width_mult {width_mult}: key {stem_key!r} has "
            f"{stem.shape[0]} output channels, expected {stem_width}{hint}"
        )
    mapped: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for key, value in state.items():
        canon = _canonical(key, expected)
        if canon not in expected:
            raise ValueError(
                f"unexpected key {key!r} in the OFA checkpoint (not in OFA-MobileNetV3 w{width_mult})"
            )
        if canon in origin:
            raise ValueError(f"OFA checkpoint holds key {key!r} twice (also as {origin[canon]!r})")
        target = expected[canon]
        if tuple(value.shape) != tuple(ours[target].shape):
            raise ValueError(
                f"OFA checkpoint key {key!r} has shape {list(value.shape)}, "
                f"expected {list(ours[target].shape)}"
            )
        origin[canon] = key
        mapped[target] = value.to(ours[target].dtype)
    missing = [k for k in expected if k not in origin]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(f"OFA checkpoint is missing key {missing[0]!r}{more}")
    net.load_state_dict(mapped, strict=True)
    return net.eval()


def save_imported(
    net: OFAMobileNetV3,
    out_dir: str | os.PathLike[str],
    *,
    dataset: DatasetSpec | None = None,
    class_names: tuple[str, ...] | None = None,
    source: str = "",
) -> Path:
    """Write ``net`` as a finished hwnas run directory; returns the directory.

    ``dataset``: the user's images, split into a BN-recalibration part and a
    disjoint holdout part for accuracy. ``None`` means no data: the supernet
    can be searched for latency but no accuracy can be measured.
    """
    from supernets.train import CHECKPOINT_FORMAT, MANIFEST_FILE

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    space = net.space
    names = list(class_names) if class_names is not None else [str(i) for i in range(net.n_classes)]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    identity = {
        "space": {"name": space.name, "config": space.config()},
        "n_classes": net.n_classes,
        "class_names": names,
        "dataset": None if dataset is None else dataset.to_dict(),
        # No training happened here: the weights are OFA's.
        "schedule": [],
        "train_config": {},
        "imported_from": {"kind": "ofa", "width_mult": space.width_mult, "source": source},
    }
    payload = {
        **identity,
        "format": CHECKPOINT_FORMAT,
        "phase_index": 0,
        "phase": IMPORT_PHASE,
        "complete": True,
        "state_dict": net.state_dict(),
    }
    tmp = out / (_CHECKPOINT_FILE + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, out / _CHECKPOINT_FILE)
    manifest = {
        "format": CHECKPOINT_FORMAT,
        **identity,
        "created_at": now,
        "updated_at": now,
        "world_size": 1,
        "phases": [
            {"index": 0, "name": IMPORT_PHASE, "checkpoint": _CHECKPOINT_FILE, "finished_at": now}
        ],
        "phases_completed": 1,
        "complete": True,
        "final_checkpoint": _CHECKPOINT_FILE,
    }
    tmp = out / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out / MANIFEST_FILE)
    return out
