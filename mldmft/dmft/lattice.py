"""Lattices of the DMFT self-consistency: density of states, Hilbert transform, kinetic energy.

One abstraction, :class:`Lattice`: ``dos(e)``, ``hilbert(zeta)`` (the local Green's function
``G_loc(zeta) = int rho(e) / (zeta - e) de`` for ``Im zeta > 0``), ``second_moment``,
``kinetic_energy`` and the self-consistency

    zeta = i w_n + mu - Sigma = Delta + 1/G_imp,   G_loc = hilbert(zeta),
    Delta_new = zeta - 1/G_loc

(``Sigma = i w_n + mu - Delta - 1/G_imp`` is Dyson's equation of the impurity with
``eps_d = -mu``). The Bethe lattice keeps its closed form ``Delta_new = t^2 G_imp``.
Lattices register by name (:func:`register_lattice`); :func:`get_lattice` builds one from a
name and its parameters, so a new lattice plugs in without edits elsewhere.

Units and defaults (energies in units of the Bethe half bandwidth, ``D = 1``):

* ``bethe``: semicircle of half bandwidth ``D = 1`` (``t = D/2``, second moment ``D^2/4``).
* ``square``: ``e_k = -2t (cos kx + cos ky) - 4t' cos kx cos ky``, default ``t = 0.25`` (half
  bandwidth ``4t = 1`` at ``t' = 0``, second moment ``4t^2 + 4t'^2``), ``|t'| < t/2``.
* ``cubic``: ``e_k = -2t (cos kx + cos ky + cos kz)``, default ``t = 1/6`` (half bandwidth
  ``6t = 1``, second moment ``6 t^2``).
* ``hypercubic``: infinite dimensions, ``rho(e) = exp(-e^2/t*^2) / (sqrt(pi) t*)`` with
  ``t* = 1/sqrt(2)`` so that the second moment ``t*^2/2`` equals the Bethe lattice's ``D^2/4``
  (Georges, Kotliar, Krauth, Rozenberg, Rev. Mod. Phys. 68, 13 (1996)).
* ``file``: a tabulated density of states (two columns ``e rho``), normalised on load and taken
  piecewise linear.

Accuracy of ``hilbert`` (checked to 1e-8 against independent quadratures in
``tests/test_lattices.py``): Bethe and hypercubic in closed form (the latter through the
Faddeeva function ``w(z)``: ``G(z) = -i sqrt(pi)/t* w(z/t*)``); the tabulated DOS exactly for
its piecewise-linear interpolant (a sum of logarithms); square and cubic lattices on a composite
Gauss-Legendre rule whose panels are at most ``~Im zeta`` wide (the integrand's Lorentzian is
resolved) and shrink geometrically (ratio 1/2) towards every non-analytic point of ``rho``
(band edges, van Hove singularities), which integrates the logarithmic and square-root
singularities to machine precision. The square-lattice DOS is in closed form through the
complete elliptic integral ``K`` (``scipy.special.ellipkm1``, accurate at the van Hove point);
the cubic DOS is the convolution ``rho_3(e) = (1/pi) int_0^pi rho_2(e - 2t cos q) dq`` of the
square-lattice DOS with the chain's, computed on the same kind of graded rule.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
from scipy import special

from solvers import bethe_g_iw, density_from_g_iw, matsubara_freqs
from solvers._roots import find_roots
from solvers.tails import MAX_MOMENTS, density_from_g_iw_many

__all__ = ["Lattice", "BetheLattice", "SquareLattice", "CubicLattice", "HypercubicLattice",
           "TabulatedLattice", "register_lattice", "get_lattice", "available_lattices",
           "square_dos", "cavity_zeta"]

_REGISTRY: dict[str, type["Lattice"]] = {}


def cavity_zeta(delta: np.ndarray, g_imp: np.ndarray) -> np.ndarray:
    """``zeta = Delta + 1/G_imp = z + mu - Sigma(z)`` (from ``G_imp = 1/(z + mu - Delta - Sigma)``,
    units D): the argument of the lattice's Hilbert transform, ``G_loc = hilbert(zeta)``, on the
    Matsubara axis (``z = i w_n``) or just above the real axis.

    Example:
        >>> float(cavity_zeta(np.array([-0.25j]), np.array([-0.5j]))[0].imag)   # 1/G = 2i
        1.75
    """
    return np.asarray(delta) + 1.0 / np.asarray(g_imp)


def register_lattice(name: str) -> Callable[[type], type]:
    """Class decorator: make a :class:`Lattice` subclass available as ``get_lattice(name)``."""

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"lattice {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available_lattices() -> list[str]:
    """Registered lattice names."""
    return sorted(_REGISTRY)


def get_lattice(spec: "str | Lattice | dict[str, Any] | None" = None, **params: Any) -> "Lattice":
    """A lattice from its name and parameters, a dict ``{"name": ..., **params}``, or itself.

    Example:
        >>> get_lattice("square", t=0.25).second_moment
        0.25
    """
    if spec is None:
        spec = "bethe"
    if isinstance(spec, Lattice):
        if params:
            raise ValueError("lattice parameters given together with a lattice object")
        return spec
    if isinstance(spec, dict):
        params = {**{k: v for k, v in spec.items() if k != "name"}, **params}
        spec = spec.get("name", "bethe")
    if spec not in _REGISTRY:
        raise ValueError(f"unknown lattice {spec!r}; available: {', '.join(available_lattices())}")
    cls = _REGISTRY[spec]
    try:
        return cls(**params)
    except TypeError as err:
        raise ValueError(f"lattice {spec!r}: bad parameters {sorted(params)} ({err})") from None


class Lattice(ABC):
    """A non-interacting lattice, seen by DMFT only through its density of states ``rho(e)``.

    Subclasses are frozen dataclasses registered with :func:`register_lattice`; they implement
    :meth:`dos`, :meth:`hilbert`, :attr:`second_moment` and :attr:`D`.
    """

    name: ClassVar[str] = ""

    @property
    @abstractmethod
    def D(self) -> float:
        """Energy scale stored with the results: the half bandwidth (compact band), or
        ``2 sqrt(second moment)`` (the Bethe half bandwidth of the same second moment)."""

    @property
    @abstractmethod
    def second_moment(self) -> float:
        """``int rho(e) e^2 de`` (units D^2)."""

    @property
    def first_moment(self) -> float:
        """``int rho(e) e de`` (0 for the particle-hole symmetric lattices)."""
        return 0.0

    @property
    def particle_hole_symmetric(self) -> bool:
        """``rho(e) = rho(-e)``: then ``mu = U/2`` is half filling and the loop may set
        ``Re Delta = 0``."""
        return True

    @abstractmethod
    def dos(self, e: np.ndarray) -> np.ndarray:
        """Density of states per spin ``rho(e)``, normalised to 1 (units 1/D)."""

    @abstractmethod
    def hilbert(self, zeta: np.ndarray) -> np.ndarray:
        """``G(zeta) = int rho(e) / (zeta - e) de`` for ``Im zeta > 0`` (units 1/D)."""

    def params(self) -> dict[str, Any]:
        """Name and parameters (stored with every sweep)."""
        out: dict[str, Any] = {"name": self.name}
        for k, v in getattr(self, "__dataclass_fields__", {}).items():
            if v.repr:
                out[k] = getattr(self, k)
        return out

    # ------------------------------------------------------------------ self-consistency
    def self_consistency(self, g_imp_iw: np.ndarray, delta_iw: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """New hybridisation and local ``G`` from the impurity ``G`` and the ``Delta`` that
        produced it: ``zeta = Delta + 1/G_imp``, ``G_loc = hilbert(zeta)``,
        ``Delta_new = zeta - 1/G_loc``."""
        return self.delta_from_zeta(cavity_zeta(delta_iw, g_imp_iw))

    def delta_from_zeta(self, zeta_iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(Delta, G_loc)`` with ``G_loc = hilbert(zeta)`` and ``Delta = zeta - 1/G_loc``,
        ``zeta = i w_n + mu - Sigma`` (the cavity field of the lattice at this ``mu``)."""
        zeta = np.asarray(zeta_iw, dtype=complex)
        g_loc = self.hilbert(zeta)
        return zeta - 1.0 / g_loc, g_loc

    def local_density(self, zeta_iw: np.ndarray, beta: float) -> float:
        """Filling, both spins, of ``G_loc = hilbert(zeta)``: ``n = 2 (1/beta) sum_{n in Z}
        G_loc(i w_n) e^{i w_n 0+}`` with the exact ``1/(i w_n)`` tail and the next moments
        fitted (:func:`solvers.density_from_g_iw`)."""
        return 2.0 * density_from_g_iw(self.hilbert(np.asarray(zeta_iw, dtype=complex)), beta)

    def local_densities(self, zeta_iw: np.ndarray, beta: np.ndarray) -> np.ndarray:
        """:meth:`local_density` of every row of ``zeta_iw`` (shape ``(B, N)``, one ``beta`` per
        row): the Hilbert transform row by row (a graded quadrature rule depends on the whole
        array it is given), the Matsubara sums of all rows together -- the same numbers as
        :meth:`local_density` row by row, which a lattice that overrides it is asked for
        instead."""
        beta = np.asarray(beta, dtype=float)
        if type(self).local_density is not Lattice.local_density:
            return np.array([self.local_density(z, float(b)) for z, b in zip(zeta_iw, beta)])
        g_loc = np.stack([self.hilbert(np.asarray(z, dtype=complex)) for z in zeta_iw])
        return 2.0 * density_from_g_iw_many(g_loc, beta, np.ones((len(beta), 1)), MAX_MOMENTS)

    def chemical_potential(self, density: float, beta: float, sigma_iw: np.ndarray,
                           mu_guess: float = 0.0, xtol: float = 1e-10) -> float:
        """The ``mu`` at which the lattice holds ``density`` electrons per site (both spins) at
        a fixed self-energy: ``local_density(i w_n + mu - Sigma(i w_n)) = density``
        (:meth:`chemical_potentials` of one row). ``Sigma = 0`` gives the non-interacting
        chemical potential.

        Raises:
            ValueError: ``density`` outside ``(0, 2)``.
            RuntimeError: no ``mu`` gives ``density`` (the message says which densities the
                search saw).
        """
        if not (0.0 < density < 2.0):
            raise ValueError(f"density must lie in (0, 2), got {density}")
        mu, errors = self._mu_search(
            np.array([density], dtype=float), np.array([beta], dtype=float),
            np.asarray(sigma_iw, dtype=complex)[None, :], np.array([mu_guess], dtype=float),
            xtol)
        if errors[0]:
            raise RuntimeError(errors[0])
        return float(mu[0])

    def chemical_potentials(self, density: np.ndarray, beta: np.ndarray, sigma_iw: np.ndarray,
                            mu_guess: np.ndarray, xtol: float = 1e-10
                            ) -> tuple[np.ndarray, list[str]]:
        """:meth:`chemical_potential` of many rows at once: the ``mu`` with
        ``local_density(i w_n + mu - Sigma_b) = density_b`` for every row ``b`` (``sigma_iw`` of
        shape ``(B, N)``), each row with its own search, independent of the others.

        ``n(mu)`` rises from 0 to 2; from ``mu_guess`` steps of ``0.05 D`` that double until the
        sign of ``n(mu) - density`` changes (at most 60) bracket the root, which a bracketed
        method of the Brent family finds to ``xtol`` (units D): Chandrupatla's,
        :func:`solvers._roots.find_roots` (T. R. Chandrupatla, Adv. Eng. Softw. 28, 145 (1997)).
        The densities of all rows still searching are computed together
        (:meth:`local_densities`), which is what makes a batch cheaper than its rows one by one.
        A lattice that overrides :meth:`chemical_potential` is asked for it row by row.

        Returns:
            ``(mu, errors)``: ``mu`` of shape ``(B,)`` (NaN for a row without a root) and per
            row ``""`` or the reason (one line).

        Example (the free Bethe lattice: half filled at ``mu = 0``, ``n = 0.8`` below it):
            >>> mu, errors = BetheLattice().chemical_potentials(
            ...     np.array([1.0, 0.8]), np.array([20.0, 20.0]), np.zeros((2, 256)), np.zeros(2))
            >>> bool(abs(mu[0]) < 1e-10), bool(-0.3 < mu[1] < 0), errors
            (True, True, ['', ''])
        """
        if type(self).chemical_potential is Lattice.chemical_potential:
            return self._mu_search(density, beta, sigma_iw, mu_guess, xtol)
        mus, errs = np.full(len(density), np.nan), [""] * len(density)
        for i in range(len(density)):
            try:
                mus[i] = self.chemical_potential(float(density[i]), float(beta[i]), sigma_iw[i],
                                                 float(mu_guess[i]), xtol)
            except (RuntimeError, ValueError) as err:
                errs[i] = str(err)
        return mus, errs

    def _mu_search(self, density: np.ndarray, beta: np.ndarray, sigma_iw: np.ndarray,
                   mu_guess: np.ndarray, xtol: float) -> tuple[np.ndarray, list[str]]:
        """The vectorised search of :meth:`chemical_potentials` (no dispatch to an override)."""
        density = np.asarray(density, dtype=float)
        beta = np.asarray(beta, dtype=float)
        n_rows, n_iw = np.shape(sigma_iw)
        errors = ["" if 0.0 < d < 2.0 else f"density must lie in (0, 2), got {d}"
                  for d in density]
        base = 1j * np.stack([matsubara_freqs(float(b), n_iw) for b in beta]) - np.asarray(
            sigma_iw, dtype=complex)

        def excess(mu: np.ndarray, rows: np.ndarray) -> np.ndarray:
            return self.local_densities(base[rows] + mu[:, None], beta[rows]) - density[rows]

        lo = np.array(mu_guess, dtype=float).reshape(n_rows)
        hi = lo.copy()
        f_lo = np.full(n_rows, np.nan)
        rows = np.flatnonzero(np.array([not e for e in errors], dtype=bool))
        if rows.size:
            f_lo[rows] = excess(lo[rows], rows)
        f_hi = f_lo.copy()
        step = np.full(n_rows, 0.05 * self.D)
        for _ in range(60):
            rows = rows[~((f_lo[rows] <= 0.0) & (0.0 <= f_hi[rows]))]
            if rows.size == 0:
                break
            up = f_hi[rows] < 0.0
            r_up, r_dn = rows[up], rows[~up]
            lo[r_up], f_lo[r_up] = hi[r_up], f_hi[r_up]
            hi[r_up] += step[r_up]
            hi[r_dn], f_hi[r_dn] = lo[r_dn], f_lo[r_dn]
            lo[r_dn] -= step[r_dn]
            x = np.concatenate([hi[r_up], lo[r_dn]])
            values = excess(x, np.concatenate([r_up, r_dn])) if x.size else x
            f_hi[r_up], f_lo[r_dn] = values[:r_up.size], values[r_up.size:]
            step[rows] *= 2.0
        else:
            rows = rows[~((f_lo[rows] <= 0.0) & (0.0 <= f_hi[rows]))]
        mu = np.full(n_rows, np.nan)
        for i in rows.tolist():
            errors[i] = (f"{self.name}: no chemical potential gives density {density[i]} (n = "
                         f"{f_lo[i] + density[i]:.6g} .. {f_hi[i] + density[i]:.6g} at mu = "
                         f"{lo[i]:.4g} .. {hi[i]:.4g})")
        good = np.array([not e for e in errors], dtype=bool)
        at_lo, at_hi = good & (f_lo == 0.0), good & (f_lo != 0.0) & (f_hi == 0.0)
        mu[at_lo], mu[at_hi] = lo[at_lo], hi[at_hi]
        search = np.flatnonzero(good & ~at_lo & ~at_hi)
        if search.size:
            mu[search] = find_roots(lambda x, sub: excess(x, search[sub]), lo[search],
                                    hi[search], f_lo[search], f_hi[search], xtol=xtol,
                                    rtol=4 * np.finfo(float).eps, max_iter=200)[0]
        return mu, errors

    def g0_iw(self, beta: float, n_iw: int, mu: float = 0.0) -> np.ndarray:
        """Non-interacting local ``G(i w_n) = hilbert(i w_n + mu)``."""
        return self.hilbert(1j * matsubara_freqs(beta, n_iw) + mu)

    def seed_delta_iw(self, beta: float, n_iw: int, U: float | None = None) -> np.ndarray:
        """Starting hybridisation at half filling: the free band (``U=None``, metal) or the
        Hubbard-I insulator ``zeta = i w_n - U^2/(4 i w_n)`` (atomic self-energy)."""
        iw = 1j * matsubara_freqs(beta, n_iw)
        zeta = iw if U is None else iw - U * U / (4 * iw)
        return zeta - 1.0 / self.hilbert(zeta)

    def kinetic_energy(self, g_iw: np.ndarray, beta: float,
                       zeta_iw: np.ndarray | None = None) -> float:
        """Kinetic energy per site, both spins, ``E_kin = 2 T sum_{n in Z} int rho(e) e
        G_e(i w_n) e^{i w_n 0+} de`` with ``int rho e G_e = zeta G_loc - 1``:

        ``E_kin = (4/beta) Re sum_{n<N} (zeta_n G_n - 1 + c/w_n^2) - c beta/2 + m_1``,

        the tail ``-c/w_n^2`` (``c = m_2 - m_1 Re zeta``) summed exactly
        (``sum_{n>=0} 1/w_n^2 = beta^2/8``); ``m_1`` is the convergence-factor term.
        """
        if zeta_iw is None:
            raise ValueError(f"{self.name}: kinetic_energy needs zeta = i w_n + mu - Sigma")
        g_iw = np.asarray(g_iw)
        zeta = np.asarray(zeta_iw)
        wn = matsubara_freqs(beta, g_iw.size)
        m1 = self.first_moment
        c = self.second_moment - m1 * float(np.real(zeta[-1]))
        s = np.sum(np.real(zeta * g_iw - 1.0) + c / wn ** 2)
        return float(4.0 / beta * s - c * beta / 2 + m1)

    def free_density(self, mu: float, beta: float) -> float:
        """Non-interacting filling, both spins: ``2 int rho(e) f(e - mu) de`` (Matsubara sum of
        ``hilbert(i w_n + mu)`` with the exact ``1/(i w_n)`` and ``(mu - m_1)/(i w_n)^2``
        tails)."""
        n_iw = max(2048, int(20 * beta))
        g = self.g0_iw(beta, n_iw, mu)
        m2 = self.second_moment - 2 * mu * self.first_moment + mu * mu
        return 2.0 * density_from_g_iw(g, beta, tail=(1.0, self.first_moment - mu, m2))


