"""Real latency measurement on local hardware.

A *device* is ``(host, backend, threads, batch)``: the same network on the
same machine is a different latency target with 1 or 4 threads, in PyTorch
eager or ONNX Runtime, at batch 1 or 32. :class:`DeviceSpec` names it;
:func:`measure_latency` times a network on it and returns a
:class:`LatencyMeasurement` that records how the number was obtained (what a
database stores next to it).

Method: warm up (first calls allocate, pick kernels, fill caches), then time
``repeats`` single forward passes one by one with ``time.perf_counter`` (CUDA:
synchronised before and after), and report the median with its spread (p10,
p90, IQR). One call per sample rather than one timer around a loop: the
spread is the point on a shared machine, and the median ignores the calls
another process interrupted.

Backends:

* ``torch-cpu`` -- PyTorch eager on CPU, ``torch.set_num_threads(threads)``
  for the duration of the measurement.
* ``onnxruntime-cpu`` -- the module exported to ONNX as deployed subnets are
  (``supernets.export.onnx_from_module``: dynamic batch, fed ``batch``), run
  by an ONNX Runtime CPU session with ``threads`` intra-op threads; or an ``.onnx``
  file given directly: what a remote device runs. This file imports only the
  standard library and numpy at the top (torch and onnxruntime on use), so a
  copy of it is a standalone runner needing just numpy and onnxruntime:
  ``python measure.py ref_*.onnx --threads 1`` prints one measurement record
  per file (JSONL, :mod:`predictors.latency.records`), naming the space and
  reference set from the package's ``manifest.json``
  (:func:`~predictors.latency.registration.export_reference_onnx` writes that
  copy, the manifest and ``hwnas_records.py`` next to the reference models).
* ``torch-cuda`` -- PyTorch eager on the current CUDA device (when present).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the standalone copy of this file runs without hwnas
    from supernets.progress import ProgressCallback

__all__ = [
    "BACKENDS",
    "DeviceSpec",
    "LatencyMeasurement",
    "available_backends",
    "host_name",
    "measure_latency",
    "measure_many",
    "measure_onnx",
    "onnx_providers",
]

BACKENDS = ("torch-cpu", "onnxruntime-cpu", "torch-cuda")


def host_name() -> str:
    """This machine's name (``HWNAS_HOST`` overrides it, e.g. inside containers)."""
    return os.environ.get("HWNAS_HOST") or socket.gethostname() or "localhost"


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True)
class DeviceSpec:
    """A latency target: where and how a network runs. ``name`` is its identity."""

    backend: str = "torch-cpu"
    threads: int = 1
    batch: int = 1
    host: str = field(default_factory=host_name)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known backends: {list(BACKENDS)}")
        if int(self.threads) < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if int(self.batch) < 1:
            raise ValueError(f"batch must be >= 1, got {self.batch}")
        if not self.host or "/" in self.host:
            raise ValueError(f"host must be a non-empty name without '/', got {self.host!r}")
        object.__setattr__(self, "threads", int(self.threads))
        object.__setattr__(self, "batch", int(self.batch))

    @property
    def name(self) -> str:
        """``host/backend/t<threads>/b<batch>``, e.g. ``lab-pc/onnxruntime-cpu/t1/b1``."""
        return f"{self.host}/{self.backend}/t{self.threads}/b{self.batch}"

    @classmethod
    def parse(cls, name: str) -> DeviceSpec:
        """Inverse of :attr:`name`."""
        parts = name.split("/")
        if (
            len(parts) != 4
            or not parts[2].startswith("t")
            or not parts[3].startswith("b")
            or not parts[2][1:].isdigit()
            or not parts[3][1:].isdigit()
        ):
            raise ValueError(
                f"device name must look like 'host/backend/t<threads>/b<batch>', got {name!r}"
            )
        return cls(
            backend=parts[1], threads=int(parts[2][1:]), batch=int(parts[3][1:]), host=parts[0]
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}


