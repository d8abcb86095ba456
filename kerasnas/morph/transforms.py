"""The morphism operations: parsing op strings, applying them to a `Graph`,
and listing the ones a graph admits.

Op strings (layer names are those of the model the op is applied to):

* `deepen:LAYER[:KERNEL]` inserts an identity Conv2D-BatchNorm(-ReLU) block
  after LAYER's block (KERNEL odd, default 3).
* `widen:LAYER:N` adds N output units to LAYER (Net2Wider).
* `skip:FROM:TO` adds FROM's block output to TO's input through a
  zero-initialised 1x1 convolution.
* `skipcat:FROM:TO` concatenates FROM's block output onto TO's input; TO's
  weights for the new channels start at zero.
* `block:OUT:A:OP_A:B:OP_B` adds the NASNet-style block `OP_A(A) + OP_B(B)`
  to the cell whose output is OUT; the block's channels join OUT's
  concatenation with zero weights downstream.
"""

from __future__ import annotations

import math
import re

import keras
import numpy as np

from kerasnas.errors import MorphError
from kerasnas.morph import channels
from kerasnas.morph.graph import Graph, Node, from_model, new_node
from kerasnas.spaces import ops as space_ops

L = keras.layers
CONVS = (L.Conv2D, L.SeparableConv2D, L.DepthwiseConv2D)
KINDS = ("deepen", "widen", "skip", "skipcat", "block")
_PROJECTION = re.compile(r"skip\d+_proj")


def is_relu(node: Node) -> bool:
    """Whether the layer is a plain ReLU (its outputs are never negative)."""
    config = node.config
    if node.layer_cls is L.ReLU:
        return not config.get("negative_slope") and not config.get("threshold")
    return node.layer_cls is L.Activation and config.get("activation") == "relu"


def block_end(graph: Graph, name: str, consumers: dict[str, list[str]]) -> str:
    """The end of a layer's block: the layer, then its sole BatchNorm, then its sole ReLU."""
    current = name
    outputs = set(graph.outputs)
    for step in (L.BatchNormalization, "relu"):
        if is_relu(graph[current]) or current in outputs:
            break
        following = consumers[current]
        if len(following) != 1:
            break
        node = graph[following[0]]
        if (step == "relu" and is_relu(node)) or node.layer_cls is step:
            current = following[0]
    return current


# -- Parsing --------------------------------------------------------------------
_ARITY = {"deepen": (1, 2), "widen": (2, 2), "skip": (2, 2), "skipcat": (2, 2), "block": (5, 5)}


def parse(op: str) -> tuple[str, list[str]]:
    """Splits an op string into its kind and arguments (checked for count only)."""
    if not isinstance(op, str):
        raise MorphError(f"A morphism op is a string such as 'widen:conv_1:16'. Received: {op!r}.")
    kind, *args = op.split(":")
    if kind not in _ARITY:
        raise MorphError(f"Cannot apply {op!r}: unknown op kind {kind!r}; known: {list(KINDS)}.")
    low, high = _ARITY[kind]
    if not low <= len(args) <= high or not all(args):
        grammar = {
            "deepen": "deepen:LAYER[:KERNEL]",
            "widen": "widen:LAYER:N",
            "skip": "skip:FROM:TO",
            "skipcat": "skipcat:FROM:TO",
            "block": "block:OUT:A:OP_A:B:OP_B",
        }[kind]
        raise MorphError(f"Cannot apply {op!r}: {kind} ops read {grammar!r}.")
    return kind, args


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MorphError(f"{what} must be an integer, not {text!r}") from None


def apply_op(graph: Graph, op: str, rng: np.random.Generator, noise: float = 0.0) -> None:
    """Applies one op string to the graph in place.

    Raises:
        MorphError: naming the op and why it does not apply.
    """
    kind, args = parse(op)
    try:
        for name in _layer_args(kind, args):
            if name not in graph:
                raise MorphError(f"the model has no layer named {name!r}")
        if kind == "deepen":
            kernel = _int(args[1], "KERNEL") if len(args) > 1 else 3
            deepen(graph, args[0], kernel)
        elif kind == "widen":
            widen(graph, args[0], _int(args[1], "N"), rng, noise)
        elif kind in ("skip", "skipcat"):
            skip(graph, args[0], args[1], concat=kind == "skipcat", rng=rng)
        else:
            block(graph, args[0], (args[1], args[2]), (args[3], args[4]), rng)
    except MorphError as e:
        message = str(e)
        if message.startswith("Cannot apply"):
            raise
        raise MorphError(f"Cannot apply {op!r}: {message}.") from None


