"""Training memory without torch: the bytes one steady step of specc's training loop holds at its peak.

The estimate replays, on the expanded graph, the step specc/train/loop.py takes (forward,
cross-entropy, zero_grad(set_to_none=True), backward, optimizer step) and counts bytes as PyTorch's
allocator sees them:
- all along: the weights (parameters and buffers), the optimizer's state, the batch and its targets,
  and, until zero_grad, the previous step's gradients;
- forward: each layer's output is a new tensor (views such as flatten are not), freed as soon as
  nothing needs it: the chain has moved on and no layer keeps it for backward. What each kind
  keeps is its registry entry's `saves`; a kept tensor counts once however many layers keep it;
- backward: autograd runs the nodes latest-created first, as PyTorch's engine does; a node computes
  its input's gradient and its parameters' gradients, then lets go of what it kept and of its
  output's gradient; gradients meeting at one tensor (a shortcut) are summed in place when PyTorch
  can, into a new tensor when it cannot;
- the optimizer step: SGD updates in place; Adam needs two parameter-sized temporaries;
- a convolution on the CPU also makes temporaries: oneDNN copies its input, weights, output and
  their gradients into its blocked layouts and back (_OneDNN; in channels_last only the weights:
  NHWC is one of its own layouts), PyTorch's own kernel unfolds the input (_Unfolded); which of
  the two runs follows aten's rule, which depends on the batch and on the thread count.
The peak is the highest total at any point of that replay. tests/test_memory.py holds it to the
PyTorch allocator's measured peak on the CPU (within 10%; bench/memory.py prints the comparison).

With `autocast` (what the loop does on CUDA: bf16 autocast, foreach optimizers) conv and linear
layers compute in bfloat16: their outputs, the bf16 copies of their weights and of a float32 input
they keep are 2 bytes a value, layer norm, softmax and the loss compute in float32, and dropout keeps
a bool mask. That model has not been checked against a GPU.
"""
from __future__ import annotations

import functools
import heapq
import math
from dataclasses import dataclass, field
from typing import NamedTuple

from .expand import CheckNode, LayerNode, MergeNode, SeqNode
from .registry import REGISTRY

FLOAT32, BFLOAT16, INT64 = 4, 2, 8
OPTIMIZERS = ("sgd", "adam", "adamw")  # what the recipe's `optimizer` allows (train.schema.json)
FLOAT32_KINDS = ("ln", "softmax")  # autocast computes these in float32 whatever their input


@dataclass(frozen=True)
class TrainingMemory:
    """Estimated training memory of one steady step at one batch size, in bytes.

    `saved` is what autograd keeps for backward at the end of the forward pass (each tensor once,
    the loss's included); `saved_by_layer` splits it over net.layers' rows, a tensor counted at the
    first layer that keeps it. `peak` (also `total`) is the most held at any moment of the step.
    """

    weights: int  # parameters and buffers
    gradients: int  # one value per parameter
    optimizer: int  # SGD momentum: one value per parameter; Adam: two
    saved: int
    batch_data: int  # the input batch and its int64 targets
    peak: int
    optimizer_name: str  # "sgd", "sgd with momentum", "adam" or "adamw"
    autocast: bool
    saved_by_layer: tuple[int, ...] = ()

    @property
    def total(self) -> int:
        """The estimated peak: what the step needs free on the device."""
        return self.peak


