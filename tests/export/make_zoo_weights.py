"""Train the small zoo models the export contract test uses and store them in tests/export/zoo_weights/.

Random weights give near-flat logits where top-1 agreement between PyTorch and an int8 runtime says
nothing, so the contract test needs trained models; training all eight takes minutes of CPU, so the
weights (~170k parameters in all, half-width models) are generated once with this script and shipped.

Usage:  .venv/bin/python -m tests.export.make_zoo_weights [ARCH ...]
Recipe: AdamW + one-cycle (max lr 3e-3), 300 steps of 64 images from the bundled Fashion-MNIST train
split, seed 0, width 0.5. The manifest records each file's sha256 and its accuracy on 1000 test images.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgekd.core.hashing import sha256_file
from edgekd.data.bundled import example_dataset
from edgekd.data.datasets import DatasetBundle
from edgekd.models.zoo import ZOO

FOLDER = Path(__file__).with_name("zoo_weights")
WIDTH = 0.5
TRAIN_STEPS = 300
TRAIN_BATCH = 64
MAX_LR = 3e-3
RECIPE = f"zoo-w{WIDTH}-adamw-onecycle-{TRAIN_STEPS}x{TRAIN_BATCH}-seed0"


def build(arch: str, bundle: DatasetBundle) -> nn.Module:
    return ZOO[arch](width=WIDTH, num_classes=bundle.num_classes)


def train(arch: str, bundle: DatasetBundle) -> nn.Module:
    torch.manual_seed(0)
    model = build(arch, bundle)
    opt = torch.optim.AdamW(model.parameters(), lr=MAX_LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=TRAIN_STEPS)
    rng = np.random.default_rng(0)
    model.train()
    for _ in range(TRAIN_STEPS):
        idx = rng.integers(0, len(bundle.train), TRAIN_BATCH)
        x = bundle.to_tensor(bundle.train.x[idx])
        loss = nn.functional.cross_entropy(model(x), torch.from_numpy(bundle.train.y[idx]).long())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()


def held_out_accuracy(model: nn.Module, bundle: DatasetBundle, n: int = 1000) -> float:
    with torch.inference_mode():
        pred = model(bundle.to_tensor(bundle.test.x[:n])).argmax(1).numpy()
    return float((pred == bundle.test.y[:n]).mean())


def main(archs: list[str]) -> int:
    torch.set_num_threads(1)
    bundle = example_dataset()
    FOLDER.mkdir(exist_ok=True)
    manifest_path = FOLDER / "MANIFEST.json"
    for arch in archs or list(ZOO):
        started = time.perf_counter()
        model = train(arch, bundle)
        buf = io.BytesIO()
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, buf)
        path = FOLDER / f"{arch}.pt"
        path.write_bytes(buf.getvalue())
        acc = held_out_accuracy(model, bundle)
        # re-read: several processes may train different archs at once
        manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {"models": {}}
        manifest["models"][arch] = {"file": path.name, "sha256": sha256_file(path), "test_accuracy_1000": acc,
                                    "train_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        print(f"{arch}: accuracy {acc:.3f} in {manifest['models'][arch]['train_seconds']} s", flush=True)
        manifest.update({"recipe": RECIPE, "torch": torch.__version__, "data_digest": bundle.digest,
                         "generated_by": "python -m tests.export.make_zoo_weights",
                         "date": time.strftime("%Y-%m-%d")})  # fmt: skip
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
