"""Non-crossing approximation (NCA) for the single-orbital Anderson impurity model.

Pseudo-particles. The four atomic states ``a in {0, up, dn, 2}`` have energies ``E_0 = 0``,
``E_up = E_dn = eps_d``, ``E_2 = 2 eps_d + U`` (units of D). Expanding ``Z`` in the hybridisation
and integrating out the bath, ``Z / Z_bath = sum_a R_a(beta)`` exactly, where ``R_a(tau)``
(``0 <= tau <= beta``) sums every diagram that starts and ends in state ``a`` with all its
hybridisation lines inside ``(0, tau)``. It obeys the Volterra integro-differential equation::

    dR_a/dtau = -E_a R_a(tau) + int_0^tau ds S_a(tau - s) R_a(s),      R_a(0) = 1.

NCA keeps the non-crossing diagrams, i.e. the lowest-order self-energies with dressed lines::

    S_0(tau)  = sum_s Dm(tau) R_s(tau)                = 2 Dm(tau) R_1(tau)
    S_s(tau)  = Dp(tau) R_0(tau) + Dm(tau) R_2(tau)
    S_2(tau)  = sum_s Dp(tau) R_{-s}(tau)             = 2 Dp(tau) R_1(tau)

    Dp(tau) = -Delta(tau)        = sum_k V_k^2 (1 - f(eps_k)) exp(-eps_k tau)        >= 0
    Dm(tau) = -Delta(beta - tau) = Delta(-tau) = sum_k V_k^2 f(eps_k) exp(+eps_k tau) >= 0

with ``Delta(tau) = (1/beta) sum_n exp(-i w_n tau) Delta(i w_n)`` (same convention as ``G``).
``Dp`` accompanies a line that removes an impurity electron into an empty bath state, ``Dm`` one
that takes an electron from a filled bath state; the signs follow from the second-order term of
``Z`` (both kernels are positive, hybridisation lowers every pseudo-particle energy). Signs and
time arguments are checked against ED in ``tests/test_nca.py``: thermodynamic quantities err by
``O(V^4)`` (a wrong sign or time argument would give ``O(V^2)``).
``R_1`` stands for ``R_up = R_dn`` (paramagnetism).

Physical quantities (``Z_f = R_0(beta) + 2 R_1(beta) + R_2(beta)``, ``d+_s`` maps ``0 -> s`` and
``-s -> 2``)::

    G(tau) = -(1/Z_f) [R_0(beta - tau) R_1(tau) + R_1(beta - tau) R_2(tau)]
    n_a    = R_a(beta) / Z_f,  density = 2 n_1 + 2 n_2,  double_occupancy = n_2

so ``G(0+) + G(beta-) = -1`` and ``density = -2 G(beta-)`` hold by construction.

Numerics:

* Uniform mesh ``tau_k = k h``, ``h = beta/(n_tau - 1)``. The free propagation ``exp(-E_a tau)``
  is integrated exactly (exponential time differencing, the memory term interpolated linearly
  over a step) and the convolution by the trapezoid rule: **second order**, error ``O(h^2)``,
  and only in the hybridisation-induced part (the atomic limit is exact on any mesh).
* ``method="march"`` (default): ``S_a(tau)`` needs ``R_b`` only at the same ``tau``, so the
  self-consistent equations are causal in ``tau``; one forward sweep solving a 3x3 linear system
  per step gives the exact solution of the discretised equations (``iterations = 1``).
  ``method="iterate"``: Picard iteration on ``R`` with linear mixing (kernel ``S`` from the
  previous iterate), stopped when ``max |R_new - R_old| < tol`` or at ``max_iter``
  (``converged=False``, no exception). It converges to the same discrete solution.
* Energy shift: the equations are invariant under ``R_a(tau) -> exp(lam tau) R_a(tau)``,
  ``E_a -> E_a - lam`` (``S`` follows). The sweep starts at ``lam = min_a E_a`` and continues in a
  lower frame whenever some ``R`` exceeds ``1e100``; at the end ``lam`` is set so that
  ``Z_f = 1``, i.e. ``lam = -ln(Z/Z_bath)/beta`` (``info["free_energy"]``). Nothing overflows at
  ``beta = 100`` for any ``U``, ``eps_d``.
* ``G(tau)`` is split into its atomic-like part ``G_at`` (the same formula with
  ``R_a -> exp(-E_a tau)``, a two-pole function transformed exactly) and the remainder, whose
  ``G(i w_n)`` comes from :func:`solvers.fourier.tau_to_iw` (cubic spline, ``O(h^4)``) and whose
  ``G_l`` from :func:`solvers.legendre.g_l_from_tau` on a ``CubicSpline`` of it. The jump of
  ``G`` at ``tau = 0, beta`` and the high-frequency tail are carried mainly by the exact part.
* Continuous bath: ``Delta(tau)`` by :func:`solvers.fourier.iw_to_tau` with the moments
  ``c_1, c_2, c_3`` of ``Delta(i w_n) = sum c_k / (i w_n)^k`` fitted by least squares on the
  highest frequencies (:func:`solvers.tails.hybridisation_moments`, ``info["delta_tail"]``;
  exact, ``c_k = sum_j V_j^2 eps_j^(k-1)``, for a discrete bath).

* Mesh resolution: the ``O(h^2)`` error grows with ``h E``, ``E = max(|eps_d|, |eps_d + U|,
  bath half width, sqrt(sum_k V_k^2))`` (:meth:`AndersonModel.energy_scale`); the relative
  error of ``G(i w_n)`` is about ``0.2-0.4 (h E)^2`` (measured). A mesh with ``h E > 0.5``
  (errors of ``5-10 %`` and beyond; at ``h E ~ 10`` the pseudo-particle weights turn negative,
  ``double_occupancy`` left ``[0, 1]``, and ``Z_f`` can vanish) is refused before any work;
  the default mesh keeps ``h E <= 0.1`` above ``beta = 100`` up to ``20001`` points (``~1 s``),
  i.e. up to ``beta E ~ 2000``; beyond that ``n_tau`` must be given.

Trust checks (after the solve). NCA is an approximation whose ``G`` is causal by construction
(``G(tau) <= 0``, ``Im G(i w_n) <= 0`` to rounding), but whose ``Sigma = G0^-1 - G^-1`` need not
be: where NCA overestimates the low-energy spectral weight (below ~``T_K``, a discrete bath with
a level near 0, mixed valence, small ``U``), ``|G(i w_0)|`` exceeds the bound
``1/|Im G0^-1(i w_0)|`` that a causal ``Sigma`` allows and ``Im Sigma(i w_n) > 0`` follows (e.g.
``U = 2``, ``eps_d = -1``, ``beta = 50``, four bath levels at 0 with ``V = 1/4``: ``Im Sigma(i w_0)
= +1.90``, ``Z = -0.034``; ED: ``Z = 0.69``; the value is converged in ``n_tau`` and the same with
``method="iterate"``, i.e. it is the NCA answer, not a numerical fault). Such a result, or one with
``G(tau) > 0``, ``Im G > 0``, occupations outside ``[0, 1]``, ``double_occupancy`` outside
``[max(0, n - 1), n/2]`` or a truncated Legendre series, is returned with ``converged=False``,
the reason in ``info["warnings"]`` and a :class:`solvers.result.SolverWarning`.

Exact limits: the atomic limit ``V = 0`` (to rounding, on any mesh). ``Z/Z_bath``, hence the
free energy, occupations and double occupancy, is exact to first order in ``Delta``: the first
missing (crossing) diagram of ``Z`` is ``O(V^4)``. ``G(tau)`` misses the vertex corrections (a
hybridisation line crossing an external vertex) already at first order, so its error is
``O(V^2)`` (measured against ED: ratio 4 when ``V`` halves, ~3 % of ``max|G(i w_n)|`` at
``V = 0.1``, ``U = 4``, ``beta = 10``). NCA is Phi-derivable: ``dF/d eps_d = density`` and
``dF/dU = double_occupancy`` hold (to ``O(h^2)``); particle-hole symmetry is respected exactly.

Known failures: NCA is a conserving, but not Fermi-liquid, approximation. Below roughly the
Kondo temperature it violates Fermi-liquid properties (``Im Sigma`` does not vanish like ``w^2``,
the Friedel sum rule fails) and produces spurious features near ``w = 0`` (an over-sharp,
too-high Kondo peak and pseudo-particle threshold exponents that are wrong). For finite ``U``
with both ``0 <-> 1`` and ``1 <-> 2`` fluctuations it misses vertex corrections (OCA and beyond)
and underestimates ``T_K`` strongly; it fails near ``U -> 0``, where it does not reduce to the
non-interacting result (it is a strong-coupling expansion in ``Delta``, not in ``U``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import CubicSpline

from ._checks import check_fraction, check_int, check_positive
from ._nca_march import atomic_r, kernels_from_r, march
from .fourier import iw_to_tau, tau_to_iw
from .greens import dyson_sigma, g0_inverse_iw, poles_g_iw, poles_g_tau
from .legendre import check_legendre_truncation, g_l_from_poles, g_l_from_tau
from .mesh import matsubara_freqs, tau_mesh
from .model import AndersonModel
from .options import SolverOptions
from .registry import register_solver
from .result import SolverResult, warn_untrusted
from .tails import hybridisation_moments

__all__ = ["solve_nca", "default_n_tau", "hybridisation_tau", "NCAOptions"]

_METHODS = ("march", "iterate")
_MIN_N_TAU = 16
_DEFAULT_N_IW = 1024       # n_iw of a discrete bath's result


_MAX_DEFAULT_N_TAU = 20001   # ~1 s per solve (the march is O(n_tau^2))
_MAX_STEP_ENERGY = 0.5       # refuse meshes with h E above this (module docstring)
_DEFAULT_STEP_ENERGY = 0.1   # h E of the default mesh above beta = 100
_CAUSALITY_TOL = 1e-8        # |values| allowed on the wrong side of zero (rounding)


def default_n_tau(beta: float, energy: float = 0.0) -> int:
    """Default mesh size: ``clip(40 beta + 1, 1001, 4001)`` up to ``beta = 100`` (``h <= 0.025``);
    above, enough points for ``h E <= 0.1`` (``E``: :meth:`AndersonModel.energy_scale`), at
    least 4001 and at most 20001."""
    if beta <= 100.0:
        return int(min(4001, max(1001, round(40.0 * beta) + 1)))
    wanted = math.ceil(beta * energy / _DEFAULT_STEP_ENERGY) + 1
    return int(min(_MAX_DEFAULT_N_TAU, max(4001, wanted)))


def _check_mesh(beta: float, n_tau: int, energy: float) -> None:
    """Refuse a mesh too coarse for the model's fastest rate (one line, before any work)."""
    h = beta / (n_tau - 1)
    if h * energy > _MAX_STEP_ENERGY:
        need = math.ceil(beta * energy / _MAX_STEP_ENERGY) + 1
        raise ValueError(
            f"NCA: tau mesh too coarse for beta={beta:g}: step h={h:.3g} times the energy scale "
            f"E={energy:.3g} is {h * energy:.3g} > {_MAX_STEP_ENERGY} (errors of 10 % and more); "
            f"pass n_tau >= {need} (cost grows like n_tau^2: ~1 s at 20001) or use a smaller "
            "beta")


