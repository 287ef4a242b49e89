"""``edgekd bench MODEL_FILE --target NAME [--runner local|qemu|ssh|adb|profile]``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click


@click.command()
@click.argument("model_file", type=click.Path(path_type=Path))
@click.option("--target", "-t", default="x86-64-host", show_default=True, help="Target profile.")
@click.option("--runner", default="local", show_default=True,
              help="Where to run: local, qemu, ssh, adb, or 'profile' (the target profile's runner.kind).")  # fmt: skip
@click.option("--threads", type=int, default=None, help="Runtime threads [default: the profile's budget threads].")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed inferences first.")
@click.option("--runs", type=int, default=100, show_default=True, help="Minimum timed inferences.")
@click.option("--min-seconds", type=float, default=0.0, show_default=True, help="Keep timing at least this long.")
@click.option("--batch", type=int, default=1, show_default=True, help="Inputs per inference.")
@click.option("--pin", default=None, metavar="CPUS", help="Pin the benchmark to CPU ids, e.g. 0 or 0,1.")
@click.option("--input", "input_spec", default="random", show_default=True, metavar="random|calibration|FILE.npy",
              help="Random normal data, the bundled calibration images, or your own .npy (NCHW).")  # fmt: skip
@click.option("--max-cv", type=float, default=0.15, show_default=True,
              help="Largest acceptable coefficient of variation; above it, repeat the run, then flag it.")  # fmt: skip
@click.option("--repeats", type=int, default=1, show_default=True, help="Repeats allowed for an unstable run.")
@click.option("--timeout", type=float, default=None, help="Seconds one run may take on the device.")
@click.option("--host", default=None, help="ssh: board host [default: the profile's runner.host].")
@click.option("--port", type=int, default=None, help="ssh: port [default: the profile's, else 22].")
@click.option("--user", default=None, help="ssh: login [default: the profile's runner.user].")
@click.option("--key-file", type=click.Path(path_type=Path), default=None,
              help="ssh: private key [default: the profile's, else ssh-agent and ~/.ssh/id_*].")  # fmt: skip
@click.option("--known-hosts", type=click.Path(path_type=Path), default=None,
              help="ssh: known_hosts file checked [default: ~/.ssh/known_hosts].")  # fmt: skip
@click.option("--trust-on-first-use", is_flag=True, default=None,
              help="ssh: accept and record an unknown host key (a changed key is still refused).")  # fmt: skip
@click.option("--serial", default=None, help="adb: device serial [default: the only attached device].")
@click.option("--remote-python", default=None,
              help="Interpreter on the device with numpy + the runtime [ssh default: python3].")  # fmt: skip
@click.option("--benchmark-model", type=click.Path(path_type=Path), default=None,
              help="adb: LiteRT benchmark_model binary to push (used when no --remote-python).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None,
              help="Also write the figures as JSON here (atomically; nothing written if the run fails).")  # fmt: skip
def bench(model_file: Path, target: str, runner: str, threads: int | None, warmup: int, runs: int, min_seconds: float,
          batch: int, pin: str | None, input_spec: str, max_cv: float, repeats: int, as_json: bool,
          output: Path | None, **runner_options: object) -> int:  # fmt: skip
    """Time MODEL_FILE (.onnx, .tflite, OpenVINO .xml) and print p50/p90/p99 with their evidence level.

    The default runner is local (this machine, figures marked measured-host); --runner profile uses the
    runner the target profile names. ssh and adb figures are marked measured-device. Runner options
    that do not apply to the chosen runner are errors.

    \b
    Exit codes: 0 figures produced (an unstable run is flagged, not failed), 2 bad input or option,
    3 the runner failed (unreachable, refused, dropped, runtime missing on the device).

    \b
    Examples:
      edgekd bench student.onnx --target x86-64-host
      edgekd bench student.tflite -t cortex-a76 --runner ssh --host pi5.local --key-file ~/.ssh/id_ed25519
      edgekd bench student.tflite -t android-arm64 --runner adb --benchmark-model ./benchmark_model
    """
    import numpy as np

    from edgekd.bench.bench_run import bench_model, calibration_inputs
    from edgekd.bench.runner_base import BenchSettings, check_model_file
    from edgekd.config.targets import load_target
    from edgekd.core.errors import ConfigError, InputError

    profile = load_target(target)
    check_model_file(model_file)
    if output is not None:
        from edgekd.data.validation import check_output_dir

        check_output_dir(output.parent)
    if (threads is not None and threads <= 0) or runs <= 0 or warmup < 0 or batch <= 0 or not 0 <= min_seconds < 1e6:
        raise ConfigError("--threads, --runs and --batch must be > 0; --warmup and --min-seconds >= 0 (and finite)")
    port, host = runner_options.get("port"), runner_options.get("host")
    if port is not None and not 0 < int(port) < 65536:  # type: ignore[call-overload]
        raise ConfigError(f"--port must be in 1..65535 (got {port})")
    if host is not None and (not str(host).strip() or any(c.isspace() or ord(c) < 32 for c in str(host))):
        raise ConfigError(f"--host {str(host)[:60]!r} is not a host name or address")
    timeout = runner_options.get("timeout")
    if not max_cv < 1e6 or (timeout is not None and not 0 < float(timeout) < 1e6):  # type: ignore[arg-type]
        raise ConfigError("--max-cv must be a finite number and --timeout a finite number > 0")
    try:
        pin_cpus = [int(c) for c in pin.split(",")] if pin else None
    except ValueError:
        raise ConfigError(f"--pin takes CPU ids like 0 or 0,1, not {pin!r}") from None
    options = {k: v for k, v in runner_options.items() if v is not None}
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-input-") as tmp:
        input_npy = None
        if input_spec == "calibration":
            input_npy = Path(tmp) / "calibration.npy"
            np.save(input_npy, calibration_inputs(max(batch, 64)).astype(np.float32))
        elif input_spec != "random":
            input_npy = Path(input_spec)
            if not input_npy.is_file():
                raise InputError(f"--input {input_spec}: not 'random', 'calibration' or an existing .npy file")
        settings = BenchSettings(threads=threads or profile.budget.threads, warmup=warmup, runs=runs,
                                 min_seconds=min_seconds, batch_size=batch, pin_cpus=pin_cpus,
                                 input_npy=input_npy)  # fmt: skip
        report = bench_model(model_file, profile, runner, settings, options, max_cv=max_cv, repeats=repeats)
    if output is not None:
        report.write(output)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
        return 0
    result, stats = report.checked.result, report.stats
    click.echo(f"{model_file.name} on {result.runtime} via {report.runner}, {settings.threads} thread(s), "
               f"{stats.runs} runs [{result.evidence}]")  # fmt: skip
    click.echo(f"p50 {stats.p50_ms:.3f} ms  p90 {stats.p90_ms:.3f} ms  p99 {stats.p99_ms:.3f} ms  "
               f"mean {stats.mean_ms:.3f} ms  cv {stats.cv:.3f}{' UNSTABLE' if report.unstable else ''}  "
               f"init {stats.init_ms or 0:.1f} ms")  # fmt: skip
    if (energy := report.energy) is not None:
        click.echo(f"energy {energy['mj_per_inference']:.3g} mJ/inference [{energy['evidence']}: {energy['method']}]")
    return 0
