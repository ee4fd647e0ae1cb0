"""Each kind of mistake gives a located, specific diagnostic (never a traceback)."""
import pytest

import specc

ALEXNET_227 = """input 1x227x227
conv 11x11 96 s4 p1 -> relu -> maxpool 3 s2
-> conv 5x5 256 p2 -> relu -> maxpool 3 s2
-> conv 3x3 384 p1 -> relu -> conv 3x3 384 p1 -> relu
-> conv 3x3 256 p1 -> relu -> maxpool 3 s2
-> flatten
-> fc 4096 in=6400 -> relu"""

# (name, source, line, column, words in the message, words in the hint or None)
CASES = [
    ("syntax", "input 1x28x28\nconv 3x3 6 -> -> relu", 2, 15, "unexpected '->'; expected", None),
    ("end of file", "input 1x28x28\nconcat(conv 1x1 3 | identity", 2, 29, "unexpected end of file; expected ')' or '|'", None),
    ("true division", "input 1x28x28\nconv 3x3 (6/2)", 2, 10, "conv channels must be an integer, got 3.0", "//"),
    ("unknown layer", "input 1x28x28\nconv 3x3 6 -> rleu", 2, 15, "unknown layer 'rleu'", "did you mean 'relu'?"),
    ("unknown argument", "input 1x28x28\nconv 3x3 6 strid=2", 2, 12, "conv has no argument 'strid'", "did you mean 'stride'?"),
    ("unknown shorthand", "input 1x28x28\nmaxpool 3 g2", 2, 11, "maxpool has no shorthand 'gN' (groups)", None),
    ("unknown param", "input 1x28x28\nparam classes = 10\nflatten -> fc clases", 3, 15, "unknown name 'clases'",
     "did you mean 'classes'?"),
    ("unknown block", "input 1x28x28\nblock vgg(c) { conv 3x3 c }\nvg(3)", 3, 1, "unknown block or merge 'vg'", "did you mean 'vgg'?"),
    ("layer called as block", "input 1x28x28\nconv(3)", 2, 1, "unknown block or merge 'conv'", "is a layer"),
    ("block used as layer", "input 1x28x28\nblock vgg(c) { conv 3x3 c }\nvgg 3", 3, 1, "unknown layer 'vgg'", "call it as vgg(...)"),
    ("arity", "input 1x28x28\nblock vgg(n, c) { conv 3x3 c }\nvgg(3)", 3, 1, "vgg takes 2 arguments but gets 1",
     "missing c"),
    ("too many arguments", "input 1x28x28\nblock vgg(c) { conv 3x3 c }\nvgg(3, 4)", 3, 1, "vgg takes 1 argument but gets 2", None),
    ("recursive", "input 1x28x28\nblock a(c) { b(c) }\nblock b(c) { a(c) }\na(3)", 3, 14,
     "block 'a' calls itself (a -> b -> a)", "repetition"),
    ("fc on spatial", "input 1x28x28\nconv 3x3 6 -> fc 10", 2, 15, "fc needs a flat input but gets 6x26x26",
     "insert '-> flatten' before fc"),
    ("conv after flatten", "input 1x28x28\nflatten -> conv 3x3 6", 2, 12, "conv needs a CxHxW input but gets the flat shape 784", None),
    ("pool after flatten", "input 1x28x28\nflatten -> maxpool 2", 2, 12, "maxpool needs a CxHxW input", None),
    ("kernel too large", "input 1x4x4\nconv 7x7 6 p1", 2, 6, "conv kernel 7x7 is larger than the padded input 6x6 (input 4x4, padding 1x1)", None),
    ("dilated kernel too large", "input 1x6x6\nconv 3x3 6 d3", 2, 6, "kernel 3x3 (dilated to 7x7) is larger", None),
    ("pool window too large", "input 1x2x2\nmaxpool 3", 2, 9, "window 3x3 does not fit the input 2x2", None),
    ("pool padding", "input 1x28x28\nmaxpool 3 p2", 2, 11, "padding 2 is more than half the 3x3 window; PyTorch allows at most 1", None),
    ("groups", "input 3x28x28\nconv 3x3 6 g2", 2, 12, "groups=2 does not divide the 3 input channels", None),
    ("groups output", "input 4x28x28\nconv 3x3 6 g4", 2, 12, "groups=4 does not divide the 6 output channels", None),
    ("concat sizes", "input 3x28x28\nconcat(conv 3x3 6 | conv 3x3 6 p1)", 2, 1,
     "concat needs equal height x width but branch 1 gives 6x26x26, branch 2 gives 6x28x28", None),
    ("add shapes", "input 3x28x28\nadd(conv 3x3 6 p1 | identity)", 2, 1,
     "add needs equal shapes but branch 1 gives 6x28x28, branch 2 gives 3x28x28", "projection"),
    ("annotation", "input 1x28x28\nconv 5x5 6 : 6x28x28", 2, 14, "shape annotation says 6x28x28 but the shape here is 6x24x24",
     "comes from conv 5x5 6 at line 2"),
    ("in= on fc", ALEXNET_227, 7, 4, "fc expects 6400 input features (in=6400) but gets 9216 = 256x6x6",
     "flatten at line 6 turns 256x6x6 into 9216"),
    ("in= on conv", "input 3x28x28\nconv 3x3 6 in=1", 2, 1, "conv expects 1 input channels (in=1) but gets 3", None),
    ("zero channels", "input 1x28x28\nconv 3x3 0", 2, 10, "conv channels must be positive, got 0", None),
    ("zero kernel", "input 1x28x28\nconv 0x3 4", 2, 6, "conv kernel must be positive, got 0x3", None),
    ("negative padding", "input 1x28x28\nconv 3x3 4 padding=(-1)", 2, 12, "conv padding must be at least 0, got -1", None),
    ("dropout one", "input 1x28x28\ndropout 1.0", 2, 9, "dropout p must be in [0, 1), got 1.0", None),
    ("dropout negative", "input 1x28x28\ndropout (-0.5)", 2, 9, "dropout p must be at least 0", None),
    ("float channels", "input 1x28x28\nconv 3x3 6.5", 2, 10, "conv channels must be an integer, got 6.5", None),
    ("missing arrow", "input 1x28x28\nconv 3x3 6 relu", 2, 12, "'relu' is a layer, not a value for conv", "joined by '->'"),
    ("missing channels", "input 1x28x28\nconv 3x3", 2, 1, "conv needs a 'channels'", "usage: 2-d convolution"),
    ("two values", "input 1x28x28\nconv 3x3 6 7", 2, 12, "conv: 'channels' is given twice", None),
    ("bad repeat", "input 1x28x28\nrelu * (0 - 1)", 2, 9, "repetition count must be a whole number, 0 or more, got -1",
     None),
    ("float repeat", "input 1x28x28\nrelu * (4 / 2)", 2, 9, "repetition count must be a whole number", "round"),
    ("huge repeat", "input 1x28x28\n(relu * 1000) * 1000", 2, 2, "more than 100000 layers", None),
    ("division by zero", "input 1x28x28\nparam z = 0\nconv 3x3 (6 // z)", 3, 11, "division by zero", None),
    ("duplicate block", "input 1x8x8\nblock a { relu }\nblock a { relu }\na()", 3, 1, "block 'a' is defined twice", "line 2"),
    ("bool as size", "input 1x28x28\nconv 3x3 true", 2, 10, "conv channels must be a number, got true", None),
    ("bad input rank", "input 28x28\nrelu", 1, 7, "input must be CxHxW or a number of features, got 28x28", None),
    ("default unknown op", "default cnv bias=false\ninput 1x8x8\nrelu", 1, 1, "unknown layer 'cnv'", "did you mean 'conv'?"),
    ("default unknown arg", "default conv bais=false\ninput 1x8x8\nrelu", 1, 14, "conv has no argument 'bais'", "did you mean 'bias'?"),
]


