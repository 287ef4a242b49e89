"""The CI templates' baseline-fetch steps, run as written against stand-ins for the CI services.

GitHub: the step's shell runs with a fake ``gh`` on PATH that answers ``run list`` and ``run download`` the
way the documented CLI does (ids from ``--jq``; files of the named artifact into ``--dir``). GitLab: the
step's shell runs ``curl`` against a local HTTP server that serves the job-artifacts API path
(``/projects/:id/jobs/artifacts/:ref/raw/:path?job=:name``) and checks the ``JOB-TOKEN`` header.
Neither service is reachable here: these tests check the steps' shell, paths, quoting and failure
handling, not the services themselves.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
REPORT = {"schema_version": "fake-baseline", "target": "cortex-a76"}


def _github_step() -> str:
    with open(ROOT / "ci" / "github-actions.yml", encoding="utf-8") as f:
        steps = yaml.safe_load(f)["jobs"]["build-and-gate"]["steps"]
    (step,) = [s for s in steps if s.get("name", "").startswith("Baseline")]
    return step["run"]


def _gitlab_fetch() -> str:
    with open(ROOT / "ci" / "gitlab-ci.yml", encoding="utf-8") as f:
        script = yaml.safe_load(f)["build-and-gate"]["script"]
    (block,) = [s for s in script if "jobs/artifacts" in s]
    return block


FAKE_GH = """#!/bin/sh
# fake gh: logs its arguments; `run list` prints $FAKE_RUN_ID (the --jq result), `run download` writes report.json
echo "$*" >> "$FAKE_GH_LOG"
if [ "$1 $2" = "run list" ]; then [ -n "$FAKE_RUN_ID" ] && echo "$FAKE_RUN_ID"; exit 0; fi
if [ "$1 $2" = "run download" ]; then
  [ "$FAKE_HAS_ARTIFACT" = 1 ] || { echo "no artifact matches" >&2; exit 1; }
  while [ $# -gt 0 ]; do [ "$1" = "--dir" ] && dir="$2"; shift; done
  mkdir -p "$dir" && printf '%s' "$FAKE_REPORT" > "$dir/report.json"; exit 0
fi
exit 2
"""


def _run_github(tmp_path: Path, run_id: str, has_artifact: bool) -> tuple[subprocess.CompletedProcess, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    log = tmp_path / "gh.log"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_GH_LOG": str(log),
           "FAKE_RUN_ID": run_id, "FAKE_HAS_ARTIFACT": "1" if has_artifact else "0",
           "FAKE_REPORT": json.dumps(REPORT), "TARGET": "cortex-a76", "BASE": "main",
           "GITHUB_WORKFLOW": "edgekd build and gate"}  # fmt: skip
    proc = subprocess.run(["bash", "-e", "-c", _github_step()], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    return proc, log.read_text() if log.exists() else ""


def test_github_step_downloads_the_base_branch_report(tmp_path):
    proc, log = _run_github(tmp_path, run_id="4242", has_artifact=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "baseline" / "cortex-a76" / "report.json").read_text()) == REPORT
    listed, downloaded = log.splitlines()
    assert "--workflow edgekd build and gate --branch main --status success" in listed
    assert downloaded == "run download 4242 --name edgekd-report-cortex-a76 --dir baseline/cortex-a76"


@pytest.mark.parametrize(("run_id", "has_artifact", "said"), [
    ("", False, "no successful main run yet"),
    ("4242", False, "no baseline report for cortex-a76 in run 4242"),
])  # fmt: skip
def test_github_step_without_a_baseline_goes_on_without_one(tmp_path, run_id, has_artifact, said):
    proc, _ = _run_github(tmp_path, run_id=run_id, has_artifact=has_artifact)
    assert proc.returncode == 0, proc.stderr
    assert said in proc.stdout
    assert not (tmp_path / "baseline" / "cortex-a76" / "report.json").exists()


class _ArtifactsApi(http.server.BaseHTTPRequestHandler):
    """``GET /api/v4/projects/7/jobs/artifacts/main/raw/<path>?job=<name>`` with the right token."""

    seen: ClassVar[list[tuple[str, str | None]]] = []
    available: ClassVar[dict[tuple[str, str], bytes]] = {}

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        job = urllib.parse.parse_qs(url.query).get("job", [""])[0]
        self.seen.append((self.path, self.headers.get("JOB-TOKEN")))
        prefix = "/api/v4/projects/7/jobs/artifacts/main/raw/"
        body = self.available.get((url.path.removeprefix(prefix), job)) if url.path.startswith(prefix) else None
        if self.headers.get("JOB-TOKEN") != "secret-token":
            self.send_response(401)
            body = None
        else:
            self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body if body is not None else b'{"message":"404 Not Found"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gitlab_api() -> Iterator[tuple[str, type[_ArtifactsApi]]]:
    handler = type("Api", (_ArtifactsApi,), {"seen": [], "available": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v4", handler
    finally:
        server.shutdown()
        server.server_close()


def _run_gitlab(tmp_path: Path, api: str, ref: str = "feature") -> subprocess.CompletedProcess:
    env = {**os.environ, "CI_API_V4_URL": api, "CI_PROJECT_ID": "7", "CI_DEFAULT_BRANCH": "main",
           "CI_COMMIT_REF_NAME": ref, "CI_JOB_NAME": "build-and-gate: [cortex-a76]", "CI_JOB_TOKEN": "secret-token",
           "TARGET": "cortex-a76", "OUT": "edgekd-out"}  # fmt: skip
    return subprocess.run(["bash", "-e", "-c", _gitlab_fetch()], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def test_gitlab_step_fetches_this_jobs_report_from_the_default_branch(tmp_path, gitlab_api):
    api, handler = gitlab_api
    handler.available[("edgekd-out/report.json", "build-and-gate: [cortex-a76]")] = json.dumps(REPORT).encode()
    proc = _run_gitlab(tmp_path, api)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "baseline" / "cortex-a76" / "report.json").read_text()) == REPORT
    ((path, token),) = handler.seen
    assert token == "secret-token"
    assert "job=build-and-gate%3A%20%5Bcortex-a76%5D" in path  # the matrix job name, URL-quoted


def test_gitlab_step_without_a_baseline_leaves_no_file(tmp_path, gitlab_api):
    api, _ = gitlab_api  # nothing available: 404
    proc = _run_gitlab(tmp_path, api)
    assert proc.returncode == 0, proc.stderr
    assert "no baseline report for cortex-a76" in proc.stdout
    assert not (tmp_path / "baseline" / "cortex-a76" / "report.json").exists()


def test_gitlab_step_on_the_default_branch_fetches_nothing(tmp_path, gitlab_api):
    api, handler = gitlab_api
    proc = _run_gitlab(tmp_path, api, ref="main")
    assert proc.returncode == 0, proc.stderr
    assert handler.seen == [] and not (tmp_path / "baseline").exists()
