"""report.html: every plot present, summary first, no external assets; report.md and the summary line."""

import json
import re

import pytest

from edgekd.report.html_renderer import render_html
from edgekd.report.markdown_renderer import render_markdown, summary_line
from edgekd.report.plots import PLOT_IDS
from edgekd.report.writer import write_report
from tests.report.report_fixture import base_report, validated_report

SWEEP = {
    "points": [
        {"ratio": 0.2, "params": 8000, "macs": 1, "predicted_ms": 40.0, "measured_ms": None, "accuracy": 0.9,
         "pareto": True},
        {"ratio": 0.5, "params": 5000, "macs": 1, "predicted_ms": 25.0, "measured_ms": None, "accuracy": 0.88,
         "pareto": True},
        {"ratio": 0.55, "params": 4800, "macs": 1, "predicted_ms": 24.0, "measured_ms": None, "accuracy": 0.7,
         "pareto": False},
    ],
    "cliff": None,
}  # fmt: skip
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//|file:)""", re.IGNORECASE)


def figures(page: str) -> dict[str, str]:
    return dict(re.findall(r'<figure class="plot" id="([\w-]+)">(.*?)</figure>', page, re.DOTALL))


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(validated_report())


def test_every_plot_is_an_inline_svg(page):
    figs = figures(page)
    assert list(figs) == list(PLOT_IDS)
    for plot_id, body in figs.items():
        assert body.count("<svg") == 1 and "</svg>" in body, plot_id
        assert "<image" not in body, plot_id


def test_page_has_no_external_assets(page):
    assert not EXTERNAL.search(page)
    assert "<link" not in page and "@import" not in page and "<img" not in page
    # the SVG's internal references (clip paths, markers) point inside the page
    assert all(ref.startswith("#") for ref in re.findall(r'href="([^"]*)"', page))
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", page))


def test_summary_comes_first_and_counts_warnings():
    report = validated_report(collapse=True)
    page = render_html(report)
    n = len(report["validation"]["warnings"])
    assert n >= 2  # slice flags + the collapse finding
    summary = re.search(r"<p class=summary id=summary>(.*?)</p>", page).group(1)
    assert summary.endswith(f"{n} warnings")
    assert page.index("id=summary") < page.index("<h2>")
    assert "minority-slice-collapse" in page and "class-balanced" in page  # finding and its fix


def test_plot_svg_ids_do_not_collide(page):
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_sweep_plot_uses_the_prune_sweep_when_present(page):
    assert "no pruning sweep" in figures(page)["plot-sweep"]
    with_sweep = figures(render_html(validated_report(prune_sweep=SWEEP)))["plot-sweep"]
    assert "Pareto" in with_sweep and "no pruning sweep" not in with_sweep


def test_corruption_plot_and_table_show_teacher_and_student(page):
    assert "teacher (mean of severities)" in figures(page)["plot-corruptions"]
    assert "<h3>Corruption suite</h3>" in page and "student drop, pt" in page


def test_report_without_validation_still_draws_every_plot():
    report = base_report()
    page = render_html(report)
    figs = figures(page)
    assert list(figs) == list(PLOT_IDS)
    assert "validation did not run" in figs["plot-cascade"]
    assert "warning" not in summary_line(report)


def test_summary_line_reads_like_a_headline():
    line = summary_line(validated_report())
    assert line.startswith("fits cortex-a76 at 24.1 ms p90 (predicted; host-measured 2.30 ms)")
    assert "-2.0 pt accuracy" in line and "10.0x fewer parameters" in line and "8.0x smaller deployed" in line
    assert re.search(r"; \d+ warnings?$", line)


def test_writer_writes_json_markdown_and_html(tmp_path):
    report = validated_report(tmp_path)
    path = write_report(report, tmp_path)
    assert json.loads(path.read_text())["validation"]["temperature"] == report["student"]["temperature"]
    md = (tmp_path / "report.md").read_text()
    assert "## Validation" in md and "### Cascade" in md and "| blur |" in md
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert not list(tmp_path.glob(".*tmp"))


def _with_deployment_facts(report: dict) -> dict:
    report["student"]["energy"] = [{"mj": 31.5, "evidence": "predicted", "basis": "estimated",
                                    "method": "power-model: (2.7 W idle + 1.2 W/core x 1) x p50",
                                    "precision": "int8", "threads": 1}]  # fmt: skip
    report["int8_vs_fp32"] = [{"format": "onnx", "runtime": "onnxruntime", "fp32_ms": 2.0, "int8_ms": 2.2,
                               "speedup": 0.909, "int8_faster": False,
                               "note": "int8 is not faster than fp32 in onnx here (0.91x): no VNNI"}]  # fmt: skip
    report["validation"]["energy_breakeven"] = {
        "distill_seconds": 300.0, "host_power_w": 7.0, "distill_energy_j": 2100.0, "saved_mj_per_inference": 21.0,
        "inferences": 100000, "host_profile": "x86-64-host", "per_inference_evidence": {"student": "predicted"},
    }  # fmt: skip
    art = report["artifacts"][0]
    art["arm_parity"] = {
        "status": "checked",
        "agreement": 0.995,
        "samples": 200,
        "qemu_cpu": "cortex-a76",
        "accuracy": 0.88,
        "max_abs_diff": 0.0,
        "runtime": "ai-edge-litert 2.3.0",
        "xnnpack": True,
    }
    return report


def test_deployment_section_labels_every_figure():
    report = _with_deployment_facts(validated_report())
    page = render_html(report)
    deployment = page.split("<h2>Deployment</h2>", 1)[1].split("<h2>", 1)[0]
    assert "99.50 % on 200 images (cortex-a76, measured-emulated)" in deployment
    assert "int8 is not faster than fp32 in onnx here" in deployment
    assert "power-model: (2.7 W idle + 1.2 W/core x 1) x p50" in deployment and "estimated" in deployment
    for entry in report["student"]["latency"]:
        assert entry["evidence"] in deployment
    assert "breaks even after 100,000 inferences" in deployment
    md = render_markdown(report)
    assert "Arm parity" in md and "int8 is not faster" in md and "power-model" in md
