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
    rebuilt = load_student(path, "tests.models.test_loading:tiny")
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


FIELD = "tests.models.user_factories:field_net"


def _shrink(model: torch.nn.Module) -> torch.nn.Module:
    """Resize every layer of a FieldNet by hand, as a pruner would, without Torch-Pruning."""
    from torch import nn

    m = model
    keep = 16
    m.stem.weight = nn.Parameter(m.stem.weight[:keep].clone())
    m.stem.bias = nn.Parameter(m.stem.bias[:keep].clone())
    m.stem.out_channels = keep
    for bn_name in ("bn",):
        bn = getattr(m, bn_name)
        bn.weight, bn.bias = nn.Parameter(bn.weight[:keep].clone()), nn.Parameter(bn.bias[:keep].clone())
        bn.running_mean, bn.running_var = bn.running_mean[:keep].clone(), bn.running_var[:keep].clone()
        bn.num_features = keep
    m.gn.weight, m.gn.bias = nn.Parameter(m.gn.weight[:keep].clone()), nn.Parameter(m.gn.bias[:keep].clone())
    m.gn.num_channels, m.gn.num_groups = keep, 2
    m.scale.gamma = nn.Parameter(m.scale.gamma[:keep].clone())
    m.conv.weight = nn.Parameter(m.conv.weight[:24, :keep].clone())
    m.conv.bias = nn.Parameter(m.conv.bias[:24].clone())
    m.conv.in_channels, m.conv.out_channels = keep, 24
    m.norm.weight, m.norm.bias = nn.Parameter(m.norm.weight[:24].clone()), nn.Parameter(m.norm.bias[:24].clone())
    m.norm.normalized_shape = (24,)
    m.embed.weight = nn.Parameter(m.embed.weight[:, :24].clone())
    m.embed.embedding_dim = 24
    m.fc.weight = nn.Parameter(m.fc.weight[:, :24].clone())
    m.fc.in_features = 24
    return m.eval()


def test_subclasses_norms_embeddings_and_custom_parameters_rebuild(tmp_path):
    from tests.models.user_factories import field_net

    torch.manual_seed(0)
    small = _shrink(field_net())
    path = save_student(small, tmp_path / "s.pt", FIELD)
    rebuilt = load_student(path, FIELD)
    x = torch.randn(3, 1, 12, 12)
    assert torch.equal(rebuilt(x), small(x))
    assert (rebuilt.bn.num_features, rebuilt.gn.num_groups, rebuilt.norm.normalized_shape) == (16, 2, (24,))
    assert rebuilt.scale.gamma.shape == (16, 1, 1) and rebuilt.embed.embedding_dim == 24


def test_a_file_that_does_not_fit_names_the_first_layer(tmp_path):
    path = save_student(tiny(), tmp_path / "s.pt", FIELD)
    with pytest.raises(InputError, match="does not fit factory") as info:
        load_student(path, FIELD)
    assert "\n" not in str(info.value)
    payload = torch.load(path, weights_only=True)
    payload["structure"]["no.such.layer"] = {"out_channels": 3}
    payload["factory"] = "tests.models.test_loading:tiny"
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(InputError, match=r"has no layer 'no\.such\.layer'"):
        load_student(tmp_path / "bad.pt", "tests.models.test_loading:tiny")
    del payload["state_dict"]
    torch.save(payload, tmp_path / "nostate.pt")
    with pytest.raises(InputError, match="no state dict"):
        load_student(tmp_path / "nostate.pt", "tests.models.test_loading:tiny")


def test_a_student_file_never_makes_edgekd_call_the_factory_it_names(tmp_path, monkeypatch):
    from tests.models.user_factories import MARKER_ENV

    marker = tmp_path / "called"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    for spec in ("tests.models.user_factories:touch_marker", "tempfile:mkdtemp", "os:abort"):
        path = save_student(tiny(), tmp_path / "s.pt", spec)
        with pytest.raises(InputError, match="pass --factory") as info:
            load_student(path)
        assert spec in str(info.value)
        with pytest.raises(InputError, match="pass the factory that built it"):
            load_student(path, "tests.models.test_loading:tiny")
    assert not marker.exists()


def test_any_exception_from_a_user_factory_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "broken_factory_mod.py").write_text("def f(:\n")
    (tmp_path / "raising_on_import_mod.py").write_text("raise RuntimeError('no GPU here')\ndef f(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for spec, match in [("broken_factory_mod:f", "SyntaxError"), ("raising_on_import_mod:f", "no GPU here"),
                        ("tests.models.user_factories:raises", "RuntimeError: CUDA is not available")]:  # fmt: skip
        with pytest.raises(InputError, match=match) as info:
            load_model(spec, None)
        assert spec in str(info.value) and "\n" not in str(info.value)


def test_student_files_written_before_the_generic_format_still_load(tmp_path):
    torch.manual_seed(0)
    pruned = prune(tiny(), torch.randn(1, 1, 28, 28), 0.5, PruneSettings()).model
    old = {"factory": "tests.models.test_loading:tiny", "state_dict": pruned.state_dict(),
           "structure": {n: {"out_channels": m.out_channels} for n, m in pruned.named_modules()
                         if isinstance(m, torch.nn.Conv2d)}}  # fmt: skip
    torch.save(old, tmp_path / "old.pt")
    rebuilt = load_student(tmp_path / "old.pt", "tests.models.test_loading:tiny")
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(rebuilt(x), pruned(x))
