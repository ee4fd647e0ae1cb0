"""`specc draw`: every shipped spec draws, labels are real SVG text, boxes never overlap, shapes on the
arrows are PyTorch's, a broken spec is drawn up to its mistake, DOT and PNG are written, no torch."""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner

import specc
from conftest import ALEXNET_227, ROOT, SPECS
from specc.cli import main
from specc.lang.errors import shape_str
from specc.tools.draw import MAX_BOXES, Box, Chain, Fork, Frame, diagram
from specc.tools.draw.layout import layout, text_width
from specc.tools.draw.svg import svg

SVG = "{http://www.w3.org/2000/svg}"
ALL_SPECS = sorted(SPECS.glob("*.cnn")) + sorted(SPECS.glob("torchvision/*.cnn"))


def picture_and_tree(net, depth=None, horizontal=False, params=False):
    drawing = diagram(net, depth, params)
    picture = layout(drawing, horizontal)
    return drawing, picture, ET.fromstring(svg(picture))


def drawn_groups(root) -> dict[str, ET.Element]:
    """data-path -> the <g> of each box drawn for a layer, merge or block."""
    return {g.get("data-path"): g for g in root.iter(f"{SVG}g") if g.get("data-path") and
            g.get("class").split()[0] in ("layer", "merge", "block")}


def label_of(group: ET.Element) -> str:
    texts = [t.text for t in group.findall(f"{SVG}text")]
    assert texts and all(texts), "every box has a non-empty <text> label"
    return texts[0]


def text_rect(t):
    width = text_width(t.text, t.size, t.mono)
    return (t.x - width / 2 if t.anchor == "middle" else t.x, t.y - 0.8 * t.size, width, 1.05 * t.size)


def overlaps(rects, eps=0.5):
    """Pairs of rectangles ((x, y, w, h), name) whose interiors intersect, by a sweep along y."""
    found, active = [], []
    for rect in sorted(rects, key=lambda r: r[0][1]):
        (x, y, w, h), name = rect
        active = [a for a in active if a[0][1] + a[0][3] > y + eps]
        found += [(a[1], name) for a in active if a[0][0] < x + w - eps and x < a[0][0] + a[0][2] - eps]
        active.append(rect)
    return found


def check_readable(picture):
    """Boxes, shape labels and frame titles never overlap; everything lies inside the picture."""
    items = [((b.rect.x, b.rect.y, b.rect.w, b.rect.h), ("box", b.meta["path"])) for b in picture.boxes]
    items += [(text_rect(t), ("shape", t.text)) for t in picture.labels]
    items += [(text_rect(f.texts[0]), ("title", f.meta["title"])) for f in picture.frames]
    assert overlaps(items) == []
    for (x, y, w, h), name in items:
        assert 0 <= x and x + w <= picture.width + 0.5 and 0 <= y and y + h <= picture.height + 0.5, name
    for box in picture.boxes:  # a label fits its box
        assert all(text_width(t.text, t.size) <= box.rect.w for t in box.texts), box.meta


def test_every_shipped_spec_draws_every_layer_labelled_without_overlaps():
    for path in ALL_SPECS:
        net = specc.load(path)
        drawing, picture, root = picture_and_tree(net)
        groups = drawn_groups(root)
        assert set(groups) == {row.path for row in net.layers}, path  # every layer and merge, nothing else
        for row in net.layers:
            label_of(groups[row.path])
            assert groups[row.path].get("data-kind") is not None
        assert [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "shape"][-1] == \
            shape_str(net.output_shape), "the last arrow carries the network's output"
        check_readable(picture)


def test_depth_one_collapses_blocks_and_keeps_the_largest_readable():
    for path in ALL_SPECS:
        net = specc.load(path)
        drawing, picture, root = picture_and_tree(net, depth=1)
        drawn = set(drawn_groups(root))
        blocks = [box for box in _boxes(drawing.chain) if box.role == "block"]
        covered = {call for box in blocks for call in box.covers}
        assert {p for p in covered if p in drawn} == {box.path for box in blocks}
        for row in net.layers:  # every layer is drawn, or inside a drawn block call (or one it repeats)
            assert row.path in drawn or any(row.path.startswith(call + ".") for call in covered), (path, row.path)
        check_readable(picture)
        if path.stem in ("densenet201", "efficientnet_b7", "efficientnet_v2_l", "regnet_y_128gf"):
            assert len(picture.boxes) <= 40 and picture.height <= 2000 and picture.width <= 1000, \
                (path.stem, len(picture.boxes), picture.width, picture.height)
    root = picture_and_tree(specc.load(SPECS / "torchvision/densenet201.cnn"), depth=1)[2]
    labels = [label_of(g) for g in drawn_groups(root).values()]
    assert labels == ["stem(64)", "dense_layer(32) ×6", "transition(128)", "dense_layer(32) ×12", "transition(256)",
                      "dense_layer(32) ×48", "transition(896)", "dense_layer(32) ×32", "head(1000)"]


