"""The constructs the torchvision zoo needs: merges, new layers, expressions, block parameters, repetition.

Static analysis is checked against the rule each construct states; the torch side (at the end) against
PyTorch's and torchvision's own modules, with random inputs, so a wrong module cannot pass.
"""
from pathlib import Path

import pytest

import specc
from conftest import SPECS, torchvision_or_skip


def shapes(net):
    return [(row.path, row.output_shape) for row in net.layers]


def error(text, **kwargs) -> specc.SpecError:
    with pytest.raises(specc.SpecError) as info:
        specc.loads(text, path="net.cnn", **kwargs)
    return info.value


# --- merges ------------------------------------------------------------------------------------
def test_mul_broadcasts_a_squeeze_excitation_gate():
    net = specc.loads("input 16x8x8\n"
                      "mul(identity | gap -> conv 1x1 4 bias=true -> relu -> conv 1x1 16 bias=true -> hardsigmoid)")
    assert net.output_shape == (16, 8, 8)
    assert net.param_count == (16 * 4 + 4) + (4 * 16 + 16)
    assert ("mul1.branch2.conv2", (16, 1, 1)) in shapes(net)
    assert "broadcast" in error("input 16x8x8\nmul(identity | conv 1x1 8)").message
    assert "differ in rank" in error("input 16x8x8\nmul(identity | gap -> flatten)").message


def test_split_chunks_channels_in_order_and_concatenates():
    assert "cannot divide 8 channels evenly among 3 branches" in error("input 8x6x6\nsplit(identity | relu | relu)").message
    net = specc.loads("input 8x6x6\nsplit(identity | conv 1x1 6)")
    assert net.output_shape == (10, 6, 6)
    assert net.param_count == 4 * 6 + 6  # the second branch sees 4 channels
    assert "split needs a CxHxW input" in error("input 8\nsplit(identity | identity)").message


def test_merges_are_registry_entries_and_the_grammar_follows_them():
    from specc.lang import parse
    from specc.lang.registry import MERGES
    assert set(MERGES) == {"concat", "add", "mul", "split"}
    text = parse.grammar_text()
    assert "@MERGES@" not in text and all(name in text for name in MERGES)
    for kind in MERGES.values():
        assert kind.summary.startswith(kind.name + "(")


def test_unknown_merge_is_named_with_the_merges():
    err = error("input 3x8x8\nmull(identity | gap)")
    assert err.message == "unknown block or merge 'mull'" and (err.line, err.column) == (2, 15)
    assert "did you mean 'mul'?" in err.hint and "concat, add, mul, split" in err.hint
    err = error("input 3x8x8\nblock b(c) { relu }\nb(identity | relu)")
    assert "'b' is a block" in err.message
    err = error("input 3x8x8\nnope(3)")
    assert err.message == "unknown block or merge 'nope'" and "the merges are" in err.hint


# --- new layers --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,params", [
    ("shuffle 2", 0), ("ln", 2 * 8), ("ln eps=1e-6", 2 * 8), ("scale 1e-6", 8), ("droppath 0.2", 0),
    ("hardswish", 0), ("hardsigmoid", 0), ("elu", 0), ("elu 0.5", 0), ("mish", 0), ("softplus beta=2", 0),
    ("hardtanh min=-2 max=2", 0), ("prelu", 1), ("prelu per_channel", 8), ("prelu 0.1", 1),
])
def test_new_layers_keep_the_shape_and_count_their_params(text, params):
    net = specc.loads(f"input 8x5x5\n{text}")
    assert net.output_shape == (8, 5, 5) and net.param_count == params


def test_ln_and_scale_on_flat_input():
    net = specc.loads("input 8x5x5\nflatten -> ln -> scale 0.5")
    assert net.output_shape == (200,) and net.param_count == 2 * 200 + 200


def test_new_layer_refusals():
    assert "3 groups do not divide the 8 channels" in error("input 8x5x5\nshuffle 3").message
    assert "droppath p must be in [0, 1]" in error("input 8x5x5\ndroppath 1.5").message
    assert "scale needs an 'init'" in error("input 8x5x5\nscale").message
    assert "shuffle needs a CxHxW input" in error("input 8\nshuffle 2").message


# --- expressions -------------------------------------------------------------------------------
@pytest.mark.parametrize("expr,value", [
    ("(int(7 / 2 * 2))", 7), ("(min(3, 5))", 3), ("(max(3, 5, 4))", 5), ("(ceil(2.1))", 3), ("(floor(2.9))", 2),
    ("(round(2.5))", 2), ("(round(3.5))", 4), ("(int(7.9))", 7), ("(divisible(16 * 1.5, 8))", 24),
    ("(divisible(36, 8))", 40), ("(divisible(3, 8))", 8), ("(divisible(90 * 0.75, 8))", 64), ("(9 // 2)", 4),
])
def test_expression_values(expr, value):
    assert specc.loads(f"input 3x4x4\nconv 1x1 {expr}").output_shape[0] == value


