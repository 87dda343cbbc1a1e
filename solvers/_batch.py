"""Many Anderson models as arrays, for the solvers that vectorise over a batch (private).

:class:`ModelBatch` stacks what IPT and Hubbard-I need of each model -- ``beta``, ``U``,
``eps_d``, ``Delta(i w_n)`` on a common number of frequencies, the moments of ``Delta``, the
particle-hole flag, the energy scale and, for discrete baths, the bath padded to a common size
with decoupled sites (``V = 0``, which add nothing to ``Delta`` or to a density) -- one row per
model. A batch holds either discrete baths or continuous ones (:func:`group_by_bath` groups a
list of models), since the two use different exact formulas (poles, Matsubara sums).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

from .greens import _fermi, dyson_g, g0_inverse_iw, poles_g_iw_many
from .mesh import matsubara_freqs_many
from .model import AndersonModel
from .tails import density_from_g_iw_many, fit_tail_many, pole_moments_many

__all__ = ["ModelBatch", "group_by_bath", "index_prefix", "checked_models"]


def index_prefix(index: int, size: int) -> str:
    """``"models[3]: "`` naming a model of a batch in an error message (nothing for one model)."""
    return f"models[{index}]: " if size > 1 else ""


def checked_models(models: Sequence[AndersonModel]) -> list[AndersonModel]:
    """``models`` as a list; ``TypeError`` naming the first entry that is not an
    :class:`AndersonModel` (by its index when there are several)."""
    models = list(models)
    for i, model in enumerate(models):
        if not isinstance(model, AndersonModel):
            raise TypeError(f"{index_prefix(i, len(models))}model must be an AndersonModel, "
                            f"got {type(model).__name__}")
    return models


def group_by_bath(models: Sequence[AndersonModel], n_iw: int) -> list[tuple[np.ndarray,
                                                                          "ModelBatch"]]:
    """The models with a discrete bath and those with ``delta_iw`` as two :class:`ModelBatch`
    on ``n_iw`` frequencies, each with the indices of its models in ``models`` (non-empty groups
    only). A ``delta_iw`` shorter than ``n_iw`` is refused first, naming the model's index."""
    for i, m in enumerate(models):
        if not m.is_discrete and m.delta_iw.size < n_iw:
            raise ValueError(f"{index_prefix(i, len(models))}delta_iw holds {m.delta_iw.size} "
                             f"Matsubara frequencies, {n_iw} were requested")
    discrete = np.array([m.is_discrete for m in models], dtype=bool)
    groups = [idx for idx in (np.flatnonzero(discrete), np.flatnonzero(~discrete)) if idx.size]
    return [(idx, ModelBatch.build([models[i] for i in idx], n_iw)) for idx in groups]


