"""The particle-hole map (solvers.symmetry) and the G(tau) <= 0 / causality checks
(solvers.causality): each against solved models, exact limits and batched == row by row."""

from __future__ import annotations

import numpy as np
import pytest

from solvers import (G_TAU_CHECK_POINTS, G_TAU_TOL, AndersonModel, causal_iw, g_l_from_poles,
                     g_tau_from_l, g_tau_max, g_tau_on_check_grid, g_tau_positive,
                     particle_hole_density, particle_hole_double_occupancy, particle_hole_g_l,
                     particle_hole_iw, particle_hole_model, particle_hole_models,
                     particle_hole_poles, particle_hole_result, particle_hole_sigma_iw, solve,
                     solve_many)

#: an asymmetric model (off half filling, bath not symmetric under eps -> -eps)
MODEL = AndersonModel(U=2.5, eps_d=-0.4, beta=20.0, bath_eps=[-0.7, 0.1, 0.9],
                      bath_v=[0.3, 0.5, 0.2])


def _assert_partner(mapped, direct, atol: float) -> None:
    """``mapped`` (the map of a solution) equals ``direct`` (the partner solved)."""
    assert np.max(np.abs(mapped.g_l - direct.g_l)) < atol * mapped.beta
    assert np.max(np.abs(mapped.g_iw - direct.g_iw)) < atol
    assert np.max(np.abs(mapped.sigma_iw - direct.sigma_iw)) < atol
    assert mapped.density == pytest.approx(direct.density, abs=atol)
    assert mapped.double_occupancy == pytest.approx(direct.double_occupancy, abs=atol)


@pytest.fixture(scope="module")
def ed_pair():
    m = MODEL
    return solve("ed", m, n_tau=101), solve("ed", particle_hole_model(m), n_tau=101)


def test_ed_of_the_partner_is_the_mapped_ed(ed_pair):
    """ED of a model and of its particle-hole partner map onto each other to 1e-10, including
    <H> (shifted by -2 eps_d - U - 2 sum eps_k) and G(tau) -> G(beta - tau)."""
    res, partner = ed_pair
    mapped = particle_hole_result(res, MODEL)
    _assert_partner(mapped, partner, 1e-10)
    assert mapped.energy == pytest.approx(partner.energy, abs=1e-10)
    assert np.max(np.abs(mapped.g_tau - partner.g_tau)) < 1e-10
    # the map is an involution
    back = particle_hole_result(mapped, particle_hole_model(MODEL))
    assert np.array_equal(back.g_l, res.g_l) and back.density == pytest.approx(res.density)
    assert back.energy == pytest.approx(res.energy, abs=1e-12)


def test_ipt_of_the_partner_is_the_mapped_ipt():
    res = solve("ipt", MODEL, tol=1e-13)
    partner = solve("ipt", particle_hole_model(MODEL), tol=1e-13)
    _assert_partner(particle_hole_result(res, MODEL), partner, 1e-10)


def test_model_map_discrete_and_continuous():
    p = particle_hole_model(MODEL)
    assert p.eps_d == pytest.approx(-MODEL.eps_d - MODEL.U)
    np.testing.assert_array_equal(p.bath_eps, -MODEL.bath_eps)
    np.testing.assert_array_equal(p.bath_v, MODEL.bath_v)
    np.testing.assert_allclose(p.delta(64), particle_hole_iw(MODEL.delta(64)), atol=1e-15)
    cont = AndersonModel(U=2.0, eps_d=0.3, beta=10.0, delta_iw=MODEL.delta(128))
    pc = particle_hole_model(cont)
    np.testing.assert_array_equal(pc.delta_iw, -np.conj(cont.delta_iw))
    # the model's own method is this map
    for m in (MODEL, cont):
        a, b = m.particle_hole_transformed(), particle_hole_model(m)
        assert a.to_dict() == b.to_dict()
    # a half-filled symmetric model is its own partner
    sym = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
    assert particle_hole_model(sym).is_particle_hole_symmetric()
    assert [m.to_dict() for m in particle_hole_models([MODEL, cont])] == [p.to_dict(),
                                                                          pc.to_dict()]


def test_array_maps_batched_equal_row_by_row():
    rng = np.random.default_rng(0)
    g_l = rng.normal(size=(5, 12))
    sigma = rng.normal(size=(5, 7)) + 1j * rng.normal(size=(5, 7))
    U = rng.uniform(0.5, 4.0, 5)
    n, d = rng.uniform(0, 2, 5), rng.uniform(0, 0.5, 5)
    batched = (particle_hole_g_l(g_l), particle_hole_sigma_iw(sigma, U),
               particle_hole_density(n), particle_hole_double_occupancy(d, n))
    for r in range(5):
        np.testing.assert_array_equal(batched[0][r], particle_hole_g_l(g_l[r]))
        np.testing.assert_array_equal(batched[1][r], particle_hole_sigma_iw(sigma[r], U[r]))
        assert batched[2][r] == particle_hole_density(n[r])
        assert batched[3][r] == particle_hole_double_occupancy(d[r], n[r])
    # each map is an involution (docc: with the partner's density)
    np.testing.assert_array_equal(particle_hole_g_l(batched[0]), g_l)
    np.testing.assert_allclose(particle_hole_sigma_iw(batched[1], U), sigma, atol=1e-15)
    np.testing.assert_allclose(particle_hole_double_occupancy(batched[3], batched[2]), d,
                               atol=1e-15)