def hybridisation_tau(model: AndersonModel, n_tau: int,
                      tail: tuple[float, ...] | None = None) -> tuple[np.ndarray, dict]:
    """``Delta(tau_k)`` on the uniform mesh ``tau_k = k beta/(n_tau - 1)`` (end values as limits).

    Discrete bath: ``Delta(tau) = -sum_k V_k^2 exp(-tau eps_k) / (1 + exp(-beta eps_k))``
    (overflow-free). Continuous bath: :func:`solvers.fourier.iw_to_tau` of ``model.delta_iw``
    with the tail moments of :func:`solvers.tails.hybridisation_moments` (or ``tail``, if given;
    returned in the dict).

    Example:
        >>> import numpy as np
        >>> m = AndersonModel(U=1.0, eps_d=-0.5, beta=2.0, bath_eps=[0.0], bath_v=[1.0])
        >>> d, _ = hybridisation_tau(m, 3)
        >>> np.allclose(d, -0.5)
        True
    """
    if tail is None:
        tail = tuple(float(c) for c in hybridisation_moments(model))
    if model.is_discrete:
        delta_tau = poles_g_tau(model.bath_v ** 2, model.bath_eps, model.beta,
                                tau_mesh(model.beta, n_tau))
    else:
        delta_tau = iw_to_tau(model.delta_iw, model.beta, n_tau, tail=tail)
    return delta_tau, {"delta_tail": tail}