def test_depth_two_draws_the_calls_inside_each_block():
    net = specc.load(SPECS / "torchvision/efficientnet_b7.cnn")
    drawing = diagram(net, depth=2)
    frames = [item for item in drawing.chain.items if isinstance(item, Frame)]
    assert [f.title for f in frames] == ["features_b(4, 7, 7, 10, 10, 13, 4, 4, 11, 18, 28, 38, 51, 55)",
                                         "head(1000, 0.5)"]
    stages = [b.label for b in frames[0].chain.items]
    assert stages[0] == "stem(64)" and stages[-1] == "lastconv(2560)" and len(stages) == 9
    assert [b.label for b in frames[1].chain.items] == ["global avg pool", "flatten", "dropout 0.5", "fc 1000"]


def test_alexnet_reads_like_the_d2l_figure():
    root = picture_and_tree(specc.load(SPECS / "alexnet.cnn"))[2]
    labels = [label_of(g) for g in root.iter(f"{SVG}g") if g.get("class") in ("input", "layer")]
    assert labels == ["input", "11x11 conv, 96, stride 4, pad 1", "relu", "3x3 max pool, stride 2",
                      "5x5 conv, 256, pad 2", "relu", "3x3 max pool, stride 2", "3x3 conv, 384, pad 1", "relu",
                      "3x3 conv, 384, pad 1", "relu", "3x3 conv, 256, pad 1", "relu", "3x3 max pool, stride 2",
                      "flatten", "fc 4096", "relu", "dropout 0.5", "fc 4096", "relu", "dropout 0.5", "fc 10"]
    shapes = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "shape"]
    assert shapes == ["1x224x224", "96x54x54", "96x26x26", "256x26x26", "256x12x12", "384x12x12", "384x12x12",
                      "256x12x12", "256x5x5", "6400", "4096", "4096", "4096", "4096", "10"]


def test_pool_conv_and_activation_labels(spec_file):
    net = specc.load(spec_file("input 8x32x32\nconv kernel=1x7 16 padding=0x3 s2 d2 g4 -> leakyrelu 0.2 "
                               "-> maxpool 2 ceil -> avgpool 3 s1 p1 -> lrn 5 -> bn -> ln -> shuffle 4 "
                               "-> adaptivemaxpool 2x1 -> hardtanh min=-2 -> dropout 0.25 -> flatten -> fc 3"))
    root = picture_and_tree(net)[2]
    assert [label_of(g) for g in root.iter(f"{SVG}g") if g.get("class") == "layer"] == [
        "1x7 conv, 16, stride 2, pad 0x3, dilation 2, groups 4", "leaky relu 0.2", "2x2 max pool, stride 2, ceil",
        "3x3 avg pool, pad 1", "local response norm 5", "batch norm", "layer norm", "channel shuffle, 4 groups",
        "adaptive max pool 2x1", "hardtanh [-2, 1]", "dropout 0.25", "flatten", "fc 3"]


def test_shapes_and_params_on_the_drawing_are_pytorchs():
    """The oracle: each drawn box's output shape and parameter count, from the built module's hooks."""
    import torch

    for name in ("googlenet", "resnet18"):
        net = specc.load(SPECS / f"{name}.cnn", input_shape=(1, 32, 32))  # small: the shapes still change
        drawing = diagram(net, params=True)
        module = net.build().eval()
        seen = {}
        hooks = [m.register_forward_hook(lambda m, i, o, path=path: seen.__setitem__(path, tuple(o.shape[1:])))
                 for path, m in module.named_modules() if path]
        with torch.no_grad():
            module(torch.randn(2, *net.input_shape))
        for hook in hooks:
            hook.remove()
        boxes = list(_boxes(drawing.chain))
        assert len(boxes) == len(net.layers)
        for box in boxes:
            assert box.shape == seen[box.path], (name, box.path)
            assert box.params == sum(p.numel() for p in module.get_submodule(box.path).parameters(recurse=False)
                                     ) or box.role == "merge"