def test_divisible_is_torchvisions_make_divisible():
    from specc.lang.evaluate import divisible

    def make_divisible(v, divisor, min_value=None):  # torchvision.models._utils._make_divisible
        if min_value is None:
            min_value = divisor
        new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
        if new_v < 0.9 * v:
            new_v += divisor
        return new_v

    for v in [1, 3, 7.5, 8, 12, 15.9, 16, 20, 36, 67.2, 100, 1280 * 1.25, 960 * 0.35]:
        for d in (4, 8, 16):
            assert divisible(v, d) == make_divisible(v, d), (v, d)


def test_a_float_where_an_integer_is_needed_is_a_located_error():
    err = error("input 3x4x4\nparam w = 1.5\nconv 1x1 (16 * w)")
    assert err.message == "conv channels must be an integer, got 24.0" and (err.line, err.column) == (3, 10)
    assert "round()" in err.hint
    err = error("input 3x4x4\nconv 1x1 (divisible(3, 8, 1, 2))")
    assert "divisible() takes 2 to 3 arguments but gets 4" in err.message


def test_sizes_in_block_calls_and_shorthand_expressions():
    net = specc.loads("input 3x17x17\nblock unit(c, k) { conv kernel=k c p(k // 2) bias=false -> bn eps=0.001 }\n"
                      "unit(8, 1x7) -> unit(8, 7x1) -> unit(8, 3)")
    assert net.output_shape == (8, 17, 17)
    assert [r.params for r in net.layers if r.kind == "conv"] == [3 * 7 * 8, 8 * 7 * 8, 8 * 9 * 8]
    net = specc.loads("input 8x16x16\nblock d(c, stride) { conv 3x3 c s(stride) p1 g(c) }\nd(8, 2)")
    assert net.output_shape == (8, 8, 8) and net.param_count == 8 * 9 + 8
    net = specc.loads("input 3x16x16\nconv kernel=(size(1, 3) * 2 + 1) 4")
    assert net.output_shape == (4, 14, 10)


def test_shorthand_with_a_size_hints_the_keyword_form():
    err = error("input 3x8x8\nconv 1x7 4 p0x3")
    assert err.hint == "a shorthand takes one number; for a size write the keyword form padding=0x3"


def test_negative_size_has_a_specific_message():
    err = error("input 3x8x8\nconv -5x-5 6")
    assert err.message.startswith("sizes, channels and counts are positive") and (err.line, err.column) == (2, 6)


def test_expected_lists_never_trail_off():
    for text in ["input 3x8x8\nconv 3x3 6 -> -> relu", "input 3x8x8\nconv 3x3 6 |", "input 3x8x8\nconv 3x3 6 ) x",
                 "input 3x8x8\nblock b( { relu }", "input 3x8x8\nconv 3x3 6 : x"]:
        assert "..." not in error(text).message


# --- repetition --------------------------------------------------------------------------------
def test_zero_repetitions_remove_the_element():
    net = specc.loads("input 3x8x8\nblock stage(c, n) { conv 3x3 c p1 -> (conv 3x3 c p1) * (n - 1) }\n"
                      "stage(4, 1) -> stage(6, 3)")
    assert [r.path for r in net.layers] == ["stage1.conv1", "stage2.conv1", "stage2.conv2", "stage2.conv3"]
    assert specc.loads("input 3x8x8\nrelu * 0 : 3x8x8 -> conv 1x1 2").output_shape == (2, 8, 8)


def test_repetition_index_drives_a_ramp():
    net = specc.loads("input 4x8x8\nparam total = 4\n"
                      "block res(c, p) { add(conv 3x3 c p1 -> droppath p | identity) }\n"
                      "res(4, 0.2 * i / total) * total as i")
    probabilities = [node.items[0].branches[0].items[1].args["p"] for node in net.graph.items]
    assert probabilities == [0.0, 0.05, 0.1, 0.2 * 3 / 4]
    net = specc.loads("input 3x8x8\n(conv 1x1 (i + 1)) * 3 as i")
    assert [r.output_shape[0] for r in net.layers] == [1, 2, 3]


