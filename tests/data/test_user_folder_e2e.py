"""A user's own photo folder (mixed sizes, formats and modes) and 3-channel teacher, end to end."""

import json

import numpy as np
import pytest
import torch

from edgekd.cli.main import main
from edgekd.models.example_teacher import ResidualCNN
from tests.data.image_factory import write_folder, write_image


def rgb_teacher() -> ResidualCNN:
    """The user's factory: a 3-channel, 3-class network."""
    return ResidualCNN((8, 16), blocks_per_stage=1, in_channels=3, num_classes=3)


def _teacher_weights(path):
    torch.manual_seed(0)
    torch.save(rgb_teacher().state_dict(), path)
    return path


def _distill(tmp_path, data, *extra):
    out = tmp_path / "out"
    code = main(["distill", "--ratio", "0.5", "--teacher", "tests.data.test_user_folder_e2e:rgb_teacher",
                 "--teacher-weights", str(_teacher_weights(tmp_path / "t.pt")), "--data", str(data),
                 "--input-size", "32", "--preprocess", "imagenet", "--epochs", "1", "--out", str(out),
                 "--no-progress", *extra])  # fmt: skip
    assert code == 0
    return out, json.loads((out / "distill.json").read_text())


def test_distill_from_a_mixed_photo_folder_with_declared_preprocessing(tmp_path):
    folder = write_folder(tmp_path / "photos", classes=3, per_class=12)
    out, record = _distill(tmp_path, folder)
    assert (out / "student.pt").is_file() and 0.0 <= record["test_accuracy"] <= 1.0
    pre = record["dataset"]["preprocess"]
    assert pre["input_size"] == [32, 32] and pre["channels"] == 3 and pre["preset"] == "imagenet"
    assert pre["mean"] == [0.485, 0.456, 0.406] and pre["crop_fraction"] == 0.875
    assert record["dataset"]["carved"]["images"] == {"val": 3, "test": 3}  # stated, for the report
    assert record["labeled_images"] == 30 and record["unlabeled_images"] == 0 and record["device"] == "cpu"


def test_distill_with_unlabeled_images_and_a_transfer_folder(tmp_path):
    folder = write_folder(tmp_path / "photos", classes=3, per_class=12, unlabeled=6)
    transfer = tmp_path / "transfer"
    transfer.mkdir()
    for i in range(4):
        write_image(transfer / f"x{i}.webp", "RGB", (60, 45), np.array([120.0, 60.0, 200.0]), np.random.default_rng(i))
    _, record = _distill(tmp_path, folder, "--transfer", str(transfer), "--max-train-samples", "9")
    assert record["labeled_images"] == 9 and record["unlabeled_images"] == 10
    assert record["dataset"]["unlabeled"] == 10 and record["dataset"]["transfer"] == str(transfer)


@pytest.mark.slow
def test_build_from_a_photo_folder_records_preprocessing_in_report_and_sidecars(tmp_path, monkeypatch):
    folder = write_folder(tmp_path / "photos", classes=3, per_class=12, unlabeled=3)
    weights = _teacher_weights(tmp_path / "t.pt")
    monkeypatch.chdir(tmp_path)
    code = main(["build", "--target", "x86-64-host", "--budget-ms", "1000", "--teacher",
                 "tests.data.test_user_folder_e2e:rgb_teacher", "--teacher-weights", str(weights), "--data",
                 str(folder), "--input-size", "32", "--preprocess", "tf", "--out", "out", "--epochs", "1",
                 "--runs", "3", "--arm-parity-samples", "0", "--no-progress"])  # fmt: skip
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert code in (0, 1)  # the gate may fail a random teacher; the data path is what is checked
    assert report["preprocess"]["mean"] == [0.5, 0.5, 0.5] and report["preprocess"]["input_size"] == [32, 32]
    assert report["dataset"]["labeled"] == 30 and report["dataset"]["unlabeled"] == 3
    sidecars = list((tmp_path / "out").rglob("*.sidecar.json"))
    assert sidecars
    for path in sidecars:
        assert json.loads(path.read_text())["preprocessing"]["preset"] == "tf"
