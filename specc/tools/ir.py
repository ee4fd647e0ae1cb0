"""The JSON IR (`specc export --to json`): the analysed layer tree as a document for other tools.

One node per layer, block call and merge, in the order the spec writes them,
each with its module path in the built network, its shapes and its costs;
described by ir.schema.json (JSON Schema draft 2020-12, shipped beside this
file) and explained in docs/ir.md. Torch-free: a walk over `net.graph`.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..lang.render import is_ref, ref_text
from ..lang.expand import CheckNode, Expander, LayerNode, MergeNode, SeqNode
from ..lang.imports import link
from ..lang.parse import parse
from ..lang.registry import MAC_CONVENTION
from ..network import Network

FORMAT = "specc-ir/1"
SCHEMA_PATH = Path(__file__).with_name("ir.schema.json")


def ir_dict(net: Network) -> dict[str, Any]:
    """The IR of an analysed network (see docs/ir.md)."""
    walker = _Walker(net)
    children, out_shape = walker.chain(net.graph, net.input_shape, "")
    totals = _totals(children)
    return {
        "format": FORMAT,
        "network": net.name,
        "path": net.path,
        "input_shape": list(net.input_shape),
        "output_shape": list(out_shape),
        "params": {name: _json_value(value) for name, value in param_values(net).items()},
        "annotations_checked": net.annotations_checked,
        "mac_convention": MAC_CONVENTION,
        "totals": {**totals, "activations": net.activations, "layers": walker.layer_count},
        "children": children,
    }


def ir_json(net: Network) -> str:
    return json.dumps(ir_dict(net), indent=1, allow_nan=False)


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def param_values(net: Network) -> dict[str, Any]:
    """The value of each of the spec's `param`s as the network was analysed (defaults, import settings,
    and what the caller set)."""
    spec = linked_spec(net)
    scope = Expander(spec, getattr(net, "overrides", {})).globals
    return {p.name: scope[p.name] for p in spec.params}


def linked_spec(net: Network):
    """The spec with its imports merged, read from the texts the network was loaded from."""
    return link(parse(net.source, net.path), net.path, dict(net.sources) if net.sources else None)


class _Walker:
    def __init__(self, net: Network):
        self.net = net
        self.layer_count = 0

    def chain(self, seq: SeqNode, shape: tuple, prefix: str) -> tuple[list[dict], tuple]:
        nodes = []
        for item in seq.items:
            if isinstance(item, CheckNode):
                continue  # an annotation checks a shape; it is no node of the network
            path = f"{prefix}{item.name}"
            if isinstance(item, LayerNode):
                node = self.layer(item, path)
            elif isinstance(item, MergeNode):
                node = self.merge(item, shape, path)
            else:
                node = self.block(item, seq, shape, path)
            nodes.append(node)
            shape = tuple(node["output_shape"])
        return nodes, shape

    def layer(self, node: LayerNode, path: str) -> dict:
        self.layer_count += 1
        cost = node.kind.cost(node.args, node.in_shape, node.out_shape)
        return {"node": "layer", "path": path, "name": node.name, "op": node.text, "kind": node.kind.name,
                "args": {k: _json_value(v) for k, v in node.args.items()},
                "input_shape": list(node.in_shape), "output_shape": list(node.out_shape),
                "params": cost.params, "buffers": cost.buffers, "macs": cost.macs,
                "source": self.source(node.span)}

    def merge(self, node: MergeNode, shape: tuple, path: str) -> dict:
        inputs = node.kind.inputs(shape, len(node.branches))
        branches = []
        for branch, branch_in in zip(node.branches, inputs):
            branch_path = f"{path}.{branch.name}"
            children, out = self.chain(branch, branch_in, branch_path + ".")
            last = _last_layer(children)
            branches.append({"path": branch_path, "name": branch.name, "input_shape": list(branch_in),
                             "output_shape": list(out), "last": last, **_totals(children),
                             "children": children})
        return {"node": "merge", "path": path, "name": node.name, "kind": node.kind.name,
                "input_shape": list(shape), "output_shape": list(node.out_shape),
                "inputs": [b["last"] for b in branches], **_totals(branches),
                "source": self.source(node.span), "branches": branches}

    def block(self, node: SeqNode, parent: SeqNode, shape: tuple, path: str) -> dict:
        children, out = self.chain(node, shape, path + ".")
        return {"node": "block", "path": path, "name": node.name, "block": _base_name(node.name, parent),
                "call": node.text, "resolved": getattr(node, "resolved", "") or node.text,
                "input_shape": list(shape), "output_shape": list(out), **_totals(children),
                "source": self.source(node.span), "children": children}

    def source(self, span) -> dict | None:
        if span is None:
            return None
        file = span.origin[0] if span.origin else self.net.path
        return {"file": str(file), "line": span.line, "column": span.column}


def _totals(nodes: list[dict]) -> dict[str, int]:
    return {key: sum(node[key] for node in nodes) for key in ("params", "buffers", "macs")}


def _last_layer(children: list[dict]) -> str | None:
    """The path of the layer whose output a branch hands to its merge; None for an empty branch (its input)."""
    if not children:
        return None
    last = children[-1]
    if last["node"] == "layer":
        return last["path"]
    if last["node"] == "merge":
        return last["path"]  # the merge point itself produces the output
    return _last_layer(last["children"]) or last["path"]


def _base_name(name: str, parent: SeqNode) -> str:
    """The block a call node instantiates: its name is the block's name plus a count (`residual2`)."""
    for base, count in parent.counts.items():
        suffix = name[len(base):]
        if name.startswith(base) and suffix.isdigit() and int(suffix) <= count:
            return base
    return name.rstrip("0123456789")


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_json_value(v) for v in value]
    return ref_text(value) if is_ref(value) else value

