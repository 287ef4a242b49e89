import itertools

import numpy as np
import pytest
import torch

from edgekd.data.bundled import example_dataset
from edgekd.distill.trainer import TrainSettings, accuracy, lr_at, predict_logits, train
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
    assert accuracy(runs[0], data.val.y[:200]) > 0.6
