"""A layer's resolved text (`conv 1x1 64`) parses back to the same arguments, for every layer shipped."""
from pathlib import Path

import specc
from specc.lang.expand import LayerNode, MergeNode, SeqNode
from specc.lang.render import layer_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.cnn")) + sorted((ROOT / "specs" / "torchvision").glob("*.cnn"))


def layers(node):
    if isinstance(node, LayerNode):
        yield node
    elif isinstance(node, SeqNode):
        for item in node.items:
            yield from layers(item)
    elif isinstance(node, MergeNode):
        for branch in node.branches:
            yield from layers(branch)


def distinct_layers():
    seen = {}
    for path in SPECS:
        for node in layers(specc.load(path).graph):
            seen.setdefault((node.kind.name, tuple(node.args.items()), node.in_shape), node)
    return list(seen.values())


def test_resolved_text_parses_back():
    nodes = distinct_layers()
    assert len(nodes) > 1000  # every distinct layer of 77 specs
    wrong = []
    for node in nodes:
        text = layer_text(node.kind, node.args)
        shape = "x".join(map(str, node.in_shape))
        again = next(layers(specc.loads(f"input {shape}\n{text}").graph))
        if (again.kind.name, dict(again.args)) != (node.kind.name, dict(node.args)):
            wrong.append(f"{node.text!r} -> {text!r}: {dict(again.args)} != {dict(node.args)}")
    assert not wrong, "\n".join(wrong[:10])


def test_resolved_text_reads_like_the_spec():
    net = specc.loads("param c = 64\ninput 3x32x32\nconv 3x3 c p(3 // 2) -> bn -> relu -> maxpool 3 s2 ceil\n"
                      "-> conv 1x1 (c * 2) bias=false padding=0x1 -> flatten -> fc 10")
    texts = [layer_text(n.kind, n.args) for n in layers(net.graph)]
    assert texts == ["conv 3x3 64 p1", "bn", "relu", "maxpool 3 s2 ceil",
                     "conv 1x1 128 padding=0x1 bias=false", "flatten", "fc 10"]


def test_rows_fold_block_calls_with_their_totals():
    from specc.tools.rows import rows

    net = specc.load(ROOT / "specs" / "resnet18.cnn")
    assert [r.path for r in rows(net)] == [layer.path for layer in net.layers]
    for depth in (1, 2, 3):
        folded = rows(net, depth)
        assert all(r.depth <= depth for r in folded)
        assert sum(r.params for r in folded) == net.param_count
        assert sum(r.macs for r in folded) == net.macs
        assert folded[-1].output_shape == net.output_shape
    top = rows(net, 1)
    residual = next(r for r in top if r.path == "residual1")
    assert (residual.written, residual.kind, residual.output_shape) == ("residual(64)", "block", (64, 24, 24))
    assert residual.params == 2 * (64 * 64 * 9 + 64 + 2 * 64)


def test_block_calls_show_their_argument_values():
    from specc.tools.rows import rows

    net = specc.loads("param c = 8\ninput 3x8x8\nblock unit(ch, act=relu) { conv 1x1 ch -> act }\n"
                      "unit(c * 2) -> unit(c, act=sigmoid)")
    assert [(r.written, r.resolved) for r in rows(net, 1)] == [
        ("unit(c * 2)", "unit(16, relu)"), ("unit(c, act=sigmoid)", "unit(8, sigmoid)")]
