"""assert_matches_torch: specc's static analysis against a real forward of the built module, layer by layer.

For every row of the summary (a layer, or a merge point) the check compares, by the row's dotted path
in the built module: the output shape (a forward hook), the parameters and buffers (counted on the
module: a layer's own, a merge's none beyond its branches'), and the multiply-adds (PyTorch's
FlopCounterMode, which counts 2 FLOPs per conv and matmul multiply-add and credits every enclosing
module, so a merge's count is its branches' sum). Importing this module imports torch.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..lang.errors import SpecError, shape_str
from ..lang.expand import CheckNode, MergeNode, SeqNode, copy_tree
from ..lang.infer import infer
from ..lang.registry import MERGES
from ..network import Network, _override_shape

MAX_REPORTED = 10  # mismatches listed in one failure; the rest are counted


class Mismatch(NamedTuple):
    path: str
    where: str  # file:line of the layer in the spec
    op: str
    what: str  # "output shape", "parameters", ...
    specc: object
    torch: object

    def __str__(self) -> str:
        return (f"  layer '{self.path}' ({self.where}: {self.op}): {self.what}: specc says {self.specc}, "
                f"PyTorch gives {self.torch}")


def at_input(net: Network, input_shape) -> Network:
    """`net` analysed at another input, as `--input` does (its `: SHAPE` annotations are not asserted
    there). `net` itself is left unchanged: analysis writes shapes into the graph, so a copy gets them."""
    if input_shape is None:
        return net
    shape = _override_shape(input_shape)
    if shape == net.input_shape:
        return net
    graph = copy_tree(net.graph)
    try:
        if len(shape) not in (1, 3) or min(shape, default=0) < 1:
            raise SpecError(f"input must be CxHxW or a number of features, all positive, got {shape_str(shape)}")
        output_shape, rows = infer(graph, shape, check_annotations=False)
    except SpecError as err:
        raise err.located(net.path, net.source) from None
    other = Network(net.name, net.path, net.source, shape, graph, output_shape, rows, net.params,
                    net.train_settings)
    other.annotations_checked = False
    other.sources = dict(net.sources)
    return other


def locations(net: Network) -> dict[str, str]:
    """Each row's path -> `file:line` where its layer (or merge) is written, an imported file's own."""
    found: dict[str, str] = {}

    def where(span) -> str:
        return f"{span.origin[0] if span.origin else net.path}:{span.line}"

    def walk(seq: SeqNode, prefix: str) -> None:
        for item in seq.items:
            if isinstance(item, CheckNode):
                continue
            path = f"{prefix}.{item.name}" if prefix else item.name
            if isinstance(item, SeqNode):
                walk(item, path)
                continue
            found[path] = where(item.span)
            if isinstance(item, MergeNode):
                for branch in item.branches:
                    walk(branch, f"{path}.{branch.name}")

    walk(net.graph, "")
    return found


def assert_matches_torch(net: Network, input_shape=None, *, batch: int = 2, device="cpu") -> Network:
    """Build `net`, run a forward at `input_shape` (default: its own) and assert that every layer's static
    output shape, parameters, buffers and MACs equal PyTorch's. Returns the network analysed at that input.

    Raises SpecError when specc refuses the input, AssertionError (naming each layer's path, its line
    in the spec, and both values) when specc and PyTorch disagree.
    """
    net = at_input(net, input_shape)
    title = f"specc and PyTorch disagree on {net.path} at input {shape_str(net.input_shape)}"
    module = _build(net, device, title)
    modules = dict(module.named_modules())
    lines = locations(net)
    absent = [row.path for row in net.layers if row.path not in modules]
    if absent:
        raise AssertionError(f"{title}: the built module has no submodule {absent[0]!r} "
                             f"({len(absent)} rows without a module)")
    seen, flops, out = _forward(net, module, modules, batch, device, lines, title)
    mismatches = _compare(net, modules, seen, flops, lines, batch)
    if tuple(out.shape[1:]) != tuple(net.output_shape):
        mismatches.append(Mismatch("(output)", net.path, "the network", "output shape",
                                   shape_str(net.output_shape), shape_str(out.shape[1:])))
    if 2 * batch * net.macs != flops.get("", 0):
        mismatches.append(Mismatch("(total)", net.path, "the network", "MACs per sample", f"{net.macs:,}",
                                   f"{flops.get('', 0) / (2 * batch):,.0f}"))
    if mismatches:
        shown = "\n".join(map(str, mismatches[:MAX_REPORTED]))
        more = len(mismatches) - MAX_REPORTED
        raise AssertionError(f"{title}:\n{shown}" + (f"\n  ... and {more} more" if more > 0 else ""))
    return net


def _build(net: Network, device, title: str) -> torch.nn.Module:
    try:
        return net.build(device=device).eval()
    except SpecError:
        raise
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        # specc accepted the spec but PyTorch refuses a layer's arguments: a gap in specc's checks.
        raise AssertionError(f"{title}: specc accepts the spec, but building it in PyTorch fails: "
                             f"{type(exc).__name__}: {exc}") from None


def _forward(net, module, modules, batch, device, lines, title):
    """One forward under FlopCounterMode with a hook per row: (output shapes by path, FLOPs by path, output)."""
    seen: dict[str, tuple] = {}
    entered: list[str] = []
    hooks = []
    for row in net.layers:
        target = modules[row.path]
        hooks.append(target.register_forward_pre_hook(lambda m, i, p=row.path: entered.append(p)))
        hooks.append(target.register_forward_hook(
            lambda m, i, o, p=row.path: seen.__setitem__(p, tuple(o.shape[1:]))))
    x = torch.randn(batch, *net.input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            out = module(x)
    except (RuntimeError, ValueError, IndexError) as exc:
        failing = next((p for p in reversed(entered) if p not in seen), "?")
        where = lines.get(failing, net.path)
        raise AssertionError(f"{title}: specc accepts it, but PyTorch's forward fails in layer '{failing}' "
                             f"({where}): {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    finally:
        for hook in hooks:
            hook.remove()
    return seen, _flops_by_path(counter, module), out


def _flops_by_path(counter: FlopCounterMode, module: torch.nn.Module) -> dict[str, int]:
    """FlopCounterMode's counts keyed by module path; "" is the whole network."""
    root = type(module).__name__  # keys are the root's class name, then the path: "Chain.stem1.conv1"
    flops = {name.removeprefix(root).removeprefix("."): sum(ops.values())
             for name, ops in counter.get_flop_counts().items() if name != "Global"}
    flops[""] = counter.get_total_flops()
    return flops


