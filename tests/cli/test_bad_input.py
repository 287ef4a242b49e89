"""Every bad input: one line on stderr, exit 2 (1 for an unreachable budget), nothing written."""

from pathlib import Path

import numpy as np
import pytest

from edgekd.cli.main import main
from edgekd.config.targets import TARGETS_DIR
from edgekd.models.example_weights import TEACHER_CHECKPOINT


def run(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err.strip()
    return code, err


def assert_one_line_error(err: str) -> None:
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert "Traceback" not in err


def test_unknown_target_lists_known_ones(capsys, tmp_path):
    code, err = run(capsys, "build", "--target", "cortex-a67", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "cortex-a76" in err and "x86-64-host" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("budget", ["0", "-5"])
def test_budget_must_be_positive(capsys, tmp_path, budget):
    code, err = run(capsys, "build", "--budget-ms", budget, "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "budget" in err and "greater than 0" in err
    assert not (tmp_path / "o").exists()


def test_teacher_file_that_is_not_a_checkpoint(capsys, tmp_path):
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"\x00not a checkpoint" * 10)
    code, err = run(capsys, "build", "--teacher-weights", str(bad), "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "not a PyTorch checkpoint" in err
    assert not (tmp_path / "o").exists()


def test_factory_that_does_not_exist(capsys, tmp_path):
    code, err = run(capsys, "build", "--teacher", "no_such_module:make", "--teacher-weights",
                    str(TEACHER_CHECKPOINT), "--out", str(tmp_path / "o"))  # fmt: skip
    assert code == 2
    assert_one_line_error(err)
    assert "no_such_module:make" in err and "does not exist" in err
    assert not (tmp_path / "o").exists()


def test_dataset_whose_shape_does_not_match_the_model(capsys, tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"x_{split}"] = rng.integers(0, 255, (20, 3, 32, 32), dtype=np.uint8)
        arrays[f"y_{split}"] = rng.integers(0, 10, 20)
    np.savez(tmp_path / "rgb.npz", **arrays)
    code, err = run(capsys, "build", "--data", str(tmp_path / "rgb.npz"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "(3, 32, 32) do not fit the teacher" in err
    assert not (tmp_path / "o").exists()


def test_profile_with_a_misspelled_key(capsys, tmp_path):
    text = (TARGETS_DIR / "cortex-a76.yaml").read_text().replace("\nbudget:", "\nbudjet:")
    profile = tmp_path / "cortex-a76.yaml"
    profile.write_text(text)
    code, err = run(capsys, "build", "--target", str(profile), "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert str(profile) in err and "'budjet'" in err and "allowed keys" in err
    assert not (tmp_path / "o").exists()


def test_unknown_option_is_one_line_exit_2(capsys):
    code, err = run(capsys, "build", "--budjet-ms", "3")
    assert code == 2
    assert_one_line_error(err)


def test_budget_no_ratio_can_meet_exits_1_with_nearest(capsys, tmp_path):
    code, err = run(capsys, "build", "--budget-ms", "0.05", "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 1
    assert_one_line_error(err)
    assert "nearest achievable is" in err
    nearest = float(err.split("nearest achievable is ")[1].split(" ms")[0])
    assert nearest > 0.05


def test_bench_missing_model_file(capsys, tmp_path):
    code, err = run(capsys, "bench", str(tmp_path / "nope.onnx"), "--target", "x86-64-host")
    assert code == 2
    assert_one_line_error(err)


def test_bench_corrupt_model_file(capsys, tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"garbage" * 100)
    code, err = run(capsys, "bench", str(bad), "--target", "x86-64-host")
    assert code == 2
    assert_one_line_error(err)


def test_help_on_every_command_has_an_example(capsys):
    for cmd in (
        ["build"],
        ["targets"],
        ["targets", "list"],
        ["targets", "show"],
        ["bench"],
        ["example"],
        ["gate"],
        ["export"],
    ):
        assert main([*cmd, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Example" in out, cmd


def test_targets_list_and_show(capsys):
    assert main(["targets", "list"]) == 0
    out = capsys.readouterr().out
    for name in (
        "cortex-a76",
        "cortex-a72",
        "cortex-a53",
        "x86-64-host",
        "intel-cpu-openvino",
        "android-arm64",
    ):
        assert name in out
    assert "30 ms" in out
    assert main(["targets", "show", "cortex-a76"]) == 0
    assert "latency_ms: 30" in capsys.readouterr().out
    assert Path(TARGETS_DIR).is_dir()


def test_config_file_with_unknown_key_names_the_file(capsys, tmp_path):
    cfg = tmp_path / "build.yaml"
    cfg.write_text("target: x86-64-host\ndistill:\n  epochs: 1\n  temprature: 2\n")
    code, err = run(capsys, "build", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert str(cfg) in err and "'distill.temprature'" in err and "temperature" in err
    assert not (tmp_path / "o").exists()


def test_config_file_values_are_used_and_options_override_them(capsys, tmp_path):
    cfg = tmp_path / "build.yaml"
    cfg.write_text("target: cortex-a67\n")
    code, err = run(capsys, "build", "--config", str(cfg), "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown target 'cortex-a67'" in err  # the file's target was read
    code, err = run(capsys, "build", "--config", str(cfg), "--target", "nope", "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown target 'nope'" in err  # the option wins


def test_calibrate_latency_needs_a_reachable_device(capsys):
    code, err = run(capsys, "calibrate-latency", "--target", "cortex-a76")
    assert code == 3
    assert_one_line_error(err)
    assert "no runner reaches a cortex-a76 device" in err


@pytest.mark.parametrize("budget", ["inf", "nan", "-inf"])
def test_budget_must_be_finite(capsys, tmp_path, budget):
    code, err = run(capsys, "build", "--budget-ms", budget, "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "budget_ms" in err and ("finite" in err or "greater than 0" in err)
    assert not (tmp_path / "o").exists()


def test_unknown_loss_is_refused_before_any_stage(capsys, tmp_path):
    cfg = tmp_path / "build.yaml"
    cfg.write_text("distill:\n  losses: {kd: 1, telepathy: 0.5}\n")
    code, err = run(capsys, "build", "--config", str(cfg), "--out", str(tmp_path / "o"), "--no-progress")
    assert code == 2
    assert_one_line_error(err)
    assert "unknown loss 'telepathy'" in err and "kd" in err
    assert not (tmp_path / "o").exists()


def test_out_under_a_regular_file_is_refused_before_work(capsys, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("keep")
    code, err = run(capsys, "build", "--out", str(afile / "o"), "--no-progress")
    assert code == 2
    assert_one_line_error(err)
    assert "is under" in err and "a file" in err
    assert afile.read_text() == "keep"


def test_unexpected_exception_is_one_line_with_its_own_exit_code(capsys, monkeypatch):
    from edgekd.cli import targets_cmd

    def boom(*_a, **_k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("edgekd.config.targets.load_target", boom)
    assert targets_cmd is not None
    code, err = run(capsys, "targets", "show", "cortex-a76")
    assert code == 70
    assert_one_line_error(err)
    assert "internal error (ZeroDivisionError: a bug)" in err and "--debug" in err