@dataclass(frozen=True)
class LatencyMeasurement:
    """One network's latency on one device, with how it was measured."""

    device: str
    host: str
    backend: str
    threads: int
    batch: int
    input_shape: tuple[int, ...]
    warmup: int
    repeats: int
    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p10_ms: float
    p90_ms: float
    q25_ms: float
    q75_ms: float
    samples_ms: tuple[float, ...]
    torch_version: str | None
    onnxruntime_version: str | None
    python_version: str
    cpu: str
    gpu: str | None
    measured_at: str

    @property
    def iqr_ms(self) -> float:
        return self.q75_ms - self.q25_ms

    @property
    def relative_spread(self) -> float:
        """IQR / median: above ~0.1 the machine was busy, measure again."""
        return self.iqr_ms / self.median_ms if self.median_ms > 0 else float("inf")

    def to_dict(self, *, samples: bool = True) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = list(self.input_shape)
        out["iqr_ms"] = self.iqr_ms
        out["samples_ms"] = list(self.samples_ms) if samples else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyMeasurement:
        kwargs = {k: data[k] for k in cls.__dataclass_fields__}
        kwargs["input_shape"] = tuple(int(v) for v in data["input_shape"])
        kwargs["samples_ms"] = tuple(float(v) for v in (data.get("samples_ms") or ()))
        return cls(**kwargs)


def available_backends() -> list[str]:
    """Backends usable on this machine."""
    out = []
    with contextlib.suppress(ImportError):
        import torch

        out.append("torch-cpu")
        if torch.cuda.is_available():
            out.append("torch-cuda")
    with contextlib.suppress(ImportError):
        import onnxruntime  # noqa: F401

        out.append("onnxruntime-cpu")
    return sorted(out, key=BACKENDS.index)


def _versions() -> tuple[str | None, str | None]:
    torch_v = ort_v = None
    with contextlib.suppress(ImportError):
        import torch

        torch_v = str(torch.__version__)
    with contextlib.suppress(ImportError):
        import onnxruntime

        ort_v = str(onnxruntime.__version__)
    return torch_v, ort_v


def _time_calls(
    fn: Callable[[], Any], warmup: int, repeats: int, sync: Callable[[], None] | None = None
) -> np.ndarray:
    for _ in range(warmup):
        fn()
    if sync is not None:
        sync()
    samples = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync is not None:
            sync()
        samples[i] = time.perf_counter() - t0
    return samples * 1e3


def _record(
    spec: DeviceSpec,
    input_shape: Sequence[int],
    warmup: int,
    repeats: int,
    samples: np.ndarray,
    gpu: str | None = None,
) -> LatencyMeasurement:
    torch_v, ort_v = _versions()
    q10, q25, q50, q75, q90 = np.percentile(samples, [10, 25, 50, 75, 90])
    return LatencyMeasurement(
        device=spec.name,
        host=spec.host,
        backend=spec.backend,
        threads=spec.threads,
        batch=spec.batch,
        input_shape=tuple(int(v) for v in input_shape),
        warmup=warmup,
        repeats=repeats,
        median_ms=float(q50),
        mean_ms=float(samples.mean()),
        std_ms=float(samples.std()),
        min_ms=float(samples.min()),
        max_ms=float(samples.max()),
        p10_ms=float(q10),
        p90_ms=float(q90),
        q25_ms=float(q25),
        q75_ms=float(q75),
        samples_ms=tuple(float(v) for v in samples),
        torch_version=torch_v,
        onnxruntime_version=ort_v,
        python_version=platform.python_version(),
        cpu=cpu_model(),
        gpu=gpu,
        measured_at=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )


def _check_counts(warmup: int, repeats: int) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if repeats < 3:
        raise ValueError(f"repeats must be >= 3 (a median and a spread), got {repeats}")


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class _Runner:
    """One network ready to run on a device: ``call()`` runs one forward pass."""

    call: Callable[[], Any]
    shape: tuple[int, ...]
    sync: Callable[[], None] | None = None
    gpu: str | None = None


