import json

import numpy as np
import torch

from edgekd.bench.energy import NO_ENERGY_EVIDENCE
from edgekd.bench.local_runner import LocalRunner
from edgekd.bench.qemu_runner import QemuRunner
from edgekd.core.evidence import EVIDENCE_LEVELS, Evidence
from edgekd.core.inference import accuracy, predict_logits, run_chunked
from edgekd.gate.evidence import EVIDENCE_RANK
from edgekd.report.report_data import latency_entry


def test_one_definition_of_evidence_levels():
    assert EVIDENCE_LEVELS == ("measured-device", "measured-emulated", "measured-host", "predicted")
    assert LocalRunner.evidence is Evidence.MEASURED_HOST and QemuRunner.evidence is Evidence.MEASURED_EMULATED
    assert Evidence.MEASURED_EMULATED in NO_ENERGY_EVIDENCE and Evidence.MEASURED_EMULATED not in EVIDENCE_RANK
    # a plain string from an older report ranks like the member
    assert EVIDENCE_RANK["measured-host"] == EVIDENCE_RANK[Evidence.MEASURED_HOST]


def test_evidence_serialises_as_its_plain_string():
    entry = latency_entry(1.0, "p50", Evidence.PREDICTED, "model", "fp32", 1)
    assert json.loads(json.dumps(entry))["evidence"] == "predicted"
    assert f"{Evidence.MEASURED_DEVICE}" == "measured-device"
    assert not Evidence.PREDICTED.measured and Evidence.MEASURED_EMULATED.measured


class _Data:
    num_classes = 3

    def batches(self, split, batch_size):
        for i in range(0, len(split), batch_size):
            yield torch.as_tensor(split[i : i + batch_size]), None, None


def test_predict_logits_batches_and_restores_train_mode():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5)).train()
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    out = predict_logits(model, _Data(), x, batch_size=3)
    assert out.shape == (10, 3) and model.training
    with torch.no_grad():
        np.testing.assert_allclose(out, model[0](torch.as_tensor(x)).numpy(), atol=1e-6)  # dropout was off
    assert predict_logits(model, _Data(), x[:0]).shape == (0, 3)


def test_accuracy_and_chunked_runs():
    assert accuracy(np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]), np.array([1, 0, 0])) == 2 / 3
    assert accuracy(np.zeros((0, 2)), np.zeros(0)) == 0.0
    calls = []

    def run(batch):
        calls.append(len(batch))
        return batch + 1

    np.testing.assert_array_equal(run_chunked(run, np.arange(7.0), chunk=3), np.arange(1.0, 8.0))
    assert calls == [3, 3, 1]
