"""How to spend 10 latency measurements on a new device: measurement rules and
latency corrections, with the accuracies known.

The search's final verification picks, one at a time, which architecture to
measure; each measurement corrects the device's few-shot latency model
(``nas.correction.LatencyCorrection``). This benchmark isolates that part:
every NAS-Bench-201 cell's accuracy is known (as if the search had evaluated
the whole space), the latency model is realistic mode's (the meta-model
adapted with the device's 10 reference latencies, as in
``benchmarks/search_realistic.py``), and a rule spends at most 10 true
measurements. The answer is the most accurate measured cell within budget;
regret = oracle - its accuracy (no answer: the whole oracle).

Rules: ``best`` measures the most accurate cell the corrected model predicts
within budget, then the next; ``gain`` the cell of largest expected gain,
``(accuracy - best answer so far) * P(fits)`` (``nas.verify.by_expected_gain``).
Corrections: ``LatencyCorrection(common_share, length_scale)``; a common
share of 1 is one factor for the whole device.

Settings are chosen with ``--role tune`` (HELP's train devices, each with a
meta-model trained without it); ``--role report`` runs the meta-test devices.

    python benchmarks/measurement_rules.py --role tune
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import search_realistic as bench  # noqa: E402  (the realistic mode's problems)

from nas.constraints import Constraints  # noqa: E402
from nas.correction import LatencyCorrection  # noqa: E402
from nas.records import Evaluation  # noqa: E402
from nas.verify import by_expected_gain  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
CAP = 10
#: (rule, common_share, length_scale)
CONFIGS: tuple[tuple[str, float, float], ...] = (
    ("best", 1.0, 1.0),
    ("gain", 1.0, 1.0),
    *(("gain", w, ell) for w in (0.3, 0.6) for ell in (0.5, 1.5)),
)


def _name(config: tuple[str, float, float]) -> str:
    rule, w, ell = config
    return f"{rule}, one factor" if w == 1.0 else f"{rule}, shared {w:g}, length {ell:g}"


def simulate(role: str, device: str, q: int, config: tuple[str, float, float]) -> float:
    """Regret of one rule on one device and budget."""
    rule, share, length = config
    p = bench.problem(role, device)
    info = bench.latency_info(role, "realistic", device)
    X = p.space.encode_many(p.space.all_archs()).astype(np.float64)
    mean0, std0 = info.model.predict_with_uncertainty(X)
    budget, oracle = p.budget(q), p.oracle(budget=p.budget(q))
    constraints = Constraints({device: budget})
    prior = LatencyCorrection(share, length)
    measured: list[int] = []
    answer: int | None = None
    for _ in range(CAP):
        idx = np.array(measured, dtype=int)
        fix = prior.fit(X[idx], mean0[idx], std0[idx], p.lat[idx])
        mean, std = fix.apply(X, mean0, std0)
        floor = float(p.acc[answer]) if answer is not None else float(p.acc.min())
        if rule == "best":
            ok = mean <= budget
            ok[idx] = False
            if not ok.any():
                break
            i = int(np.flatnonzero(ok)[np.argmax(p.acc[ok])])
        else:
            # Only cells that could raise the answer are worth a record.
            open_ = np.flatnonzero(p.acc > floor)
            open_ = open_[~np.isin(open_, idx)]
            records = [
                Evaluation(
                    arch=None,  # type: ignore[arg-type]  # the rule reads no architecture
                    arch_hash=str(int(i)),
                    accuracy=float(p.acc[i]),
                    latency_ms={device: float(mean[i])},
                    latency_std_ms={device: float(std[i])},
                )
                for i in open_
            ]
            picks = by_expected_gain(records, constraints, {device}, 0.0, floor, 1)
            if not picks:
                break
            i = int(picks[0].arch_hash)
        measured.append(i)
        if p.lat[i] <= budget and (answer is None or p.acc[i] > p.acc[answer]):
            answer = i
    return float(oracle - (p.acc[answer] if answer is not None else 0.0))


def devices_of(role: str) -> list[str]:
    """The devices a role runs on: the tuning role never a meta-test device."""
    return [d for d in bench.role_devices(role) if role == "report" or d not in bench.META_TEST]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", default="tune", choices=("tune", "report"))
    args = ap.parse_args(argv)
    devices = devices_of(args.role)
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for device in devices:
        for q in bench.QUANTILES:
            regrets = {_name(c): simulate(args.role, device, q, c) for c in CONFIGS}
            rows.append({"device": device, "q": q, "regret": regrets})
            print(device, q, " ".join(f"{v:.2f}" for v in regrets.values()), flush=True)
    lines = [
        f"# Measurement rules ({args.role} role: {', '.join(devices)})",
        "",
        f"`python benchmarks/measurement_rules.py --role {args.role}`: {CAP} measurements,",
        "accuracies known, realistic mode's latency model; regret over "
        f"{len(rows)} device x budget tasks ({time.perf_counter() - t0:.0f} s).",
        "",
        "| rule, correction | median regret | mean regret | tasks with regret <= 0.1 |",
        "|---|---|---|---|",
    ]
    for c in CONFIGS:
        r = np.array([row["regret"][_name(c)] for row in rows])
        lines.append(
            f"| {_name(c)} | {np.median(r):.2f} | {r.mean():.3f} | {np.mean(r <= 0.1):.0%} |"
        )
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"measurement_rules_{args.role}.md").write_text(text)
    (RESULTS / f"measurement_rules_{args.role}.json").write_text(json.dumps(rows, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
