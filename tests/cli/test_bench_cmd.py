import json
import os

import pytest
import torch

from edgekd.cli.main import main
from edgekd.models.example_teacher import ResidualCNN


def _onnx(tmp_path):
    path = tmp_path / "tiny.onnx"
    torch.onnx.export(ResidualCNN((8, 16), 1).eval(), (torch.randn(1, 1, 28, 28),), str(path), dynamo=False)
    return path


def test_bench_prints_percentiles_with_evidence(tmp_path, capsys):
    code = main(["bench", str(_onnx(tmp_path)), "--target", "x86-64-host", "--runs", "20", "--warmup", "2"])
    out = capsys.readouterr().out
    assert code == 0
    assert "p50" in out and "p90" in out and "p99" in out
    assert "[measured-host]" in out and "onnxruntime" in out and "20 runs" in out


def test_bench_json_and_a_note_when_the_target_is_not_this_machine(tmp_path, capsys):
    code = main(["bench", str(_onnx(tmp_path)), "--target", "cortex-a76", "--runs", "10", "--json"])
    captured = capsys.readouterr()
    figures = json.loads(captured.out)
    assert code == 0
    assert figures["stats"]["runs"] == 10 and figures["stats"]["p50_ms"] > 0
    assert figures["evidence"] == "measured-host" and figures["target"] == "cortex-a76"
    assert "not this machine" in captured.err


def _dynamic_batch_onnx(tmp_path):
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(ResidualCNN((8, 16), 1).eval(), (torch.randn(1, 1, 28, 28),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "batch"}})  # fmt: skip
    return path


def test_bench_local_options_calibration_input_pin_and_atomic_output(tmp_path, capsys):
    cpu = min(os.sched_getaffinity(0))
    out = tmp_path / "out" / "bench.json"
    args = ["bench", str(_dynamic_batch_onnx(tmp_path)), "--runs", "8", "--warmup", "1", "--batch", "4", "--pin",
            str(cpu), "--input", "calibration", "--min-seconds", "0.2", "--json", "--output", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads(out.read_text()) == printed
    assert [p.name for p in out.parent.iterdir()] == ["bench.json"]  # no temp file left beside it
    run = printed["run"]["extra"]
    assert run["affinity"] == [cpu] and run["input_source"] == "npy" and run["input_shapes"]["x"] == [4, 1, 28, 28]
    assert printed["batch"] == 4 and printed["runner"] == "local" and printed["evidence"] == "measured-host"
    assert run["wall_s"] >= 0.2 and printed["stats"]["runs"] >= 8
    assert set(printed) >= {"stats", "evidence", "runtime", "threads", "target", "unstable", "max_cv", "attempt_cvs"}


def test_bench_runner_profile_uses_the_profiles_runner_kind(tmp_path, capsys):
    # x86-64-host names the local runner; cortex-a76 names ssh, which then needs a host.
    assert main(["bench", str(_onnx(tmp_path)), "--runner", "profile", "--runs", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runner"] == "local"
    assert main(["bench", str(_onnx(tmp_path)), "-t", "cortex-a76", "--runner", "profile"]) == 2
    assert "the ssh runner needs a board: pass --host" in capsys.readouterr().err


def test_bench_bad_options_are_exit_2_one_line(tmp_path, capsys):
    model = str(_onnx(tmp_path))
    cases = [
        (["--host", "pi5"], "--host does not apply to the local runner"),
        (["--pin", "a,b"], "--pin takes CPU ids"),
        (["--input", str(tmp_path / "missing.npy")], "not 'random', 'calibration' or an existing .npy file"),
        (["--runner", "nope"], "unknown runner 'nope'; known: "),
        (["--batch", "0"], "--batch must be > 0"),
        (["--repeats", "-1"], "--repeats must be >= 0"),
    ]
    for extra, message in cases:
        assert main(["bench", model, "--runs", "3", *extra]) == 2, extra
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (extra, err)


def test_bench_flags_an_unstable_run_after_repeating_it(tmp_path, capsys):
    # No real run has a CV below 1e-9, so the run is repeated once and then flagged (exit 0: figures exist).
    code = main(["bench", str(_onnx(tmp_path)), "--runs", "10", "--max-cv", "1e-9", "--repeats", "1", "--json"])
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert code == 0 and printed["unstable"] is True and len(printed["attempt_cvs"]) == 2
    assert printed["stats"]["cv"] == min(printed["attempt_cvs"])
    assert "unstable: cv" in captured.err


def test_bench_energy_is_labelled_measured_with_a_sensor_else_estimated(tmp_path, capsys, monkeypatch):
    from edgekd.config.targets import load_target

    model = _onnx(tmp_path)
    monkeypatch.setenv("EDGEKD_POWERCAP_ROOT", str(tmp_path / "none"))
    monkeypatch.setenv("EDGEKD_HWMON_ROOT", str(tmp_path / "none"))
    monkeypatch.setenv("EDGEKD_BATTERY_ROOT", str(tmp_path / "none"))
    assert main(["bench", str(model), "--target", "cortex-a76", "--runs", "10", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    energy, p50 = figures["energy"], figures["stats"]["p50_ms"]
    power = load_target("cortex-a76").power
    assert energy["evidence"] == "estimated" and energy["method"].startswith("power-model")
    assert energy["mj_per_inference"] == pytest.approx((power.idle_w + power.active_w_per_core) * p50, rel=1e-6)

    (tmp_path / "hw" / "hwmon0").mkdir(parents=True)
    (tmp_path / "hw" / "hwmon0" / "power1_input").write_text("4000000\n")
    monkeypatch.setenv("EDGEKD_HWMON_ROOT", str(tmp_path / "hw"))
    assert main(["bench", str(model), "--target", "cortex-a76", "--runs", "10"]) == 0
    out = capsys.readouterr().out
    assert "mJ/inference [measured: hwmon power sampling" in out
