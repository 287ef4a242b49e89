"""Fit an Arm target's few latency constants to published device measurements, and score the fit.

``targets/measurements/<target>.csv`` lists latencies others measured on real devices (see its
README). Each row names a network of :mod:`edgekd.models.standard_nets`; the structural model
(:mod:`edgekd.bench.arm_cost`) predicts it at the row's threads, precision and clock. The fit is a
least-squares on ``log(predicted / measured)`` over a handful of physical constants, each a scale on
the profile's figure with a weak prior pulling it to 1 (so constants the rows cannot pin stay put):

* one compute scale per precision (the GEMM-class kernel efficiencies) and one depthwise scale per
  precision present in the rows,
* the memory bandwidth scale and the per-operator overhead scale,
* the thread-scaling constant, only when the rows hold more than one thread count.

Nothing is fitted per model. The error every prediction carries is **leave-one-source-out**: each
source (URL) is predicted by a fit to the other sources only.

Example:
    >>> rows = load_measurements(Path("targets/measurements/cortex-a76.csv"))  # doctest: +SKIP
    >>> fit = fit_profile(profile, rows, trace_rows(rows))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekd.bench.arm_cost import ArmCost
from edgekd.bench.latency_trace import OpCost, trace_ops
from edgekd.config.target_profile import LatencyFit, PredictorError, TargetProfile
from edgekd.config.targets import TARGETS_DIR
from edgekd.core.errors import ConfigError, InputError

log = logging.getLogger(__name__)

COLUMNS = (
    "source_title",
    "url",
    "device",
    "core",
    "clock_ghz",
    "runtime",
    "runtime_version",
    "delegate",
    "threads",
    "precision",
    "model",
    "input_size",
    "ms",
)
PRIOR_WEIGHT = 0.2  # residual weight of log(scale): a scale moves only where rows pull it (0.15-ish log noise)
# the per-operator overhead is the least known constant (thread-pool hand-off differs by OS and runtime)
PRIOR_WEIGHTS = {"overhead": 0.05}


@dataclass(frozen=True)
class Measurement:
    """One published device measurement (a row of ``targets/measurements/<target>.csv``)."""

    source: str
    url: str
    device: str
    clock_ghz: float
    runtime: str
    threads: int
    precision: str
    model: str
    input_size: int
    ms: float


def load_measurements(path: Path) -> list[Measurement]:
    """The rows of ``path``; a missing column or a bad value is a one-line :class:`ConfigError`."""
    from edgekd.models.standard_nets import STANDARD_NETS

    if not path.is_file():
        raise InputError(
            f"no measurements file {path}; add published figures there (see targets/measurements/README.md)"
        )
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ConfigError(f"{path}: missing columns {sorted(missing)}")
        rows = []
        for i, r in enumerate(reader, start=2):
            try:
                m = Measurement(
                    r["source_title"],
                    r["url"],
                    r["device"],
                    float(r["clock_ghz"]),
                    r["runtime"],
                    int(r["threads"]),
                    r["precision"],
                    r["model"],
                    int(r["input_size"]),
                    float(r["ms"]),
                )
            except ValueError as exc:
                raise ConfigError(f"{path} line {i}: {exc}") from exc
            if m.precision not in ("fp32", "int8") or m.model not in STANDARD_NETS or m.ms <= 0 or not m.url:
                raise ConfigError(
                    f"{path} line {i}: needs precision fp32|int8, a url, ms > 0 and a model of "
                    f"edgekd.models.standard_nets (got {m.precision!r}, {m.model!r}, {m.ms})"
                )
            rows.append(m)
    if not rows:
        raise ConfigError(f"{path} holds no measurements")
    return rows


def trace_rows(rows: list[Measurement]) -> dict[tuple[str, int], list[OpCost]]:
    """Costed operators of every (network, input size) the rows name, traced once each."""
    from edgekd.models.standard_nets import build

    out: dict[tuple[str, int], list[OpCost]] = {}
    for r in rows:
        key = (r.model, r.input_size)
        if key not in out:
            out[key] = trace_ops(build(r.model), (1, 3, r.input_size, r.input_size))
    return out


def predict_rows(profile: TargetProfile, rows: list[Measurement], ops: dict) -> list[float]:
    """Predicted milliseconds for each row with the profile's (fitted) constants."""
    cost = ArmCost(profile)
    return [cost.predict_ms(ops[(r.model, r.input_size)], r.precision, r.threads, r.clock_ghz) for r in rows]  # type: ignore[arg-type]


class _Space:
    """The fitted constants as a vector of logs (thread scaling as a logit)."""

    def __init__(self, profile: TargetProfile, rows: list[Measurement]) -> None:
        precisions = sorted({r.precision for r in rows})
        self.names = [f"compute.{p}" for p in precisions] + [f"depthwise.{p}" for p in precisions]
        self.names += ["bandwidth", "overhead"]
        self.fit_threads = len({min(r.threads, profile.cpu.cores) for r in rows}) > 1
        if self.fit_threads:
            self.names.append("threads")
        self.base_threads = profile.compute.thread_scaling

    def fit_of(self, x: np.ndarray, n: int, source: str, error: PredictorError | None = None) -> LatencyFit:
        v = dict(zip(self.names, x, strict=True))
        threads = None
        if self.fit_threads:
            threads = min(1.0, max(0.05, 1 / (1 + math.exp(-v["threads"]))))
        return LatencyFit(
            fitted=dt.date.today().isoformat(),
            source=source,
            n=n,
            compute_scale={k.split(".")[1]: math.exp(val) for k, val in v.items() if k.startswith("compute.")},
            depthwise_scale={k.split(".")[1]: math.exp(val) for k, val in v.items() if k.startswith("depthwise.")},
            bandwidth_scale=math.exp(v["bandwidth"]),
            overhead_scale=math.exp(v["overhead"]),
            thread_scaling=threads,
            error=error or PredictorError(method="none", n=0, sources=0),
        )

    def start(self) -> np.ndarray:
        x = np.zeros(len(self.names))
        if self.fit_threads:
            p = min(0.99, max(0.01, self.base_threads))
            x[self.names.index("threads")] = math.log(p / (1 - p))
        return x


