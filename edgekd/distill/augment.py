"""Batch augmentation for distillation: flip, random resized crop, colour jitter, mixup / cutmix.

Applied to a normalised batch on its device, with a seeded generator (reproducible). The teacher sees
the same augmented batch as the student, so its cached outputs cannot be used while any of this is on.
Mixup and cutmix mix two images; the hard-label term uses the label of the larger share (the KD term
reads the teacher's output on the mixed image itself). Colour jitter works on normalised values:
``x * (1 + c) + b`` with ``c, b`` uniform in ``[-strength, strength]`` per image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgekd.config.build_config import AugmentConfig


def _rrc(x: torch.Tensor, min_area: float, gen: torch.Generator) -> torch.Tensor:
    n, _, h, w = x.shape
    out = torch.empty_like(x)
    for i in range(n):
        area = float(torch.empty(1).uniform_(min_area, 1.0, generator=gen)) * h * w
        ratio = float(torch.exp(torch.empty(1).uniform_(-0.2877, 0.2877, generator=gen)))  # 3/4 .. 4/3
        ch = max(1, min(h, round((area / ratio) ** 0.5)))
        cw = max(1, min(w, round((area * ratio) ** 0.5)))
        top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        crop = x[i : i + 1, :, top : top + ch, left : left + cw]
        out[i] = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    return out


def augment(
    x: torch.Tensor, y: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """An augmented copy of the batch and the labels to use for its hard-label term."""
    n = x.shape[0]
    dev = x.device
    if cfg.flip:
        flip = (torch.rand(n, generator=gen) < 0.5).to(dev)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if cfg.random_resized_crop:
        x = _rrc(x, cfg.random_resized_crop, gen)
    if cfg.color_jitter:
        s = cfg.color_jitter
        c = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1).to(dev) * s
        b = (torch.rand(n, 1, 1, 1, generator=gen) * 2 - 1).to(dev) * s
        x = x * (1 + c) + b
    mix = [a for a in (("mixup", cfg.mixup), ("cutmix", cfg.cutmix)) if a[1] > 0]
    if mix and n > 1:
        kind, alpha = mix[int(torch.randint(0, len(mix), (1,), generator=gen))]
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        perm = torch.randperm(n, generator=gen).to(dev)
        if kind == "mixup":
            x = lam * x + (1 - lam) * x[perm]
        else:
            h, w = x.shape[2:]
            ch, cw = int(h * (1 - lam) ** 0.5), int(w * (1 - lam) ** 0.5)
            top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
            x = x.clone()
            x[:, :, top : top + ch, left : left + cw] = x[perm][:, :, top : top + ch, left : left + cw]
            lam = 1 - ch * cw / (h * w)
        if lam < 0.5:
            y = y[perm]
    return x, y
