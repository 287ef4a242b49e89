import numpy as np
import pytest
import torch
from pydantic import ValidationError

from edgekd.config.build_config import BuildConfig
from edgekd.config.preprocess import PreprocessConfig
from edgekd.data.bundled import EXAMPLE_PREPROCESS, example_preprocess
from edgekd.data.dataset_files import load_dataset


def _npz(path, mean=None, x=None):
    arrays = {}
    for s in ("train", "val", "test"):
        arrays[f"x_{s}"] = np.arange(4 * 3 * 8 * 8, dtype=np.uint8).reshape(4, 3, 8, 8) if x is None else x
        arrays[f"y_{s}"] = np.array([0, 1, 2, 1])
    if mean is not None:
        arrays["mean"], arrays["std"] = np.array(mean), np.array([0.25, 0.25, 0.25])
    np.savez(path, **arrays)
    return path


CHANGES = [
    {"mean": (0.4, 0.4, 0.4)}, {"std": (0.3, 0.3, 0.3)}, {"preset": "imagenet"}, {"preset": "tf"},
    {"input_size": 6}, {"resize": "letterbox"}, {"interpolation": "bicubic"}, {"channel_order": "bgr"},
    {"crop_fraction": 0.5}, {"pad_value": 114},
]  # fmt: skip


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: next(iter(c)))
def test_any_preprocess_field_changes_the_stage_key_digest_but_not_the_pixel_digest(tmp_path, change):
    path = _npz(tmp_path / "d.npz")
    base = load_dataset(path, PreprocessConfig())
    changed = load_dataset(path, PreprocessConfig(**change))
    assert changed.digest == base.digest  # pixels and labels: unchanged
    assert changed.cache_digest != base.cache_digest  # what every stage key uses: changed
    assert load_dataset(path, PreprocessConfig()).cache_digest == base.cache_digest  # and stable


def test_fixing_the_mean_stored_in_an_npz_changes_the_stage_key_digest(tmp_path):
    a = load_dataset(_npz(tmp_path / "a.npz", mean=[0.5, 0.5, 0.5]))
    b = load_dataset(_npz(tmp_path / "b.npz", mean=[0.485, 0.456, 0.406]))
    assert a.digest == b.digest and a.cache_digest != b.cache_digest
    assert b.mean == (0.485, 0.456, 0.406)


def test_presets_and_explicit_fields():
    assert PreprocessConfig(preset="imagenet").normalisation(3, ((0,), (1,))) == (
        (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))  # fmt: skip
    assert PreprocessConfig(preset="tf").normalisation(3, ((0,), (1,))) == ((0.5,) * 3, (0.5,) * 3)
    assert PreprocessConfig(preset="none").normalisation(1, ((9,), (9,))) == ((0.0,), (1.0,))
    assert PreprocessConfig(preset="tf", mean=(0.1,)).normalisation(1, ((0,), (1,)))[0] == (0.1,)
    assert PreprocessConfig(preset="imagenet").effective_crop_fraction() == 0.875
    assert PreprocessConfig(input_size=224).input_size == (224, 224)
    with pytest.raises(ValidationError):
        PreprocessConfig(std=(0.0,))
    with pytest.raises(ValidationError):
        PreprocessConfig(colour="rgb")  # unknown keys rejected


def test_tf_preset_maps_pixels_to_minus_one_one_and_bgr_reverses_channels(tmp_path):
    x = np.zeros((4, 3, 8, 8), np.uint8)
    x[:, 0] = 255  # red channel full
    data = load_dataset(_npz(tmp_path / "d.npz", x=x), PreprocessConfig(preset="tf", channel_order="bgr"))
    t = data.to_tensor(data.test.x[:1])
    assert torch.allclose(t[0, :, 0, 0], torch.tensor([-1.0, -1.0, 1.0]))  # B, G, R


def test_npz_is_resized_to_a_declared_input_size(tmp_path):
    data = load_dataset(_npz(tmp_path / "d.npz"), PreprocessConfig(input_size=(4, 6), resize="stretch"))
    assert data.input_shape == (3, 4, 6) and data.train.x.shape == (4, 3, 4, 6)


def test_the_bundled_example_declares_its_preprocessing_and_a_preset_replaces_its_statistics():
    assert EXAMPLE_PREPROCESS.declared and EXAMPLE_PREPROCESS.input_size == (28, 28)
    assert example_preprocess(None) == EXAMPLE_PREPROCESS
    tf = example_preprocess(PreprocessConfig(preset="tf"))
    assert tf.mean is None and tf.normalisation(1, ((0,), (1,))) == ((0.5,), (0.5,))
    assert example_preprocess(PreprocessConfig(interpolation="bicubic")).mean == EXAMPLE_PREPROCESS.mean


def test_build_config_takes_preprocess_transfer_and_device():
    cfg = BuildConfig.model_validate({"preprocess": {"preset": "imagenet", "input_size": 224}, "device": "cuda:1"})
    assert cfg.preprocess.input_size == (224, 224) and cfg.device == "cuda:1"
    with pytest.raises(ValidationError):
        BuildConfig.model_validate({"device": "tpu"})


def test_every_sidecar_carries_the_declared_preprocessing(tmp_path):
    from edgekd.export.base import SidecarInfo, float_nchw_sidecar
    from edgekd.export.sidecar import read_sidecar, write_sidecar

    data = load_dataset(_npz(tmp_path / "d.npz"), PreprocessConfig(preset="imagenet", interpolation="bicubic"))
    sidecar = float_nchw_sidecar("onnx", "fp32", SidecarInfo.from_bundle(data))
    write_sidecar(tmp_path / "m.onnx", sidecar)
    back = read_sidecar(tmp_path / "m.onnx")
    assert back.preprocessing["interpolation"] == "bicubic" and back.preprocessing["crop_fraction"] == 0.875
    assert back.preprocessing["mean"] == list(back.mean) == [0.485, 0.456, 0.406]


def test_a_stage_recomputes_after_a_mean_change_and_reuses_otherwise(tmp_path):
    from dataclasses import replace
    from types import SimpleNamespace

    from torch import nn

    from edgekd.core.progress import NULL_PROGRESS
    from edgekd.pipeline.cache import StageCache
    from edgekd.pipeline.stages import StageContext, teacher_logits

    base = load_dataset(_npz(tmp_path / "d.npz"), PreprocessConfig(preset="none"))
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    cache = StageCache(tmp_path / ".stages")

    def run(data):
        inputs = SimpleNamespace(data=data, teacher=teacher, teacher_key="t", config=SimpleNamespace(device="cpu"))
        return teacher_logits(StageContext(inputs, cache, NULL_PROGRESS), "val")

    first = run(base)
    run(replace(base))  # same data, same preprocessing
    assert cache.hits == ["teacher-logits-val"]
    changed = replace(base, mean=(0.5, 0.5, 0.5))
    second = run(changed)
    assert cache.misses == ["teacher-logits-val", "teacher-logits-val"] and not np.allclose(first, second)
