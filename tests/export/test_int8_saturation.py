"""int8 weights default to 7 bits exactly where this CPU's u8*s8 multiply-adds saturate (x86 without VNNI)."""

import pytest

from edgekd.export import base
from edgekd.export.onnx_exporter import OnnxExporter
from edgekd.export.openvino_exporter import OpenvinoExporter


@pytest.fixture
def cpu_flags(monkeypatch):
    def use(flags: str) -> None:
        monkeypatch.setattr(base, "cpu_flags", lambda: set(flags.split()))
        base.int8_saturates_here.cache_clear()

    yield use
    base.int8_saturates_here.cache_clear()


@pytest.mark.parametrize(
    ("flags", "saturates"),
    [
        ("sse4_2 avx2 fma", True),
        ("avx2 avx512f avx512_vnni", False),
        ("avx2 avx_vnni", False),
        ("fp asimd asimddp", False),
    ],
)
def test_saturation_follows_the_cpu_flags(cpu_flags, flags, saturates):
    cpu_flags(flags)
    assert base.int8_saturates_here() is saturates
    assert OnnxExporter().reduce_range is saturates and OpenvinoExporter().reduce_range is saturates
    assert OnnxExporter(reduce_range=not saturates).reduce_range is not saturates  # an explicit choice wins
