"""Few-shot latency prediction on unseen devices: ours vs HELP and baselines.

Part 1 -- HELP's protocol on the bundled tables (``supernets.tables``):

* meta-train on HELP's meta-train devices using only the first 900
  (NAS-Bench-201) / 4,000 (OFA-MobileNetV3) architectures;
* per meta-test device, the training pool is those architectures and the query
  set the next 1,000, both filtered to the device's 10th-90th latency
  percentile (HELP's ``remove_outlier``); every metric is on the query set:
  architectures never seen in meta-training;
* a new device gets k = 5, 10 or 20 measurements: our designed references
  (first 5 / all 10; for 20, the 10 plus 10 random from its pool, as HELP
  does with its own 10 references), 10 seeds (the meta-training seed and the
  random draws), mean +- std.

Methods, all from the same k measurements unless stated:

* ``ours`` -- ``MetaLatencyPredictor`` (with the space's shared-cost groups) and its designed references;
* ``ours, random shots`` -- the same model adapted on k random pool archs;
* ``ours, HELP refs`` -- adapted on HELP's 10 reference archs (+10 random);
* ``ridge on shots`` / ``xgboost on shots`` -- fitted on the k samples alone
  (log latency on the encoding);
* ``MACs`` / ``params`` -- the proxy (``nas.costs``), scaled by a linear fit
  to the shots for the +-10% metric;
* ``closest source (table)`` -- the source device whose table latencies rank
  the shots best, linearly mapped (log-log) to the target: needs the source's
  latency for every candidate, which only a closed benchmark table has;
  ``closest source (predicted)`` uses our fitted source model instead;
* ``ridge on sources (table)`` -- HELP's "sobering baseline": ridge of the
  target's log latency on all source devices' table latencies;
* ``HELP (published)`` -- the paper's figures (20 measurements).

Part 2 (``--real``) -- this machine, measured for real: the shipped
``ofa-mbv3-tiny`` predictor (meta-trained on the bundled GPU tables only)
adapted to this CPU from its own measurements of the reference subnets, scored
against 100 further random subnets measured the same way; PyTorch eager
(1 thread, batch 1 and batch 16) and ONNX Runtime (1 thread, batch 1).

Usage::

    nice python benchmarks/latency_predictor.py --seeds 10 --real

Writes ``benchmarks/results/latency_predictor.json`` and ``.md``; the real
measurements are kept in ``latency_predictor_cpu.jsonl`` (``--reuse`` re-scores
them without measuring again).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nas.costs import macs_and_params  # noqa: E402
from predictors.latency import (  # noqa: E402
    DeviceSpec,
    MetaLatencyPredictor,
    MetaParams,
    load_pretrained,
    measure_archs,
    reference_archs,
    shared_cost_groups,
)
from predictors.latency.pretrained import meta_training_data  # noqa: E402
from predictors.metrics import spearman_rho, within_tolerance  # noqa: E402
from supernets import tables  # noqa: E402
from supernets.spaces import get_space  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SHOTS = (5, 10, 20)
PROTOCOL = {"nb201": (900, 1000), "ofa-mbv3": (4000, 1000)}
HELP_PUBLISHED = {
    "nb201": {
        "titan_rtx_256": 0.987,
        "gold_6226": 0.989,
        "fpga": 0.985,
        "pixel2": 0.802,
        "raspi4": 0.890,
        "eyeriss": 0.940,
    }
}
HELP_OTHER = {"FLOPs (HELP paper)": 0.787, "BRP-NAS, 900 samples (HELP paper)": 0.789}
HELP_RERUN = (
    "HELP's released checkpoint re-run over 10 draws of the random shots: NB201 mean .924 ± .015"
)

Method = Callable[..., np.ndarray]


# -- helpers -------------------------------------------------------------------------
def filtered(idx: np.ndarray, y: np.ndarray) -> np.ndarray:
    """HELP's outlier removal: keep the 10th-90th percentile of ``y`` over ``idx``."""
    order = np.argsort(y[idx], kind="stable")
    n = len(idx)
    return np.sort(idx[order[int(n * 0.1) : int(n * 0.9)]])


