"""Weight transfer by structure (specc/runtime/weights.py) against small hand-written references.

Each reference lists its tensors in an order its forward pass does not follow
(a shortcut registered before the main branch, an own Parameter that
state_dict puts before its children) or stores a 1x1 convolution as an
nn.Linear; transfer must still pair every tensor with its counterpart, which
the tests check by comparing outputs in eval and training mode.
"""
from collections import OrderedDict

import pytest
import torch
from torch import nn

import specc
from conftest import torchvision_or_skip
from specc.runtime.modules import Add, Chain
from specc.runtime.weights import WeightsError, first_use_order, transfer


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every float tensor random (BatchNorm's affine and running statistics too), so no layer is the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.uniform_(0.5, 2.0, generator=g)
            elif t.is_floating_point():
                t.normal_(0.0, 0.5, generator=g)
    return model


def same_outputs(ours: nn.Module, theirs: nn.Module, shape: tuple[int, ...]) -> None:
    """Equal eval outputs, equal training outputs and equal running statistics afterwards."""
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x))
        torch.testing.assert_close(ours.train()(x), theirs.train()(x))
    ours_bn = [m for m in ours.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    theirs_bn = [m for m in theirs.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(ours_bn) == len(theirs_bn)
    for a in ours_bn:  # the two list their BatchNorms in different orders: each of ours has its own twin
        twins = [b for b in theirs_bn if torch.allclose(a.running_mean, b.running_mean)
                 and torch.allclose(a.running_var, b.running_var)]
        assert twins, "a BatchNorm's running statistics moved differently"
        theirs_bn.remove(twins[0])


# --- a shortcut registered (and computed) before the main branch: RegNet -------------------------
class ShortcutFirst(nn.Module):
    """RegNet's ResBottleneckBlock: `proj` registers before `f`, and forward is proj(x) + f(x)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.proj = nn.Sequential(nn.Conv2d(c_in, c_out, 1, 2, bias=False), nn.BatchNorm2d(c_out))
        self.f = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 2, 1, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        return torch.relu(self.proj(x) + self.f(x))


RESIDUAL = """
default conv bias=false
add(conv 1x1 16 -> bn -> relu -> conv 3x3 16 s2 p1 -> bn
  | conv 1x1 16 s2 -> bn)
-> relu
"""


@pytest.mark.parametrize("input_shape", [(8, 12, 12), None], ids=["traced", "registration-order"])
def test_shortcut_registered_first_pairs_with_the_written_shortcut(input_shape):
    reference = randomise(ShortcutFirst(8, 16))
    model = specc.loads(RESIDUAL, input_shape=(8, 12, 12)).build()
    # The written order cannot fit: the main branch's 3x3 conv meets the reference's main 1x1 conv.
    transfer(model, reference, input_shape=input_shape)
    same_outputs(model, reference, (8, 12, 12))


def test_torchvision_regnet_block():
    torchvision_or_skip()
    from torchvision.models import regnet
    reference = randomise(regnet.ResBottleneckBlock(8, 16, 2, nn.BatchNorm2d, nn.ReLU, group_width=4))
    spec = """
    default conv bias=false
    add(conv 1x1 16 -> bn -> relu -> conv 3x3 16 s2 p1 g4 -> bn -> relu -> conv 1x1 16 -> bn
      | conv 1x1 16 s2 -> bn)
    -> relu
    """
    model = specc.loads(spec, input_shape=(8, 12, 12)).build()
    transfer(model, reference, input_shape=(8, 12, 12))
    same_outputs(model, reference, (8, 12, 12))


def test_non_commutative_merges_keep_their_order():
    class ConcatSwapped(nn.Module):
        def __init__(self):
            super().__init__()
            self.wide, self.narrow = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1)

        def forward(self, x):
            return torch.cat([self.wide(x), self.narrow(x)], 1)

    model = specc.loads("concat(conv 1x1 8 | conv 3x3 8 p1)", input_shape=(3, 6, 6)).build()
    with pytest.raises(WeightsError, match=r"tensor 0 differs: the spec's 'concat1\.branch1\.conv1\.weight' is "
                                           r"8x3x1x1 but the source's 'wide\.weight' is 8x3x3x3"):
        transfer(model, ConcatSwapped(), input_shape=(3, 6, 6))


# --- an own Parameter that state_dict lists first, used last: ConvNeXt -----------------------------
class BiasFirstChannelsLast(nn.Module):
    """An own bias (state_dict lists it before the children) added after a bias-free conv, then two
    pointwise layers as nn.Linear over channels-last maps, as ConvNeXt writes them."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bias = nn.Parameter(torch.zeros(16))
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 16)

    def forward(self, x):
        x = torch.relu(self.conv(x) + self.bias[:, None, None]).permute(0, 2, 3, 1)
        return self.fc2(torch.relu(self.fc1(x))).permute(0, 3, 1, 2)


def test_own_parameter_pairs_where_it_is_used():
    reference = randomise(BiasFirstChannelsLast())
    assert list(reference.state_dict())[:2] == ["bias", "conv.weight"]
    net = specc.loads("conv 3x3 16 p1 -> relu -> conv 1x1 32 -> relu -> conv 1x1 16", input_shape=(3, 8, 8))
    with pytest.raises(WeightsError, match="tensor 0 differs"):  # registration order: bias against the conv
        transfer(net.build(), reference)
    model = transfer(net.build(), reference, input_shape=(3, 8, 8))
    same_outputs(model, reference, (3, 8, 8))


class LayerNorm2d(nn.LayerNorm):
    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class Scale(nn.Module):
    """What a spec's `scale` layer builds: one learned multiplier per channel, used after the branch."""

    def __init__(self, c: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c, 1, 1))

    def forward(self, x):
        return self.weight * x


