import numpy as np
import pytest
from PIL import Image

from edgekd.data.dataset_files import load_dataset
from edgekd.data.datasets import Split
from edgekd.data.subsets import stratified_indices


def _class_ordered_folder(root, classes=10, per_class=20):
    """Files sorted class by class, as a real photo folder is read."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / "train" / f"class{c:02d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8), "L").save(d / f"{i}.png")
    return root


def test_max_train_samples_128_on_a_class_ordered_folder_covers_every_class(tmp_path):
    data = load_dataset(_class_ordered_folder(tmp_path))
    assert data.train.y[:128].max() < 9  # "the first 128" would miss classes: the folder is class-ordered
    part = data.train.subset(128)
    counts = np.bincount(part.y, minlength=10)
    assert len(part) == 128 and counts.min() >= 1
    assert counts.max() - counts.min() <= 1  # proportional: the classes are equal-sized here
    again = load_dataset(tmp_path).train.subset(128)  # same images in another run
    assert again.x.paths == part.x.paths


@pytest.mark.parametrize("n", [1, 3, 7, 10, 11, 50, 99])
def test_stratified_indices_are_proportional_unique_and_seeded(n):
    y = np.concatenate([np.full(60, 0), np.full(30, 1), np.full(9, 2), np.full(1, 3)])
    idx = stratified_indices(y, n)
    assert len(idx) == n and len(set(idx.tolist())) == n and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, stratified_indices(y, n))
    counts = np.bincount(y[idx], minlength=4)
    if n >= 4:
        assert counts.min() >= 1  # every class present once n allows
    if n >= 50:
        assert abs(counts[0] - 0.6 * n) <= 2 and abs(counts[1] - 0.3 * n) <= 2


def test_subset_of_an_array_split_is_stratified_and_all_when_n_is_large():
    y = np.repeat(np.arange(5), 40)
    split = Split(np.arange(200, dtype=np.uint8)[:, None, None, None].repeat(2, axis=2), y)
    part = split.subset(20)
    assert sorted(set(part.y.tolist())) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(part.x[:, 0, 0, 0], stratified_indices(y, 20))
    assert split.subset(None) is split and split.subset(500) is split


def test_unlabeled_rows_are_a_group_of_their_own():
    y = np.array([0] * 10 + [-1] * 10)
    assert set(y[stratified_indices(y, 4)].tolist()) == {0, -1}


def test_subset_indices_are_the_positions_subset_takes():
    """Arrays computed on the whole split (reference logits) are indexed with these, never sliced [:n]."""
    y = np.repeat(np.arange(5), 40)  # class-ordered: the first 50 would miss classes
    split = Split(np.arange(len(y)).reshape(-1, 1, 1, 1).astype(np.uint8), y)
    idx = split.subset_indices(50)
    np.testing.assert_array_equal(split.take(idx).y, split.subset(50).y)
    np.testing.assert_array_equal(split.take(idx).x, split.subset(50).x)
    assert not np.array_equal(idx, np.arange(50)) and len(set(y[idx])) == 5
    np.testing.assert_array_equal(split.subset_indices(None), np.arange(len(y)))
