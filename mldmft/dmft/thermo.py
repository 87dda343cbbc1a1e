"""Free energies by thermodynamic integration, and the first-order Mott transition line.

Per lattice site, at half filling on a particle-hole symmetric lattice (``mu = U/2``), the grand
potential ``Omega(T, U) = -T ln Tr exp(-beta (H_kin + U sum_i n_i_up n_i_dn - mu N)) / N_sites``
(units of D, like ``U`` and ``T``; ``beta`` in 1/D) obeys (Hellmann-Feynman, ``d/dU`` of
``H - mu N = H_kin + U sum_i (n_i_up n_i_dn - n_i/2)``)::

    dOmega/dU |_T          = d - n/2          (= d - 1/2 at n = 1)
    d(beta Omega)/dbeta |_U = E = E_kin + U d - mu n   (= E_kin + U d - U/2 at n = 1)

with ``d = <n_up n_dn>`` the double occupancy, ``n`` the density (both spins) and ``E_kin`` the
kinetic energy per site (both spins) -- ``DMFTPoint.double_occupancy``, ``.density`` and
``.kinetic_energy``; ``-n/2`` is the chemical-potential term ``-(d mu/dU) n``. Together
``d(beta Omega) = E dbeta + beta (d - n/2) dU``: ``Phi = beta Omega`` is a potential of the
``(beta, U)`` plane, and its integral around a closed loop vanishes wherever the solution is
single valued (a loop not enclosing the critical end point). DMFT with an exact impurity solver
is thermodynamically consistent (Phi-derivable), so this holds to the integration error; an
approximate solver (IPT) or a network need not satisfy it, and :func:`loop_defect` measures by
how much.

Integrals are cumulative Simpson sums on the computed points
(:func:`scipy.integrate.cumulative_simpson`); their error is estimated by the difference from
the trapezoidal rule on the same points (conservative: it estimates the trapezoid's error, which
is larger than Simpson's for a smooth integrand). Along ``U`` on one branch ``d - n/2`` is
interpolated monotonically (PCHIP) and integrated exactly (:class:`BranchPotential`); its error
is the difference from the piecewise-linear interpolant.

The first-order line ``Uc(T)`` is where the two branches' grand potentials cross,
``Omega_metal(T, U) = Omega_insulator(T, U)`` (equal ``n = 1``, so also the Helmholtz free
energies ``F = Omega + mu n`` cross there); :func:`first_order_crossing` finds it inside the
coexistence window. Reference: the same construction with QMC data in Georges, Kotliar,
Krauth, Rozenberg, Rev. Mod. Phys. 68, 13 (1996), Sec. VII; with CT-QMC data in Kim, Choi,
Jeon, J. Korean Phys. Soc. (2014), arXiv:1405.4512.

Example (the Hubbard atom, ``E_kin = 0``, is exact):

    >>> import numpy as np
    >>> U = np.linspace(0.0, 2.0, 41)
    >>> omega, docc, energy = atomic_limit(10.0, U)
    >>> total = cumulative_integral(U, docc - 0.5)
    >>> bool(abs(total.value[-1] - (omega[-1] - omega[0])) < 1e-6)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.integrate import cumulative_simpson, cumulative_trapezoid
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq

from .loop import DMFTPoint

__all__ = ["internal_energy", "omega_slope", "Cumulative", "cumulative_integral",
           "BranchPotential", "Crossing", "first_order_crossing", "loop_defect", "atomic_limit"]


def internal_energy(point: DMFTPoint) -> float:
    """``E = E_kin + U d - mu n`` per site (D): ``d(beta Omega)/dbeta`` at fixed ``U``."""
    return float(point.kinetic_energy + point.U * point.double_occupancy
                 - point.mu * point.density)


def omega_slope(point: DMFTPoint) -> float:
    """``dOmega/dU = d - n/2`` at fixed ``T`` and ``mu = U/2`` (dimensionless)."""
    return float(point.double_occupancy - 0.5 * point.density)


@dataclass(frozen=True)
class Cumulative:
    """``value[k] = initial + int_{x[0]}^{x[k]} y dx`` and its estimated ``error[k]``."""

    x: np.ndarray
    value: np.ndarray
    error: np.ndarray


def cumulative_integral(x: Sequence[float], y: Sequence[float], initial: float = 0.0,
                        initial_error: float = 0.0) -> Cumulative:
    """Cumulative integral of ``y(x)`` from ``x[0]`` (Simpson's rule on the given points, which
    may be unevenly spaced and run in either direction) with its error estimate
    ``|Simpson - trapezoid|`` (plus ``initial_error``). Two points: the trapezoid, with the
    error unknown (``inf``) unless ``y`` is constant.

    Raises ``ValueError`` for fewer than two points, non-finite values or ``x`` not strictly
    monotonic.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"need matching 1-d x and y with >= 2 points, got {x.shape}, {y.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("x and y must be finite")
    step = np.diff(x)
    if not (np.all(step > 0) or np.all(step < 0)):
        raise ValueError("x must be strictly monotonic")
    increasing = step[0] > 0
    xs, ys = (x, y) if increasing else (x[::-1], y[::-1])
    trap = cumulative_trapezoid(ys, xs, initial=0.0)
    simp = cumulative_simpson(ys, x=xs, initial=0.0) if xs.size >= 3 else trap
    # per interval |Simpson - trapezoid|, summed without cancellation (two points: unknown)
    local = np.abs(np.diff(simp - trap)) if xs.size >= 3 else np.array(
        [0.0 if ys[0] == ys[1] else np.inf])
    if not increasing:   # integrate from x[0] (the largest) down to x[k]
        simp = (simp - simp[-1])[::-1]
        local = local[::-1]
    err = np.concatenate([[0.0], np.cumsum(local)])
    return Cumulative(x=x, value=initial + simp, error=initial_error + err)


