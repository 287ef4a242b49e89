"""Device selection (no GPU here: the CUDA path is selected by injected probes, not run) and KD augmentation."""

import numpy as np
import pytest
import torch

from edgekd.config.build_config import AugmentConfig
from edgekd.core.device import resolve_device
from edgekd.core.errors import ConfigError
from edgekd.data.datasets import DatasetBundle, Split
from edgekd.distill.augment import augment
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_teacher import ResidualCNN


def test_cpu_is_the_default_and_auto_falls_back_to_it():
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto", cuda_available=lambda: False) == torch.device("cpu")


def test_auto_and_cuda_pick_cuda_when_torch_sees_it():
    assert resolve_device("auto", cuda_available=lambda: True) == torch.device("cuda")
    assert resolve_device("cuda:1", lambda: True, lambda: 2) == torch.device("cuda", 1)


@pytest.mark.parametrize(("spec", "available", "count", "match"), [
    ("cuda", False, 0, "no CUDA device"), ("cuda:3", True, 2, "sees 2"), ("tpu", True, 1, "not one of"),
])  # fmt: skip
def test_bad_device_requests_are_one_line_config_errors(spec, available, count, match):
    with pytest.raises(ConfigError, match=match) as info:
        resolve_device(spec, lambda: available, lambda: count)
    assert "\n" not in str(info.value)


def test_this_machine_really_resolves_auto_to_what_torch_reports():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want


def test_augmentations_change_the_batch_are_seeded_and_keep_shape():
    x = torch.randn(8, 3, 16, 16)
    y = torch.arange(8)
    cfg = AugmentConfig(flip=True, random_resized_crop=0.5, color_jitter=0.2, mixup=0.4, cutmix=0.4)
    torch.manual_seed(0)  # the mixup/cutmix share is drawn from torch's global generator (seeded by the trainer)
    a, ya = augment(x, y, cfg, torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    b, yb = augment(x, y, cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and torch.equal(ya, yb)
    assert a.shape == x.shape and not torch.allclose(a, x)
    assert set(ya.tolist()) <= set(range(8))
    assert AugmentConfig().enabled is False and cfg.enabled


def _tiny(n=48, unlabeled=0):
    rng = np.random.default_rng(0)

    def split(k, labeled=True):
        y = rng.integers(0, 3, k) if labeled else np.full(k, -1)
        return Split(rng.integers(0, 256, (k, 1, 8, 8)).astype(np.uint8), y.astype(np.int64))

    return DatasetBundle("t", split(n), split(16), split(16), ("a", "b", "c"), (0.5,), (0.5,),
                         unlabeled=split(unlabeled, False) if unlabeled else None)  # fmt: skip


def _kd(student, labels, teacher):
    assert teacher is not None and bool((labels >= 0).all())  # unlabeled rows got the teacher's class
    return torch.nn.functional.kl_div(student.log_softmax(1), teacher.softmax(1), reduction="batchmean")


def test_augmented_kd_runs_the_teacher_live_and_unlabeled_rows_are_trained_on():
    torch.manual_seed(0)
    teacher = ResidualCNN((4, 8), 1, num_classes=3)
    student = ResidualCNN((4, 8), 1, num_classes=3)
    calls = []
    teacher.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    settings = TrainSettings(epochs=1, batch_size=16, augment=False, eval_initial=False,
                             augmentation=AugmentConfig(flip=True, mixup=0.2))  # fmt: skip
    result = train(student, _tiny(48, unlabeled=16), settings, _kd, None, teacher=teacher)
    assert result.labeled == 48 and result.unlabeled == 16 and result.device == "cpu"
    assert sum(calls) == 64  # the teacher saw every augmented batch: labeled and unlabeled
    assert len(result.loader_wait_share) == 1 and 0 <= result.loader_wait_share[0] <= 1


def test_unlabeled_images_are_skipped_with_a_warning_when_no_teacher_outputs_exist(caplog):
    student = ResidualCNN((4, 8), 1, num_classes=3)
    settings = TrainSettings(epochs=1, batch_size=16, augment=False, eval_initial=False)
    result = train(student, _tiny(32, unlabeled=8), settings)
    assert result.unlabeled == 0 and "not used" in caplog.text
