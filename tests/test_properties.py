"""Property tests: PyTorch is the oracle for every static shape and every refusal."""
import warnings

import pytest
import torch
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

import specc
from conftest import SPECS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- (1) random specs: static analysis equals PyTorch's forward -------------
@st.composite
def shape_keeping(draw, depth=0):
    """An element that keeps HxW (so branches can be joined)."""
    k = draw(st.sampled_from([1, 3, 5]))
    c = draw(st.integers(1, 6))
    options = [f"conv {k}x{k} {c} p{k // 2}", "relu", "bn", "sigmoid", "maxpool 3 s1 p1", "avgpool 3 s1 p1",
               f"dropout 0.{draw(st.integers(0, 9))}", "identity", "lrn 3", f"leakyrelu 0.{draw(st.integers(1, 5))}",
               f"shuffle {draw(st.integers(1, 3))}", "ln", f"scale 0.{draw(st.integers(1, 9))}", "droppath 0.3",
               "hardswish", "hardsigmoid", "elu", "mish", "prelu", "prelu per_channel", "softplus", "hardtanh",
               f"conv 1x{k} {c} p(size(0, {k} // 2))", f"conv_bn({c}, {k}, act=hardswish)", f"conv_bn({c}, 1)"]
    if depth < 2:
        a, b = draw(shape_keeping(depth + 1)), draw(shape_keeping(depth + 1))
        options += [f"concat({a} | {b})", f"add(conv 3x3 {c} p1 -> {a} | conv 1x1 {c})", f"({a} -> {b}) * 2",
                    f"mul({a} | gap -> sigmoid)", f"mul(identity | {a} -> gap)", f"split(identity | {a})",
                    f"split({a} | {b} | identity)", f"({a}) * {draw(st.integers(0, 2))}",
                    f"(conv 1x1 ({c} + i) -> {a}) * 2 as i"]
    return draw(st.sampled_from(options))


@st.composite
def any_spatial(draw):
    """An element that may change HxW, with arguments that are mostly but not always valid."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s, p, d = draw(st.integers(1, 3)), draw(st.integers(0, 2)), draw(st.integers(1, 2))
    ceil = draw(st.sampled_from(["", " ceil"]))
    return draw(st.sampled_from([
        f"conv {kh}x{kw} {draw(st.integers(1, 6))} s{s} p{p} d{d}",
        f"maxpool {kh}x{kw} s{s} p{p} d{d}{ceil}", f"avgpool {kh} s{s} p{p}{ceil}",
        f"adaptiveavgpool {kh}x{kw}", f"adaptivemaxpool {kh}", "gap", draw(shape_keeping()),
    ]))


@st.composite
def random_spec(draw):
    c, h, w = draw(st.integers(1, 4)), draw(st.integers(4, 14)), draw(st.integers(4, 14))
    body = draw(st.lists(st.one_of(any_spatial(), st.just("blk(3)"), st.just("blk(2) * 2")), min_size=1, max_size=5))
    tail = draw(st.sampled_from(["", " -> flatten -> fc 7", " -> flatten -> bn -> fc 3 -> softmax", " -> gap"]))
    return (f"input {c}x{h}x{w}\nblock blk(c) {{ conv 3x3 c p1 -> relu }}\n"
            "block conv_bn(c, k, act=relu) { conv kernel=k c p(k // 2) -> bn -> act }\n"
            + "\n-> ".join(body) + tail)


@SETTINGS
@given(random_spec())
def test_static_analysis_equals_pytorch_forward(text):
    try:
        net = specc.loads(text)
    except specc.SpecError:
        event("refused")
        assume(False)
    event("accepted")
    module = net.build().eval()
    seen = {}
    modules = dict(module.named_modules())
    for row in net.layers:
        modules[row.path].register_forward_hook(lambda m, i, o, p=row.path: seen.__setitem__(p, tuple(o.shape[1:])))
    out = module(torch.zeros(2, *net.input_shape))
    assert tuple(out.shape[1:]) == net.output_shape
    assert seen == {row.path: row.output_shape for row in net.layers}
    assert net.param_count == sum(p.numel() for p in module.parameters())
    assert net.buffer_count == sum(b.numel() for b in module.buffers())


# --- (2) differential: specc refuses exactly when PyTorch raises -------------
def pair(draw, lo, hi):
    return draw(st.integers(lo, hi)), draw(st.integers(lo, hi))


@st.composite
def layer_case(draw):
    """(spec text for one layer, an independent PyTorch constructor for it, input shape)."""
    c, h, w = draw(st.integers(1, 6)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kind = draw(st.sampled_from(["conv", "maxpool", "avgpool", "fc", "dropout", "bn", "lrn", "shuffle", "mul",
                                 "split"]))
    nn = torch.nn
    if kind == "conv":
        out, k, s, p, d = draw(st.integers(1, 6)), pair(draw, 1, 6), pair(draw, 0, 3), pair(draw, -1, 3), pair(draw, 0, 3)
        g = draw(st.integers(0, 4))
        declared = draw(st.sampled_from([None, c, c + 1]))
        # a negative padding can only be written as an expression, which sets both sides
        padding, written = (p[0], f"({p[0]})") if p[0] < 0 else (p, f"{p[0]}x{p[1]}")
        text = (f"conv kernel={k[0]}x{k[1]} channels={out} stride={s[0]}x{s[1]} padding={written} "
                f"dilation={d[0]}x{d[1]} groups={g}" + (f" in={declared}" if declared else ""))
        make = lambda: nn.Conv2d(declared or c, out, k, s, padding, d, g)
    elif kind in ("maxpool", "avgpool"):
        k, s, p = pair(draw, 0, 5), pair(draw, 0, 3), pair(draw, 0, 3)
        ceil = draw(st.booleans())
        if kind == "maxpool":
            d = pair(draw, 0, 3)
            text = f"maxpool {k[0]}x{k[1]} stride={s[0]}x{s[1]} padding={p[0]}x{p[1]} dilation={d[0]}x{d[1]}"
            make = lambda: nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
        else:
            text = f"avgpool {k[0]}x{k[1]} stride={s[0]}x{s[1]} padding={p[0]}x{p[1]}"
            make = lambda: nn.AvgPool2d(k, s, p, ceil_mode=ceil)
        text += " ceil" if ceil else ""
    elif kind == "fc":
        out, declared = draw(st.integers(1, 5)), draw(st.sampled_from([None, c * h * w, c * h * w + 1]))
        text = f"flatten -> fc {out}" + (f" in={declared}" if declared else "")
        make = lambda: nn.Sequential(nn.Flatten(), nn.Linear(declared or c * h * w, out))
    elif kind == "dropout":
        # p = 1 is excluded: PyTorch allows it, specc refuses a layer that zeroes everything
        p = draw(st.sampled_from([-0.5, -0.01, 0.0, 0.25, 0.5, 0.99, 1.5]))
        text, make = f"dropout ({p})", lambda: nn.Dropout(p)
    elif kind == "bn":
        declared = draw(st.sampled_from([None, c, c + 2]))
        text = "bn" + (f" in={declared}" if declared else "")
        make = lambda: nn.BatchNorm2d(declared or c)
    elif kind == "shuffle":
        groups = draw(st.integers(1, 7))
        text, make = f"shuffle {groups}", lambda: nn.ChannelShuffle(groups)
    elif kind == "mul":  # broadcasting: PyTorch's rule is the oracle
        size = pair(draw, 1, 9)
        text, make = f"mul(identity | adaptiveavgpool {size[0]}x{size[1]})", lambda: Gate(nn.AdaptiveAvgPool2d(size))
    elif kind == "split":
        k = draw(st.integers(1, 4))
        text = "split(" + " | ".join(["identity"] * k) + ")"
        make = lambda: Chunks(k)
    else:
        size = draw(st.integers(1, 7))
        text, make = f"lrn {size}", lambda: nn.LocalResponseNorm(size)
    return f"input {c}x{h}x{w}\n{text}", make, (c, h, w)


class Gate(torch.nn.Module):
    """x * f(x), written independently of specc's Mul."""

    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, x):
        return x * self.f(x)