def test_a_comparison_repeats_an_element_once_or_not_at_all():
    net = specc.loads("input 8x4x4\nblock e(cin, exp) { (conv 1x1 exp -> relu) * (exp != cin) -> conv 1x1 4 }\n"
                      "e(8, 8) -> e(4, 16)")
    assert [r.path for r in net.layers] == ["e1.conv1", "e2.conv1", "e2.relu1", "e2.conv2"]
    for op, expected in [("==", 0), ("!=", 1), ("<", 1), ("<=", 1), (">", 0), (">=", 0)]:
        assert len(specc.loads(f"input 4\nrelu * (2 {op} 3)").layers) == expected
    assert "got true" in error("input 8x4x4\nconv 1x1 (3 < 4)").message


def test_a_layer_given_where_a_number_belongs_is_named_plainly():
    err = error("input 8x4x4\nblock mb(c, act=relu) { conv 1x1 act }\nmb(8)")
    assert err.message == "conv channels must be a number, got the layer relu"


# --- block parameters ----------------------------------------------------------------------------
def test_block_parameters_with_defaults_and_layers_as_values():
    src = ("input 3x8x8\nblock conv_bn(c, k, act=relu) { conv kernel=k c p(k // 2) -> bn -> act }\n"
           "conv_bn(16, 3, act=hardswish) -> conv_bn(8, 1) -> conv_bn(8, 3, act=identity)")
    kinds = [r.kind for r in specc.loads(src).layers]
    assert kinds == ["conv", "bn", "hardswish", "conv", "bn", "relu", "conv", "bn", "identity"]


def test_an_optional_squeeze_excitation_is_a_parameter():
    src = ("input 16x8x8\n"
           "block squeeze(sq, c) { mul(identity | gap -> conv 1x1 sq -> relu -> conv 1x1 c -> hardsigmoid) }\n"
           "block unit(c, se=identity) { conv 1x1 c -> se -> relu }\n"
           "unit(16, se=squeeze(4, 16)) -> unit(16)")
    net = specc.loads(src)
    paths = [r.path for r in net.layers]
    assert "unit1.squeeze1.mul1" in paths and "unit2.identity1" in paths
    assert net.param_count == (16 * 16 + 16) * 2 + (16 * 4 + 4) + (4 * 16 + 16)


def test_a_parameter_used_as_a_layer_must_be_one():
    err = error("input 3x8x8\nblock b(act) { conv 1x1 4 -> act }\nb(3)")
    assert "'act' is 3, not a layer or block" in err.message
    err = error("input 3x8x8\nblock b(c, sq=c // 4, act=relu) { conv 1x1 sq -> act }\nb(16, act=nope)")
    assert err.message == "unknown name 'nope'"
    # defaults may use the parameters before them
    assert specc.loads("input 3x8x8\nblock b(c, sq=c // 4) { conv 1x1 sq }\nb(16)").output_shape == (4, 8, 8)
    err = error("input 3x8x8\nblock b(c=1, d) { relu }\nb(1, 2)")
    assert "without a default follows one with a default" in err.message


def test_a_numeric_param_may_share_a_layer_kinds_name():
    assert specc.loads("input 3x8x8\nparam scale = 2\nconv 1x1 (scale * 2) -> scale 0.5").param_count == 3 * 4 + 4 + 4


# --- imports with settings ------------------------------------------------------------------------
def test_import_settings_set_the_librarys_params(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "units.cnn").write_text("param eps = 1e-5\ndefault bn eps=eps\nblock unit(c) { conv 1x1 c -> bn }\n")
    (tmp_path / "a.cnn").write_text('import "lib/units.cnn" (eps = 0.001)\ninput 3x4x4\nunit(8)\n')
    (tmp_path / "b.cnn").write_text('import "lib/units.cnn"\ninput 3x4x4\nunit(8)\n')
    bn = lambda net: next(node for node in net.graph.items[0].items if node.kind.name == "bn")
    assert bn(specc.load(tmp_path / "a.cnn")).args["eps"] == 0.001
    assert bn(specc.load(tmp_path / "b.cnn")).args["eps"] == 1e-5
    assert bn(specc.load(tmp_path / "a.cnn", eps=0.01)).args["eps"] == 0.01  # the API still wins
    (tmp_path / "c.cnn").write_text('import "lib/units.cnn" (epz = 0.001)\ninput 3x4x4\nunit(8)\n')
    with pytest.raises(specc.SpecError) as info:
        specc.load(tmp_path / "c.cnn")
    assert "'lib/units.cnn' has no param 'epz' to set" in info.value.message and "did you mean 'eps'" in info.value.hint
    assert info.value.line == 1