def _layer_args(kind: str, args: list[str]) -> list[str]:
    if kind == "block":
        return [args[0], args[1], args[3]]
    if kind in ("deepen", "widen"):
        return args[:1]
    return args


# -- deepen -----------------------------------------------------------------------
def deepen(graph: Graph, target: str, kernel_size: int = 3) -> None:
    """Inserts an identity Conv2D-BatchNorm(-ReLU) block after `target`'s block.

    The convolution has a Dirac kernel (1 at the centre tap from channel c to
    channel c, 0 elsewhere) and "same" padding, so it copies its input. The
    BatchNorm has moving mean m, moving variance v, gamma `sqrt(v + eps)` and
    beta m, so at inference it computes
    `(x - m) / sqrt(v + eps) * sqrt(v + eps) + m = x`. m and v estimate the
    per-channel mean and variance of the block's output from the parent's
    last BatchNorm (its output is about N(beta, gamma^2); through a ReLU, a
    rectified normal), so that in training mode, where BatchNorm normalises
    with the batch's statistics, the block is still close to an identity.
    Without such a BatchNorm, m = 0 and v = 1 - eps. A ReLU follows only when
    the block ends in a ReLU: its input is then non-negative and ReLU leaves
    it unchanged.
    """
    node = graph[target]
    if node.layer_cls not in CONVS and not is_relu(node):
        raise MorphError(
            f"deepen needs a Conv2D, SeparableConv2D, DepthwiseConv2D or ReLU layer; "
            f"{target!r} is a {node.kind}"
        )
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise MorphError(f"KERNEL must be a positive odd size, not {kernel_size}")
    consumers = graph.consumers()
    end = block_end(graph, target, consumers)
    shape = graph[end].shape
    if len(shape) != 3 or shape[-1] is None:
        raise MorphError(f"deepen needs 4-D feature maps; {end!r} outputs shape {shape}")
    c = int(shape[-1])
    prefix = graph.fresh_prefix("deep")
    dtype = node.config.get("dtype")
    kernel = np.zeros((kernel_size, kernel_size, c, c), np.float32)
    kernel[kernel_size // 2, kernel_size // 2, np.arange(c), np.arange(c)] = 1.0
    conv = new_node(
        L.Conv2D(c, kernel_size, padding="same", use_bias=False, name=f"{prefix}_conv"),
        [end],
        shape,
        {"kernel": kernel},
        dtype,
    )
    bn_layer = L.BatchNormalization(momentum=space_ops.BN_MOMENTUM, name=f"{prefix}_bn")
    mean, var = _block_statistics(graph, end, c, bn_layer.epsilon)
    bn = new_node(bn_layer, [conv.name], shape, _identity_bn(mean, var, bn_layer.epsilon), dtype)
    new = [conv, bn]
    if is_relu(graph[end]):
        new.append(new_node(L.ReLU(name=f"{prefix}_relu"), [bn.name], shape, None, dtype))
    for n in new:
        graph.add(n)
    graph.rewire(end, new[-1].name, consumers[end], outputs=True)


def _identity_bn(mean: np.ndarray, var: np.ndarray, epsilon: float) -> dict[str, np.ndarray]:
    """BatchNorm weights that compute the identity at inference."""
    return {
        "gamma": np.sqrt(var + epsilon).astype(np.float32),
        "beta": mean.astype(np.float32),
        "moving_mean": mean.astype(np.float32),
        "moving_variance": var.astype(np.float32),
    }


def _block_statistics(
    graph: Graph, end: str, c: int, epsilon: float
) -> tuple[np.ndarray, np.ndarray]:
    """Estimated per-channel mean and variance of a block's output `end`."""
    node = graph[end]
    relu = is_relu(node)
    bn = graph[node.inputs[0]] if relu else node
    if bn.layer_cls is not L.BatchNormalization or "gamma" not in bn.weights:
        return np.zeros(c), np.full(c, 1.0 - epsilon)
    beta = bn.weights.get("beta", np.zeros(c)).astype(np.float64)
    scale = np.maximum(np.abs(bn.weights["gamma"].astype(np.float64)), 1e-3)
    if not relu:
        return beta, np.maximum(scale**2, 1e-4)
    # Moments of max(0, y) for y ~ N(beta, scale^2).
    a = beta / scale
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(a / math.sqrt(2.0)))
    pdf = np.exp(-0.5 * a**2) / math.sqrt(2.0 * math.pi)
    mean = beta * cdf + scale * pdf
    second = (beta**2 + scale**2) * cdf + beta * scale * pdf
    return mean, np.maximum(second - mean**2, 1e-4)