@dataclass(frozen=True)
class NCAOptions(SolverOptions):
    """Options of the ``nca`` solver (meanings in :func:`solve_nca`), checked on construction;
    ``None`` for ``n_tau``, ``n_iw``, ``n_quad``: the defaults that depend on the model.

    Example:
        >>> NCAOptions(method="leapfrog")
        Traceback (most recent call last):
        ...
        ValueError: unknown NCA method 'leapfrog'; choose one of ('march', 'iterate')
    """

    n_tau: int | None = None
    n_iw: int | None = None
    n_l: int = 80
    method: str = "march"
    tol: float = 1e-10
    mixing: float = 1.0
    max_iter: int = 200
    n_quad: int | None = None

    def result_sizes(self) -> tuple[int, int]:
        return _DEFAULT_N_IW if self.n_iw is None else self.n_iw, self.n_l

    def check(self) -> None:
        if self.n_tau is not None:
            check_int("n_tau", self.n_tau, _MIN_N_TAU)
        if self.n_iw is not None:
            check_int("n_iw", self.n_iw, 1)
        check_int("n_l", self.n_l, 1)
        if self.method not in _METHODS:
            raise ValueError(f"unknown NCA method {self.method!r}; choose one of {_METHODS}")
        check_positive("tol", self.tol)
        check_fraction("mixing", self.mixing)
        check_int("max_iter", self.max_iter, 1)
        if self.n_quad is not None:
            check_int("n_quad", self.n_quad, 1)


