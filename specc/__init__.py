"""specc: a declarative model-spec compiler for convolutional networks.

    import specc
    net = specc.load("specs/lenet.cnn")
    net.output_shape, net.param_count, net.macs
    module = net.build()      # torch is imported only here
"""
from .lang.errors import SpecError
from .network import Network, load, loads

__all__ = ["Network", "SpecError", "load", "loads"]
__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    """`%load_ext specc` in IPython or Jupyter: adds the `%%cnn NAME` cell magic (specc.tools.notebook)."""
    from .tools.notebook import register
    register(ipython)
