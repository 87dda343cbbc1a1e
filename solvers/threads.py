"""How many threads the BLAS/OpenMP libraries may use while a solver runs.

The solvers multiply small dense and sparse matrices (a few hundred rows): there, the threads of
a multithreaded BLAS cost more than they save, and on a busy machine far more (an 8-site ED
solve measured 35-60x slower with two OpenBLAS threads on two loaded cores than with one). So
:func:`solvers.solve` and :func:`solvers.solve_many` run every solver inside
``threadpoolctl``'s limit of :func:`solver_threads` threads (default 1), whatever
``OMP_NUM_THREADS`` says, and restore the libraries' setting afterwards.

Choose the number with the environment variable ``MLDMFT_SOLVER_THREADS`` (read on import: a
positive integer, or ``none`` to leave the libraries' own setting) or, at run time, with
:func:`set_solver_threads`.

Example:
    >>> from solvers import set_solver_threads, solver_threads
    >>> previous = set_solver_threads(2)
    >>> solver_threads()
    2
    >>> _ = set_solver_threads(previous)
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

__all__ = ["set_solver_threads", "solver_threads", "limit_threads", "ENV_VAR"]

#: Environment variable with the default thread count of the solvers.
ENV_VAR = "MLDMFT_SOLVER_THREADS"


def _parse(value: Any, source: str) -> int | None:
    """A thread count: a positive integer, or ``None`` (no limit)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
        return None
    number = value
    if isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    ok = isinstance(number, int) and not isinstance(number, bool) and number >= 1
    if not ok:
        raise ValueError(f"{source} must be a positive integer (threads) or None, got {value!r}")
    return number


_threads: int | None = _parse(os.environ.get(ENV_VAR, "1"), f"environment variable {ENV_VAR}")
_controller: Any = None
_modules_seen = -1


def solver_threads() -> int | None:
    """The thread limit of the solvers (``None``: the libraries' own setting)."""
    return _threads


def set_solver_threads(n: int | None) -> int | None:
    """Let the solvers' BLAS/OpenMP libraries use ``n`` threads (``None``: no limit, the
    libraries' own setting); returns the previous value.

    Example:
        >>> previous = set_solver_threads(None)
        >>> _ = set_solver_threads(previous)
    """
    global _threads
    previous, _threads = _threads, _parse(n, "set_solver_threads: n")
    return previous


def _thread_controller() -> Any:
    """A ``threadpoolctl.ThreadpoolController`` of the loaded libraries; rebuilt when modules
    were imported since (they may have loaded another BLAS or OpenMP runtime). Building one
    scans the loaded libraries (about 1 ms); using it costs microseconds."""
    global _controller, _modules_seen
    if _controller is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _modules_seen = len(sys.modules)
    return _controller


_depth = 0    # limit_threads blocks open (a solver calling solve_many inside its own block)


@contextlib.contextmanager
def limit_threads() -> Iterator[None]:
    """Run the block with at most :func:`solver_threads` BLAS/OpenMP threads (nothing is
    changed when it is ``None``); the previous limits are restored on exit. A block opened
    inside another keeps the outer block's limit (setting the same limit again costs ~0.2 ms:
    the ``ml`` solver calls its cheap solvers inside its own block)."""
    global _depth
    if _threads is None or _depth:
        yield
        return
    with _thread_controller().limit(limits=_threads):
        _depth += 1
        try:
            yield
        finally:
            _depth -= 1
