"""The particle-hole map of Anderson impurity models and of their solutions (``docs/conventions.md``).

With ``d_s -> d+_s`` and ``a_ks -> -a+_ks`` the Hamiltonian of ``(U, eps_d, eps_k, V_k)`` becomes,
up to a constant, the Hamiltonian of its particle-hole partner::

    (U, eps_d, eps_k, V_k) -> (U, -eps_d - U, -eps_k, V_k)      Delta(i w_n) -> -conj(Delta(i w_n))

and ``<H'> = <H> - 2 eps_d - U - 2 sum_k eps_k`` (the constant). The partner's solution follows
from the model's, without solving again::

    G(tau)  -> G(beta - tau)             G_l -> (-1)^l G_l            (also Delta_l)
    G(i w_n) -> -conj(G(i w_n))          poles (w_p, e_p) -> (w_p, -e_p)
    Sigma(i w_n) -> U - conj(Sigma(i w_n))
    n -> 2 - n   (total density; n_s -> 1 - n_s per spin)
    d = <n_up n_dn> -> 1 - n + d        ((1 - n_up)(1 - n_dn) = 1 - n_up - n_dn + n_up n_dn)

``Sigma`` follows from Dyson, ``Sigma = i w_n - eps_d - Delta - 1/G``: the partner's
``i w_n + eps_d + U + conj(Delta) + 1/conj(G)`` is ``U - conj(Sigma)``. A particle-hole symmetric
model (``eps_d = -U/2``, bath symmetric under ``eps_k -> -eps_k``) is its own partner: its odd
``G_l`` vanish, ``Re G(i w_n) = 0``, ``Re Sigma(i w_n) = U/2``, ``n = 1``.

Every array map acts on the last axis and broadcasts over leading (row) axes, so one function
serves one model and a batch. Example::

    >>> import numpy as np
    >>> particle_hole_g_l(np.array([[-1.0, 0.3], [-2.0, 0.1]])).tolist()
    [[-1.0, -0.3], [-2.0, -0.1]]
    >>> particle_hole_sigma_iw(np.array([1.0 - 0.5j]), 2.0).tolist()
    [(1-0.5j)]
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .legendre import g_tau_from_l, legendre_sign
from .model import AndersonModel
from .result import SolverResult

__all__ = ["particle_hole_eps_d", "particle_hole_bath", "particle_hole_model",
           "particle_hole_models", "particle_hole_g_l", "particle_hole_iw",
           "particle_hole_sigma_iw", "particle_hole_poles", "particle_hole_density",
           "particle_hole_double_occupancy", "particle_hole_energy", "particle_hole_result"]


def particle_hole_eps_d(eps_d: np.ndarray | float, U: np.ndarray | float) -> np.ndarray | float:
    """The partner's level ``-eps_d - U`` (units D; any shapes that broadcast).

    Example:
        >>> particle_hole_eps_d(-0.3, 2.0)
        -1.7
    """
    return -eps_d - U


def particle_hole_bath(bath_eps: np.ndarray, bath_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The partner's discrete bath ``(eps_k, V_k) -> (-eps_k, V_k)`` (units D; any shape, the
    levels keep their places; padding ``NaN`` stays ``NaN``).

    Example:
        >>> [a.tolist() for a in particle_hole_bath(np.array([-0.5, 0.2]), np.array([0.3, 0.4]))]
        [[0.5, -0.2], [0.3, 0.4]]
    """
    return -np.asarray(bath_eps, dtype=float), np.array(bath_v, dtype=float)


def particle_hole_model(model: AndersonModel) -> AndersonModel:
    """The particle-hole partner ``(U, -eps_d - U, -eps_k, V_k)`` of ``model``; a continuous bath
    maps as ``Delta(i w_n) -> -conj(Delta(i w_n))``.

    Example:
        >>> m = AndersonModel(U=2.0, eps_d=-0.3, beta=10.0, bath_eps=[-0.5, 0.2], bath_v=[0.3, 0.4])
        >>> p = particle_hole_model(m)
        >>> p.eps_d, p.bath_eps.tolist(), p.bath_v.tolist()
        (-1.7, [0.5, -0.2], [0.3, 0.4])
    """
    eps_d = particle_hole_eps_d(model.eps_d, model.U)
    if model.is_discrete:
        bath_eps, bath_v = particle_hole_bath(model.bath_eps, model.bath_v)
        return AndersonModel(U=model.U, eps_d=eps_d, beta=model.beta, bath_eps=bath_eps,
                             bath_v=bath_v)
    return AndersonModel(U=model.U, eps_d=eps_d, beta=model.beta,
                         delta_iw=particle_hole_iw(model.delta_iw))


def particle_hole_models(models: Sequence[AndersonModel]) -> list[AndersonModel]:
    """:func:`particle_hole_model` of every model of a batch."""
    return [particle_hole_model(m) for m in models]


def particle_hole_g_l(g_l: np.ndarray) -> np.ndarray:
    """``G_l -> (-1)^l G_l`` along the last axis (``G(tau) -> G(beta - tau)``; the same map for
    ``Delta_l``). Units unchanged (1/D).

    Example:
        >>> particle_hole_g_l(np.array([-1.0, 0.3, 0.2])).tolist()
        [-1.0, -0.3, 0.2]
    """
    g_l = np.asarray(g_l, dtype=float)
    return legendre_sign(g_l.shape[-1]) * g_l


