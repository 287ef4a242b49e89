"""ExecuTorch specifics beyond the exporter contract (tests/export/test_exporters.py covers the rest):
calibration batching, a PT2E-QAT graph through ``export_quantized``, and ``.pte`` in the bench path.

The ``.pte`` files come from the session's ``export_once`` fixture, shared with the contract tests.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.bench.local_runner import LocalRunner
from edgekd.bench.runner_base import BenchSettings, check_model_file
from edgekd.cli.main import main
from edgekd.core.errors import ConfigError, InputError
from edgekd.export import check_parity, read_sidecar
from edgekd.export.executorch_exporter import (
    CALIBRATION_BATCH,
    ExecutorchExporter,
    calibration_chunks,
)


@pytest.mark.parametrize("n", [1, 2, 3, 31, 32, 33, 64, 65, 256, 257, 1000])
def test_calibration_chunks_cover_every_sample_once_without_single_sample_batches(n: int) -> None:
    parts = calibration_chunks(n)
    covered = [i for part in parts for i in range(n)[part]]
    assert covered == list(range(n))
    sizes = [part.stop - part.start for part in parts]
    assert max(sizes) <= CALIBRATION_BATCH
    assert n == 1 or min(sizes) >= 2


@pytest.mark.slow
def test_int8_with_an_odd_number_of_calibration_images_agrees(
    trained_model, eval_batch, calibration, sidecar_info, tmp_path: Path
) -> None:
    exporter = ExecutorchExporter()
    art = exporter.export(
        trained_model, torch.from_numpy(eval_batch.x[:1]), "int8", tmp_path, sidecar_info, calibration[:33]
    )
    n = 256
    parity = check_parity(exporter.load_runtime(art), eval_batch.x[:n], eval_batch.reference[:n], eval_batch.labels[:n])
    assert parity.agreement >= 0.95, parity


@pytest.mark.slow
def test_export_quantized_takes_a_pt2e_qat_graph(trained_model, eval_batch, sidecar_info, tmp_path: Path) -> None:
    """The build's QAT path for executorch: prepare (XNNPACK quantiser, NCHW), train, convert, export as trained."""
    from edgekd.distill.qat_pt2e import convert_pt2e_qat, observe, prepare_pt2e_qat

    x = torch.from_numpy(eval_batch.x[:64])
    before = {k: v.clone() for k, v in trained_model.state_dict().items()}
    qat = prepare_pt2e_qat(trained_model, x[:2], "executorch")
    assert qat.layout == "NCHW" and type(qat.quantizer).__name__ == "XNNPACKQuantizer"
    observe(qat, x)
    opt = torch.optim.SGD(qat.parameters(), lr=1e-3)
    for i in range(0, len(x), 16):  # a few QAT steps: the exporter must take the trained graph as it is
        loss = torch.nn.functional.cross_entropy(qat(x[i : i + 16]), torch.from_numpy(eval_batch.labels[i : i + 16]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    qmodel = convert_pt2e_qat(qat)
    assert (qmodel.format, qmodel.layout, qmodel.method) == ("executorch", "NCHW", "qat-pt2e")
    with torch.no_grad():
        own = qmodel.module(torch.from_numpy(eval_batch.x[:128])).numpy()

    exporter = ExecutorchExporter()
    art = exporter.export_quantized(qmodel, x[:1], tmp_path, sidecar_info)
    assert Path(art.path).name == "model-int8.pte"
    assert art.meta["quantization"] == "qat-pt2e" and read_sidecar(Path(art.path)).precision == "int8"
    parity = check_parity(exporter.load_runtime(art), eval_batch.x[:128], own, eval_batch.labels[:128])
    assert parity.agreement >= 0.97, parity
    assert all(torch.equal(before[k], v) for k, v in trained_model.state_dict().items())  # student untouched

    with pytest.raises(ConfigError, match="cannot be exported as executorch"):
        exporter.export_quantized(replace(qmodel, format="tflite"), x[:1], tmp_path, sidecar_info)


def test_a_pte_without_the_executorch_identifier_is_rejected_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pte"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(InputError, match="not an ExecuTorch program"):
        check_model_file(bad)


@pytest.mark.slow
def test_local_runner_runs_pte_with_real_inputs_and_gives_its_outputs(export_once, eval_batch, tmp_path: Path) -> None:
    done = export_once("executorch", "fp32")
    x = eval_batch.x[:6]
    np.save(tmp_path / "x.npy", x)
    settings = BenchSettings(warmup=2, runs=5, input_npy=tmp_path / "x.npy", save_outputs=True)
    with LocalRunner() as runner:
        result = runner.run(runner.push(Path(done.artifact.path)), settings)
    assert result.runtime.startswith("executorch ") and result.evidence == "measured-host"
    assert len(result.samples_ms) >= 5 and all(s > 0 for s in result.samples_ms)
    expected = done.exporter.load_runtime(done.artifact)(x)
    assert result.outputs is not None and result.outputs.shape == expected.shape
    np.testing.assert_allclose(result.outputs, expected, atol=1e-5)


@pytest.mark.slow
def test_edgekd_bench_on_a_pte(export_once, capsys) -> None:
    path = str(export_once("executorch", "int8").artifact.path)
    code = main(["bench", path, "--target", "x86-64-host", "--runs", "10", "--warmup", "2", "--json"])
    figures = json.loads(capsys.readouterr().out)
    assert code == 0
    assert figures["stats"]["runs"] == 10 and figures["stats"]["p50_ms"] > 0
    assert figures["runtime"].startswith("executorch") and figures["evidence"] == "measured-host"


@pytest.mark.slow
def test_edgekd_bench_says_a_pte_batch_is_fixed(export_once, capsys) -> None:
    path = str(export_once("executorch", "fp32").artifact.path)
    code = main(["bench", path, "--target", "x86-64-host", "--runs", "2", "--warmup", "0", "--batch", "4"])
    assert code == 2
    assert "fixed at [1, 1, 28, 28]" in capsys.readouterr().err


def test_executorch_exporter_takes_models_quantised_by_training() -> None:
    from edgekd.export.base import Exporter, QuantizedExporter

    assert isinstance(ExecutorchExporter(), Exporter) and isinstance(ExecutorchExporter(), QuantizedExporter)
