"""Shared fixtures for the export tests: a small trained model, data, and exports made once per session."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from edgekd.core.artifact import Artifact
from edgekd.data.bundled import example_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.export import Exporter, SidecarInfo, get_exporter
from edgekd.models.example_teacher import ResidualCNN

log = logging.getLogger(__name__)

TRAIN_STEPS = 300
TRAIN_BATCH = 64
EVAL_SAMPLES = 1000  # agreement on 256 samples moved by ~1 % with the sample choice
CALIBRATION_SAMPLES = 256
RECIPE = f"residualcnn-16-32-sgd-onecycle-{TRAIN_STEPS}x{TRAIN_BATCH}-v1"


def _train(bundle: DatasetBundle) -> ResidualCNN:
    """~300 SGD steps: about 75 % test accuracy, enough for agreement figures to mean something."""
    torch.manual_seed(0)
    model = ResidualCNN(widths=(16, 32), blocks_per_stage=1, num_classes=bundle.num_classes)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=TRAIN_STEPS)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(TRAIN_STEPS):
        idx = rng.integers(0, len(bundle.train), TRAIN_BATCH)
        x = bundle.to_tensor(bundle.train.x[idx])
        y = torch.from_numpy(bundle.train.y[idx]).long()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


@pytest.fixture(scope="session")
def bundle() -> DatasetBundle:
    return example_dataset()


@pytest.fixture(scope="session")
def sidecar_info(bundle: DatasetBundle) -> SidecarInfo:
    return SidecarInfo.from_bundle(bundle)


@pytest.fixture(scope="session")
def trained_model(bundle: DatasetBundle, request: pytest.FixtureRequest) -> ResidualCNN:
    """The trained test model; its weights are cached in pytest's cache, keyed by recipe and data."""
    key = f"{RECIPE}-{torch.__version__}-{bundle.digest[:16]}"
    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cached = Path(cache.mkdir("edgekd-export-model")) / f"{key}.pt" if cache else None
    if cached is not None and cached.is_file():
        model = ResidualCNN(widths=(16, 32), blocks_per_stage=1, num_classes=bundle.num_classes)
        model.load_state_dict(torch.load(cached, weights_only=True))
        return model.eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared; one core trains this in ~20 s
    try:
        started = time.perf_counter()
        model = _train(bundle)
        log.info("trained test model in %.1f s", time.perf_counter() - started)
    finally:
        torch.set_num_threads(threads)
    if cached is not None:
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        cached.write_bytes(buf.getvalue())
    return model


@dataclass(frozen=True)
class EvalBatch:
    """Fixed test samples with their labels and the PyTorch model's logits."""

    x: np.ndarray
    labels: np.ndarray
    reference: np.ndarray


@pytest.fixture(scope="session")
def eval_batch(bundle: DatasetBundle, trained_model: ResidualCNN) -> EvalBatch:
    x = bundle.to_tensor(bundle.test.x[:EVAL_SAMPLES])
    with torch.no_grad():
        ref = trained_model(x).numpy()
    return EvalBatch(x.numpy(), bundle.test.y[:EVAL_SAMPLES], ref)


@pytest.fixture(scope="session")
def calibration(bundle: DatasetBundle) -> np.ndarray:
    return bundle.to_tensor(bundle.val.x[:CALIBRATION_SAMPLES]).numpy()


@dataclass(frozen=True)
class Export:
    """One export made by the session fixture."""

    exporter: Exporter
    artifact: Artifact
    seconds: float


@pytest.fixture(scope="session")
def export_once(
    trained_model: ResidualCNN,
    eval_batch: EvalBatch,
    calibration: np.ndarray,
    sidecar_info: SidecarInfo,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str, str], Export]:
    """``export_once(name, precision)``: export the trained model once per session and reuse it."""
    done: dict[tuple[str, str], Export] = {}
    dirs: dict[str, Path] = {}

    def make(name: str, precision: str) -> Export:
        if (name, precision) not in done:
            out_dir = dirs.setdefault(name, tmp_path_factory.mktemp(f"export-{name}"))
            exporter = get_exporter(name)
            started = time.perf_counter()
            artifact = exporter.export(
                trained_model,
                torch.from_numpy(eval_batch.x[:4]),
                precision,
                out_dir,
                sidecar_info,
                calibration=calibration if precision == "int8" else None,
            )
            done[name, precision] = Export(exporter, artifact, time.perf_counter() - started)
        return done[name, precision]

    return make
