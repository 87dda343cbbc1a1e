"""The hybridisation inputs of the ``ml`` solver, for many models at once.

Every network input that describes the bath comes from the model's own hybridisation, with no
bath fit:

* ``Delta_l`` (``l < n_l``, units 1/D), the Legendre coefficients of ``Delta(tau)``. Discrete
  bath: exact from the poles, ``Delta(i w_n) = sum_k V_k^2 / (i w_n - eps_k)``
  (:func:`solvers.g_l_from_poles`). Continuous ``delta_iw`` (a DMFT loop's): the exact Legendre
  kernel of the given frequencies (:func:`solvers.g_l_from_iw`) with the tail
  ``Delta -> c1/(i w_n) + c2/(i w_n)^2 + c3/(i w_n)^3`` carried analytically, ``c1`` from
  :func:`c1_rows` and ``c2, c3`` by :func:`solvers.estimate_tail`; for many rows at once their
  array versions (``g_l_from_poles_many``, ``g_l_from_iw_many``, ``fit_tail_many``). With 1024
  frequencies the coefficients of an 8-pole bath given as ``delta_iw`` agree with the exact
  ones to ``|dDelta_l|/beta < 1e-8`` at ``beta = 20`` and ``200``, and ``c1`` to 1e-5 relative
  (``tests/test_fast_network.py``).
* ``c1 = sum_k V_k^2 = lim -w_n Im Delta(i w_n)``: exact for a discrete bath; for ``delta_iw`` the
  least-squares fit of ``-w_n Im Delta(i w_n) = c1 - c3/w_n^2`` on the upper half of the given
  frequencies. The half-bandwidth feature is ``D = 2 sqrt(c1)`` (the relation of the database's
  Bethe-like baths, where ``Delta = D^2 G / 4``).

The fit of ``c1`` is one least-squares solve for all rows that share a mesh size: on
``w_n = (2n+1) pi/beta`` the design matrix ``[1, -1/w_n^2]`` is ``beta``-independent up to the
scale of its second column, which leaves ``c1`` unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from solvers import AndersonModel
from solvers.legendre import g_l_from_iw_many, g_l_from_poles_many
from solvers.tails import fit_tail_many

__all__ = ["c1_rows", "delta_tail_c1", "hybridisation_rows", "hybridisation_l"]


def _c1_same_mesh(delta_iw: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``c1`` of rows ``delta_iw [N, n]`` given on the same number of frequencies."""
    n = delta_iw.shape[1]
    wn = (2.0 * np.arange(n) + 1.0) * np.pi / beta[:, None]          # [N, n]
    start = n // 2
    y = -wn[:, start:] * delta_iw.imag[:, start:]                    # [N, n - start]
    if n - start < 2:
        return y[:, -1].copy()
    odd = 2.0 * np.arange(start, n) + 1.0
    design = np.stack([np.ones(n - start), -1.0 / odd ** 2], axis=1)  # w_n -> (2n+1): c1 kept
    return np.linalg.lstsq(design, y.T, rcond=None)[0][0]


def c1_rows(models: Sequence[AndersonModel]) -> np.ndarray:
    """``c1 = sum_k V_k^2`` of every model (module docstring), shape ``[N]`` (units D^2)."""
    out = np.empty(len(models))
    groups: dict[int, list[int]] = defaultdict(list)
    for i, m in enumerate(models):
        if m.is_discrete:
            out[i] = float(np.sum(m.bath_v ** 2))
        else:
            groups[m.delta_iw.size].append(i)
    for rows in groups.values():
        out[rows] = _c1_same_mesh(np.stack([models[i].delta_iw for i in rows]),
                                  np.array([models[i].beta for i in rows]))
    return out


def delta_tail_c1(delta_iw: np.ndarray, beta: float) -> float:
    """``c1 = lim w_n -> inf  -w_n Im Delta(i w_n)`` (``= sum_k V_k^2``) from the given values.

    Least squares of ``-w_n Im Delta(i w_n) = c1 - c3 / w_n^2`` on the upper half of the mesh.

    Example:
        >>> import numpy as np
        >>> from solvers import hybridisation_iw, matsubara_freqs
        >>> d = hybridisation_iw(matsubara_freqs(10.0, 400), [-0.5, 0.3], [0.4, 0.2])
        >>> round(delta_tail_c1(d, 10.0), 6)
        0.2
    """
    delta_iw = np.asarray(delta_iw, dtype=complex)
    return float(_c1_same_mesh(delta_iw[None, :], np.array([float(beta)]))[0])


def hybridisation_rows(models: Sequence[AndersonModel], n_l: int,
                       c1: np.ndarray | None = None) -> np.ndarray:
    """``Delta_l`` of every model, shape ``[N, n_l]`` (units 1/D; module docstring).

    Array operations over the rows: the discrete baths together (padded with zero weights), the
    continuous ``delta_iw`` together per mesh size.

    Args:
        models: the impurity models (discrete baths and ``delta_iw`` may be mixed).
        n_l: Legendre coefficients per row.
        c1: :func:`c1_rows` of the models, if already known.
    """
    c1 = c1_rows(models) if c1 is None else np.asarray(c1, dtype=float)
    out = np.empty((len(models), int(n_l)))
    discrete = [i for i, m in enumerate(models) if m.is_discrete]
    if discrete:
        n_poles = max(models[i].bath_eps.size for i in discrete)
        weights = np.zeros((len(discrete), n_poles))
        energies = np.zeros((len(discrete), n_poles))
        for row, i in enumerate(discrete):
            m = models[i]
            weights[row, :m.bath_v.size] = m.bath_v ** 2
            energies[row, :m.bath_eps.size] = m.bath_eps
        beta = np.array([models[i].beta for i in discrete])
        out[discrete] = g_l_from_poles_many(weights, energies, beta, n_l)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, m in enumerate(models):
        if not m.is_discrete:
            groups[m.delta_iw.size].append(i)
    for rows in groups.values():
        delta_iw = np.stack([models[i].delta_iw for i in rows])
        beta = np.array([models[i].beta for i in rows])
        tail = fit_tail_many(delta_iw, beta, c1[rows, None], 3)     # c1 known; c2, c3 fitted
        out[rows] = g_l_from_iw_many(delta_iw, beta, n_l, tail)
    return out


def hybridisation_l(model: AndersonModel, n_l: int) -> np.ndarray:
    """``Delta_l`` (``l < n_l``, 1/D) of one model's hybridisation (module docstring).

    Example:
        >>> import numpy as np
        >>> from solvers import AndersonModel, g_l_from_poles
        >>> m = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
        >>> exact = g_l_from_poles([0.09, 0.09], [-0.5, 0.5], 10.0, 8)
        >>> bool(np.allclose(hybridisation_l(m, 8), exact))
        True
    """
    return hybridisation_rows([model], n_l)[0]

