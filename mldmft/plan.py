"""Plans: the settings that decide a run's results, compared when the run is resumed.

Every resumable command (``mldmft generate``, DMFT sweeps, the phase-diagram point store,
``mldmft active``) stores its plan next to its results -- a JSON-able mapping of the settings
that decide them -- and, when it finds one from an earlier run, resumes only if the two agree.
Settings that a rerun may change without changing any result (how many workers, progress bars,
how far to go) are left out of the plan (:func:`make_plan`).

Two plans are compared key by key (a nested mapping is one value; a plan made with
``flat=True`` names nested settings by dotted keys, ``target.solver``); numbers compare by value
(``50 == 50.0``). A mismatch is one line naming every differing key with its stored and current
value::

    data/db.h5 exists and was made with a different config (seed: file 7, now 8); choose
    another out path or delete it

Example:
    >>> stored = make_plan({"seed": 7, "workers": 4, "target": {"solver": "ed"}}, ("workers",))
    >>> stored
    {'seed': 7, 'target': {'solver': 'ed'}}
    >>> plan_difference(stored, {"seed": 8, "target": {"solver": "ed"}})
    'seed: file 7, now 8'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["make_plan", "plan_json", "flatten_plan", "plan_difference", "PlanMismatchError",
           "check_plan", "check_plan_file"]

_ABSENT = "(absent)"


def plan_json(plan: Mapping[str, Any], indent: int | None = None) -> str:
    """Canonical JSON of a plan (sorted keys; anything not JSON-able by its ``str``)."""
    return json.dumps(plan, sort_keys=True, default=str, indent=indent)


def flatten_plan(plan: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings flattened to dotted keys (an empty mapping stays a value).

    Example:
        >>> flatten_plan({"a": {"b": 1, "c": {}}, "d": [1, 2]})
        {'a.b': 1, 'a.c': {}, 'd': [1, 2]}
    """
    out: dict[str, Any] = {}
    for key, value in plan.items():
        if isinstance(value, Mapping) and value:
            out.update(flatten_plan(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _dropped(key: str, rerun_may_change: Iterable[str]) -> bool:
    return any(key == r or key.startswith(r + ".") for r in rerun_may_change)


def make_plan(settings: Mapping[str, Any], rerun_may_change: Iterable[str] = (),
              flat: bool = False) -> dict[str, Any]:
    """The plan of ``settings``: a JSON round trip (tuples become lists, other objects their
    ``str``) without the keys in ``rerun_may_change`` (dotted keys name nested settings;
    a key drops everything below it); ``flat``: returned with dotted keys
    (:func:`flatten_plan`)."""
    rerun = tuple(rerun_may_change)
    plain = json.loads(plan_json(settings))

    def strip(node: dict[str, Any], prefix: str) -> dict[str, Any]:
        return {k: strip(v, f"{prefix}{k}.") if isinstance(v, dict) else v
                for k, v in node.items() if not _dropped(f"{prefix}{k}", rerun)}

    plan = strip(plain, "")
    return flatten_plan(plan) if flat else plan


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def plan_difference(stored: Mapping[str, Any], plan: Mapping[str, Any]) -> str | None:
    """``None`` if two plans agree, else one phrase naming every differing key:
    ``key: file <stored>, now <current>`` joined by ``; `` (long values shortened)."""
    a, b = json.loads(plan_json(stored)), json.loads(plan_json(plan))
    diffs = [f"{k}: file {_short(a.get(k, _ABSENT))}, now {_short(b.get(k, _ABSENT))}"
             for k in sorted(set(a) | set(b)) if a.get(k, _ABSENT) != b.get(k, _ABSENT)]
    return "; ".join(diffs) if diffs else None


class PlanMismatchError(ValueError):
    """A place holds the results of another run than the one asked for: one line,
    ``<where> <holds> (<difference>); <remedy>``; ``difference`` names the differing keys."""

    def __init__(self, where: str | Path, difference: str,
                 holds: str = "holds another sweep, not resumed",
                 remedy: str = "choose another output file or delete it") -> None:
        super().__init__(f"{where} {holds} ({difference}); {remedy}")
        self.path, self.difference = Path(where), difference


def check_plan(stored: Mapping[str, Any], plan: Mapping[str, Any], where: str | Path,
               holds: str = "holds another sweep, not resumed",
               remedy: str = "choose another output file or delete it") -> None:
    """Raise :class:`PlanMismatchError` if ``stored`` and ``plan`` differ (:func:`plan_difference`).
    """
    diff = plan_difference(stored, plan)
    if diff:
        raise PlanMismatchError(where, diff, holds, remedy)


def check_plan_file(path: str | Path, plan: Mapping[str, Any], where: str | Path,
                    holds: str = "holds another run, not resumed",
                    remedy: str = "choose another output or delete it") -> bool:
    """Compare ``plan`` with the plan stored in the JSON file ``path`` (:func:`check_plan`), or
    write it there (atomically) if the file does not exist. Returns whether a stored plan was
    found. An unreadable file is a one-line ``ValueError`` too."""
    from .h5util import write_text_atomic

    path = Path(path)
    if not path.exists():
        write_text_atomic(path, plan_json(plan, indent=1) + "\n")
        return False
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        raise ValueError(f"{path} (the stored plan) is unreadable; {remedy}") from None
    if not isinstance(stored, dict):
        raise ValueError(f"{path} (the stored plan) is not a JSON mapping; {remedy}")
    check_plan(stored, plan, where, holds, remedy)
    return True
