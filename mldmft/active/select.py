"""Choose new training samples among flagged DMFT iterates: features, farthest-point sampling,
bath fits.

Features of a model (a database row or a flagged iterate)::

    x = ( Delta_l / beta / s_Delta  (l < n_delta_l),  log(beta) / s_beta,  U / s_U,
          eps_d / s_eps )

``Delta_l`` are the Legendre coefficients of ``Delta(tau)`` (for a row: from its poles, as
stored; for an iterate: from ``Delta(i w_n)`` with the fitted tail,
:func:`solvers.hybridisation_l_many`), so ``sum_l (Delta_l/beta)^2`` is the mean square of
``Delta(tau)`` over ``tau`` and the first block's distance is the RMS difference of two
hybridisations. The scales ``s`` are the standard deviations over the database rows (``s_Delta``
that of the whole block: the root of its total variance), so each of the four blocks has unit
variance over the database (a zero spread counts as 1).

Farthest-point sampling (greedy; Gonzalez, Theor. Comput. Sci. 38, 293 (1985)): every candidate
starts with its distance to the nearest database row; the candidate farthest from everything
chosen so far is taken next (ties: the earlier one), until the budget is filled or no candidate
is farther than ``min_distance`` (the rest are near-duplicates of the database or of chosen
ones). Each chosen iterate is fitted with ``n_bath`` poles
(:func:`mldmft.database.dmft_sampling.bath_list_entry`, as the ``dmft_iterates`` recipe and
``mldmft export-baths`` do); one
whose fitted bath would need more Legendre coefficients than the database stores
(:func:`mldmft.database.generate.check_legendre_order`'s criterion) is skipped and the next one is
taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from solvers import AndersonModel, hybridisation_l_many

__all__ = ["feature_scales", "features", "farthest_point_sampling", "SelectionResult",
           "select_baths"]


def feature_scales(delta_l_over_beta: np.ndarray, beta: np.ndarray, U: np.ndarray,
                   eps_d: np.ndarray) -> np.ndarray:
    """``(s_Delta, s_beta, s_U, s_eps)`` over the reference rows (module docstring)."""
    def sd(x: np.ndarray) -> float:
        s = float(np.sqrt(np.sum(np.var(x, axis=0)))) if len(x) > 1 else 0.0
        return s if s > 0 and np.isfinite(s) else 1.0

    return np.array([sd(delta_l_over_beta), sd(np.log(beta)), sd(U), sd(eps_d)])


def features(delta_l_over_beta: np.ndarray, beta: np.ndarray, U: np.ndarray,
             eps_d: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The feature matrix ``[n, n_delta_l + 3]`` (module docstring)."""
    return np.concatenate([np.asarray(delta_l_over_beta, float) / scales[0],
                           np.stack([np.log(beta) / scales[1], np.asarray(U) / scales[2],
                                     np.asarray(eps_d) / scales[3]], axis=1)], axis=1)


def _min_distance(x: np.ndarray, ref: np.ndarray, block: int = 256) -> np.ndarray:
    """Distance of every row of ``x`` to its nearest row of ``ref`` (inf if ``ref`` is empty),
    in blocks of ``block`` x ``block`` pairs."""
    out = np.full(len(x), np.inf)
    for i in range(0, len(x), block):
        xi = x[i:i + block]
        for j in range(0, len(ref), block):
            r = ref[j:j + block]
            d2 = np.sum((xi[:, None, :] - r[None, :, :]) ** 2, axis=2)
            out[i:i + block] = np.minimum(out[i:i + block], np.sqrt(d2.min(axis=1)))
    return out