class Chunks(torch.nn.Module):
    """torch.chunk into k equal parts (refusing an uneven split, as split() does), concatenated back."""

    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        if x.shape[1] % self.k:
            raise ValueError("uneven split")
        return torch.cat(x.chunk(self.k, dim=1), dim=1)


def pytorch_outcome(make, shape):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tuple(make().eval()(torch.zeros(2, *shape)).shape[1:])
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        return exc


@settings(max_examples=600, deadline=None)
@given(layer_case())
def test_specc_rejects_exactly_when_pytorch_raises(case):
    text, make, shape = case
    expected = pytorch_outcome(make, shape)
    try:
        got = specc.loads(text).output_shape
    except specc.SpecError as err:
        got = err
    event("PyTorch raises" if isinstance(expected, Exception) else "PyTorch accepts")
    if isinstance(expected, Exception):
        assert isinstance(got, specc.SpecError), f"PyTorch raised {expected!r} but specc accepted:\n{text}"
    else:
        assert not isinstance(got, specc.SpecError), f"PyTorch gives {expected} but specc refused:\n{got}"
        assert got == expected


def test_specc_is_stricter_than_pytorch_where_documented():
    assert torch.nn.Dropout(1.0)(torch.ones(1)).sum() == 0  # PyTorch accepts p = 1
    with pytest.raises(specc.SpecError, match=r"in \[0, 1\)"):
        specc.loads("input 4\ndropout 1")
    assert torch.nn.Linear(4, 0)(torch.ones(1, 4)).shape == (1, 0)  # and zero-width layers
    with pytest.raises(specc.SpecError, match="positive"):
        specc.loads("input 4\nfc 0")


# --- (3) no input makes specc fail with anything but SpecError --------------
TOKENS = ["conv", "3x3", "16", "p1", "s2", "->", "(", ")", "|", "*", ":", "concat(", "add(", "block", "b(", "{", "}",
          "input", "1x8x8", "param", "x", "=", "default", "relu", "fc", "flatten", "0.5", "-", "//", ",", "\n", " ",
          "#", "maxpool", "in=", "bias=false", "1e999", "99999999999999999999", "true", "network", "0", "gap",
          "mul(", "split(", "shuffle", "ln", "scale", "droppath", "/", "as", "i", "?", "p(", "min(", "divisible(",
          "act=", "1x7", "?x?", "import", '"x.cnn"', "hardswish", "size(", "-2"]
VALID = [p.read_text() for p in sorted(SPECS.glob("*.cnn"))]


def only_spec_errors(text):
    try:
        specc.loads(text)
    except specc.SpecError as err:
        assert str(err)  # renders without failing


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_spec_error(text):
    only_spec_errors(text)


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_only_raises_spec_error(tokens):
    only_spec_errors(" ".join(tokens))


@SETTINGS
@given(st.sampled_from(VALID), st.data())
def test_mutated_specs_only_raise_spec_error(source, data):
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(source)))
        cut = data.draw(st.integers(0, 6))
        source = source[:at] + data.draw(st.sampled_from(TOKENS + [""])) + source[at + cut:]
    only_spec_errors(source)