def _torch_runner(model: Any, input_shape: Sequence[int], spec: DeviceSpec) -> _Runner:
    import torch

    shape = tuple(int(v) for v in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be one sample's shape, e.g. (3, 32, 32), got {shape}")
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model = model.eval()
    full = (spec.batch, *shape)
    if spec.backend == "onnxruntime-cpu":
        # The exporter of deployed subnets (``supernets.export``): a latency
        # measured here is one of the graph that is deployed.
        from supernets.export import onnx_from_module

        with tempfile.TemporaryDirectory() as tmp:
            # the session holds the model in memory: the file can go
            return _onnx_runner(onnx_from_module(model, Path(tmp) / "m.onnx", shape), spec)
    if spec.backend == "torch-cuda":
        if not torch.cuda.is_available():
            raise ValueError("backend 'torch-cuda' needs a CUDA device; none is available here")
        model = model.to("cuda")
        x = torch.randn(full, device="cuda")
        return _Runner(lambda: model(x), full, torch.cuda.synchronize, torch.cuda.get_device_name())
    x = torch.randn(full)
    return _Runner(lambda: model(x), full)


def onnx_providers() -> list[str]:
    """The ONNX Runtime execution providers this machine's onnxruntime offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _check_provider(provider: str) -> str:
    available = onnx_providers()
    if provider not in available:
        raise ValueError(
            f"execution provider {provider!r} is not in this onnxruntime; available: {available}"
        )
    return provider


def _onnx_runner(
    path: str | Path, spec: DeviceSpec, provider: str = "CPUExecutionProvider"
) -> _Runner:
    import onnxruntime as ort

    if spec.backend != "onnxruntime-cpu":
        raise ValueError(f"an ONNX file runs on backend 'onnxruntime-cpu', not {spec.backend!r}")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no ONNX file at {str(path)!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = spec.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One provider, CPU as the fallback for operators it lacks (what a deployed
    # app with that provider runs).
    providers = [_check_provider(provider)]
    providers += [] if provider == "CPUExecutionProvider" else ["CPUExecutionProvider"]
    session = ort.InferenceSession(str(path), options, providers=providers)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"expected an ONNX model with one input, {path.name} has {len(inputs)}")
    dims = list(inputs[0].shape)
    if dims and not isinstance(dims[0], int):
        dims[0] = spec.batch
    elif dims and dims[0] != spec.batch:
        raise ValueError(
            f"{path.name} has a fixed batch size {dims[0]} but the device measures batch "
            f"{spec.batch}"
        )
    if not all(isinstance(v, int) and v > 0 for v in dims):
        raise ValueError(
            f"{path.name} has a dynamic input shape {inputs[0].shape}: need fixed sizes"
        )
    feed = {inputs[0].name: np.random.default_rng(0).standard_normal(dims).astype(np.float32)}
    return _Runner(lambda: session.run(None, feed), tuple(dims))


def _nobody(done: int, total: int, what: str) -> None:
    """No progress callback given."""


def _run(
    runners: Sequence[_Runner],
    spec: DeviceSpec,
    warmup: int,
    repeats: int,
    rounds: int,
    on_progress: ProgressCallback = _nobody,
    done_before: int = 0,
) -> list[LatencyMeasurement]:
    """Time every runner, interleaved over ``rounds`` (see :func:`measure_many`);
    ``on_progress`` hears one unit per runner per round, after ``done_before``
    units of preparation."""
    _check_counts(warmup, repeats)
    if not 1 <= rounds <= repeats:
        raise ValueError(f"rounds must be in [1, repeats={repeats}], got {rounds}")
    total = done_before + len(runners) * rounds
    per_round = [len(part) for part in np.array_split(np.arange(repeats), rounds)]
    samples: list[list[np.ndarray]] = [[] for _ in runners]
    context: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if spec.backend.startswith("torch"):
        import torch

        context = contextlib.ExitStack()
        context.enter_context(_torch_threads(spec.threads))
        context.enter_context(torch.inference_mode())
    done = done_before
    with context:
        for r, n in enumerate(per_round):
            for i, runner in enumerate(runners):
                on_progress(
                    done, total, f"timing network {i + 1}/{len(runners)}, round {r + 1}/{rounds}"
                )
                # after the first round, one untimed call refills the caches
                # that the other networks evicted
                samples[i].append(_time_calls(runner.call, warmup if r == 0 else 1, n, runner.sync))
                done += 1
    on_progress(total, total, f"timed {len(runners)} networks")
    return [
        _record(spec, runner.shape, warmup, repeats, np.concatenate(s), gpu=runner.gpu)
        for runner, s in zip(runners, samples, strict=True)
    ]


def measure_latency(
    model: Any,
    input_shape: Sequence[int],
    device: DeviceSpec | None = None,
    *,
    warmup: int = 10,
    repeats: int = 50,
) -> LatencyMeasurement:
    """Time ``model`` (a ``torch.nn.Module``) on ``device`` (default: this host,
    PyTorch eager on CPU, 1 thread, batch 1).

    ``input_shape`` is one sample's shape, e.g. ``(3, 32, 32)``; the input is a
    random ``(device.batch, *input_shape)`` float32 tensor. The module is put in
    eval mode (it is the caller's; for CUDA it is moved to the GPU).
    """
    return measure_many([(model, input_shape)], device, warmup=warmup, repeats=repeats)[0]


def measure_many(
    models: Sequence[tuple[Any, Sequence[int]]],
    device: DeviceSpec | None = None,
    *,
    warmup: int = 10,
    repeats: int = 50,
    rounds: int = 1,
    on_progress: ProgressCallback = _nobody,
) -> list[LatencyMeasurement]:
    """Time several ``(module, input_shape)`` pairs on ``device``, one record each.

    With ``rounds > 1`` the repeats are split into rounds and the networks are
    timed in turn within each round, so that a burst of load from another
    process spreads over all of them instead of inflating the few that were
    running at the time: what makes rankings measured on a shared machine
    trustworthy.

    ``on_progress`` (``supernets.progress``) hears one unit per network
    prepared (for ``onnxruntime-cpu``: exported to ONNX, the slow part) and
    one per network timed in each round: ``len(models) * (1 + rounds)`` in all.
    """
    spec = device if device is not None else DeviceSpec()
    n = len(models)
    total = n * (1 + rounds)
    runners = []
    for i, (m, shape) in enumerate(models):
        on_progress(i, total, f"preparing network {i + 1}/{n} for {spec.backend}")
        runners.append(_torch_runner(m, shape, spec))
    return _run(runners, spec, warmup, repeats, rounds, on_progress, done_before=n)


def measure_onnx(
    path: str | Path,
    device: DeviceSpec | None = None,
    *,
    warmup: int = 10,
    repeats: int = 50,
    provider: str = "CPUExecutionProvider",
) -> LatencyMeasurement:
    """Time an ONNX file with ONNX Runtime (``device.backend`` must be
    ``onnxruntime-cpu``; ``provider`` picks the execution provider: CPU, CUDA,
    CoreML, NNAPI, ... whatever :func:`onnx_providers` lists). A dynamic batch
    dimension is set to ``device.batch``; other dynamic dimensions are an error
    (latency needs a concrete shape)."""
    spec = device if device is not None else DeviceSpec(backend="onnxruntime-cpu")
    _check_counts(warmup, repeats)
    return _run([_onnx_runner(path, spec, provider)], spec, warmup, repeats, 1)[0]


_EPILOG = """\
examples:
  python measure.py ref_*.onnx --threads 4 > latencies.jsonl
  python measure.py ref_*.onnx --provider NNAPIExecutionProvider > latencies.jsonl
  python measure.py ref_*.onnx --threads 4 \\
      --submit http://hwnas-server:8000 --token $HWNAS_TOKEN --device phone
  python measure.py round1_*.onnx > round1.jsonl    # an active round's package

The output is one measurement record per file (JSON lines) naming the space and
reference set of the package (a round's records name each architecture by its
config); `hwnas device submit DEVICE --space SPACE -f
latencies.jsonl` and POST /v1/devices/DEVICE/records take it as it is.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """``python measure.py FILE.onnx [...]`` (or ``python -m
    predictors.latency.measure``): print one measurement record per file."""
    parser = argparse.ArgumentParser(
        prog="measure.py",
        description=(
            "Time the reference (or verification) ONNX models of an hwnas package with "
            "ONNX Runtime on this device and print one measurement record per model."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", nargs="*", type=Path, help="the package's .onnx files")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="batch size fed to the models' dynamic batch dimension (default: the "
        "manifest's, else 1)",
    )
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs (default 50)")
    parser.add_argument(
        "--provider",
        default="CPUExecutionProvider",
        help="ONNX Runtime execution provider (default CPUExecutionProvider; "
        "--list-providers shows this machine's)",
    )
    parser.add_argument(
        "--list-providers", action="store_true", help="print the available providers and exit"
    )
    parser.add_argument("--host", default=None, help="device host name (default: this machine's)")
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="the package's manifest.json (default: the one beside the first file)",
    )
    parser.add_argument("--job", default=None, help="search job the measurements verify")
    parser.add_argument(
        "--submit",
        metavar="URL",
        default=None,
        help="also post the records to an hwnas server (e.g. http://host:8000)",
    )
    parser.add_argument("--token", default=None, help="API token for --submit (write scope)")
    parser.add_argument("--device", default=None, help="device name on the server, for --submit")
    args = parser.parse_args(argv)
    try:
        if args.list_providers:
            print("\n".join(onnx_providers()))
            return 0
        if not args.files:
            raise ValueError("give the package's .onnx files (see --help)")
        if args.submit and not args.device:
            raise ValueError("--submit needs --device (the device's name on the server)")
        manifest_path = args.manifest or args.files[0].parent / "manifest.json"
        if not manifest_path.is_file():
            raise ValueError(
                f"no manifest at {manifest_path}: measurement records name their space and "
                "reference set from the package's manifest.json (--manifest PATH)"
            )
        manifest = json.loads(manifest_path.read_text())
        spec = DeviceSpec(
            backend="onnxruntime-cpu",
            threads=args.threads,
            batch=args.batch if args.batch is not None else int(manifest.get("batch", 1)),
            host=args.host or host_name(),
        )
        to_record = _record_maker(manifest, args.job)
        lines = []
        started = time.perf_counter()
        for i, f in enumerate(args.files, start=1):
            m = measure_onnx(
                f, spec, warmup=args.warmup, repeats=args.repeats, provider=args.provider
            )
            line = to_record(f.name, m, args.provider)
            lines.append(line)
            print(line, flush=True)
            # Progress for people on stderr; stdout stays the records alone.
            left = (time.perf_counter() - started) / i * (len(args.files) - i)
            print(
                f"measured {f.name} ({i}/{len(args.files)}): {m.median_ms:.3f} ms; "
                f"about {left:.0f} s left",
                file=sys.stderr,
                flush=True,
            )
        if args.submit:
            reply = _submit(args.submit, args.device, str(manifest["space"]), lines, args.token)
            print(f"submitted to {args.submit}: {reply}", file=sys.stderr)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _submit(url: str, device: str, space: str, lines: Sequence[str], token: str | None) -> str:
    """POST the records to ``url``'s ``/v1/devices/{device}/records`` (stdlib only,
    so that the standalone copy needs nothing more)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    target = (
        f"{url.rstrip('/')}/v1/devices/{urllib.parse.quote(device)}/records?"
        + urllib.parse.urlencode({"space": space})
    )
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        target, data="\n".join(lines).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode()
        raise ValueError(f"the server refused the records ({exc.code}): {detail}") from None
    except urllib.error.URLError as exc:
        raise ValueError(f"cannot reach {url}: {exc.reason}") from None


def _record_maker(
    manifest: dict[str, Any], job: str | None
) -> Callable[[str, LatencyMeasurement, str], str]:
    """``(file name, measurement) -> one JSONL measurement record`` for the
    files of a reference package (format: :mod:`predictors.latency.records`)."""
    try:
        from predictors.latency import records
    except ImportError:  # the standalone copy: records.py travels as hwnas_records.py
        import importlib

        records = importlib.import_module("hwnas_records")
    try:
        space, ref_set = str(manifest["space"]), str(manifest["reference_set"])
        entries = {str(r["file"]): r for r in manifest["references"]}
        # An active round's files are not references: its records name each
        # architecture by its config, under the round's number.
        round_no = manifest.get("round")
        names: dict[str, dict[str, Any]] = {
            f: {"ref": int(r["index"])} if round_no is None else {"arch": dict(r["arch"])}
            for f, r in entries.items()
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"manifest.json lacks a field ({exc}): export the package again") from None

    def make(name: str, m: LatencyMeasurement, provider: str = "CPUExecutionProvider") -> str:
        if name not in names:
            raise ValueError(f"{name} is not one of the manifest's files")
        details = {"file": name, "provider": provider, **m.to_dict(samples=False)}
        if round_no is not None:
            details["round"] = round_no
        record = records.MeasurementRecord(
            space=space,
            reference_set=ref_set,
            latency_ms=m.median_ms,
            job=job,
            details=details,
            **names[name],
        )
        return str(record.to_json())

    return make


if __name__ == "__main__":
    raise SystemExit(main())