def score(y: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    return spearman_rho(y, pred), within_tolerance(y, pred, 0.1)


def _ridge_log(F: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.linear_model import RidgeCV

    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(F, np.log(y))
    return lambda G: np.exp(model.predict(G))


def _xgb_log(F: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    import xgboost as xgb

    model = xgb.XGBRegressor(
        n_estimators=200, max_depth=3, learning_rate=0.1, n_jobs=1, random_state=0
    ).fit(F, np.log(y))
    return lambda G: np.exp(model.predict(G))


def _linear_scale(proxy_shots: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    a, b = np.polyfit(proxy_shots, y, 1) if np.ptp(proxy_shots) > 0 else (0.0, float(y.mean()))
    return lambda p: np.maximum(a * p + b, 1e-6)


def _closest_source(
    S_shots: np.ndarray, y: np.ndarray
) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
    """Index of the source column ranking the shots best, and a log-log map to y."""
    rhos = [spearman_rho(y, S_shots[:, j]) if len(y) > 1 else 0.0 for j in range(S_shots.shape[1])]
    j = int(np.argmax(rhos))
    lx, ly = np.log(S_shots[:, j]), np.log(y)
    a, b = np.polyfit(lx, ly, 1) if np.ptp(lx) > 0 else (1.0, float(ly.mean() - lx.mean()))
    return j, lambda s: np.exp(a * np.log(s) + b)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


# -- part 1: HELP's protocol -----------------------------------------------------------
def table_benchmark(space_name: str, seeds: int) -> dict[str, Any]:
    space, archs, X, Y_src = meta_training_data(space_name, "train")
    _, _, _, Y_test = meta_training_data(space_name, "test")
    split = tables.nb201_split() if space_name == "nb201" else tables.ofa_mbv3_split()
    help_refs = np.asarray(split.reference_arch_idx)
    n_train, n_query = PROTOCOL[space_name]
    costs = macs_and_params(space, archs)
    src_names = list(Y_src)
    S = np.stack([Y_src[d] for d in src_names], axis=1)  # (n, n_src) table latencies
    train_rows = np.arange(n_train)

    rows: list[dict[str, Any]] = []
    fit_seconds, adapt_ms = [], []
    settings: list[dict[str, Any]] = []  # what fit chose per seed (source devices only)
    resemblance: dict[str, list[tuple[str, float]]] = {}
    for seed in range(seeds):
        start = time.perf_counter()
        meta = MetaLatencyPredictor(seed=seed).fit(
            X[:n_train],
            {d: Y_src[d][:n_train] for d in src_names},
            groups=shared_cost_groups(space),
        )
        fit_seconds.append(time.perf_counter() - start)
        settings.append(
            {k: meta.info[k] for k in ("target_space", "jitter", "group_scale", "calibration")}
        )
        refs = meta.reference_indices
        S_pred = np.stack([meta.source_predictor(d).predict(X) for d in src_names], axis=1)
        for dev, y in Y_test.items():
            pool = filtered(train_rows, y)
            query = filtered(np.arange(n_train, n_train + n_query), y)
            if seed == 0:
                resemblance[dev] = sorted(
                    ((s, spearman_rho(y[query], S[query, j])) for j, s in enumerate(src_names)),
                    key=lambda kv: -kv[1],
                )
            rng = np.random.default_rng([seed, sum(map(ord, dev))])
            extra = rng.choice(np.setdiff1d(pool, refs), 10, replace=False)
            extra_help = rng.choice(np.setdiff1d(pool, help_refs), 10, replace=False)
            random_shots = rng.choice(pool, max(SHOTS), replace=False)
            yq = y[query]
            for k in SHOTS:
                design = refs[:k] if k <= len(refs) else np.r_[refs, extra[: k - len(refs)]]
                helps = (
                    help_refs[:k] if k <= len(help_refs) else np.r_[help_refs, extra_help[: k - 10]]
                )
                shots = {
                    "ours": design,
                    "ours, random shots": random_shots[:k],
                    "ours, HELP refs": helps,
                }
                preds: dict[str, np.ndarray] = {}
                for name, s in shots.items():
                    t0 = time.perf_counter()
                    dev_model = meta.adapt(X[s], y[s])
                    adapt_ms.append((time.perf_counter() - t0) * 1e3)
                    preds[name] = dev_model.predict(X[query])
                s, ys = design, y[design]
                preds["ridge on shots"] = _ridge_log(X[s], ys)(X[query])
                preds["xgboost on shots"] = _xgb_log(X[s], ys)(X[query])
                preds["MACs"] = _linear_scale(costs.macs[s], ys)(costs.macs[query])
                preds["params"] = _linear_scale(costs.params[s], ys)(costs.params[query])
                j, fmap = _closest_source(S[s], ys)
                preds["closest source (table)"] = fmap(S[query, j])
                j, fmap = _closest_source(S_pred[s], ys)
                preds["closest source (predicted)"] = fmap(S_pred[query, j])
                preds["ridge on sources (table)"] = _ridge_log(np.log(S[s]), ys)(np.log(S[query]))
                for method, pred in preds.items():
                    rho, w10 = score(yq, pred)
                    rows.append(
                        {
                            "method": method,
                            "device": dev,
                            "k": k,
                            "seed": seed,
                            "rho": rho,
                            "w10": w10,
                        }
                    )
    return {
        "space": space_name,
        "n_train": n_train,
        "n_query": n_query,
        "source_devices": src_names,
        "test_devices": list(Y_test),
        "seeds": seeds,
        "rows": rows,
        "fit_seconds": mean_std(fit_seconds),
        "adapt_ms": float(np.median(adapt_ms)),
        "target_space": meta.target_space,
        "fit_settings": settings,
        "resemblance": {d: [(s, round(r, 3)) for s, r in v] for d, v in resemblance.items()},
    }


# -- part 2: this machine ----------------------------------------------------------------
REAL_DEVICES = (
    DeviceSpec(backend="torch-cpu", threads=1, batch=1),
    DeviceSpec(backend="onnxruntime-cpu", threads=1, batch=1),
    DeviceSpec(backend="torch-cpu", threads=1, batch=16),
)


def _real_archs(
    space: Any, refs: list[dict[str, Any]], n_pool: int, n_test: int
) -> dict[str, list[dict[str, Any]]]:
    rng = np.random.default_rng(12345)
    seen = {space.arch_hash(space.validate(r)) for r in refs}
    picked: list[dict[str, Any]] = []
    while len(picked) < n_pool + n_test:
        arch = space.sample(rng)
        h = space.arch_hash(arch)
        if h not in seen:
            seen.add(h)
            picked.append(space.canonical(arch).to_dict())
    return {"refs": refs, "pool": picked[:n_pool], "test": picked[n_pool:]}


def measure_real(path: Path, repeats: int, rounds: int) -> list[dict[str, Any]]:
    space = get_space("ofa-mbv3-tiny")
    archs = _real_archs(space, reference_archs(space), n_pool=30, n_test=100)
    roles = [(role, i, cfg) for role, configs in archs.items() for i, cfg in enumerate(configs)]
    records = []
    with path.open("w") as fh:
        for spec in REAL_DEVICES:
            start = time.perf_counter()
            # all 140 subnets in one interleaved run: load from other processes
            # spreads over every subnet instead of skewing a few
            ms = measure_archs(
                space, [cfg for _, _, cfg in roles], spec, warmup=5, repeats=repeats, rounds=rounds
            )
            print(
                f"  {spec.name}: {len(ms)} subnets, {time.perf_counter() - start:.0f}s", flush=True
            )
            for (role, i, cfg), m in zip(roles, ms, strict=True):
                rec = {"role": role, "i": i, "arch": cfg, **m.to_dict(samples=False)}
                fh.write(json.dumps(rec) + "\n")
                records.append(rec)
    return records


def _ceiling(enc: dict[str, np.ndarray], lat: dict[str, np.ndarray]) -> dict[str, float]:
    """What this device's own data allows: ridge (log latency on the encoding)
    fitted on ~126 of its 140 measured subnets, 10-fold cross-validated, scored
    on the 100 test subnets. Bounds what measurement noise lets any model reach."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import cross_val_predict

    F = np.vstack([enc["refs"], enc["pool"], enc["test"]])
    y = np.r_[lat["refs"], lat["pool"], lat["test"]]
    pred = np.exp(cross_val_predict(RidgeCV(alphas=np.logspace(-2, 3, 11)), F, np.log(y), cv=10))
    n_test = len(lat["test"])
    rho, w10 = score(y[-n_test:], pred[-n_test:])
    return {"rho": rho, "w10": w10}


def real_benchmark(records: list[dict[str, Any]], seeds: int) -> dict[str, Any]:
    space = get_space("ofa-mbv3-tiny")
    meta = load_pretrained(space)
    src_names = list(meta.source_devices)
    out: dict[str, Any] = {"devices": {}, "rows": [], "resolutions": space.config()["resolutions"]}
    for device in dict.fromkeys(r["device"] for r in records):
        recs = [r for r in records if r["device"] == device]
        by_role = {
            role: sorted((r for r in recs if r["role"] == role), key=lambda r: r["i"])
            for role in ("refs", "pool", "test")
        }
        enc = {
            role: space.encode_many([space.validate(r["arch"]) for r in rs]).astype(np.float64)
            for role, rs in by_role.items()
        }
        lat = {role: np.array([r["median_ms"] for r in rs]) for role, rs in by_role.items()}
        spread = np.array([r["iqr_ms"] / r["median_ms"] for r in recs])
        macs = {
            role: macs_and_params(space, [space.validate(r["arch"]) for r in rs], n_classes=10).macs
            for role, rs in by_role.items()
        }
        out["devices"][device] = {
            "median_ms_range": [float(lat["test"].min()), float(lat["test"].max())],
            "median_relative_iqr": float(np.median(spread)),
            "ceiling": _ceiling(enc, lat),
        }
        S_pred = {
            role: np.stack([meta.source_predictor(d).predict(F) for d in src_names], axis=1)
            for role, F in enc.items()
        }
        yt = lat["test"]
        for seed in range(seeds):
            rng = np.random.default_rng([seed, 7])
            order = rng.permutation(len(lat["pool"]))
            for k in SHOTS:
                n_ref = min(k, len(lat["refs"]))
                extra = order[: k - n_ref]
                F = np.vstack([enc["refs"][:n_ref], enc["pool"][extra]])
                y = np.r_[lat["refs"][:n_ref], lat["pool"][extra]]
                rand = order[:k]
                preds = {
                    "ours": meta.adapt(F, y).predict(enc["test"]),
                    "ours, random shots": meta.adapt(enc["pool"][rand], lat["pool"][rand]).predict(
                        enc["test"]
                    ),
                    "ridge on shots": _ridge_log(F, y)(enc["test"]),
                    "xgboost on shots": _xgb_log(F, y)(enc["test"]),
                    "MACs": _linear_scale(np.r_[macs["refs"][:n_ref], macs["pool"][extra]], y)(
                        macs["test"]
                    ),
                }
                Sp = np.vstack([S_pred["refs"][:n_ref], S_pred["pool"][extra]])
                j, fmap = _closest_source(Sp, y)
                preds["closest source (predicted)"] = fmap(S_pred["test"][:, j])
                for method, pred in preds.items():
                    rho, w10 = score(yt, pred)
                    out["rows"].append(
                        {
                            "method": method,
                            "device": device,
                            "k": k,
                            "seed": seed,
                            "rho": rho,
                            "w10": w10,
                        }
                    )
    return out


# -- report ----------------------------------------------------------------------------------
def summarise(
    rows: list[dict[str, Any]], metric: str
) -> dict[tuple[str, str, int], tuple[float, float]]:
    """(method, device or 'mean', k) -> mean ± std over seeds (the device mean is
    averaged per seed first, so its std is across seeds)."""
    out: dict[tuple[str, str, int], tuple[float, float]] = {}
    keys = {(r["method"], r["device"], r["k"]) for r in rows}
    for method, device, k in keys:
        vals = [
            r[metric] for r in rows if (r["method"], r["device"], r["k"]) == (method, device, k)
        ]
        out[(method, device, k)] = mean_std(vals)
    for method, k in {(m, k) for m, _, k in keys}:
        seeds = sorted({r["seed"] for r in rows})
        per_seed = [
            np.mean([r[metric] for r in rows if (r["method"], r["k"], r["seed"]) == (method, k, s)])
            for s in seeds
        ]
        out[(method, "mean", k)] = mean_std(per_seed)
    return out


def _fmt(ms: tuple[float, float]) -> str:
    return f"{ms[0]:.3f} ± {ms[1]:.3f}"


def table(
    rows: list[dict[str, Any]],
    metric: str,
    devices: list[str],
    k: int,
    published: dict[str, float] | None,
) -> list[str]:
    summ = summarise(rows, metric)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cols = [*devices, "mean"] if len(devices) > 1 else devices
    lines = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m in methods:
        cells = [_fmt(summ[(m, d, k)]) for d in cols]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if published and metric == "rho":
        cells = [f"{published[d]:.3f}" if d in published else "" for d in devices]
        if len(devices) > 1:
            cells.append(f"{np.mean([published[d] for d in devices]):.3f}")
        lines.append("| HELP (published, 20 measurements) | " + " | ".join(cells) + " |")
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    """The headline table: mean ρ (and ±10%) of ours at 5/10/20 measurements."""
    lines = [
        "## Summary",
        "",
        "| benchmark | ρ, 5 meas. | ρ, 10 meas. | ρ, 20 meas. | ±10%, 10 meas. | reference |",
        "|---|---|---|---|---|---|",
    ]
    for space_name, res in results["tables"].items():
        rho, w10 = summarise(res["rows"], "rho"), summarise(res["rows"], "w10")
        devices = res["test_devices"]
        key = "mean" if len(devices) > 1 else devices[0]
        ref = (
            "HELP .932 (20 meas.); FLOPs .787"
            if space_name == "nb201"
            else "10 meas.: closest source (table) "
            f"{rho[('closest source (table)', key, 10)][0]:.3f}, closest source (predicted) "
            f"{rho[('closest source (predicted)', key, 10)][0]:.3f}, MACs alone "
            f"{rho[('MACs', key, 10)][0]:.3f}: on this GPU target the trivial baselines "
            "score about the same"
        )
        lines.append(
            f"| {space_name}, HELP protocol, {', '.join(devices)} | "
            + " | ".join(_fmt(rho[("ours", key, k)]) for k in SHOTS)
            + f" | {_fmt(w10[('ours', key, 10)])} | {ref} |"
        )
    if "real" in results:
        real = results["real"]
        for device, info in real["devices"].items():
            rows = [r for r in real["rows"] if r["device"] == device]
            rho, w10 = summarise(rows, "rho"), summarise(rows, "w10")
            lines.append(
                f"| ofa-mbv3-tiny on this CPU, `{device}`, 100 real measurements | "
                + " | ".join(_fmt(rho[("ours", device, k)]) for k in SHOTS)
                + f" | {_fmt(w10[('ours', device, 10)])} | ridge on ~126 own measurements: "
                f"{info['ceiling']['rho']:.3f} |"
            )
    return [*lines, ""]


def method_notes(results: dict[str, Any]) -> list[str]:
    """How the predictor works and how its settings were chosen, with the
    values read from the code (``MetaParams``) and from this run's fits."""
    p = MetaParams()
    chosen = []
    for space_name, res in results["tables"].items():
        seen = sorted(
            {
                (s["target_space"], s["jitter"], s["group_scale"])
                for s in res.get("fit_settings", [])
            }
        )
        if seen:
            chosen.append(
                f"{space_name}: "
                + ", ".join(f"`{t}`, isotropic {j:g}, shared costs {g:g}" for t, j, g in seen)
            )
    return [
        "## Method",
        "",
        "`MetaLatencyPredictor` (`predictors/latency/meta.py`) is a hierarchical Bayesian linear model:",
        "",
        "- per source device, a ridge model of latency on the architecture encoding (per-layer costs), in",
        "  a target space `lin` (latency / device median) or `log`;",
        "- the meta-learned part: a Gaussian prior over a new device's weights with the source devices'",
        "  mean and covariance, plus the mean direction (uniformly faster or slower), shared costs (one",
        "  per kind of operation wherever it occurs: `predictors/latency/features.py`) and a small",
        "  isotropic part; the target space, the isotropic scale "
        f"(from {list(p.jitters)}) and the shared-cost scale (from {list(p.group_scales)})",
        "  are chosen at fit time in leave-one-source-device-out episodes (no meta-test data involved);",
        "  `adapt` re-chooses the shared-cost scale per device by leave-one-out error on its own",
        "  measurements, unless the same episodes show that this hurts the sources (by more than",
        f"  {p.groups_per_device_z:g} standard errors of the paired differences: the shipped",
        "  `ofa-mbv3-tiny` predictor, so the CPU rows); the NB201 and OFA rows above were",
        "  fitted before that test existed (the CPU rows after);",
        f"- `adapt`: the closed-form posterior mean, averaged over a {len(p.jitter_spread)}x"
        f"{len(p.noise)} grid of prior/noise scales, after screening gross",
        f"  outliers (leave-one-out residual > {p.outlier_z:g} sd and off by more than "
        f"{p.outlier_ratio:g}x);",
        "- reference architectures: greedy A-optimal Bayesian experimental design under the prior (each",
        "  next one most reduces the average posterior variance over `X`), ordered best-first.",
        "",
        "Settings chosen by the fits of this run (per space, over seeds): "
        + "; ".join(chosen)
        + ".",
        "",
        "Said so it can be discounted: earlier versions of this predictor had two choices revised",
        "after looking at meta-test results (the episodes' common random draws, and the outlier factor,",
        "raised from 2x to 3x after it dropped a genuine pixel2 measurement); the shared-cost mechanism",
        "was designed looking at the family-split tasks of `latency_transfer.md`. The numeric settings",
        "themselves are chosen on source devices only.",
        "",
        "With designed references, fit picks the same references for every seed on these",
        "tables, so results with k <= 10 have little spread; the `random shots` rows show the spread over draws.",
        "",
    ]


def targets(res: dict[str, Any]) -> list[str]:
    """The issue's targets on NAS-Bench-201, checked against this run."""
    summ = summarise(res["rows"], "rho")
    help_ = HELP_PUBLISHED["nb201"]
    devices = res["test_devices"]

    def ok(flag: bool) -> str:
        return "met" if flag else "NOT met"

    per_device = [(d, summ[("ours", d, 10)][0], help_[d]) for d in devices]
    mean10, mean5 = summ[("ours", "mean", 10)][0], summ[("ours", "mean", 5)][0]
    lines = [
        "### Targets",
        "",
        "- 10 measurements, at least HELP's published figure (which uses 20) on every device: "
        + ok(all(o >= h for _, o, h in per_device))
        + " ("
        + ", ".join(f"{d} {o:.3f} vs {h:.3f}" for d, o, h in per_device)
        + ").",
        f"- 10 measurements, mean ρ ≥ .94: {ok(mean10 >= 0.94)} ({mean10:.3f}; HELP .932 with 20).",
        f"- 5 measurements, mean ρ ≥ .90: {ok(mean5 >= 0.90)} ({mean5:.3f}).",
    ]
    unlike = [d for d in devices if res["resemblance"][d][0][1] < 0.95]
    if unlike:

        def avg(method: str, k: int) -> float:
            return float(np.mean([summ[(method, d, k)][0] for d in unlike]))

        lines.append(
            f"- Devices unlike any source device (best source ρ < .95 on the query set: "
            f"{', '.join(unlike)}): ours {avg('ours', 10):.3f} with 10 measurements "
            f"({avg('ours', 5):.3f} with 5) vs HELP {np.mean([help_[d] for d in unlike]):.3f} "
            f"with 20, the closest source device {avg('closest source (table)', 10):.3f} and ridge "
            f"on all source devices' table latencies {avg('ridge on sources (table)', 10):.3f} "
            "with the same 10."
        )
    return [*lines, ""]


def report(results: dict[str, Any]) -> str:
    out = [
        "# Latency predictor: few-shot adaptation to unseen devices",
        "",
        "Generated by `benchmarks/latency_predictor.py` "
        f"({results['when']}, {results['machine']}). Method and protocol: the script's docstring.",
        "Numbers are mean ± std over seeds; `ρ` is Spearman, `±10%` the share of predictions",
        "within 10% of the measured latency, always on architectures never seen in meta-training.",
        "",
    ]
    out += summary(results)
    out += method_notes(results)
    for space_name, res in results["tables"].items():
        devices = res["test_devices"]
        published = HELP_PUBLISHED.get(space_name)
        out += [
            f"## {space_name}: HELP's protocol ({res['seeds']} seeds)",
            "",
            f"Meta-train: {len(res['source_devices'])} devices ({', '.join(res['source_devices'])}) "
            f"on the first {res['n_train']} architectures; query: the next {res['n_query']}, "
            "10th-90th percentile per device. "
            f"Fit {res['fit_seconds'][0]:.1f} ± {res['fit_seconds'][1]:.1f} s, adapt {res['adapt_ms']:.2f} ms "
            f"(median), target space `{res['target_space']}`.",
            "",
        ]
        for k in SHOTS:
            out += [
                f"### ρ with {k} measurements",
                "",
                *table(res["rows"], "rho", devices, k, published),
                "",
            ]
        for k in SHOTS:
            out += [
                f"### ±10% with {k} measurements",
                "",
                *table(res["rows"], "w10", devices, k, None),
                "",
            ]
        out += [
            "### Which source devices each target resembles",
            "",
            "Spearman ρ between the target's and each source device's latency on the query set (top 3).",
            "",
            "| target | most similar sources |",
            "|---|---|",
        ]
        for dev, sims in res["resemblance"].items():
            out.append(f"| {dev} | " + ", ".join(f"{s} {r:.3f}" for s, r in sims[:3]) + " |")
        out.append("")
        if space_name == "nb201":
            out += targets(res)
            out += [
                "Other published points: "
                + "; ".join(f"{k} {v:.3f}" for k, v in HELP_OTHER.items())
                + f". {HELP_RERUN}.",
                "",
            ]
    if "real" in results:
        real = results["real"]
        out += [
            "## This machine, measured for real: `ofa-mbv3-tiny`",
            "",
            f"Space `ofa-mbv3-tiny` at {real.get('resolutions')} px. "
            "The shipped `ofa-mbv3-tiny` predictor (meta-trained on the bundled GPU tables only) adapted "
            "from real measurements of its reference subnets on this CPU; scored against 100 other random "
            "subnets measured the same way (median of the repeats). k = 20: the 10 references plus 10 "
            "random measured subnets. Seeds vary the random draws only. Each latency is the median of "
            "30 timed calls in 5 rounds interleaved over all 140 subnets (a shared machine).",
            "",
            "Reading these numbers: the machine is a 2-core VM shared with other jobs (load average",
            "about 9 while measuring), so a single latency has a relative IQR of 20-50%, and even a ridge",
            "model fitted on ~126 of the device's own measurements (the ceiling below) ranks the test",
            "subnets only so well; compare `ours` with that ceiling and with the single closest GPU",
            "source (mapped log-log) in each table. The tiny preset's CPU latency is dominated by",
            "per-layer overhead (depth), unlike the GPU source devices; references plus 10 random",
            "measurements (k = 20, what `adapt_device(..., refit_with_extra=True)` gives the service)",
            "show what more measurements buy.",
            "",
        ]
        for device, info in real["devices"].items():
            lo, hi = info["median_ms_range"]
            out += [
                f"### {device}",
                "",
                f"Latency {lo:.3f}-{hi:.3f} ms; median relative IQR of a measurement "
                f"{info['median_relative_iqr']:.3f}. Ceiling -- ridge fitted on ~126 of this "
                "device's own measurements (10-fold cross-validation over all 140): "
                f"ρ {info['ceiling']['rho']:.3f}, ±10% {info['ceiling']['w10']:.3f}.",
                "",
            ]
            rows = [r for r in real["rows"] if r["device"] == device]
            for metric, label in (("rho", "ρ"), ("w10", "±10%")):
                summ = summarise(rows, metric)
                methods = list(dict.fromkeys(r["method"] for r in rows))
                out += [
                    f"| {label} | " + " | ".join(f"k={k}" for k in SHOTS) + " |",
                    "|---" * (len(SHOTS) + 1) + "|",
                ]
                for m in methods:
                    out.append(
                        f"| {m} | " + " | ".join(_fmt(summ[(m, device, k)]) for k in SHOTS) + " |"
                    )
                out.append("")
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--spaces", nargs="*", default=list(PROTOCOL), choices=list(PROTOCOL))
    parser.add_argument("--real", action="store_true", help="also measure this machine (part 2)")
    parser.add_argument("--reuse", action="store_true", help="re-score stored real measurements")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the stored .json"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.render:
        stored = json.loads((args.out / "latency_predictor.json").read_text())
        (args.out / "latency_predictor.md").write_text(report(stored))
        return 0
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "tables": {},
    }
    for space_name in args.spaces:
        start = time.perf_counter()
        results["tables"][space_name] = table_benchmark(space_name, args.seeds)
        print(f"{space_name}: {time.perf_counter() - start:.0f}s", flush=True)
    if args.real or args.reuse:
        path = args.out / "latency_predictor_cpu.jsonl"
        if args.reuse:
            records = [json.loads(line) for line in path.read_text().splitlines() if line]
        else:
            records = measure_real(path, args.repeats, args.rounds)
        results["real"] = real_benchmark(records, args.seeds)
    (args.out / "latency_predictor.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report(results)
    (args.out / "latency_predictor.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
