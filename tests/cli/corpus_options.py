"""Corpus cases for what the user types or configures: YAML, numbers, paths, factories, reports."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli import hostile_inputs as h
from tests.cli.corpus_files import bench_ok
from tests.cli.corpus_support import Case, Ctx, build, build_data
from tests.gate.report_factory import make_report


def _config(c: Ctx, text: str) -> str:
    return c.write("build.yaml", text)


def cfg_case(text: str | Callable[[Ctx], str]) -> Callable[[Ctx], list[str]]:
    return lambda c: build(c, "--config", _config(c, text(c) if callable(text) else text))


def target_case(old: str, new: str) -> Callable[[Ctx], list[str]]:
    return lambda c: build(c, "--target", c.profile(old, new))


def target_text(text: str) -> Callable[[Ctx], list[str]]:
    return lambda c: build(c, "--target", c.write("x86-64-host.yaml", text))


def distill_cfg(text: str) -> Callable[[Ctx], list[str]]:
    return lambda c: [
        "distill",
        "--ratio",
        "0.5",
        "--out",
        c.out,
        "--data",
        c.npz(),
        "--config",
        c.write("d.yaml", text),
    ]


def gate_rules(text: str) -> Callable[[Ctx], list[str]]:
    return lambda c: [
        "gate",
        c.write("report.json", h.json_text(make_report())),
        "--rules",
        c.write("rules.yaml", text),
    ]


DESC = "description: The x86-64 machine"
YAML = [
    Case("target-alias-bomb-description", target_case(DESC, "description:\n" + h.alias_bomb() + "#"), "aliases"),
    Case(
        "target-python-object-tag",
        target_case(DESC, "description: !!python/object/apply:os.system ['true']\n#"),
        "unsafe",
    ),
    Case("target-python-name-tag", target_case(DESC, "description: !!python/name:os.system\n#"), "unsafe"),
    Case("target-unknown-key", target_case("arch: x86_64", "arch: x86_64\nturbo: true"), "unknown key 'turbo'"),
    Case("target-wrong-type", target_case("cores: 2 ", "cores: many "), "cpu.cores"),
    Case("target-nan-frequency", target_case("freq_ghz: 2.6", "freq_ghz: .nan"), "finite"),
    Case("target-inf-budget", target_case("latency_ms: 10", "latency_ms: .inf"), "finite"),
    Case("target-negative-cores", target_case("cores: 2 ", "cores: -2 "), "cpu.cores"),
    Case(
        "target-unknown-format",
        target_case("{format: onnx, precision: fp32}", "{format: tensorrt, precision: fp32}"),
        "exports",
    ),
    Case(
        "target-unknown-runner",
        lambda c: build(
            c, "--target", c.write("x86-64-host.yaml", c.a.profile_text.replace("kind: local", "kind: telnet"))
        ),
        "runner.kind",
    ),
    Case("target-huge-file", target_case(DESC, "# " + "x" * (2 << 20) + "\n" + DESC), "larger than"),
    Case(
        "target-binary-garbage",
        lambda c: build(c, "--target", c.write("x86-64-host.yaml", b"\xff\xfe\x00na")),
        "not UTF-8",
    ),
    Case("target-syntax-error", target_text("name: [unclosed\n"), "not valid YAML"),
    Case("target-top-level-list", target_text("- a\n- b\n"), "mapping"),
    Case("target-empty-file", target_text(""), "mapping"),
    Case("target-recursive-alias", target_case(DESC, "description: &r [*r]\n#"), "refers to itself"),
    Case("target-deep-nesting", target_case(DESC, "description: " + "[" * 1500 + "]" * 1500 + "\n#"), "nests"),
    Case("target-name-mismatch", target_case("name: x86-64-host", "name: other-host"), "other-host"),
    Case("target-huge-key", target_case("arch: x86_64", "arch: x86_64\n" + "k" * 100_000 + ": 1"), "not valid YAML"),
    Case(
        "targets-show-alias-bomb",
        lambda c: ["targets", "show", c.profile(DESC, "description:\n" + h.alias_bomb() + "#")],
        "aliases",
    ),
    Case("config-alias-bomb-seed", cfg_case("distill:\n  seed:\n" + h.alias_bomb(4)), "aliases"),
    Case("config-unknown-loss", cfg_case("distill:\n  losses: {kd: 1, telepathy: 1}\n"), "unknown loss 'telepathy'"),
    Case("config-unknown-importance", cfg_case("prune:\n  importance: vibes\n"), "unknown importance"),
    Case("config-unknown-key", cfg_case("distil:\n  epochs: 1\n"), "unknown key 'distil'"),
    Case("config-wrong-type", cfg_case("distill:\n  epochs: three\n"), "distill.epochs"),
    Case("config-nan-lr", cfg_case("distill:\n  lr: .nan\n"), "finite"),
    Case("config-inf-temperature", cfg_case("distill:\n  temperature: .inf\n"), "finite"),
    Case("config-negative-epochs", cfg_case("distill:\n  epochs: -1\n"), "distill.epochs"),
    Case("config-alpha-above-one", cfg_case("distill:\n  alpha: 2\n"), "distill.alpha"),
    Case("config-nan-loss-weight", cfg_case("distill:\n  losses: {kd: .nan}\n"), "finite"),
    Case("config-python-tag", cfg_case("target: !!python/object/new:os.system [true]\n"), "unsafe"),
    Case("config-inf-budget", cfg_case("budget_ms: .inf\n"), "finite"),
    Case(
        "config-is-a-directory",
        lambda c: build(c, "--config", str((c.d / "cfg").mkdir() or c.d / "cfg")),
        "cannot read",
    ),
    Case("config-missing", lambda c: build(c, "--config", str(c.d / "none.yaml")), "cannot read"),
    Case("config-huge", cfg_case("# " + "y" * (2 << 20) + "\n"), "larger than"),
    Case("config-huge-string-value", cfg_case("prune:\n  importance: " + "t" * 500_000 + "\n"), "unknown importance"),
    Case("distill-config-alias-bomb", distill_cfg("seed:\n" + h.alias_bomb()), "aliases"),
    Case("distill-config-unknown-loss", distill_cfg("losses: {nope: 1}\n"), "unknown loss 'nope'"),
    Case("gate-rules-alias-bomb", gate_rules("rules:\n  latency:\n" + h.alias_bomb(4)), "aliases"),
    Case("gate-rules-python-tag", gate_rules("stat: !!python/object/apply:os.getcwd []\n"), "unsafe"),
    Case("gate-rules-unknown-metric", gate_rules("rules: {speed: 3}\n"), "speed"),
]


def build_opts(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: build(c, *extra)


def prune_opts(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["prune", "--target", "x86-64-host", "--out", c.out, "--no-progress", *extra]


def distill_opts(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["distill", "--out", c.out, "--no-progress", "--data", c.npz(), *extra]


def export_opts(*extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["export", str(c.a.student), "--out", c.out, *extra]


NUMBERS = [
    Case("build-budget-inf", build_opts("--budget-ms", "inf"), "finite"),
    Case("build-budget-nan", build_opts("--budget-ms", "nan"), "finite"),
    Case("build-budget-negative", build_opts("--budget-ms", "-1"), "greater than 0"),
    Case("build-budget-zero", build_opts("--budget-ms", "0"), "greater than 0"),
    Case("build-budget-text", build_opts("--budget-ms", "fast"), "budget-ms"),
    Case("build-epochs-zero", build_opts("--epochs", "0"), "distill.epochs"),
    Case("build-epochs-negative", build_opts("--epochs", "-3"), "distill.epochs"),
    Case("build-runs-zero", build_opts("--runs", "0"), "bench.runs"),
    Case("build-max-train-zero", build_opts("--max-train-samples", "0"), "max_train_samples"),
    Case("build-parity-negative", build_opts("--parity-samples", "-5"), "parity_samples"),
    Case("build-arm-parity-negative", build_opts("--arm-parity-samples", "-1"), "arm_parity_samples"),
    Case("prune-budget-nan", prune_opts("--budget-ms", "nan"), "finite"),
    Case("prune-budget-inf", prune_opts("--budget-ms", "inf"), "finite"),
    Case("prune-ratio-nan", prune_opts("--sweep", "--ratios", "0.2,nan"), "ratios"),
    Case("prune-ratio-above-one", prune_opts("--sweep", "--ratios", "1.5"), "ratios"),
    Case("prune-ratio-text", prune_opts("--sweep", "--ratios", "a,b"), "comma-separated"),
    Case("prune-steps-negative", prune_opts("--sweep", "--steps", "-1"), "finetune_steps"),
    Case("prune-eval-zero", prune_opts("--sweep", "--eval-samples", "0"), "eval-samples"),
    Case("prune-unknown-importance", prune_opts("--importance", "vibes"), "unknown importance"),
    Case("distill-ratio-above-one", distill_opts("--ratio", "1.5"), "ratio"),
    Case("distill-ratio-nan", distill_opts("--ratio", "nan"), "ratio"),
    Case("distill-temperature-zero", distill_opts("--ratio", "0.5", "--temperature", "0"), "temperature"),
    Case("distill-temperature-inf", distill_opts("--ratio", "0.5", "--temperature", "inf"), "finite"),
    Case("distill-alpha-two", distill_opts("--ratio", "0.5", "--alpha", "2"), "alpha"),
    Case("distill-alpha-nan", distill_opts("--ratio", "0.5", "--alpha", "nan"), "finite"),
    Case("distill-epochs-zero", distill_opts("--ratio", "0.5", "--epochs", "0"), "epochs"),
    Case("distill-lr-negative", distill_opts("--ratio", "0.5", "--lr", "-1"), "lr"),
    Case("distill-unknown-loss", distill_opts("--ratio", "0.5", "--loss", "telepathy=1"), "unknown loss"),
    Case("distill-loss-weight-text", distill_opts("--ratio", "0.5", "--loss", "kd=lots"), "NAME=WEIGHT"),
    Case("distill-loss-weight-nan", distill_opts("--ratio", "0.5", "--loss", "kd=nan"), "finite"),
    Case("distill-assistant-two", distill_opts("--ratio", "0.5", "--assistant", "2"), "assistant"),
    Case("distill-assistant-nan", distill_opts("--ratio", "0.5", "--assistant", "nan"), "assistant"),
    Case("distill-no-student-or-ratio", distill_opts(), "exactly one"),
    Case("export-unknown-format", export_opts("--format", "caffe"), "caffe"),
    Case("export-unknown-precision", export_opts("--format", "onnx", "--precision", "int3"), "int3"),
    Case("export-parity-zero", export_opts("--format", "onnx", "--parity-samples", "0"), "parity"),
    Case("bench-runs-zero", bench_ok("--runs", "0"), "--runs"),
    Case("bench-warmup-negative", bench_ok("--warmup", "-1"), "--warmup"),
    Case("bench-threads-zero", bench_ok("--threads", "0"), "--threads"),
    Case("bench-batch-zero", bench_ok("--batch", "0"), "--batch"),
    Case("bench-min-seconds-inf", bench_ok("--min-seconds", "inf"), "finite"),
    Case("bench-min-seconds-nan", bench_ok("--min-seconds", "nan"), "finite"),
    Case("bench-max-cv-nan", bench_ok("--max-cv", "nan"), "--max-cv"),
    Case("bench-timeout-negative", bench_ok("--timeout", "-1"), "--timeout"),
    Case("bench-pin-text", bench_ok("--pin", "cpu0"), "--pin"),
    Case("bench-input-missing", bench_ok("--input", "nope.npy"), "--input"),
    Case("bench-unknown-runner", bench_ok("--runner", "telnet"), "telnet"),
]


def _a_file(c: Ctx) -> Path:
    path = c.d / "afile"
    path.write_text("I am a file")
    return path


def _unwritable(folder: Path) -> bool:
    """True when not even root can create a file in ``folder`` (sysfs refuses it)."""
    try:
        (folder / ".edgekd-corpus-probe").touch()
    except OSError:
        return True
    (folder / ".edgekd-corpus-probe").unlink()
    return False


READ_ONLY = Path("/sys/edgekd-corpus-out") if Path("/sys").is_dir() and _unwritable(Path("/sys")) else None


def _read_only_out(c: Ctx) -> str:
    if os.geteuid() != 0:
        ro = c.d / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return str(ro / "out")
    if READ_ONLY is None:
        pytest.skip("running as root with no read-only file system to point --out at")
    return str(READ_ONLY)


PATHS = [
    Case("build-out-under-a-file", lambda c: build(c, "--out", str(_a_file(c) / "sub")), "is under"),
    Case("build-out-is-a-file", lambda c: build(c, "--out", str(_a_file(c))), "a file, not a folder"),
    Case("build-out-read-only", lambda c: build(c, "--out", _read_only_out(c)), "cannot write"),
    Case("prune-out-under-a-file", lambda c: prune_opts("--out", str(_a_file(c) / "p"))(c), "is under"),
    Case(
        "distill-out-under-a-file",
        lambda c: distill_opts("--ratio", "0.5", "--out", str(_a_file(c) / "d"))(c),
        "is under",
    ),
    Case(
        "distill-out-read-only", lambda c: distill_opts("--ratio", "0.5", "--out", _read_only_out(c))(c), "cannot write"
    ),
    Case(
        "export-out-under-a-file",
        lambda c: ["export", str(c.a.student), "--format", "onnx", "--out", str(_a_file(c) / "e")],
        "is under",
    ),
    Case("bench-output-under-a-file", lambda c: bench_ok("--output", str(_a_file(c) / "x.json"))(c), "afile"),
    Case("data-is-a-fifo", build_data(lambda c: (os.mkfifo(c.d / "d.npz"), str(c.d / "d.npz"))[1]), ".npz"),
]


def _module(c: Ctx, name: str, text: str) -> str:
    c.write(f"{name}.py", text)
    return f"{name}:make"


FACTORY = [
    Case(
        "factory-missing-module",
        build_opts("--teacher", "no_such_mod_x:make", "--teacher-weights", "t.pt"),
        "no_such_mod_x",
    ),
    Case("factory-no-colon", lambda c: build(c, "--teacher", "os", "--teacher-weights", c.teacher({})), "module:func"),
    Case(
        "factory-missing-function",
        lambda c: build(c, "--teacher", "json:nothing_here", "--teacher-weights", c.teacher({})),
        "nothing_here",
    ),
    Case(
        "factory-raises-on-call",
        lambda c: build(
            c,
            "--teacher",
            _module(c, "fac_call", "def make():\n    raise ValueError('no')\n"),
            "--teacher-weights",
            c.teacher({}),
        ),
        "fac_call:make",
    ),
    Case(
        "factory-returns-non-module",
        lambda c: build(
            c, "--teacher", _module(c, "fac_int", "def make():\n    return 3\n"), "--teacher-weights", c.teacher({})
        ),
        "not an nn.Module",
    ),
    Case(
        "factory-needs-arguments",
        lambda c: build(
            c,
            "--teacher",
            _module(c, "fac_args", "def make(depth):\n    return None\n"),
            "--teacher-weights",
            c.teacher({}),
        ),
        "fac_args:make",
    ),
    Case(
        "factory-syntax-error",
        lambda c: build(c, "--teacher", _module(c, "fac_syntax", "def make(:\n"), "--teacher-weights", c.teacher({})),
        "fac_syntax",
    ),
    Case(
        "factory-raises-on-import",
        lambda c: build(
            c, "--teacher", _module(c, "fac_imp", "raise RuntimeError('boom')\n"), "--teacher-weights", c.teacher({})
        ),
        "fac_imp",
    ),
    Case(
        "factory-system-exit-on-call",
        lambda c: build(
            c,
            "--teacher",
            _module(c, "fac_exit", "def make():\n    raise SystemExit(0)\n"),
            "--teacher-weights",
            c.teacher({}),
        ),
        "fac_exit",
    ),
]


def gate_report(make: Callable[[Ctx], str], *extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["gate", make(c), *extra]


def _good_report(c: Ctx) -> str:
    return c.write("report.json", h.json_text(make_report()))


def _report_with(c: Ctx, path: tuple[str, ...], value: object) -> str:
    report = make_report()
    node = report
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return c.write("report.json", h.json_text(report))


REPORTS = [
    Case("report-missing", gate_report(lambda c: str(c.d / "none.json")), "none.json"),
    Case("report-text-not-json", gate_report(lambda c: c.write("report.json", "hello")), "report.json"),
    Case("report-zero-byte", gate_report(lambda c: c.write("report.json", "")), "report.json"),
    Case("report-a-list", gate_report(lambda c: c.write("report.json", "[1, 2]")), "schema"),
    Case("report-is-a-directory", gate_report(lambda c: str((c.d / "r.json").mkdir() or c.d / "r.json")), "r.json"),
    Case("report-old-schema", gate_report(lambda c: _report_with(c, ("schema_version",), "0.1")), "schema"),
    Case(
        "report-binary-garbage",
        gate_report(lambda c: c.write("report.json", b"\xff\xfe\x00garbage")),
        "report.json",
    ),
    Case(
        "report-deep-nesting",
        gate_report(lambda c: c.write("report.json", h.nested_json(100_000))),
        "report.json",
    ),
    Case(
        "report-latency-is-text",
        gate_report(lambda c: _report_with(c, ("student", "latency"), "fast")),
        "latency",
    ),
    Case("report-target-is-number", gate_report(lambda c: _report_with(c, ("target",), 42)), "target"),
    Case("baseline-missing", gate_report(_good_report, "--baseline", "none.json"), "none.json"),
    Case("baseline-text", gate_report(_good_report, "--baseline", "b.json"), "b.json"),
    Case(
        "baseline-binary-garbage",
        lambda c: ["gate", _good_report(c), "--baseline", c.write("b.json", b"\x80\x81garbage")],
        "b.json",
    ),
    Case("gate-limit-text", gate_report(_good_report, "--limit", "latency=fast"), "fast"),
    Case("gate-budget-nan", gate_report(_good_report, "--budget-ms", "nan"), "rules.latency"),
    Case("gate-junit-under-a-file", lambda c: ["gate", _good_report(c), "--junit", str(_a_file(c) / "j.xml")], "afile"),
]
