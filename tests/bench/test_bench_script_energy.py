"""The bench script reads RAPL package counters around its timed loop (stdlib only, no sensor needed here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from edgekd.bench import bench_script
from edgekd.bench.energy import figure_from_script


def _domain(root: Path, name: str, energy: int, max_range: int = 1000) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def test_only_package_domains_are_summed_and_a_wrap_is_undone(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_script, "POWERCAP", tmp_path)
    p0 = _domain(tmp_path, "intel-rapl:0", 900)
    p1 = _domain(tmp_path, "intel-rapl:1", 100)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a core sub-domain: already inside package 0
    domains = bench_script._rapl_packages()
    assert domains == [p0, p1]
    before = bench_script._rapl_read(domains)
    (p0 / "energy_uj").write_text("50\n")  # wrapped: 900 -> 1000 -> 50 is 150 uJ
    (p1 / "energy_uj").write_text("400\n")
    assert bench_script._rapl_delta_uj(domains, before, bench_script._rapl_read(domains)) == 150 + 300


def test_no_powercap_means_no_energy(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_script, "POWERCAP", tmp_path / "absent")
    assert bench_script._rapl_packages() == []


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3)).eval()
    net(torch.zeros(1, 1, 8, 8))
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    torch.onnx.export(net, (torch.randn(1, 1, 8, 8),), str(path), dynamo=False, input_names=["x"])
    return path


@pytest.mark.parametrize("counter", [0, 12345])
def test_a_local_run_reports_the_counter_and_the_build_turns_it_into_a_figure(tmp_path, counter, onnx_model):
    """End to end through LocalRunner: a static fake counter gives 0 uJ over the loop, labelled rapl."""
    from edgekd.bench.local_runner import LocalRunner
    from edgekd.bench.runner_base import BenchSettings

    root = tmp_path / "powercap"
    _domain(root, "intel-rapl:0", counter)
    model = onnx_model
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("EDGEKD_POWERCAP_ROOT", str(root))
    try:
        with LocalRunner() as runner:
            result = runner.run(runner.push(model), BenchSettings(runs=5, warmup=1))
    finally:
        monkeypatch.undo()
    assert result.extra["energy_uj"] == 0.0
    assert result.extra["energy_method"].startswith("rapl")
    figure = figure_from_script(result.extra, len(result.samples_ms))
    assert figure is not None and figure.evidence == "measured" and figure.mj_per_inference == 0.0
