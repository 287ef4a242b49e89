"""Corpus cases for files handed to edgekd: datasets, image folders, checkpoints, exported models, ssh keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.cli import hostile_inputs as h
from tests.cli.corpus_support import (
    SHAPE,
    Case,
    Ctx,
    _float_with,
    _u8,
    build,
    build_data,
    split_arrays,
)

DATASET = [
    Case("string-pixels", build_data(split_arrays(lambda: np.full(SHAPE, "px"), "x_train")), "dtype"),
    Case("bytes-pixels", build_data(split_arrays(lambda: np.full(SHAPE, b"p"), "x_val")), "dtype"),
    Case("object-pixels", build_data(lambda c: c.write("data.npz", _object_npz())), "readable .npz"),
    Case("bool-pixels", build_data(split_arrays(lambda: np.ones(SHAPE, bool), "x_train")), "dtype"),
    Case("complex-pixels", build_data(split_arrays(lambda: np.ones(SHAPE, np.complex64), "x_test")), "dtype"),
    Case("timedelta-pixels", build_data(split_arrays(lambda: np.ones(SHAPE, "m8[s]"), "x_test")), "dtype"),
    Case(
        "empty-train",
        build_data(lambda c: c.npz(x_train=np.zeros((0, 28, 28), np.uint8), y_train=np.zeros(0, np.int64))),
        "no images",
    ),
    Case(
        "empty-val",
        build_data(lambda c: c.npz(x_val=np.zeros((0, 28, 28), np.uint8), y_val=np.zeros(0, np.int64))),
        "no images",
    ),
    Case(
        "empty-test",
        build_data(lambda c: c.npz(x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0, np.int64))),
        "no images",
    ),
    Case("nan-pixels", build_data(split_arrays(lambda: _float_with(np.nan), "x_train")), "nan"),
    Case("inf-pixels", build_data(split_arrays(lambda: _float_with(np.inf), "x_test")), "nan or infinity"),
    Case("neg-inf-pixels", build_data(split_arrays(lambda: _float_with(-np.inf), "x_val")), "infinity"),
    Case("huge-float-pixels", build_data(split_arrays(lambda: _float_with(1e9), "x_train")), "scale them"),
    Case("uint16-pixels", build_data(split_arrays(lambda: np.full(SHAPE, 60000, np.uint16), "x_train")), "uint16"),
    Case(
        "int32-pixels-over-255",
        build_data(split_arrays(lambda: np.full(SHAPE, 300, np.int32), "x_val")),
        "outside [0, 255]",
    ),
    Case(
        "negative-int-pixels",
        build_data(split_arrays(lambda: np.full(SHAPE, -4, np.int16), "x_test")),
        "outside [0, 255]",
    ),
    Case("constant-images", build_data(split_arrays(lambda: np.full(SHAPE, 9, np.uint8), "x_train")), "std = 0"),
    Case("constant-float-images", build_data(split_arrays(lambda: np.zeros(SHAPE, np.float32), "x_val")), "std = 0"),
    Case(
        "fractional-labels", build_data(split_arrays(lambda: np.full(h.N_PER_SPLIT, 1.5), "y_train")), "whole numbers"
    ),
    Case("nan-labels", build_data(split_arrays(lambda: np.full(h.N_PER_SPLIT, np.nan), "y_test")), "whole numbers"),
    Case("negative-labels", build_data(split_arrays(lambda: np.array([0, 1, -1, 2, 3, 4]), "y_train")), "labels span"),
    Case("labels-past-class-names", build_data(lambda c: c.npz(class_names=np.array(list("abc")))), "labels span"),
    Case(
        "labels-past-teacher-logits",
        build_data(split_arrays(lambda: np.array([0, 1, 2, 3, 4, 12]), "y_val")),
        "13 classes (counted from the largest label)",
    ),
    Case(
        "class-names-misleading-count",
        build_data(lambda c: c.npz(class_names=np.array(list("abcdefghijklmn")))),
        "14 classes",
    ),
    Case("string-labels", build_data(split_arrays(lambda: np.array(list("abcdef")), "y_train")), "labels have dtype"),
    Case(
        "2d-labels",
        build_data(split_arrays(lambda: np.zeros((h.N_PER_SPLIT, 3), np.int64), "y_test")),
        "labels have shape",
    ),
    Case("label-count-mismatch", build_data(split_arrays(lambda: np.zeros(4, np.int64), "y_train")), "labels"),
    Case(
        "shape-differs-between-splits",
        build_data(split_arrays(lambda: _u8((h.N_PER_SPLIT, 32, 32)), "x_test")),
        "differ between splits",
    ),
    Case("two-channels", build_data(split_arrays(lambda: _u8((h.N_PER_SPLIT, 2, 28, 28)), "x_train")), "channels"),
    Case("five-dims", build_data(split_arrays(lambda: _u8((h.N_PER_SPLIT, 1, 1, 28, 28)), "x_train")), "shape"),
    Case("scalar-images", build_data(split_arrays(lambda: np.array(3, np.uint8), "x_train")), "no images"),
    Case(
        "rgb-for-grey-teacher",
        build_data(lambda c: c.npz(**{f"x_{s}": _u8((h.N_PER_SPLIT, 3, 28, 28)) for s in h.SPLITS})),
        "do not fit",
    ),
    Case("missing-x-val", build_data(lambda c: c.npz(x_val=None)), "missing arrays"),
    Case("duplicate-class-names", build_data(lambda c: c.npz(class_names=np.array(["a"] * 10))), "distinct"),
    Case("std-zero-array", build_data(lambda c: c.npz(std=np.zeros(1))), "std"),
    Case("nan-mean-array", build_data(lambda c: c.npz(mean=np.array([np.nan]))), "mean"),
    Case("garbage-npz", build_data(lambda c: c.write("data.npz", b"\x00\xffgarbage" * 50)), "readable .npz"),
    Case("zero-byte-npz", build_data(lambda c: c.write("data.npz", b"")), "readable .npz"),
    Case("truncated-npz", build_data(lambda c: c.write("data.npz", h.npz_bytes()[:3000])), "readable .npz"),
    Case("wrong-suffix", build_data(lambda c: c.write("data.txt", "1,2,3\n")), "neither"),
    Case("index-csv-bad-row", build_data(lambda c: c.write("data.csv", "a,b,c,d\n")), "expected path,label"),
    Case("index-csv-bad-split", build_data(lambda c: c.write("data.csv", "1,2,3\n")), "is not one of"),
    Case("missing-dataset", build_data(lambda c: str(c.d / "nope.npz")), "does not exist"),
    Case(
        "prune-nan-pixels",
        lambda c: [
            "prune",
            "--target",
            "x86-64-host",
            "--out",
            c.out,
            "--no-progress",
            "--data",
            c.npz(x_train=_float_with(np.nan)),
        ],
        "nan",
    ),
    Case(
        "distill-labels-out-of-range",
        lambda c: [
            "distill",
            "--ratio",
            "0.5",
            "--out",
            c.out,
            "--no-progress",
            "--data",
            c.npz(y_train=np.full(6, 40)),
        ],
        "41 classes (counted from the largest label)",
    ),
    Case(
        "distill-empty-test",
        lambda c: [
            "distill",
            "--ratio",
            "0.5",
            "--out",
            c.out,
            "--data",
            c.npz(x_test=np.zeros((0, 28, 28), np.uint8), y_test=np.zeros(0)),
        ],
        "no images",
    ),
    Case(
        "export-uint16-data",
        lambda c: [
            "export",
            str(c.a.student),
            "--format",
            "onnx",
            "--out",
            c.out,
            "--data",
            c.npz(x_val=np.full(SHAPE, 7, np.uint16)),
        ],
        "uint16",
    ),
]


def _object_npz() -> bytes:
    import io

    buf = io.BytesIO()
    arrays = h.good_arrays()
    arrays["x_train"] = np.array([object()] * 6, dtype=object)
    np.savez(buf, **arrays)
    return buf.getvalue()


def folder_case(mutate: Callable[[Ctx, Path], None]) -> Callable[[Ctx], list[str]]:
    def make(c: Ctx) -> list[str]:
        root = c.folder()
        mutate(c, root)
        return build(c, "--data", str(root))

    return make


IMAGE_FOLDER = [
    Case(
        "corrupt-png",
        folder_case(lambda c, r: (r / "train/a/bad.png").write_bytes(b"\x89PNG\r\n\x1a\nrubbish" * 9)),
        "train/a/bad.png",
    ),
    Case(
        "truncated-png",
        folder_case(lambda c, r: (r / "val/b/cut.png").write_bytes(h.png_bytes(_u8((28, 28)))[:60])),
        "val/b/cut.png",
    ),
    Case("zero-byte-png", folder_case(lambda c, r: (r / "test/a/empty.png").write_bytes(b"")), "test/a/empty.png"),
    Case("text-as-jpg", folder_case(lambda c, r: (r / "train/b/x.jpg").write_text("not an image")), "train/b/x.jpg"),
    Case(  # 16-bit PNGs are read (scaled to 8 bits, issue 15); one past the pixel limit is refused by name
        "huge-png",
        folder_case(lambda c, r: (r / "train/a/huge.png").write_bytes(h.png_bytes(np.zeros((4100, 4100), np.uint8)))),
        "huge.png",
    ),
    Case("missing-train-split", folder_case(lambda c, r: _rmtree(r / "train")), "lacks train"),
    Case("no-class-folders", build_data(lambda c: _empty_splits(c)), "no class folders"),
    Case(  # an empty val/ or test/ is carved from train (issue 15); an empty train/ is refused
        "train-without-images",
        folder_case(lambda c, r: [p.unlink() for p in (r / "train").rglob("*.png")]),
        "no labeled training images",
    ),
    Case(
        "sizes-differ-in-split",
        folder_case(lambda c, r: (r / "train/a/big.png").write_bytes(h.png_bytes(_u8((30, 30))))),
        "differ in size",
    ),
    Case(
        "sizes-differ-between-splits",
        build_data(lambda c: str(h.write_folder(c.d / "imgs", sizes={"test": (20, 20)}))),
        "differ in size",  # one message for any mix of sizes: declare --input-size
    ),
    Case("constant-images", build_data(lambda c: str(h.write_folder(c.d / "imgs", constant=True))), "std = 0"),
    Case(
        "distill-corrupt-png",
        lambda c: ["distill", "--ratio", "0.5", "--out", c.out, "--data", _corrupt_folder(c)],
        "bad.png",
    ),
]


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def _empty_splits(c: Ctx) -> str:
    for s in h.SPLITS:
        (c.d / "imgs" / s).mkdir(parents=True)
    return str(c.d / "imgs")


def _corrupt_folder(c: Ctx) -> str:
    root = c.folder()
    (root / "test/b/bad.png").write_bytes(b"GIF89a" + b"\x00" * 40)
    return str(root)


def teacher_case(make: Callable[[Ctx], str]) -> Callable[[Ctx], list[str]]:
    return lambda c: build(c, "--teacher-weights", make(c))


def export_case(make: Callable[[Ctx], str], *extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["export", make(c), "--format", "onnx", "--out", c.out, *extra]


def _student_without(c: Ctx, key: str) -> str:
    payload = h.student_payload(c.a)
    del payload[key]
    return c.student(payload)


def _student_missing_layer(c: Ctx) -> str:
    payload = h.student_payload(c.a)
    payload["structure"]["no.such.layer"] = {"out_channels": 4}
    return c.student(payload)


def _student_bad_attr(c: Ctx, value: object) -> str:
    payload = h.student_payload(c.a)
    name = next(iter(payload["structure"]))
    attr = next(iter(payload["structure"][name]))
    payload["structure"][name][attr] = value
    return c.student(payload)


def _student_shape(c: Ctx) -> str:
    payload = h.student_payload(c.a)
    key = next(k for k, v in payload["state_dict"].items() if v.ndim == 4 and v.shape[1] > 1)
    payload["state_dict"][key] = payload["state_dict"][key][:, :1]
    return c.student(payload)


def _student_nan(c: Ctx) -> str:
    payload = h.student_payload(c.a)
    payload["state_dict"] = h.with_nan(payload["state_dict"])
    return c.student(payload)


def _student_naming(c: Ctx, factory: str) -> str:
    payload = h.student_payload(c.a)
    payload["factory"] = factory
    return c.student(payload)


MARKER_FACTORY = """\
from pathlib import Path
Path("IMPORTED").write_text("the file's factory module was imported")
def make():
    Path("CALLED").write_text("the file's factory was called")
    raise SystemExit("a file must never make edgekd call this")
