"""One registry of impurity solvers: ``solve(name, model, **options) -> SolverResult`` and
``solve_many(name, models, **options) -> list[SolverResult]``.

A solver is a function ``f(model: AndersonModel, **options) -> SolverResult`` with a frozen
dataclass of its options (:class:`solvers.options.SolverOptions`: ``EDOptions``,
``IPTOptions``, ...). Solvers inside ``solvers`` register themselves on import; packages built on
top (e.g. ``mldmft``'s network solver) call :func:`register_solver` without any edit here. A
solver registered without an options class gets one built from its signature
(:func:`solvers.options.options_from_signature`). A solver that can treat many models at once
also registers a batch function ``batch(models, **options) -> list[SolverResult]``
(:func:`supports_batch`); :func:`solve_many` uses it, or else loops over the models. A solver
may also register ``built(models, opts) -> list[SolverResult]``, the same batch taking its
built options object: :func:`solve` and :func:`solve_many` then call it, so that the options
are not checked a second time by the keyword function.

:func:`check_options` builds a solver's options from a mapping, which refuses options it cannot
take (unknown or missing names, wrong types, values out of range) before any work, e.g. before a
database run; :func:`solve` and :func:`solve_many` build them once and pass them on. Built
options are kept per ``(solver, options)`` when every value is hashable (a DMFT loop passes the
same options on every iteration), keyed on each value's type (and those of a tuple's items) as
well as its value (``n_iw=2`` and ``n_iw=2.0`` are different options: the second is refused); a
mapping with an unhashable value (a list) is built every time.
:func:`solver_identity` names what besides its options decides a solver's results (e.g. the
bytes of a network's model file), so that stored results are not resumed with another one.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Mapping, Sequence

from .model import AndersonModel
from .options import SolverOptions, UnknownOptionError, options_from_signature
from .result import SolverResult
from .threads import limit_threads

__all__ = ["register_solver", "solve", "solve_many", "supports_batch", "available_solvers",
           "get_solver", "check_options", "solver_identity", "options_class",
           "UnknownOptionError"]

SolverFunction = Callable[..., SolverResult]
BatchFunction = Callable[..., "list[SolverResult]"]
BuiltBatchFunction = Callable[[Sequence[AndersonModel], SolverOptions], "list[SolverResult]"]
OptionCheck = Callable[[SolverOptions], None]
IdentityHook = Callable[[dict], dict]
_REGISTRY: dict[str, SolverFunction] = {}
_OPTIONS: dict[str, type[SolverOptions]] = {}
_CHECKS: dict[str, OptionCheck] = {}
_IDENTITIES: dict[str, IdentityHook] = {}
_BATCHES: dict[str, BatchFunction] = {}
_BUILT_BATCHES: dict[str, BuiltBatchFunction] = {}
#: Built options per ``(solver, function, options items)`` (:func:`_build`); cleared when a
#: solver is registered, emptied when it holds ``_BUILT_MAX`` entries.
_BUILT: dict[tuple, tuple[SolverOptions, dict[str, Any]]] = {}
_BUILT_MAX = 256


def register_solver(name: str, func: SolverFunction | None = None, *, replace: bool = False,
                    options: type[SolverOptions] | None = None,
                    check: OptionCheck | None = None, identity: IdentityHook | None = None,
                    batch: BatchFunction | None = None,
                    built: BuiltBatchFunction | None = None):
    """Register ``func`` under ``name`` (usable as a decorator).

    ``options`` (optional): the solver's options class, a :class:`SolverOptions` subclass whose
    fields are the keyword options of ``func`` (default: a class built from ``func``'s
    signature, :func:`solvers.options.options_from_signature`). :func:`solve` builds it and calls
    ``func(model, **opts.kwargs())``.
    ``check(opts)`` (optional) is a further check of built options that :func:`check_options`
    runs (e.g. that a file they name exists), one-line ``ValueError``.
    ``identity(options)`` (optional): see :func:`solver_identity`.
    ``batch(models, **options) -> list[SolverResult]`` (optional) solves a sequence of models at
    once, with the same options as ``func`` and results equal to ``[func(m, **options) for m in
    models]``; :func:`solve_many` calls it.
    ``built(models, opts) -> list[SolverResult]`` (optional, with ``options``): the batch
    function taking the built options object ``opts`` (an instance of ``options``) instead of
    keywords, with the same results; :func:`solve` (a batch of one) and :func:`solve_many`
    call it instead of ``func`` and ``batch``, which would build the options again.

    Raises ``ValueError`` if the name is taken and ``replace`` is false, ``options`` is not a
    :class:`SolverOptions` subclass, or ``built`` is given without ``options``.
    """
    if options is not None and not (isinstance(options, type)
                                    and issubclass(options, SolverOptions)):
        raise ValueError(f"register_solver({name!r}): options must be a SolverOptions subclass, "
                         f"got {options!r}")
    if built is not None and options is None:
        raise ValueError(f"register_solver({name!r}): built needs the options class it takes")

    def deco(f: SolverFunction) -> SolverFunction:
        if not replace and name in _REGISTRY and _REGISTRY[name] is not f:
            raise ValueError(f"a solver named {name!r} is already registered")
        _REGISTRY[name] = f
        for table, hook in ((_OPTIONS, options), (_CHECKS, check), (_IDENTITIES, identity),
                            (_BATCHES, batch), (_BUILT_BATCHES, built)):
            if hook is not None:
                table[name] = hook
            else:
                table.pop(name, None)
        _BUILT.clear()
        return f

    return deco if func is None else deco(func)


def options_class(name: str) -> type[SolverOptions]:
    """The options class of solver ``name`` (registered, or built from its signature);
    ``ValueError`` for an unknown name.

    >>> options_class("ipt").__name__
    'IPTOptions'
    """
    func = get_solver(name)
    return _OPTIONS[name] if name in _OPTIONS else options_from_signature(func)[0]


def _build(name: str, options: Any) -> tuple[SolverOptions, dict[str, Any]]:
    """The options of solver ``name`` built from ``options`` and the keyword arguments of its
    function (a solver without an options class that takes ``**options`` gets the names its
    signature does not list as they are)."""
    func = get_solver(name)
    if not isinstance(options, Mapping):
        raise ValueError(f"solver {name!r}: options must be a mapping of names to values, "
                         f"got {options!r}")
    try:
        key = (name, func, tuple(sorted((k, _typed(v)) for k, v in options.items())))
        hash(key)
    except TypeError:    # an unhashable value (or names that do not sort): no caching
        return _build_now(name, func, options)
    hit = _BUILT.get(key)
    if hit is None:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        hit = _BUILT[key] = _build_now(name, func, options)
    return hit[0], dict(hit[1])


def _typed(value: Any) -> tuple:
    """``value`` with its type, and the types of the items of a tuple (``(1, 2)`` and
    ``(1.0, 2.0)`` are equal but need not be equally valid options)."""
    if isinstance(value, tuple):
        return (type(value), tuple(_typed(v) for v in value))
    return (type(value), value)


def _build_now(name: str, func: SolverFunction,
               options: Mapping[str, Any]) -> tuple[SolverOptions, dict[str, Any]]:
    """:func:`_build` without the cache."""
    if name in _OPTIONS:
        opts = _OPTIONS[name].build(name, options)
        return opts, opts.kwargs()
    cls, open_ = options_from_signature(func)
    known = set(cls.names())
    extra = {k: v for k, v in options.items() if k not in known} if open_ else {}
    opts = cls.build(name, {k: v for k, v in options.items() if k not in extra})
    return opts, dict(opts.kwargs(), **extra)


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

    The options are built first (:func:`check_options` without its further ``check``: unknown
    names with the closest known one, wrong types, values out of range) and passed on; the
    solver's checks of the model follow. The solver runs with at most
    :func:`solvers.solver_threads` BLAS/OpenMP threads (default 1; ``MLDMFT_SOLVER_THREADS``,
    :func:`solvers.set_solver_threads`).

    Args:
        name: registry name, e.g. ``"ed"``.
        model: the impurity model.
        **options: solver options (see each solver's docstring and options class).

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
    opts, kwargs = _build(name, options)
    built = _BUILT_BATCHES.get(name)
    t0 = time.perf_counter()
    with limit_threads():
        result = built([model], opts)[0] if built is not None else func(model, **kwargs)
    return dataclasses.replace(result, wall_time=time.perf_counter() - t0)


def solve_many(name: str, models: Sequence[AndersonModel], **options: Any) -> list[SolverResult]:
    """Solve every model of ``models`` with solver ``name`` and the same ``options``.

    The name, every model and the options (built once, as in :func:`solve`) are checked before
    any work. Thread limits as in :func:`solve`. A solver that registered a batch function
    (:func:`supports_batch`: ``ipt``, ``hubbard_i``, ``ml``) treats the whole batch at once; the
    others are called model by model. The results equal ``[solve(name, m, **options) for m in
    models]`` (``ipt`` and ``hubbard_i``: to ``1e-12``, tested on random batches).

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
    opts, kwargs = _build(name, options)
    if not models:
        return []
    t0 = time.perf_counter()
    batch, built = _BATCHES.get(name), _BUILT_BATCHES.get(name)
    with limit_threads():
        if built is not None:
            results = list(built(models, opts))
        elif batch is not None:
            results = list(batch(models, **kwargs))
        else:
            results = [func(model, **kwargs) for model in models]
    if len(results) != len(models):
        raise RuntimeError(f"solver {name!r}: its batch function returned {len(results)} "
                           f"results for {len(models)} models")
    per_model = (time.perf_counter() - t0) / len(models)
    return [dataclasses.replace(r, wall_time=per_model) for r in results]