class BranchPotential:
    """``Omega(U)`` at fixed ``T`` along one branch: ``Omega(U) = Omega_a + int_{U_a}^U (d -
    n/2) dU'`` with ``d - n/2`` interpolated through the branch's points (PCHIP) and integrated
    exactly; ``U_a`` is one of the points (the anchor, where ``Omega_a`` is known with error
    ``anchor_error``).

    Args:
        U: the branch's U values (any order, distinct).
        slope: ``d - n/2`` at those U (:func:`omega_slope`).
        anchor_U, anchor_omega, anchor_error: the anchor (``anchor_U`` must be one of ``U``).
    """

    def __init__(self, U: Sequence[float], slope: Sequence[float], anchor_U: float,
                 anchor_omega: float, anchor_error: float = 0.0) -> None:
        U = np.asarray(U, dtype=float)
        slope = np.asarray(slope, dtype=float)
        order = np.argsort(U)
        self.U, self.slope = U[order], slope[order]
        if self.U.size < 2 or np.any(np.diff(self.U) <= 0):
            raise ValueError("a branch needs >= 2 distinct U values")
        if not np.any(np.isclose(self.U, anchor_U, rtol=0, atol=1e-12)):
            raise ValueError(f"the anchor U = {anchor_U} is not a point of the branch")
        self.anchor_U, self.anchor_omega = float(anchor_U), float(anchor_omega)
        self.anchor_error = float(anchor_error)
        self._primitive = PchipInterpolator(self.U, self.slope).antiderivative()
        lin = cumulative_trapezoid(self.slope, self.U, initial=0.0)
        self._lin = lin

    @property
    def lo(self) -> float:
        return float(self.U[0])

    @property
    def hi(self) -> float:
        return float(self.U[-1])

    def _linear_primitive(self, U: float) -> float:
        k = int(np.clip(np.searchsorted(self.U, U) - 1, 0, self.U.size - 2))
        u0, u1, s0, s1 = self.U[k], self.U[k + 1], self.slope[k], self.slope[k + 1]
        s = s0 + (s1 - s0) * (U - u0) / (u1 - u0)
        return float(self._lin[k] + 0.5 * (s0 + s) * (U - u0))

    def __call__(self, U: float) -> float:
        """``Omega(U)`` (PCHIP)."""
        return float(self.anchor_omega + self._primitive(U) - self._primitive(self.anchor_U))

    def linear(self, U: float) -> float:
        """``Omega(U)`` with the piecewise-linear interpolant (trapezoid)."""
        return (self.anchor_omega + self._linear_primitive(U)
                - self._linear_primitive(self.anchor_U))

    def error(self, U: float) -> float:
        """Estimated error of ``Omega(U)``: the anchor's plus ``|PCHIP - linear|``."""
        return self.anchor_error + abs(self(U) - self.linear(U))

    def slope_at(self, U: float) -> float:
        """``d - n/2`` at ``U`` (PCHIP)."""
        return float(self._primitive.derivative()(U))


@dataclass(frozen=True)
class Crossing:
    """Where ``Omega_metal(U) = Omega_insulator(U)`` inside ``[lo, hi]``.

    Attributes:
        U: the crossing (NaN when there is none in ``[lo, hi]``).
        error: its estimated error: the grand potentials' errors divided by the jump in
            ``dOmega/dU`` (``d_metal - d_insulator``), plus the shift of the crossing between
            the PCHIP and the piecewise-linear integrals.
        status: ``"crossing"``, ``"metal lower"`` (the metal is stable in the whole range:
            ``Uc >= hi``), ``"insulator lower"`` (``Uc <= lo``) or ``"unresolved"`` (one sign
            in the whole range, but at the end nearest zero ``|Omega_metal - Omega_insulator|``
            is within the grand potentials' error: the crossing may lie anywhere in it).
        lo, hi: the range searched (the coexistence window).
        delta_lo, delta_hi: ``Omega_metal - Omega_insulator`` at ``lo`` and ``hi`` (D).
    """

    U: float
    error: float
    status: str
    lo: float
    hi: float
    delta_lo: float
    delta_hi: float


