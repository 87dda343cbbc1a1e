"""Argument validation shared by the toolkit and the solvers (private).

Every check raises ``ValueError`` naming the argument, so a bad option is reported the same way
by every solver.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["check_int", "check_positive", "check_fraction", "check_iw_array", "check_poles"]


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer (not a bool) in ``[low, high]``.

    Example:
        >>> check_int("n_iw", 16, 1)
        16
        >>> check_int("n_iw", 0, 1)
        Traceback (most recent call last):
        ...
        ValueError: n_iw must be an integer >= 1, got 0
    """
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a finite real number ``> 0`` (a tolerance, a step).

    Example:
        >>> check_positive("tol", 1e-10)
        1e-10
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a ``float`` if it is a real number in ``(0, 1]`` (a mixing, a share).

    Example:
        >>> check_fraction("mixing", 0.5)
        0.5
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not 0 < value <= 1:
        raise ValueError(f"{name} must lie in (0, 1], got {value!r}")
    return float(value)


def check_poles(weights: Any, energies: Any) -> tuple[np.ndarray, np.ndarray]:
    """Weights and energies of a pole sum as float arrays of one shape.

    Example:
        >>> check_poles([1.0], [0.5])
        (array([1.]), array([0.5]))
    """
    w = np.asarray(weights, dtype=float)
    e = np.asarray(energies, dtype=float)
    if w.shape != e.shape:
        raise ValueError(f"weights {w.shape} and energies {e.shape} must have the same shape")
    return w, e


def check_iw_array(values: Any, name: str = "g_iw") -> np.ndarray:
    """``values`` as a 1-d complex array (a function on the Matsubara mesh, ``n >= 0``).

    Example:
        >>> check_iw_array([1j, 0.5j]).dtype
        dtype('complex128')
    """
    arr = np.asarray(values, dtype=complex)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    return arr