def _boxes(chain: Chain):
    for item in chain.items:
        if isinstance(item, Box):
            if item.role != "input":
                yield item
            yield from item.tags
        elif isinstance(item, Frame):
            yield from _boxes(item.chain)
        elif isinstance(item, Fork):
            for branch in item.branches:
                yield from _boxes(branch)
            yield item.merge
            yield from item.merge.tags


def test_params_are_shown_in_their_boxes():
    root = picture_and_tree(specc.load(SPECS / "alexnet.cnn"), params=True)[2]
    texts = [t.text for t in drawn_groups(root)["conv1"].findall(f"{SVG}text")]
    assert texts == ["11x11 conv, 96, stride 4, pad 1", "11,712 params"]  # 11*11*1*96 + 96
    assert [t.text for t in drawn_groups(root)["maxpool1"].findall(f"{SVG}text")] == ["3x3 max pool, stride 2"]


def test_merges_draw_their_branches_side_by_side():
    net = specc.load(SPECS / "googlenet.cnn")
    drawing, picture, root = picture_and_tree(net)
    boxes = {b.meta["path"]: b.rect for b in picture.boxes}
    firsts = [boxes[f"inception1.concat1.branch{i}.{first}"] for i, first in
              enumerate(("conv1", "conv1", "conv1", "maxpool1"), 1)]
    assert all(a.x + a.w <= b.x for a, b in zip(firsts, firsts[1:])), "branches left to right in spec order"
    assert len({round(r.y) for r in firsts}) == 1, "and level with each other"
    join = boxes["inception1.concat1"]
    assert all(join.y + join.h <= r.y for r in firsts), "the join above its branches (the input is at the bottom)"
    assert label_of(drawn_groups(root)["inception1.concat1"]) == "concat"
    titles = [g.find(f"{SVG}text").text for g in root.iter(f"{SVG}g") if g.get("class") == "frame"]
    assert titles[:2] == ["inception(64, 96, 128, 16, 32, 32)", "inception(128, 128, 192, 32, 96, 64)"]


def test_horizontal_puts_the_input_on_the_left():
    for name in ("googlenet", "resnet18", "densenet"):
        net = specc.load(SPECS / f"{name}.cnn")
        for horizontal in (False, True):
            picture = picture_and_tree(net, horizontal=horizontal)[1]
            check_readable(picture)
            start = next(b.rect for b in picture.boxes if b.meta["role"] == "input")
            others = [b.rect for b in picture.boxes if b.meta["role"] != "input"]
            if horizontal:
                assert all(start.x + start.w <= r.x for r in others)
            else:
                assert all(r.y + r.h <= start.y for r in others)


def test_split_and_mul_and_empty_branches_draw(spec_file):
    net = specc.load(spec_file(
        "input 16x8x8\n"
        "mul(identity | gap -> conv 1x1 4 -> relu -> conv 1x1 16 -> hardsigmoid)\n"
        "-> split(identity | conv 1x1 8 -> bn -> relu) -> shuffle 2\n"
        "-> add((conv 1x1 16) * 0 | conv 1x1 16) -> gap -> flatten -> fc 2"))
    drawing, picture, root = picture_and_tree(net)
    groups = drawn_groups(root)
    assert set(groups) == {row.path for row in net.layers}
    assert [label_of(groups[p]) for p in ("mul1", "split1", "add1")] == ["multiply", "concat (split)", "add"]
    shares = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "shape"]
    assert shares.count("8x8x8") >= 2, "each branch of the split gets half the channels"
    check_readable(picture)


# --- the command -----------------------------------------------------------------------------


def draw_file(args):
    return CliRunner().invoke(main, ["draw", *map(str, args)])


def failed_svg(path):
    root = ET.parse(path).getroot()
    failed = [g for g in root.iter(f"{SVG}g") if "failed" in g.get("class", "").split()]
    note = [g for g in root.iter(f"{SVG}g") if g.get("class") == "note"]
    return root, failed, note


def test_broken_spec_is_drawn_up_to_the_error(spec_file, tmp_path):
    spec = spec_file(ALEXNET_227, "alexnet227.cnn")
    out = tmp_path / "a.svg"
    result = draw_file([spec, "-o", out])
    assert result.exit_code == 1
    assert "alexnet227.cnn:7:4: error: fc expects 6400 input features (in=6400) but gets 9216" in result.output
    root, failed, note = failed_svg(out)
    assert [(g.get("data-path"), label_of(g)) for g in failed] == [("fc1", "fc 4096")]
    note_text = "\n".join(t.text for t in note[0].findall(f"{SVG}text"))
    assert "error: fc expects 6400 input features" in " ".join(note_text.split()) and "^^^^" in note_text
    drawn = set(drawn_groups(root))
    assert {"conv5", "flatten1", "fc1"} <= drawn and not drawn & {"fc2", "dropout1", "relu6"}
    shapes = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "shape"]
    assert shapes[-1] == "9216", "the shape that fc receives, and no arrow out of the failed layer"