def _check_model(model: AndersonModel, n_iw: int) -> None:
    if not model.is_discrete and n_iw > model.delta_iw.size:
        raise ValueError(f"n_iw={n_iw} exceeds the {model.delta_iw.size} frequencies of "
                         "model.delta_iw")


def _normalise(r: np.ndarray, energies: np.ndarray, tau: np.ndarray) -> tuple[float, np.ndarray]:
    """Shift the frame so that ``Z_f = R_0(beta) + 2 R_1(beta) + R_2(beta) = 1`` (in place).

    Returns ``mu`` (``R -> exp(-mu tau) R``) and the shifted energies ``E_a + mu``.
    """
    z_f = r[0, -1] + 2.0 * r[1, -1] + r[2, -1]
    if not (math.isfinite(z_f) and z_f > 0.0):
        raise FloatingPointError(
            f"NCA: the pseudo-particle partition function Z_f = {z_f:.3g} is not positive: the "
            f"tau mesh (h = {tau[1] - tau[0]:.3g}) does not resolve the model; raise n_tau")
    mu = math.log(z_f) / tau[-1]
    r *= np.exp(-mu * tau)
    return mu, energies + mu


def _solve_iterate(energies: np.ndarray, dp: np.ndarray, dm: np.ndarray, tau: np.ndarray,
                   tol: float, mixing: float, max_iter: int):
    """Picard iteration with linear mixing; returns ``(R, energies, iterations, converged, change)``.

    The iteration runs in the frame of the given energies (the frame of the "march" sweep, so
    both methods converge to the same discrete solution); the change of ``R`` is measured in the
    frame where the new iterate has ``Z_f = 1``.
    """
    h = tau[1] - tau[0]
    r_in = atomic_r(energies, tau)
    change = math.inf
    for it in range(1, max_iter + 1):
        r_out, e_out = march(energies, dp, dm, h, kernel=kernels_from_r(r_in, dp, dm))
        if e_out[0] != energies[0]:      # the sweep continued in a lower frame: follow it
            r_in *= np.exp(-(e_out[0] - energies[0]) * tau)
            energies = e_out
        z_f = r_out[0, -1] + 2.0 * r_out[1, -1] + r_out[2, -1]
        weight = np.exp(-math.log(z_f) / tau[-1] * tau)
        change = float(np.max(np.abs(r_out - r_in) * weight))
        if change < tol:
            return r_out, energies, it, True, change
        r_in += mixing * (r_out - r_in)
    return r_out, energies, max_iter, False, change


