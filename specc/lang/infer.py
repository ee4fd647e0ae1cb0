"""Infer phase: push the input shape through the expanded tree.

Computes each layer's output shape, parameters, buffers and multiply-adds
with the registry's rules, checks `: SHAPE` annotations and branch merges,
and turns LayerErrors into SpecErrors located at the layer that caused them.
No torch here: this is what `specc check` runs.
"""
from __future__ import annotations

from typing import NamedTuple

from .errors import SpecError, shape_str
from .evaluate import MAX_INT
from .expand import CheckNode, LayerNode, MergeNode, SeqNode
from .registry import LayerError, numel

RANK_NAMES = {1: "flat", 3: "spatial"}


class ModulePath(NamedTuple):
    """A dotted module path (`vgg2.conv1`) kept as a link to its parent's: rows share their prefixes,
    so deep blocks with long names cost memory linear in the spec, not in depth times layers."""

    parent: "ModulePath | None"
    name: str

    def __str__(self) -> str:
        names, node = [], self
        while node is not None:
            names.append(node.name)
            node = node.parent
        return ".".join(reversed(names))


class LayerRow(NamedTuple):
    """One row of a summary: a layer, or the merge point of a merge (concat, add, mul, split)."""

    at: ModulePath
    op: str  # as written in the spec
    kind: str
    output_shape: tuple[int, ...]
    params: int
    buffers: int
    macs: int
    line: int

    @property
    def path(self) -> str:
        """The module's dotted path in the built network, such as `vgg2.conv1`."""
        return str(self.at)

    @property
    def activations(self) -> int:
        """Values this layer outputs per sample."""
        return numel(self.output_shape)


MAX_KNOWN = 50_000  # shapes and costs kept (an editor's dict is emptied when it reaches this)


