import numpy as np
import pytest
import torch

from edgekd.core.errors import ConfigError
from edgekd.core.inference import predict_logits
from edgekd.distill.combined_loss import build_loss
from edgekd.distill.teacher_cache import TeacherCache, compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_teacher import ResidualCNN


def test_cache_holds_fp16_logits_and_features_in_split_order(tiny_data):
    torch.manual_seed(0)
    teacher = ResidualCNN((8, 16), 1).train()
    cache = compute_teacher_cache([teacher], tiny_data, tiny_data.train, ["stages.1"], batch_size=100)
    assert teacher.training, "the teacher's mode is restored"
    assert cache.logits.dtype == np.float16 and cache.logits.shape == (256, 10)
    assert cache.features["stages.1"].shape == (256, 16, 14, 14)
    exact = predict_logits(teacher, tiny_data, tiny_data.train)
    np.testing.assert_allclose(cache.logits.astype(np.float32), exact, rtol=1e-2, atol=1e-2)
    logits, feats = cache.batch(np.array([3, 0]))
    assert feats["stages.1"].shape == (2, 16, 14, 14)
    assert logits.dtype == torch.float32
    np.testing.assert_allclose(logits.numpy(), exact[[3, 0]], rtol=1e-2, atol=1e-2)
    assert not any(m._forward_hooks for m in teacher.modules())


def test_several_teachers_stack_as_samples_teachers_classes(tiny_data):
    torch.manual_seed(0)
    a, b = ResidualCNN((8, 16), 1), ResidualCNN((8, 8), 1)
    cache = compute_teacher_cache([a, b], tiny_data, tiny_data.train.subset(40))
    assert cache.logits.shape == (40, 2, 10)
    np.testing.assert_allclose(cache.logits[:, 1], predict_logits(b, tiny_data, tiny_data.train.subset(40)),
                               rtol=1e-2, atol=1e-2)  # fmt: skip


def test_cached_features_replace_the_live_teacher_and_give_the_same_training(tiny_data):
    torch.manual_seed(0)
    teacher = ResidualCNN((8, 16), 1).eval()
    init = ResidualCNN((8, 8), 1).state_dict()
    settings = TrainSettings(epochs=1, batch_size=64, augment=False, eval_initial=False)
    results = []
    for cached in (False, True):
        student = ResidualCNN((8, 8), 1)
        student.load_state_dict(init)
        torch.manual_seed(1)
        loss = build_loss({"kd": 1.0, "at": 1.0}, kd={"temperature": 4.0, "alpha": 0.9},
                          at={"pairs": [("stages.1", "stages.1")]})  # fmt: skip
        if cached:
            cache = compute_teacher_cache([teacher], tiny_data, tiny_data.train, ["stages.1"], dtype=np.float32)
            train(student, tiny_data, settings, loss, cache)  # no teacher module at all
        else:
            train(student, tiny_data, settings, loss, teacher=teacher)
        results.append(predict_logits(student, tiny_data, tiny_data.val))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-3, atol=1e-3)


def test_cache_shorter_than_the_training_split_is_an_error(tiny_data):
    model = ResidualCNN((8, 8), 1)
    short = TeacherCache(np.zeros((10, 10), np.float16))
    with pytest.raises(ConfigError, match="cover 10 training samples"):
        train(model, tiny_data, TrainSettings(epochs=1), build_loss({"kd": 1.0}), short)
