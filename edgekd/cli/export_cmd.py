"""``edgekd export MODEL --format F --precision P``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--format", "fmt", required=True, help="onnx, tflite or openvino.")
@click.option("--precision", default="fp32", show_default=True, help="fp32 or int8.")
@click.option(
    "--factory",
    default=None,
    help="'module:function' that builds the model: needed for a plain state dict and for a student.pt "
    "(checked against the factory the file records; a file never makes edgekd call code).",
)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Calibration/parity data [bundled].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("export"), show_default=True)
@click.option("--parity-samples", type=int, default=500, show_default=True)
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset.")
def export(
    model: Path,
    fmt: str,
    precision: str,
    factory: str | None,
    data: Path | None,
    out_dir: Path,
    parity_samples: int,
    opset: int,
) -> int:
    """Export a checkpoint (an edgekd student.pt, or a state dict with --factory) and check its parity.

    \b
    Example:
      edgekd export build/cortex-a76/artifacts/student.pt --format openvino --precision int8
      edgekd export prune/student.pt --factory mymodels:resnet --format onnx
      edgekd export teacher.pt --factory mymodels:resnet --format onnx --data mydata.npz
    """
    from edgekd.export.standalone import export_checkpoint

    if parity_samples < 1:
        raise click.BadParameter(f"must be >= 1 (got {parity_samples})", param_hint="--parity-samples")
    outcome = export_checkpoint(model, fmt, precision, out_dir, factory, data, parity_samples=parity_samples,
                                opset=opset)  # fmt: skip
    p = outcome.parity
    click.echo(
        f"wrote {outcome.artifact.path} (sha256 {outcome.artifact.sha256[:12]}, {outcome.artifact.size_bytes:,} B)"
    )
    click.echo(f"parity on {p.samples} test images: top-1 agreement {p.agreement:.4f}, max abs diff "
               f"{p.max_abs_diff:.3g}, accuracy {p.accuracy:.4f} (PyTorch {p.reference_accuracy:.4f})")  # fmt: skip
    return 0
