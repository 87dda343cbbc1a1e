"""One registry of impurity solvers: ``solve(name, model, **options) -> SolverResult``.

A solver is a function ``f(model: AndersonModel, **options) -> SolverResult``. Solvers inside
``solvers`` register themselves on import; packages built on top (e.g. ``mldmft``'s network solver)
call :func:`register_solver` without any edit here.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

from .model import AndersonModel
from .result import SolverResult

__all__ = ["register_solver", "solve", "available_solvers", "get_solver"]

SolverFunction = Callable[..., SolverResult]
_REGISTRY: dict[str, SolverFunction] = {}


def register_solver(name: str, func: SolverFunction | None = None, *, replace: bool = False):
    """Register ``func`` under ``name`` (usable as a decorator).

    Raises ``ValueError`` if the name is taken and ``replace`` is false.
    """
    def deco(f: SolverFunction) -> SolverFunction:
        if not replace and name in _REGISTRY and _REGISTRY[name] is not f:
            raise ValueError(f"a solver named {name!r} is already registered")
        _REGISTRY[name] = f
        return f

    return deco if func is None else deco(func)


def available_solvers() -> list[str]:
    """Sorted names of every registered solver."""
    return sorted(_REGISTRY)


def get_solver(name: str) -> SolverFunction:
    """The function registered as ``name``; ``ValueError`` lists the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown solver {name!r}; available: {', '.join(available_solvers())}"
                         ) from None


def solve(name: str, model: AndersonModel, **options: Any) -> SolverResult:
    """Solve ``model`` with the solver registered as ``name``.

    Args:
        name: registry name, e.g. ``"ed"``.
        model: the impurity model.
        **options: solver options (see each solver's docstring); unknown options raise
            ``TypeError`` naming them.

    Returns:
        The solver's :class:`SolverResult`, with ``wall_time`` filled in.

    Example:
        >>> from solvers import AndersonModel, solve
        >>> m = AndersonModel(U=0.0, eps_d=0.0, beta=10.0, bath_eps=[0.0], bath_v=[0.5])
        >>> round(solve("ed", m).density, 12)
        1.0
    """
    func = get_solver(name)
    if not isinstance(model, AndersonModel):
        raise TypeError(f"model must be an AndersonModel, got {type(model).__name__}")
    t0 = time.perf_counter()
    result = func(model, **options)
    return dataclasses.replace(result, wall_time=time.perf_counter() - t0)
