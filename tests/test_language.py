"""The language's forms, as docs/language.md describes them."""
import pytest

import specc


def shapes(net):
    return [(row.path, row.output_shape) for row in net.layers]


def test_issue_example_alexnet_chain():
    net = specc.loads("""
input 1x224x224
conv 11x11 96 s4 p1 -> relu -> maxpool 3 s2
-> conv 5x5 256 p2 -> relu -> maxpool 3 s2   : 256x12x12
-> flatten -> fc 4096 -> relu -> dropout 0.5 -> fc 10
""")
    assert net.output_shape == (10,)
    assert net.layers[-1].params == 4096 * 10 + 10


def test_name_defaults_to_stem_and_network_line_wins(spec_file):
    assert specc.load(spec_file("input 3x8x8\nrelu", "tiny.cnn")).name == "tiny"
    assert specc.load(spec_file("network other\ninput 3x8x8\nrelu", "tiny.cnn")).name == "other"
    assert specc.loads("input 4\nrelu").name == "inline"
    assert specc.loads("input 4\nrelu", name="x").name == "x"


def test_flat_input_and_comments():
    net = specc.loads("# a comment\ninput 784   # trailing\nfc 10 # more\n")
    assert net.input_shape == (784,) and net.output_shape == (10,) and net.param_count == 7850


def test_params_override_and_expressions():
    src = "input 3x32x32\nparam width = 8\nparam wide = (width * 2 + 1 - 1)\nconv 3x3 wide p1 -> conv 1x1 (wide // 4)"
    assert specc.loads(src).output_shape == (4, 32, 32)
    assert specc.loads(src, width=16).output_shape == (8, 32, 32)
    assert specc.loads(src, input_shape=(3, 10, 10)).output_shape == (4, 10, 10)


def test_keyword_forms_equal_shorthands():
    short = specc.loads("input 3x32x32\nconv 5x3 8 s2 p1 d2 g1 bias=false")
    long = specc.loads("input 3x32x32\nconv kernel=5x3 stride=2 padding=1 dilation=2 groups=1 bias=false channels=8")
    assert shapes(short) == shapes(long) and short.param_count == long.param_count == 8 * 3 * 15


def test_keyword_values_may_be_names():
    net = specc.loads("input 3x32x32\nblock b(k, s, p, c) { conv kernel=k stride=s padding=p c }\nb(3, 2, 1, 16)")
    assert net.output_shape == (16, 16, 16)


def test_pool_stride_defaults_to_window_and_ceil_flag():
    assert specc.loads("input 1x7x7\nmaxpool 2").output_shape == (1, 3, 3)
    assert specc.loads("input 1x7x7\nmaxpool 2 ceil").output_shape == (1, 4, 4)
    assert specc.loads("input 1x7x7\navgpool 3 s2 ceil").output_shape == (1, 3, 3)


def test_blocks_repetition_and_names():
    net = specc.loads("""
input 3x32x32
block vgg(convs, channels) {
    (conv 3x3 channels p1 -> relu) * convs -> maxpool 2 s2
}
vgg(1, 8) -> vgg(channels=16, convs=2) -> relu * 2
""")
    assert [p for p, _ in shapes(net)] == [
        "vgg1.conv1", "vgg1.relu1", "vgg1.maxpool1",
        "vgg2.conv1", "vgg2.relu1", "vgg2.conv2", "vgg2.relu2", "vgg2.maxpool1", "relu1", "relu2"]
    assert net.output_shape == (16, 8, 8)


def test_repeated_block_call_and_expression_count():
    net = specc.loads("input 4x8x8\nparam n = 2\nblock r { add(conv 3x3 4 p1 | identity) }\nr() * (n + 1)")
    assert [p for p, _ in shapes(net) if p.count(".") == 1] == ["r1.add1", "r2.add1", "r3.add1"]


def test_concat_add_identity():
    net = specc.loads("input 8x8x8\nconcat(identity | conv 1x1 4 | maxpool 3 s1 p1) -> add(conv 3x3 20 p1 | identity)")
    assert net.output_shape == (20, 8, 8)
    merges = [row for row in net.layers if row.kind in ("concat", "add")]
    assert [(r.path, r.output_shape) for r in merges] == [("concat1", (20, 8, 8)), ("add1", (20, 8, 8))]


def test_dense_block_grows_channels():
    net = specc.loads("input 16x8x8\nparam growth = 4\nconcat(identity | bn -> relu -> conv 3x3 growth p1) * 3")
    assert net.output_shape == (28, 8, 8)


def test_defaults_apply_after_their_line_and_explicit_wins():
    net = specc.loads("input 3x8x8\nconv 3x3 4 -> default conv bias=false\n" if False else
                      "input 3x8x8\ndefault conv bias=false\ndefault bn eps=0.001\n"
                      "conv 3x3 4 -> conv 3x3 4 bias=true -> bn")
    convs = [n for n in net.graph.items if n.kind.name == "conv"]
    assert [c.args.bias for c in convs] == [False, True]
    assert net.graph.items[2].args.eps == 0.001


def test_bn_picks_rank_and_counts_buffers():
    net = specc.loads("input 3x8x8\nbn -> flatten -> bn")
    assert net.param_count == 2 * 3 + 2 * 192
    assert net.buffer_count == (2 * 3 + 1) + (2 * 192 + 1)


def test_macs_follow_torchvision_convention():
    net = specc.loads("input 3x8x8\nconv 3x3 4 p1 g1 -> flatten -> fc 10")
    assert net.macs == 4 * 8 * 8 * 3 * 9 + 256 * 10


@pytest.mark.parametrize("op", ["relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "leakyrelu 0.2", "softmax",
                                "identity", "dropout", "lrn 5", "bn", "batchnorm", "gap", "adaptiveavgpool 2x2",
                                "adaptivemaxpool 3", "flatten"])
def test_every_listed_kind_is_known(op):
    assert specc.loads(f"input 4x6x6\n{op}").output_shape


def test_linear_alias():
    assert specc.loads("input 5\nlinear 3").param_count == 18


def test_layer_rows_carry_source_lines():
    net = specc.loads("input 3x8x8\nconv 3x3 4\n-> relu")
    assert [(r.op, r.line) for r in net.layers] == [("conv 3x3 4", 2), ("relu", 3)]
