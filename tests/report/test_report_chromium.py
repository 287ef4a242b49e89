"""The bundled example built end to end (reduced training): validation in report.json, and report.html
rendered by headless Chromium with every plot, no console message, and a screenshot kept as a test artifact."""

import json
import re
import subprocess
from pathlib import Path

import pytest

from edgekd.cli.main import main
from edgekd.report.plots import PLOT_IDS
from edgekd.validate.corruptions import CORRUPTIONS, SEVERITIES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = ROOT / "test-artifacts" / "report-html"  # gitignored
REDUCED = ["--max-train-samples", "1024", "--epochs", "1", "--parity-samples", "300", "--runs", "15",
           "--arm-parity-samples", "0", "--no-progress"]  # fmt: skip
CHROMIUM = ["chromium", "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0"]  # fmt: skip
CONSOLE = re.compile(r":CONSOLE(?::\d+)?\]\s*(.*)")


def chromium(*args: str) -> tuple[str, list[str]]:
    """Run headless Chromium; return stdout and the page's console messages."""
    proc = subprocess.run([*CHROMIUM, *args], capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [m.group(1) for m in CONSOLE.finditer(proc.stderr)]


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "cortex-a76"
    code = main(["build", "--target", "cortex-a76", "--budget-ms", "15", "--out", str(out), *REDUCED])
    assert code in (0, 1)
    return out, json.loads((out / "report.json").read_text())


def test_console_capture_sees_page_errors(tmp_path):
    # the check below is only worth something if a broken page is caught
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>throw new Error('boom')</script></body></html>")
    _, console = chromium("--dump-dom", page.as_uri())
    assert any("boom" in m for m in console)


def test_report_html_renders_every_plot_without_console_errors(build):
    out, report = build
    page = out / "report.html"
    dom, console = chromium("--dump-dom", page.as_uri())
    assert console == []
    # set by the page's own script once the DOM is loaded: every figure holds its SVG
    assert f'data-plots="{len(PLOT_IDS)}/{len(PLOT_IDS)}"' in dom
    for plot_id in PLOT_IDS:
        assert re.search(rf'<figure class="plot" id="{plot_id}">.*?<svg', dom, re.DOTALL), plot_id
    assert report["summary"] in dom.replace("&gt;", ">").replace("&amp;", "&")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOT_DIR / "report-cortex-a76.png"
    shot.unlink(missing_ok=True)
    _, console = chromium(f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri())
    assert console == []
    assert shot.stat().st_size > 50_000  # a blank page is a few kB
    print(f"screenshot: {shot}")


def test_validation_section_of_the_bundled_example(build):
    out, report = build
    v = report["validation"]
    classes = report["dataset"]["classes"]
    for who in ("teacher", "student"):
        assert list(report[who]["per_class_accuracy"]) == classes
        assert 0 <= report[who]["ece"] <= 1
    # temperature scaling lowers the validation ECE, and the temperature travels with every artifact
    ts = v["temperature_scaling"]["val"]
    assert ts["ece_after"] < ts["ece_before"]
    assert report["student"]["temperature"] == v["temperature"] == pytest.approx(ts["temperature"], abs=1e-4)
    for art in report["artifacts"]:
        sidecar = json.loads((out / f"{art['path']}.sidecar.json").read_text())
        assert sidecar["temperature"] == art["temperature"] == v["temperature"]
        row = next(r for r in v["artifacts"] if r["name"] == art["name"])
        assert row["accuracy"] == pytest.approx(art["parity"]["accuracy"], abs=1e-6)  # same images, same runtime
    # the corruption suite: teacher and student drops for every corruption and severity
    rows = v["corruptions"]["rows"]
    assert {(r["corruption"], r["severity"]) for r in rows} == {(c, s) for c in CORRUPTIONS for s in SEVERITIES}
    assert any(r["teacher_drop_points"] > 0 for r in rows) and any(r["student_drop_points"] > 0 for r in rows)
    md = (out / "report.md").read_text()
    assert "### Corruptions" in md and "teacher drop, pt" in md
    # failure modes, DS and cascade are reported with their inputs
    assert {f["name"] for f in v["failure_modes"]} == {"capacity-cliff", "minority-slice-collapse",
                                                       "overconfident-student"}  # fmt: skip
    assert v["distillation_score"]["policy"] == "edge" and v["distillation_score"]["inputs"]["teacher_size"] > 0
    assert v["cascade"]["teacher_ms_evidence"].startswith("measured-host")
    assert report["summary"].endswith(f"{len(v['warnings'])} warning" + ("" if len(v["warnings"]) == 1 else "s"))
    assert report["timings_s"]["validate"] > 0
    print(f"stage times (s): {report['timings_s']}")