def test_failures_in_a_merge_a_branch_an_annotation_and_a_collapsed_block(spec_file, tmp_path):
    block = "block unit(c) {\n    concat(conv 1x1 c | conv 3x3 c s2)\n}\n"
    cases = {  # spec -> (the failed node's path, its label)
        "input 3x16x16\n" + block + "conv 3x3 4 p1 -> unit(8) -> relu": ("unit1.concat1", "concat"),
        "input 3x8x8\nconv 3x3 4 -> add(identity | conv 9x9 4 -> relu) -> fc 2": ("add1.branch2.conv1",
                                                                               "9x9 conv, 4"),
        "input 3x8x8\nconv 3x3 4 p1 : 4x6x6\n-> relu": (None, ": 4x6x6"),
        "input 3x8x8\nflatten -> split(identity | identity)": ("split1", "concat (split)"),
    }
    for text, (path, label) in cases.items():
        out = tmp_path / "x.svg"
        result = draw_file([spec_file(text), "-o", out])
        assert result.exit_code == 1 and "error:" in result.output, text
        root, failed, note = failed_svg(out)
        assert [(g.get("data-path"), label_of(g)) for g in failed] == [(path, label)], text
        assert len(note) == 1
    result = draw_file([spec_file("input 3x16x16\n" + block + "conv 3x3 4 p1 -> relu -> unit(8) -> relu"),
                        "--depth", "1", "-o", tmp_path / "d.svg"])
    root, failed, note = failed_svg(tmp_path / "d.svg")
    assert result.exit_code == 1 and [(g.get("data-path"), label_of(g)) for g in failed] == [("unit1", "unit(8)")]


def test_a_spec_that_does_not_parse_writes_nothing(spec_file, tmp_path):
    for text in ("input 3x8x8\nconv 3x3 4 -> -> relu", "input 3x8x8\nconv 3x3 c"):
        out = tmp_path / "x.svg"
        result = draw_file([spec_file(text), "-o", out])
        assert result.exit_code == 1 and "error:" in result.output
        assert not out.exists()
    result = draw_file([tmp_path / "missing.cnn", "-o", out])
    assert result.exit_code == 1 and "no such spec file" in result.output and not out.exists()


def test_formats_from_the_name_and_their_mistakes(tmp_path):
    alexnet = SPECS / "alexnet.cnn"
    result = draw_file([alexnet])
    assert result.exit_code == 0 and ET.fromstring(result.output).tag == f"{SVG}svg", "SVG to stdout"
    to_file = draw_file([alexnet, "-o", tmp_path / "a.svg"])
    assert to_file.exit_code == 0 and to_file.output == f"wrote {tmp_path / 'a.svg'}\n"
    for args, message in ((["-o", tmp_path / "a.jpg"], "cannot tell the format"),
                          (["-o", tmp_path / "a.svg", "--format", "png"], "--format png but"),
                          (["--format", "png"], "give -o FILE.png"),
                          (["--depth", "0"], "0 is not in the range")):
        result = draw_file([alexnet, *args])
        assert result.exit_code == 2 and message in result.output, (args, result.output)
    result = draw_file([alexnet, "-o", tmp_path / "missing" / "a.svg"])
    assert result.exit_code == 1 and "cannot write" in result.output
    result = draw_file([alexnet, "--input", "1x227x227", "--set", "classes=3", "-o", tmp_path / "b.svg"])
    assert result.exit_code == 0
    shapes = [t.text for t in ET.parse(tmp_path / "b.svg").getroot().iter(f"{SVG}text") if t.get("class") == "shape"]
    assert shapes[0] == "1x227x227" and shapes[-1] == "3"


