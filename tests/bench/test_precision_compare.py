from pathlib import Path

import pytest

from edgekd.bench.precision_compare import compare_precisions, int8_note
from edgekd.core.host import cpu_flags


def _e(fmt: str, precision: str, ms: float) -> dict:
    return {"format": fmt, "precision": precision, "ms": ms, "runtime": f"{fmt}-rt"}


def test_pairs_formats_and_computes_speedup():
    rows = compare_precisions(
        [_e("onnx", "fp32", 3.0), _e("onnx", "int8", 1.5), _e("tflite", "int8", 2.0), _e("openvino", "fp32", 1.0),
         _e("openvino", "int8", 1.2)],
        cpu_flags={"avx2", "avx512_vnni"},
    )  # fmt: skip
    assert [r["format"] for r in rows] == ["onnx", "openvino"]  # tflite has no fp32 to compare with
    onnx, ov = rows
    assert onnx["speedup"] == pytest.approx(2.0) and onnx["int8_faster"]
    assert "avx512_vnni" in onnx["note"]
    assert ov["speedup"] == pytest.approx(1 / 1.2, abs=1e-3) and not ov["int8_faster"]
    assert "not faster" in ov["note"] and "small" in ov["note"]


def test_within_noise_is_not_called_faster():
    (row,) = compare_precisions([_e("onnx", "fp32", 1.03), _e("onnx", "int8", 1.0)], cpu_flags={"avx2"})
    assert not row["int8_faster"]


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "fma"}, "no VNNI"),
        ({"avx2", "avx_vnni"}, "although the CPU has avx_vnni"),
        ({"asimd"}, "no dot-product"),
        (set(), "overhead dominates"),
    ],
)
def test_reason_follows_the_cpu_features(flags, expected):
    assert expected in int8_note(False, 0.9, "onnx", flags)


def test_reads_x86_and_arm_cpuinfo(tmp_path: Path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512_vnni\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU part\t: 0xd0b\n")
    assert cpu_flags(x86) == {"fpu", "sse2", "avx2", "avx512_vnni"}
    assert "asimddp" in cpu_flags(arm)
    assert cpu_flags(tmp_path / "missing") == set()