# -- widen ------------------------------------------------------------------------
def widen(graph: Graph, target: str, amount: int, rng: np.random.Generator, noise: float) -> None:
    """Net2Wider: adds `amount` output units to `target`, copies of random units."""
    node = graph[target]
    if node.layer_cls not in channels.WEIGHTED:
        raise MorphError(
            f"widen needs a Conv2D, SeparableConv2D or Dense layer; {target!r} is a {node.kind}"
        )
    if amount < 1:
        raise MorphError(f"N must be at least 1, not {amount}")
    c = node.channels
    channel_map = np.concatenate([np.arange(c), rng.integers(0, c, amount)])
    plan = channels.plan(graph, target, channel_map)
    channels.execute(graph, plan, rng, noise)


# -- skip / skipcat ---------------------------------------------------------------
def _pool_size(source: tuple, target: tuple) -> tuple[int, int] | None:
    """Strides of a "same" pooling taking `source`'s spatial size to `target`'s."""
    sizes = []
    for a, b in zip(source[:2], target[:2], strict=True):
        if a is None or b is None:
            return None
        s = next((s for s in range(1, a + 1) if math.ceil(a / s) == b), None)
        if s is None:
            return None
        sizes.append(s)
    return sizes[0], sizes[1]


def skip_problem(
    graph: Graph,
    source: str,
    target: str,
    concat: bool,
    consumers: dict[str, list[str]],
    after_target: set[str] | None = None,
) -> str | None:
    """Why `skip[cat]:source:target` does not apply, or None."""
    tnode = graph[target]
    if tnode.as_list or len(tnode.inputs) != 1:
        return f"{target!r} is not a layer with one input"
    if concat and tnode.layer_cls not in channels.WEIGHTED:
        return (
            f"skipcat needs a Conv2D, SeparableConv2D or Dense target; {target!r} is a {tnode.kind}"
        )
    if concat and channels.last_axis_problem(tnode, len(tnode.shape) + 1):
        return channels.last_axis_problem(tnode, len(tnode.shape) + 1)
    a = block_end(graph, source, consumers)
    b = tnode.inputs[0]
    if a == b:
        return f"{target!r} already reads {a!r}"
    if after_target is None:
        after_target = graph.descendants(target)
    if a in after_target:
        return f"{a!r} is computed from the output of {target!r} (the skip would make a cycle)"
    sa, sb = graph[a].shape, graph[b].shape
    if len(sa) != 3 or len(sb) != 3 or sa[-1] is None or sb[-1] is None:
        return f"skips join 4-D feature maps; {a!r} has shape {sa} and {b!r} {sb}"
    if _pool_size(sa, sb) is None:
        return f"no pooling takes {a!r}'s {sa[:2]} to {b!r}'s {sb[:2]}"
    return None


