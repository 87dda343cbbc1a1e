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

__all__ = sorted(_LAZY) + ["__version__", "load_solver_module"]


#: Solvers that live in mldmft (they need torch) and register themselves when imported.
_SOLVER_MODULES = {"ml": "mldmft.ml"}


def load_solver_module(name: str) -> None:
    """Import the module that registers solver ``name`` if it lives in mldmft (e.g. ``"ml"``);
    a no-op for the solvers of the ``solvers`` package."""
    if name in _SOLVER_MODULES:
        import_module(_SOLVER_MODULES[name])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    if name == "ml":
        return import_module("mldmft.ml")
    raise AttributeError(f"module 'mldmft' has no attribute {name!r}")
