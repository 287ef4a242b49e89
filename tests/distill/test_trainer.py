import itertools

import numpy as np
import pytest
import torch

from edgekd.core.errors import ConfigError
from edgekd.core.inference import accuracy, predict_logits
from edgekd.data.bundled import example_dataset
from edgekd.distill.trainer import TrainSettings, lr_at, train
from edgekd.models.example_teacher import ResidualCNN


def test_lr_warms_up_linearly_then_decays_by_cosine():
    assert lr_at(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert lr_at(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert lr_at(55, 100, 10, 1.0) == pytest.approx(0.5)
    assert lr_at(100, 100, 10, 1.0) == pytest.approx(0.0)
    values = [lr_at(s, 100, 10, 1.0) for s in range(10, 100)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_training_learns_and_is_reproducible():
    data = example_dataset()
    settings = TrainSettings(epochs=2, batch_size=32, lr=5e-3, max_train_samples=3000, augment=False, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = ResidualCNN((8, 16), 1)
        result = train(model, data, settings)
        runs.append(predict_logits(model, data, data.val.subset(200)))
        assert result.best_val_accuracy > 0.6  # 10 classes: chance is 0.1
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-5)
    # the stratified 200-image sample predicted above agrees with the whole val split's accuracy
    assert accuracy(runs[0], data.val.subset(200).y) == pytest.approx(result.best_val_accuracy, abs=0.08)


def test_feature_losses_train_student_and_adapters_with_a_live_teacher():
    from edgekd.distill.combined_loss import build_loss

    data = example_dataset()
    torch.manual_seed(0)
    teacher = ResidualCNN((16, 32), 1).eval()
    student = ResidualCNN((8, 16), 1)
    loss = build_loss(
        {"kd": 1.0, "hint": 1.0, "at": 1.0, "ce": 0.5},
        kd={"temperature": 4.0, "alpha": 1.0},
        hint={"pairs": [("stages.1", "stages.1")], "teacher_channels": [32], "student_channels": [16]},
        at={"pairs": [("stages.0", "stages.0")]},
    )
    adapter_before = [p.detach().clone() for p in loss.parameters()]
    assert adapter_before, "the hint adapter has parameters"
    settings = TrainSettings(epochs=1, batch_size=64, max_train_samples=256, augment=False)
    train(student, data, settings, loss, teacher=teacher)
    assert any(not torch.equal(a, b) for a, b in zip(adapter_before, loss.parameters(), strict=True))
    assert all(p.grad is None or not p.requires_grad for p in teacher.parameters())
    assert not any(m._forward_hooks for m in [*teacher.modules(), *student.modules()])
    assert set(loss.last_values) >= {"kd", "hint", "at", "ce", "total"}


def test_a_fine_tune_that_only_hurts_returns_the_initial_weights(tiny_data):
    torch.manual_seed(0)
    model = ResidualCNN((8, 16), 1)
    # 4 epochs of 4 steps: enough to be clearly above chance on the stratified 64-image val split
    train(model, tiny_data, TrainSettings(epochs=4, batch_size=64, lr=5e-3, augment=False))
    before = predict_logits(model, tiny_data, tiny_data.val)
    start = accuracy(before, tiny_data.val.y)
    assert start > 0.15  # learned something (chance is 0.1)
    result = train(model, tiny_data, TrainSettings(epochs=1, batch_size=64, lr=50.0, augment=False))  # diverges
    assert result.initial_val_accuracy == pytest.approx(start)
    assert result.best_epoch == 0 and result.history[0]["val_accuracy"] < start
    np.testing.assert_allclose(predict_logits(model, tiny_data, tiny_data.val), before, atol=1e-6)


def test_mode_switch_callables_replace_train_and_eval(tiny_data):
    calls = []
    settings = TrainSettings(epochs=2, batch_size=128, augment=False,
                             to_train=lambda m: calls.append("train") or m.train(),
                             to_eval=lambda m: calls.append("eval") or m.eval())  # fmt: skip
    model = ResidualCNN((8, 8), 1)
    train(model, tiny_data, settings)
    assert calls == ["eval", "train", "eval", "train", "eval", "eval"]
    assert not model.training


def test_hooks_are_released_when_a_training_step_fails(tiny_data):
    from edgekd.distill.combined_loss import build_loss

    teacher, student = ResidualCNN((16, 32), 1).eval(), ResidualCNN((8, 16), 1)
    loss = build_loss(
        {"hint": 1.0}, hint={"pairs": [("stages.1", "stages.1")], "teacher_channels": [32], "student_channels": [99]}
    )  # wrong width: fails in the first step
    with pytest.raises(ConfigError, match="declared widths"):
        train(student, tiny_data, TrainSettings(epochs=1, augment=False), loss, teacher=teacher)
    assert not any(m._forward_hooks for m in [*teacher.modules(), *student.modules()])
    assert all(not p.requires_grad for p in teacher.parameters())
