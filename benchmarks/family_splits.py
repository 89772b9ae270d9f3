"""Build ``benchmarks/family_splits.json``: hardware families and transfer tasks.

HELP's device split puts a device of every kind on both sides (GPUs, Xeons and
phones among the meta-train *and* the meta-test devices), so a meta-test device
always has a close relative among the sources. A user's new device often has
none. The family-split tasks measure that case: the 27 devices of the
NAS-Bench-201 table are partitioned into *families* by how alike their
latencies rank the 15,625 cells, and every task meta-trains on some families
and tests on others (disjoint).

The partition (deterministic, no randomness):

* Spearman ρ between every two devices' latencies over all 15,625 cells;
* average-linkage agglomerative clustering on the distance ``1 - ρ``;
* the cut: the largest number of clusters in which every cluster has at least
  two devices (a family of one would make a task of one device).

The families are named by the order of their first member after sorting by
size (largest first), then by name: ``F1``, ``F2``, ... . The tasks are fixed
combinations of families (see :data:`FAMILY_TASKS`) plus HELP's own split and
"GPUs -> this machine's CPU" (the shipped ``ofa-mbv3-tiny`` predictor is
meta-trained on the OFA table's GPU devices; its targets are the three CPU
backends measured in ``benchmarks/results/latency_predictor_cpu.jsonl``).

This file is written once, *before* any setting is tuned on the tasks, and
committed on its own; ``--check`` verifies the committed file is what this
script builds.

    python benchmarks/family_splits.py [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from supernets import tables  # noqa: E402

OUT = ROOT / "benchmarks" / "family_splits.json"
CPU_RECORDS = "benchmarks/results/latency_predictor_cpu.jsonl"

#: (name, train families, test families): disjoint by construction. Single-family
#: sources are the hardest (one kind of hardware only); the last two mix.
FAMILY_TASKS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("F1->F2", ("F1",), ("F2",)),
    ("F2->F1", ("F2",), ("F1",)),
    ("F1->F3+F4", ("F1",), ("F3", "F4")),
    ("F2->F3+F4", ("F2",), ("F3", "F4")),
    ("F1+F2->F3+F4", ("F1", "F2"), ("F3", "F4")),
    ("F3+F4->F1+F2", ("F3", "F4"), ("F1", "F2")),
)

#: Architectures: HELP's protocol for NAS-Bench-201 (meta-train and adaptation
#: pool = the first 900 cells of the table, query = the next 1,000).
NB201_PROTOCOL = {"n_train": 900, "n_query": 1000, "query_filter": "10th-90th percentile"}


def spearman_matrix(L: np.ndarray) -> np.ndarray:
    """Spearman ρ between the columns of ``L`` (ties get average ranks)."""
    from scipy.stats import rankdata

    R = np.column_stack([rankdata(L[:, j]) for j in range(L.shape[1])])
    return np.corrcoef(R, rowvar=False)


def families(devices: Sequence[str], rho: np.ndarray) -> tuple[list[list[str]], int]:
    """Average-linkage clusters of ``1 - rho``, cut at the largest count with no
    singleton; returns the families (named order) and that count."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    dist = 1.0 - rho
    np.fill_diagonal(dist, 0.0)
    dist = (dist + dist.T) / 2  # exact symmetry for squareform
    Z = linkage(squareform(dist, checks=False), method="average")
    best: list[list[str]] | None = None
    best_k = 0
    for k in range(2, len(devices)):
        labels = fcluster(Z, k, criterion="maxclust")
        groups: dict[int, list[str]] = {}
        for dev, lab in zip(devices, labels, strict=True):
            groups.setdefault(int(lab), []).append(dev)
        if len(groups) != k or min(len(g) for g in groups.values()) < 2:
            continue
        best, best_k = [sorted(g) for g in groups.values()], k
    if best is None:
        raise ValueError("no partition without singletons")
    best.sort(key=lambda g: (-len(g), g[0]))
    return best, best_k


