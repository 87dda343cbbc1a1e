"""Typed solver options: one frozen dataclass per solver, validated when it is built.

Every registered solver has an options class, a subclass of :class:`SolverOptions` (``EDOptions``,
``IPTOptions``, ``NCAOptions``, ...; a solver registered without one gets a class built from its
signature, :func:`options_from_signature`). Building it is checking the options:

1. :meth:`SolverOptions.build` refuses names the class does not have (with the closest known
   one) and missing required ones;
2. ``__post_init__`` checks every value against its field's type (:func:`solvers.check_type`: a
   bool is not an integer, a float is not an integer, a string is not a number: ``cutoff="1e-8"``
   is refused, configs and ``--opt`` pass numbers parsed by YAML) and stores numbers as plain
   ``int``/``float``;
3. :meth:`SolverOptions.check` (each solver's own) refuses values out of range.

Each failure is a one-line ``ValueError`` naming the option. Checks that need the model (a bath
too large for ED, a Matsubara mesh that stops below the model's energies) stay in the solvers.

Example:
    >>> from solvers.ipt import IPTOptions
    >>> IPTOptions(n_iw=512).n_iw
    512
    >>> IPTOptions.build("ipt", {"mixing": 2.0})
    Traceback (most recent call last):
    ...
    ValueError: solver 'ipt': mixing must lie in (0, 1], got 2.0
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import inspect
import typing
from typing import Any, Callable, Mapping, TypeVar

import numpy as np

from ._checks import check_type

__all__ = ["SolverOptions", "UnknownOptionError", "options_from_signature"]

_T = TypeVar("_T", bound="SolverOptions")


class UnknownOptionError(ValueError, TypeError):
    """A solver was given an option it does not have: a ``ValueError`` naming it (and the
    closest known name), also a ``TypeError`` as Python's own error for an unexpected keyword
    argument is."""


UnknownOptionError.__module__ = "solvers"


def unknown_option(solver: str, key: str, known: Any) -> UnknownOptionError:
    """The error for option ``key`` that solver ``solver`` does not have (with the closest of
    ``known``)."""
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownOptionError(f"solver {solver!r} has no option {key!r}{hint}")


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> dict[str, Any]:
    """Resolved annotations of the fields of an options class (cached)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: no type checks for it
        return {}


def _plain(value: Any, tp: Any) -> Any:
    """``value`` as a plain Python number where the field holds numbers: numpy scalars become
    ``int``/``float``, an integer given for a float field a ``float``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    args = typing.get_args(tp) if typing.get_args(tp) else (tp,)
    if isinstance(value, (int, np.integer)):
        return int(value) if int in args or float not in args else float(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """Base of every solver's options (module docstring); subclasses are frozen dataclasses
    whose fields are the options, with their types and defaults."""

    def __post_init__(self) -> None:
        hints = _field_types(type(self))
        for f in dataclasses.fields(self):
            if f.name not in hints:
                continue
            value = check_type(f"option {f.name!r}", getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, _plain(value, hints[f.name]))
        self.check()

    def check(self) -> None:
        """Refuse values out of range (one-line ``ValueError`` naming the option); each solver's
        options class says what it accepts."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (the fields set on construction)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def build(cls: type[_T], solver: str, options: Mapping[str, Any] | None = None) -> _T:
        """The options of solver ``solver`` from a mapping of names to values.

        Raises:
            ValueError: one line naming the solver and the option: an unknown name
                (:class:`UnknownOptionError`, with the closest known name), a missing required
                one, a value of the wrong type or out of range.

        Example:
            >>> from solvers.ed.solver import EDOptions
            >>> EDOptions.build("ed", {"cutof": 1e-8})
            Traceback (most recent call last):
            ...
            solvers.UnknownOptionError: solver 'ed' has no option 'cutof' (did you mean 'cutoff'?)
        """
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise ValueError(f"solver {solver!r}: options must be a mapping of names to values, "
                             f"got {options!r}")
        names = cls.names()
        for key in options:
            if key not in names:
                raise unknown_option(solver, key, names)
        required = [f.name for f in dataclasses.fields(cls) if f.init
                    and f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [k for k in required if k not in options]
        if missing:
            raise ValueError(f"solver {solver!r} needs option(s) {', '.join(map(repr, missing))}")
        try:
            return cls(**options)
        except UnknownOptionError:
            raise
        except ValueError as err:
            raise ValueError(f"solver {solver!r}: {err}") from None

    def result_sizes(self) -> tuple[int, int] | None:
        """``(n_iw, n_l)``: the Matsubara frequencies of ``g_iw`` and the Legendre coefficients
        of ``g_l`` of a result for a model with a discrete bath, or ``None`` where the options
        alone do not say (a solver built from its signature, the ``ml`` solver)."""
        return None

    def kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of the solver's function."""
        return {name: getattr(self, name) for name in self.names()}


#: Options classes built from solvers' signatures (:func:`options_from_signature`).
_FROM_SIGNATURE: dict[Callable, type[SolverOptions]] = {}


def options_from_signature(func: Callable) -> tuple[type[SolverOptions], bool]:
    """The options class of a solver registered without one: a field per keyword parameter
    of ``func`` after the model (its annotation and default; no default: required), and whether
    ``func`` also takes ``**options`` (names the class does not know are then passed on
    unchecked). Cached per function.

    Example:
        >>> def toy(model, *, scale: float = 1.0): ...
        >>> cls, open_ = options_from_signature(toy)
        >>> cls(scale=2).scale, open_
        (2.0, False)
    """
    params = list(inspect.signature(func).parameters.values())[1:]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    cls = _FROM_SIGNATURE.get(func)
    if cls is None:
        try:
            hints = typing.get_type_hints(func)
        except Exception:
            hints = {}
        fields = []
        for p in params:
            if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
                continue
            if p.default is p.empty:
                spec = dataclasses.field()
            elif isinstance(p.default, (list, dict, set)):
                spec = dataclasses.field(default_factory=functools.partial(copy.copy, p.default))
            else:
                spec = dataclasses.field(default=p.default)
            fields.append((p.name, hints.get(p.name, Any), spec))
        name = f"{getattr(func, '__name__', 'solver')}_options"
        cls = dataclasses.make_dataclass(name, fields, bases=(SolverOptions,), frozen=True,
                                         kw_only=True)
        _FROM_SIGNATURE[func] = cls
    return cls, var_kw