def check_options(name: str, options: Mapping[str, Any]) -> SolverOptions:
    """The options of solver ``name`` built from ``options``: checking them is building them,
    before any work and without solving a model.

    In order: unknown option names (with the closest known name), missing required ones, values
    of the wrong type (``n_iw=2.5``, ``cutoff="1e-8"``, ``use_symmetry="no"``), values out of
    range (the options class's ``check``: ``n_iw=0``, ``cutoff=2``; ``ed_fit`` and ``edN`` check
    the ED options they pass on), then the solver's registered further ``check`` (``ml``: the
    model file loads). Checks that need a model (bath size, mesh reach) are the solver's.
    The options are built afresh on every call (not taken from the cache of :func:`solve`:
    a check such as ``ml``'s reads files that may have changed).

    Returns:
        The built options (:class:`solvers.options.SolverOptions`; e.g. ``n_iw``, ``n_l``).

    Raises:
        ValueError: one line naming the solver and the bad option.

    Example:
        >>> check_options("ed", {"cutof": 1e-8})
        Traceback (most recent call last):
        ...
        solvers.UnknownOptionError: solver 'ed' has no option 'cutof' (did you mean 'cutoff'?)
        >>> check_options("ipt", {"n_iw": 512}).n_iw
        512
    """
    func = get_solver(name)
    if not isinstance(options, Mapping):
        raise ValueError(f"solver {name!r}: options must be a mapping of names to values, "
                         f"got {options!r}")
    opts, _ = _build_now(name, func, options)    # not the cache: a check may read files
    if name in _CHECKS:
        try:
            _CHECKS[name](opts)
        except ValueError as err:
            text = str(err)
            raise ValueError(text if text.startswith(f"solver {name!r}")
                             else f"solver {name!r}: {text}") from None
    return opts
