"""Summary rows at a depth: each layer, or each block call with its totals (torchinfo's `depth`).

A row's depth is the number of names in its module path: `conv1` is at depth 1,
`residual1.add1.branch1.conv1` at depth 4. At `depth=N` every layer deeper than
N is folded into its ancestor at depth N, which shows the block call or merge
as written (`residual(64)`) with the sums of its layers' counts. Torch-free.
"""
from __future__ import annotations

from typing import Iterator, NamedTuple

from ..lang.expand import CheckNode, LayerNode, MergeNode, SeqNode
from ..lang.infer import LayerRow
from ..lang.render import layer_text
from ..network import Network


class Row(NamedTuple):
    path: str
    written: str  # the op as the spec writes it: `conv 1x1 c1`, `residual(64)`
    resolved: str  # with the values it was built with: `conv 1x1 64`
    kind: str  # a layer or merge kind, or "block" for a folded block call or group
    output_shape: tuple[int, ...]
    params: int
    buffers: int
    macs: int
    line: int
    layers: tuple[LayerRow, ...]  # the layer rows this row stands for (one, unless folded)

    @property
    def depth(self) -> int:
        return self.path.count(".") + 1


def rows(net: Network, depth: int | None = None) -> list[Row]:
    """The network's rows, every layer (depth None) or folded to `depth` names."""
    nodes = dict(_nodes(net.graph, ""))
    out: list[Row] = []
    group: list[LayerRow] = []
    group_path = None
    for layer in net.layers:
        path = _prefix(layer.path, depth)
        if path != group_path and group:
            out.append(_row(group_path, group, nodes))
            group = []
        group_path = path
        group.append(layer)
    if group:
        out.append(_row(group_path, group, nodes))
    return out


def _row(path: str, layers: list[LayerRow], nodes: dict) -> Row:
    node = nodes[path]
    last = layers[-1]
    sums = [sum(getattr(r, f) for r in layers) for f in ("params", "buffers", "macs")]
    if isinstance(node, LayerNode):
        written, resolved, kind = node.text, layer_text(node.kind, node.args), node.kind.name
    elif isinstance(node, MergeNode):
        kind = node.kind.name
        written = resolved = kind if len(layers) == 1 else f"{kind}(...)"  # folded with its branches
    else:  # a block call, a group or a merge's branch
        written = node.text or f"({_name(path)})"
        resolved = node.resolved or written
        kind = "block"
    line = node.span.line if getattr(node, "span", None) is not None else last.line
    return Row(path, written, resolved, kind, last.output_shape, *sums, line, tuple(layers))


def _prefix(path: str, depth: int | None) -> str:
    if depth is None:
        return path
    return ".".join(path.split(".")[:depth])


def _name(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def _nodes(seq: SeqNode, prefix: str) -> Iterator[tuple[str, object]]:
    """(module path, node) for every layer, merge, branch and block call under `seq`."""
    for item in seq.items:
        if isinstance(item, CheckNode):
            continue
        path = f"{prefix}.{item.name}" if prefix else item.name
        yield path, item
        if isinstance(item, SeqNode):
            yield from _nodes(item, path)
        elif isinstance(item, MergeNode):
            for branch in item.branches:
                branch_path = f"{path}.{branch.name}"
                yield branch_path, branch
                yield from _nodes(branch, branch_path)
