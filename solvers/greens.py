"""Green's-function relations: hybridisation, Dyson's equation, poles, density, Bethe lattice.

All functions follow ``docs/conventions.md``: ``G(tau) = -<T d(tau) d+(0)>``, fermionic Matsubara
frequencies ``w_n = (2n+1) pi/beta`` (``n >= 0``), tail ``G(i w_n) -> 1/(i w_n)``, energies in units
of the Bethe half bandwidth ``D``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from .legendre import (g_l_from_iw, g_l_from_iw_many, g_l_from_poles_many, g_tau_from_l,
                       legendre_tau_basis)
from .mesh import check_beta, check_betas
from .tails import _bath_row_arrays, estimate_tail, hybridisation_moments_many

if TYPE_CHECKING:
    from .model import AndersonModel

__all__ = [
    "hybridisation_iw",
    "hybridisation_l",
    "hybridisation_l_many",
    "g0_inverse_iw",
    "dyson_sigma",
    "dyson_g",
    "poles_g_iw",
    "poles_g_tau",
    "poles_g_iw_many",
    "poles_g_tau_many",
    "density_from_g_l",
    "quasiparticle_weight",
    "bethe_g_iw",
    "bethe_delta_iw",
    "fermi",
    "g_tau_from_iw",
]


def _iw(wn: np.ndarray) -> np.ndarray:
    wn = np.asarray(wn, dtype=float)
    if wn.ndim != 1:
        raise ValueError("the Matsubara mesh must be a 1-d array of w_n")
    return 1j * wn


def hybridisation_iw(wn: np.ndarray, bath_eps: np.ndarray, bath_v: np.ndarray) -> np.ndarray:
    """``Delta(i w_n) = sum_k V_k^2 / (i w_n - eps_k)`` of a discrete bath (:func:`poles_g_iw`
    with weights ``V_k^2``).

    Args:
        wn: Matsubara frequencies ``w_n`` (real, units of D).
        bath_eps: bath energies ``eps_k``.
        bath_v: hybridisations ``V_k`` (same length).

    Example:
        >>> import numpy as np
        >>> hybridisation_iw(np.array([1.0]), np.array([0.0]), np.array([1.0]))
        array([0.-1.j])
    """
    eps = np.asarray(bath_eps, dtype=float)
    v = np.asarray(bath_v, dtype=float)
    if eps.shape != v.shape:
        raise ValueError(f"bath_eps (length {eps.size}) and bath_v (length {v.size}) differ")
    return poles_g_iw(v * v, eps, wn)


def g0_inverse_iw(wn: np.ndarray, eps_d: float | np.ndarray, delta_iw: np.ndarray) -> np.ndarray:
    """Non-interacting impurity ``G0(i w_n)^-1 = i w_n - eps_d - Delta(i w_n)``.

    One row: ``wn`` and ``delta_iw`` of shape ``(N,)``, ``eps_d`` a number. A batch of ``B``
    rows: ``eps_d`` of shape ``(B,)``, ``delta_iw`` of shape ``(B, N)`` and ``wn`` of shape
    ``(N,)`` or ``(B, N)`` (one ``beta`` per row, :func:`solvers.mesh.matsubara_freqs_many`);
    returns ``(B, N)``.

    Example:
        >>> g0_inverse_iw(np.array([[1.0], [2.0]]), np.array([0.5, -0.5]), np.zeros((2, 1)))
        array([[-0.5+1.j],
               [ 0.5+2.j]])
    """
    wn = np.asarray(wn, dtype=float)
    if wn.ndim not in (1, 2):
        raise ValueError(f"the Matsubara mesh must be a 1-d or 2-d array of w_n, got shape "
                         f"{wn.shape}")
    eps_d = np.asarray(eps_d, dtype=float)
    delta_iw = np.asarray(delta_iw)
    if eps_d.ndim > 1 or delta_iw.ndim != max(wn.ndim, eps_d.ndim + 1) or (
            delta_iw.shape[-1] != wn.shape[-1]
            or (wn.ndim == 2 and wn.shape[0] != delta_iw.shape[0])
            or (eps_d.ndim == 1 and eps_d.shape[0] != delta_iw.shape[0])):
        raise ValueError(f"delta_iw has shape {delta_iw.shape}, the mesh {wn.shape} and eps_d "
                         f"{eps_d.shape} (one row: (N,), (N,), (); B rows: (B, N), (N,) or "
                         "(B, N), (B,))")
    return 1j * wn - (eps_d[:, None] if eps_d.ndim else eps_d) - delta_iw


def dyson_sigma(g0_inv_iw: np.ndarray, g_iw: np.ndarray) -> np.ndarray:
    """Dyson's equation ``Sigma(i w_n) = G0(i w_n)^-1 - G(i w_n)^-1`` (arrays of one shape, or
    ``g_iw`` with leading axes more, e.g. ensemble members ``(M, B, N)`` against ``(B, N)``).

    Example:
        >>> g0_inv = g0_inverse_iw(np.array([1.0]), 0.0, np.zeros(1))
        >>> dyson_sigma(g0_inv, 1 / (g0_inv - 0.25))
        array([0.25+0.j])
    """
    g0_inv_iw, g_iw = _dyson_operands(g0_inv_iw, g_iw, "G")
    return g0_inv_iw - 1.0 / g_iw


def dyson_g(g0_inv_iw: np.ndarray, sigma_iw: np.ndarray | float) -> np.ndarray:
    """Dyson's equation ``G(i w_n) = 1 / (G0(i w_n)^-1 - Sigma(i w_n))`` (shapes as
    :func:`dyson_sigma`; ``sigma_iw`` may also be a number).

    Example:
        >>> dyson_g(np.array([2j]), 0.0)
        array([0.-0.5j])
    """
    g0_inv_iw, sigma_iw = _dyson_operands(g0_inv_iw, sigma_iw, "Sigma")
    return 1.0 / (g0_inv_iw - sigma_iw)


def _dyson_operands(g0_inv_iw: np.ndarray, other: np.ndarray | float,
                    name: str) -> tuple[np.ndarray, np.ndarray]:
    """The operands of Dyson's equation as arrays, refused in one line unless ``other`` is a
    number or has the shape of ``g0_inv_iw`` (with leading axes allowed on either side)."""
    g0_inv_iw = np.asarray(g0_inv_iw)
    other = np.asarray(other)
    if other.ndim:
        k = min(g0_inv_iw.ndim, other.ndim)
        if g0_inv_iw.shape[g0_inv_iw.ndim - k:] != other.shape[other.ndim - k:]:
            raise ValueError(f"G0^-1 has shape {g0_inv_iw.shape}, {name} has {other.shape}")
    return g0_inv_iw, other


def fermi(eps: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
    """Fermi function ``1/(1 + exp(beta eps))``, overflow-free (``beta`` a number or an array
    broadcast against ``eps``, e.g. ``beta[:, None]`` for one ``beta`` per row).

    Example:
        >>> fermi(np.array([0.0, 1.0]), np.array([10.0, 1e8])).tolist()
        [0.5, 0.0]
    """
    beta = check_beta(beta) if np.ndim(beta) == 0 else check_betas(beta)
    return _fermi(np.asarray(eps, dtype=float), beta)


def _fermi(eps: np.ndarray, beta: float | np.ndarray) -> np.ndarray:
    """:func:`fermi` without the check of ``beta``."""
    return 0.5 * (1.0 - np.tanh(0.5 * beta * eps))


def poles_g_iw(weights: np.ndarray, energies: np.ndarray, wn: np.ndarray) -> np.ndarray:
    """Pole sum ``G(i w_n) = sum_p w_p / (i w_n - e_p)``."""
    wn = np.asarray(wn, dtype=float)
    _iw(wn)
    w = np.asarray(weights, dtype=float)
    e = np.asarray(energies, dtype=float)
    out = np.zeros(wn.size, dtype=complex)
    chunk = max(1, 2 ** 22 // max(1, wn.size))  # bounded memory for many poles
    for start in range(0, e.size, chunk):
        sl = slice(start, start + chunk)
        out += poles_g_iw_many(w[None, sl], e[None, sl], wn[None, :])[0]
    return out


def poles_g_iw_many(weights: np.ndarray, energies: np.ndarray, wn: np.ndarray) -> np.ndarray:
    """:func:`poles_g_iw` of every row: ``weights``, ``energies`` of shape ``(B, P)`` (pad with
    zero weights), ``wn`` of shape ``(B, N)``; returns ``(B, N)``."""
    w2 = wn[:, :, None] ** 2
    # 1/(i w - e) = -(e + i w) / (w^2 + e^2), in real arithmetic
    inv = 1.0 / (w2 + energies[:, None, :] ** 2)
    re = -(inv @ (weights * energies)[:, :, None])[:, :, 0]
    im = -(inv @ weights[:, :, None])[:, :, 0]
    return re + 1j * wn * im


def poles_g_tau(weights: np.ndarray, energies: np.ndarray, beta: float,
                tau: np.ndarray) -> np.ndarray:
    """Pole sum in imaginary time: ``G(tau) = -sum_p w_p exp(-tau e_p) / (1 + exp(-beta e_p))``.

    Evaluated as ``exp(-tau e - log(1 + exp(-beta e)))``, which never overflows.
    """
    beta = check_beta(beta)
    tau = np.asarray(tau, dtype=float)
    e = np.asarray(energies, dtype=float)
    w = np.asarray(weights, dtype=float)
    out = np.zeros(tau.size)
    chunk = max(1, 2 ** 22 // max(1, tau.size))
    for start in range(0, e.size, chunk):
        sl = slice(start, start + chunk)
        out += poles_g_tau_many(w[None, sl], e[None, sl], np.array([beta]), tau[None, :])[0]
    return out


def poles_g_tau_many(weights: np.ndarray, energies: np.ndarray, beta: np.ndarray,
                     tau: np.ndarray) -> np.ndarray:
    """:func:`poles_g_tau` of every row: ``weights``, ``energies`` of shape ``(B, P)``, one
    ``beta`` per row, ``tau`` of shape ``(B, M)``; returns ``(B, M)``."""
    beta = check_betas(beta)
    expo = (-tau[:, :, None] * energies[:, None, :]
            - np.logaddexp(0.0, -beta[:, None] * energies)[:, None, :])
    return -(np.exp(expo) @ weights[:, :, None])[:, :, 0]


def density_from_g_l(g_l: np.ndarray, beta: float | np.ndarray) -> float | np.ndarray:
    """Density per spin ``n_s = -G(beta-) = -sum_l sqrt(2l+1) G_l / beta`` (``P_l(1) = 1``).

    One row (``g_l`` of shape ``(n_l,)``, ``beta`` a number): a float. Many rows (``g_l`` of
    shape ``(..., n_l)``, ``beta`` a number or of shape ``g_l.shape[:-1]``): an array.

    Example:
        >>> import numpy as np
        >>> round(density_from_g_l(np.array([-5.0, 2.0]), 10.0), 5)   # (5 - 2 sqrt 3) / 10
        0.15359
        >>> density_from_g_l(np.array([[-5.0, 0.0], [-2.0, 0.0]]), np.array([10.0, 4.0])).tolist()
        [0.5, 0.5]
    """
    g_l = np.asarray(g_l)
    beta = check_beta(beta) if np.ndim(beta) == 0 else check_betas(beta)
    n = -np.real(g_l @ legendre_tau_basis(g_l.shape[-1], 1.0)) / beta
    return float(n) if np.ndim(n) == 0 else n


def quasiparticle_weight(sigma_iw: np.ndarray, beta: float | np.ndarray) -> float | np.ndarray:
    """Estimate ``Z = 1 / (1 - Im Sigma(i w_0) / w_0)`` with ``w_0 = pi / beta`` (the slope of
    ``Im Sigma`` at the first Matsubara frequency).

    One row (``sigma_iw`` of shape ``(N,)``, ``beta`` a number): a float. Many rows
    (``sigma_iw`` of shape ``(B, N)``, ``beta`` of shape ``(B,)``): an array ``(B,)``.

    Example:
        >>> import numpy as np
        >>> quasiparticle_weight(np.array([-0.1j * np.pi]), 1.0)   # Im Sigma = -0.1 w_0
        0.9090909090909091
    """
    sigma0 = np.asarray(sigma_iw)[..., 0]
    beta = check_beta(beta) if np.ndim(beta) == 0 else check_betas(beta)
    z = 1.0 / (1.0 - np.imag(sigma0) / (np.pi / beta))
    return float(z) if np.ndim(z) == 0 else z


def bethe_g_iw(wn: np.ndarray, D: float = 1.0, sigma_iw: np.ndarray | float = 0.0,
               mu: float = 0.0) -> np.ndarray:
    """Local Green's function of the Bethe lattice (semicircular DOS of half bandwidth ``D``).

    ``G(z) = 2 (z - sqrt(z^2 - D^2)) / D^2 = 2 / (z + sqrt(z^2 - D^2))`` with
    ``z = i w_n + mu - Sigma(i w_n)``, on the branch ``Im G < 0`` for ``Im z > 0`` (the second
    form, used here, does not lose digits to cancellation at large ``|z|``).

    Example:
        >>> import numpy as np
        >>> g = bethe_g_iw(np.array([1e3]))
        >>> bool(abs(g[0] * 1e3j - 1) < 1e-6)   # tail 1/(i w_n)
        True
    """
    if not np.isfinite(D) or D <= 0:
        raise ValueError(f"half bandwidth D must be > 0, got {D}")
    z = _iw(wn) + mu - np.asarray(sigma_iw)
    sq = np.sqrt(z * z - D * D)
    # choose the branch with sqrt ~ z at large |z|, i.e. sign(Im sq) = sign(Im z)
    sq = np.where(np.imag(sq) * np.imag(z) < 0, -sq, sq)
    return 2.0 / (z + sq)


def bethe_delta_iw(g_iw: np.ndarray, D: float = 1.0) -> np.ndarray:
    """Bethe self-consistency ``Delta(i w_n) = t^2 G(i w_n)`` with ``t = D/2``."""
    return (D / 2.0) ** 2 * np.asarray(g_iw)


def g_tau_from_iw(g_iw: np.ndarray, beta: float, tau: np.ndarray, n_l: int = 80,
                  tail: tuple[float, ...] | None = None) -> np.ndarray:
    """``G(tau)`` from ``G(i w_n)`` through its Legendre coefficients
    (:func:`solvers.legendre.g_l_from_iw`; tail moments estimated from the data,
    :func:`solvers.tails.estimate_tail` up to ``c_4``, unless given).

    Example:
        >>> import numpy as np
        >>> from solvers.mesh import matsubara_freqs
        >>> g = 1 / (1j * matsubara_freqs(10.0, 1024) - 0.2)
        >>> bool(abs(g_tau_from_iw(g, 10.0, np.array([10.0]))[0] + fermi(0.2, 10.0)) < 1e-8)
        True
    """
    tail = estimate_tail(g_iw, beta, n_moments=4) if tail is None else tail
    return g_tau_from_l(g_l_from_iw(g_iw, beta, n_l, tail=tail), beta, tau)


def hybridisation_l(model: AndersonModel, n_l: int) -> np.ndarray:
    """``Delta_l`` (``l < n_l``, units 1/D), the Legendre coefficients of ``Delta(tau)`` of one
    model: :func:`hybridisation_l_many` of one row.

    Example:
        >>> import numpy as np
        >>> from solvers import AndersonModel, g_l_from_poles
        >>> m = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
        >>> exact = g_l_from_poles([0.09, 0.09], [-0.5, 0.5], 10.0, 8)
        >>> bool(np.allclose(hybridisation_l(m, 8), exact))
        True
    """
    return hybridisation_l_many([model], n_l)[0]


def hybridisation_l_many(models: Sequence[AndersonModel], n_l: int,
                         moments: np.ndarray | None = None) -> np.ndarray:
    """``Delta_l`` of every model, shape ``(len(models), n_l)`` (units 1/D).

    Discrete bath: exact from the poles, ``Delta(i w_n) = sum_k V_k^2 / (i w_n - eps_k)``
    (:func:`solvers.legendre.g_l_from_poles_many`, all rows together, padded with zero weights).
    Continuous ``delta_iw``: the exact Legendre kernel of the given frequencies
    (:func:`solvers.legendre.g_l_from_iw_many`, rows of one mesh size together) with the tail
    ``M_1/(i w_n) + M_2/(i w_n)^2 + M_3/(i w_n)^3`` carried analytically, ``M_k`` the moments of
    :func:`solvers.tails.hybridisation_moments_many`.

    Args:
        models: the impurity models (discrete baths and ``delta_iw`` may be mixed).
        n_l: Legendre coefficients per row.
        moments: ``hybridisation_moments_many(models, 3)`` if already known (used for the
            continuous rows).
    """
    out, discrete, weights, energies, groups = _bath_row_arrays(models, n_l, "n_l")
    n_l = out.shape[1]
    if discrete:
        beta = np.array([models[i].beta for i in discrete])
        out[discrete] = g_l_from_poles_many(weights, energies, beta, n_l)
    if groups and moments is None:
        moments = hybridisation_moments_many(models, 3)
    for rows in groups.values():
        delta_iw = np.stack([models[i].delta_iw for i in rows])
        beta = np.array([models[i].beta for i in rows])
        out[rows] = g_l_from_iw_many(delta_iw, beta, n_l, np.asarray(moments)[rows, :3])
    return out