def skip(graph: Graph, source: str, target: str, concat: bool, rng: np.random.Generator) -> None:
    """Feeds `source`'s block output into `target`'s input.

    `skip` adds `P(a) @ W` with W = 0 (a 1x1 convolution) to the input, which
    therefore does not change; `skipcat` concatenates P(a) onto it and gives
    `target` zero weights for the new channels, so its output does not
    change. P is an average pooling when `a` has a finer resolution.
    """
    consumers = graph.consumers()
    problem = skip_problem(graph, source, target, concat, consumers)
    if problem:
        raise MorphError(problem)
    tnode = graph[target]
    a, b = block_end(graph, source, consumers), tnode.inputs[0]
    sa, sb = graph[a].shape, graph[b].shape
    prefix = graph.fresh_prefix("skip")
    dtype = tnode.config.get("dtype")
    x = a
    pool = _pool_size(sa, sb)
    if pool != (1, 1):
        layer = L.AveragePooling2D(pool, strides=pool, padding="same", name=f"{prefix}_pool")
        x = graph.add(new_node(layer, [a], (*sb[:2], sa[-1]), None, dtype)).name
    if concat:
        layer = L.Concatenate(name=f"{prefix}_cat")
        shape = (*sb[:2], sb[-1] + sa[-1])
        merged = graph.add(new_node(layer, [b, x], shape, None, dtype, as_list=True))
        channel_map = np.concatenate([np.arange(sb[-1]), np.full(sa[-1], -1)])
        channels.read_new_channels(tnode, channel_map, rng)
    else:
        kernel = np.zeros((1, 1, sa[-1], sb[-1]), np.float32)
        layer = L.Conv2D(sb[-1], 1, use_bias=False, name=f"{prefix}_proj")
        proj = graph.add(new_node(layer, [x], sb, {"kernel": kernel}, dtype))
        layer = L.Add(name=f"{prefix}_add")
        merged = graph.add(new_node(layer, [b, proj.name], sb, None, dtype, as_list=True))
    tnode.inputs = [merged.name]


# -- block (cells) ----------------------------------------------------------------
def _block_width(graph: Graph, out: str) -> int | None:
    """The channels of one block of the cell whose output is `out` (None if unequal)."""
    onode = graph[out]
    if onode.layer_cls is not L.Concatenate:
        return onode.channels
    widths = {graph[i].channels for i in onode.inputs}
    return widths.pop() if len(widths) == 1 else None


def _branch_shape(graph: Graph, source: str, op: str, out: str, width: int) -> str | None:
    """Why `op` on `source` cannot give a branch of the cell `out`, or None."""
    sshape, oshape = graph[source].shape, graph[out].shape
    if len(sshape) != 3 or None in sshape:
        return f"block branches read 4-D feature maps; {source!r} has shape {sshape}"
    stride = _pool_size(sshape, oshape)
    if stride is None or stride[0] != stride[1] or stride[0] > 2:
        return f"no stride 1 or 2 takes {source!r}'s {sshape[:2]} to {out!r}'s {oshape[:2]}"
    keeps_channels = "pool" in op or (op == "identity" and stride[0] == 1)
    if keeps_channels and sshape[-1] != width:
        return f"{op} keeps {source!r}'s {sshape[-1]} channels, the cell's blocks have {width}"
    return None


def block_problem(
    graph: Graph, out: str, branch_a: tuple[str, str], branch_b: tuple[str, str]
) -> str | None:
    """Why `block:out:A:OP_A:B:OP_B` does not apply, or None."""
    onode = graph[out]
    if len(onode.shape) != 3 or None in onode.shape:
        return f"{out!r} is not a 4-D cell output"
    if out in graph.outputs:
        return f"{out!r} is a model output"
    width = _block_width(graph, out)
    if width is None:
        return f"the inputs of {out!r} have different channel counts"
    after = graph.descendants(out)
    for source, op in (branch_a, branch_b):
        if op not in space_ops.OPS:
            return f"unknown op {op!r}; known: {sorted(space_ops.OPS)}"
        # A new Concatenate follows a non-Concatenate `out`, so a block may read `out`.
        if source in after and (source != out or onode.layer_cls is L.Concatenate):
            return f"{source!r} is computed from {out!r} (the block would make a cycle)"
        problem = _branch_shape(graph, source, op, out, width)
        if problem:
            return problem
    try:
        _plan_block(graph.shallow_copy(), out, width, "kn_placeholder_cat")
    except MorphError as e:
        return str(e)
    return None


