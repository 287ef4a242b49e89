"""``edgekd predict --target T --teacher module:function``: predicted latency and per-layer breakdown, no build."""

from __future__ import annotations

import json
from pathlib import Path

import click

EXAMPLE_TEACHER = "edgekd.models.example_teacher:example_teacher"
EXAMPLE_SHAPE = "1,1,28,28"


def _shape(text: str) -> tuple[int, ...]:
    from edgekd.core.errors import InputError

    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) < 2 or any(v <= 0 for v in shape):
        raise InputError(f"--input-shape '{text}' is not a list of positive integers such as 1,3,224,224")
    return shape


@click.command("predict")
@click.option("--target", "-t", default="cortex-a76", show_default=True, help="Target profile name or YAML path.")
@click.option("--teacher", "teacher_factory", default=None,
              help=f"Model factory 'module:function' [default: the bundled example, {EXAMPLE_TEACHER}].")  # fmt: skip
@click.option("--teacher-weights", type=click.Path(path_type=Path), default=None, help="State dict (optional).")
@click.option(
    "--input-shape", default=None, help=f"Input shape with batch, e.g. 1,3,224,224 [example: {EXAMPLE_SHAPE}]."
)
@click.option("--precision", type=click.Choice(["fp32", "int8"]), default=None,
              help="[default: the precision of the profile's primary export]")  # fmt: skip
@click.option("--threads", type=int, default=None, help="[default: the profile's budget threads]")
@click.option("--top", type=int, default=15, show_default=True, help="Layers listed in the breakdown (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def predict(target: str, teacher_factory: str | None, teacher_weights: Path | None, input_shape: str | None,
            precision: str | None, threads: int | None, top: int, as_json: bool) -> int:  # fmt: skip
    """Predict a model's latency on TARGET from the profile's latency model, layer by layer.

    Nothing is exported or built. The figure is evidence 'predicted' and carries the predictor's
    error as measured against published device figures (Arm profiles fitted with
    `edgekd calibrate-latency --from-measurements`).

    \b
    Example:
      edgekd predict --target cortex-a76 --teacher mymodels:net --input-shape 1,3,224,224 --precision int8
      edgekd predict --target cortex-a76 --json
    """
    from edgekd.bench.arm_cost import kernel_class
    from edgekd.bench.latency_model import LatencyModel, count_macs, trace_ops
    from edgekd.config.targets import load_target
    from edgekd.core.errors import InputError
    from edgekd.models.loading import load_model

    if teacher_factory is not None and input_shape is None:
        raise InputError("--input-shape is needed with --teacher (e.g. --input-shape 1,3,224,224)")
    if threads is not None and threads < 1:
        raise InputError(f"--threads {threads} must be at least 1")
    profile = load_target(target)
    shape = _shape(input_shape or EXAMPLE_SHAPE)
    model = load_model(teacher_factory or EXAMPLE_TEACHER, teacher_weights)
    prec = precision or profile.primary.precision
    n_threads = threads or profile.budget.threads
    latency = LatencyModel.for_target(profile)
    ops = trace_ops(model, shape)
    total = latency.predict_ms(ops, prec, n_threads)  # type: ignore[arg-type]
    layers = [
        {"name": op.name, "kernel": kernel_class(op) if latency.arm is not None else op.kind, "macs": op.macs,
         "ms": latency.op_ms(op, prec, n_threads)}  # type: ignore[arg-type]
        for op in ops
    ]  # fmt: skip
    result = {
        "target": profile.name, "precision": prec, "threads": n_threads, "input_shape": list(shape),
        "predicted_ms": total, "evidence": "predicted", "macs": count_macs(ops),
        "latency_model": latency.describe(), "predictor_error": latency.error(),
        "by_kernel": latency.breakdown(ops, prec, n_threads), "layers": layers,  # type: ignore[arg-type]
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return 0
    _print(result, top)
    return 0


def _print(result: dict, top: int) -> None:
    err = result["predictor_error"]
    err_text = ""
    if err and err.get("median_ratio") is not None:
        err_text = (f"  [predictor error, {err['method']} on {err['n']} published measurements: median "
                    f"predicted/measured {err['median_ratio']:.2f}, quartiles {err['p25_ratio']:.2f}-"
                    f"{err['p75_ratio']:.2f}, {100 * err['within_25pct']:.0f} % within ±25 %]")  # fmt: skip
    shape = "x".join(map(str, result["input_shape"]))
    click.echo(f"{result['target']} {result['precision']} {result['threads']} thread(s), input {shape}: "
               f"predicted {result['predicted_ms']:.2f} ms{err_text}")  # fmt: skip
    click.echo(result["latency_model"])
    total = result["predicted_ms"] or 1.0
    kinds = ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(result["by_kernel"].items(), key=lambda kv: -kv[1]) if v)
    click.echo(f"by kernel: {kinds}")
    layers = [row for row in result["layers"] if row["ms"] > 0]
    shown = sorted(layers, key=lambda row: -row["ms"])[: top or None]
    click.echo(f"{'layer':<40} {'kernel':<12} {'MMACs':>8} {'ms':>8} {'share':>6}")
    for row in shown:
        click.echo(f"{row['name'][:40]:<40} {row['kernel']:<12} {row['macs'] / 1e6:8.2f} {row['ms']:8.3f} "
                   f"{100 * row['ms'] / total:5.1f}%")  # fmt: skip
    if len(shown) < len(layers):
        click.echo(f"... {len(layers) - len(shown)} more layers (--top 0 lists all)")
