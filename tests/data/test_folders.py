import numpy as np
import pytest
from PIL import Image

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.errors import InputError
from edgekd.data.dataset_files import load_dataset
from edgekd.data.images import LazyImages, decode
from tests.data.image_factory import KINDS, write_folder, write_image

CFG = PreprocessConfig(input_size=32, preset="imagenet")


@pytest.mark.parametrize(("suffix", "kind"), KINDS)
def test_every_mode_decodes_to_rgb_of_the_declared_size(tmp_path, suffix, kind):
    path = tmp_path / f"img{suffix}"
    write_image(path, kind, (40, 30), np.array([200.0, 120.0, 40.0]), np.random.default_rng(0))
    arr = decode(path, (32, 32), 3, CFG)
    assert arr.shape == (3, 32, 32) and arr.dtype == np.uint8
    if kind in ("RGB", "CMYK", "RGB-exif-rotated", "RGBA"):  # colour survives (CMYK round trip is lossy)
        assert arr[0].mean() > arr[2].mean() + 60


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((10, 10), 32768, np.uint16)).save(tmp_path / "g.png")
    arr = decode(tmp_path / "g.png", (10, 10), 1, PreprocessConfig())
    assert 126 <= int(arr.mean()) <= 129  # half scale, not 255


def test_exif_rotation_is_applied(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: white ends up on top
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    arr = decode(tmp_path / "r.jpg", (40, 20), 3, PreprocessConfig(resize="stretch"))
    assert arr.shape == (3, 40, 20) and arr[:, :20].mean() > 200 and arr[:, 20:].mean() < 50


@pytest.mark.parametrize(("resize", "white_share"), [("center_crop", 1.0), ("letterbox", 0.5), ("stretch", 1.0)])
def test_resize_policies(tmp_path, resize, white_share):
    Image.fromarray(np.full((20, 40), 255, np.uint8)).save(tmp_path / "w.png")
    arr = decode(tmp_path / "w.png", (16, 16), 1, PreprocessConfig(resize=resize, pad_value=0))
    assert arr.shape == (1, 16, 16) and (arr > 128).mean() == pytest.approx(white_share, abs=0.07)


def test_mixed_folder_is_lazy_with_carved_stratified_splits(tmp_path):
    root = write_folder(tmp_path / "d", classes=3, per_class=12)
    data = load_dataset(root, CFG)
    assert isinstance(data.train.x, LazyImages) and data.input_shape == (3, 32, 32)
    assert data.notes["carved"]["images"] == {"val": 3, "test": 3}
    for split in (data.val, data.test):
        assert sorted(split.y.tolist()) == [0, 1, 2]  # one of each class
    everything = [*data.train.x.paths, *data.val.x.paths, *data.test.x.paths]
    assert len(set(everything)) == 36  # disjoint
    assert load_dataset(root, CFG).val.x.paths == data.val.x.paths  # seeded
    assert data.train.x[np.array([0, 5])].shape == (2, 3, 32, 32)


def test_different_sizes_without_input_size_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="--input-size") as info:
        load_dataset(write_folder(tmp_path / "d"))
    assert "\n" not in str(info.value)


def test_unreadable_file_names_itself_at_load_time(tmp_path):
    root = write_folder(tmp_path / "d", classes=2, per_class=4)
    (root / "train" / "c0" / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"broken\.jpg") as info:
        load_dataset(root, PreprocessConfig(input_size=16, channels=3))  # size declared: still checked
    assert "\n" not in str(info.value)


def test_val_class_missing_from_train_is_refused(tmp_path):
    root = write_folder(tmp_path / "d", classes=2, per_class=3, splits=("train", "val"))
    (root / "val" / "zebra").mkdir()
    with pytest.raises(InputError, match="zebra"):
        load_dataset(root, CFG)


def test_index_csv_with_splits_and_unlabeled_rows(tmp_path):
    root = write_folder(tmp_path / "d", classes=2, per_class=6)
    files = sorted((root / "train").rglob("*.*"))
    lines = ["path,label,split"]
    for i, f in enumerate(files):
        label = f.parent.name if i % 6 else ""  # every sixth row unlabeled
        split = "test" if i % 4 == 1 and label else "train"
        lines.append(f"{f.relative_to(tmp_path)},{label},{split}")
    (tmp_path / "index.csv").write_text("\n".join(lines) + "\n")
    data = load_dataset(tmp_path / "index.csv", CFG)
    assert data.class_names == ("c0", "c1") and len(data.unlabeled) == 2
    assert "carved" in data.notes and data.notes["carved"]["images"].keys() == {"val"}
    assert len(data.train) + len(data.val) + len(data.test) + len(data.unlabeled) == 12


def test_unlabeled_folder_and_transfer_dir_are_counted(tmp_path):
    root = write_folder(tmp_path / "d", classes=2, per_class=6, unlabeled=4)
    extra = tmp_path / "more" / "nested"
    extra.mkdir(parents=True)
    for i in range(3):
        write_image(extra / f"t{i}.png", "RGB", (50, 20), np.array([90.0, 90.0, 90.0]), np.random.default_rng(i))
    plain = load_dataset(root, CFG)
    data = load_dataset(root, CFG, transfer=tmp_path / "more")
    assert len(plain.unlabeled) == 4 and len(data.unlabeled) == 7 and np.all(data.unlabeled.y == -1)
    assert data.describe()["labeled"] == len(data.train) and data.describe()["unlabeled"] == 7
    assert data.digest != plain.digest
    assert data.unlabeled.x[6].shape == (3, 32, 32)
