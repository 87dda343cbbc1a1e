"""Real-frequency spectra ``A(w) = -Im G(w + i0)/pi`` of impurity results and DMFT points.

Three methods, every one recorded with its parameters in :class:`Spectrum`:

* ``"ed_poles"`` — exact diagonalisation gives ``G(z) = sum_p w_p/(z - e_p)``
  (``info["pole_weights"]``, ``info["pole_energies"]``), evaluated at ``z = w + i eta``: a sum of
  Lorentzians of half width ``eta`` (default 0.05 D, configurable). For a DMFT point the
  impurity self-energy is continued the same way,
  ``Sigma(z) = z - eps_d - Delta_fit(z) - 1/G_imp(z)`` with the fitted bath of the last
  iteration, and the local spectrum is the lattice's Hilbert transform
  ``G_loc(w) = hilbert(w + i eta + mu - Sigma(w + i eta))`` (``Im zeta >= eta``).
* ``"maxent"`` — maximum-entropy analytic continuation of ``G(i w_n)`` (the Matsubara-only
  solvers: IPT, NCA, Hubbard-I, the network) through the ``ana_cont`` package (Kaufmann &
  Held, Comput. Phys. Commun. 282, 108519 (2023)): SVD MaxEnt with a flat default model on the
  real mesh, a constant error ``error`` on every used ``G(i w_n)`` (``w_n < w_max_fit``) and the
  ``classic`` choice of alpha (largest posterior probability, Gull & Skilling).
* ``"pade"`` — Pade (Vidberg & Serene, J. Low Temp. Phys. 29, 179 (1977)) on the first
  ``n_pade`` frequencies evaluated at ``w + i eta``: a quick look without error control;
  negative ``A`` is clipped to 0 and the clipped weight recorded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from solvers import SolverResult, matsubara_freqs

from .lattice import cavity_zeta

__all__ = ["Spectrum", "real_mesh", "pole_spectrum", "ed_point_spectrum", "maxent_spectrum",
           "pade_spectrum", "result_spectrum", "point_spectrum", "METHODS"]

METHODS = ("auto", "ed_poles", "maxent", "pade")


@dataclass(frozen=True, eq=False)
class Spectrum:
    """``A(w)`` on a real mesh and how it was obtained.

    Attributes:
        omega: real frequencies ``w`` (units D), increasing.
        a_w: ``A(w) = -Im G(w + i0)/pi`` per spin (units 1/D), ``>= 0``.
        method: ``"ed_poles"``, ``"maxent"`` or ``"pade"``.
        params: the method's parameters and diagnostics (``eta``, ``error``, ``alpha``, ...;
            ``norm`` = the trapezoid integral of ``a_w`` over the mesh).
    """

    omega: np.ndarray
    a_w: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def norm(self) -> float:
        """``int A(w) dw`` over the mesh (trapezoid)."""
        return float(np.trapezoid(self.a_w, self.omega))


def real_mesh(omega_max: float = 4.0, n_omega: int = 801) -> np.ndarray:
    """Uniform real mesh on ``[-omega_max, omega_max]`` (units D)."""
    if not (omega_max > 0 and n_omega >= 3):
        raise ValueError(f"need omega_max > 0 and n_omega >= 3, got {omega_max}, {n_omega}")
    return np.linspace(-omega_max, omega_max, int(n_omega))


def _check_eta(eta: float) -> float:
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be > 0, got {eta}")
    return float(eta)


def _poles_at(weights: np.ndarray, energies: np.ndarray, z: np.ndarray) -> np.ndarray:
    out = np.zeros(z.size, dtype=complex)
    for lo in range(0, energies.size, 4096):
        out += (weights[None, lo:lo + 4096]
                / (z[:, None] - energies[None, lo:lo + 4096])).sum(axis=1)
    return out


def pole_spectrum(weights: np.ndarray, energies: np.ndarray, omega: np.ndarray,
                  eta: float = 0.05) -> Spectrum:
    """``A(w) = sum_p w_p (eta/pi) / ((w - e_p)^2 + eta^2)`` (``G`` at ``w + i eta``).

    ``params["weight_outside"]`` is the exact Lorentzian weight beyond the mesh,
    ``sum_p w_p [1 - (atan((w_max - e_p)/eta) - atan((w_min - e_p)/eta))/pi]``.
    """
    eta = _check_eta(eta)
    w = np.asarray(weights, dtype=float)
    e = np.asarray(energies, dtype=float)
    omega = np.asarray(omega, dtype=float)
    a = -_poles_at(w, e, omega + 1j * eta).imag / math.pi
    inside = (np.arctan((omega[-1] - e) / eta) - np.arctan((omega[0] - e) / eta)) / math.pi
    params = {"eta": eta, "n_poles": int(e.size), "total_weight": float(w.sum()),
              "weight_outside": float(np.sum(w * (1 - inside)))}
    spec = Spectrum(omega, a, "ed_poles", params)
    spec.params["norm"] = spec.norm
    return spec


def ed_point_spectrum(result: SolverResult, bath_eps: np.ndarray, bath_v: np.ndarray,
                      eps_d: float, lattice: Any, omega: np.ndarray, eta: float = 0.05
                      ) -> Spectrum:
    """Local lattice spectrum of an ED-DMFT point: ``Sigma(w + i eta)`` from the ED poles and
    the fitted bath (``Sigma = z - eps_d - Delta_fit - 1/G_imp``), then
    ``G_loc = lattice.hilbert(z - eps_d - Sigma)`` (``mu = -eps_d``)."""
    eta = _check_eta(eta)
    w, e = _ed_poles(result)
    omega = np.asarray(omega, dtype=float)
    z = omega + 1j * eta
    g_imp = _poles_at(w, e, z)
    delta_fit = _poles_at(np.asarray(bath_v, float) ** 2, np.asarray(bath_eps, float), z)
    zeta = cavity_zeta(delta_fit, g_imp)  # = z + mu - Sigma(z)
    zeta = zeta.real + 1j * np.maximum(zeta.imag, eta)  # Im Sigma <= 0: guard against rounding
    a = -lattice.hilbert(zeta).imag / math.pi
    spec = Spectrum(omega, np.maximum(a, 0.0), "ed_poles",
                    {"eta": eta, "n_poles": int(e.size), "lattice": lattice.name,
                     "n_bath": int(np.size(bath_eps))})
    spec.params["norm"] = spec.norm
    return spec


def _ed_poles(result: SolverResult) -> tuple[np.ndarray, np.ndarray]:
    info = result.info.get("ed", result.info)
    if "pole_weights" not in info:
        raise ValueError(f"solver {result.solver!r} exposes no poles; use method 'maxent'")
    return np.asarray(info["pole_weights"]), np.asarray(info["pole_energies"])


# ----------------------------------------------------------------------------- MaxEnt
def _ana_cont():
    try:
        import numpy as _np
        import ana_cont.continuation as cont
        import ana_cont.solvers as acs
    except ImportError:
        raise ValueError("method 'maxent' needs the ana_cont package: pip install Cython && "
                         "pip install --no-build-isolation ana_cont (or method 'pade')") from None
    if not hasattr(_np, "trapz") and not isinstance(acs.np, _NumpyTrapz):
        acs.np = _NumpyTrapz()  # ana_cont 1.1.2 calls np.trapz, removed in numpy 2.4
    return cont


class _NumpyTrapz:
    """numpy seen by ``ana_cont.solvers``, with ``trapz`` mapped to ``trapezoid``."""

    def __getattr__(self, name: str) -> Any:
        return np.trapezoid if name == "trapz" else getattr(np, name)


def maxent_spectrum(g_iw: np.ndarray, beta: float, omega: np.ndarray, error: float = 1e-4,
                    w_max_fit: float = 10.0, n_fit_max: int = 200) -> Spectrum:
    """MaxEnt continuation of ``G(i w_n)`` (``ana_cont``, SVD MaxEnt, flat default model,
    classic alpha) on the mesh ``omega``; ``G`` at ``w_n <= w_max_fit`` (at most ``n_fit_max``
    frequencies) with the constant error ``error``."""
    if not (error > 0):
        raise ValueError(f"error must be > 0, got {error}")
    cont = _ana_cont()
    g_iw = np.asarray(g_iw, dtype=complex)
    wn = matsubara_freqs(beta, g_iw.size)
    n = int(min(n_fit_max, max(8, np.searchsorted(wn, w_max_fit)), g_iw.size))
    omega = np.asarray(omega, dtype=float)
    model = np.full(omega.size, 1.0 / (omega[-1] - omega[0]))
    prob = cont.AnalyticContinuationProblem(im_axis=wn[:n], re_axis=omega, im_data=g_iw[:n],
                                            kernel_mode="freq_fermionic")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # ana_cont prints per alpha
        sol, _ = prob.solve(method="maxent_svd", alpha_determination="classic",
                            optimizer="newton", stdev=np.full(n, error), model=model,
                            interactive=False, verbose=False, alpha_start=1e6)
    a = np.maximum(np.asarray(sol.A_opt, dtype=float), 0.0)
    fit = np.asarray(sol.backtransform)
    spec = Spectrum(omega, a, "maxent",
                    {"error": float(error), "n_fit": n, "w_max_fit": float(w_max_fit),
                     "default_model": "flat", "alpha_determination": "classic",
                     "package": "ana_cont",
                     "alpha": float(getattr(sol, "alpha", np.nan)),
                     "chi2": float(getattr(sol, "chi2", np.nan)),
                     "max_misfit": float(np.max(np.abs(fit - g_iw[:n])))})
    spec.params["norm"] = spec.norm
    return spec


# ----------------------------------------------------------------------------- Pade
def pade_spectrum(g_iw: np.ndarray, beta: float, omega: np.ndarray, eta: float = 0.02,
                  n_pade: int = 64) -> Spectrum:
    """Pade continuant (Vidberg-Serene recursion) through ``G(i w_n)``, ``n < n_pade``,
    evaluated at ``w + i eta``; negative ``A`` clipped (``params["clipped_weight"]``)."""
    eta = _check_eta(eta)
    g_iw = np.asarray(g_iw, dtype=complex)
    n = int(min(n_pade, g_iw.size))
    z = 1j * matsubara_freqs(beta, n)
    a = np.zeros((n, n), dtype=complex)
    a[0] = g_iw[:n]
    for p in range(1, n):
        a[p, p:] = (a[p - 1, p - 1] - a[p - 1, p:]) / ((z[p:] - z[p - 1]) * a[p - 1, p:])
    coef = np.diag(a)
    x = np.asarray(omega, dtype=float) + 1j * eta
    # continued fraction A_n/B_n
    a_prev, a_cur = np.zeros_like(x), np.full_like(x, coef[0])
    b_prev, b_cur = np.ones_like(x), np.ones_like(x)
    for p in range(1, n):
        a_prev, a_cur = a_cur, a_cur + (x - z[p - 1]) * coef[p] * a_prev
        b_prev, b_cur = b_cur, b_cur + (x - z[p - 1]) * coef[p] * b_prev
        scale = np.abs(b_cur) + 1e-300
        a_prev, a_cur, b_prev, b_cur = a_prev / scale, a_cur / scale, b_prev / scale, b_cur / scale
    raw = -(a_cur / b_cur).imag / math.pi
    clipped = float(np.trapezoid(np.minimum(raw, 0.0), omega))
    spec = Spectrum(np.asarray(omega, float), np.maximum(raw, 0.0), "pade",
                    {"eta": eta, "n_pade": n, "clipped_weight": -clipped})
    spec.params["norm"] = spec.norm
    return spec


# ----------------------------------------------------------------------------- dispatch
def result_spectrum(result: SolverResult, method: str = "auto", omega: np.ndarray | None = None,
                    eta: float = 0.05, **options: Any) -> Spectrum:
    """Spectrum of one impurity result (``mldmft solve``): the ED poles (``ed``, ``ed_fit``;
    for ``ed_fit`` those of the fitted bath's model) or MaxEnt/Pade of ``G(i w_n)``."""
    omega = real_mesh() if omega is None else np.asarray(omega, dtype=float)
    method = _resolve(method, result)
    if method == "ed_poles":
        w, e = _ed_poles(result)
        return pole_spectrum(w, e, omega, eta)
    if method == "pade":
        return pade_spectrum(result.g_iw, result.beta, omega, eta=eta, **options)
    return maxent_spectrum(result.g_iw, result.beta, omega, **options)


def _resolve(method: str, result: SolverResult | None) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown spectrum method {method!r}; choose one of {METHODS}")
    if method != "auto":
        return method
    info = {} if result is None else result.info.get("ed", result.info)
    return "ed_poles" if "pole_weights" in info else "maxent"


def point_spectrum(point: Any, lattice: Any, state: dict, method: str = "auto",
                   omega: np.ndarray | None = None, eta: float = 0.05,
                   **options: Any) -> Spectrum:
    """Spectrum of a finished DMFT point: ``ed_poles`` through the lattice (ED-DMFT; needs the
    last ED result and fitted bath in ``state``), else MaxEnt/Pade of the point's ``G(i w_n)``."""
    omega = real_mesh() if omega is None else np.asarray(omega, dtype=float)
    last = state.get("result")
    method = _resolve(method, last if state.get("bath") is not None else None)
    if method == "ed_poles":
        if last is None or state.get("bath") is None:
            raise ValueError("method 'ed_poles' needs an ED-DMFT sweep (solver=ed)")
        eps, v = state["bath"]
        return ed_point_spectrum(last, eps, v, -point.mu, lattice, omega, eta)
    if method == "pade":
        return pade_spectrum(point.g_iw, point.beta, omega, eta=eta, **options)
    return maxent_spectrum(point.g_iw, point.beta, omega, **options)