# ====================================================================== Bethe lattice
@register_lattice("bethe")
@dataclass(frozen=True)
class BetheLattice(Lattice):
    """Bethe lattice of half bandwidth ``D`` (units of energy), semicircular DOS.

    Example:
        >>> lat = BetheLattice(D=1.0)
        >>> round(lat.t, 3)
        0.5
    """

    D: float = 1.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.D) or self.D <= 0:
            raise ValueError(f"lattice D must be > 0, got {self.D}")

    @property
    def t(self) -> float:
        """Hopping ``t = D/2``."""
        return self.D / 2

    @property
    def second_moment(self) -> float:
        return self.D ** 2 / 4

    def dos(self, e: np.ndarray) -> np.ndarray:
        """``rho(e) = 2/(pi D^2) sqrt(D^2 - e^2)``."""
        e = np.asarray(e, dtype=float)
        return 2 / (math.pi * self.D ** 2) * np.sqrt(np.clip(self.D ** 2 - e * e, 0, None))

    def hilbert(self, zeta: np.ndarray) -> np.ndarray:
        """``G(zeta) = 2/(zeta + sqrt(zeta^2 - D^2))`` on the branch ``Im G < 0``."""
        zeta = np.asarray(zeta, dtype=complex)
        sq = np.sqrt(zeta - self.D) * np.sqrt(zeta + self.D)  # branch ~ zeta for Im zeta > 0
        return 2.0 / (zeta + sq)

    def delta_iw(self, g_iw: np.ndarray) -> np.ndarray:
        """Self-consistency ``Delta(i w_n) = t^2 G(i w_n)``."""
        return self.t ** 2 * np.asarray(g_iw)

    def self_consistency(self, g_imp_iw: np.ndarray, delta_iw: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """The closed form ``Delta_new = t^2 G_imp`` (``G_loc = G_imp``)."""
        return self.delta_iw(g_imp_iw), np.asarray(g_imp_iw)

    def delta_from_zeta(self, zeta_iw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(t^2 G_loc, G_loc)``, ``G_loc = hilbert(zeta)`` (equal to ``zeta - 1/G_loc`` for
        the semicircle, without its cancellation at high frequency)."""
        g_loc = self.hilbert(zeta_iw)
        return self.delta_iw(g_loc), g_loc

    def g0_iw(self, beta: float, n_iw: int, mu: float = 0.0) -> np.ndarray:
        """Non-interacting local Green's function (semicircle) at chemical potential ``mu``."""
        return bethe_g_iw(matsubara_freqs(beta, n_iw), D=self.D, mu=mu)

    def seed_delta_iw(self, beta: float, n_iw: int, U: float | None = None) -> np.ndarray:
        """``t^2 G_0`` (metal) or ``t^2 G_at`` with the half-filled atomic
        ``G = (1/(iw - U/2) + 1/(iw + U/2))/2`` (insulator)."""
        if U is None:
            return self.delta_iw(self.g0_iw(beta, n_iw))
        iw = 1j * matsubara_freqs(beta, n_iw)
        return self.delta_iw(0.5 * (1 / (iw - U / 2) + 1 / (iw + U / 2)))

    def kinetic_energy(self, g_iw: np.ndarray, beta: float,
                       zeta_iw: np.ndarray | None = None) -> float:
        """Kinetic energy per site, both spins: ``E_kin = 2 T sum_{n in Z} t^2 G(i w_n)^2``.

        The ``t^2/(i w_n)^2`` tail is summed exactly (``sum_{n>=0} 1/w_n^2 = beta^2/8``):
        ``E_kin = (4 t^2/beta) [Re sum_{n<N} (G_n^2 + 1/w_n^2) - beta^2/8]``. At ``U = 0`` and
        ``T -> 0`` it tends to ``-4D/(3 pi)``. (``zeta_iw`` is not needed.)
        """
        g_iw = np.asarray(g_iw)
        wn = matsubara_freqs(beta, g_iw.size)
        s = np.sum(np.real(g_iw ** 2) + 1.0 / wn ** 2)
        return float(4 * self.t ** 2 / beta * (s - beta ** 2 / 8))


# ====================================================================== graded quadrature
_GL16 = np.polynomial.legendre.leggauss(16)
_GL12 = np.polynomial.legendre.leggauss(12)
_GL6 = np.polynomial.legendre.leggauss(6)
_H_MAX = 0.1        # widest panel (units D)
_H_MIN = 2.5e-4     # narrowest uniform panel: Im zeta below ~2e-4 loses accuracy
_GRADE_MIN = 1e-11  # graded panels stop at this distance from a singular point
_HALVES = 0.5 ** np.arange(64)


def _gauss_panels(edges: np.ndarray, rule: tuple[np.ndarray, np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray]:
    x, w = rule
    a, b = edges[:-1, None], edges[1:, None]
    half = 0.5 * (b - a)
    return (0.5 * (a + b) + half * x[None, :]).ravel(), (half * w[None, :]).ravel()


def graded_rule(lo: float, hi: float, breaks: tuple[float, ...], h: float,
                singular: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on ``[lo, hi]``: panels at most ``h`` wide, split at every point of
    ``breaks`` and refined geometrically (ratio 1/2, down to ``1e-11``) towards the points of
    ``singular`` (default: ``lo``, ``hi`` and the breaks), where the integrand may have a log or
    square-root singularity (a jump needs only the split). 16-point Gauss-Legendre on uniform
    panels, 12-point on the graded ones (each at least its own width from the singularity;
    6-point below width 1e-4, whose whole contribution is below ~1e-3 of the integral)."""
    pts = sorted({lo, hi, *(b for b in breaks if lo < b < hi)})
    sing = set(pts) if singular is None else set(singular)
    xs, ws = [], []
    for a, b in zip(pts[:-1], pts[1:]):
        width = b - a
        g = min(h, width / 4)
        grade = g * _HALVES[g * _HALVES > _GRADE_MIN]
        coarse, fine = grade[grade >= 1e-4], grade[grade < 1e-4]
        start, stop = a, b
        parts = []
        if a in sing:  # panels [a + grade[k+1], a + grade[k]]
            parts.append((a + np.concatenate([fine[::-1], coarse[-1:]]), _GL6))
            parts.append((a + coarse[::-1], _GL12))
            parts.append((np.array([a, a + grade[-1]]), _GL6))
            start = a + g
        if b in sing:
            parts.append((b - np.concatenate([fine[::-1], coarse[-1:]]), _GL6))
            parts.append((b - coarse[::-1], _GL12))
            parts.append((np.array([b - grade[-1], b]), _GL6))
            stop = b - g
        n_uni = max(1, int(math.ceil((stop - start) / h)))
        parts.append((np.linspace(start, stop, n_uni + 1), _GL16))
        for edges, rule in parts:
            if edges.size < 2:
                continue
            x, w = _gauss_panels(np.sort(edges), rule)
            xs.append(x)
            ws.append(w)
    return np.concatenate(xs), np.concatenate(ws)


class _QuadratureLattice(Lattice):
    """A lattice whose Hilbert transform is a graded Gauss rule over its DOS (the DOS is
    evaluated once per panel width and cached)."""

    @property
    @abstractmethod
    def band(self) -> tuple[float, float]:
        """Support ``[e_min, e_max]`` of the DOS."""

    @property
    @abstractmethod
    def singular_points(self) -> tuple[float, ...]:
        """Interior points where ``rho`` is not analytic (van Hove singularities)."""

    @property
    def graded_points(self) -> tuple[float, ...]:
        """Points the rule is refined towards: band edges and singular points (a lattice whose
        DOS is analytic up to its band edges drops the edges)."""
        return (*self.band, *self.singular_points)

    def _rule(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        return _rule_cached(self, level)

    def _raw_rule(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.band
        x, w = graded_rule(lo, hi, self.singular_points, _H_MAX * 0.5 ** level,
                           singular=self.graded_points)
        return x, w * self.dos(x)

    def hilbert(self, zeta: np.ndarray) -> np.ndarray:
        """Graded Gauss rules (module doc): panels of 0.1 D where ``Im zeta >= 0.077``, else no
        wider than ``1.3 min Im zeta``."""
        zeta = np.asarray(zeta, dtype=complex)
        flat = zeta.ravel()
        if np.any(~(flat.imag > 0)):
            raise ValueError(f"{self.name}: hilbert needs Im zeta > 0")
        # two rules at most: h = 0.1 where Im zeta >= 0.1/1.3, else h = 0.1/2^level <=
        # 1.3 min Im zeta (at least _H_MIN)
        h_need = max(1.3 * float(np.min(flat.imag)), _H_MIN)
        fine = max(0, int(math.ceil(math.log2(_H_MAX / h_need))))
        levels = np.where(1.3 * flat.imag >= _H_MAX, 0, fine)
        out = np.empty(flat.size, dtype=complex)
        for level in np.unique(levels):
            idx = np.nonzero(levels == level)[0]
            x, wr = self._rule(int(level))
            for lo in range(0, idx.size, 256):
                sub = idx[lo:lo + 256]
                out[sub] = (1.0 / (flat[sub, None] - x[None, :])) @ wr
        return out.reshape(zeta.shape)


@lru_cache(maxsize=64)
def _rule_cached(lattice: _QuadratureLattice, level: int) -> tuple[np.ndarray, np.ndarray]:
    return lattice._raw_rule(level)


# ====================================================================== square lattice
def square_dos(e: np.ndarray, t: float = 0.25, tp: float = 0.0) -> np.ndarray:
    """DOS of ``e_k = -2t (cos kx + cos ky) - 4t' cos kx cos ky`` (``|t'| < t/2``), in closed form.

    With ``c = cos ky``, ``rho(e) = (1/pi^2) int dc / sqrt((1 - c^2) Q(c))``,
    ``Q(c) = (2t + 4t'c)^2 - (e + 2tc)^2``: a complete elliptic integral over ``[r2, r3]`` of the
    quartic's sorted roots ``r1 < r2 < r3 < r4`` (``+-1`` and the roots of ``Q``),
    ``rho = 2 K(k) / (pi^2 sqrt(A (r4 - r2)(r3 - r1)))``, ``A = 4t^2 - 16t'^2``,
    ``1 - k^2 = (r2 - r1)(r4 - r3) / ((r4 - r2)(r3 - r1))`` (Gradshteyn & Ryzhik 3.147).
    At ``t' = 0``: ``rho = K(sqrt(1 - (e/4t)^2)) / (2 pi^2 t)``.
    """
    e = np.asarray(e, dtype=float)
    q1 = (e - 2 * t) / (4 * tp - 2 * t)
    q2 = -(e + 2 * t) / (4 * tp + 2 * t)
    roots = np.sort(np.stack([np.full(e.shape, -1.0), np.full(e.shape, 1.0), q1, q2]), axis=0)
    r1, r2, r3, r4 = roots
    a = 4 * t * t - 16 * tp * tp
    inside = (np.minimum(q1, q2) < 1) & (np.maximum(q1, q2) > -1)
    den = (r4 - r2) * (r3 - r1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (r2 - r1) * (r4 - r3) / den
        val = 2 * special.ellipkm1(p) / (math.pi ** 2 * np.sqrt(a * den))
    return np.where(inside & np.isfinite(val), val, 0.0)


@register_lattice("square")
@dataclass(frozen=True)
class SquareLattice(_QuadratureLattice):
    """2D square lattice with nearest (``t``) and next-nearest (``tp`` = t') hopping.

    Default ``t = 0.25``: half bandwidth ``4t = 1``; ``|tp| < t/2`` (one van Hove point at
    ``e = 4t'``, band ``[-4t - 4t', 4t - 4t']``)."""

    t: float = 0.25
    tp: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.t) and self.t > 0):
            raise ValueError(f"square lattice: t must be > 0, got {self.t}")
        if not (np.isfinite(self.tp) and abs(self.tp) < self.t / 2):
            raise ValueError(f"square lattice: need |tp| < t/2, got t={self.t}, tp={self.tp}")

    @property
    def band(self) -> tuple[float, float]:
        return (-4 * self.t - 4 * self.tp, 4 * self.t - 4 * self.tp)

    @property
    def singular_points(self) -> tuple[float, ...]:
        return (4 * self.tp,)

    @property
    def D(self) -> float:
        return 4 * self.t

    @property
    def particle_hole_symmetric(self) -> bool:
        return self.tp == 0

    @property
    def graded_points(self) -> tuple[float, ...]:
        """Only the van Hove point: the DOS is analytic up to the band edges (a 2D step)."""
        return self.singular_points

    @property
    def second_moment(self) -> float:
        return 4 * self.t ** 2 + 4 * self.tp ** 2

    def dos(self, e: np.ndarray) -> np.ndarray:
        return square_dos(e, self.t, self.tp)


# ====================================================================== cubic lattice
@register_lattice("cubic")
@dataclass(frozen=True)
class CubicLattice(_QuadratureLattice):
    """3D simple cubic lattice ``e_k = -2t (cos kx + cos ky + cos kz)``; default ``t = 1/6``
    (half bandwidth ``6t = 1``). ``rho_3(e) = (1/pi) int_0^pi rho_2(e - 2t cos q) dq``."""

    t: float = 1.0 / 6.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.t) and self.t > 0):
            raise ValueError(f"cubic lattice: t must be > 0, got {self.t}")

    @property
    def band(self) -> tuple[float, float]:
        return (-6 * self.t, 6 * self.t)

    @property
    def singular_points(self) -> tuple[float, ...]:
        return (-2 * self.t, 2 * self.t)

    @property
    def D(self) -> float:
        return 6 * self.t

    @property
    def second_moment(self) -> float:
        return 6 * self.t ** 2

    def dos(self, e: np.ndarray) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        flat = e.ravel()
        out = np.zeros(flat.size)
        for lo in range(0, flat.size, 128):  # batches: one square_dos call per batch
            rules = [self._q_rule(float(x)) for x in flat[lo:lo + 128]]
            q = np.concatenate([r[0] for r in rules])
            w = np.concatenate([r[1] for r in rules])
            ee = np.repeat(flat[lo:lo + 128], [r[0].size for r in rules])
            vals = w * square_dos(ee - 2 * self.t * np.cos(q), self.t, 0.0)
            starts = np.cumsum([0] + [r[0].size for r in rules[:-1]])
            out[lo:lo + 128] = np.add.reduceat(vals, starts) / math.pi
        return out.reshape(e.shape)

    def _q_rule(self, e: float) -> tuple[np.ndarray, np.ndarray]:
        """Rule in ``q`` for ``rho_3(e) = (1/pi) int_0^pi rho_2(e - 2t cos q) dq``."""
        t = self.t
        if abs(e) >= 6 * t:
            return np.zeros(1), np.zeros(1)
        # q where the square-lattice argument e - 2t cos q hits its log point 0 or its edges
        breaks, log_point = [], []
        for target in (0.0, 4 * t, -4 * t):
            c = (e - target) / (2 * t)
            if -1 < c < 1:
                breaks.append(math.acos(c))
                if target == 0.0:
                    log_point.append(breaks[-1])
        # graded only at the log point; the edges of rho_2 are jumps, q = 0, pi are smooth
        return graded_rule(0.0, math.pi, tuple(breaks), 0.2, singular=tuple(log_point))


# ====================================================================== hypercubic lattice
@register_lattice("hypercubic")
@dataclass(frozen=True)
class HypercubicLattice(Lattice):
    """Infinite-dimensional hypercubic lattice, Gaussian DOS ``exp(-e^2/t*^2)/(sqrt(pi) t*)``.

    Default ``t* = 1/sqrt(2)``: second moment ``t*^2/2 = 1/4``, as the Bethe lattice with
    ``D = 1`` (Georges et al., Rev. Mod. Phys. 68, 13 (1996))."""

    t_star: float = 1.0 / math.sqrt(2.0)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.t_star) and self.t_star > 0):
            raise ValueError(f"hypercubic lattice: t_star must be > 0, got {self.t_star}")

    @property
    def D(self) -> float:
        return 2 * math.sqrt(self.second_moment)

    @property
    def second_moment(self) -> float:
        return self.t_star ** 2 / 2

    def dos(self, e: np.ndarray) -> np.ndarray:
        e = np.asarray(e, dtype=float)
        return np.exp(-(e / self.t_star) ** 2) / (math.sqrt(math.pi) * self.t_star)

    def hilbert(self, zeta: np.ndarray) -> np.ndarray:
        """``G(zeta) = -i sqrt(pi)/t* w(zeta/t*)`` (Faddeeva ``w``, ``Im zeta > 0``)."""
        zeta = np.asarray(zeta, dtype=complex)
        return -1j * math.sqrt(math.pi) / self.t_star * special.wofz(zeta / self.t_star)


