import pytest
import torch

from edgekd.core.errors import InputError
from edgekd.models.example_teacher import ResidualCNN
from edgekd.models.loading import load_factory, load_model, load_student, read_state_dict, save_student
from edgekd.prune.pruner import PruneSettings, prune


def tiny():
    return ResidualCNN((16, 32), blocks_per_stage=1)


def test_pruned_student_round_trips_without_pickled_modules(tmp_path):
    torch.manual_seed(0)
    pruned = prune(tiny(), torch.randn(1, 1, 28, 28), 0.5, PruneSettings()).model
    path = save_student(pruned, tmp_path / "s.pt", "tests.models.test_loading:tiny")
    torch.load(path, weights_only=True)  # loads under the safe unpickler
    rebuilt = load_student(path)
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(rebuilt(x), pruned(x))
    assert rebuilt.stem[0].out_channels == pruned.stem[0].out_channels < 16


def test_state_dict_file_loads_into_factory(tmp_path):
    model = tiny()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "t.pt")
    loaded = load_model("tests.models.test_loading:tiny", tmp_path / "t.pt")
    x = torch.randn(2, 1, 28, 28)
    assert torch.allclose(loaded(x), model.eval()(x))


def test_not_a_checkpoint_is_an_input_error(tmp_path):
    bad = tmp_path / "teacher.pt"
    bad.write_text("this is not a checkpoint")
    with pytest.raises(InputError, match="not a PyTorch checkpoint"):
        read_state_dict(bad)


def test_pickled_module_is_refused(tmp_path):
    torch.save(tiny(), tmp_path / "module.pt")
    with pytest.raises(InputError, match="weights_only=True"):
        read_state_dict(tmp_path / "module.pt")


@pytest.mark.parametrize(("spec", "match"), [
    ("nonexistent_mod:f", "cannot import module"),
    ("tests.models.test_loading:nope", "has no callable"),
    ("no_colon", "module:function"),
])  # fmt: skip
def test_factory_errors(spec, match):
    with pytest.raises(InputError, match=match):
        load_factory(spec)


def test_weights_that_do_not_fit(tmp_path):
    torch.save(ResidualCNN((8, 16), 1).state_dict(), tmp_path / "w.pt")
    with pytest.raises(InputError, match="does not fit"):
        load_model("tests.models.test_loading:tiny", tmp_path / "w.pt")
