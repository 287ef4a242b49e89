"""Real image data: class folders and CSV index files, decoded lazily.

Folder form: ``DIR/train/<class>/*`` (required), ``DIR/val/<class>/*`` and ``DIR/test/<class>/*``
(optional), ``DIR/train/unlabeled/**`` (optional, images without labels for distillation). Files
``*.jpg, *.jpeg, *.png, *.bmp, *.webp`` of any size and mode. Index form: a ``.csv`` of
``path,label[,split]`` rows (paths relative to the CSV; a header row is allowed; an empty label is an
unlabeled image; ``split`` is train/val/test, default train).

A missing val or test split is carved from train with a seeded class-stratified split
(:data:`CARVE_FRACTION` of each class, at least one image per class with 3 or more), stated in
``DatasetBundle.notes["carved"]``. Only file headers are read here; pixels are decoded on use.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekd.config.preprocess import PreprocessConfig
from edgekd.core.errors import InputError
from edgekd.data import validation
from edgekd.data.datasets import SPLITS, DatasetBundle, Split
from edgekd.data.images import GREY_MODES, IMAGE_SUFFIXES, LazyImages, header

log = logging.getLogger(__name__)

UNLABELED = "unlabeled"
CARVE_FRACTION = 0.1
CARVE_SEED = 0
CONSTANT_SAMPLE = 64  # training images decoded at load time to refuse all-constant data
FOLDER_DEFAULT = (0.5,), (0.5,)  # mean/std when nothing is declared: inputs in [-1, 1]

Entries = dict[str, tuple[list[Path], list[int]]]


def _images_under(d: Path, recursive: bool = False) -> list[Path]:
    files = d.rglob("*") if recursive else d.glob("*")
    return sorted(f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _carve(entries: Entries, missing: list[str], seed: int = CARVE_SEED) -> dict[str, object]:
    """Move a stratified CARVE_FRACTION of train into each missing split; return what was done."""
    paths, labels = entries["train"]
    y = np.asarray(labels)
    keep = np.ones(len(y), bool)
    done: dict[str, int] = {}
    for k, split in enumerate(missing):
        rng = np.random.default_rng(seed + k)
        picked: list[int] = []
        for c in np.unique(y):
            members = np.flatnonzero((y == c) & keep)
            n = round(CARVE_FRACTION * int(np.sum(y == c)))
            n = max(n, 1 if len(members) >= 3 else 0)
            picked += rng.choice(members, min(n, len(members) - 1), replace=False).tolist() if n else []
        picked_arr = np.sort(np.asarray(picked, dtype=np.int64))
        keep[picked_arr] = False
        entries[split] = ([paths[i] for i in picked_arr], [labels[i] for i in picked_arr])
        done[split] = len(picked_arr)
    idx = np.flatnonzero(keep)
    entries["train"] = ([paths[i] for i in idx], [labels[i] for i in idx])
    log.warning("no %s split: carved %s from train (stratified, seed %d)", "/".join(missing), done, seed)
    return {"from": "train", "fraction": CARVE_FRACTION, "seed": seed, "images": done}


def _geometry(files: list[Path], cfg: PreprocessConfig, where: str) -> tuple[tuple[int, int], int, dict]:
    """Input (H, W) and channels: declared, or read from the file headers (which must then agree on size).

    Every header is read either way (no pixels), so an unreadable file is named before any work starts.
    """
    size, channels, notes = cfg.input_size, cfg.channels, {}
    heads = [header(f) for f in files]
    if size is None or channels is None:
        if size is None:
            sizes = sorted({h for h, _ in heads})
            if len(sizes) != 1:
                shown = ", ".join(f"{w}x{h}" for h, w in sizes[:3])
                raise InputError(
                    f"{where}: images differ in size ({shown}, ...); declare the model input size with "
                    "--input-size N (preprocess.input_size) and they are resized and cropped to it"
                )
            size, notes["input_size_from"] = sizes[0], "images"
        if channels is None:
            channels = 1 if all(m in GREY_MODES for _, m in heads) else 3
            notes["channels_from"] = "images"
    return (int(size[0]), int(size[1])), int(channels), notes


def _file_digest(entries: Entries, root: Path) -> str:
    h = hashlib.sha256()
    for split in (*SPLITS, UNLABELED):
        paths, labels = entries.get(split, ([], []))
        h.update(f"[{split}]".encode())
        for p, label in zip(paths, labels, strict=True):
            try:
                rel = p.relative_to(root)
            except ValueError:
                rel = p
            h.update(f"{rel}\0{label}\0".encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _bundle(root: Path, name: str, entries: Entries, classes: list[str], cfg: PreprocessConfig) -> DatasetBundle:
    missing = [s for s in ("val", "test") if not entries.get(s, ([], []))[0]]
    if not entries["train"][0]:
        raise InputError(f"{root}: no labeled training images of classes {classes}")
    notes: dict[str, object] = {}
    if missing:
        notes["carved"] = _carve(entries, missing)
        if not entries["train"][0] or any(not entries[s][0] for s in missing):
            raise InputError(f"{root}: too few images to carve {'/'.join(missing)} from train; add {missing[0]}/")
    every = [p for s in (*SPLITS, UNLABELED) for p in entries.get(s, ([], []))[0]]
    size, channels, geo_notes = _geometry(every, cfg, str(root))
    notes.update(geo_notes)
    if not cfg.declared:
        log.warning("%s: no preprocessing declared; images are scaled to [-1, 1] (mean/std 0.5); declare "
                    "--preprocess imagenet|tf|none or preprocess.mean/std to match the teacher", root)  # fmt: skip
    mean, std = cfg.normalisation(channels, FOLDER_DEFAULT)
    splits = {}
    for s in (*SPLITS, UNLABELED):
        paths, labels = entries.get(s, ([], []))
        splits[s] = Split(LazyImages(paths, size, channels, cfg), np.asarray(labels, dtype=np.int64).reshape(-1))
    unlabeled = splits.pop(UNLABELED)
    validation.check_not_constant(splits["train"].subset(CONSTANT_SAMPLE).x[:], f"{root}/train")  # 64 decodes
    return DatasetBundle(
        name=name, class_names=tuple(classes), mean=mean, std=std, source=str(root),
        digest=_file_digest(entries, root), preprocess=cfg, unlabeled=unlabeled if len(unlabeled) else None,
        notes=notes, **splits,
    )  # fmt: skip


def load_image_folder(root: Path, cfg: PreprocessConfig) -> DatasetBundle:
    """``root/{train,val,test}/<class>/*`` (+ ``train/unlabeled/``) as a lazily decoded bundle."""
    if not (root / "train").is_dir():
        raise InputError(
            f"{root}: image folder lacks train/; expected {root}/train/<class>/*.jpg (val/, test/ optional)"
        )
    classes = sorted(d.name for d in (root / "train").iterdir() if d.is_dir() and d.name != UNLABELED)
    if not classes:
        raise InputError(f"{root}/train has no class folders; expected {root}/train/<class>/*.jpg")
    entries: Entries = {}
    for s in SPLITS:
        if not (root / s).is_dir():
            continue
        extra = sorted(d.name for d in (root / s).iterdir() if d.is_dir() and d.name not in classes and s != "train")
        if extra:
            raise InputError(
                f"{root}/{s} has classes not in train/: {', '.join(extra)}; add them to train/ or remove them"
            )
        paths: list[Path] = []
        labels: list[int] = []
        for label, cls in enumerate(classes):
            found = _images_under(root / s / cls)
            paths += found
            labels += [label] * len(found)
        entries[s] = (paths, labels)
    if (root / "train" / UNLABELED).is_dir():
        found = _images_under(root / "train" / UNLABELED, recursive=True)
        entries[UNLABELED] = (found, [-1] * len(found))
    return _bundle(root, root.name, entries, classes, cfg)


def load_index_file(index: Path, cfg: PreprocessConfig) -> DatasetBundle:
    """A CSV of ``path,label[,split]`` rows as a lazily decoded bundle (class names sorted)."""
    rows: list[tuple[Path, str, str]] = []
    with index.open(newline="", encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), start=1):
            if not row or (n == 1 and row[0].strip().lower() == "path"):
                continue
            if len(row) not in (2, 3):
                raise InputError(f"{index}:{n}: expected path,label[,split], got {len(row)} fields")
            split = row[2].strip() if len(row) == 3 and row[2].strip() else "train"
            if split not in SPLITS:
                raise InputError(f"{index}:{n}: split '{split}' is not one of {', '.join(SPLITS)}")
            path = (index.parent / row[0].strip()).resolve()
            if not path.is_file():
                raise InputError(f"{index}:{n}: image {path} does not exist")
            rows.append((path, row[1].strip(), split))
    classes = sorted({label for _, label, _ in rows if label})
    if not classes:
        raise InputError(f"{index}: no labeled rows; expected path,label[,split] lines")
    ids = {c: i for i, c in enumerate(classes)}
    entries: Entries = {s: ([], []) for s in SPLITS}
    entries[UNLABELED] = ([], [])
    for path, label, split in rows:
        key = split if label else UNLABELED
        entries[key][0].append(path)
        entries[key][1].append(ids[label] if label else -1)
    return _bundle(index.parent, index.stem, entries, classes, cfg)


def attach_transfer(bundle: DatasetBundle, folder: Path) -> DatasetBundle:
    """Add every image under ``folder`` to the bundle's unlabeled transfer set (decoded as the bundle's images)."""
    if not folder.is_dir():
        raise InputError(f"transfer set {folder} is not a folder; pass a folder of images")
    found = _images_under(folder, recursive=True)
    if not found:
        raise InputError(f"transfer set {folder} holds no {'/'.join(sorted(IMAGE_SUFFIXES))} images")
    c, h, w = bundle.input_shape
    paths = list(bundle.unlabeled.x.paths) if bundle.unlabeled is not None else []  # type: ignore[union-attr]
    paths += found
    digest = hashlib.sha256(bundle.digest.encode())
    for p in found:
        digest.update(hashlib.sha256(p.read_bytes()).digest())
    unlabeled = Split(LazyImages(paths, (h, w), c, bundle.preprocess), np.full(len(paths), -1, dtype=np.int64))
    notes = {**bundle.notes, "transfer": str(folder)}
    return replace(bundle, unlabeled=unlabeled, digest=digest.hexdigest(), notes=notes)
