#!/usr/bin/env python3
"""Benchmark one exported model with its own runtime and print ONE JSON line.

Self-contained on purpose (standard library + numpy + the runtime the model needs): runners run it
in a fresh process here or push it to a board. Runtimes by file: ``.onnx`` → onnxruntime, ``.xml``
(or a folder holding one) → OpenVINO, ``.tflite`` → ai_edge_litert (else tflite_runtime), ``.pte`` →
ExecuTorch's Python runtime (``executorch.runtime``, which imports torch: its RSS counts in the figures).

Inputs are random normal unless ``--input`` gives real data (one sample or a stack; NCHW, or the
model's layout). Float data for int8/uint8 inputs is quantised with the input's scale and zero point
from the runtime (TFLite) or from an optional ``MODEL.sidecar.json`` (or ``<stem>.sidecar.json``)
describing the first input and output, all keys optional (``layout: NHWC`` transposes NCHW data)::

    {"layout": "NHWC", "input_shape": [1, 28, 28, 1], "precision": "int8",
     "input_scale": 0.0039, "input_zero_point": -128, "output_scale": 0.1, "output_zero_point": 5}

Prints one JSON line on stdout (``samples_ms``, ``init_ms``, ``peak_rss_bytes``, ``runtime``, ...);
whatever runtimes print goes to stderr. Exit codes: 0 ok, 2 unusable model or input, 3 runtime
failure; the last stderr line then says why.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
import traceback
from importlib import metadata
from pathlib import Path

# Keep numpy's BLAS from starting a thread pool beside the runtime's; this must precede its import.
for _var, _value in (("OPENBLAS_NUM_THREADS", "1"), ("MKL_NUM_THREADS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")):
    os.environ.setdefault(_var, _value)

try:
    import numpy as np
except ImportError:  # reported with the runtime that is also missing, see missing_packages()
    np = None

EXIT_INPUT, EXIT_RUNTIME = 2, 3
ERROR_PREFIX = "bench_script: error: "
# Model suffix -> (import names tried in order, pip package to install).
RUNTIMES = {
    ".onnx": (("onnxruntime",), "onnxruntime"),
    ".xml": (("openvino",), "openvino"),
    ".tflite": (("ai_edge_litert", "tflite_runtime"), "ai-edge-litert"),
    ".pte": (("executorch",), "executorch"),
}
# ExecuTorch ScalarType codes -> numpy dtype names (the ones image models use).
_ET_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64"}
_ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64"}  # others: tensor(<numpy name>)


class BenchError(Exception):
    """An expected failure: the message becomes the last stderr line, ``code`` the exit code."""

    def __init__(self, message: str, code: int = EXIT_INPUT) -> None:
        super().__init__(message)
        self.code = code


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}".rstrip(": ")


def _version(dist: str, module: object) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown"))


def _rss_bytes() -> int:
    """Peak RSS of this process: VmHWM, which exec resets (Linux ru_maxrss keeps the parent's peak
    from before the fork, e.g. a whole pytest process); ru_maxrss where there is no /proc."""
    status = Path("/proc/self/status")
    hwm = [ln.split()[1] for ln in status.read_text().splitlines() if ln.startswith("VmHWM:")]
    if hwm:
        return int(hwm[0]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def _spec(name: str, dims, dtype, quant: tuple | None = None) -> tuple:
    """An input as (name, dims with None where dynamic, numpy dtype, (scale, zero_point) or None)."""
    dims = [int(d) if isinstance(d, int | np.integer) and d >= 0 else None for d in dims]
    return name, dims, np.dtype(dtype), quant


def _tfl_quant(detail: dict) -> tuple | None:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return (scale, zero_point) if scale else None


# Backends: __init__ loads the model; inputs() lists input specs; compile(shapes) fixes the input
# shapes; run(feeds) returns the outputs; optional: output_quant() and info() (extra result facts).
class OrtBackend:
    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        self.name, self.version = "onnxruntime", _version("onnxruntime", ort)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.threads = self.session.get_session_options().intra_op_num_threads

    def inputs(self) -> list:
        return [_spec(i.name, i.shape, _ORT_TYPES.get(i.type, i.type[7:-1])) for i in self.session.get_inputs()]

    def compile(self, shapes: dict[str, list[int]]) -> None:
        for name, dims, _, _ in self.inputs():
            if any(d is not None and d != s for d, s in zip(dims, shapes[name], strict=False)):
                raise BenchError(f"input '{name}' is fixed at {dims}; cannot run it as {shapes[name]}")

    def run(self, feeds: dict) -> list:
        return self.session.run(None, feeds)


class OvBackend:
    def __init__(self, path: Path, threads: int) -> None:
        import openvino as ov

        self.ov, self.threads = ov, threads
        self.name, self.version = "openvino", _version("openvino", ov)
        self.core = ov.Core()
        self.model = self.core.read_model(str(path))

    def inputs(self) -> list:
        dims = [[d.get_length() if d.is_static else -1 for d in p.get_partial_shape()] for p in self.model.inputs]
        return [
            _spec(p.get_any_name(), d, p.get_element_type().to_dtype())
            for p, d in zip(self.model.inputs, dims, strict=True)
        ]

    def compile(self, shapes: dict[str, list[int]]) -> None:
        if any(dims != shapes[name] for name, dims, _, _ in self.inputs()):
            self.model.reshape({n: self.ov.PartialShape(s) for n, s in shapes.items()})
        config = {"INFERENCE_NUM_THREADS": self.threads, "PERFORMANCE_HINT": "LATENCY"}
        # CPUs with bf16 (AVX512-BF16, AMX) otherwise run fp32 models in bf16 by default.
        config["INFERENCE_PRECISION_HINT"] = "f32"
        self.compiled = self.core.compile_model(self.model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))

    def run(self, feeds: dict) -> list:
        return list(self.request.infer(feeds).values())

    def info(self) -> dict:
        return {"inference_precision": self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()}


class LiteRtBackend:
    def __init__(self, path: Path, threads: int) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # older boards: the TFLite-only runtime (no XNNPACK for int8)
            from tflite_runtime.interpreter import Interpreter
        self.name = "ai-edge-litert" if Interpreter.__module__.startswith("ai_edge") else "tflite-runtime"
        self.version = _version(self.name, sys.modules[Interpreter.__module__])
        # num_threads always explicit: None would mean a single thread.
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.threads = threads

    def inputs(self) -> list:
        return [
            _spec(d["name"], list(d.get("shape_signature", d["shape"])), d["dtype"], _tfl_quant(d))
            for d in self.interpreter.get_input_details()
        ]

    def output_quant(self) -> tuple | None:
        return _tfl_quant(self.interpreter.get_output_details()[0])

    def compile(self, shapes: dict[str, list[int]]) -> None:
        for d in self.interpreter.get_input_details():
            if list(d["shape"]) != shapes[d["name"]]:
                self.interpreter.resize_tensor_input(d["index"], shapes[d["name"]], strict=False)
        self.interpreter.allocate_tensors()
        self.in_index = {d["name"]: d["index"] for d in self.interpreter.get_input_details()}
        self.out_index = [d["index"] for d in self.interpreter.get_output_details()]

    def run(self, feeds: dict) -> list:
        for name, array in feeds.items():
            self.interpreter.set_tensor(self.in_index[name], array)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.out_index]


class EtBackend:
    """ExecuTorch program (``.pte``); delegates such as XNNPACK use the process-wide thread pool."""

    def __init__(self, path: Path, threads: int) -> None:
        import torch  # the pybindings link against libtorch

        try:  # the compiled runtime alone: portable_lib also imports executorch.exir (~4x the CPU time)
            from executorch.extension.pybindings import _C as et
        except ImportError:
            from executorch.extension.pybindings import portable_lib as et
        self.torch = torch
        self.name, self.version = "executorch", _version("executorch", sys.modules["executorch"])
        if et._threadpool_get_thread_count() != threads:
            et._unsafe_reset_threadpool(threads)
        self.threads = et._threadpool_get_thread_count()
        self.module = et._load_for_executorch(str(path))
        self.meta = self.module.method_meta("forward")

    def inputs(self) -> list:
        specs = []
        for i in range(self.meta.num_inputs()):
            t = self.meta.input_tensor_meta(i)
            if t.dtype() not in _ET_TYPES:
                raise BenchError(f"input {i} has ExecuTorch dtype code {t.dtype()}, which this script cannot feed")
            specs.append(_spec(f"input{i}", list(t.sizes()), _ET_TYPES[t.dtype()]))
        return specs

    def compile(self, shapes: dict[str, list[int]]) -> None:
        for name, dims, _, _ in self.inputs():
            if list(dims) != shapes[name]:
                raise BenchError(f"input '{name}' is fixed at {dims}; cannot run it as {shapes[name]}")
        self.order = [name for name, _, _, _ in self.inputs()]

    def run(self, feeds: dict) -> list:
        outs = self.module.run_method("forward", [self.torch.from_numpy(feeds[name]) for name in self.order])
        return [o.numpy() for o in outs]


def missing_packages(model: str) -> list[str]:
    """pip packages this interpreter lacks to benchmark ``model`` (numpy and the model's runtime)."""
    from importlib.util import find_spec

    path = Path(model)
    suffix = next(iter(path.glob("*.xml")), path).suffix.lower() if path.is_dir() else path.suffix.lower()
    missing = [] if np is not None else ["numpy"]
    modules, package = RUNTIMES.get(suffix, ((), ""))
    if modules and not any(find_spec(m) is not None for m in modules):
        missing.append(package)
    return missing


def missing_message(missing: list[str]) -> str:
    """One line naming what this interpreter lacks and how to install it."""
    py = sys.executable or "python3"
    return f"{py} lacks {', '.join(missing)}; install with `{py} -m pip install {' '.join(missing)}`"


def resolve_model(path: Path) -> tuple[Path, type]:
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if len(xmls) != 1:
            raise BenchError(f"{path}: expected one OpenVINO .xml in the folder, found {len(xmls)}")
        path = xmls[0]
    if not path.is_file():
        raise BenchError(f"model not found: {path}")
    kinds = {".onnx": OrtBackend, ".xml": OvBackend, ".tflite": LiteRtBackend, ".pte": EtBackend}
    if path.suffix.lower() not in kinds:
        raise BenchError(f"{path.name}: unknown model kind (expected .onnx, .xml, .tflite or .pte)")
    return path, kinds[path.suffix.lower()]


def read_sidecar(path: Path) -> dict:
    for candidate in (path.with_name(path.name + ".sidecar.json"), path.with_suffix(".sidecar.json")):
        if candidate.is_file():
            if candidate.stat().st_size > 1 << 20:
                raise BenchError(f"{candidate.name}: sidecar is over 1 MiB; re-export the model")
            try:
                data = json.loads(candidate.read_text())
            except (OSError, ValueError, RecursionError) as exc:
                raise BenchError(f"{candidate.name}: unreadable sidecar ({_first_line(exc)})") from exc
            if not isinstance(data, dict):
                raise BenchError(f"{candidate.name}: sidecar must be a JSON object")
            shape = data.get("input_shape")
            if shape is not None and (not isinstance(shape, list) or not all(type(d) is int and d > 0 for d in shape)):
                raise BenchError(f"{candidate.name}: input_shape must be a list of positive integers")
            return data
    return {}


def quantise(x, dtype, quant: tuple | None):
    """Float data → the integer input dtype with real = (q - zero_point) * scale."""
    if quant is None:
        raise BenchError(f"model input is {np.dtype(dtype).name} but no scale/zero point is known")
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) / np.float32(quant[0])) + quant[1]
    return np.clip(q, info.min, info.max).astype(dtype)


