import numpy as np
import pytest
import torch

from edgekd.core.errors import InputError
from edgekd.core.inference import predict_logits
from edgekd.distill.checkpoint import CHECKPOINT_NAME
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_teacher import ResidualCNN


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tiny_data, tmp_path, monkeypatch):
    settings = TrainSettings(epochs=3, batch_size=64, lr=5e-3, augment=True, seed=4, patience=5)
    torch.manual_seed(0)
    init = ResidualCNN((8, 8), 1).state_dict()

    def fresh() -> ResidualCNN:
        model = ResidualCNN((8, 8), 1)
        model.load_state_dict(init)
        return model

    straight = fresh()
    full = train(straight, tiny_data, settings)

    from edgekd.distill import trainer

    real_val, calls = trainer._val_accuracy, []

    def val_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # initial evaluation, epoch 1, then stop during epoch 2's evaluation
            raise Interrupt
        return real_val(*args, **kwargs)

    ckpt = tmp_path / "ck"
    interrupted = fresh()
    monkeypatch.setattr(trainer, "_val_accuracy", val_then_stop)
    with pytest.raises(Interrupt):
        train(interrupted, tiny_data, TrainSettings(**{**settings.__dict__, "checkpoint_dir": ckpt}))
    monkeypatch.setattr(trainer, "_val_accuracy", real_val)
    assert (ckpt / CHECKPOINT_NAME).is_file()
    resumed_model = fresh()
    resumed = train(resumed_model, tiny_data, TrainSettings(**{**settings.__dict__, "checkpoint_dir": ckpt,
                                                                  "resume": True}))  # fmt: skip
    assert resumed.resumed_from_epoch == 1
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for got, want in zip(resumed.history, full.history, strict=True):
        assert got == pytest.approx(want)
    np.testing.assert_allclose(predict_logits(resumed_model, tiny_data, tiny_data.val),
                               predict_logits(straight, tiny_data, tiny_data.val), atol=1e-5)  # fmt: skip


def test_checkpoint_of_other_settings_is_refused(tiny_data, tmp_path):
    model = ResidualCNN((8, 8), 1)
    train(model, tiny_data, TrainSettings(epochs=1, batch_size=128, checkpoint_dir=tmp_path))
    with pytest.raises(InputError, match="other settings"):
        train(model, tiny_data, TrainSettings(epochs=2, batch_size=128, checkpoint_dir=tmp_path, resume=True))
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"garbage")
    with pytest.raises(InputError, match="unreadable"):
        train(model, tiny_data, TrainSettings(epochs=1, batch_size=128, checkpoint_dir=tmp_path, resume=True))