# ====================================================================== tabulated DOS
@register_lattice("file")
@dataclass(frozen=True)
class TabulatedLattice(Lattice):
    """Any DOS read from a two-column text file ``e rho(e)`` (energies increasing, units D),
    taken piecewise linear between the points and normalised on load. Its Hilbert transform is
    exact for the interpolant: on a segment ``[e_i, e_i+1]`` with slope ``s_i``,
    ``int (rho_i + s_i (e - e_i))/(z - e) de = (rho_i + s_i (z - e_i)) log((z-e_i)/(z-e_i+1))
    - s_i (e_i+1 - e_i)``.
    """

    path: str = ""
    _e: np.ndarray = field(init=False, repr=False, compare=False)
    _rho: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("lattice 'file' needs path=FILE (two columns: e rho)")
        p = Path(self.path)
        if not p.is_file():
            raise ValueError(f"DOS file {p} does not exist")
        try:
            with warnings.catch_warnings():  # an empty file: numpy warns, then we refuse it
                warnings.simplefilter("ignore", UserWarning)
                data = np.loadtxt(p, ndmin=2)
        except ValueError as err:
            raise ValueError(f"DOS file {p}: not a table of numbers ({err})") from None
        if data.ndim != 2 or data.shape[1] != 2 or data.shape[0] < 2:
            raise ValueError(f"DOS file {p}: need two columns (e, rho) and >= 2 rows, got "
                             f"shape {data.shape}")
        e, rho = data[:, 0], data[:, 1]
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(rho))):
            raise ValueError(f"DOS file {p}: non-finite values; the DOS is not integrable")
        if np.any(np.diff(e) <= 0):
            raise ValueError(f"DOS file {p}: energies must increase strictly")
        if np.any(rho < 0):
            k = int(np.argmin(rho))
            raise ValueError(f"DOS file {p}: negative density of states {rho[k]:.3g} at "
                             f"e = {e[k]:.6g}")
        norm = float(np.trapezoid(rho, e))
        if not norm > 0:
            raise ValueError(f"DOS file {p}: the DOS integrates to {norm:.3g}; cannot normalise")
        object.__setattr__(self, "_e", e)
        object.__setattr__(self, "_rho", rho / norm)

    def _moment(self, k: int) -> float:
        x, w = np.polynomial.legendre.leggauss(3)  # exact for (linear rho) * e^k, k <= 4
        a, b = self._e[:-1, None], self._e[1:, None]
        nodes = 0.5 * (a + b) + 0.5 * (b - a) * x
        return float(np.sum(0.5 * (b - a) * w * self.dos(nodes) * nodes ** k))

    @property
    def D(self) -> float:
        return float(max(abs(self._e[0]), abs(self._e[-1])))

    @property
    def first_moment(self) -> float:
        return self._moment(1)

    @property
    def particle_hole_symmetric(self) -> bool:
        e, r = self._e, self._rho
        return bool(np.allclose(e, -e[::-1], rtol=0, atol=1e-12 * self.D)
                    and np.allclose(r, r[::-1], rtol=1e-12, atol=0))

    @property
    def second_moment(self) -> float:
        return self._moment(2)

    def dos(self, e: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(e, dtype=float), self._e, self._rho, left=0.0, right=0.0)

    def hilbert(self, zeta: np.ndarray) -> np.ndarray:
        zeta = np.asarray(zeta, dtype=complex)
        flat = zeta.ravel()
        e, r = self._e, self._rho
        de = np.diff(e)
        s = np.diff(r) / de
        out = np.empty(flat.size, dtype=complex)
        for lo in range(0, flat.size, 64):
            z = flat[lo:lo + 64, None]
            logs = np.log(z - e[None, :])
            ratio = logs[:, :-1] - logs[:, 1:]
            out[lo:lo + 64] = np.sum((r[:-1] + s * (z - e[:-1])) * ratio - s * de, axis=1)
        return out.reshape(zeta.shape)