# --- annotations and other inputs -----------------------------------------------------------------
def test_question_mark_sides_and_annotations_at_another_input():
    src = "input 3x32x32\nconv 3x3 8 p1 : 8x32x32 -> gap : 8x?x?"
    assert specc.loads(src).annotations_checked
    net = specc.loads(src, input_shape=(3, 20, 20))
    assert net.output_shape == (8, 1, 1) and not net.annotations_checked
    assert "says 9x?x?" in error("input 3x32x32\nconv 3x3 8 p1 : 9x?x?").message


SHIPPED = sorted(SPECS.glob("*.cnn")) + sorted((SPECS / "torchvision").glob("*.cnn"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(SPECS)))
def test_every_shipped_spec_loads_at_another_input(path):
    """Annotations describe the declared input; a spec without `in=` is analysable at another valid size."""
    net = specc.load(path)
    c, h, w = net.input_shape
    other = specc.load(path, input_shape=(c, h + 32, w + 32))
    assert other.output_shape == net.output_shape
    assert "in=" not in path.read_text()


# --- the torch side: each new module equals PyTorch's or torchvision's own ------------------------
import torch  # noqa: E402  (a dependency of specc; the tests above need none of it)


def built(text: str, shape=(8, 5, 5)):
    net = specc.loads(f"input {'x'.join(map(str, shape))}\n{text}")
    return net, net.build()


def test_shuffle_equals_pytorch_channel_shuffle():
    x = torch.randn(2, 12, 3, 3)
    _, module = built("shuffle 3", (12, 3, 3))
    assert torch.equal(module(x), torch.nn.ChannelShuffle(3)(x))


def test_ln_equals_torchvision_layernorm2d_and_nn_layernorm():
    torchvision_or_skip()
    from torchvision.models.convnext import LayerNorm2d
    x = torch.randn(2, 8, 5, 5)
    _, module = built("ln eps=1e-6")
    reference = LayerNorm2d(8, eps=1e-6)
    with torch.no_grad():
        for p in reference.parameters():
            p.uniform_(0.5, 1.5)
        module.load_state_dict({"ln1." + k: v for k, v in reference.state_dict().items()})
    assert torch.allclose(module(x), reference(x), atol=1e-6)
    _, flat = built("flatten -> ln")
    assert torch.allclose(flat(x), torch.nn.LayerNorm(200)(x.flatten(1)), atol=1e-6)


def test_scale_is_a_per_channel_parameter():
    _, module = built("scale 1e-6")
    assert tuple(module.scale1.weight.shape) == (8, 1, 1) and torch.all(module.scale1.weight == 1e-6)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        module.scale1.weight.copy_(torch.arange(8.0).view(8, 1, 1))
    assert torch.equal(module(x), x * torch.arange(8.0).view(1, 8, 1, 1))


def test_droppath_equals_torchvision_stochastic_depth():
    torchvision_or_skip()
    from torchvision.ops import StochasticDepth
    x = torch.randn(64, 8, 5, 5)
    _, module = built("droppath 0.3")
    reference = StochasticDepth(0.3, "row")
    module.train(), reference.train()
    torch.manual_seed(5)
    ours = module(x)
    torch.manual_seed(5)
    assert torch.equal(ours, reference(x))
    assert 0 < (ours.flatten(1).abs().sum(1) == 0).sum() < 64  # some rows dropped, not all
    assert torch.equal(module.eval()(x), x)


def test_mul_and_split_modules_compute_what_they_say():
    x = torch.randn(2, 8, 5, 5)
    _, gate = built("mul(identity | gap -> sigmoid)")
    assert torch.allclose(gate(x), x * torch.sigmoid(x.mean((2, 3), keepdim=True)))
    _, split = built("split(identity | conv 1x1 4 bias=false)")
    with torch.no_grad():
        split.split1.branch2.conv1.weight.copy_(2 * torch.eye(4).view(4, 4, 1, 1))
    assert torch.equal(split(x), torch.cat([x[:, :4], 2 * x[:, 4:]], dim=1))


@pytest.mark.parametrize("text,reference", [
    ("hardswish", torch.nn.Hardswish()), ("hardsigmoid", torch.nn.Hardsigmoid()), ("elu 0.5", torch.nn.ELU(0.5)),
    ("mish", torch.nn.Mish()), ("softplus beta=2", torch.nn.Softplus(2.0)), ("hardtanh min=-2 max=2",
                                                                            torch.nn.Hardtanh(-2.0, 2.0)),
])
def test_activations_equal_pytorch(text, reference):
    x = 4 * torch.randn(2, 8, 5, 5)
    assert torch.equal(built(text)[1](x), reference(x))


def test_prelu_per_channel():
    net, module = built("prelu per_channel")
    assert sum(p.numel() for p in module.parameters()) == net.param_count == 8
