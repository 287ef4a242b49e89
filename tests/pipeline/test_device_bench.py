"""The build's device bench: the profile's runner from the registry, or one clear line and prediction."""

import logging
from types import SimpleNamespace

from edgekd.config.build_config import BuildConfig
from edgekd.config.targets import load_target
from edgekd.pipeline.cache import StageCache
from edgekd.pipeline.stage_runner import StageRunner
from edgekd.pipeline.stages import DeviceBench


def context(tmp_path, target: str) -> SimpleNamespace:
    inputs = SimpleNamespace(profile=load_target(target), config=BuildConfig())
    return SimpleNamespace(inputs=inputs, runner=StageRunner(StageCache(tmp_path / ".stages")))


def test_unreachable_board_falls_back_to_prediction_with_one_line(tmp_path, caplog):
    artifact = tmp_path / "m.tflite"
    artifact.write_bytes(b"not run")
    ctx = context(tmp_path, "cortex-a76")  # ssh runner, no board address configured
    device = DeviceBench(ctx)
    with caplog.at_level(logging.WARNING, logger="edgekd.pipeline.stages"):
        assert device.measure(artifact, threads=1) is None
        assert device.measure(artifact, threads=1) is None  # not retried for every artifact
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "cortex-a76: ssh runner unreachable" in lines[0] and "predicted" in lines[0]
    assert not list((tmp_path / ".stages").glob("bench-*"))  # nothing cached for a failed measurement


def test_host_target_has_no_separate_device_bench(tmp_path):
    assert DeviceBench(context(tmp_path, "x86-64-host")).measure(tmp_path / "m.onnx", threads=1) is None