def fit_layout(arr, shape: list[int], layout: str | None):
    """Bring real inputs (one sample or a stack; NCHW, or already the model's layout) to ``shape``."""
    if arr.ndim == len(shape) - 1:
        arr = arr[None]
    nhwc = [*arr.shape[2:], arr.shape[1]] if arr.ndim == 4 else None
    if len(shape) == 4 and (layout == "NHWC" or (list(arr.shape[1:]) != shape[1:] and nhwc == shape[1:])):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.ndim != len(shape) or list(arr.shape[1:]) != shape[1:]:
        raise BenchError(f"--input samples have shape {list(arr.shape[1:])}, model wants {shape[1:]}")
    return arr


def make_feeds(args, inputs: list, shapes: dict, sidecar: dict) -> list[dict]:
    """One feed dict per batch: the batches of ``--input`` data, or one random batch."""
    rng = np.random.default_rng(args.seed)
    if args.input is not None:
        if len(inputs) != 1:
            raise BenchError(f"--input needs a single-input model; this one has {len(inputs)} inputs")
        name, _, dtype, quant = inputs[0]
        try:
            arr = np.load(args.input, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BenchError(f"cannot read --input {args.input}: {_first_line(exc)}") from exc
        arr = fit_layout(arr, shapes[name], sidecar.get("layout"))
        if len(arr) < args.batch:
            arr = np.concatenate([arr] * -(-args.batch // len(arr)))
        if np.dtype(dtype).kind in "iu" and arr.dtype.kind == "f":
            arr = quantise(arr, dtype, quant)
        arr = arr.astype(dtype, copy=False)
        n = len(arr) - len(arr) % args.batch
        return [{name: np.ascontiguousarray(arr[i : i + args.batch])} for i in range(0, n, args.batch)]
    feeds = {}
    for name, _, dtype, quant in inputs:
        shape, dt = shapes[name], np.dtype(dtype)
        if dt.kind in "iu" and quant is None:  # unquantised integers (ids, int8 without scale)
            feeds[name] = rng.integers(max(np.iinfo(dt).min, -128), 128, shape).astype(dt)
        else:
            x = rng.standard_normal(shape)
            feeds[name] = quantise(x, dt, quant) if dt.kind in "iu" else x.astype(dt)
    return [feeds]


def concrete_shapes(inputs: list, batch: int, sidecar: dict) -> dict[str, list[int]]:
    """Input shapes with ``batch`` and sidecar facts applied (also fills in the first input's quant)."""
    name, dims, dtype, quant = inputs[0]
    if quant is None and "input_scale" in sidecar:
        inputs[0] = (name, dims, dtype, (sidecar["input_scale"], sidecar.get("input_zero_point", 0)))
    shapes = {}
    for k, (name, dims, _, _) in enumerate(inputs):
        dims = list(sidecar["input_shape"]) if k == 0 and sidecar.get("input_shape") else list(dims)
        if dims:
            dims[0] = batch
        if any(d is None for d in dims):
            raise BenchError(f"input '{name}' has dynamic dims {dims}; give input_shape in a sidecar")
        shapes[name] = dims
    return shapes


POWERCAP = Path(os.environ.get("EDGEKD_POWERCAP_ROOT", "/sys/class/powercap"))


def _rapl_packages() -> list[Path]:
    """RAPL package domains (``intel-rapl:N``, not their ``:N:M`` sub-domains) whose counter is readable."""
    found = []
    for d in sorted(POWERCAP.glob("intel-rapl:*")) if POWERCAP.is_dir() else []:
        if d.name.count(":") == 1 and os.access(d / "energy_uj", os.R_OK):
            found.append(d)
    return found


def _rapl_read(domains: list[Path]) -> list[int]:
    return [int((d / "energy_uj").read_text()) for d in domains]


def _rapl_delta_uj(domains: list[Path], before: list[int], after: list[int]) -> float:
    """Energy between two readings, summing packages and undoing one counter wrap each."""
    total = 0
    for i, d in enumerate(domains):  # no zip(strict=): boards may run an older python
        delta = after[i] - before[i]
        if delta < 0:
            delta += int((d / "max_energy_range_uj").read_text())
        total += delta
    return float(total)


HWMON = Path(os.environ.get("EDGEKD_HWMON_ROOT", "/sys/class/hwmon"))
BATTERY = Path(os.environ.get("EDGEKD_BATTERY_ROOT", "/sys/class/power_supply/battery"))
PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([-+\d.eE]+)[AV]\s*$")
"""One rail reading of ``vcgencmd pmic_read_adc`` (Raspberry Pi 5), e.g. ``VDD_CORE_A current(7)=2.01A``."""


def pmic_rails(text: str) -> dict:
    """``vcgencmd pmic_read_adc`` output as ``{rail: {"A": amps, "V": volts}}``."""
    rails: dict = {}
    for line in text.splitlines():
        m = PMIC_LINE.match(line)
        if m:
            rails.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
    return rails


def _pmic_watts() -> float:
    out = subprocess.run(["vcgencmd", "pmic_read_adc"], capture_output=True, text=True, timeout=5).stdout
    return sum(r["V"] * r["A"] for r in pmic_rails(out).values() if "V" in r and "A" in r)


def _battery_watts() -> float:
    current_ua = int((BATTERY / "current_now").read_text())
    voltage_uv = int((BATTERY / "voltage_now").read_text())
    return abs(current_ua) / 1e6 * voltage_uv / 1e6


def power_source():
    """The board's power sensor as ``(method, read_watts)``, or None: hwmon power, Pi 5 PMIC, Android battery.

    A charging phone is refused: its battery current is the charger's, not the load's.
    """
    for f in sorted(HWMON.glob("hwmon*/power*_input")) if HWMON.is_dir() else []:
        if os.access(f, os.R_OK):
            label = f.with_name(f.name.replace("_input", "_label"))
            name = label.read_text().strip() if label.is_file() else f"{f.parent.name}/{f.name}"
            return f"hwmon power sampling ({name})", lambda f=f: int(f.read_text()) / 1e6
    if shutil.which("vcgencmd"):
        try:
            if _pmic_watts() > 0:
                return "pi5-pmic sampling (vcgencmd pmic_read_adc, sum of rails)", _pmic_watts
        except (OSError, subprocess.SubprocessError):
            pass
    status = BATTERY / "status"
    charging = status.is_file() and status.read_text().strip() in {"Charging", "Full"}
    if (BATTERY / "current_now").is_file() and (BATTERY / "voltage_now").is_file() and not charging:
        return "battery current x voltage sampling", _battery_watts
    return None


class PowerSampler:
    """Reads a power sensor every ``period_s`` in a thread; energy = mean power x loop wall time."""

    def __init__(self, read_watts, period_s: float = 0.02) -> None:
        self.read, self.period_s, self.samples, self.failures = read_watts, period_s, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while True:
            try:
                self.samples.append(float(self.read()))
            except (OSError, ValueError, subprocess.SubprocessError):
                self.failures += 1  # a missed reading: the mean is over the readings that worked
            if self._stop.wait(self.period_s):
                return

    def start(self) -> PowerSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> PowerSampler:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def energy_uj(self, wall_s: float):
        return None if not self.samples else sum(self.samples) / len(self.samples) * wall_s * 1e6


def benchmark(args: argparse.Namespace) -> dict:
    path, backend_cls = resolve_model(Path(args.model))
    sidecar = read_sidecar(path)
    baseline_rss = _rss_bytes()
    t0 = time.perf_counter_ns()
    try:
        backend = backend_cls(path, args.threads)
        inputs = backend.inputs()
        shapes = concrete_shapes(inputs, args.batch, sidecar)
        backend.compile(shapes)
    except ImportError as exc:
        missing = missing_packages(str(path)) or [RUNTIMES[path.suffix.lower()][1]]
        raise BenchError(f"{missing_message(missing)} ({_first_line(exc)})", EXIT_RUNTIME) from exc
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"cannot load {path.name}: {_first_line(exc)}") from exc
    init_ms = (time.perf_counter_ns() - t0) / 1e6

    feeds = make_feeds(args, inputs, shapes, sidecar)
    t0 = time.perf_counter_ns()
    backend.run(feeds[0])
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    for i in range(max(args.warmup - 1, 0)):
        backend.run(feeds[i % len(feeds)])

    samples: list[float] = []
    rapl = _rapl_packages()
    energy_before = _rapl_read(rapl) if rapl else None
    source = None if rapl else power_source()
    sampler = PowerSampler(source[1]).start() if source else None
    gc.disable()
    start = time.perf_counter_ns()
    deadline = start + int(args.min_seconds * 1e9)
    while len(samples) < args.runs or time.perf_counter_ns() < deadline:
        feed = feeds[len(samples) % len(feeds)]
        t0 = time.perf_counter_ns()
        backend.run(feed)
        samples.append((time.perf_counter_ns() - t0) / 1e6)
    wall_s = (time.perf_counter_ns() - start) / 1e9
    energy_after = _rapl_read(rapl) if rapl else None
    if sampler is not None:
        sampler.stop()
    gc.enable()

    result = {
        "samples_ms": samples,
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "peak_rss_bytes": _rss_bytes(),
        "rss_before_load_bytes": baseline_rss,
        "runtime": f"{backend.name} {backend.version}",
        "threads": args.threads,
        "precision": sidecar.get("precision") or ("int8" if np.dtype(inputs[0][2]) in (np.int8, np.uint8) else None),
        "wall_s": wall_s,
        "input_source": "npy" if args.input else "random",
        "input_shapes": shapes,
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "os_threads": len(os.listdir("/proc/self/task")) if Path("/proc/self/task").is_dir() else None,
        "machine": platform.machine(),
        "emulated": _emulated_cpu(),
        "runtime_threads": backend.threads,
        **(backend.info() if hasattr(backend, "info") else {}),
    }
    if energy_before is not None and energy_after is not None:
        # whole-package energy over the timed loop: includes anything else the package ran meanwhile
        result["energy_uj"] = _rapl_delta_uj(rapl, energy_before, energy_after)
        result["energy_method"] = "rapl (package domains, whole timed loop)"
    elif sampler is not None and (sampled_uj := sampler.energy_uj(wall_s)) is not None:
        # the whole board's power over the timed loop (includes idle and anything else running)
        result["energy_uj"] = sampled_uj
        result["energy_method"] = f"{source[0]}, {len(sampler.samples)} samples over the timed loop"
    if args.save_outputs:
        out = np.concatenate([backend.run(feed)[0] for feed in feeds])
        quant = backend.output_quant() if hasattr(backend, "output_quant") else None
        if quant is None and "output_scale" in sidecar:
            quant = (sidecar["output_scale"], sidecar.get("output_zero_point", 0))
        if quant is not None and np.issubdtype(out.dtype, np.integer):
            out = (out.astype(np.float32) - quant[1]) * np.float32(quant[0])
            result["outputs_dequantized"] = True
        np.save(args.save_outputs, out)
        result["outputs_path"] = str(args.save_outputs)
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help=".onnx, .tflite, .pte, OpenVINO .xml or a folder holding one .xml")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=0.0)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--pin", default=None, help="CPU ids, e.g. 0 or 0,1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--input", default=None, help=".npy of real inputs")
    p.add_argument("--save-outputs", default=None, help="write the first output for the inputs here")
    args = p.parse_args(argv)
    if args.threads < 1 or args.runs < 1 or args.batch < 1 or args.warmup < 0 or args.min_seconds < 0:
        p.error("threads, runs and batch must be >= 1; warmup and min-seconds >= 0")
    return args