@dataclass(frozen=True)
class ModelBatch:
    """The arrays of a batch of models with baths of one kind (see the module docstring).

    Attributes:
        models: the models, in row order.
        discrete: whether the baths are discrete (all of them) or ``delta_iw`` (all of them).
        beta, U, eps_d: shape ``(B,)``.
        wn: Matsubara frequencies, ``(B, n_iw)``; delta_iw: ``Delta(i w_n)``, ``(B, n_iw)``.
        moments: ``(M_1, M_2, M_3)`` of ``Delta`` per row, ``(B, 3)`` (exact for discrete baths,
            fitted to ``delta_iw`` otherwise: :func:`solvers.tails.hybridisation_moments`).
        bath_eps, bath_v: padded discrete baths, ``(B, Nb_max)`` (``(B, 0)`` for ``delta_iw``).
        n_bath: sites of each discrete bath (zeros for ``delta_iw``).
        one_body: ``[[0, V], [V, diag(eps_k)]]`` per row, ``(B, Nb_max + 1, Nb_max + 1)``
            (the one-body matrix of a discrete bath with the impurity level left at 0).
    """

    models: tuple[AndersonModel, ...]
    discrete: bool
    beta: np.ndarray
    U: np.ndarray
    eps_d: np.ndarray
    wn: np.ndarray
    delta_iw: np.ndarray
    moments: np.ndarray
    bath_eps: np.ndarray
    bath_v: np.ndarray
    n_bath: np.ndarray
    one_body: np.ndarray

    @classmethod
    def build(cls, models: Sequence[AndersonModel], n_iw: int) -> "ModelBatch":
        """Stack ``models`` (all discrete or all ``delta_iw``) on ``n_iw`` frequencies.

        Raises ``ValueError`` (naming the model's index) for a ``delta_iw`` shorter than
        ``n_iw``.
        """
        models = tuple(models)
        discrete = models[0].is_discrete
        if any(m.is_discrete != discrete for m in models):
            raise ValueError("a ModelBatch holds discrete baths or delta_iw, not both")
        beta = np.array([m.beta for m in models])
        U = np.array([m.U for m in models])
        eps_d = np.array([m.eps_d for m in models])
        wn = matsubara_freqs_many(beta, n_iw)
        n_rows = len(models)
        if discrete:
            n_bath = np.array([m.n_bath for m in models])
            bath_eps = np.zeros((n_rows, int(n_bath.max(initial=0))))
            bath_v = np.zeros_like(bath_eps)
            for i, m in enumerate(models):
                bath_eps[i, :m.n_bath] = m.bath_eps
                bath_v[i, :m.n_bath] = m.bath_v
            v2 = bath_v * bath_v
            delta_iw = poles_g_iw_many(v2, bath_eps, wn)
            moments = pole_moments_many(v2, bath_eps, 3)
        else:
            n_bath = np.zeros(n_rows, dtype=int)
            bath_eps = bath_v = np.zeros((n_rows, 0))
            for i, m in enumerate(models):
                if m.delta_iw.size < n_iw:
                    raise ValueError(f"{index_prefix(i, n_rows)}delta_iw holds "
                                     f"{m.delta_iw.size} Matsubara frequencies, {n_iw} were "
                                     "requested")
            delta_iw = np.stack([m.delta_iw[:n_iw] for m in models])
            moments = fit_tail_many(delta_iw, beta, np.zeros((n_rows, 0)), 3)
        nb = bath_eps.shape[1]
        one_body = np.zeros((n_rows, nb + 1, nb + 1))
        one_body[:, 0, 1:] = bath_v
        one_body[:, 1:, 0] = bath_v
        one_body[:, np.arange(1, nb + 1), np.arange(1, nb + 1)] = bath_eps
        return cls(models, discrete, beta, U, eps_d, wn, delta_iw, moments, bath_eps, bath_v,
                   n_bath, one_body)

    def __len__(self) -> int:
        return len(self.models)

    def take(self, rows: np.ndarray) -> "ModelBatch":
        """The sub-batch of the given rows."""
        rows = np.asarray(rows, dtype=int)
        return ModelBatch(tuple(self.models[i] for i in rows), self.discrete, self.beta[rows],
                          self.U[rows], self.eps_d[rows], self.wn[rows], self.delta_iw[rows],
                          self.moments[rows], self.bath_eps[rows], self.bath_v[rows],
                          self.n_bath[rows], self.one_body[rows])

    def particle_hole_symmetric(self) -> np.ndarray:
        """:meth:`AndersonModel.is_particle_hole_symmetric` of every row."""
        return np.array([m.is_particle_hole_symmetric() for m in self.models], dtype=bool)

    def energy_scale(self) -> np.ndarray:
        """:meth:`AndersonModel.energy_scale` of every row (with the batch's moments)."""
        return np.array([m.energy_scale(mom) for m, mom in zip(self.models, self.moments)])

    def free_density(self, level: np.ndarray, rows: np.ndarray,
                     slope: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Density per spin of ``1/(i w_n - level - Delta(i w_n))`` for the given rows (and,
        with ``slope``, its derivative in ``level``).

        Discrete bath: exact, ``sum_j |U_0j|^2 f(lambda_j)`` from the eigenvectors of the
        one-body matrix ``[[level, V], [V, diag(eps_k)]]`` (decoupled padding sites carry no
        impurity weight). Continuous bath: :func:`solvers.tails.density_from_g_iw` with the
        known moments ``(1, level, level^2 + M1, level^3 + 2 level M1 + M2)``.

        ``slope``: also ``dn/d level`` (negative), for Newton steps of a level search. Discrete
        bath: exact, ``sum_jk |U_0j|^2 |U_0k|^2 (f(lambda_j) - f(lambda_k)) / (lambda_j -
        lambda_k)`` (``f'(lambda_j)`` where the two are equal; Daleckii and Krein's derivative
        of ``[f(H)]_00``). Continuous bath: ``(1/beta) sum_n G0(i w_n)^2`` on the mesh plus the
        ``-1/w_n^2`` tail beyond it, ``-(2 beta/pi^2) sum_{n >= N} 1/(2n+1)^2`` (accurate to
        ``O(1/w_N^3)``: enough for a Newton step, whose root is that of the density alone).
        """
        level = np.asarray(level, dtype=float)
        beta = self.beta[rows]
        if self.discrete:
            h = self.one_body[rows]
            h[:, 0, 0] = level
            lam, vec = np.linalg.eigh(h)
            occ = _fermi(lam, beta[:, None])
            weight = vec[:, 0, :] ** 2
            n0 = np.sum(weight * occ, axis=1)
            if not slope:
                return n0
            gap = lam[:, :, None] - lam[:, None, :]
            close = np.abs(gap) <= 1e-10 * (1.0 + np.abs(lam[:, :, None]))
            mid = 0.5 * (lam[:, :, None] + lam[:, None, :])
            f_mid = _fermi(mid, beta[:, None, None])
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(close, -beta[:, None, None] * f_mid * (1.0 - f_mid),
                                 (occ[:, :, None] - occ[:, None, :]) / gap)
            return n0, np.einsum("bj,bjk,bk->b", weight, ratio, weight)
        m1, m2 = self.moments[rows, 0], self.moments[rows, 1]
        g_iw = dyson_g(g0_inverse_iw(self.wn[rows], level, self.delta_iw[rows]), 0.0)
        tail = np.stack([np.ones_like(level), level, level ** 2 + m1,
                         level ** 3 + 2 * level * m1 + m2], axis=1)
        n0 = density_from_g_iw_many(g_iw, beta, tail)
        if not slope:
            return n0
        n_iw = g_iw.shape[1]
        g_re, g_im = g_iw.real, g_iw.imag
        on_mesh = 2.0 / beta * np.sum(g_re * g_re - g_im * g_im, axis=1)
        return n0, on_mesh - 2.0 * beta / np.pi ** 2 * _odd_square_remainder(n_iw)


@lru_cache(maxsize=8)
def _odd_square_remainder(n_iw: int) -> float:
    """``sum_{n >= n_iw} 1/(2n+1)^2 = pi^2/8 - sum_{n < n_iw} 1/(2n+1)^2``."""
    odd = 2.0 * np.arange(n_iw) + 1.0
    return float(np.pi ** 2 / 8 - np.sum(1.0 / odd[::-1] ** 2))
