"""Physics assertions shared by the solver test modules (imported as ``from checks import ...``).

Each states one exact property of an impurity solution; the tolerances are the caller's, since
they depend on the solver's discretisation.
"""

from __future__ import annotations

import numpy as np

from solvers import AndersonModel, SolverResult
from solvers.mesh import matsubara_freqs


def assert_noninteracting(res: SolverResult, model: AndersonModel, atol: float) -> None:
    """``U = 0``: ``G(i w_n) = 1/(i w_n - eps_d - Delta(i w_n))`` and ``Sigma = 0`` exactly."""
    wn = matsubara_freqs(model.beta, res.g_iw.size)
    g0 = 1.0 / (1j * wn - model.eps_d - model.delta(wn.size))
    assert np.max(np.abs(res.g_iw - g0)) < atol
    assert np.max(np.abs(res.sigma_iw)) == 0.0
    assert res.converged


def assert_particle_hole_images(res: SolverResult, img: SolverResult, *, g_l: float,
                                g_iw: float, density: float, docc: float) -> None:
    """``img`` solves the particle-hole image of ``res``'s model (docs/conventions.md):
    ``G_l -> (-1)^l G_l``, ``G(i w_n) -> -G(i w_n)^*``, ``n -> 2 - n``, ``d -> 1 - n + d``.
    """
    sign = (-1.0) ** np.arange(res.g_l.size)
    assert np.max(np.abs(img.g_l - sign * res.g_l)) < g_l
    assert np.max(np.abs(img.g_iw + np.conj(res.g_iw))) < g_iw
    assert abs(img.density - (2.0 - res.density)) < density
    assert abs(img.double_occupancy - (1.0 - res.density + res.double_occupancy)) < docc
