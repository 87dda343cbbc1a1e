"""Argument validation shared by the toolkit and the solvers (private).

Every check raises ``ValueError`` naming the argument, so a bad option is reported the same way
by every solver.
"""

from __future__ import annotations

import difflib
import math
import os
import types
import typing
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = ["check_int", "check_positive", "check_fraction", "check_iw_array", "check_poles",
           "check_type", "describe_type", "check_keys"]


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


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _matches(value: Any, tp: Any) -> bool:
    """Whether ``value`` has the type ``tp`` (a resolved annotation); annotations this does not
    know (``Any``, classes of other packages' objects, ...) accept every value."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, (bool, np.bool_))
    if tp is int:
        return _is_int(value)
    if tp is float:
        return _is_int(value) or isinstance(value, (float, np.floating))
    if tp is str:
        return isinstance(value, str)
    if origin is tuple or origin is list or tp in (tuple, list):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            return False
        args = typing.get_args(tp)
        if not args:
            return True
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    if origin is dict or tp is dict:
        return isinstance(value, Mapping)
    if isinstance(tp, type) and issubclass(tp, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    return True


def describe_type(tp: Any) -> str:
    """Words for a resolved annotation, e.g. ``int | None`` -> ``"an integer or null"``.

    Example:
        >>> describe_type(int | None)
        'an integer or null'
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(describe_type(a) for a in typing.get_args(tp)))
    if origin in (tuple, list) or tp in (tuple, list):
        args = typing.get_args(tp)
        if not args:
            return "a list"
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {describe_type(args[0]).split(' ', 1)[-1]}s"
        if len(set(args)) == 1:
            return f"a list of {len(args)} {describe_type(args[0]).split(' ', 1)[-1]}s"
        return f"a list of {len(args)} values"
    names = {type(None): "null", bool: "true or false", int: "an integer", float: "a number",
             str: "a string", dict: "a mapping"}
    if isinstance(tp, type) and issubclass(tp, os.PathLike):
        return "a path"
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def check_type(name: str, value: Any, tp: Any) -> Any:
    """``value`` unchanged if it has the type ``tp`` (a resolved annotation such as
    ``int | None``); otherwise ``ValueError`` naming ``name`` and the expected type.

    Integers are accepted where a number is expected; a bool is neither an integer nor a number,
    a string is never a bool, a float never an integer.

    Example:
        >>> check_type("n_iw", 512, int)
        512
        >>> check_type("n_iw", 2.5, int)
        Traceback (most recent call last):
        ...
        ValueError: n_iw must be an integer, got 2.5
    """
    if not _matches(value, tp):
        raise ValueError(f"{name} must be {describe_type(tp)}, got {value!r}")
    return value


def check_keys(data: Mapping[str, Any], allowed: Iterable[str], required: Iterable[str] = (),
               *, prefix: str = "", what: str = "key", lead: str = "") -> None:
    """Refuse keys of ``data`` outside ``allowed`` and ``required`` keys it lacks: a one-line
    ``ValueError`` ``<lead>unknown <what> '<prefix><key>' (did you mean ...?); allowed: ...``
    (the closest allowed key suggested when one key is unknown), or
    ``<lead><what> '<prefix><key>' is missing``.

    Example:
        >>> check_keys({"beta": 10.0, "U": 2.0}, ("U", "beta", "eps_d"), ("U", "beta"))
        >>> check_keys({"betta": 10.0}, ("U", "beta"), what="model field")
        Traceback (most recent call last):
        ...
        ValueError: unknown model field 'betta' (did you mean 'beta'?); allowed: U, beta
    """
    allowed = sorted(str(k) for k in allowed)
    unknown = sorted(str(k) for k in data if str(k) not in allowed)
    if unknown:
        names = ", ".join(f"'{prefix}{k}'" for k in unknown)
        close = difflib.get_close_matches(unknown[0], allowed, n=1) if len(unknown) == 1 else []
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise ValueError(f"{lead}unknown {what}{'s' if len(unknown) > 1 else ''} {names}{hint}; "
                         f"allowed: {', '.join(allowed)}")
    missing = [str(k) for k in required if k not in data]
    if missing:
        names = ", ".join(f"'{prefix}{k}'" for k in missing)
        raise ValueError(f"{lead}{what}{'s' if len(missing) > 1 else ''} {names} "
                         f"{'are' if len(missing) > 1 else 'is'} missing")