def _trust_problems(g_tau: np.ndarray, g_iw: np.ndarray, sigma_iw: np.ndarray,
                    occ: np.ndarray, density: float, docc: float) -> list[str]:
    """One line per violated physical requirement of an NCA result (module docstring)."""
    out = []
    if not (np.all(np.isfinite(g_iw)) and np.all(np.isfinite(sigma_iw))
            and np.all(np.isfinite(g_tau))):
        out.append("non-finite G or Sigma")
        return out
    bad = np.nonzero(sigma_iw.imag > _CAUSALITY_TOL * np.maximum(1.0, np.abs(sigma_iw)))[0]
    if bad.size:
        n = int(bad[np.argmax(sigma_iw.imag[bad])])
        out.append(f"acausal self-energy, Im Sigma(i w_n) > 0 at {bad.size} of "
                   f"{sigma_iw.size} frequencies (max {sigma_iw.imag[n]:.3g} at n={n}): NCA "
                   "overestimates the low-energy spectral weight here")
    if np.max(g_iw.imag) > _CAUSALITY_TOL:
        out.append(f"Im G(i w_n) > 0 (max {np.max(g_iw.imag):.3g})")
    if np.max(g_tau) > _CAUSALITY_TOL:
        out.append(f"G(tau) > 0 (max {np.max(g_tau):.3g})")
    if np.min(occ) < -_CAUSALITY_TOL or np.max(occ) > 1.0 + _CAUSALITY_TOL:
        out.append(f"pseudo-particle occupations {np.round(occ, 6).tolist()} outside [0, 1]")
    if not (max(0.0, density - 1.0) - _CAUSALITY_TOL <= docc <= density / 2 + _CAUSALITY_TOL):
        out.append(f"double_occupancy={docc:.3g} outside [max(0, n - 1), n/2] for "
                   f"n={density:.6g}")
    return out


def solve_nca(model: AndersonModel, *, n_tau: int | None = None, n_iw: int | None = None,
              n_l: int = 80, method: str = "march", tol: float = 1e-10, mixing: float = 1.0,
              max_iter: int = 200, n_quad: int | None = None) -> SolverResult:
    """Non-crossing approximation in imaginary time (equations in the module docstring).

    Args:
        model: Anderson model with a discrete (any ``Nb``) or continuous bath.
        n_tau: points of the uniform ``tau`` mesh, ends included (default
            :func:`default_n_tau`: ``clip(40 beta + 1, 1001, 4001)``); error ``O(h^2)``.
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw`` (default 1024; for a continuous
            bath the number of stored ``delta_iw`` values, which is also the upper limit).
        n_l: Legendre coefficients of ``g_l``.
        method: ``"march"`` (one self-consistent forward sweep, exact solution of the discrete
            equations) or ``"iterate"`` (Picard iteration with linear mixing).
        tol: ``"iterate"`` only: stop when ``max_{a,tau} |R_new - R_old| < tol`` (``R``
            normalised so that ``Z_f = 1``, ``R_a(0) = 1``).
        mixing: ``"iterate"`` only: ``R <- R + mixing (R_new - R)``, in ``(0, 1]``.
        max_iter: ``"iterate"`` only: iteration limit; reaching it gives ``converged=False``.
        n_quad: Gauss-Legendre points for ``g_l`` (default ``max(4 n_l, 400)``).

    Returns:
        :class:`SolverResult` with ``g_iw``, ``sigma_iw`` (Dyson with ``model.delta(n_iw)``),
        ``g_l``, ``g_tau`` and ``tau`` (the NCA mesh), ``density`` (both spins),
        ``double_occupancy = n_2``, ``energy = None``; ``info`` holds the pseudo-particle
        occupations ``(n_0, n_up, n_dn, n_2)``, ``free_energy`` ``-ln(Z/Z_bath)/beta``, the
        method, mesh, iterations and, for ``"iterate"``, the last change of ``R``.

    Example:
        >>> from solvers import AndersonModel, solve
        >>> import solvers.nca
        >>> m = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0, bath_eps=[], bath_v=[])
        >>> r = solve("nca", m)
        >>> round(r.density, 10), round(r.double_occupancy, 6)
        (1.0, 2.3e-05)
    """
    opts = NCAOptions(n_tau=n_tau, n_iw=n_iw, n_l=n_l, method=method, tol=tol, mixing=mixing,
                      max_iter=max_iter, n_quad=n_quad)
    return _solve_nca(model, opts)


