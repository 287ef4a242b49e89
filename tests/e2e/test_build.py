"""One real end-to-end build of the bundled example in a reduced setting, asserting on report.json."""

import json
from pathlib import Path

import pytest

from edgekd.cli.main import main
from edgekd.core.hashing import sha256_file
from edgekd.models.example_weights import TEACHER_CARD

pytestmark = pytest.mark.slow

REDUCED = ["--max-train-samples", "1024", "--epochs", "1", "--parity-samples", "300", "--runs", "15",
           "--arm-parity-samples", "40", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("build") / "cortex-a76"
    code = main(["build", "--target", "cortex-a76", "--budget-ms", "15", "--out", str(out), *REDUCED])
    return code, out


def test_report_shows_a_student_that_fits_the_budget(build):
    code, out = build
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == "1.0"
    assert report["target"]["name"] == "cortex-a76" and report["budget_ms"] == 15
    teacher_pred = [
        e for e in report["teacher"]["latency"] if e["evidence"] == "predicted" and e["precision"] == "int8"
    ]
    student_pred = [
        e for e in report["student"]["latency"] if e["evidence"] == "predicted" and e["precision"] == "int8"
    ]
    assert teacher_pred[0]["ms"] > 15 >= student_pred[0]["ms"]  # the teacher does not fit: pruning is exercised
    for who in ("teacher", "student"):
        for key in ("params", "macs", "size_bytes", "accuracy", "latency"):
            assert key in report[who]
    assert report["student"]["params"] < report["teacher"]["params"]
    assert report["student"]["macs"] < report["teacher"]["macs"]
    hosts = [e for e in report["student"]["latency"] if e["evidence"] == "measured-host"]
    assert {e["stat"] for e in hosts} == {"p50", "p90", "p99"}
    assert all(e["ms"] > 0 and e["threads"] == 1 for e in hosts)
    # the gate's verdict is the exit code
    assert code == (0 if report["gate"]["passed"] else 1)
    latency_rule = next(r for r in report["gate"]["rules"] if r["name"] == "latency")
    assert latency_rule["passed"] and latency_rule["evidence"] == "predicted"


def test_teacher_accuracy_matches_its_model_card(build):
    _, out = build
    report = json.loads((out / "report.json").read_text())
    card = json.loads(TEACHER_CARD.read_text())
    assert report["teacher"]["accuracy"] == pytest.approx(card["test_accuracy"], abs=1e-9)


def test_every_profile_artifact_exists_with_its_hash_and_parity(build):
    _, out = build
    report = json.loads((out / "report.json").read_text())
    got = [(a["format"], a["precision"]) for a in report["artifacts"]]
    assert got == [("tflite", "int8"), ("onnx", "int8"), ("onnx", "fp32"), ("tflite", "fp32"),
                   ("executorch", "int8"), ("executorch", "fp32")]  # fmt: skip
    for art in report["artifacts"]:
        path = out / art["path"]
        assert path.exists() and sha256_file(path) == art["sha256"]
        parity = art["parity"]
        assert parity["samples"] == 300
        assert parity["agreement"] >= (0.97 if art["precision"] == "int8" else 0.99)
        assert 0 <= parity["max_abs_diff"] < (1e-3 if art["precision"] == "fp32" else 5.0)
    assert (out / "report.md").read_text().startswith("# edgekd deployment report: cortex-a76")


def test_unchanged_rerun_does_no_work(build):
    _, out = build
    first = json.loads((out / "report.json").read_text())
    # what a kill -9 mid-stage leaves behind: a stage's temp folder, a half-copied artifact, a temp report
    leftovers = [out / ".stages" / ".distill-k2j4x9ab", out / "artifacts" / ".student.pt.tmp",
                 out / ".report.json.ab12cd34.tmp"]  # fmt: skip
    leftovers[0].mkdir()
    (leftovers[0] / "student.pt").write_bytes(b"half")
    leftovers[1].write_bytes(b"half")
    leftovers[2].write_text("{")
    code = main(["build", "--target", "cortex-a76", "--budget-ms", "15", "--out", str(out), *REDUCED])
    second = json.loads((out / "report.json").read_text())
    assert not any(p.exists() for p in leftovers)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or (p.parent.name == ".stages"
                and p.name.startswith("."))]  # fmt: skip
    assert second["lineage"]["computed"] == []
    assert second["stages"] and all(s["status"] == "reused" for s in second["stages"])
    # each reused stage reports the time it took when first computed (a reused distill needs no teacher logits)
    original = {s["name"]: s["seconds"] for s in first["stages"] if s["status"] == "computed"}
    resumed = {s["name"]: s["computed_seconds"] for s in second["stages"]}
    assert {"prune", "distill"} <= resumed.keys() and all(resumed[n] == original[n] for n in resumed)
    assert set(second["lineage"]["cache_hits"]) >= {"prune", "distill", "bench"}
    assert second["student"]["accuracy"] == first["student"]["accuracy"]
    assert [a["sha256"] for a in second["artifacts"]] == [a["sha256"] for a in first["artifacts"]]
    assert code == (0 if second["gate"]["passed"] else 1)