def build() -> dict[str, Any]:
    table = tables.nb201_latency()
    devices = sorted(table.latency)
    L = np.stack([table.latency[d] for d in devices], axis=1)
    rho = spearman_matrix(L)
    fams, k = families(devices, rho)
    names = {f"F{i + 1}": members for i, members in enumerate(fams)}
    index = {d: i for i, d in enumerate(devices)}

    def within(members: list[str]) -> float:
        idx = [index[d] for d in members]
        sub = rho[np.ix_(idx, idx)]
        return float(sub[~np.eye(len(idx), dtype=bool)].mean())

    def between(a: list[str], b: list[str]) -> float:
        return float(rho[np.ix_([index[d] for d in a], [index[d] for d in b])].mean())

    tasks: list[dict[str, Any]] = []
    for name, train_f, test_f in FAMILY_TASKS:
        if set(train_f) & set(test_f):
            raise ValueError(f"task {name}: train and test families overlap")
        train = sorted(d for f in train_f for d in names[f])
        test = sorted(d for f in test_f for d in names[f])
        best_source = {t: max(rho[index[t], index[s]] for s in train) for t in test}
        tasks.append(
            {
                "name": name,
                "kind": "family",
                "space": "nb201",
                "train_families": list(train_f),
                "test_families": list(test_f),
                "train": train,
                "test": test,
                "protocol": NB201_PROTOCOL,
                "best_source_rho": {t: round(float(v), 4) for t, v in best_source.items()},
            }
        )
    split = tables.nb201_split()
    tasks.append(
        {
            "name": "HELP",
            "kind": "help",
            "space": "nb201",
            "train": list(split.train),
            "valid": list(split.valid),
            "test": list(split.test),
            "protocol": NB201_PROTOCOL,
            "help_reference_arch_idx": list(split.reference_arch_idx),
        }
    )
    ofa = tables.ofa_mbv3_split()
    cpu_devices = sorted(
        {json.loads(line)["device"] for line in (ROOT / CPU_RECORDS).read_text().splitlines()}
    )
    tasks.append(
        {
            "name": "GPUs->this CPU",
            "kind": "real",
            "space": "ofa-mbv3-tiny",
            "train": list(ofa.train),
            "valid": list(ofa.valid),
            "test": cpu_devices,
            "protocol": {
                "meta_train": "all 5,000 OFA table subnets mapped into ofa-mbv3-tiny",
                "targets": CPU_RECORDS,
                "query": "the 100 'test' records per device (random subnets, unseen)",
                "pool": "the 10 'refs' + 30 'pool' records per device",
            },
        }
    )
    return {
        "description": (
            "Hardware families of the NAS-Bench-201 latency table (average-linkage clustering "
            "of 1 - Spearman rho over all 15,625 cells; largest cut without singletons) and "
            "transfer tasks with disjoint train/test families; plus HELP's split and GPUs -> "
            "this machine's CPU. Built by benchmarks/family_splits.py before any tuning."
        ),
        "clustering": {
            "similarity": "Spearman rho over all 15,625 NB201 cells",
            "linkage": "average, distance 1 - rho",
            "cut": "largest cluster count with every cluster >= 2 devices",
            "n_families": k,
        },
        "families": {
            f: {
                "devices": members,
                "mean_rho_within": round(within(members), 4),
            }
            for f, members in names.items()
        },
        "family_rho": {a: {b: round(between(names[a], names[b]), 4) for b in names} for a in names},
        "tasks": tasks,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="verify the committed file")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = json.dumps(build(), indent=1) + "\n"
    if args.check:
        if args.out.read_text() != text:
            print(f"{args.out} differs from what this script builds", file=sys.stderr)
            return 1
        print(f"{args.out}: up to date")
        return 0
    args.out.write_text(text)
    data = json.loads(text)
    for f, info in data["families"].items():
        print(f"{f} (within ρ {info['mean_rho_within']:.3f}): {', '.join(info['devices'])}")
    print("\n| task | train | test |\n|---|---|---|")
    for t in data["tasks"]:
        print(f"| {t['name']} | {', '.join(t['train'])} | {', '.join(t['test'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