def _plan_block(graph: Graph, out: str, width: int, cat_name: str) -> channels.Plan:
    """Plans `width` new channels on the cell output `out` (concatenating one if needed).

    When `out` is no Concatenate, a Concatenate named `cat_name` reading `out`
    alone is put after it first (the block's output is added to its inputs
    afterwards); the plan widens it.
    """
    onode = graph[out]
    channel_map = np.concatenate([np.arange(onode.channels), np.full(width, -1)])
    if onode.layer_cls is L.Concatenate:
        return channels.plan(graph, out, channel_map, origin=True)
    consumers = graph.consumers()[out]
    cat = graph.add(
        new_node(
            L.Concatenate(name=cat_name), [out], onode.shape, None, onode.config.get("dtype"), True
        )
    )
    graph.rewire(out, cat.name, consumers, outputs=False)
    return channels.plan(graph, cat.name, channel_map, origin=True)


def block(
    graph: Graph,
    out: str,
    branch_a: tuple[str, str],
    branch_b: tuple[str, str],
    rng: np.random.Generator,
) -> None:
    """Adds the block `OP_A(A) + OP_B(B)` to the cell whose output is `out`.

    Each branch is a `kerasnas.spaces.ops` op (the NASNet ops: separable
    convolutions, pools, identity, ...) with fresh weights, strided when its
    input has twice `out`'s resolution. The block's output is concatenated
    onto `out`: it becomes a new input of `out` when `out` is a Concatenate,
    else a new Concatenate follows `out`. The block's channels are new
    channels (map -1) of that concatenation: every layer reading them gets
    zero weights for them (see `kerasnas.morph.channels`), so the model's
    function does not change whatever the block computes.
    """
    problem = block_problem(graph, out, branch_a, branch_b)
    if problem:
        raise MorphError(problem)
    onode = graph[out]
    width = _block_width(graph, out)
    prefix = graph.fresh_prefix("block")
    dtype = onode.config.get("dtype")
    branches = [
        _import_op(graph, op, source, out, width, f"{prefix}_{tag}", dtype, rng)
        for (source, op), tag in ((branch_a, "a"), (branch_b, "b"))
    ]
    shape = (*onode.shape[:2], width)
    add = new_node(L.Add(name=f"{prefix}_add"), branches, shape, None, dtype, as_list=True)
    graph.add(add)
    plan = _plan_block(graph, out, width, f"{prefix}_cat")
    if onode.layer_cls is L.Concatenate:
        onode.inputs.append(add.name)
    else:
        graph[f"{prefix}_cat"].inputs.append(add.name)
    channels.execute(graph, plan, rng)


def _import_op(
    graph: Graph,
    op: str,
    source: str,
    out: str,
    width: int,
    prefix: str,
    dtype,
    rng: np.random.Generator,
) -> str:
    """Adds the layers of `kerasnas.spaces.ops` op `op` on `source`; returns its output."""
    stride = _pool_size(graph[source].shape, graph[out].shape)[0]
    scratch = keras.Input(shape=graph[source].shape)
    result = space_ops.apply(op, scratch, width, stride)
    if result is scratch:
        return source
    sub = from_model(keras.Model(scratch, result))
    renamed = {sub.inputs[0]: source}
    for name in sub.order():
        node = sub[name]
        if name in renamed:
            continue
        new_name = f"{prefix}_{_short_name(node.kind)}"
        while new_name in graph or new_name in renamed.values():
            new_name += "_"
        renamed[name] = new_name
        node.name = node.config["name"] = new_name
        if dtype is not None:
            node.config["dtype"] = dtype
        node.inputs = [renamed[i] for i in node.inputs]
        for key, value in node.weights.items():
            if "kernel" in key:  # Redrawn from `rng` so that children are reproducible.
                node.weights[key] = _glorot(value.shape, rng)
        graph.add(node)
    return renamed[sub.outputs[0]]


_SHORT_NAMES = {
    "ReLU": "relu",
    "Conv2D": "conv",
    "SeparableConv2D": "sepconv",
    "BatchNormalization": "bn",
    "AveragePooling2D": "avgpool",
    "MaxPooling2D": "maxpool",
}


def _short_name(kind: str) -> str:
    return _SHORT_NAMES.get(kind, kind.lower())