def test_pole_map_is_the_map_of_g_iw():
    w, e = np.array([0.3, 0.7]), np.array([-1.2, 0.4])
    wn = (2 * np.arange(16) + 1) * np.pi / 10.0
    g = (w / (1j * wn[:, None] - e)).sum(axis=1)
    w2, e2 = particle_hole_poles(w, e)
    np.testing.assert_allclose((w2 / (1j * wn[:, None] - e2)).sum(axis=1), particle_hole_iw(g),
                               atol=1e-15)


def test_result_map_refuses_another_beta(ed_pair):
    with pytest.raises(ValueError, match="beta"):
        particle_hole_result(ed_pair[0], MODEL.replace(beta=10.0))


# --------------------------------------------------------------- G(tau) <= 0
def test_g_tau_threshold_is_g_tau_tol():
    """A constant G(tau) = a (G_0 = a beta) is flagged exactly when a > G_TAU_TOL."""
    beta = np.array([5.0, 5.0, 50.0, 50.0])
    a = np.array([0.5, 2.0, 0.5, 2.0]) * G_TAU_TOL
    g_l = np.zeros((4, 6))
    g_l[:, 0] = a * beta
    assert g_tau_positive(g_l, beta).tolist() == [False, True, False, True]
    assert g_tau_on_check_grid(g_l, beta).shape == (4, G_TAU_CHECK_POINTS)


def test_g_tau_check_grid_batched_and_exact():
    """G(tau) on the grid equals the pole sum (g_tau_from_l) row by row; batched == one."""
    rows, betas = [], [10.0, 40.0, 100.0]
    for beta in betas:
        rows.append(g_l_from_poles(np.array([0.4, 0.6]), np.array([-0.8, 1.1]), beta, 90))
    g_l, beta = np.stack(rows), np.array(betas)
    grid = g_tau_on_check_grid(g_l, beta)
    for r, b in enumerate(betas):
        tau = np.linspace(0.0, b, G_TAU_CHECK_POINTS)
        np.testing.assert_allclose(grid[r], g_tau_from_l(g_l[r], b, tau), atol=1e-12)
        assert g_tau_max(g_l[r], b) == pytest.approx(g_tau_max(g_l, beta)[r], abs=1e-15)
    assert not g_tau_positive(g_l, beta).any()


def test_converged_ed_with_truncation_wiggles_is_not_flagged():
    """A converged ED result at beta = 200 (n_l = 108) whose truncated series rises to
    G(tau) ~ 1.4e-8 near tau = beta/2: below G_TAU_TOL (the truncation error solvers accept), so
    neither the DMFT guard nor the ML causality check calls it acausal; a bump is caught."""
    from mldmft.dmft.steps import unphysical
    from mldmft.ml.constraints import TOL_TAU, causality_violation

    m = AndersonModel(U=8.0, eps_d=-4.0, beta=200.0, bath_eps=[-0.9, 0.2, 0.9],
                      bath_v=[0.3, 0.2, 0.3])
    res = solve("ed", m, n_l=108)
    assert res.converged
    assert 1e-8 < g_tau_max(res.g_l, m.beta) < G_TAU_TOL
    assert not unphysical(res)
    delta_l = g_l_from_poles(m.bath_v ** 2, m.bath_eps, m.beta, 108)[None]
    gt = causality_violation(res.g_l[None], np.array([m.beta]), np.array([m.eps_d]), delta_l)[1]
    assert TOL_TAU == G_TAU_TOL and gt[0] <= TOL_TAU
    bump = res.g_l.copy()
    bump[0] += 1e-3 * m.beta          # G(tau) + 1e-3 everywhere
    assert g_tau_positive(bump, m.beta)


def test_solver_results_pass_the_g_tau_check():
    models = [MODEL, particle_hole_model(MODEL),
              AndersonModel(U=4.0, eps_d=-2.0, beta=100.0, bath_eps=[-0.5, 0.5],
                            bath_v=[0.2, 0.2])]
    for name in ("ed", "ipt", "hubbard_i"):
        res = solve_many(name, models, n_l=120)
        g_l = np.stack([r.g_l for r in res])
        assert not g_tau_positive(g_l, np.array([m.beta for m in models])).any(), name


# --------------------------------------------------------------- Im F(i w_n) <= 0
def test_causal_iw_batched_and_the_model_check_use_it():
    d = MODEL.delta(32)
    rows = np.stack([d, np.conj(d), d + 1e-15j])
    assert causal_iw(rows).tolist() == [True, False, True]
    assert [bool(causal_iw(r)) for r in rows] == causal_iw(rows).tolist()
    with pytest.raises(ValueError, match="not causal"):
        AndersonModel(U=1.0, eps_d=0.0, beta=10.0, delta_iw=np.conj(d))