def test_interrupted_stage_leaves_no_cache_entry(build):
    _, out = build
    leftovers = [p for p in (out / ".stages").iterdir() if p.name.startswith(".")]
    assert leftovers == []
    assert all((p / "_complete.json").exists() for p in (out / ".stages").iterdir())
    assert Path(out / "artifacts" / "student.pt").exists()


def test_int8_tflite_also_runs_on_emulated_arm_kernels(build):
    """`make test` sets the emulator up, so the Arm parity check runs here (40 images)."""
    _, out = build
    report = json.loads((out / "report.json").read_text())
    arms = {a["name"]: a.get("arm_parity") for a in report["artifacts"]}
    arm = arms["student-tflite-int8.tflite"]
    assert arm["status"] == "checked" and arm["samples"] == 40
    assert arm["evidence"] == "measured-emulated" and arm["qemu_cpu"] == "cortex-a76" and arm["xnnpack"]
    assert arm["agreement"] >= 0.97
    assert arms["student-tflite-fp32.tflite"] is None and arms["student-onnx-int8.onnx"] is None
    rule = next(r for r in report["gate"]["rules"] if r["name"] == "parity-arm:student-tflite-int8.tflite")
    assert rule["evidence"] == "measured-emulated" and rule["value"] == arm["agreement"]
    assert "Arm parity" in (out / "report.md").read_text()


def test_int8_vs_fp32_latency_is_compared_per_runtime_with_a_reason(build):
    _, out = build
    report = json.loads((out / "report.json").read_text())
    rows = {r["format"]: r for r in report["int8_vs_fp32"]}
    assert set(rows) == {"onnx", "tflite", "executorch"}
    for fmt, row in rows.items():
        arts = {a["precision"]: a for a in report["artifacts"] if a["format"] == fmt}
        assert row["fp32_ms"] == pytest.approx(arts["fp32"]["bench"]["stats"]["p50_ms"], rel=1e-3)
        assert row["int8_ms"] == pytest.approx(arts["int8"]["bench"]["stats"]["p50_ms"], rel=1e-3)
        assert row["speedup"] == pytest.approx(row["fp32_ms"] / row["int8_ms"], rel=1e-2)
        assert ("is not faster" in row["note"]) == (not row["int8_faster"])
    assert "int8 vs fp32 on this host" in (out / "report.md").read_text()


def test_energy_entries_and_breakeven_are_in_the_report(build):
    _, out = build
    report = json.loads((out / "report.json").read_text())
    for who in ("teacher", "student"):
        entries = report[who]["energy"]
        assert entries and all(e["mj"] > 0 and e["basis"] in {"measured", "estimated"} and e["method"] for e in entries)
    be = report["validation"]["energy_breakeven"]
    assert be["distill_seconds"] == report["student"]["distill"]["seconds"]
    assert be["precision"] == "int8" and be["host_profile"] == "x86-64-host"
    assert be["inferences"] is None or be["inferences"] * be["saved_mj_per_inference"] >= 1000 * be["distill_energy_j"]
    assert "Energy break-even" in (out / "report.md").read_text()


def test_report_validates_against_the_committed_schema_and_the_model(build):
    import jsonschema

    from edgekd.report.build_report import SCHEMA_PATH
    from edgekd.report.report_data import load_report

    _, out = build
    report = json.loads((out / "report.json").read_text())
    jsonschema.validate(report, json.loads(SCHEMA_PATH.read_text()))
    assert load_report(out / "report.json") == report  # the model keeps every field the build wrote
