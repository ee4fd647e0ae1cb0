"""Tools for testing specs in a user's own project: the ones specc's own suite uses.

    from hypothesis import given
    from specc.testing import assert_matches_torch, input_sizes, specs
    import specc

    net = specc.load("models/mynet.cnn")
    assert_matches_torch(net)                  # static shapes, params, MACs == a real forward, layer by layer

    @given(input_sizes(net))                   # sizes the spec accepts (specc check --sizes)
    def test_mynet_at_any_size(shape):
        assert_matches_torch(net, shape)

    @given(specs())                            # random valid specs built from the layer registry
    def test_my_tool_reads_any_spec(text):
        my_tool(specc.loads(text))

`pytest --specc DIR` (the plugin in specc/testing/plugin.py) runs such checks on every spec under DIR.
Nothing is imported until it is used: hypothesis for the strategies, torch for assert_matches_torch.
"""
from __future__ import annotations

__all__ = ["assert_matches_torch", "at_input", "input_sizes", "specs"]

_HOMES = {"assert_matches_torch": "torch_check", "at_input": "torch_check",
          "input_sizes": "strategies", "specs": "strategies"}


def __getattr__(name: str):
    # PEP 562: `from specc.testing import specs` imports hypothesis only then, and
    # assert_matches_torch imports torch only then, so the pytest plugin stays cheap.
    if name not in _HOMES:
        raise AttributeError(f"module 'specc.testing' has no attribute {name!r}")
    from importlib import import_module
    value = getattr(import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
