"""The PT2E BatchNorm-folding guard of the TFLite int8 path (edgekd.export.tflite_quant_config)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.core.errors import ToolchainError
from edgekd.export import SidecarInfo, get_exporter
from edgekd.export import tflite_exporter as tflite_module
from edgekd.export.tflite_quant_config import check_prepared, ptq_quantizer, unshare_bn_producers


class SharedStem(nn.Module):
    """DenseNet's pattern: a conv whose output feeds a pre-activation BatchNorm *and* a concat."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        z = torch.cat((y, self.conv(torch.relu(self.bn(y)))), dim=1)
        return self.head(z.mean((2, 3)))


class SharedLinear(nn.Module):
    """The same pattern with Linear and BatchNorm1d (torchao folds those too)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        return torch.cat((y, torch.relu(self.bn(y))), dim=1)


class Plain(nn.Module):
    """conv -> BN -> ReLU with nothing else reading the conv: the ordinary, safe fold."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))


def _with_real_statistics(model_cls: type[nn.Module]) -> nn.Module:
    """A seeded ``model_cls()`` in eval mode with non-trivial BatchNorm statistics (so folding shows)."""
    torch.manual_seed(0)
    model = model_cls()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-1.0, 1.0)
            m.running_var.uniform_(0.2, 3.0)
            m.weight.data.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-1.0, 1.0)
    return model.eval()


def _exported(model: nn.Module, x: torch.Tensor) -> torch.fx.GraphModule:
    return torch.export.export(model, (x,)).module()


def _prepared_output(graph: torch.fx.GraphModule, x: torch.Tensor) -> torch.Tensor:
    from torchao.quantization.pt2e import move_exported_model_to_eval
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    tflite_module._import_litert()
    prepared = move_exported_model_to_eval(prepare_pt2e(graph, ptq_quantizer()))
    with torch.no_grad():
        return prepared(x)


def test_prepare_pt2e_still_corrupts_a_conv_shared_with_a_batchnorm():
    """Canary: when this fails, torchao folds safely and ``unshare_bn_producers`` can be removed."""
    model = _with_real_statistics(SharedStem)
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        reference = model(x)
    corrupted = _prepared_output(_exported(model, x), x)
    assert float((corrupted - reference).abs().max()) > 0.1


@pytest.mark.parametrize(("model_cls", "shape"), [(SharedStem, (4, 1, 8, 8)), (SharedLinear, (4, 6))])
def test_unshared_graph_keeps_its_function_through_prepare(model_cls, shape):
    model = _with_real_statistics(model_cls)
    x = torch.randn(*shape)
    with torch.no_grad():
        reference = model(x)
    graph = _exported(model, x)
    assert unshare_bn_producers(graph) == 1
    with torch.no_grad():
        assert torch.allclose(graph(x), reference, atol=1e-6)  # the copy alone changes nothing
    torch.testing.assert_close(_prepared_output(graph, x), reference, atol=1e-4, rtol=1e-4)


def test_unshare_leaves_a_graph_without_shared_producers_alone():
    model = _with_real_statistics(Plain)
    x = torch.randn(2, 1, 8, 8)
    graph = _exported(model, x)
    before = graph.code
    assert unshare_bn_producers(graph) == 0
    assert graph.code == before


def test_check_prepared_rejects_a_changed_output_and_nan():
    reference = torch.tensor([[1.0, -2.0, 3.0]])
    check_prepared(reference, reference + 1e-6)
    with pytest.raises(ToolchainError, match="changed the model's output"):
        check_prepared(reference, reference + 0.5)
    with pytest.raises(ToolchainError, match="changed the model's output"):
        check_prepared(reference, torch.full_like(reference, float("nan")))


@pytest.fixture(scope="module")
def shared_stem_int8(tmp_path_factory: pytest.TempPathFactory):
    model = _with_real_statistics(SharedStem)
    info = SidecarInfo(class_names=("a", "b", "c", "d"), mean=(0.0,), std=(1.0,), input_shape=(1, 8, 8))
    rng = np.random.default_rng(0)
    calibration = rng.standard_normal((64, 1, 8, 8)).astype(np.float32)
    exporter = get_exporter("tflite")
    artifact = exporter.export(
        model, torch.from_numpy(calibration[:1]), "int8", tmp_path_factory.mktemp("t"), info, calibration
    )
    return model, exporter, artifact, calibration


@pytest.mark.slow
def test_int8_tflite_of_a_shared_stem_follows_the_float_model(shared_stem_int8):
    model, exporter, artifact, calibration = shared_stem_int8
    x = calibration[:32]
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    out = exporter.load_runtime(artifact)(x)
    spread = float(reference.max() - reference.min())
    # int8 error stays a few percent of the logit range (0.6 % here; without the guard 32 %).
    assert float(np.abs(out - reference).max()) < 0.1 * spread


@pytest.mark.slow
def test_int8_tflite_of_a_shared_stem_keeps_every_conv_and_matmul_int8(shared_stem_int8):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    _, _, artifact, _ = shared_stem_int8
    interp = Interpreter(
        model_path=artifact.path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interp.allocate_tensors()
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    heavy = [op for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")]
    assert len(heavy) == 4  # stem, its copy for the BatchNorm branch, the 1x1 conv and the head
    for op in heavy:
        assert dtypes[op["inputs"][0]] == np.int8, op
        assert dtypes[op["outputs"][0]] == np.int8, op
