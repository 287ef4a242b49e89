"""``edgekd bench MODEL_FILE --target NAME``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("model_file", type=click.Path(path_type=Path))
@click.option("--target", "-t", default="x86-64-host", show_default=True, help="Target profile.")
@click.option("--runner", default=None, help="Runner name [default: local].")
@click.option("--threads", type=int, default=None, help="[default: the profile's budget threads]")
@click.option("--warmup", type=int, default=10, show_default=True)
@click.option("--runs", type=int, default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench(model_file: Path, target: str, runner: str | None, threads: int | None, warmup: int, runs: int,
          as_json: bool) -> int:  # fmt: skip
    """Time MODEL_FILE (.onnx, .tflite, OpenVINO .xml) and print p50/p90/p99 with their evidence level.

    \b
    Example:
      edgekd bench build/cortex-a76/artifacts/student-onnx-fp32.onnx --target x86-64-host
    """
    from edgekd.bench.runner_base import BenchSettings
    from edgekd.bench.stats import summarize
    from edgekd.config.targets import load_target
    from edgekd.errors import ConfigError, InputError
    from edgekd.registry import RUNNERS

    profile = load_target(target)
    if not model_file.exists():
        raise InputError(f"model file {model_file} does not exist")
    if (threads is not None and threads <= 0) or runs <= 0 or warmup < 0:
        raise ConfigError("--threads and --runs must be > 0 and --warmup >= 0")
    name = runner or "local"
    settings = BenchSettings(threads=threads or profile.budget.threads, warmup=warmup, runs=runs)
    with RUNNERS.get(name)() as r:
        result = r.run(r.push(model_file), settings)
    stats = summarize(result.samples_ms, result.init_ms)
    if name == "local" and not profile.measured_locally:
        click.echo(f"note: {profile.name} is not this machine; these are host figures, not {profile.name} ones",
                   err=True)  # fmt: skip
    if as_json:
        click.echo(json.dumps({"stats": stats.to_json(), "evidence": result.evidence, "runtime": result.runtime,
                               "threads": settings.threads, "target": profile.name}, indent=2))  # fmt: skip
        return 0
    click.echo(f"{model_file.name} on {result.runtime}, {settings.threads} thread(s), {stats.runs} runs "
               f"[{result.evidence}]")  # fmt: skip
    click.echo(f"p50 {stats.p50_ms:.3f} ms  p90 {stats.p90_ms:.3f} ms  p99 {stats.p99_ms:.3f} ms  "
               f"mean {stats.mean_ms:.3f} ms  cv {stats.cv:.3f}  init {stats.init_ms or 0:.1f} ms")  # fmt: skip
    return 0