def farthest_point_sampling(x: np.ndarray, ref: np.ndarray, budget: int, min_distance: float,
                            accept: Callable[[int], bool] = lambda i: True) -> list[int]:
    """Indices of up to ``budget`` rows of ``x`` chosen by farthest-point sampling away from
    ``ref`` and each other (module docstring); ``accept(i)`` may refuse a pick (it is then
    passed over without counting).

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0], [0.01], [1.0], [2.0]])
        >>> farthest_point_sampling(x, np.array([[2.0]]), budget=3, min_distance=0.1)
        [0, 2]
    """
    x = np.asarray(x, dtype=float)
    d = _min_distance(x, np.asarray(ref, dtype=float).reshape(-1, x.shape[1]))
    chosen: list[int] = []
    open_ = np.ones(len(x), dtype=bool)
    while len(chosen) < budget and open_.any():
        i = int(np.argmax(np.where(open_, d, -np.inf)))
        if not d[i] > min_distance:
            break
        open_[i] = False
        if not accept(i):
            continue
        chosen.append(i)
        d = np.minimum(d, np.sqrt(np.sum((x - x[i]) ** 2, axis=1)))
    return chosen


@dataclass(frozen=True)
class SelectionResult:
    """The chosen baths (bath-list entries) and the counts of the selection."""

    entries: list[dict[str, Any]]
    candidates: int
    near_duplicates: int
    skipped_legendre: int

    def summary(self) -> dict[str, int]:
        return {"candidates": self.candidates, "selected": len(self.entries),
                "near_duplicates_of_database": self.near_duplicates,
                "skipped_legendre_order": self.skipped_legendre}


def select_baths(cells: Sequence[Any], db_rows: dict[str, np.ndarray], n_l: int, budget: int,
                 n_delta_l: int, n_bath: int, min_distance: float,
                 progress: Callable[[int], None] | None = None) -> SelectionResult:
    """Farthest-point sampling of the flagged iterates of ``cells``
    (:class:`~mldmft.active.evaluate.CellRecord`) away from the database rows ``db_rows``
    (``delta_l``, ``params/beta``, ``params/U``, ``params/eps_d``), then ``n_bath``-pole fits;
    ``n_l``: the database's Legendre order; ``progress(1)`` after every fit."""
    from solvers.legendre import required_n_l

    from ..database.dmft_sampling import bath_list_entry
    from ..database.generate import LEGENDRE_TOL_DB

    U = np.concatenate([c.U for c in cells]) if cells else np.zeros(0)
    eps_d = np.concatenate([c.eps_d for c in cells]) if cells else np.zeros(0)
    beta = np.concatenate([c.beta_it for c in cells]) if cells else np.zeros(0)
    deltas = [d for c in cells for d in c.delta_iw]
    if not deltas:
        return SelectionResult([], 0, 0, 0)
    k = int(n_delta_l)
    db_d = np.asarray(db_rows["delta_l"])[:, :k] / np.asarray(db_rows["params/beta"])[:, None]
    db_b, db_u = np.asarray(db_rows["params/beta"]), np.asarray(db_rows["params/U"])
    db_e = np.asarray(db_rows["params/eps_d"])
    scales = feature_scales(db_d, db_b, db_u, db_e)
    ref = features(db_d, db_b, db_u, db_e, scales)
    models = [AndersonModel(U=u, eps_d=e, beta=b, delta_iw=d)
              for u, e, b, d in zip(U, eps_d, beta, deltas)]
    cand_d = hybridisation_l_many(models, k) / beta[:, None]
    x = features(cand_d, beta, U, eps_d, scales)
    near = int(np.sum(_min_distance(x, ref) <= min_distance))
    entries: dict[int, dict[str, Any]] = {}
    skipped = [0]

    def accept(i: int) -> bool:
        entry = bath_list_entry(deltas[i], beta[i], U[i], eps_d[i], n_bath)
        if progress is not None:
            progress(1)
        e_max = max(abs(eps_d[i]), abs(eps_d[i] + U[i])) + max(abs(e) for e in entry["bath_eps"])
        if required_n_l(beta[i], e_max, LEGENDRE_TOL_DB) > n_l:  # the bath_list window
            skipped[0] += 1
            return False
        entries[i] = entry
        return True

    chosen = farthest_point_sampling(x, ref, budget, min_distance, accept)
    return SelectionResult([entries[i] for i in chosen], candidates=len(deltas),
                           near_duplicates=near, skipped_legendre=skipped[0])
