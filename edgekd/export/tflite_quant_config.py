"""PT2E post-training quantisation set-up for the TFLite path: the quantiser and a BatchNorm-folding guard.

Workaround (torchao 0.18, whose ``prepare_pt2e`` folds every BatchNorm into the conv or linear that
feeds it): ``_fuse_conv_bn_`` / ``_fuse_linear_bn_`` rewrite the producer's weights in place and do not
check whether the producer's output has other users. When it does - DenseNet's stem conv feeds both
the first dense layer's pre-activation BatchNorm and the concatenation - every other user silently
receives the BatchNorm-ed output, so the "quantised" model computes a different function (the zoo
DenseNet's logits moved by up to 6.0 before a single value was rounded; int8 top-1 agreement 0.38).
:func:`unshare_bn_producers` gives each such BatchNorm a private copy of its producer (with its own
weight and bias) before ``prepare_pt2e``; the copy is folded and quantised, the original keeps serving
the other users.
Exact in float; costs the duplicated conv's MACs (DenseNet: its 1-to-16-channel stem conv).
``tests/export/test_tflite_quant_config.py`` fails once torchao stops corrupting such graphs, i.e. when
the guard can be removed.

BatchNorms that follow no conv/linear (pre-activation BatchNorm after a concat or a pool) are not
folded; the quantiser leaves them unannotated, so LiteRT runs them in float (dequantise, sub/mul/mul/add,
quantise) between int8 ops. :func:`check_prepared` catches any preparation that changes the function.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import torch
from torch import fx

from edgekd.core.errors import ToolchainError

log = logging.getLogger(__name__)

PREPARED_TOLERANCE = 1e-3  # relative to the largest output; folding BatchNorm costs ~1e-6

_BATCH_NORMS = (
    torch.ops.aten.batch_norm.default,
    torch.ops.aten._native_batch_norm_legit_no_training.default,
)
# The producers torchao folds a following BatchNorm into (see _fuse_conv_bn_ and _fuse_linear_bn_).
_FOLDED_INTO = (
    torch.ops.aten.conv1d.default,
    torch.ops.aten.conv1d.padding,
    torch.ops.aten.conv2d.default,
    torch.ops.aten.conv2d.padding,
    torch.ops.aten.conv3d.default,
    torch.ops.aten.conv3d.padding,
    torch.ops.aten.conv_transpose1d.default,
    torch.ops.aten.conv_transpose2d.input,
    torch.ops.aten.conv_transpose3d.input,
    torch.ops.aten.linear.default,
)


def ptq_quantizer() -> Any:  # a litert_torch PT2EQuantizer
    """litert-torch's PT2E quantiser for post-training int8: symmetric, per-channel weights."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config

    return PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))


def unshare_bn_producers(graph: fx.GraphModule) -> int:
    """Give each BatchNorm whose conv/linear input has other users a private copy of that producer.

    Args:
        graph: an exported (``torch.export(...).module()``) graph, changed in place.

    Returns:
        How many producers were copied (0: the graph is unchanged).
    """
    copied = 0
    for bn in list(graph.graph.nodes):
        if bn.op != "call_function" or bn.target not in _BATCH_NORMS:
            continue
        producer = bn.args[0]
        if not isinstance(producer, fx.Node) or producer.target not in _FOLDED_INTO or len(producer.users) < 2:
            continue
        args = list(producer.args)
        with graph.graph.inserting_before(producer):
            for i in (1, 2):  # weight, bias: torchao overwrites them in place when it folds
                if i < len(args) and isinstance(args[i], fx.Node) and args[i].op == "get_attr":
                    args[i] = _private_attr(graph, args[i], f"{producer.name}_bn_copy_{'weight' if i == 1 else 'bias'}")
        with graph.graph.inserting_after(producer):
            twin = graph.graph.call_function(producer.target, tuple(args), dict(producer.kwargs))
        twin.meta = dict(producer.meta)  # same shapes and module scope: annotated like the original
        bn.replace_input_with(producer, twin)
        copied += 1
    if copied:
        graph.graph.lint()
        graph.recompile()
        log.info("gave %d BatchNorm(s) a private copy of their shared conv/linear before PT2E folding", copied)
    return copied


def check_prepared(reference: torch.Tensor, prepared: torch.Tensor) -> None:
    """Check that ``prepare_pt2e`` (observers inserted, nothing rounded yet) kept the model's output.

    A cheap net under graph rewrites such as the folding bug above: one calibration batch through both.

    Raises:
        ToolchainError: the outputs differ by more than float round-off.
    """
    diff = float((prepared - reference).abs().max())
    allowed = PREPARED_TOLERANCE * (float(reference.abs().max()) + 1.0)
    if not diff <= allowed:  # also catches NaN
        raise ToolchainError(
            f"PT2E preparation changed the model's output before quantising (max difference {diff:.3g}, "
            f"allowed {allowed:.3g}): a quantiser graph-rewrite bug"
        )


def _private_attr(graph: fx.GraphModule, node: fx.Node, name: str) -> fx.Node:
    """A new ``get_attr`` node reading a copy of ``node``'s tensor, registered on ``graph`` as ``name``."""
    tensor = functools.reduce(getattr, str(node.target).split("."), graph)
    copy = tensor.detach().clone()
    if isinstance(tensor, torch.nn.Parameter):
        graph.register_parameter(name, torch.nn.Parameter(copy, requires_grad=tensor.requires_grad))
    else:
        graph.register_buffer(name, copy)
    fresh = graph.graph.get_attr(name)
    fresh.meta = dict(node.meta)
    return fresh
