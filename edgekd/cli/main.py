"""The ``edgekd`` command: parses, calls the library, maps results to exit codes.

Exit codes: 0 gate passed, 1 gate failed, 2 bad input or config, 3 tool-chain/runner failure,
70 an internal error (a bug: one line, --debug shows the traceback).
"""

from __future__ import annotations

import logging
import os
import sys

import click

from edgekd import __version__
from edgekd.core.errors import EdgeKDError

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgekd")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """edgekd: compile a PyTorch teacher into a student that meets a latency budget on an edge target.

    \b
    Example:
      edgekd build --target cortex-a76 --budget-ms 30
      edgekd targets list
    """
    from rich.logging import RichHandler

    # Our own messages at WARNING (-v INFO, -vv DEBUG); third-party libraries only at ERROR unless -vv.
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=logging.ERROR if verbose < 2 else logging.DEBUG,
                        handlers=[RichHandler(show_path=False)], format="%(message)s")  # fmt: skip
    logging.getLogger("edgekd").setLevel(level)
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from edgekd.cli import (
        bench_cmd,
        build_cmd,
        calibrate_cmd,
        distill_cmd,
        emulator_cmd,
        example_cmd,
        export_cmd,
        gate_cmd,
        plugins_cmd,
        predict_cmd,
        prune_cmd,
        targets_cmd,
    )

    cli.add_command(build_cmd.build)
    cli.add_command(targets_cmd.targets)
    cli.add_command(bench_cmd.bench)
    cli.add_command(example_cmd.example)
    cli.add_command(gate_cmd.gate)
    cli.add_command(export_cmd.export)
    cli.add_command(calibrate_cmd.calibrate_latency)
    cli.add_command(emulator_cmd.emulator)
    cli.add_command(prune_cmd.prune)
    cli.add_command(distill_cmd.distill)
    cli.add_command(predict_cmd.predict)
    cli.add_command(plugins_cmd.plugins)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _quiet_native_logs() -> None:
    """TensorFlow/absl inside the LiteRT converter log to stderr at import; keep errors only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("NNCF_CI", "1")
    os.environ.setdefault("OPENVINO_TELEMETRY_DISABLE", "1")
    os.environ.setdefault("TORCH_LOGS", "-torch")  # torch resets its loggers at import; this keeps ERROR


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns (and exits with) the process exit code."""
    _quiet_native_logs()
    _register()
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        result = cli.main(args=args, prog_name="edgekd", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except EdgeKDError as exc:
        if debug:
            raise
        click.echo(f"error: {_one_line(str(exc))[:2000]}", err=True)
        code = exc.exit_code
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        code = 130
    except click.ClickException as exc:
        if debug:
            raise
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f"; see `{ctx.command_path} --help`"
        click.echo(f"error: {_one_line(exc.format_message())}{hint}", err=True)
        code = 2
    except KeyboardInterrupt:
        click.echo("error: interrupted; completed stages are cached and a re-run resumes", err=True)
        code = 130
    except OSError as exc:  # a file or folder the user named cannot be read or written
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"error: {_one_line(where)}{exc.strerror or type(exc).__name__}; check the path, its "
                   "permissions and free space", err=True)  # fmt: skip
        code = 2
    except Exception as exc:  # a bug in edgekd: still one line, and a distinct exit code
        if debug:
            raise
        click.echo(f"error: internal error ({type(exc).__name__}: {_one_line(str(exc))[:200]}); re-run with "
                   "--debug for the traceback and report it", err=True)  # fmt: skip
        code = 70
    if argv is None:
        sys.exit(code)
    return code
