"""Streaming batches: same order as DatasetBundle.batches, workers change nothing, memory stays per-batch."""

import numpy as np
import torch

from edgekd.config.preprocess import PreprocessConfig
from edgekd.data.dataset_files import load_dataset
from edgekd.data.images import LazyImages
from edgekd.data.loader import batch_loader, concat_splits
from edgekd.distill.teacher_cache import compute_teacher_cache
from edgekd.models.example_teacher import ResidualCNN
from tests.data.image_factory import write_folder

CFG = PreprocessConfig(input_size=16, preset="tf")


def _folder(tmp_path):
    return load_dataset(write_folder(tmp_path / "d", classes=3, per_class=8, unlabeled=4), CFG)


def test_loader_batches_match_bundle_batches_with_and_without_workers(tmp_path):
    data = _folder(tmp_path)
    want = list(data.batches(data.train, 5, shuffle=True, seed=3))
    for workers in (0, 2):
        got = list(batch_loader(data, data.train, 5, shuffle=True, seed=3, workers=workers))
        assert len(got) == len(want)
        for (gx, gy, gi), (wx, wy, wi) in zip(got, want, strict=True):
            assert torch.equal(gx, wx) and torch.equal(gy, wy) and np.array_equal(gi, wi)


def test_only_the_batch_asked_for_is_decoded(tmp_path, monkeypatch):
    data = _folder(tmp_path)
    decoded = []
    original = LazyImages.decode
    monkeypatch.setattr(LazyImages, "decode", lambda self, i: decoded.append(i) or original(self, i))
    it = iter(batch_loader(data, data.train, 4, workers=0))
    x, _, _ = next(it)
    assert x.shape == (4, 3, 16, 16) and len(decoded) == 4  # not the split: memory is per batch
    data.train.subset(6)  # subsets are lazy views: nothing decoded
    assert len(decoded) == 4


def test_concat_keeps_lazy_images_lazy(tmp_path):
    data = _folder(tmp_path)
    both = concat_splits(data.train, data.unlabeled)
    assert isinstance(both.x, LazyImages) and len(both) == len(data.train) + 4 and (both.y[-4:] == -1).all()


def test_teacher_cache_spilled_to_disk_is_memory_mapped_and_equal(tmp_path):
    data = _folder(tmp_path)
    torch.manual_seed(0)
    teacher = ResidualCNN((4, 8), 1, in_channels=3, num_classes=3)
    in_memory = compute_teacher_cache([teacher], data, data.train, ["stages.1"])
    spilled = compute_teacher_cache([teacher], data, data.train, ["stages.1"], spill_dir=tmp_path / "cache")
    assert isinstance(spilled.logits, np.memmap) and isinstance(spilled.features["stages.1"], np.memmap)
    assert not isinstance(in_memory.logits, np.memmap)
    np.testing.assert_array_equal(np.asarray(spilled.logits), in_memory.logits)
    np.testing.assert_array_equal(np.asarray(spilled.features["stages.1"]), in_memory.features["stages.1"])