def convnext_block_as_a_spec_builds_it(c: int) -> nn.Module:
    """`add(conv 7x7 C p3 gC -> ln -> conv 1x1 4C -> gelu -> conv 1x1 C -> scale | identity)`, by hand."""
    main = Chain(OrderedDict(conv1=nn.Conv2d(c, c, 7, padding=3, groups=c), ln1=LayerNorm2d(c, eps=1e-6),
                             conv2=nn.Conv2d(c, 4 * c, 1), gelu1=nn.GELU(), conv3=nn.Conv2d(4 * c, c, 1),
                             scale1=Scale(c)))
    return Chain(OrderedDict(add1=Add(OrderedDict(branch1=main, branch2=Chain(OrderedDict(identity1=nn.Identity()))))))


class ScaledBlock(nn.Module):
    """ConvNeXt's CNBlock written out: x + layer_scale * block(x), Linear layers channels-last."""

    def __init__(self, c: int):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.ones(c, 1, 1))
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(c, eps=1e-6), nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        y = self.fc2(nn.functional.gelu(self.fc1(self.norm(self.dw(x).permute(0, 2, 3, 1)))))
        return x + self.layer_scale * y.permute(0, 3, 1, 2)


def torchvision_cnblock(c: int) -> nn.Module:
    torchvision_or_skip()
    from torchvision.models import convnext
    return convnext.CNBlock(c, layer_scale=1e-6, stochastic_depth_prob=0.0)


@pytest.mark.parametrize("reference", [ScaledBlock, torchvision_cnblock], ids=["hand-written", "torchvision"])
def test_layer_scale_and_channels_last_linear(reference):
    reference = randomise(reference(8))
    assert next(iter(reference.state_dict())) == "layer_scale"
    model = convnext_block_as_a_spec_builds_it(8)
    with pytest.raises(WeightsError, match="tensor 0 differs: the spec's 'add1.branch1.conv1.weight' is 8x1x7x7 "
                                           "but the source's 'layer_scale' is 8x1x1"):
        transfer(model, reference)  # registration order
    transfer(model, reference, input_shape=(8, 10, 10))
    assert torch.equal(model.add1.branch1.scale1.weight, reference.layer_scale)
    same_outputs(model, reference, (8, 10, 10))


# --- commutative merges: which arrangement ----------------------------------------------------------
class ThreeBranches(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1)

    def forward(self, x):
        return self.a(x) + self.b(x) + self.c(x)


def test_two_fitting_arrangements_are_ambiguous():
    model = specc.loads("add(conv 1x1 8 | conv 3x3 8 p1 | conv 3x3 8 p1)", input_shape=(3, 6, 6)).build()
    with pytest.raises(WeightsError, match="ambiguous") as err:
        transfer(model, ThreeBranches(), input_shape=(3, 6, 6))
    message = str(err.value)
    assert "add 'add1'" in message
    assert "(branch2='a.weight', branch3='b.weight', branch1='c.weight')" in message
    assert "(branch3='a.weight', branch2='b.weight', branch1='c.weight')" in message


def test_the_written_arrangement_wins_when_it_fits():
    model = specc.loads("add(conv 3x3 8 p1 | conv 3x3 8 p1 | conv 1x1 8)", input_shape=(3, 6, 6)).build()
    reference = randomise(ThreeBranches())
    transfer(model, reference, input_shape=(3, 6, 6))
    assert torch.equal(model.add1.branch1.conv1.weight, reference.a.weight)
    assert torch.equal(model.add1.branch2.conv1.weight, reference.b.weight)


