"""CI templates (ci/github-actions.yml, ci/gitlab-ci.yml): a build-and-gate job per target, gated with
`edgekd gate --junit`, publishing the JUnit results and the HTML report."""

import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TARGETS = sorted(p.stem for p in (ROOT / "targets").glob("*.yaml"))
SCRIPT = ROOT / "ci" / "build_and_gate.sh"


def load(name: str) -> dict:
    with open(ROOT / "ci" / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


def github_job() -> dict:
    return load("github-actions.yml")["jobs"]["build-and-gate"]


def gitlab_job() -> dict:
    return load("gitlab-ci.yml")["build-and-gate"]


def expand(text: str, env: dict[str, str]) -> str:
    """Replace ``${{ env.X }}``, ``${{ matrix.x }}`` and ``$X`` with ``env`` values."""
    for key, value in env.items():
        for pattern in (f"${{{{ env.{key} }}}}", f"${{{{ matrix.{key.lower()} }}}}", f"${key}"):
            text = text.replace(pattern, value)
    return text


def test_there_are_targets_to_cover():
    assert len(TARGETS) >= 5 and "cortex-a76" in TARGETS and "x86-64-host" in TARGETS


def test_github_matrix_covers_every_target():
    job = github_job()
    assert sorted(job["strategy"]["matrix"]["target"]) == TARGETS
    assert job["strategy"]["fail-fast"] is False  # one target's failure must not cancel the others


def test_gitlab_matrix_covers_every_target():
    (entry,) = gitlab_job()["parallel"]["matrix"]
    assert sorted(entry["TARGET"]) == TARGETS


def test_the_script_gates_with_junit_after_building():
    text = SCRIPT.read_text()
    build, gate = (
        text.index('"$edgekd" build'),
        text.index('args=(gate "$out/report.json" --junit "$out/gate-junit.xml")'),
    )
    assert build < gate and '"$edgekd" "${args[@]}"' in text
    assert '--baseline "$baseline"' in text and 'exit "$gated"' in text


def github_step(job: dict, uses: str, name_part: str = "") -> dict:
    return next(s for s in job["steps"] if s.get("uses", "").startswith(uses) and name_part in s.get("name", ""))


def test_github_gates_each_target_and_publishes_junit_and_html():
    job = github_job()
    env = {"OUT": expand(job["env"]["OUT"], {"TARGET": "cortex-a76"}), "TARGET": "cortex-a76"}
    assert env["OUT"] == "build/cortex-a76"
    gate = next(s for s in job["steps"] if "build_and_gate.sh" in s.get("run", ""))
    assert shlex.split(expand(gate["run"], env)) == ["ci/build_and_gate.sh", "cortex-a76", "build/cortex-a76"]
    assert gate["env"]["EDGEKD_BASELINE_DIR"] == "baseline"
    junit = github_step(job, "dorny/test-reporter@", "gate")
    assert junit["with"]["reporter"] == "java-junit"
    assert expand(junit["with"]["path"], env) == "build/cortex-a76/gate-junit.xml"
    upload = github_step(job, "actions/upload-artifact@")
    paths = expand(upload["with"]["path"], env).split()
    assert {"build/cortex-a76/report.html", "build/cortex-a76/gate-junit.xml", "build/cortex-a76/report.json"} <= set(
        paths
    )
    for step in (junit, upload):  # published whether the gate passed or failed
        assert step["if"].startswith("always()")
    steps = [s.get("uses", s.get("run", "")) for s in job["steps"]]
    assert steps.index(gate["run"]) < steps.index(junit["uses"]) and steps.index(gate["run"]) < steps.index(
        upload["uses"]
    )
    assert load("github-actions.yml")["permissions"]["checks"] == "write"


def test_github_baseline_comes_from_the_same_artifact_name_it_uploads():
    job = github_job()
    upload = github_step(job, "actions/upload-artifact@")
    fetch = next(s for s in job["steps"] if "gh run download" in s.get("run", ""))
    assert upload["with"]["name"] == "edgekd-report-${{ matrix.target }}"
    assert '--name "edgekd-report-$TARGET" --dir "baseline/$TARGET"' in fetch["run"]
    assert fetch["env"]["TARGET"] == "${{ matrix.target }}" and fetch["if"] == "github.event_name == 'pull_request'"


def test_gitlab_gates_each_target_and_publishes_junit_and_html():
    job = gitlab_job()
    out = job["variables"]["OUT"]
    script = [shlex.split(expand(line, {"TARGET": "cortex-a76", "OUT": out})) for line in job["script"][-1:]]
    assert script == [["ci/build_and_gate.sh", "cortex-a76", out]]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == f"{out}/gate-junit.xml"
    assert {f"{out}/report.html", f"{out}/report.json", f"{out}/gate-junit.xml"} <= set(artifacts["paths"])
    assert artifacts["expose_as"]
    # expose_as shows nothing for paths with wildcards or variables
    assert not any(c in p for p in artifacts["paths"] for c in "*$")
    baseline = next(line for line in job["script"] if "jobs/artifacts" in line)
    assert "raw/$OUT/report.json" in baseline and '"baseline/$TARGET/report.json"' in baseline


def test_test_jobs_lint_and_publish_pytest_results():
    gh = load("github-actions.yml")["jobs"]["test"]
    runs = [s.get("run", "") for s in gh["steps"]]
    assert "make lint" in runs and any(r.startswith("make test") and "--junitxml=" in r for r in runs)
    gl = load("gitlab-ci.yml")["test"]
    assert "make lint" in gl["script"] and gl["artifacts"]["reports"]["junit"] == "test-results/pytest.xml"


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_templates_are_plain_yaml_with_the_telemetry_switched_off(name):
    data = load(name)
    env = data.get("env") or data.get("variables")
    assert {k: env[k] for k in ("ORT_DISABLE_TELEMETRY", "NNCF_CI", "OPENVINO_TELEMETRY_DISABLE")} == dict.fromkeys(
        ("ORT_DISABLE_TELEMETRY", "NNCF_CI", "OPENVINO_TELEMETRY_DISABLE"), "1"
    )
