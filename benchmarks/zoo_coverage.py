"""Every zoo architecture through prune -> student file -> reload -> cost -> export x precision -> parity.

For each entry of the zoo (the project's students and the field's structures in ``zoo_field``), with
random weights (seed 0): prune at a uniform ratio, record what was left whole and why, save the
student file and rebuild it from the factory named here (outputs compared exactly), cross-check
the latency trace's MACs against PyTorch's FlopCounterMode, export in every registered format at
fp32 and int8 (37 calibration images: not a multiple of any batch) and compare each runtime's
logits with PyTorch on the bundled test images. int8 agreement on random weights is reported, not
judged (near-flat logits); fp32 parity is the gate.

Usage:
    .venv/bin/python benchmarks/zoo_coverage.py [--ratio 0.5] [--arch NAME ...] [--formats onnx,...]
Writes benchmarks/results/zoo_coverage.json and prints one line per architecture.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekd import __version__  # noqa: E402
from edgekd.bench.mac_check import check_macs  # noqa: E402
from edgekd.core.errors import EdgeKDError  # noqa: E402
from edgekd.core.registry import EXPORTERS  # noqa: E402
from edgekd.data.bundled import example_dataset  # noqa: E402
from edgekd.export import check_parity, get_exporter  # noqa: E402
from edgekd.export.base import PRECISIONS, SidecarInfo  # noqa: E402
from edgekd.models.loading import load_student, save_student  # noqa: E402
from edgekd.models.zoo import ZOO  # noqa: E402
from edgekd.models.zoo_field import FIELD_ZOO  # noqa: E402
from edgekd.prune.pruner import PruneSettings, prune  # noqa: E402

ALL = {**ZOO, **FIELD_ZOO}
PARITY_IMAGES = 256
CALIBRATION_IMAGES = 37
FP32_MAX_DIFF = 1e-3


def _params(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def cover(arch: str, ratio: float, formats: list[str], tmp: Path, bundle) -> dict:
    """One architecture's row of the coverage table."""
    factory = ALL[arch]
    spec = f"{factory.__module__}:{factory.__name__}"
    torch.manual_seed(0)
    model = factory().eval()
    x = bundle.to_tensor(bundle.test.x[:PARITY_IMAGES])
    row: dict = {"arch": arch, "factory": spec, "params": _params(model)}
    try:
        result = prune(model, x[:1], ratio, PruneSettings())
    except EdgeKDError as exc:
        return {**row, "prune_ok": False, "prune_error": str(exc)}
    pruned = result.model
    row.update({"prune_ok": True, "ratio": result.ratio, "pruned_params": _params(pruned),
                "left_whole": result.left_whole})  # fmt: skip
    path = save_student(pruned, tmp / f"{arch}.pt", spec)
    try:
        student = load_student(path, spec)
        with torch.no_grad():
            row["reload_ok"] = bool(torch.equal(student(x[:8]), pruned(x[:8])))
    except EdgeKDError as exc:
        return {**row, "reload_ok": False, "reload_error": str(exc)}
    check = check_macs(student, (1, *bundle.input_shape))
    row["macs"] = check.as_dict()
    with torch.no_grad():
        reference = student(x).numpy()
    info = SidecarInfo.from_bundle(bundle)
    calib = bundle.to_tensor(bundle.val.x[:CALIBRATION_IMAGES]).numpy()
    exports = {}
    for fmt in formats:
        for precision in PRECISIONS:
            started = time.perf_counter()
            key = f"{fmt}-{precision}"
            try:
                exporter = get_exporter(fmt)
                out = tmp / arch / key
                artifact = exporter.export(student, x[:1], precision, out, info,
                                           calibration=calib if precision == "int8" else None)  # fmt: skip
                run = exporter.load_runtime(artifact, threads=1)
                parity = check_parity(run, x.numpy(), reference, bundle.test.y[:PARITY_IMAGES])
                exports[key] = {"ok": True, "agreement": round(parity.agreement, 4),
                                "max_abs_diff": float(f"{parity.max_abs_diff:.3g}"),
                                "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
            except EdgeKDError as exc:
                exports[key] = {"ok": False, "error": str(exc)[:300]}
    row["exports"] = exports
    fp32 = [e for k, e in exports.items() if k.endswith("fp32")]
    row["fp32_parity"] = bool(fp32) and all(e.get("ok") and e["max_abs_diff"] <= FP32_MAX_DIFF for e in fp32)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--arch", nargs="*", default=list(ALL))
    parser.add_argument("--formats", default=",".join(EXPORTERS.names()))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "zoo_coverage.json")
    args = parser.parse_args()
    bundle = example_dataset()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.arch:
            row = cover(arch, args.ratio, args.formats.split(","), Path(tmp), bundle)
            rows.append(row)
            _write(args, rows, done=False)  # each row lands as soon as it is measured
            exports = row.get("exports", {})
            print(f"{arch:20s} prune {row['prune_ok']!s:5} left whole {len(row.get('left_whole', {})):2d} "
                  f"reload {row.get('reload_ok')!s:5} MACs {row.get('macs', {}).get('traced_macs')}/"
                  f"{row.get('macs', {}).get('counted_macs')} exports {sum(e['ok'] for e in exports.values())}/"
                  f"{len(exports)} fp32 parity {row.get('fp32_parity')}", flush=True)  # fmt: skip
    _write(args, rows, done=True)
    return 0


def _write(args: argparse.Namespace, rows: list[dict], done: bool) -> None:
    import onnxruntime
    import openvino

    summary = {
        "architectures": len(rows),
        "prune_ok_or_left_whole_with_reason": sum(r["prune_ok"] for r in rows),
        "reload_ok": sum(bool(r.get("reload_ok")) for r in rows),
        "macs_within_tolerance": sum(bool(r.get("macs", {}).get("ok")) for r in rows),
        "exports_ok": sum(e["ok"] for r in rows for e in r.get("exports", {}).values()),
        "exports": sum(len(r.get("exports", {})) for r in rows),
        "fp32_parity": sum(bool(r.get("fp32_parity")) for r in rows),
    }
    data = {
        "what": __doc__.splitlines()[0], "complete": done, "not_run": [a for a in args.arch if a not in
                                                                      {r["arch"] for r in rows}],
        "ratio": args.ratio, "calibration_images": CALIBRATION_IMAGES,
        "parity_images": PARITY_IMAGES, "fp32_max_abs_diff": FP32_MAX_DIFF, "summary": summary, "rows": rows,
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "note": "shared 2-core machine, loaded by other jobs: seconds are indicative only"},
        "versions": {"edgekd": __version__, "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                     "openvino": openvino.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    if done:
        print(json.dumps(summary))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(main())