def _solve_nca(model: AndersonModel, opts: NCAOptions) -> SolverResult:
    """:func:`solve_nca` with built options."""
    n_l, method, tol, mixing, max_iter = (opts.n_l, opts.method, opts.tol, opts.mixing,
                                          opts.max_iter)
    beta = model.beta
    tail = tuple(float(c) for c in hybridisation_moments(model))
    energy = model.energy_scale(tail) if tail[0] > 0 else 0.0   # atomic: exact on any mesh
    n_tau = default_n_tau(beta, energy) if opts.n_tau is None else opts.n_tau
    n_iw = opts.n_iw
    if n_iw is None:
        n_iw = _DEFAULT_N_IW if model.is_discrete else int(model.delta_iw.size)
    _check_model(model, n_iw)
    _check_mesh(beta, n_tau, energy)

    tau = tau_mesh(beta, n_tau)
    delta_tau, info = hybridisation_tau(model, n_tau, tail)
    dp = np.ascontiguousarray(-delta_tau)
    dm = np.ascontiguousarray(dp[::-1])
    e_atomic = np.array([0.0, model.eps_d, 2.0 * model.eps_d + model.U])
    e_shifted = e_atomic - e_atomic.min()

    if method == "march":
        r, e_shifted = march(e_shifted, dp, dm, tau[1] - tau[0])
        _, e_shifted = _normalise(r, e_shifted, tau)
        iterations, converged, change = 1, True, 0.0
    else:
        r, e_shifted, iterations, converged, change = _solve_iterate(
            e_shifted, dp, dm, tau, tol, mixing, max_iter)
        _, e_shifted = _normalise(r, e_shifted, tau)
    if not np.all(np.isfinite(r)):
        raise FloatingPointError("NCA propagators are not finite (please report the model)")
    lam = float(np.mean(e_atomic - e_shifted))   # R_true(tau) = exp(-lam tau) R(tau)

    z_f = float(r[0, -1] + 2.0 * r[1, -1] + r[2, -1])
    g_tau = -(r[0, ::-1] * r[1] + r[1, ::-1] * r[2]) / z_f
    # atomic-like part: R_a -> exp(-E_a tau), two poles at eps_d and eps_d + U
    boltz = np.exp(-beta * e_shifted)
    pole_w = np.array([boltz[0] + boltz[1], boltz[1] + boltz[2]]) / z_f
    pole_e = np.array([model.eps_d, model.eps_d + model.U])
    g_rest = g_tau - poles_g_tau(pole_w, pole_e, beta, tau)

    wn = matsubara_freqs(beta, n_iw)
    g_iw = poles_g_iw(pole_w, pole_e, wn) + tau_to_iw(g_rest, beta, n_iw)
    spline = CubicSpline(tau, g_rest)
    g_l = g_l_from_poles(pole_w, pole_e, beta, n_l) + g_l_from_tau(
        spline, beta, n_l, n_quad=opts.n_quad or max(4 * n_l, 400))
    sigma_iw = dyson_sigma(g0_inverse_iw(wn, model.eps_d, model.delta(n_iw)), g_iw)

    occ = r[:, -1] / z_f
    density, docc = float(2.0 * (occ[1] + occ[2])), float(occ[2])
    problems = _trust_problems(g_tau, g_iw, sigma_iw, occ, density, docc)
    truncated = check_legendre_truncation(g_l, beta, (float(g_tau[0]), float(g_tau[-1])))
    if truncated:
        problems.append(truncated)
    messages: list[str] = []
    for text in problems:
        warn_untrusted(messages, f"NCA result not trustworthy: {text}", stacklevel=3)
    info.update({
        "method": method,
        "n_tau": n_tau,
        "pseudo_particle_occupations": (float(occ[0]), float(occ[1]), float(occ[1]),
                                        float(occ[2])),
        "free_energy": lam,
        "max_change": change,
        "tol": tol if method == "iterate" else None,
        "energy_scale": energy,
        "warnings": messages,
    })
    return SolverResult(solver="nca", beta=beta, g_iw=g_iw, sigma_iw=sigma_iw, g_l=g_l,
                        density=density, double_occupancy=docc, energy=None,
                        converged=bool(converged and not messages),
                        iterations=iterations, g_tau=g_tau, tau=tau, info=info)


register_solver("nca", solve_nca, options=NCAOptions)
