"""A Diagram as Graphviz DOT, for people who lay graphs out with graphviz.

One node per layer (activations too), the output shape on each edge, a
cluster per expanded block call, a join node per merge; a failed node is red,
with the diagnostic in a note after it. Graphviz itself is not needed to write it.
"""
from __future__ import annotations

from ...lang.errors import shape_str
from . import Box, Chain, Diagram, Fork, Frame, Note
from .layout import COLOURS, FAILED_FILL, FAILED_STROKE


def quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as DOT's own `\\n`."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


class _Writer:
    def __init__(self, params: bool):
        self.params = params  # parameter counts in the labels
        self.lines: list[str] = []
        self.count = 0
        self.indent = "  "

    def node(self, attrs: str) -> str:
        self.count += 1
        name = f"n{self.count}"
        self.lines.append(f"{self.indent}{name} [{attrs}];")
        return name

    def edge(self, tail: str | None, head: str, shape: tuple | None, extra: str = "") -> None:
        if tail is None:
            return
        label = f"label={quote(' ' + shape_str(shape) + ' ')}" if shape is not None else ""
        attrs = ", ".join(a for a in (label, extra) if a)
        self.lines.append(f"{self.indent}{tail} -> {head}" + (f" [{attrs}]" if attrs else "") + ";")

    def box(self, box: Box) -> str:
        fill, colour = (FAILED_FILL, FAILED_STROKE) if box.failed else (COLOURS.get(box.group, COLOURS["other"]),
                                                                       "#555555")
        label = box.label + (f"\n{box.params:,} params" if box.params and self.params else "")
        attrs = f"label={quote(label)}, fillcolor={quote(fill)}, color={quote(colour)}"
        if box.small:
            attrs += ", fontsize=9, height=0.25"
        if box.failed:
            attrs += ", penwidth=2.5"
        if box.title:
            attrs += f", tooltip={quote(box.title)}"
        return self.node(attrs)

    def chain(self, chain: Chain, tail: str | None, shape: tuple | None) -> str | None:
        for item in chain.items:
            tail = self.element(item, tail, shape)
            shape = item.out_shape
        return tail

    def element(self, item, tail: str | None, shape: tuple | None) -> str | None:
        if isinstance(item, Box):
            node = self.box(item)
            self.edge(tail, node, shape)
            return self.tags(item, node)
        if isinstance(item, Fork):
            return self.fork(item, tail, shape)
        if isinstance(item, Frame):
            return self.frame(item, tail, shape)
        if isinstance(item, Note):
            text = "".join(line.replace("\\", "\\\\").replace('"', '\\"') + "\\l" for line in item.lines)
            note = self.node(f'label="{text}", shape=note, fontname="DejaVu Sans Mono", fontsize=9, '
                             f'fillcolor="#fff5f0", color={quote(FAILED_STROKE)}')
            self.edge(tail, note, None, f'style=dashed, color={quote(FAILED_STROKE)}, arrowhead=none')
            return note
        raise TypeError(item)

    def fork(self, fork: Fork, tail: str | None, shape: tuple | None) -> str | None:
        ends = [(self.chain(branch, tail, branch.in_shape if fork.share else shape), branch.out_shape)
                for branch in fork.branches]
        if fork.merge is None:
            return None
        join = self.box(fork.merge)
        for end, out in ends:
            self.edge(end, join, out)
        if not fork.branches:
            self.edge(tail, join, shape)
        return self.tags(fork.merge, join)

    def tags(self, box: Box, node: str) -> str:
        """The activations drawn attached to `box`: here a small node each, after it."""
        shape = box.shape
        for tag in box.tags:
            tag_node = self.node(f"label={quote(tag.label)}, fillcolor={quote(COLOURS['activation'])}, "
                                 f"fontsize=9, height=0.25, tooltip={quote(tag.title)}")
            self.edge(node, tag_node, shape)
            node, shape = tag_node, tag.shape
        return node

    def frame(self, frame: Frame, tail: str | None, shape: tuple | None) -> str | None:
        self.count += 1
        self.lines.append(f"{self.indent}subgraph cluster_{self.count} {{")
        outer, self.indent = self.indent, self.indent + "  "
        self.lines.append(f'{self.indent}label={quote(frame.title)}; labeljust=l; style="dashed,rounded"; '
                          f'color="#8c8c8c"; fontsize=10; fontcolor="#666666";')
        end = self.chain(frame.chain, tail, shape)
        self.indent = outer
        self.lines.append(f"{self.indent}}}")
        return end


def dot(drawing: Diagram, horizontal: bool = False) -> str:
    writer = _Writer(drawing.params_shown)
    header = [f"digraph {quote(drawing.name)} {{",
              f"  rankdir={'LR' if horizontal else 'BT'}; label={quote(drawing.caption)}; labelloc=t; "
              f'fontname="DejaVu Sans"; fontsize=11;',
              '  node [shape=box, style="rounded,filled", fontname="DejaVu Sans", fontsize=11, color="#555555"];',
              '  edge [fontname="DejaVu Sans", fontsize=9, color="#555555", fontcolor="#666666"];']
    end = writer.chain(drawing.chain, None, None)
    if drawing.output is not None and end is not None:
        out = writer.node('label="output", shape=plaintext, style=""')
        writer.edge(end, out, drawing.output)
    return "\n".join(header + writer.lines + ["}"]) + "\n"