def test_a_state_dict_is_searched_in_its_own_order():
    reference = randomise(ShortcutFirst(8, 16))
    model = specc.loads(RESIDUAL, input_shape=(8, 12, 12)).build()
    transfer(model, reference.state_dict())  # no module to trace: proj's tensors come first, as registered
    same_outputs(model, reference, (8, 12, 12))


# --- shapes ---------------------------------------------------------------------------------------
def test_linear_weights_fill_a_1x1_conv_and_back():
    g = torch.Generator().manual_seed(0)
    state = {"proj.weight": torch.randn(4, 3, generator=g), "proj.bias": torch.randn(4, generator=g)}
    conv = transfer(specc.loads("conv 1x1 4", input_shape=(3, 5, 5)).build(), state)
    assert conv.conv1.weight.shape == (4, 3, 1, 1)
    x = torch.randn(2, 3, 5, 5, generator=g)
    want = nn.functional.linear(x.permute(0, 2, 3, 1), state["proj.weight"], state["proj.bias"]).permute(0, 3, 1, 2)
    torch.testing.assert_close(conv(x), want)

    fc = transfer(specc.loads("fc 4", input_shape=(3,)).build(), {"w": conv.conv1.weight, "b": conv.conv1.bias})
    assert torch.equal(fc.fc1.weight, state["proj.weight"])


def test_other_shapes_still_differ():
    state = {"proj.weight": torch.zeros(4, 3), "proj.bias": torch.zeros(4)}
    with pytest.raises(WeightsError, match="tensor 0 differs: the spec's 'conv1.weight' is 4x3x3x3 but the "
                                           "source's 'proj.weight' is 4x3"):
        transfer(specc.loads("conv 3x3 4", input_shape=(3, 5, 5)).build(), state)


def test_count_mismatch_is_named_when_traced():
    model = specc.loads(RESIDUAL + "-> gap -> flatten -> fc 3", input_shape=(8, 12, 12)).build()
    with pytest.raises(WeightsError, match=r"the spec has 20 tensors and the source 18: the spec's 'fc1.weight' "
                                           r"\(3x16\) has no counterpart"):
        transfer(model, ShortcutFirst(8, 16), input_shape=(8, 12, 12))


# --- the trace ------------------------------------------------------------------------------------
def test_the_trace_leaves_both_models_alone():
    reference = randomise(ShortcutFirst(8, 16)).eval()
    reference.f[1].train()  # a mixed state, to be kept as it is
    reference.f[1].num_batches_tracked.fill_(7)
    before = {name: t.clone() for name, t in reference.state_dict().items()}
    model = specc.loads(RESIDUAL, input_shape=(8, 12, 12)).build().train()
    modes = [m.training for m in model.modules()], [m.training for m in reference.modules()]

    transfer(model, reference, input_shape=(8, 12, 12))
    assert ([m.training for m in model.modules()], [m.training for m in reference.modules()]) == modes
    after = reference.state_dict()
    assert all(torch.equal(after[name], t) for name, t in before.items())  # running statistics did not move
    assert all(t.device.type == "cpu" for t in [*model.state_dict().values(), *after.values()])
    assert model.add1.branch2.bn1.num_batches_tracked.item() == 0  # reference.proj's BN, untouched by the trace
    assert model.add1.branch1.bn1.num_batches_tracked.item() == 7  # reference.f[1]'s


def test_first_use_order_follows_forward():
    order = first_use_order(BiasFirstChannelsLast(), (3, 8, 8))
    assert order == ["conv.weight", "bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    bn = first_use_order(nn.Sequential(nn.BatchNorm2d(3)), (3, 4, 4))
    assert set(bn) == {"0.weight", "0.bias", "0.running_mean", "0.running_var", "0.num_batches_tracked"}


def test_a_model_that_cannot_run_on_meta_falls_back_to_registration_order():
    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

        def forward(self, x):
            if x.sum().item() > 1e9:  # needs real data: fails on the meta device
                x = x * 0
            return self.bn(self.conv(x))

    reference = randomise(DataDependent())
    assert first_use_order(reference, (3, 6, 6)) is None
    # The spec's side must fall back too, or its BatchNorm's tensors (num_batches_tracked first when traced)
    # would meet the reference's in registration order.
    model = transfer(specc.loads("conv 3x3 4 -> bn", input_shape=(3, 6, 6)).build(), reference, input_shape=(3, 6, 6))
    for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b)