def fit_profile(profile: TargetProfile, rows: list[Measurement], ops: dict, source: str = "") -> LatencyFit:
    """The constants that best predict ``rows`` (robust least squares on log-ratio, weak prior to 1)."""
    from scipy.optimize import least_squares

    base = profile.model_copy(update={"latency_fit": None})
    space = _Space(base, rows)
    measured = np.log([r.ms for r in rows])
    x0 = space.start()
    prior = np.array([PRIOR_WEIGHTS.get(n.split(".")[0], PRIOR_WEIGHT) for n in space.names])

    def residuals(x: np.ndarray) -> np.ndarray:
        trial = base.model_copy(update={"latency_fit": space.fit_of(x, len(rows), source)})
        pred = np.log(predict_rows(trial, rows, ops))
        return np.concatenate([pred - measured, prior * (x - x0)])

    result = least_squares(residuals, x0, loss="soft_l1", f_scale=0.2, x_scale=1.0, max_nfev=200)
    return space.fit_of(result.x, len(rows), source)


def summarize(ratios: list[float], method: str, sources: int) -> PredictorError:
    """Median, quartiles and shares within ±10 % / ±25 % of predicted / measured."""
    if not ratios:
        return PredictorError(method=method, n=0, sources=sources)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return PredictorError(
        method=method,
        n=len(ratios),
        sources=sources,
        median_ratio=round(statistics.median(ratios), 4),
        p25_ratio=round(q[0], 4),
        p75_ratio=round(q[2], 4),
        within_10pct=round(sum(abs(r - 1) <= 0.10 for r in ratios) / len(ratios), 4),
        within_25pct=round(sum(abs(r - 1) <= 0.25 for r in ratios) / len(ratios), 4),
    )


def leave_one_source_out(profile: TargetProfile, rows: list[Measurement], ops: dict) -> list[tuple[Measurement, float]]:
    """(row, predicted ms) with each source's rows predicted by a fit to the other sources only.

    With a single source there is nothing to hold out: its rows are predicted in-sample (the caller
    reports the method so).
    """
    urls = sorted({r.url for r in rows})
    if len(urls) < 2:
        fit = fit_profile(profile, rows, ops)
        trial = profile.model_copy(update={"latency_fit": fit})
        return list(zip(rows, predict_rows(trial, rows, ops), strict=True))
    out: list[tuple[Measurement, float]] = []
    for url in urls:
        held, train = [r for r in rows if r.url == url], [r for r in rows if r.url != url]
        fit = fit_profile(profile, train, ops)
        trial = profile.model_copy(update={"latency_fit": fit})
        out += list(zip(held, predict_rows(trial, held, ops), strict=True))
    return out


def calibrate_from_measurements(
    profile: TargetProfile, path: Path
) -> tuple[LatencyFit, list[tuple[Measurement, float]]]:
    """Fit on every row of ``path``; the error attached is leave-one-source-out (in-sample if one source)."""
    if profile.arch != "aarch64":
        raise InputError(
            f"--from-measurements fits the Arm (TFLite/XNNPACK) predictor; {profile.name} is "
            f"{profile.arch}: calibrate it on the machine with "
            f"`edgekd calibrate-latency --target {profile.name}`"
        )
    rows = load_measurements(path)
    ops = trace_rows(rows)
    scored = leave_one_source_out(profile, rows, ops)
    sources = len({r.url for r in rows})
    method = "leave-one-source-out" if sources > 1 else "in-sample (one source)"
    error = summarize([p / r.ms for r, p in scored], method, sources)
    try:
        source = path.resolve().relative_to(TARGETS_DIR.parent).as_posix()
    except ValueError:
        source = path.as_posix()
    fit = fit_profile(profile, rows, ops, source=source)
    return fit.model_copy(update={"error": error}), scored


FIT_HEADER = "# Written by `edgekd calibrate-latency --from-measurements`: do not edit by hand; re-run it instead.\n"


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def write_fit(path: Path, fit: LatencyFit) -> None:
    """Replace (or append) the ``latency_fit`` block at the end of the profile YAML, keeping the rest as written."""
    import yaml

    from edgekd.core.atomic import atomic_write_text

    text = path.read_text()
    lines = text.splitlines(keepends=True)
    keep: list[str] = []
    skipping = False
    for line in lines:
        if line == FIT_HEADER or line.startswith("latency_fit:"):
            skipping = True
            continue
        if skipping and line.strip() and not line.startswith((" ", "#")):
            skipping = False
        if not skipping:
            keep.append(line)
    body = "".join(keep).rstrip("\n") + "\n"
    block = yaml.safe_dump({"latency_fit": _rounded(fit.model_dump(exclude_none=True))}, sort_keys=False)
    atomic_write_text(path, body + FIT_HEADER + block)
