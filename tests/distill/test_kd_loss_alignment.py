"""The KD loss sees, for every training batch, the teacher logits of exactly the images the student sees."""

import torch

from edgekd.distill.losses.kd_loss import KDLoss
from edgekd.distill.teacher_cache import compute_teacher_cache
from edgekd.distill.trainer import TrainSettings, train
from edgekd.models.example_teacher import ResidualCNN


def test_cached_teacher_logits_match_a_fresh_forward_of_the_student_inputs(tiny_data):
    torch.manual_seed(0)
    teacher = ResidualCNN((8, 16), 1).train()  # BN in train mode would change its outputs: the cache uses eval
    student = ResidualCNN((4, 8), 1)
    n = 200  # a stratified subset, shuffled per epoch, last batch partial
    cache = compute_teacher_cache([teacher], tiny_data, tiny_data.train.subset(n))
    inputs: list[torch.Tensor] = []
    handed: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = student.register_forward_pre_hook(
        lambda m, args: inputs.append(args[0].detach().clone()) if m.training else None  # not val passes
    )
    kd = KDLoss(temperature=4.0, alpha=0.7)

    def spy(s_logits: torch.Tensor, y: torch.Tensor, t_logits: torch.Tensor | None) -> torch.Tensor:
        assert t_logits is not None
        handed.append((y.clone(), t_logits.clone()))
        return kd(s_logits, y, t_logits)

    settings = TrainSettings(epochs=2, batch_size=64, augment=False, max_train_samples=n, eval_initial=False)
    try:
        train(student, tiny_data, settings, spy, cache)
    finally:
        hook.remove()
    assert len(handed) == 2 * 4 and len(inputs) == len(handed)
    teacher.eval()
    part = tiny_data.train.subset(n)  # the rows the trainer uses: a stratified sample, not the first n
    pool = tiny_data.to_tensor(part.x).flatten(1)
    seen_rows: set[int] = set()
    for x, (y, t_logits) in zip(inputs, handed, strict=True):
        with torch.no_grad():
            fresh = teacher(x)
        torch.testing.assert_close(t_logits, fresh, rtol=1e-2, atol=2e-2)  # fp16 cache
        rows = torch.cdist(x.flatten(1), pool).argmin(1)
        assert torch.equal(torch.from_numpy(part.y[rows.numpy()]), y)
        seen_rows.update(rows.tolist())
    assert seen_rows == set(range(n)), "every image of the subset is trained on, none outside it"
