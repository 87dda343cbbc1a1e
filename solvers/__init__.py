"""Impurity solvers and the shared Green's-function toolkit of mldmft (numpy and scipy only).

Public API::

    from solvers import AndersonModel, solve, solve_many
    result = solve("ed", AndersonModel(U=2.0, eps_d=-1.0, beta=50.0,
                                       bath_eps=[-0.5, 0.5], bath_v=[0.5, 0.5]))
    results = solve_many("ipt", models)     # many models, one call (see supports_batch)

Toolkit: ``mesh`` (Matsubara and ``tau`` meshes), ``tails`` (high-frequency moments, among them
those of ``Delta``; tail poles, Matsubara sums), ``legendre`` (Legendre polynomials, the
transforms, the sum rule and tail moments from ``G_l``), ``fourier``, ``greens`` (Dyson's
equation, ``Z``, the density from ``G_l``, poles, ``Delta`` and its Legendre coefficients, Bethe
lattice). Each formula is written once there, for one row and for a batch of rows, and the rest
of the platform calls it (the full list: ``docs/solvers.md``, "Shared formulas").
Registered solvers: ``ed`` (exact, Nb <= 8), ``ed_fit``/``ed1``/``ed2``/``ed3`` (ED on a fitted
small bath), ``ipt`` (second order, modified IPT off half filling), ``hubbard_i``, ``nca``.
Solvers run with at most ``solver_threads()`` BLAS/OpenMP threads (default 1; environment
variable ``MLDMFT_SOLVER_THREADS`` or ``set_solver_threads(n)``: :mod:`solvers.threads`).
Conventions: ``docs/conventions.md``. This package never imports torch nor ``mldmft``.
"""

from ._checks import check_keys, check_type
from .bathfit import BathFit, fit_bath, fit_model
from .causality import (G_TAU_CHECK_POINTS, G_TAU_TOL, causal_iw, g_tau_max, g_tau_on_check_grid,
                        g_tau_positive)
from .fourier import iw_to_tau, tail_tau, tau_to_iw
from .greens import (bethe_delta_iw, bethe_g_iw, density_from_g_l, dyson_g, dyson_sigma, fermi,
                     g0_inverse_iw, g_tau_from_iw, hybridisation_iw, hybridisation_l,
                     hybridisation_l_many, poles_g_iw, poles_g_tau, quasiparticle_weight)
from .legendre import (g_iw_from_l, g_l_from_iw, g_l_from_poles, g_l_from_tau, g_tau_from_l,
                       legendre_p, legendre_sign, legendre_t_matrix, legendre_tau_basis,
                       sum_rule_from_l, sum_rule_vector, tail_moments_from_l)
from .mesh import matsubara_freqs, tau_mesh
from .model import AndersonModel
from .ir import IRBasis
from .registry import (UnknownOptionError, available_solvers, check_options, get_solver,
                       options_class, register_solver, solve, solve_many, solver_identity,
                       supports_batch)
from .options import SolverOptions
from .result import Diagnostics, SolverResult, SolverWarning
from .symmetry import (particle_hole_bath, particle_hole_density, particle_hole_double_occupancy,
                       particle_hole_energy, particle_hole_eps_d, particle_hole_g_l,
                       particle_hole_iw, particle_hole_model, particle_hole_models,
                       particle_hole_poles, particle_hole_result, particle_hole_sigma_iw)
from .threads import set_solver_threads, solver_threads
from .tails import (TailPoles, density_from_g_iw, estimate_tail, half_bandwidth,
                    hybridisation_moments, hybridisation_moments_many, matsubara_sum,
                    pole_moments)

# solver modules register themselves on import
from . import ed as _ed  # noqa: E402,F401
from . import ed_fit as _ed_fit  # noqa: E402,F401
from . import hubbard_i as _hubbard_i  # noqa: E402,F401
from . import ipt as _ipt  # noqa: E402,F401
from . import nca as _nca  # noqa: E402,F401
from .ed.solver import EDOptions  # noqa: E402
from .ed_fit import EDFitOptions  # noqa: E402
from .hubbard_i import HubbardIOptions  # noqa: E402
from .ipt import IPTOptions  # noqa: E402
from .nca import NCAOptions  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Diagnostics", "EDFitOptions", "EDOptions", "HubbardIOptions", "IPTOptions", "NCAOptions",
    "SolverOptions", "options_class",
    "AndersonModel", "BathFit", "IRBasis", "SolverResult", "SolverWarning", "TailPoles", "available_solvers",
    "bethe_delta_iw", "bethe_g_iw", "check_keys", "check_options", "check_type", "density_from_g_iw",
    "density_from_g_l", "dyson_g",
    "dyson_sigma", "estimate_tail", "fermi", "fit_bath", "fit_model", "g0_inverse_iw",
    "g_iw_from_l", "g_l_from_iw", "g_l_from_poles", "g_l_from_tau", "g_tau_from_iw",
    "g_tau_from_l", "get_solver", "half_bandwidth", "hybridisation_iw", "hybridisation_l",
    "hybridisation_l_many", "hybridisation_moments", "hybridisation_moments_many", "iw_to_tau",
    "legendre_p",
    "legendre_sign", "legendre_t_matrix", "legendre_tau_basis", "matsubara_freqs",
    "matsubara_sum", "poles_g_iw", "poles_g_tau",
    "pole_moments", "quasiparticle_weight", "register_solver", "solve", "solve_many",
    "solver_identity", "sum_rule_from_l", "sum_rule_vector", "supports_batch",
    "set_solver_threads",
    "solver_threads", "UnknownOptionError",
    "tail_moments_from_l", "tail_tau", "tau_mesh", "tau_to_iw",
    "G_TAU_CHECK_POINTS", "G_TAU_TOL", "causal_iw", "g_tau_max", "g_tau_on_check_grid",
    "g_tau_positive",
    "particle_hole_bath", "particle_hole_density", "particle_hole_double_occupancy",
    "particle_hole_energy", "particle_hole_eps_d", "particle_hole_g_l", "particle_hole_iw",
    "particle_hole_model", "particle_hole_models", "particle_hole_poles", "particle_hole_result",
    "particle_hole_sigma_iw",
]
