"""The operators a latency model costs, traced from a PyTorch model as ONNX Runtime will run them.

:func:`trace_ops` walks the ``torch.fx`` graph with shapes and returns one :class:`OpCost` per
operator the deployed graph dispatches, after the fusions runtimes apply (BatchNorm, a residual add
and an activation into the conv before them), with the layout conversions x86 runtimes insert and the
shape arithmetic of the exported graph. :func:`onnx_graph_nodes` counts the nodes ONNX Runtime really
runs, to check or complete the trace (:func:`align_to_graph`).

Example:
    >>> ops = trace_ops(model, (1, 1, 28, 28))  # doctest: +SKIP
    >>> count_macs(ops)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from edgekd.core.errors import InputError
from edgekd.core.host import cpu_flags

log = logging.getLogger(__name__)

PASS_THROUGH = (nn.Identity, nn.Dropout)
ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.SiLU, nn.Sigmoid, nn.GELU, nn.Tanh)
# what ONNX Runtime fuses into a Conv (MLAS NCHWc kernels) and into a Gemm (FusedGemm)
CONV_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh)
LINEAR_ACTIVATIONS = (nn.ReLU,)
ACTIVATION_FUNCS = {"relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh", "gelu", "silu"}
POOLS = (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveMaxPool2d)
ELEMENTWISE_FUNCS = {"add", "mul", "sub", "truediv", "cat", "mean", "softmax", "permute", "transpose"}
RESHAPES = {"flatten", "unflatten", "view", "reshape"}  # a Reshape plus the shape arithmetic of a dynamic batch
SPLITS = {"chunk", "split"}
CONV_FUNCS = {"conv1d", "conv2d"}
NORM_FUNCS = {"batch_norm", "layer_norm", "group_norm"}
# ONNX nodes a construct adds beyond its costed ops, counted in ONNX Runtime's optimised graphs
# (onnxruntime 1.32, opset 17): the shape arithmetic of a dynamic batch dimension
RESHAPE_NODES = 3
SPLIT_NODES = 8
ATTENTION_NODES = 60


@functools.cache
def nchwc_block() -> int:
    """Channels per block of ONNX Runtime's NCHWc layout on this x86 host: 16 with AVX-512F, 8 with AVX2.

    MLAS picks the block from the CPU (``MlasNchwcGetBlockSize``); tensors whose channel count is a
    multiple of it stay blocked through Concat and standalone BatchNorm (run as a conv). Elsewhere (no
    AVX2, or not x86) ONNX Runtime does not use the NCHWc layout at all: 0.
    """
    flags = cpu_flags()
    return 16 if "avx512f" in flags else 8 if "avx2" in flags else 0


@dataclass(frozen=True)
class OpCost:
    """One operator's work: ``macs`` multiply-accumulates (or element ops), memory in elements.

    ``kind`` is conv | depthwise | pointwise | linear | elementwise, or ``shape`` for nodes that only
    compute shapes or alias memory (they cost a dispatch each, ``nodes`` of them, and no work).
    """

    name: str
    kind: str
    macs: int
    activation_elems: int
    weight_elems: int
    nodes: int = 1
    channels: int = 0  # output channels of a conv, padded to the target's vector width when costed
    in_channels: int = 0  # input channels per group of a conv (padded too where they fill a vector)
    layout: bool = False  # a layout conversion that only blocked-layout (x86 NCHWc) runtimes insert
    epilogue: str = ""  # what a fused epilogue is ("add" or the activation's name), for runtimes that fuse less


def _numel(meta: object) -> int:
    shape = getattr(meta, "shape", None)
    return int(torch.Size(shape).numel()) if shape is not None else 0


def _conv_cost(name: str, mod: nn.Conv2d, in_elems: int, out_shape: torch.Size) -> OpCost:
    kh, kw = mod.kernel_size
    cin_per_group = mod.in_channels // mod.groups
    out_elems = int(out_shape.numel())
    macs = out_elems * cin_per_group * kh * kw
    if mod.groups > 1 and mod.groups == mod.in_channels:
        kind = "depthwise"
    elif kh * kw == 1:
        kind = "pointwise"
    else:
        kind = "conv"
    return OpCost(name, kind, macs, in_elems + out_elems, mod.weight.numel(), 1, mod.out_channels, cin_per_group)


def _functional_conv_cost(node: fx.Node, in_elems: int) -> OpCost:
    """``F.conv1d/conv2d(x, weight, ..., groups)`` called in a custom forward (a Conv2d subclass, timm's same-pad)."""
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    shape = tuple(getattr(weight.meta.get("tensor_meta"), "shape", ())) if isinstance(weight, fx.Node) else ()
    groups = node.args[6] if len(node.args) > 6 else node.kwargs.get("groups", 1)
    out_elems = _numel(node.meta.get("tensor_meta"))
    cout, cin_per_group = (int(shape[0]), int(shape[1])) if len(shape) >= 2 else (0, 0)
    window = int(torch.Size(shape[2:]).numel()) if len(shape) > 2 else 1
    groups = groups if isinstance(groups, int) else 1
    kind = "depthwise" if groups > 1 and cin_per_group == 1 else "pointwise" if window == 1 else "conv"
    return OpCost(_op_name(node), kind, out_elems * cin_per_group * window, in_elems + out_elems,
                  int(torch.Size(shape).numel()), 1, cout, cin_per_group)  # fmt: skip


def _op_name(node: fx.Node) -> str:
    """A functional op's name: the module owning its weight, else ``<enclosing module>.<node>``."""
    weight = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
    if isinstance(weight, fx.Node) and weight.op == "get_attr":
        return str(weight.target).rpartition(".")[0] or node.name
    stack = node.meta.get("nn_module_stack")
    return f"{next(reversed(stack))}.{node.name}" if stack else node.name


def _epilogue(node: fx.Node, elems: int, what: str) -> OpCost:
    """A residual add or activation fused into the conv before it: no dispatch, one pass over the output.

    ``what`` ("add" or the activation's name) lets a runtime that fuses less (TFLite/XNNPACK fuses
    only clamps such as ReLU/ReLU6) cost it as its own operator.
    """
    return OpCost(f"{node.name}.fused", "elementwise", elems, elems, 0, nodes=0, epilogue=what)


def _reorder(name: str, elems: int) -> OpCost:
    """ONNX Runtime's ReorderInput/ReorderOutput between its blocked conv layout and plain NCHW."""
    return OpCost(f"{name}.reorder", "elementwise", elems, 2 * elems, 0, layout=True)


def _attention_costs(name: str, mod: nn.MultiheadAttention, query: object) -> list[OpCost]:
    """Self-attention as deployed runtimes run it: input projection, Q·K^T, softmax, A·V, output projection.

    ``query`` is laid out ``(L, N, E)`` (``(N, L, E)`` when ``batch_first``); the head split and merge
    are layout copies, costed as one memory-bound op, and the exported graph's shape arithmetic as
    ``ATTENTION_NODES`` shape nodes.
    """
    shape = tuple(getattr(query, "shape", ()))
    if len(shape) != 3:
        return []
    tokens, batch = (shape[1], shape[0]) if mod.batch_first else (shape[0], shape[1])
    e, rows = mod.embed_dim, tokens * batch
    act = rows * e
    scores = batch * mod.num_heads * tokens * tokens
    return [
        OpCost(f"{name}.in_proj", "linear", rows * e * 3 * e, act + 3 * act, 3 * e * e),
        OpCost(f"{name}.heads", "elementwise", 3 * act, 6 * act, 0),
        OpCost(f"{name}.qk", "linear", batch * tokens * tokens * e, 2 * act + scores, 0),
        OpCost(f"{name}.softmax", "elementwise", scores, 2 * scores, 0),
        OpCost(f"{name}.av", "linear", batch * tokens * tokens * e, scores + 2 * act, 0),
        OpCost(f"{name}.out_proj", "linear", rows * e * e, 2 * act, e * e),
        OpCost(f"{name}.shapes", "shape", 0, 0, 0, ATTENTION_NODES),
    ]


def _fname(node: fx.Node) -> str:
    return getattr(node.target, "__name__", str(node.target)).strip("_")


class _Fuser:
    """Tracks which values are still open for fusion into the conv or linear that produced them.

    ONNX Runtime folds BatchNorm into the conv, fuses a following residual Add (the NCHWc ``Sum``
    input) and one activation into it, and a ReLU into a Gemm. A value can fuse only when it has a
    single user; a chain ends at the activation.
    """

    def __init__(self) -> None:
        self.open: dict[fx.Node, tuple[str, int]] = {}  # value -> (producer kind, stage: 0 conv, 1 add)
        self.blocked: set[fx.Node] = set()  # values in the conv kernels' blocked (NCHWc) layout

    def start(self, node: fx.Node, kind: str) -> None:
        self.open[node] = (kind, 0)
        if kind == "conv":
            self.blocked.add(node)

    def fused(self, node: fx.Node) -> None:
        """``node`` was fused into a conv chain: its value stays in the conv's layout."""
        src = self.producer(node.args[0]) if node.args else None
        if src is not None and src[0] == "conv":
            self.blocked.add(node)

    def producer(self, arg: object) -> tuple[str, int] | None:
        if isinstance(arg, fx.Node) and len(arg.users) == 1:
            return self.open.get(arg)
        return None

    def bn(self, node: fx.Node) -> bool:
        src = self.producer(node.args[0]) if node.args else None
        if src is not None and src[1] == 0:
            self.open[node] = src
            return True
        return False

    def activation(self, node: fx.Node, mod: nn.Module | None) -> bool:
        src = self.producer(node.args[0]) if node.args else None
        if src is None:
            return False
        allowed = CONV_ACTIVATIONS if src[0] == "conv" else LINEAR_ACTIVATIONS
        if mod is not None:
            return isinstance(mod, allowed)
        return _fname(node) in {"relu"} | ({"relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh"}
                                             if src[0] == "conv" else set())  # fmt: skip

    def add(self, node: fx.Node) -> bool:
        args = [a for a in node.args[:2] if isinstance(a, fx.Node)]
        if len(args) != 2 or args[0] is args[1]:
            return False
        for a, other in (args, args[::-1]):
            src = self.producer(a)
            # the Sum input of a conv must be in the conv's blocked layout too (another conv's output)
            if src is not None and src[0] == "conv" and src[1] == 0 and other in self.blocked:
                self.open[node] = (src[0], 1)
                self.blocked.add(node)
                return True
        return False

    def pass_through(self, node: fx.Node) -> None:
        src = self.producer(node.args[0]) if node.args else None
        if src is not None:
            self.open[node] = src
        if node.args and node.args[0] in self.blocked:
            self.blocked.add(node)


def _reshape_nodes(node: fx.Node, fname: str) -> int:
    """ONNX nodes of a reshape: ``flatten(x, 1)`` is one Flatten; others add the dynamic-batch shape arithmetic."""
    if fname == "flatten":
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if start == 1 and end == -1:
            return 1
    return 1 + RESHAPE_NODES


def _whole_blocks(inputs: list[fx.Node], fuser: _Fuser) -> bool:
    """Every input is 4-D, in the blocked layout, with a whole number of channel blocks."""
    shapes = [getattr(a.meta.get("tensor_meta"), "shape", ()) for a in inputs]
    return bool(inputs) and all(
        a in fuser.blocked and len(sh) == 4 and nchwc_block() and sh[1] % nchwc_block() == 0
        for a, sh in zip(inputs, shapes, strict=True)
    )


def _trace(model: nn.Module, input_shape: tuple[int, ...]) -> fx.GraphModule:
    if not list(model.children()):  # a bare layer traces to functions; wrap it to see the module
        model = nn.Sequential(model)
    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise InputError(
            f"cannot trace the model's graph for latency prediction ({type(exc).__name__}: {exc}); "
            "models with data-dependent control flow are not supported yet"
        ) from exc
    was_training = model.training
    gm.eval()
    with torch.no_grad():
        ShapeProp(gm).propagate(torch.zeros(input_shape))
    model.train(was_training)
    return gm


def trace_ops(model: nn.Module, input_shape: tuple[int, ...]) -> list[OpCost]:
    """The costed operators of ``model`` for one input of ``input_shape`` (batch included).

    Operators are counted as ONNX Runtime runs the exported graph: BatchNorm, a residual add and an
    activation that directly follow a conv are fused into it (see :class:`_Fuser`); elsewhere (a
    pre-activation BatchNorm, an add of two non-conv values) they are elementwise operators.
    """
    gm = _trace(model, input_shape)
    modules = dict(gm.named_modules())
    fuser = _Fuser()
    ops: list[OpCost] = []
    for node in gm.graph.nodes:
        before = len(ops)
        _cost_node(node, modules, fuser, ops)
        if len(ops) > before and ops[before].kind in ("elementwise", "shape") and node not in fuser.blocked:
            # a plain-layout operator reading a conv's blocked output: ONNX Runtime reorders it first
            for arg in node.all_input_nodes:
                if arg in fuser.blocked and len(getattr(arg.meta.get("tensor_meta"), "shape", ())) == 4:
                    ops.insert(before, _reorder(f"{node.name}.{arg.name}", _numel(arg.meta["tensor_meta"])))
    return ops


def _cost_node(node: fx.Node, modules: dict[str, nn.Module], fuser: _Fuser, ops: list[OpCost]) -> None:
    """Append ``node``'s costed operators to ``ops`` (none when it fuses into its producer)."""
    out_meta = node.meta.get("tensor_meta")
    out_elems = _numel(out_meta)
    in_elems = sum(_numel(a.meta.get("tensor_meta")) for a in node.all_input_nodes)
    eltwise = OpCost(str(node.target) if node.op == "call_module" else node.name, "elementwise",
                     max(in_elems, out_elems), in_elems + out_elems, 0)  # fmt: skip
    if node.op == "call_module":
        mod = modules[node.target]
        if isinstance(mod, nn.Conv2d):
            if mod.in_channels > 4 and node.args[0] not in fuser.blocked:  # a stem conv reads NCHW itself
                ops.append(_reorder(node.target, in_elems))
            ops.append(_conv_cost(node.target, mod, in_elems, torch.Size(out_meta.shape)))
            fuser.start(node, "conv")
        elif isinstance(mod, nn.Linear):
            rows = out_elems // mod.out_features
            ops.append(OpCost(node.target, "linear", rows * mod.in_features * mod.out_features,
                              in_elems + out_elems, mod.weight.numel()))  # fmt: skip
            fuser.start(node, "linear")
        elif isinstance(mod, nn.BatchNorm1d | nn.BatchNorm2d):
            if fuser.bn(node):
                fuser.fused(node)
            else:
                ops.append(eltwise)
                if _whole_blocks(node.all_input_nodes, fuser):  # runs as a blocked conv; a ReLU fuses in
                    fuser.start(node, "conv")
        elif isinstance(mod, ACTIVATIONS):
            if fuser.activation(node, mod):
                fuser.fused(node)
                ops.append(_epilogue(node, out_elems, type(mod).__name__.lower()))
            else:
                ops.append(eltwise)
        elif isinstance(mod, PASS_THROUGH):
            fuser.pass_through(node)
        elif isinstance(mod, nn.Flatten):
            ops.append(OpCost(node.target, "shape", 0, 0, 0, 1))
        elif isinstance(mod, POOLS):  # blocked-layout capable: the layout carries through
            ops.append(eltwise)
            if node.args and node.args[0] in fuser.blocked:
                fuser.blocked.add(node)
        elif isinstance(mod, nn.MultiheadAttention):
            ops.extend(_attention_costs(node.target, mod, node.all_input_nodes[0].meta.get("tensor_meta")))
        elif isinstance(mod, nn.LayerNorm):
            ops.append(OpCost(node.target, "elementwise", 5 * in_elems, in_elems + out_elems, 0))
        else:
            log.debug("latency model: module %s (%s) not costed", node.target, type(mod).__name__)
    elif node.op in ("call_function", "call_method") and out_elems:
        fname = _fname(node)
        if fname in ("add", "iadd") and fuser.add(node):
            ops.append(_epilogue(node, out_elems, "add"))
            return
        if fname in CONV_FUNCS:
            if node.args and node.args[0] not in fuser.blocked:  # as for a module conv: NCHW in, reorder
                ops.append(_reorder(_op_name(node), in_elems))
            ops.append(_functional_conv_cost(node, in_elems))
            fuser.start(node, "conv")
        elif fname in NORM_FUNCS:  # F.batch_norm / F.layer_norm in a subclass's own forward
            if fname == "batch_norm" and fuser.bn(node):
                fuser.fused(node)
            else:
                scale = 1 if fname == "batch_norm" else 5
                ops.append(OpCost(_op_name(node), "elementwise", scale * out_elems, 2 * out_elems, 0))
        elif fname in ACTIVATION_FUNCS:
            if fuser.activation(node, None):
                fuser.fused(node)
                ops.append(_epilogue(node, out_elems, fname))
            else:
                ops.append(eltwise)
        elif fname in ("matmul", "bmm", "linear", "mm", "addmm", "baddbmm"):
            a = node.all_input_nodes[0 if fname in ("matmul", "bmm", "linear", "mm") else 1].meta.get("tensor_meta")
            k = int(a.shape[-1]) if a is not None and len(a.shape) else 1
            ops.append(OpCost(_op_name(node), "linear", out_elems * k, in_elems + out_elems, 0))
            if fname == "linear":
                fuser.start(node, "linear")
        elif fname in RESHAPES:
            ops.append(OpCost(node.name, "shape", 0, 0, 0, _reshape_nodes(node, fname)))
        elif fname in ELEMENTWISE_FUNCS | {"iadd"}:
            ops.append(eltwise)
            if fname == "cat" and _whole_blocks(node.all_input_nodes, fuser):
                fuser.blocked.add(node)
    elif node.op in ("call_function", "call_method") and _fname(node) in SPLITS:
        ops.append(OpCost(node.name, "elementwise", in_elems, 2 * in_elems, 0, 2))
        ops.append(OpCost(f"{node.name}.shapes", "shape", 0, 0, 0, SPLIT_NODES))


def count_macs(ops: list[OpCost]) -> int:
    """Multiply-accumulates of the compute ops (elementwise work excluded)."""
    return sum(op.macs for op in ops if op.kind != "elementwise")


def onnx_graph_nodes(path: Path, threads: int = 1) -> int:
    """Nodes of the graph ONNX Runtime actually runs (after its graph optimisation), for this CPU."""
    import tempfile

    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.log_severity_level = threads, 3
        opts.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        graph = onnx.load(opts.optimized_model_filepath, load_external_data=False).graph
    return sum(1 for node in graph.node if node.op_type != "Constant")


def align_to_graph(ops: list[OpCost], graph_nodes: int) -> list[OpCost]:
    """``ops`` plus the runtime graph's nodes the trace does not see (layout reorders, shape arithmetic).

    The extra nodes are costed as shape nodes; when the trace counts more nodes than the graph
    has, ``ops`` is returned unchanged.
    """
    extra = graph_nodes - sum(op.nodes for op in ops)
    return [*ops, OpCost("graph.extra", "shape", 0, 0, 0, extra)] if extra > 0 else ops
