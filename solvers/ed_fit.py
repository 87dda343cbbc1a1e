"""Cheap ED solvers: exact diagonalisation of a few-pole fit of the bath ("ED-1/2/3").

Procedure of :func:`solve_ed_fit`, for any Anderson model (discrete or continuous bath):

1. Fit the model's ``Delta(i w_n)`` with ``n_bath`` poles (:func:`solvers.bathfit.fit_bath`),
   ``Delta_fit(i w_n) = sum_k V_k^2/(i w_n - eps_k)``. A discrete model with ``Nb <= n_bath``
   sites is not fitted: its own bath is used (the fit would be exact).
2. Solve the fitted model ``(U, eps_d, beta, eps_k, V_k)`` by exact diagonalisation.
3. Keep the ED self-energy ``Sigma_fit = G0_fit^-1 - G_fit^-1`` as the approximation of the
   impurity self-energy and rebuild the Green's function with the model's own hybridisation
   (standard ED-DMFT practice)::

       G(i w_n) = 1 / (i w_n - eps_d - Delta(i w_n) - Sigma_fit(i w_n))
                = G_fit + dG,   dG = -G_fit^2 dDelta / (1 + G_fit dDelta),
       dDelta = Delta_fit - Delta.

   ``Im Sigma_fit <= 0`` and ``Im Delta <= 0`` keep ``G`` causal, and ``dG ~ 1/(i w_n)^3`` leaves
   the ``1/(i w_n)`` tail, hence the sum rule ``G(0+) + G(beta-) = -1``, untouched.

Energies in units of the Bethe half bandwidth ``D``; ``beta`` in ``1/D``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .bathfit import BathFit, _check_n_bath, fit_bath
from ._checks import check_int
from .ed.solver import EDOptions, _solve_ed
from .greens import hybridisation_iw
from .legendre import g_l_from_iw, g_tau_from_l
from .mesh import matsubara_freqs
from .model import AndersonModel
from .options import UnknownOptionError
from .registry import register_solver
from .result import SolverResult
from .tails import estimate_tail, matsubara_sum

__all__ = ["solve_ed_fit", "solve_ed1", "solve_ed2", "solve_ed3", "DEFAULT_N_IW", "ed_fit_bath",
           "EDFitOptions"]

DEFAULT_N_IW = 1024


@dataclass(frozen=True)
class EDFitOptions(EDOptions):
    """Options of the ``ed_fit`` solver (meanings in :func:`solve_ed_fit`): the fit's and every
    :class:`~solvers.ed.solver.EDOptions` of the ED it runs, checked on construction (``n_iw``:
    ``None`` for the default that depends on the model).

    Example:
        >>> EDFitOptions(n_bath=9)
        Traceback (most recent call last):
        ...
        ValueError: n_bath must be between 1 and 8, got 9
        >>> EDFitOptions(n_bath=2, cutoff=1e-8).ed_options(64).cutoff
        1e-08
    """

    n_iw: int | None = None
    n_bath: int = 3
    always_fit: bool = False
    weight_power: float = 1.0
    n_fit: int | None = None
    symmetric: bool | None = None
    n_restarts: int = 4
    fit_seed: int = 0

    def result_sizes(self) -> tuple[int, int]:
        return DEFAULT_N_IW if self.n_iw is None else self.n_iw, self.n_l

    def check(self) -> None:
        _check_n_bath(self.n_bath)
        if self.n_iw is not None:
            check_int("n_iw", self.n_iw, 1)
        if not (math.isfinite(self.weight_power) and self.weight_power >= 0):
            raise ValueError(f"weight_power must be finite and >= 0, got {self.weight_power}")
        if self.n_fit is not None:
            check_int("n_fit", self.n_fit, 1)
        check_int("n_restarts", self.n_restarts, 0)
        self.ed_options(DEFAULT_N_IW if self.n_iw is None else self.n_iw)

    def ed_options(self, n_iw: int) -> EDOptions:
        """The options of the ED of the fitted model, on ``n_iw`` Matsubara frequencies."""
        names = set(EDOptions.names()) - {"n_iw"}
        return EDOptions(n_iw=n_iw, **{k: v for k, v in self.kwargs().items() if k in names})

    def fit_options(self) -> dict[str, Any]:
        """The keyword options of :func:`ed_fit_bath` (besides ``n_bath`` and ``n_iw``)."""
        return dict(always_fit=self.always_fit, weight_power=self.weight_power,
                    n_fit=self.n_fit, symmetric=self.symmetric, n_restarts=self.n_restarts,
                    fit_seed=self.fit_seed)


def _correction(dg_iw: np.ndarray, beta: float, n_l: int) -> tuple[np.ndarray, float]:
    """Legendre coefficients of ``dG(i w_n)`` (``n >= 0``, decaying like ``1/(i w_n)^3``) and
    its value ``dG(beta-)``.

    The moments ``(0, 0, c_3, c_4)`` of ``dG`` are fitted to its highest frequencies
    (:func:`solvers.tails.estimate_tail`) and carried by tail poles: ``G_l`` by
    :func:`solvers.legendre.g_l_from_iw`, ``dG(beta-) = -(1/beta) sum_n dG(i w_n)`` by
    :func:`solvers.tails.matsubara_sum` (summed on the mesh, not limited by ``n_l``).
    """
    if not np.any(dg_iw):
        return np.zeros(n_l), 0.0
    tail = estimate_tail(dg_iw, beta, (0.0, 0.0), n_moments=4)
    return g_l_from_iw(dg_iw, beta, n_l, tail), -matsubara_sum(dg_iw, beta, tail)


def _check_model(model: AndersonModel) -> None:
    if not isinstance(model, AndersonModel):
        raise TypeError(f"model must be an AndersonModel, got {type(model).__name__}")


def _n_iw(model: AndersonModel, n_iw: int | None) -> int:
    if n_iw is None:
        n_iw = DEFAULT_N_IW if model.is_discrete else int(model.delta_iw.size)
    if int(n_iw) != n_iw or n_iw < 1:
        raise ValueError(f"n_iw must be an integer >= 1, got {n_iw}")
    return int(n_iw)


def ed_fit_bath(model: AndersonModel, n_bath: int = 3, *, n_iw: int | None = None,
                always_fit: bool = False, weight_power: float = 1.0, n_fit: int | None = None,
                symmetric: bool | None = None, n_restarts: int = 4,
                fit_seed: int = 0) -> BathFit | None:
    """The ``n_bath``-pole fit of ``model``'s hybridisation exactly as :func:`solve_ed_fit`
    makes it (same options and defaults), without the ED; ``None`` where the solver uses the
    model's own bath (discrete, ``Nb <= n_bath``, not ``always_fit``).

    Example:
        >>> from solvers import AndersonModel
        >>> m = AndersonModel(U=1.0, eps_d=-0.5, beta=20.0, bath_eps=[-1.0, -0.2, 0.2, 1.0],
        ...                   bath_v=[0.3, 0.2, 0.2, 0.3])
        >>> ed_fit_bath(m, 4) is None, ed_fit_bath(m, 2).n_bath
        (True, 2)
    """
    _check_model(model)
    n_bath = _check_n_bath(n_bath)
    n_iw = _n_iw(model, n_iw)
    if model.is_discrete and model.n_bath <= n_bath and not always_fit:
        return None
    return fit_bath(model.delta(n_iw), model.beta, n_bath, weight_power=weight_power,
                    n_fit=n_fit, symmetric=symmetric, n_restarts=n_restarts, seed=fit_seed)


def solve_ed_fit(model: AndersonModel, *, n_bath: int = 3, n_iw: int | None = None,
                 n_l: int = 80, n_tau: int | None = None, always_fit: bool = False,
                 weight_power: float = 1.0, n_fit: int | None = None,
                 symmetric: bool | None = None, n_restarts: int = 4, fit_seed: int = 0,
                 **ed_options: Any) -> SolverResult:
    """ED of an ``n_bath``-pole fit of the bath, with ``G`` rebuilt on the model's own ``Delta``.

    ``Sigma(i w_n)`` is the self-energy of the fitted-bath model (exact ED);
    ``G(i w_n) = 1/(i w_n - eps_d - Delta(i w_n) - Sigma(i w_n))`` uses the model's ``Delta``, not
    the fit's. Where each field comes from:

    * ``sigma_iw``: ED of the fitted model, ``Sigma_fit = G0_fit^-1 - G_fit^-1``.
    * ``g_iw``: Dyson's equation with the model's ``Delta`` and ``Sigma_fit`` (above).
    * ``g_l``, ``g_tau``: of that ``g_iw``: the ED's exact pole values of the fitted model plus
      the Legendre transform of ``dG = G - G_fit`` (smooth in ``tau``, ``~1/(i w_n)^3``).
    * ``density``: ``-2 G(beta-)`` of that ``g_iw``: the ED density of the fitted model plus
      ``-2 dG(beta-)`` summed directly on the Matsubara mesh (not limited by ``n_l``).
    * ``double_occupancy``: ED of the fitted model.
    * ``energy``: ED ``<H>`` when the model's own bath was used unchanged (``Nb <= n_bath``,
      exact), otherwise ``None`` (``<H>`` of the fitted Hamiltonian is in
      ``info["fitted_energy"]``).

    When the model is discrete with ``Nb <= n_bath`` and ``always_fit`` is false, the model's own
    bath is used: ``dDelta = 0`` and the result is the plain ED result (relabelled). A discrete
    model with more sites (even more than ED's 8) is fitted like a continuous one.

    Args:
        model: Anderson model with a discrete or continuous bath.
        n_bath: poles of the fitted bath, ``1 <= n_bath <= 8``.
        n_iw: Matsubara frequencies of ``g_iw``/``sigma_iw``, also the data the fit sees.
            Default 1024 for a discrete bath, all stored ones for a continuous bath.
        n_l: Legendre coefficients of ``g_l``.
        n_tau: if given, also return ``g_tau`` on a uniform mesh of ``n_tau`` points.
        always_fit: fit even a discrete bath with ``Nb <= n_bath`` sites.
        weight_power, n_fit, symmetric, n_restarts: options of :func:`solvers.bathfit.fit_bath`.
        fit_seed: ``seed`` of :func:`solvers.bathfit.fit_bath` (deterministic fits).
        **ed_options: further options of the ``"ed"`` solver (``cutoff``, ``method``, ``seed``,
            ...); unknown names raise ``TypeError``.

    Returns:
        :class:`SolverResult` (``solver="ed_fit"``); ``info`` holds the fitted bath
        (``bath_eps``, ``bath_v``), ``fit_residual`` (weighted RMS deviation of
        ``Delta_fit``, units of D, 0 when not fitted), ``fit_max_deviation``, ``fit_symmetric``,
        ``fit_success``, ``fitted`` (whether a fit was made), ``fitted_energy`` and the ED's own
        ``info`` under ``"ed"``. ``converged`` is false when ED or the fit fell short.

    Example:
        >>> from solvers import AndersonModel, solve, bethe_g_iw, matsubara_freqs
        >>> wn = matsubara_freqs(20.0, 512)
        >>> m = AndersonModel(U=2.0, eps_d=-1.0, beta=20.0, delta_iw=0.25 * bethe_g_iw(wn))
        >>> r = solve("ed_fit", m, n_bath=3)
        >>> round(r.density, 8), r.info["n_bath"]
        (1.0, 3)
    """
    _check_model(model)
    opts = EDFitOptions(n_bath=n_bath, n_iw=n_iw, n_l=n_l, n_tau=n_tau, always_fit=always_fit,
                        weight_power=weight_power, n_fit=n_fit, symmetric=symmetric,
                        n_restarts=n_restarts, fit_seed=fit_seed, **ed_options)
    return _solve_ed_fit(model, opts)


def _solve_ed_fit(model: AndersonModel, opts: EDFitOptions) -> SolverResult:
    """:func:`solve_ed_fit` with built options."""
    n_bath, n_l = opts.n_bath, opts.n_l
    n_iw = _n_iw(model, opts.n_iw)
    beta = model.beta
    wn = matsubara_freqs(beta, n_iw)
    delta_iw = model.delta(n_iw)
    fit = ed_fit_bath(model, n_bath, n_iw=n_iw, **opts.fit_options())
    if fit is None:
        bath_eps, bath_v = model.bath_eps, model.bath_v
    else:
        bath_eps, bath_v = fit.bath_eps, fit.bath_v
    fitted = AndersonModel(U=model.U, eps_d=model.eps_d, beta=beta, bath_eps=bath_eps,
                           bath_v=bath_v)
    ed = _solve_ed(fitted, opts.ed_options(n_iw))

    d_delta = (np.zeros(n_iw, dtype=complex) if fit is None
               else hybridisation_iw(wn, bath_eps, bath_v) - delta_iw)
    dg_iw = -ed.g_iw ** 2 * d_delta / (1.0 + ed.g_iw * d_delta)
    dg_l, dg_beta = _correction(dg_iw, beta, n_l)
    g_tau = ed.g_tau
    if g_tau is not None and fit is not None:
        g_tau = g_tau + g_tau_from_l(dg_l, beta, ed.tau)
    density = ed.density - 2.0 * dg_beta

    info = {
        "n_bath": n_bath,
        "fitted": fit is not None,
        "bath_eps": np.array(bath_eps).tolist(),
        "bath_v": np.array(bath_v).tolist(),
        "fit_residual": 0.0 if fit is None else fit.residual,
        "fit_max_deviation": 0.0 if fit is None else fit.max_deviation,
        "fit_symmetric": None if fit is None else fit.symmetric,
        "fit_success": True if fit is None else fit.success,
        "fit_n_fit": None if fit is None else fit.n_fit,
        "fitted_energy": ed.energy,
        "ed": ed.info,
        "warnings": list(ed.diagnostics.warnings),
    }
    return SolverResult(solver="ed_fit", beta=beta, g_iw=ed.g_iw + dg_iw,
                        sigma_iw=ed.sigma_iw, g_l=ed.g_l + dg_l, density=float(density),
                        double_occupancy=ed.double_occupancy,
                        energy=ed.energy if fit is None else None,
                        converged=bool(ed.converged and info["fit_success"]),
                        g_tau=g_tau, tau=ed.tau, info=info)


def _fixed_options(n_bath: int) -> type[EDFitOptions]:
    """The options of solver ``"ed{n_bath}"``: :class:`EDFitOptions` with ``n_bath`` fixed."""
    name, fixed = f"ed{n_bath}", n_bath

    @dataclass(frozen=True)
    class Fixed(EDFitOptions):
        n_bath: int = field(default=fixed, init=False)

        @classmethod
        def build(cls, solver: str, options=None):
            if options is not None and "n_bath" in options:
                raise UnknownOptionError(f"solver {solver!r} fixes n_bath={n_bath}; use "
                                         "'ed_fit' to choose it")
            return super().build(solver, options)

    Fixed.__name__ = Fixed.__qualname__ = f"ED{n_bath}Options"
    Fixed.__doc__ = (f"Options of the ``{name}`` solver: :class:`EDFitOptions` with "
                     f"``n_bath={n_bath}`` fixed.")
    return Fixed


def _fixed_n_bath(n_bath: int) -> Callable[..., SolverResult]:
    """The solver ``"ed{n_bath}"``: :func:`solve_ed_fit` with ``n_bath`` fixed."""
    name = f"ed{n_bath}"
    options = _fixed_options(n_bath)

    def solver(model: AndersonModel, **kw: Any) -> SolverResult:
        if "n_bath" in kw:
            raise TypeError(f"solver {name!r} fixes n_bath={n_bath}; use 'ed_fit' to choose it")
        _check_model(model)
        result = _solve_ed_fit(model, options(**kw))
        return dataclasses.replace(result, solver=name)

    solver.__name__ = f"solve_ed{n_bath}"
    solver.__qualname__ = solver.__name__
    solver.__doc__ = (f"``solve_ed_fit`` with ``n_bath={n_bath}`` (the cheap \"ED-{n_bath}\" "
                      "solver); every other option of :func:`solve_ed_fit` is accepted.")
    solver.options = options
    return solver


register_solver("ed_fit", solve_ed_fit, options=EDFitOptions)
solve_ed1, solve_ed2, solve_ed3 = (_fixed_n_bath(n) for n in (1, 2, 3))
for _solver in (solve_ed1, solve_ed2, solve_ed3):
    register_solver(_solver.__name__[len("solve_"):], _solver, options=_solver.options)
