"""The PyTorch module a layer builds, as the Python text of its constructor, without importing torch.

The registry's `build` functions need `torch.nn` itself; the language server must stay torch-free,
so each kind's constructor call is spelled out here from the same resolved arguments. `nn` is
`torch.nn` and `modules` is `specc.runtime.modules` (the few modules torch lacks).
tests/test_lsp.py evaluates every text with torch and compares the module with the registry's.
"""
from __future__ import annotations

from typing import Callable

from ...lang.registry import Args

SIMPLE = {"relu": "ReLU", "relu6": "ReLU6", "sigmoid": "Sigmoid", "tanh": "Tanh", "gelu": "GELU",
          "silu": "SiLU", "identity": "Identity", "hardswish": "Hardswish", "hardsigmoid": "Hardsigmoid",
          "mish": "Mish", "flatten": "Flatten"}


def _call(name: str, *positional, **keywords) -> str:
    """`name(a, b, k=v)`, keywords whose value is None left out."""
    words = [repr(v) for v in positional] + [f"{k}={v!r}" for k, v in keywords.items() if v is not None]
    return f"{name}({', '.join(words)})"


def _unless(value, default):
    """`value`, or None (left out) when it is the constructor's default."""
    return None if value == default else value


def _conv(a: Args, s: tuple) -> str:
    return _call("nn.Conv2d", s[0], a.channels, kernel_size=a.kernel, stride=a.stride,
                 padding=_unless(a.padding, (0, 0)), dilation=_unless(a.dilation, (1, 1)),
                 groups=_unless(a.groups, 1), bias=_unless(a.bias, True))


def _maxpool(a: Args, s: tuple) -> str:
    return _call("nn.MaxPool2d", kernel_size=a.kernel, stride=a.stride or a.kernel, padding=a.padding,
                 dilation=a.dilation, ceil_mode=_unless(a.ceil, False))


def _avgpool(a: Args, s: tuple) -> str:
    return _call("nn.AvgPool2d", kernel_size=a.kernel, stride=a.stride or a.kernel, padding=a.padding,
                 ceil_mode=_unless(a.ceil, False), count_include_pad=_unless(a.count_include_pad, True))


def _bn(a: Args, s: tuple) -> str:
    return _call("nn.BatchNorm2d" if len(s) == 3 else "nn.BatchNorm1d", s[0], eps=a.eps, momentum=a.momentum,
                 affine=_unless(a.affine, True), track_running_stats=_unless(a.stats, True))


def _ln(a: Args, s: tuple) -> str:
    name = "modules.LayerNorm2d" if len(s) == 3 else "nn.LayerNorm"
    return _call(name, s[0], eps=a.eps, elementwise_affine=_unless(a.affine, True))


def _scale(a: Args, s: tuple) -> str:
    return _call("modules.Scale", (s[0], 1, 1) if len(s) == 3 else (s[0],), a.init)


MODULE_TEXT: dict[str, Callable[[Args, tuple], str]] = {
    "conv": _conv,
    "maxpool": _maxpool,
    "avgpool": _avgpool,
    "adaptiveavgpool": lambda a, s: _call("nn.AdaptiveAvgPool2d", a.size),
    "adaptivemaxpool": lambda a, s: _call("nn.AdaptiveMaxPool2d", a.size),
    "gap": lambda a, s: _call("nn.AdaptiveAvgPool2d", 1),
    "fc": lambda a, s: _call("nn.Linear", s[0], a.features, bias=_unless(a.bias, True)),
    "bn": _bn,
    "lrn": lambda a, s: _call("nn.LocalResponseNorm", a.size, alpha=a.alpha, beta=a.beta, k=a.k),
    "dropout": lambda a, s: _call("nn.Dropout", p=a.p),
    "leakyrelu": lambda a, s: _call("nn.LeakyReLU", negative_slope=a.slope),
    "softmax": lambda a, s: _call("nn.Softmax", dim=1),
    "elu": lambda a, s: _call("nn.ELU", alpha=a.alpha),
    "softplus": lambda a, s: _call("nn.Softplus", beta=a.beta, threshold=a.threshold),
    "hardtanh": lambda a, s: _call("nn.Hardtanh", min_val=a.min, max_val=a.max),
    "prelu": lambda a, s: _call("nn.PReLU", num_parameters=s[0] if a.per_channel else 1, init=a.init),
    "shuffle": lambda a, s: _call("modules.ChannelShuffle", a.groups),
    "ln": _ln,
    "scale": _scale,
    "droppath": lambda a, s: _call("modules.DropPath", a.p),
    **{kind: (lambda a, s, cls=cls: f"nn.{cls}()") for kind, cls in SIMPLE.items()},
}


def module_text(kind: str, args: Args, in_shape: tuple) -> str | None:
    """The constructor call building this layer, or None for a kind this table does not know yet."""
    spell = MODULE_TEXT.get(kind)
    return spell(args, tuple(in_shape)) if spell is not None else None