def _compare(net, modules, seen, flops, lines, batch: int) -> list[Mismatch]:
    mismatches = []
    macs_under = _macs_by_subtree(net)
    for row in net.layers:
        module, merge = modules[row.path], row.kind in MERGES

        def differ(what, ours, theirs, show=str):
            if ours != theirs:
                mismatches.append(Mismatch(row.path, lines.get(row.path, f"{net.path}:{row.line}"), row.op, what,
                                           show(ours), show(theirs)))

        differ("output shape", row.output_shape, seen.get(row.path), _shape_or_missing)
        # A merge's parameters are its branches' rows; only what it holds itself is compared to 0.
        differ("parameters", row.params, sum(p.numel() for p in module.parameters(recurse=not merge)), "{:,}".format)
        differ("buffers", row.buffers, sum(b.numel() for b in module.buffers(recurse=not merge)), "{:,}".format)
        # FLOPs / 2 are multiply-adds, counted for the whole batch; a merge's count covers its branches.
        expected = macs_under[row.path] if merge else row.macs
        differ("MACs per sample", 2 * batch * expected, flops.get(row.path, 0), lambda f: f"{f / (2 * batch):,.0f}")
    return mismatches


def _macs_by_subtree(net: Network) -> dict[str, int]:
    """Each merge row's path -> the MACs of every row inside it."""
    totals = {row.path: 0 for row in net.layers if row.kind in MERGES}
    for row in net.layers:
        parts = row.path.split(".")
        for end in range(1, len(parts)):
            prefix = ".".join(parts[:end])
            if prefix in totals:
                totals[prefix] += row.macs
    return totals


def _shape_or_missing(shape) -> str:
    return "no output (the module never ran)" if shape is None else shape_str(shape)
