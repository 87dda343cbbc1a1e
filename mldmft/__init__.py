"""mldmft: machine-learning-accelerated DMFT built on the ``solvers`` package.

Layers (imports run one way): ``solvers`` (numpy/scipy Green's-function toolkit and impurity
solvers) <- ``mldmft`` (I/O, databases, networks, DMFT loop, command line) <- ``train.py`` /
``dmft_loop.py``. Submodules load lazily so that ``mldmft --help`` starts fast.
"""

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_model": "mldmft.modelfile",
    "write_result": "mldmft.results_io",
    "read_result": "mldmft.results_io",
    "plot_result": "mldmft.plotting",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mldmft' has no attribute {name!r}")