"""


def _student_names_code(c: Ctx) -> str:
    c.write("evil_factory_mod.py", MARKER_FACTORY)
    return _student_naming(c, "evil_factory_mod:make")


def _wrong_shape_state(c: Ctx) -> str:
    state = dict(c.a.teacher_state)
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = state[key][:1]
    return c.teacher(state)


CHECKPOINT = [
    Case("teacher-garbage", teacher_case(lambda c: c.write("teacher.pt", b"\x00garbage" * 40)), "not a PyTorch"),
    Case("teacher-zero-byte", teacher_case(lambda c: c.write("teacher.pt", b"")), "not a PyTorch"),
    Case(
        "teacher-truncated",
        teacher_case(lambda c: c.write("teacher.pt", h.torch_bytes(c.a.teacher_state)[:5000])),
        "not a PyTorch",
    ),
    Case(
        "teacher-pickle-payload",
        teacher_case(lambda c: c.write("teacher.pt", h.pickle_payload(c.d / "PWNED"))),
        "weights_only",
    ),
    Case(
        "teacher-raw-pickle", teacher_case(lambda c: c.write("teacher.pt", h.raw_pickle(c.d / "PWNED"))), "weights_only"
    ),
    Case("teacher-nan-weights", teacher_case(lambda c: c.teacher(h.with_nan(c.a.teacher_state))), "nan"),
    Case(
        "teacher-inf-weights",
        teacher_case(lambda c: c.teacher(h.with_nan(c.a.teacher_state, float("inf")))),
        "infinity",
    ),
    Case("teacher-wrong-shapes", teacher_case(_wrong_shape_state), "does not fit"),
    Case(
        "teacher-missing-keys",
        teacher_case(lambda c: c.teacher(dict(list(c.a.teacher_state.items())[:3]))),
        "does not fit",
    ),
    Case("teacher-a-list", teacher_case(lambda c: c.teacher([1.0, 2.0])), "no state dict"),
    Case("teacher-dict-of-strings", teacher_case(lambda c: c.teacher({"conv.weight": "w"})), "no state dict"),
    Case(
        "teacher-is-a-directory",
        teacher_case(lambda c: str((c.d / "dir.pt").mkdir() or c.d / "dir.pt")),
        "do not exist",
    ),
    Case("teacher-missing", teacher_case(lambda c: str(c.d / "none.pt")), "do not exist"),
    Case("student-garbage", export_case(lambda c: c.write("student.pt", b"PK\x03\x04junk" * 30)), "not a PyTorch"),
    Case("student-zero-byte", export_case(lambda c: c.write("student.pt", b"")), "not a PyTorch"),
    Case(
        "student-truncated",
        export_case(lambda c: c.write("student.pt", c.a.student.read_bytes()[:4000])),
        "not a PyTorch",
    ),
    Case(
        "student-pickle-payload",
        export_case(lambda c: c.write("student.pt", h.pickle_payload(c.d / "PWNED"))),
        "weights_only",
    ),
    Case("student-missing-layer", export_case(_student_missing_layer), "does not fit"),
    Case("student-no-state-dict", export_case(lambda c: _student_without(c, "state_dict")), "not an edgekd student"),
    Case(
        "student-state-dict-not-tensors",
        export_case(lambda c: c.student({**h.student_payload(c.a), "state_dict": {"a": "b"}})),
        "not an edgekd student",
    ),
    Case("student-negative-channels", export_case(lambda c: _student_bad_attr(c, -3)), "cannot take"),
    Case("student-string-channels", export_case(lambda c: _student_bad_attr(c, "many")), "cannot take"),
    Case("student-wrong-shape", export_case(_student_shape), "has a weight of shape"),
    Case("student-nan-weights", export_case(_student_nan), "nan"),
    Case(
        "student-structure-not-dict",
        export_case(lambda c: c.student({**h.student_payload(c.a), "structure": [1, 2]})),
        "not an edgekd student",
    ),
    Case("student-not-a-dict", export_case(lambda c: c.student([1, 2, 3]), "--factory", "nomod:make"), "nomod"),
    Case("student-names-code-export", export_case(_student_names_code), "evil_factory_mod"),
    Case(
        "student-names-mkdtemp",
        export_case(lambda c: _student_naming(c, "tempfile:mkdtemp")),
        "tempfile:mkdtemp",
    ),
    Case(
        "distill-student-pickle",
        lambda c: [
            "distill",
            "--student",
            c.write("student.pt", h.pickle_payload(c.d / "PWNED")),
            "--out",
            c.out,
            "--data",
            c.npz(),
        ],
        "weights_only",
    ),
    Case(
        "distill-student-nan",
        lambda c: ["distill", "--student", _student_nan(c), "--out", c.out, "--data", c.npz()],
        "nan",
    ),
    Case(
        "distill-student-missing-layer",
        lambda c: ["distill", "--student", _student_missing_layer(c), "--out", c.out, "--data", c.npz()],
        "does not fit",
    ),
]


def bench(make: Callable[[Ctx], str], *extra: str) -> Callable[[Ctx], list[str]]:
    return lambda c: ["bench", make(c), "--target", "x86-64-host", "--runs", "3", "--warmup", "0", *extra]


def _xml_with_bin(c: Ctx, xml: bytes) -> str:
    c.write("m.bin", b"\x00" * 64)
    return c.write("m.xml", xml)


EXPORTED = [
    Case("onnx-garbage", bench(lambda c: c.write("m.onnx", b"garbage" * 100)), "m.onnx"),
    Case("onnx-zero-byte", bench(lambda c: c.write("m.onnx", b"")), "empty"),
    Case("onnx-truncated", bench(lambda c: c.write("m.onnx", c.a.onnx.read_bytes()[:40])), "m.onnx"),
    Case("tflite-garbage", bench(lambda c: c.write("m.tflite", b"\x01" * 200)), "TFL3"),
    Case("tflite-zero-byte", bench(lambda c: c.write("m.tflite", b"")), "empty"),
    Case("tflite-truncated", bench(lambda c: c.write("m.tflite", b"\x1c\x00\x00\x00TFL3" + b"\x00" * 30)), "m.tflite"),
    Case("openvino-garbage-xml", bench(lambda c: _xml_with_bin(c, b"\x00\x01binary")), "not an OpenVINO"),
    Case("openvino-xml-without-bin", bench(lambda c: c.write("m.xml", b"<?xml version='1.0'?><net/>")), "m.bin"),
    Case(
        "openvino-truncated-xml", bench(lambda c: _xml_with_bin(c, b"<?xml version='1.0'?><net name='x'><lay")), "m.xml"
    ),
    Case("unknown-suffix", bench(lambda c: c.write("m.pt", b"x" * 10)), "unknown model kind"),
    Case("model-is-a-directory", bench(lambda c: str((c.d / "m.onnx").mkdir() or c.d / "m.onnx")), "openvino"),
    Case("sidecar-binary-garbage", bench(lambda c: _onnx_with_sidecar(c, b"\xff\x00\x13garbage")), "sidecar"),
    Case("sidecar-a-list", bench(lambda c: _onnx_with_sidecar(c, "[1, 2]")), "sidecar"),
    Case("sidecar-deep-nesting", bench(lambda c: _onnx_with_sidecar(c, h.nested_json(100_000))), "sidecar"),
    Case("sidecar-input-shape-text", bench(lambda c: _onnx_with_sidecar(c, '{"input_shape": "big"}')), "input_shape"),
    Case("model-missing", bench(lambda c: str(c.d / "none.onnx")), "not found"),
]


def _onnx_with_sidecar(c: Ctx, sidecar: bytes | str) -> str:
    model = c.write("m.onnx", c.a.onnx.read_bytes())
    c.write("m.onnx.sidecar.json", sidecar)
    return model


def bench_ok(*extra: str) -> Callable[[Ctx], list[str]]:
    return bench(lambda c: str(c.a.onnx), *extra)


def ssh(*extra: str) -> Callable[[Ctx], list[str]]:
    return bench_ok("--runner", "ssh", "--host", "board.invalid", *extra)


SSH = [
    Case("ssh-key-file-missing", ssh("--key-file", "none_key"), "key file not found"),
    Case("ssh-key-file-garbage", lambda c: ssh("--key-file", c.write("id_x", b"\x00garbage key"))(c), "private key"),
    Case(
        "ssh-key-file-a-pem-of-junk",
        lambda c: ssh(
            "--key-file",
            c.write("id_y", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"),
        )(c),
        "private key",
    ),
    Case("ssh-port-out-of-range", ssh("--port", "70000"), "--port"),
    Case("ssh-port-negative", ssh("--port", "-1"), "--port"),
    Case("ssh-host-with-newline", lambda c: bench_ok("--runner", "ssh", "--host", "pi\nProxyCommand x")(c), "--host"),
    Case("ssh-host-blank", lambda c: bench_ok("--runner", "ssh", "--host", "  ")(c), "--host"),
    Case("ssh-host-empty", lambda c: bench_ok("--runner", "ssh", "--host", "")(c), "--host"),
    Case("ssh-option-for-local-runner", bench_ok("--host", "pi5.local"), "host"),
]