def first_order_crossing(metal: BranchPotential, insulator: BranchPotential,
                         lo: float | None = None, hi: float | None = None) -> Crossing:
    """The first-order transition inside the window ``[lo, hi]`` (default: where both branches
    have points): the root of ``Omega_metal - Omega_insulator`` (Brent's method)."""
    lo = max(metal.lo, insulator.lo) if lo is None else float(lo)
    hi = min(metal.hi, insulator.hi) if hi is None else float(hi)
    if not lo <= hi:
        raise ValueError(f"the branches do not overlap: [{lo}, {hi}]")

    def delta(U: float) -> float:
        return metal(U) - insulator(U)

    def delta_lin(U: float) -> float:
        return metal.linear(U) - insulator.linear(U)

    d_lo, d_hi = delta(lo), delta(hi)
    if not (d_lo <= 0.0 <= d_hi) or lo == hi:
        if d_lo <= 0.0 <= d_hi:            # a one-point window at the crossing
            return Crossing(lo, 0.0, "crossing", lo, hi, d_lo, d_hi)
        near = hi if d_hi < 0 else lo      # the end nearest a crossing
        bound = metal.error(near) + insulator.error(near)
        status = ("unresolved" if min(abs(d_lo), abs(d_hi)) <= bound
                  else "metal lower" if d_hi < 0 else "insulator lower")
        return Crossing(float("nan"), float("nan"), status, lo, hi, d_lo, d_hi)
    u_star = brentq(delta, lo, hi, xtol=1e-12)
    jump = abs(metal.slope_at(u_star) - insulator.slope_at(u_star))
    anchor = metal.anchor_error + insulator.anchor_error
    l_lo, l_hi = delta_lin(lo), delta_lin(hi)
    shift = (abs(brentq(delta_lin, lo, hi, xtol=1e-12) - u_star)
             if l_lo <= 0.0 <= l_hi else hi - lo)
    error = (anchor / jump if jump > 0 else float("inf")) + shift
    return Crossing(float(u_star), float(error), "crossing", lo, hi, d_lo, d_hi)


def loop_defect(beta_a: float, line_a: tuple[Sequence[float], Sequence[float]],
                beta_b: float, line_b: tuple[Sequence[float], Sequence[float]],
                path_lo: tuple[Sequence[float], Sequence[float]],
                path_hi: tuple[Sequence[float], Sequence[float]]) -> tuple[float, float]:
    """``oint d(beta Omega)`` around the rectangle ``[U_lo, U_hi] x [beta_a, beta_b]`` and the
    integration error of that sum: ``(defect, error)`` (units of ``beta Omega``: dimensionless).

    Path: along U at ``beta_a`` from ``U_lo`` to ``U_hi`` (``beta_a int (d - n/2) dU``), along
    beta at ``U_hi`` to ``beta_b`` (``int E dbeta``), back along U at ``beta_b``, back along beta
    at ``U_lo``. Zero, to the error, for a thermodynamically consistent solver on a loop not
    enclosing the critical end point.

    Args:
        line_a, line_b: ``(U, d - n/2)`` at ``beta_a`` and ``beta_b``, the same end points.
        path_lo, path_hi: ``(beta, E)`` at ``U_lo`` and ``U_hi`` from ``beta_a`` to ``beta_b``.
    """
    ua, ub = np.asarray(line_a[0], float), np.asarray(line_b[0], float)
    if not (np.isclose(min(ua), min(ub)) and np.isclose(max(ua), max(ub))):
        raise ValueError("the two U lines must share their end points")
    parts = []
    for (x, y), scale in ((line_a, beta_a), (path_hi, 1.0), (line_b, -beta_b),
                          (path_lo, -1.0)):
        x, y = np.asarray(x, float), np.asarray(y, float)
        order = np.argsort(x)
        c = cumulative_integral(x[order], y[order])
        parts.append((scale * c.value[-1], abs(scale) * c.error[-1]))
    for (x, _), lo_hi in ((path_lo, (beta_a, beta_b)), (path_hi, (beta_a, beta_b))):
        if not (np.isclose(min(x), min(lo_hi)) and np.isclose(max(x), max(lo_hi))):
            raise ValueError(f"the beta paths must run from {beta_a} to {beta_b}")
    return float(sum(p[0] for p in parts)), float(sum(p[1] for p in parts))


def atomic_limit(beta: float, U: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The half-filled Hubbard atom (no hopping, ``mu = U/2``): ``(Omega, d, E)`` per site with
    ``Omega = -T ln(2 + 2 exp(beta U/2))``, ``d = 1/(2 + 2 exp(beta U/2))``,
    ``E = -U exp(beta U/2)/(2 + 2 exp(beta U/2))`` (``n = 1``; ``E_kin = 0``). Exact, for checks
    of the integration: ``dOmega/dU = d - 1/2``, ``d(beta Omega)/dbeta = E``."""
    U = np.asarray(U, dtype=float)
    x = 0.5 * beta * U
    # ln(2 + 2 e^x) = ln 2 + logaddexp(0, x); e^x/(1 + e^x) = 1/(1 + e^-x)
    omega = -(np.log(2.0) + np.logaddexp(0.0, x)) / beta
    frac = 1.0 / (1.0 + np.exp(-x))          # e^x / (1 + e^x)
    docc = 0.5 * (1.0 - frac)                 # 1/(2 (1 + e^x))
    energy = -0.5 * U * frac
    return omega, docc, energy