@pytest.mark.parametrize("name,source,line,column,message,hint", CASES, ids=[c[0] for c in CASES])
def test_error_is_located_and_specific(name, source, line, column, message, hint):
    with pytest.raises(specc.SpecError) as info:
        specc.loads(source, path="net.cnn")
    err = info.value
    assert (err.path, err.line, err.column) == ("net.cnn", line, column), str(err)
    assert message in err.message
    if hint is not None:
        assert err.hint is not None and hint in err.hint
    rendered = str(err)
    assert rendered.startswith(f"net.cnn:{line}:{column}: error: ")
    source_line = source.splitlines()[line - 1]
    assert f"{line:>5} | {source_line}" in rendered
    caret = rendered.splitlines()[2]
    assert caret.index("^") - caret.index("|") - 2 == column - 1


def test_error_inside_block_names_the_call():
    with pytest.raises(specc.SpecError) as info:
        specc.loads("input 1x8x8\nblock down(c) { conv 3x3 c s2 -> conv 5x5 c }\ndown(4) -> down(8)", path="n.cnn")
    assert (info.value.line, info.value.column) == (2, 39)
    assert info.value.notes == ("in down(4) at line 3",)
    assert "note: in down(4) at line 3" in str(info.value)


def test_missing_input_line():
    with pytest.raises(specc.SpecError, match="no 'input' line"):
        specc.loads("conv 3x3 6")


def test_unknown_param_override_suggests():
    with pytest.raises(specc.SpecError) as info:
        specc.loads("input 784\nparam classes = 10\nfc classes", clases=3)
    assert "no param 'clases'" in info.value.message and "classes" in info.value.hint


def test_missing_file(tmp_path):
    with pytest.raises(specc.SpecError, match="no such spec file"):
        specc.load(tmp_path / "nope.cnn")