def particle_hole_iw(f_iw: np.ndarray) -> np.ndarray:
    """``F(i w_n) -> -conj(F(i w_n))`` for ``F = G`` or ``Delta`` (any shape).

    Example:
        >>> particle_hole_iw(np.array([0.2 - 0.5j])).tolist()
        [(-0.2-0.5j)]
    """
    return -np.conj(np.asarray(f_iw))


def particle_hole_sigma_iw(sigma_iw: np.ndarray, U: np.ndarray | float) -> np.ndarray:
    """``Sigma(i w_n) -> U - conj(Sigma(i w_n))`` (units D).

    Args:
        sigma_iw: ``[..., n_iw]``.
        U: scalar or ``[...]`` (one per row).

    Example:
        >>> particle_hole_sigma_iw(np.array([[0.5 - 0.1j], [1.0 - 0.2j]]), np.array([1.0, 3.0])
        ...                        ).tolist()
        [[(0.5-0.1j)], [(2-0.2j)]]
    """
    return np.asarray(U, dtype=float)[..., None] - np.conj(np.asarray(sigma_iw))


def particle_hole_poles(weights: np.ndarray, energies: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The poles of the partner's ``G(z) = sum_p w_p / (z - e_p)``: ``(w_p, e_p) -> (w_p, -e_p)``
    (the pole form of ``G(i w_n) -> -conj(G(i w_n))``).

    Example:
        >>> [a.tolist() for a in particle_hole_poles(np.array([0.4, 0.6]), np.array([-1.0, 2.0]))]
        [[0.4, 0.6], [1.0, -2.0]]
    """
    return np.asarray(weights, dtype=float), -np.asarray(energies, dtype=float)


def particle_hole_density(density: np.ndarray | float) -> np.ndarray | float:
    """Total density ``n = <n_up + n_dn> -> 2 - n``.

    Example:
        >>> particle_hole_density(0.8)
        1.2
    """
    return 2.0 - density


def particle_hole_double_occupancy(docc: np.ndarray | float, density: np.ndarray | float
                                   ) -> np.ndarray | float:
    """``d = <n_up n_dn> -> 1 - n + d`` with ``n`` the model's total density (not the partner's).

    Example:
        >>> round(particle_hole_double_occupancy(0.1, 0.8), 12)
        0.3
    """
    return 1.0 - density + docc


def particle_hole_energy(energy: float, model: AndersonModel) -> float:
    """``<H> -> <H> - 2 eps_d - U - 2 sum_k eps_k`` for a discrete bath of ``model`` (the model
    whose ``<H>`` is given; units D).

    Example:
        >>> m = AndersonModel(U=2.0, eps_d=-0.3, beta=10.0, bath_eps=[-0.5, 0.2], bath_v=[0.3, 0.4])
        >>> round(particle_hole_energy(-1.0, m), 12)
        -1.8
    """
    if not model.is_discrete:
        raise ValueError("particle_hole_energy needs a discrete bath (eps_k, V_k): <H> of a "
                         "continuous bath is not defined")
    return float(energy - 2.0 * model.eps_d - model.U - 2.0 * np.sum(model.bath_eps))


def particle_hole_result(result: SolverResult, model: AndersonModel) -> SolverResult:
    """The solution of ``particle_hole_model(model)`` built from ``result``, the solution of
    ``model`` (module docstring): ``g_l``, ``g_iw``, ``sigma_iw``, ``density``,
    ``double_occupancy``, ``energy`` (discrete bath; ``None`` otherwise) and ``g_tau``
    (``G(beta - tau)``: reversed on a mesh symmetric about ``beta/2``, else rebuilt from the
    mapped ``g_l`` on the same ``tau``). ``info`` is not carried over (it describes the solve).

    Example:
        >>> from solvers import solve
        >>> m = AndersonModel(U=2.0, eps_d=-0.3, beta=10.0, bath_eps=[-0.5, 0.2], bath_v=[0.3, 0.4])
        >>> mapped = particle_hole_result(solve("ed", m), m)
        >>> direct = solve("ed", particle_hole_model(m))
        >>> bool(np.max(np.abs(mapped.g_l - direct.g_l)) < 1e-10)
        True
    """
    if abs(result.beta - model.beta) > 1e-12 * model.beta:
        raise ValueError(f"result.beta = {result.beta} is not model.beta = {model.beta}")
    g_l = particle_hole_g_l(result.g_l)
    g_tau = result.g_tau
    if g_tau is not None and result.tau is not None:
        tau = np.asarray(result.tau, dtype=float)
        if np.allclose(tau, result.beta - tau[::-1], rtol=0.0, atol=1e-12 * result.beta):
            g_tau = np.asarray(g_tau)[::-1].copy()
        else:
            g_tau = g_tau_from_l(g_l, result.beta, tau)
    docc = (None if result.double_occupancy is None
            else float(particle_hole_double_occupancy(result.double_occupancy, result.density)))
    energy = (None if result.energy is None or not model.is_discrete
              else particle_hole_energy(result.energy, model))
    return replace(result, g_iw=particle_hole_iw(result.g_iw),
                   sigma_iw=particle_hole_sigma_iw(result.sigma_iw, model.U), g_l=g_l,
                   density=float(particle_hole_density(result.density)), double_occupancy=docc,
                   energy=energy, g_tau=g_tau, info={})
