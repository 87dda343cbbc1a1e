"""Impurity solvers and the shared Green's-function toolkit of mldmft (numpy and scipy only).

Public API::

    from solvers import AndersonModel, solve
    result = solve("ed", AndersonModel(U=2.0, eps_d=-1.0, beta=50.0,
                                       bath_eps=[-0.5, 0.5], bath_v=[0.5, 0.5]))

Conventions: ``docs/conventions.md``. This package never imports torch nor ``mldmft``.
"""

from .greens import (bethe_delta_iw, bethe_g_iw, density_from_g_iw, density_from_g_l, dyson_g,
                     estimate_tail,
                     dyson_sigma, fermi, g0_inverse_iw, g_tau_from_iw, hybridisation_iw,
                     poles_g_iw, poles_g_tau, quasiparticle_weight)
from .legendre import (g_iw_from_l, g_l_from_iw, g_l_from_poles, g_l_from_tau, g_tau_from_l,
                       legendre_t_matrix, sum_rule_from_l, tail_moments_from_l)
from .fourier import iw_to_tau, tail_tau, tau_to_iw
from .mesh import matsubara_freqs, tau_mesh
from .model import AndersonModel
from .registry import available_solvers, get_solver, register_solver, solve
from .result import SolverResult
from . import ed as _ed  # noqa: F401  (registers "ed")

__version__ = "0.1.0"

__all__ = [
    "AndersonModel", "SolverResult", "solve", "register_solver", "available_solvers",
    "get_solver", "matsubara_freqs", "tau_mesh", "hybridisation_iw", "g0_inverse_iw",
    "dyson_sigma", "dyson_g", "poles_g_iw", "poles_g_tau", "density_from_g_l",
    "density_from_g_iw", "estimate_tail", "quasiparticle_weight", "bethe_g_iw", "bethe_delta_iw", "fermi",
    "g_tau_from_iw", "g_l_from_tau", "g_tau_from_l", "g_iw_from_l", "g_l_from_iw",
    "g_l_from_poles", "legendre_t_matrix", "tail_moments_from_l", "sum_rule_from_l",
    "iw_to_tau", "tau_to_iw", "tail_tau",
]