def _glorot(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(np.float32)


# -- Candidates -------------------------------------------------------------------
def candidates(graph: Graph) -> dict[str, list[tuple]]:
    """The op targets a graph admits, by kind, in a deterministic order.

    Returns:
        `{"deepen": [(layer,), ...], "widen": [(layer, channels), ...],
        "skip": [(from, to), ...], "skipcat": [...], "block": [(out, sources), ...]}`.
    """
    # The zero 1x1 projections of `skip` ops are no targets (they only carry skips).
    full_order = graph.order()
    order = [n for n in full_order if not _PROJECTION.fullmatch(n)]
    consumers = graph.consumers()
    found: dict[str, list[tuple]] = {kind: [] for kind in KINDS}
    ends: set[str] = set()
    for name in order:
        node = graph[name]
        if node.layer_cls in CONVS or is_relu(node):
            end = block_end(graph, name, consumers)
            if end not in ends and len(graph[end].shape) == 3:
                ends.add(end)
                found["deepen"].append((name,))
        if node.layer_cls in channels.WEIGHTED:
            try:
                channels.plan(
                    graph,
                    name,
                    np.arange(node.channels + 1) % node.channels,
                    consumers=consumers,
                    order=full_order,
                )
            except MorphError:
                pass
            else:
                found["widen"].append((name, node.channels))
    sources = [n for n in order if graph[n].layer_cls in CONVS and len(graph[n].shape) == 3]
    targets = [n for n in order if graph[n].layer_cls in (L.Conv2D, L.SeparableConv2D)]
    for target in targets:
        after = graph.descendants(target, consumers)
        for source in sources:
            for kind in ("skip", "skipcat"):
                if not skip_problem(graph, source, target, kind == "skipcat", consumers, after):
                    found[kind].append((source, target))
    for out in order:
        onode = graph[out]
        if onode.layer_cls is not L.Concatenate or not all(
            graph[i].layer_cls is L.Add for i in onode.inputs
        ):
            continue
        blocks = _cell_blocks(graph, out)
        identity = (blocks[0], "identity") if blocks else None
        if blocks and not block_problem(graph, out, identity, identity):
            found["block"].append((out, tuple(blocks)))
    return found


def _cell_blocks(graph: Graph, out: str) -> list[str]:
    """The Add layers of `out`'s cell that have its blocks' shape (a heuristic).

    Cells are not marked in a model: this walks back from `out` through
    everything but Concatenate layers (previous cells' outputs) and keeps the
    Add layers of the same shape as `out`'s inputs.
    """
    shape = graph[graph[out].inputs[0]].shape
    seen, stack, blocks = {out}, [out], []
    while stack:
        for parent in graph[stack.pop()].inputs:
            if parent in seen or graph[parent].layer_cls is L.Concatenate:
                continue
            seen.add(parent)
            stack.append(parent)
            if graph[parent].layer_cls is L.Add and graph[parent].shape == shape:
                blocks.append(parent)
    position = {name: i for i, name in enumerate(graph.order())}
    return sorted(blocks, key=position.__getitem__)


def propose(
    graph: Graph,
    rng: np.random.Generator,
    kinds: tuple[str, ...] = KINDS,
    block_ops: tuple[str, ...] = (),
    found: dict[str, list[tuple]] | None = None,
) -> str:
    """Draws one applicable op string: a kind uniformly, then a target uniformly.

    `found` may pass `candidates(graph)` when the caller has it.
    """
    found = candidates(graph) if found is None else found
    available = [k for k in kinds if found[k] and (k != "block" or block_ops)]
    if not available:
        raise MorphError(f"The model admits no morphism of the kinds {list(kinds)}.")
    kind = available[rng.integers(len(available))]
    choice = found[kind][rng.integers(len(found[kind]))]
    if kind == "deepen":
        kernel = (3, 5)[rng.integers(2)]
        return f"deepen:{choice[0]}" + ("" if kernel == 3 else f":{kernel}")
    if kind == "widen":
        name, width = choice
        amounts = sorted({max(1, width // 4), max(1, width // 2), width})
        return f"widen:{name}:{amounts[rng.integers(len(amounts))]}"
    if kind in ("skip", "skipcat"):
        return f"{kind}:{choice[0]}:{choice[1]}"
    out, blocks = choice
    parts = []
    for _ in range(2):
        parts += [blocks[rng.integers(len(blocks))], block_ops[rng.integers(len(block_ops))]]
    return "block:" + ":".join([out, *parts])