class Inferer:
    def __init__(self, check_annotations: bool = True, known: dict | None = None):
        # `: SHAPE` annotations describe the network at its declared input; at
        # another input (--input) they are not re-asserted.
        self.check_annotations = check_annotations
        self.rows: list[LayerRow] = []
        self.producer: LayerNode | MergeNode | None = None  # what made the current shape, for hints
        # (id of the arguments, input shape) -> (the arguments, output shape, cost); an editor passes its own
        # dict, kept from one analysis to the next (each entry holds its Args, so the id stays theirs).
        self._known: dict[tuple, tuple] = {} if known is None else known

    def seq(self, seq: SeqNode, shape: tuple, prefix: ModulePath | None) -> tuple:
        for item in seq.items:
            path = ModulePath(prefix, item.name)
            if isinstance(item, LayerNode):
                shape = self.layer(item, shape, path)
            elif isinstance(item, SeqNode):
                shape = self.seq(item, shape, path)
            elif isinstance(item, MergeNode):
                shape = self.merge(item, shape, path)
            else:
                self.check(item, shape)
        return shape

    def layer(self, node: LayerNode, shape: tuple, path: ModulePath) -> tuple:
        kind = node.kind
        node.in_shape = shape
        # A block repeated at one input size repeats its layers' arithmetic: compute each (arguments,
        # input) once. Equal layers share one Args (expand resolves each once; Args are never changed),
        # kept alive by the tree, so its id stands for kind and values. A flatten's output remembers its
        # input, so it is not shared.
        key = (id(node.args), shape) if type(shape) is tuple else None
        known = self._known.get(key) if key is not None else None
        if known is None or known[0] is not node.args:
            known = (node.args, *self._shape_and_cost(node, shape))
            if key is not None:
                if len(self._known) >= MAX_KNOWN:
                    self._known.clear()
                self._known[key] = known
        _, out, cost = known
        node.out_shape = out if type(out) is tuple else tuple(out)
        self.rows.append(LayerRow(path, node.text, kind.name, node.out_shape, cost.params, cost.buffers,
                                  cost.macs, node.span.line))
        self.producer = node
        return out  # keep Shape's memory of a flatten for the next layer's messages

    def _shape_and_cost(self, node: LayerNode, shape: tuple):
        kind = node.kind
        try:
            self._require_rank(kind.name, kind.input, shape)
            out = kind.shape(node.args, shape)
            _check_bounded(kind.name, out)
        except LayerError as exc:
            span = node.arg_spans.get(exc.arg, node.span) if exc.arg else node.span
            hint = exc.hint or self._origin(shape)
            message = exc.message if exc.message.startswith(kind.name) else f"{kind.name} {exc.message}"
            raise SpecError(message, span, hint=hint, notes=node.calls) from None
        return out, kind.cost(node.args, shape, tuple(out))

    def _require_rank(self, name: str, needed: str, shape: tuple) -> None:
        if needed == "spatial" and len(shape) != 3:
            raise LayerError(f"{name} needs a CxHxW input but gets the flat shape {shape_str(shape)}",
                             hint=f"{name} cannot follow flatten or fc; move the flatten after it")
        if needed == "flat" and len(shape) != 1:
            raise LayerError(f"{name} needs a flat input but gets {shape_str(shape)}",
                             hint=f"insert '-> flatten' before {name} (PyTorch's nn.Linear would silently "
                                  f"apply to the last axis only)")

    def merge(self, node: MergeNode, shape: tuple, path: ModulePath) -> tuple:
        kind = node.kind
        try:
            inputs = kind.inputs(shape, len(node.branches))
        except LayerError as exc:
            raise SpecError(f"{kind.name} {exc.message}", node.span, notes=node.calls,
                            hint=exc.hint or self._origin(shape)) from None
        outs = [self.seq(branch, branch_in, ModulePath(path, branch.name))
                for branch, branch_in in zip(node.branches, inputs)]
        try:
            out = tuple(kind.join([tuple(s) for s in outs]))
            _check_bounded(kind.name, out)
        except LayerError as exc:
            shown = ", ".join(f"branch {i} gives {shape_str(s)}" for i, s in enumerate(outs, 1))
            raise SpecError(f"{kind.name} {exc.message} but {shown}", node.span, notes=node.calls,
                            hint=exc.hint) from None
        node.out_shape = out
        self.rows.append(LayerRow(path, kind.name, kind.name, out, 0, 0, 0, node.span.line))
        self.producer = node
        return out

    def check(self, node: CheckNode, shape: tuple) -> None:
        if not self.check_annotations:
            return
        fits = len(node.dims) == len(shape) and all(d is None or d == s for d, s in zip(node.dims, shape))
        if not fits:
            written = "x".join("?" if d is None else str(d) for d in node.dims)
            raise SpecError(f"shape annotation says {written} but the shape here is "
                            f"{shape_str(shape)}", node.span, hint=self._origin(shape))

    def _origin(self, shape: tuple) -> str:
        unflattened = getattr(shape, "unflattened", None)
        producer = self._producer_text()
        if unflattened is not None:
            return f"{producer} turns {shape_str(unflattened)} into {shape_str(shape)}"
        if producer is None:
            return f"the input is {shape_str(shape)}, from the 'input' line"
        return f"the input {shape_str(shape)} comes from {producer}"

    def _producer_text(self) -> str | None:
        node = self.producer
        if node is None:
            return None
        text = node.text if isinstance(node, LayerNode) else f"{node.kind.name}(...)"
        return f"{text} at {_where(node.span)}"


def _check_bounded(name: str, shape) -> None:
    # Sides that grow at every layer (a repeated upsample or concat) would otherwise grow without
    # bound, and every later count and message with them.
    if any(side > MAX_INT for side in shape):
        raise LayerError(f"{name}'s output has a side over specc's limit of 2**63")


def _where(span) -> str:
    """`line 7`, or `lib/efficientnet.cnn:29` for a layer written in an imported file."""
    return f"{span.origin[0]}:{span.line}" if span.origin else f"line {span.line}"


def infer(root: SeqNode, input_shape: tuple[int, ...], check_annotations: bool = True, known: dict | None = None
          ) -> tuple[tuple[int, ...], list[LayerRow]]:
    inferer = Inferer(check_annotations, known)
    out = inferer.seq(root, tuple(input_shape), None)
    return tuple(out), inferer.rows