def test_dot_output(tmp_path):
    result = draw_file([SPECS / "googlenet.cnn", "--format", "dot"])
    assert result.exit_code == 0
    text = result.output
    net = specc.load(SPECS / "googlenet.cnn")
    assert text.startswith('digraph "googlenet" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes = [line.split()[0] for line in text.splitlines() if re.match(r"\s*n\d+ \[", line)]
    assert len(nodes) == len(net.layers) + 2, "a node per layer and merge, the input and the output"
    edges = re.findall(r"^\s*(n\d+) -> (n\d+)", text, re.MULTILINE)
    assert edges and all(tail in nodes and head in nodes for tail, head in edges)
    assert text.count("subgraph cluster_") == 9, "one cluster per inception call"
    assert '[label=" 480x6x6 "]' in text and 'label="3x3 conv, 128, pad 1"' in text
    result = draw_file([SPECS / "resnet18.cnn", "--depth", "1", "--horizontal", "-o", tmp_path / "r.dot"])
    dot = (tmp_path / "r.dot").read_text()
    assert result.exit_code == 0 and "rankdir=LR" in dot and 'label="residual(64) ×2"' in dot


def test_png_is_rendered_from_the_same_layout(tmp_path):
    from PIL import Image
    from specc.tools.draw.png import png_scale

    out = tmp_path / "a.png"
    result = draw_file([SPECS / "alexnet.cnn", "-o", out, "--params"])
    assert result.exit_code == 0
    picture = layout(diagram(specc.load(SPECS / "alexnet.cnn"), params=True))
    with Image.open(out) as image:
        assert image.format == "PNG"
        scale = png_scale(picture)
        assert abs(image.width - picture.width * scale) <= 2 and abs(image.height - picture.height * scale) <= 2
        pixels = image.convert("RGB")
        box = next(b.rect for b in picture.boxes if b.meta["path"] == "conv1")
        inside = pixels.getpixel((int((box.x + 4) * scale), int((box.y + box.h - 3) * scale)))
        assert inside == (0xc6, 0xdb, 0xef), "the conv box filled with the conv colour"


def test_size_limits(spec_file, tmp_path):
    many = spec_file(f"input 3x8x8\nblock b() {{ conv 3x3 4 p1 }}\nb() * {MAX_BOXES + 1}")
    result = draw_file([many, "-o", tmp_path / "x.svg"])
    assert result.exit_code == 1 and f"more than {MAX_BOXES:,} boxes" in result.output and "--depth 1" in result.output
    result = draw_file([many, "--depth", "1", "-o", tmp_path / "x.svg"])
    assert result.exit_code == 0
    assert f"b() ×{MAX_BOXES + 1}" in (tmp_path / "x.svg").read_text()
    deep = ["input 3x8x8", "block b0() { relu }"] + [f"block b{i}() {{ b{i - 1}() }}" for i in range(1, 250)]
    deep = spec_file("\n".join(deep + ["conv 3x3 4 -> b249()"]))  # loads, but nests deeper than drawing recurses
    result = draw_file([deep, "-o", tmp_path / "deep.svg"])
    assert result.exit_code == 1 and "nest too deeply" in result.output and "Traceback" not in result.output
    assert draw_file([deep, "--depth", "3", "-o", tmp_path / "deep.svg"]).exit_code == 0
    names = [f"a{i}" for i in range(30)]
    long_call = spec_file(f"input 3x8x8\nblock b({', '.join(names)}) {{ conv 1x1 4 }}\nb({', '.join(['123456'] * 30)})")
    root = picture_and_tree(specc.load(long_call), depth=1)[2]
    label = label_of(drawn_groups(root)["b1"])
    assert len(label) <= 64 and label.endswith("…")


def test_docs_pictures_are_current():
    """docs/img's SVGs are what `specc draw` makes of their specs today (the README shows them)."""
    for spec, picture in ((SPECS / "alexnet.cnn", "alexnet"), (ROOT / "docs/img/inception.cnn", "inception")):
        made = svg(layout(diagram(specc.load(spec))))
        assert (ROOT / f"docs/img/{picture}.svg").read_text() == made, f"redraw: specc draw {spec} -o {picture}.svg"
        assert (ROOT / f"docs/img/{picture}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


PROBE = """
import sys, runpy
for args in (["draw", "specs/googlenet.cnn", "-o", sys.argv[1]], ["draw", "specs/resnet18.cnn", "--format", "dot"]):
    sys.argv = ["specc", *args]
    try:
        runpy.run_module("specc", run_name="__main__")
    except SystemExit as exit:
        assert exit.code in (0, None), exit.code
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'numpy', 'matplotlib', 'IPython'))
print(heavy, file=sys.stderr)
"""


def test_svg_and_dot_import_no_torch(tmp_path):
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "g.svg")], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip().splitlines()[-1] == "[]"
    wrote, dot = out.stdout.split("\n", 1)
    assert wrote == f"wrote {tmp_path / 'g.svg'}" and dot.startswith('digraph "resnet18"')
    assert (tmp_path / "g.svg").stat().st_size > 0
