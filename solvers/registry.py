"""One registry of impurity solvers: ``solve(name, model, **options) -> SolverResult`` and
``solve_many(name, models, **options) -> list[SolverResult]``.

A solver is a function ``f(model: AndersonModel, **options) -> SolverResult``. Solvers inside
``solvers`` register themselves on import; packages built on top (e.g. ``mldmft``'s network solver)
call :func:`register_solver` without any edit here. A solver that can treat many models at once
also registers a batch function ``batch(models, **options) -> list[SolverResult]``
(:func:`supports_batch`); :func:`solve_many` uses it, or else loops over the models.

:func:`check_options` refuses options a solver cannot take (unknown or missing names, wrong
types, values the solver's own checks reject) before any work, e.g. before a database run.
:func:`solver_identity` names what besides its options decides a solver's results (e.g. the
bytes of a network's model file), so that stored results are not resumed with another one.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
import re
import time
import typing
from typing import Any, Callable, Mapping, Sequence

from ._checks import check_type
from .model import AndersonModel
from .result import SolverResult
from .threads import limit_threads

__all__ = ["register_solver", "solve", "solve_many", "supports_batch", "available_solvers",
           "get_solver", "check_options", "solver_identity", "UnknownOptionError"]

SolverFunction = Callable[..., SolverResult]
BatchFunction = Callable[..., "list[SolverResult]"]
OptionCheck = Callable[[dict], None]
IdentityHook = Callable[[dict], dict]
_REGISTRY: dict[str, SolverFunction] = {}
_CHECKS: dict[str, OptionCheck] = {}
_IDENTITIES: dict[str, IdentityHook] = {}
_BATCHES: dict[str, BatchFunction] = {}


def register_solver(name: str, func: SolverFunction | None = None, *, replace: bool = False,
                    check: OptionCheck | None = None, identity: IdentityHook | None = None,
                    batch: BatchFunction | None = None):
    """Register ``func`` under ``name`` (usable as a decorator).

    ``check(options)`` (optional) validates the options without solving a model and raises
    ``ValueError`` naming a bad one; :func:`check_options` uses it instead of its probe solve
    (for solvers whose probe would not be cheap or would need a particular model).
    ``identity(options)`` (optional): see :func:`solver_identity`.
    ``batch(models, **options) -> list[SolverResult]`` (optional) solves a sequence of models at
    once, with the same options as ``func`` and results equal to ``[func(m, **options) for m in
    models]``; :func:`solve_many` calls it.

    Raises ``ValueError`` if the name is taken and ``replace`` is false.
    """
    def deco(f: SolverFunction) -> SolverFunction:
        if not replace and name in _REGISTRY and _REGISTRY[name] is not f:
            raise ValueError(f"a solver named {name!r} is already registered")
        _REGISTRY[name] = f
        for table, hook in ((_CHECKS, check), (_IDENTITIES, identity), (_BATCHES, batch)):
            if hook is not None:
                table[name] = hook
            else:
                table.pop(name, None)
        return f

    return deco if func is None else deco(func)


def solver_identity(name: str, options: Mapping[str, Any] | None = None) -> dict:
    """What, besides ``options``, decides the results of solver ``name`` -- ``{}`` for a solver
    defined by its code and options alone; for a network, e.g. ``{"checkpoint_sha256": ...}``.
    Stored with results (a DMFT sweep's plan) so that a file written with another model is not
    resumed as if it were this one's.

    >>> solver_identity("ipt")
    {}
    """
    hook = _IDENTITIES.get(name)
    return {} if hook is None else dict(hook(dict(options or {})))


def supports_batch(name: str) -> bool:
    """Whether solver ``name`` registered a batch function (:func:`solve_many` then treats the
    whole batch at once instead of looping over ``solve``); ``ValueError`` for an unknown name.

    >>> supports_batch("ipt"), supports_batch("ed")
    (True, False)
    """
    get_solver(name)
    return name in _BATCHES


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

    The options are checked first, cheaply (unknown names with the closest known one, wrong
    types, missing required ones: the first steps of :func:`check_options`, without its probe
    solve); the solver's own checks of the values follow. The solver runs with at most
    :func:`solvers.solver_threads` BLAS/OpenMP threads (default 1; ``MLDMFT_SOLVER_THREADS``,
    :func:`solvers.set_solver_threads`).

    Args:
        name: registry name, e.g. ``"ed"``.
        model: the impurity model.
        **options: solver options (see each solver's docstring).

    Returns:
        The solver's :class:`SolverResult`, with ``wall_time`` filled in.

    Raises:
        ValueError: one line naming an unknown solver or a bad option (an unknown option name
            raises :class:`UnknownOptionError`, a ``ValueError`` that is also the
            ``TypeError`` Python raises for an unexpected keyword argument).
        TypeError: ``model`` is not an :class:`AndersonModel`.

    Example:
        >>> from solvers import AndersonModel, solve
        >>> m = AndersonModel(U=0.0, eps_d=0.0, beta=10.0, bath_eps=[0.0], bath_v=[0.5])
        >>> round(solve("ed", m).density, 12)
        1.0
        >>> solve("ed", m, cutof=1e-8)
        Traceback (most recent call last):
        ...
        solvers.UnknownOptionError: solver 'ed' has no option 'cutof' (did you mean 'cutoff'?)
    """
    func = get_solver(name)
    if not isinstance(model, AndersonModel):
        raise TypeError(f"model must be an AndersonModel, got {type(model).__name__}")
    _check_names_and_types(name, func, options)
    _check_required(name, func, options)
    t0 = time.perf_counter()
    with limit_threads():
        result = func(model, **options)
    return dataclasses.replace(result, wall_time=time.perf_counter() - t0)


def solve_many(name: str, models: Sequence[AndersonModel], **options: Any) -> list[SolverResult]:
    """Solve every model of ``models`` with solver ``name`` and the same ``options``.

    The name, every model and the options (unknown names, wrong types, missing required ones:
    the first steps of :func:`check_options`, without its probe solve) are checked once, before
    any work. Thread limits as in :func:`solve`. A solver that registered a batch function (:func:`supports_batch`: ``ipt``,
    ``hubbard_i``) treats the whole batch at once; the others are called model by model. The
    results equal ``[solve(name, m, **options) for m in models]`` (``ipt`` and ``hubbard_i``:
    to ``1e-12``, tested on random batches).

    Args:
        name: registry name, e.g. ``"ipt"``.
        models: the impurity models (any sequence; may be empty).
        **options: solver options shared by every model.

    Returns:
        One :class:`SolverResult` per model, in order; each ``wall_time`` is the wall time of the
        whole call divided by the number of models. ``[]`` for no models.

    Raises:
        ValueError: one line naming an unknown solver, a model that is not an
            :class:`AndersonModel` (by its index) or a bad option.

    Example:
        >>> from solvers import AndersonModel, solve_many
        >>> ms = [AndersonModel(U=u, eps_d=-u / 2, beta=10.0, bath_eps=[-0.5, 0.5],
        ...                     bath_v=[0.5, 0.5]) for u in (1.0, 2.0)]
        >>> [r.density for r in solve_many("ipt", ms)]
        [1.0, 1.0]
    """
    func = get_solver(name)
    if isinstance(models, (AndersonModel, str, bytes, Mapping)) or not isinstance(models,
                                                                                 Sequence):
        raise ValueError(f"solve_many: models must be a sequence of AndersonModel, got "
                         f"{type(models).__name__}")
    models = list(models)
    for i, model in enumerate(models):
        if not isinstance(model, AndersonModel):
            raise ValueError(f"solve_many: models[{i}] must be an AndersonModel, got "
                             f"{type(model).__name__}")
    _check_names_and_types(name, func, options)
    _check_required(name, func, options)
    if not models:
        return []
    t0 = time.perf_counter()
    batch = _BATCHES.get(name)
    with limit_threads():
        if batch is not None:
            results = list(batch(models, **options))
        else:
            results = [func(model, **options) for model in models]
    if len(results) != len(models):
        raise RuntimeError(f"solver {name!r}: its batch function returned {len(results)} "
                           f"results for {len(models)} models")
    per_model = (time.perf_counter() - t0) / len(models)
    return [dataclasses.replace(r, wall_time=per_model) for r in results]


#: Model solved by :func:`check_options` to run a solver's own option checks: one bath site,
#: off half filling (every branch of IPT's set-up), milliseconds for every shipped solver.
_PROBE_MODEL = dict(U=1.0, eps_d=-0.3, beta=10.0, bath_eps=[0.2], bath_v=[0.5])


@functools.lru_cache(maxsize=256)
def _parameters(func: SolverFunction) -> tuple[dict[str, inspect.Parameter], bool]:
    """Option parameters of a solver (all but the model) and whether it takes ``**options``
    (cached: :func:`solve` checks every call's options)."""
    params = list(inspect.signature(func).parameters.values())[1:]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    named = {p.name: p for p in params
             if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return named, var_kw


def _all_option_names() -> set[str]:
    return {n for f in _REGISTRY.values() for n in _parameters(f)[0]}


class UnknownOptionError(ValueError, TypeError):
    """A solver was given an option it does not have: a ``ValueError`` naming it (and the
    closest known name), also a ``TypeError`` as Python's own error for an unexpected keyword
    argument is."""


UnknownOptionError.__module__ = "solvers"


def _unknown(name: str, key: str, known: set[str]) -> UnknownOptionError:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return UnknownOptionError(f"solver {name!r} has no option {key!r}{hint}")


@functools.lru_cache(maxsize=256)
def _type_hints(func: SolverFunction) -> dict[str, Any]:
    """The resolved annotations of a solver (cached)."""
    try:
        return typing.get_type_hints(func)
    except Exception:  # an annotation that does not resolve: no type checks
        return {}


def _check_names_and_types(name: str, func: SolverFunction, options: Any) -> None:
    """Unknown option names (with the closest known one) and values of the wrong type (against
    the solver's annotations): one-line ``ValueError``; cheap (no model is solved)."""
    if not isinstance(options, Mapping):
        raise ValueError(f"solver {name!r}: options must be a mapping of names to values, "
                         f"got {options!r}")
    params, var_kw = _parameters(func)
    for key in options:
        if key not in params and not var_kw:
            raise _unknown(name, key, set(params))
    hints = _type_hints(func)
    for key, value in options.items():
        if key in hints:
            check_type(f"solver {name!r}: option {key!r}", value, hints[key])


def _check_required(name: str, func: SolverFunction, options: Mapping[str, Any]) -> None:
    params, _ = _parameters(func)
    missing = [k for k, p in params.items() if p.default is p.empty and k not in options]
    if missing:
        raise ValueError(f"solver {name!r} needs option(s) {', '.join(map(repr, missing))}")


def check_options(name: str, options: Mapping[str, Any]) -> SolverResult | None:
    """Refuse ``options`` that solver ``name`` cannot take, before any work.

    In order: unknown option names (with the closest known name), values of the wrong type
    (against the solver's annotations: ``n_iw=2.5``, ``cutoff="abc"``, ``use_symmetry="no"``),
    then the values themselves: the solver's registered ``check``, or else a probe solve of a
    one-bath-site model, which runs the solver's own checks (``n_iw=0``, ``cutoff=2``) and any
    option it forwards (``ed_fit`` -> ``ed``); finally missing required options.

    Returns:
        The probe's :class:`SolverResult` (sizes of ``g_iw``, ``g_l`` the options give), or
        ``None`` for a solver with its own ``check``.

    Raises:
        ValueError: one line naming the solver and the bad option.

    Example:
        >>> check_options("ed", {"cutof": 1e-8})
        Traceback (most recent call last):
        ...
        solvers.UnknownOptionError: solver 'ed' has no option 'cutof' (did you mean 'cutoff'?)
        >>> check_options("ipt", {"n_iw": 512}).g_iw.size
        512
    """
    func = get_solver(name)
    _check_names_and_types(name, func, options)
    options = dict(options)
    if name in _CHECKS:
        _CHECKS[name](options)
    _check_required(name, func, options)
    if name in _CHECKS:
        return None
    try:
        return func(AndersonModel(**_PROBE_MODEL), **options)
    except TypeError as err:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(err))
        if bad:
            raise _unknown(name, bad.group(1), _all_option_names()) from None
        raise ValueError(f"solver {name!r}: bad option value(s) in {options} ({err})") from None
    except Exception as err:
        raise ValueError(f"solver {name!r}: {err}") from None