def pin(text: str) -> None:
    """Pin this process to CPUs given as ``0,1``."""
    try:
        os.sched_setaffinity(0, {int(cpu) for cpu in text.split(",")})
    except (ValueError, OSError, AttributeError) as exc:
        raise BenchError(f"cannot pin to CPUs '{text}': {_first_line(exc)}") from exc


def _emulated_cpu() -> str | None:
    """The CPU an edgekd Arm emulator pretends to be, when this script runs inside one; None on real hardware."""
    try:
        return str(json.loads(Path("/edgekd-emulator.json").read_text())["cpu"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = missing_packages(args.model)
    if missing:  # before anything imports them: a board without its runtime fails in one clear line
        print(ERROR_PREFIX + missing_message(missing), file=sys.stderr)
        return EXIT_RUNTIME
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)  # whatever the runtimes print goes to stderr; only our JSON line reaches stdout
    try:
        if args.pin:
            pin(args.pin)
        result = benchmark(args)
    except BenchError as exc:
        print(ERROR_PREFIX + str(exc), file=sys.stderr)
        return exc.code
    except Exception as exc:
        traceback.print_exc()
        print(ERROR_PREFIX + _first_line(exc), file=sys.stderr)
        return EXIT_RUNTIME
    finally:
        sys.stdout.flush()
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