def training_memory(net, batch: int, *, optimizer: str = "sgd", momentum: float = 0.0,
                    autocast: bool = False, threads: int | None = None,
                    channels_last: bool = False) -> TrainingMemory:
    """The memory a steady training step of `net` at `batch` needs (see the module's docstring).

    `threads`: PyTorch's CPU threads (default: the CPUs this process may use, PyTorch's own default
    on most machines); only convolutions on maps of under 9 positions need memory per thread.
    `channels_last`: activations and weights in that memory format (an image input's default in
    specc's loop, see train_channels_last).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    states = 2 if optimizer in ("adam", "adamw") else (1 if momentum else 0)
    step = _Step(net, batch, autocast, threads or _cpus(), channels_last and len(net.input_shape) == 3)
    return step.run(states, optimizer, momentum)


def train_channels_last(net, device_type: str) -> bool:
    """Whether specc's loop trains `net` in channels_last on a device of this type by default: a fixed
    rule, not a timing, so that the same command gives the same weights.

    CUDA: always (cuDNN's tensor-core kernels want NHWC). The CPU: oneDNN's convolutions are faster
    on it too, 1.1-2x per step for 7 of the 8 d2l specs on a 2-core CPU, except where a layer's kind
    is slower in channels_last below its registry entry's `cpu_channels_last_min` channels (BatchNorm:
    16; LeNet-BN's 6 made a step 0.82x). Only image inputs.
    """
    if len(net.input_shape) != 3 or device_type not in ("cuda", "cpu"):
        return False
    if device_type == "cuda":
        return True
    return not any(len(row.output_shape) == 3 and row.output_shape[0] < _cpu_channels_last_min(row.kind)
                   for row in net.layers)


def _cpu_channels_last_min(kind: str) -> int:
    layer = REGISTRY.get(kind)  # merge rows (add, concat, ...) have no such limit
    return layer.cpu_channels_last_min if layer is not None else 0


def optimizer_label(optimizer: str, momentum: float) -> str:
    return "sgd with momentum" if optimizer == "sgd" and momentum else optimizer


# --- the replay's bookkeeping -------------------------------------------------------------------
class _Buffer:
    """One allocation: freed when its last holder lets go."""

    __slots__ = ("size", "holders")

    def __init__(self, size: int):
        self.size, self.holders = size, 1


class _Allocator:
    def __init__(self):
        self.live = 0
        self.peak = 0

    def new(self, size: int) -> _Buffer:
        self.live += size
        self.peak = max(self.peak, self.live)
        return _Buffer(size)

    def hold(self, buffer: _Buffer) -> _Buffer:
        buffer.holders += 1
        return buffer

    def drop(self, buffer: _Buffer) -> None:
        buffer.holders -= 1
        if buffer.holders == 0:
            self.live -= buffer.size

    def spike(self, size: int) -> None:
        """A temporary allocated and freed inside one operation."""
        self.peak = max(self.peak, self.live + size)


@dataclass(eq=False)
class _Node:
    """An autograd node. `backward`: "new" (computes a new gradient for each input), "product" (mul: the
    same, broadcast operands summed from a full-size product), "pass" (add: hands its output's gradient
    on), "slice" (concat: hands on slices of it) or "join" (split: concatenates the chunks' gradients)."""

    seq: int
    backward: str
    edges: list  # per input: (_Edge or None when the input needs no gradient, bytes of that input)
    kept: list
    param_bytes: int = 0
    weight_copy: int = 0  # autocast: bytes of the bf16 weight copies it keeps
    conv: "_OneDNN | _Unfolded | None" = None  # a convolution on the CPU: its temporaries
    slots: list = field(default_factory=lambda: [None])
    waiting: int = 0  # gradients still to arrive


class _Edge(NamedTuple):
    node: _Node
    slot: int


class _Value(NamedTuple):
    """A tensor of the forward pass: its storage, its per-sample shape, its bytes (a chunk is part of its
    storage), the bytes of one of its values, and where its gradient goes (None: it needs none)."""

    buffer: _Buffer
    shape: tuple
    size: int
    itemsize: int
    edge: _Edge | None


class _Grad(NamedTuple):
    buffer: _Buffer
    size: int
    view: bool  # a slice of another gradient: PyTorch never sums into one in place


# --- one training step ------------------------------------------------------------------------
class _Step:
    def __init__(self, net, batch: int, autocast: bool, threads: int, channels_last: bool = False):
        self.net, self.batch, self.autocast, self.threads = net, batch, autocast, threads
        self.channels_last = channels_last
        self.mem = _Allocator()
        self.seq = 0
        self.largest_param = 0
        self.counted: set[_Buffer] = set()  # kept buffers already in `saved`
        self.saved = 0
        self.saved_by_layer: list[int] = []

    def run(self, states: int, optimizer: str, momentum: float) -> TrainingMemory:
        net, batch, mem = self.net, self.batch, self.mem
        params = FLOAT32 * net.param_count
        weights = params + FLOAT32 * net.buffer_count
        classes = math.prod(net.output_shape)
        batch_data = FLOAT32 * batch * math.prod(net.input_shape) + INT64 * batch
        mem.new(weights + states * params + batch_data)  # held all along
        old_grads = mem.new(params)  # the previous step's, until zero_grad
        old_out = mem.new(FLOAT32 * batch * classes + FLOAT32)  # the loop's previous `out` and `loss`
        x = _Value(mem.new(0), tuple(net.input_shape), batch_data - INT64 * batch, FLOAT32, None)  # counted above
        out = self._seq(net.graph, x)
        mem.drop(old_out)
        loss = self._loss(out, classes)
        mem.drop(old_grads)
        self._backward(loss)
        self._optimizer_step(optimizer, params)
        return TrainingMemory(
            weights=weights, gradients=params, optimizer=states * params, saved=self.saved,
            batch_data=batch_data, peak=mem.peak, optimizer_name=optimizer_label(optimizer, momentum),
            autocast=self.autocast, saved_by_layer=tuple(self.saved_by_layer))

    # --- forward ---------------------------------------------------------------------------------
    def _seq(self, seq: SeqNode, x: _Value) -> _Value:
        """A chain: its variable holds the current tensor, and its caller holds the chain's input."""
        current = x
        self.mem.hold(current.buffer)
        for item in seq.items:
            if isinstance(item, CheckNode):
                continue
            if isinstance(item, LayerNode):
                out = self._layer(item, current)
            elif isinstance(item, SeqNode):
                out = self._seq(item, current)
            else:
                out = self._merge(item, current)
            self.mem.drop(current.buffer)
            current = out
        return current

    def _layer(self, node: LayerNode, x: _Value) -> _Value:
        kind, args = node.kind, node.args
        if kind.saves.view(args):
            self.mem.hold(x.buffer)
            self.saved_by_layer.append(0)
            return x
        cost = kind.cost(args, node.in_shape, node.out_shape)
        cast = self._autocast_input(kind.name, cost.macs > 0, x)  # the input in the dtype it computes in
        used = cast or x
        conv = self._cpu_conv(node) if kind.name == "conv" and not self.autocast else None
        if conv is not None:
            self.mem.spike(conv.forward_before_output())
        out = self._new(node.out_shape, used.itemsize)
        if conv is not None:
            self.mem.spike(conv.dst)  # its result in oneDNN's layout, copied into `out`
        recorded = x.edge is not None or cost.params > 0  # else nothing needs a gradient: autograd records nothing
        if cast is not None and not (recorded and kind.saves.keeps("input", args)):
            self.mem.drop(cast.buffer)
        if not recorded:
            self.saved_by_layer.append(0)
            return out
        kept = self._kept(node, used, out, cast is not None, cost)
        graph_node = self._node("new", [(x.edge, x.size)], kept, FLOAT32 * cost.params)
        graph_node.weight_copy = BFLOAT16 * cost.params if self.autocast and cost.macs else 0
        graph_node.conv = conv
        self.largest_param = max(self.largest_param, FLOAT32 * cost.params)
        self.saved_by_layer.append(self._count_saved(kept))
        return out._replace(edge=_Edge(graph_node, 0))

    def _cpu_conv(self, node: LayerNode) -> "_OneDNN | _Unfolded":
        """How PyTorch runs this convolution on the CPU: oneDNN, or its own unfold-and-multiply for the
        cases aten's ConvParams::use_mkldnn leaves to it (one thread and a 1x1 kernel below batch 16,
        batch 1 with kernels up to 3x3 on small inputs)."""
        a, batch = node.args, self.batch
        pointwise = tuple(a.kernel) == (1, 1) and tuple(a.stride) == (1, 1) and tuple(a.dilation) == (1, 1)
        if pointwise and batch < 16 and self.threads == 1:
            return _Unfolded(node, batch)
        if a.groups > 1 or min(a.kernel) > 3 or batch > 1 or batch * math.prod(node.in_shape) > 20480:
            return _OneDNN(node, batch, self.threads, self.channels_last)
        return _Unfolded(node, batch)

    def _kept(self, node: LayerNode, x: _Value, out: _Value, own_input: bool, cost) -> list[_Buffer]:
        """What the layer's autograd node holds until its backward runs (its registry entry's `saves`)."""
        saves, args = node.kind.saves, node.args
        kept = []
        if saves.keeps("input", args):  # an autocast copy of the input is the node's alone
            kept.append(x.buffer if own_input else self.mem.hold(x.buffer))
        if saves.keeps("output", args):
            kept.append(self.mem.hold(out.buffer))
        extra = saves.extra(args, node.in_shape, node.out_shape, self.batch)
        if extra:  # CUDA's dropout keeps a bool mask, a quarter of the CPU's float32 one
            kept.append(self.mem.new(extra // FLOAT32 if self.autocast and node.kind.name == "dropout" else extra))
        if self.autocast and cost.macs:  # the bf16 weights conv and linear compute with
            kept.append(self.mem.new(BFLOAT16 * cost.params))
        return kept

    def _new(self, shape: tuple, itemsize: int) -> _Value:
        size = math.prod(shape) * self.batch * itemsize
        return _Value(self.mem.new(size), tuple(shape), size, itemsize, None)

    def _autocast_input(self, kind: str, weighted: bool, x: _Value) -> _Value | None:
        """Under autocast conv and linear compute in bf16 and a few kinds in float32: a copy of an input
        in another dtype, or None when the layer takes its input as it is."""
        if not self.autocast:
            return None
        wanted = BFLOAT16 if weighted else FLOAT32 if kind in FLOAT32_KINDS else x.itemsize
        if wanted == x.itemsize:
            return None
        return self._new(x.shape, wanted)._replace(edge=x.edge)

    def _merge(self, node: MergeNode, x: _Value) -> _Value:
        kind, k = node.kind, len(node.branches)
        shapes = [tuple(s) for s in kind.inputs(x.shape, k)]
        chunked = shapes != [x.shape] * k  # split: each branch gets a slice of the channels
        inputs = self._chunks(x, shapes) if chunked else [x] * k
        by_cat = tuple(kind.join([x.shape, x.shape]))[0] == 2 * x.shape[0]  # concat and split join channels
        out = self._cat(node, inputs) if by_cat else self._fold(node, inputs)
        if chunked:
            for chunk in inputs:
                self.mem.drop(chunk.buffer)
        return out

    def _chunks(self, x: _Value, shapes: list[tuple]) -> list[_Value]:
        """split's chunks: views of the input, whose gradients autograd joins at one node."""
        split = self._node("join", [(x.edge, x.size)], [])
        split.slots = [None] * len(shapes)
        return [_Value(self.mem.hold(x.buffer), shape, x.size // len(shapes), x.itemsize, _Edge(split, i))
                for i, shape in enumerate(shapes)]

    def _cat(self, node: MergeNode, inputs: list[_Value]) -> _Value:
        outs = [self._seq(branch, value) for branch, value in zip(node.branches, inputs)]
        out = self._new(node.out_shape, max(o.itemsize for o in outs))
        graph_node = self._node("slice", [(o.edge, o.size) for o in outs], [])
        for o in outs:
            self.mem.drop(o.buffer)
        self.saved_by_layer.append(0)
        return out._replace(edge=_Edge(graph_node, 0))

    def _fold(self, node: MergeNode, inputs: list[_Value]) -> _Value:
        """add and mul: the first branch's output combined with each next one's, in branch order."""
        keeps = node.kind.saves.keeps("input", {})
        backward = "pass" if node.kind.saves.grad_view else "product"
        acc = self._seq(node.branches[0], inputs[0])
        saved = 0
        for branch, value in zip(node.branches[1:], inputs[1:]):
            other = self._seq(branch, value)
            shape = acc.shape if acc.size // acc.itemsize >= other.size // other.itemsize else other.shape
            combined = self._new(shape, max(acc.itemsize, other.itemsize))  # broadcast to the larger
            kept = [self.mem.hold(acc.buffer), self.mem.hold(other.buffer)] if keeps else []
            graph_node = self._node(backward, [(acc.edge, acc.size), (other.edge, other.size)], kept)
            saved += self._count_saved(kept)
            self.mem.drop(acc.buffer)
            self.mem.drop(other.buffer)
            acc = combined._replace(edge=_Edge(graph_node, 0))
        self.saved_by_layer.append(saved)
        return acc

    def _node(self, backward: str, edges: list, kept: list, param_bytes: int = 0) -> _Node:
        self.seq += 1
        node = _Node(self.seq, backward, edges, kept, param_bytes)
        for edge, _ in edges:
            if edge is not None:
                edge.node.waiting += 1
        return node

    def _count_saved(self, kept: list) -> int:
        """Bytes of `kept` not yet counted: a tensor kept by two layers counts once."""
        new = sum(b.size for b in set(kept) - self.counted)
        self.counted.update(kept)
        self.saved += new
        return new

    # --- loss, backward and the optimizer ---------------------------------------------------------
    def _loss(self, out: _Value, classes: int) -> _Node:
        """Cross-entropy as PyTorch computes it: log_softmax (keeps its float32 result), then nll_loss."""
        mem, values = self.mem, self.batch * classes
        if out.itemsize != FLOAT32:
            mem.spike(FLOAT32 * values)  # autocast runs the loss in float32: a copy of the logits
        log_probs = mem.new(FLOAT32 * values)
        log_softmax = self._node("new", [(out.edge, out.size)], [log_probs])
        total_weight = mem.new(FLOAT32)
        mem.new(FLOAT32)  # the loss, held by the loop until the next step
        nll = self._node("new", [(_Edge(log_softmax, 0), FLOAT32 * values)], [mem.hold(log_probs), total_weight])
        self.saved += log_probs.size + total_weight.size
        return nll

    def _backward(self, root: _Node) -> None:
        mem = self.mem
        root.slots[0] = _Grad(mem.new(FLOAT32), FLOAT32, False)  # loss.backward(): a gradient of ones
        ready = [(-root.seq, root)]
        while ready:
            _, node = heapq.heappop(ready)
            for edge, grad in self._apply(node):
                if self._arrive(edge, grad):
                    heapq.heappush(ready, (-edge.node.seq, edge.node))

    def _apply(self, node: _Node) -> list:
        """Run one node: compute the gradients it sends on, then let go of what it held."""
        mem = self.mem
        sent = [(edge, self._input_gradient(node, size)) for edge, size in node.edges if edge is not None]
        if node.conv is not None:
            mem.spike(node.conv.backward_weights())
        if node.param_bytes:
            if node.weight_copy:
                mem.spike(node.param_bytes + node.weight_copy)  # the bf16 gradient, then its float32 copy
            mem.new(node.param_bytes)  # becomes .grad, until the next step's zero_grad
            if node.conv is not None:
                mem.spike(node.conv.weights)  # the weight gradient in oneDNN's layout, copied into .grad
        for grad in node.slots:
            if grad is not None:
                mem.drop(grad.buffer)
        for buffer in node.kept:
            mem.drop(buffer)
        return sent

    def _input_gradient(self, node: _Node, size: int) -> _Grad:
        """The gradient `node` sends to one of its inputs, of `size` bytes."""
        mem, grad_out = self.mem, node.slots[0]
        if node.backward == "pass":
            return _Grad(mem.hold(grad_out.buffer), grad_out.size, grad_out.view)
        if node.backward == "slice":
            return _Grad(mem.hold(grad_out.buffer), size, True)
        if node.conv is not None:
            mem.spike(node.conv.backward_data())
        if node.backward == "product" and grad_out.size > size:
            mem.spike(grad_out.size)  # a broadcast operand's gradient is summed from a full-size product
        grad = _Grad(mem.new(size), size, False)
        if node.conv is not None:
            mem.spike(node.conv.src)  # the gradient in oneDNN's layout, copied into the new one
        return grad

    def _arrive(self, edge: _Edge, grad: _Grad) -> bool:
        """Deliver a gradient to the node that made the tensor; True when that node has all it waits for."""
        node = edge.node
        old = node.slots[edge.slot]
        node.slots[edge.slot] = grad if old is None else self._sum(old, grad)
        node.waiting -= 1
        return node.waiting == 0

    def _sum(self, old: _Grad, new: _Grad) -> _Grad:
        """PyTorch's InputBuffer: sum into whichever gradient is a whole tensor held only here, else a new one."""
        for into, other in ((old, new), (new, old)):
            if not into.view and into.buffer.holders == 1:
                self.mem.drop(other.buffer)
                return into
        total = _Grad(self.mem.new(max(old.size, new.size)), max(old.size, new.size), False)
        self.mem.drop(old.buffer)
        self.mem.drop(new.buffer)
        return total

    def _optimizer_step(self, optimizer: str, params: int) -> None:
        if optimizer in ("adam", "adamw"):
            # the denominator sqrt(v) / c + eps: two temporaries, per parameter tensor on the CPU and for all
            # parameters at once with CUDA's foreach implementation
            self.mem.spike(params if self.autocast else 2 * self.largest_param)


class _OneDNN:
    """The temporaries of a float32 convolution on the CPU, which PyTorch runs with oneDNN: it computes
    in blocked layouts (channels in blocks of 8 on AVX2 CPUs, 16 with AVX-512) and copies between those
    and PyTorch's plain NCHW tensors (measured with torch 2.14 and its profiler's allocation events on
    an AVX2 CPU; the AVX-512 block is oneDNN's documented nChw16c layout, not measured here)."""

    def __init__(self, node: LayerNode, batch: int, threads: int, channels_last: bool = False):
        (c_in, h_in, w_in), (c_out, h_out, w_out) = node.in_shape, node.out_shape
        a = node.args
        # NHWC is one of oneDNN's own layouts: activations need no copies then
        self.src = 0 if channels_last else FLOAT32 * batch * _padded(c_in) * h_in * w_in
        self.dst = 0 if channels_last else FLOAT32 * batch * _padded(c_out) * h_out * w_out
        per_group = c_in // a.groups
        taps = a.kernel[0] * a.kernel[1]
        self.plain_weights = FLOAT32 * c_out * per_group * taps
        # a dense conv's weights are blocked on both channel axes; a grouped one's per group
        self.weights = (FLOAT32 * _padded(c_out) * _padded(per_group) * taps if a.groups == 1
                        else self.plain_weights)
        self.reads_plain_src = c_in < _channel_block()  # a first layer's few channels are read as they are
        # on maps of under 9 positions each thread sums its share of the weight gradient in a
        # buffer four weights' worth
        self.reduction = 4 * self.plain_weights * threads if h_out * w_out < 9 and taps > 1 else 0

    def forward_before_output(self) -> int:
        return (0 if self.reads_plain_src else self.src) + self.weights + self.dst

    def backward_data(self) -> int:
        return self.dst + self.weights + self.src

    def backward_weights(self) -> int:
        return self.dst + self.src + self.weights + self.reduction


class _Unfolded:
    """PyTorch's own CPU convolution (slow_conv2d): the input unfolded into columns (none for a 1x1
    kernel with stride 1 and no padding), one matrix product, the same columns again in backward."""

    def __init__(self, node: LayerNode, batch: int):
        a = node.args
        direct = tuple(a.kernel) == (1, 1) and tuple(a.stride) == (1, 1) and tuple(a.padding) == (0, 0)
        c_in, (_, h_out, w_out) = node.in_shape[0], node.out_shape
        self.columns = 0 if direct else FLOAT32 * batch * c_in * a.kernel[0] * a.kernel[1] * h_out * w_out
        self.src = self.dst = self.weights = 0

    def forward_before_output(self) -> int:
        return self.columns

    def backward_data(self) -> int:
        return self.columns

    def backward_weights(self) -> int:
        return self.columns


def _padded(channels: int) -> int:
    block = _channel_block()
    return -(-channels // block) * block


@functools.lru_cache(maxsize=1)
def _channel_block() -> int:
    """oneDNN's channel block for float32 on this CPU: 16 where it has AVX-512, else 8."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return 16 if any(line.startswith("flags") and " avx512f" in line for line in cpuinfo) else 8
    except OSError:
        return 8


def _cpus() -> int:
    import os
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
