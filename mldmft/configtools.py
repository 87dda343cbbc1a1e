"""Building typed configs from plain mappings, and the execution settings shared by runs.

The command line turns a Hydra tree into a plain mapping (``OmegaConf.to_container``) and then
into frozen dataclasses; every step refuses bad input with a one-line ``ValueError`` naming the
dotted key, before any work:

- :func:`build_dataclass`: ``cls(**values)`` with unknown keys (and the closest known one),
  missing required keys (:func:`solvers.check_keys`) and types (:func:`solvers.check_type`)
  checked first;
- :func:`typed`: one value at a dotted path, type-checked;
- :func:`check_fields`: every field of a built dataclass against its annotation (for configs
  built in Python rather than from a mapping);
- :func:`check_execution`: how a run is executed (chunks, local pool or Dask, workers) -- the
  same settings and rules for ``mldmft generate`` and for the generation stage of
  ``mldmft active``. :data:`EXECUTION_KEYS` lists the ones a rerun may change (they are left out
  of a run's plan, :mod:`mldmft.plan`).

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Grid:
    ...     beta: tuple[float, ...]
    ...     direction: str = "up"
    >>> build_dataclass(Grid, "grid", {"beta": [50, 100.0]}, tuples=("beta",))
    Grid(beta=(50, 100.0), direction='up')
    >>> build_dataclass(Grid, "grid", {"beta": [50], "direcion": "up"}, tuples=("beta",))
    Traceback (most recent call last):
    ...
    ValueError: config: unknown key 'grid.direcion' (did you mean 'grid.direction'?); allowed: beta, direction
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, fields
from typing import Any, Collection, Mapping

from solvers import check_keys, check_type

__all__ = ["build_dataclass", "typed", "check_fields", "check_execution", "EXECUTION_KEYS",
           "BACKENDS"]

#: Execution backends of a generation: a local process pool or a Dask cluster.
BACKENDS = ("local", "dask")

#: Execution settings a rerun may change without changing any result (left out of plans).
EXECUTION_KEYS = ("backend", "workers", "dask_address", "dask_workers", "progress")


def build_dataclass(cls: type, prefix: str, values: Mapping[str, Any] | None,
                    tuples: Collection[str] = (), wrap_scalars: bool = False) -> Any:
    """``cls(**values)`` for a config dataclass, every key and type checked first.

    Unknown keys (named with the closest known one) and missing required keys
    (:func:`solvers.check_keys`), and ill-typed values (:func:`solvers.check_type`) give a
    one-line ``ValueError`` naming the dotted key ``<prefix>.<key>``; so does a ``TypeError`` or
    ``ValueError`` of the class's own checks (prefixed with ``<prefix>:``  for the former). Keys
    in ``tuples`` take lists (made tuples); with ``wrap_scalars`` a single value there counts as
    a one-element list. ``values=None`` means all defaults.
    """
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{prefix}: expected a mapping, got {values!r}")
    known = {f.name: f for f in fields(cls)}
    required = [k for k, f in known.items() if f.default is MISSING
                and f.default_factory is MISSING]
    check_keys(values, known, required, prefix=f"{prefix}.", lead="config: ")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, val in values.items():
        if key in tuples:
            if wrap_scalars and (isinstance(val, (str, bytes)) or not hasattr(val, "__iter__")):
                val = [val]
            if isinstance(val, (list, tuple)) or wrap_scalars:
                val = tuple(val)
        kwargs[key] = check_type(f"{prefix}.{key}", val, hints[key])
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"{prefix}: {err}") from None


def typed(config: Mapping[str, Any], path: str, tp: Any) -> Any:
    """The value at the dotted ``path`` of the plain mapping ``config``, checked against the
    type ``tp`` (:func:`solvers.check_type`; ``KeyError`` if the path is absent).

    Example:
        >>> typed({"loop": {"n_iw": 512}}, "loop.n_iw", int)
        512
    """
    val: Any = config
    for part in path.split("."):
        val = val[part]
    return check_type(path, val, tp)


def check_fields(obj: Any, prefix: str = "") -> None:
    """Every field of the dataclass instance ``obj`` against its annotation
    (:func:`solvers.check_type`, named ``<prefix><field>``): ``n_samples=2.7`` is refused, not
    rounded."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        check_type(f"{prefix}{f.name}", getattr(obj, f.name), hints[f.name])


def check_execution(chunk_size: int, backend: str, workers: int | None, dask_workers: int,
                    prefix: str = "") -> None:
    """The execution settings of a generation (``prefix``: where they sit in the config, e.g.
    ``"generation."``): ``chunk_size >= 1`` samples per chunk, ``backend`` one of
    :data:`BACKENDS`, ``workers >= 1`` local processes (``None``: all cores), ``dask_workers >= 1``
    workers of a local Dask cluster.

    Example:
        >>> check_execution(8, "local", None, 2)
        >>> check_execution(8, "mpi", None, 2, prefix="generation.")
        Traceback (most recent call last):
        ...
        ValueError: generation.backend must be 'local' or 'dask', got 'mpi'
    """
    if chunk_size < 1:
        raise ValueError(f"{prefix}chunk_size must be >= 1, got {chunk_size}")
    if backend not in BACKENDS:
        raise ValueError(f"{prefix}backend must be 'local' or 'dask', got {backend!r}")
    if workers is not None and workers < 1:
        raise ValueError(f"{prefix}workers must be >= 1 (or null: all cores), got {workers}")
    if dask_workers < 1:
        raise ValueError(f"{prefix}dask.n_workers must be >= 1, got {dask_workers}")
