"""`edgekd distill`: the happy paths on tiny models and data, and every bad input as one line, exit 2."""

import json

import pytest
import torch

from edgekd.cli.main import main
from edgekd.models.loading import load_student, save_student
from tests.cli.distill_fixtures import tiny_five_classes, write_tiny_data, write_tiny_teacher

FACTORY = "tests.cli.distill_fixtures:tiny_teacher"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    return {"data": write_tiny_data(root / "d.npz"), "teacher": write_tiny_teacher(root / "t.pt")}


def base(tiny, out, *extra: str) -> list[str]:
    return ["distill", "--teacher", FACTORY, "--teacher-weights", str(tiny["teacher"]), "--data", str(tiny["data"]),
            "--out", str(out), "--no-progress", *extra]  # fmt: skip


def run(capsys, args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def assert_one_line_error(err: str) -> None:
    assert err.startswith("error: "), err
    assert "\n" not in err and "Traceback" not in err, err


def test_sweep_trains_every_point_records_them_and_keeps_the_best(capsys, tiny, tmp_path):
    out = tmp_path / "o"
    args = base(tiny, out, "--ratio", "0.5", "--loss", "kd=1", "--loss", "at=0.5", "--epochs", "1",
                "--sweep", "temperature=1,4", "--sweep", "alpha=0.3,0.7", "--lr", "5e-3")  # fmt: skip
    code, stdout, err = run(capsys, args)
    assert code == 0, err
    sweep = json.loads((out / "sweep.json").read_text())
    grid = {(p["values"]["temperature"], p["values"]["alpha"]) for p in sweep["points"]}
    assert grid == {(1.0, 0.3), (1.0, 0.7), (4.0, 0.3), (4.0, 0.7)}
    best = max(p["val_accuracy"] for p in sweep["points"])
    assert sweep["best"]["val_accuracy"] == best
    record = json.loads((out / "distill.json").read_text())
    assert (record["temperature"], record["alpha"]) == tuple(sweep["best"]["values"].values())
    assert record["losses"] == {"kd": 1.0, "at": 0.5}
    student = load_student(out / "student.pt", FACTORY)
    assert sum(p.numel() for p in student.parameters()) < sum(p.numel() for p in torch.load(
        tiny["teacher"], weights_only=True).values())  # fmt: skip
    assert "sweep: 4 points" in stdout
    assert not list(out.glob(".*.tmp"))


def test_assistant_chain_runs_two_stages_with_an_assistant_in_between(capsys, tiny, tmp_path):
    out = tmp_path / "o"
    code, _, err = run(capsys, base(tiny, out, "--ratio", "0.75", "--assistant", "auto", "--epochs", "1"))
    assert code == 0, err
    record = json.loads((out / "distill.json").read_text())
    ta = record["assistant"]
    assert ta["student_params"] < ta["params"] < ta["teacher_params"]
    assert ta["params"] == pytest.approx(ta["target_params"], rel=0.35)
    assert len(ta["history"]) == 1


def test_resume_continues_after_the_last_finished_epoch(capsys, tiny, tmp_path):
    out = tmp_path / "o"
    args = base(tiny, out, "--ratio", "0.5", "--epochs", "2", "--resume")
    assert run(capsys, args)[0] == 0
    first = json.loads((out / "distill.json").read_text())
    assert (out / "checkpoints" / "student" / "last.pt").is_file()
    assert run(capsys, args)[0] == 0  # everything done: resumes after epoch 2 and trains nothing
    again = json.loads((out / "distill.json").read_text())
    assert again["resumed_from_epoch"] == 2
    assert again["history"] == first["history"]
    code, _, err = run(capsys, base(tiny, out, "--ratio", "0.5", "--epochs", "3", "--resume", "--lr", "0.01"))
    assert code == 2
    assert_one_line_error(err)
    assert "other settings" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--temperature", "0"], "temperature"),
        (["--temperature", "-1"], "temperature"),
        (["--alpha", "1.5"], "alpha"),
        (["--alpha", "-0.1"], "alpha"),
        (["--sweep", "temperature=2,0"], "temperature"),
        (["--sweep", "alpha=0.5,2"], "alpha"),
        (["--loss", "kdd=1"], "unknown loss 'kdd'"),
        (["--sweep", "colour=1,2"], "cannot sweep 'colour'"),
        (["--assistant", "big"], "--assistant"),
    ],
)
def test_bad_hyper_parameters_are_one_line_errors(capsys, tiny, tmp_path, extra, expected):
    code, _, err = run(capsys, base(tiny, tmp_path / "o", "--ratio", "0.5", *extra))
    assert code == 2
    assert_one_line_error(err)
    assert expected in err
    assert not (tmp_path / "o").exists()


def test_unknown_layer_path_lists_close_matches(capsys, tiny, tmp_path):
    args = base(tiny, tmp_path / "o", "--ratio", "0.5", "--loss", "kd=1", "--loss", "hint=1",
                "--hint-layer", "stages.1:stage.1")  # fmt: skip
    code, _, err = run(capsys, args)
    assert code == 2
    assert_one_line_error(err)
    assert "unknown module path 'stage.1'" in err and "stages.1" in err
    assert not (tmp_path / "o").exists()


def test_student_with_other_classes_than_the_teacher(capsys, tiny, tmp_path):
    path = save_student(tiny_five_classes(), tmp_path / "five.pt", "tests.cli.distill_fixtures:tiny_five_classes")
    code, _, err = run(capsys, base(tiny, tmp_path / "o", "--student", str(path)))
    assert code == 2
    assert_one_line_error(err)
    # the file's factory is data only: a student built by another factory than --teacher is refused
    assert "tiny_five_classes" in err and "pass the factory that built it" in err
    assert not (tmp_path / "o").exists()


def test_student_and_ratio_are_exclusive(capsys, tiny, tmp_path):
    code, _, err = run(capsys, base(tiny, tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "--student" in err and "--ratio" in err
