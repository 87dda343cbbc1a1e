"""Bath fitting (solvers.bathfit) and the fitted-bath ED solvers "ed_fit", "ed1".."ed3"."""

import numpy as np
import pytest

import solvers.bathfit
import solvers.ed_fit  # noqa: F401  (registers "ed_fit", "ed1".."ed3")
from solvers import (AndersonModel, available_solvers, bethe_g_iw, hybridisation_iw,
                     matsubara_freqs, solve, sum_rule_from_l)
from solvers.bathfit import BathFit, fit_bath, fit_model

BETA = 50.0
N_IW = 1024
WN = matsubara_freqs(BETA, N_IW)


def bethe_delta(mu: float = 0.0) -> np.ndarray:
    """Delta = t^2 G_bethe (D = 1, t = 1/2), shifted by ``mu`` to break particle-hole symmetry."""
    return 0.25 * bethe_g_iw(WN, mu=mu)


# ------------------------------------------------------------------------------ fit_bath
def test_recovers_a_known_nonsymmetric_three_pole_bath():
    eps, v = np.array([-0.8, 0.15, 0.6]), np.array([0.35, 0.2, 0.3])
    fit = fit_bath(hybridisation_iw(WN, eps, v), BETA, 3)
    assert isinstance(fit, BathFit)
    assert not fit.symmetric and fit.success and fit.n_bath == 3
    assert fit.residual < 1e-10
    np.testing.assert_allclose(fit.bath_eps, eps, atol=1e-6)
    np.testing.assert_allclose(fit.bath_v, v, atol=1e-6)
    np.testing.assert_allclose(fit.delta_iw(WN), hybridisation_iw(WN, eps, v), atol=1e-10)


def test_recovers_a_symmetric_four_pole_bath_with_the_symmetric_parametrisation():
    eps, v = np.array([-0.9, -0.3, 0.3, 0.9]), np.array([0.3, 0.2, 0.2, 0.3])
    delta = hybridisation_iw(WN, eps, -v)          # the sign of V_k is irrelevant
    fit = fit_bath(delta, BETA, 4)
    assert fit.symmetric                           # auto-detected: Re Delta = 0
    assert fit.residual < 1e-10
    np.testing.assert_allclose(fit.bath_eps, eps, atol=1e-6)
    np.testing.assert_allclose(fit.bath_v, v, atol=1e-6)
    odd = fit_bath(delta, BETA, 3)                 # odd n_bath: a pair plus an eps = 0 site
    assert odd.symmetric and odd.bath_eps[1] == 0.0
    assert odd.bath_eps[0] == -odd.bath_eps[2] and odd.bath_v[0] == odd.bath_v[2]


def test_bethe_semicircle_at_beta_50():
    delta = bethe_delta()
    fit8 = fit_bath(delta, BETA, 8)
    assert fit8.symmetric and fit8.success and fit8.n_fit == 64
    # measured: residual 4.23e-7 (weighted RMS, units of D) with 8 poles, 1.04e-2 with 3 poles
    assert fit8.residual < 1e-6
    fit3 = fit_bath(delta, BETA, 3)
    assert 5e-3 < fit3.residual < 2e-2
    assert np.all(np.diff(fit8.bath_eps) > 0) and np.all(fit8.bath_v >= 0)
    np.testing.assert_allclose(fit8.bath_eps, -fit8.bath_eps[::-1], atol=1e-15)
    # the weighted RMS is what it says it is
    u = WN[:64] ** -1.0
    dev = np.abs(fit3.delta_iw(WN[:64]) - delta[:64])
    assert fit3.residual == pytest.approx(np.sqrt(np.sum(u * dev ** 2) / np.sum(u)), rel=1e-12)
    assert fit3.max_deviation == pytest.approx(dev.max(), rel=1e-12)


def test_fit_is_deterministic_and_options_are_honoured():
    delta = bethe_delta(mu=0.3)
    a, b = fit_bath(delta, BETA, 2), fit_bath(delta, BETA, 2)
    assert not a.symmetric
    assert np.array_equal(a.bath_eps, b.bath_eps) and np.array_equal(a.bath_v, b.bath_v)
    c = fit_bath(delta, BETA, 2, n_fit=200, weight_power=0.0, n_restarts=1, seed=3)
    assert c.n_fit == 200 and c.weight_power == 0.0 and c.n_restarts == 1
    forced = fit_bath(bethe_delta(), BETA, 2, symmetric=False)
    assert not forced.symmetric
    with pytest.raises(ValueError):                # read-only arrays of a frozen dataclass
        a.bath_eps[0] = 1.0


def test_fit_model_for_discrete_and_continuous_baths():
    m8 = AndersonModel(U=2.0, eps_d=-0.8, beta=BETA, bath_eps=[-1.5, -0.9, -0.4, -0.1, 0.2,
                                                                0.5, 0.9, 1.4],
                       bath_v=[0.15, 0.2, 0.2, 0.25, 0.2, 0.2, 0.15, 0.1])
    fitted = fit_model(m8, 3)
    assert fitted.is_discrete and fitted.n_bath == 3
    assert (fitted.U, fitted.eps_d, fitted.beta) == (m8.U, m8.eps_d, m8.beta)
    cont = AndersonModel(U=1.0, eps_d=-0.5, beta=BETA, delta_iw=bethe_delta())
    fitted = fit_model(cont, 4)
    assert fitted.n_bath == 4 and fitted.is_particle_hole_symmetric()


@pytest.mark.parametrize("n_bath", [0, 9, -1, 2.5, True])
def test_fit_rejects_bad_n_bath(n_bath):
    with pytest.raises(ValueError, match="n_bath"):
        fit_bath(bethe_delta(), BETA, n_bath)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="n_bath must be between 1 and 8"):
        fit_bath(bethe_delta(), BETA, 9)
    with pytest.raises(ValueError, match="causal"):
        fit_bath(-bethe_delta(), BETA, 2)
    with pytest.raises(ValueError, match="non-finite"):
        fit_bath(np.array([np.nan, -1j]), BETA, 1)
    with pytest.raises(ValueError, match="1-d"):
        fit_bath(np.ones((2, 2)) * -1j, BETA, 1)
    with pytest.raises(ValueError, match="beta"):
        fit_bath(bethe_delta(), 0.0, 2)
    with pytest.raises(ValueError, match="n_fit"):
        fit_bath(bethe_delta(), BETA, 4, n_fit=3)
    with pytest.raises(ValueError, match="weight_power"):
        fit_bath(bethe_delta(), BETA, 2, weight_power=-1.0)


# ------------------------------------------------------------------------------ ed_fit
def test_registered_names_and_unknown_solver():
    assert {"ed", "ed_fit", "ed1", "ed2", "ed3"} <= set(available_solvers())
    m = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[0.0], bath_v=[0.5])
    with pytest.raises(ValueError, match="available: .*ed1.*ed2.*ed3.*ed_fit"):
        solve("nope", m)
    with pytest.raises(TypeError, match="n_bath"):
        solve("ed2", m, n_bath=3)
    with pytest.raises(ValueError, match="n_bath must be between 1 and 8"):
        solve("ed_fit", m, n_bath=0)
    with pytest.raises(ValueError, match="n_bath must be between 1 and 8"):
        solve("ed_fit", m, n_bath=9)
    with pytest.raises(TypeError):
        solve("ed_fit", m, no_such_option=1)


def test_u0_reproduces_the_noninteracting_green_function():
    for eps, v, n_bath in (([-0.4, 0.7], [0.3, 0.2], 3), ([-0.6, 0.1, 0.8], [0.3, 0.2, 0.4], 3)):
        m = AndersonModel(U=0.0, eps_d=0.2, beta=BETA, bath_eps=eps, bath_v=v)
        r = solve("ed_fit", m, n_bath=n_bath)
        assert r.solver == "ed_fit" and not r.info["fitted"] and r.info["fit_residual"] == 0.0
        g0 = 1.0 / (1j * WN - m.eps_d - hybridisation_iw(WN, eps, v))
        np.testing.assert_allclose(r.g_iw, g0, atol=1e-10)
        np.testing.assert_allclose(r.sigma_iw, 0.0, atol=1e-10)


def test_exact_fit_equals_ed():
    m = AndersonModel(U=2.5, eps_d=-0.9, beta=BETA, bath_eps=[-0.6, 0.1, 0.8],
                      bath_v=[0.3, 0.2, 0.4])
    ed = solve("ed", m)
    for r in (solve("ed_fit", m, n_bath=3, always_fit=True), solve("ed3", m, always_fit=True)):
        assert r.info["fitted"] and r.info["fit_residual"] < 1e-10
        np.testing.assert_allclose(r.info["bath_eps"], m.bath_eps, atol=1e-6)
        np.testing.assert_allclose(r.g_iw, ed.g_iw, atol=1e-8)
        np.testing.assert_allclose(r.sigma_iw, ed.sigma_iw, atol=1e-8)
        np.testing.assert_allclose(r.g_l, ed.g_l, atol=1e-8)
        assert r.density == pytest.approx(ed.density, abs=1e-8)
        assert r.double_occupancy == pytest.approx(ed.double_occupancy, abs=1e-8)
        assert r.energy is None and r.info["fitted_energy"] == pytest.approx(ed.energy, abs=1e-7)
    assert r.solver == "ed3"
    skipped = solve("ed_fit", m)                   # Nb <= n_bath: the model's own bath
    assert not skipped.info["fitted"]
    np.testing.assert_array_equal(skipped.g_l, ed.g_l)
    assert skipped.density == ed.density and skipped.energy == ed.energy


def test_continuous_bath_is_handled_by_ed_fit_but_refused_by_ed():
    m = AndersonModel(U=2.0, eps_d=-0.7, beta=BETA, delta_iw=bethe_delta(mu=0.3))
    with pytest.raises(ValueError, match="discrete"):
        solve("ed", m)
    r = solve("ed1", m)
    assert r.solver == "ed1" and r.info["n_bath"] == 1 and len(r.info["bath_eps"]) == 1
    r = solve("ed_fit", m, n_tau=101)
    assert r.converged and r.info["fitted"] and not r.info["fit_symmetric"]
    assert r.g_iw.shape == (N_IW,) and r.g_l.shape == (80,)
    # G is rebuilt with the model's Delta and the fitted-bath Sigma
    np.testing.assert_allclose(1.0 / r.g_iw, 1j * WN - m.eps_d - m.delta(N_IW) - r.sigma_iw,
                               rtol=1e-12)
    np.testing.assert_allclose(r.g_tau, r.g_tau_at(r.tau), atol=1e-12)
    assert r.g_tau[-1] == pytest.approx(-r.density / 2, abs=1e-9)


def test_sum_rule_and_causality():
    m = AndersonModel(U=2.0, eps_d=-0.7, beta=BETA, delta_iw=bethe_delta(mu=0.3))
    r = solve("ed_fit", m)
    assert np.all(r.g_iw.imag < 0) and np.all(r.sigma_iw.imag <= 1e-12)
    assert sum_rule_from_l(r.g_l, BETA) == pytest.approx(-1.0, abs=1e-8)   # measured 1.1e-10
    assert (1j * WN[-1] * r.g_iw[-1]).real == pytest.approx(1.0, abs=1e-3)
    g_tau = r.g_tau_at(np.linspace(0.0, BETA, 201))
    assert np.all(g_tau < 0)
    assert 0 < r.density < 2 and 0 <= r.double_occupancy <= r.density / 2


def test_half_filling_stays_particle_hole_symmetric():
    m = AndersonModel(U=2.0, eps_d=-1.0, beta=BETA, delta_iw=bethe_delta())
    r = solve("ed2", m)
    assert r.info["fit_symmetric"]
    assert r.density == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(r.g_l[1::2], 0.0, atol=1e-10)
    np.testing.assert_allclose(r.g_iw.real, 0.0, atol=1e-12)


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_particle_hole_map(kind):
    if kind == "continuous":
        m = AndersonModel(U=2.0, eps_d=-0.7, beta=BETA, delta_iw=bethe_delta(mu=0.3))
    else:  # Nb = 5 > n_bath: fitted
        m = AndersonModel(U=1.5, eps_d=-0.4, beta=20.0, bath_eps=[-1.1, -0.5, 0.2, 0.6, 1.3],
                          bath_v=[0.2, 0.3, 0.25, 0.2, 0.15])
    a = solve("ed_fit", m, n_bath=3)
    b = solve("ed_fit", m.particle_hole_transformed(), n_bath=3)
    assert a.info["fitted"] and not a.info["fit_symmetric"]
    # holds to the fit's convergence (bath energies agree to ~3e-8): measured 4e-9 on G_l
    l = np.arange(a.g_l.size)
    np.testing.assert_allclose(b.g_l, (-1.0) ** l * a.g_l, atol=1e-7)
    np.testing.assert_allclose(b.g_iw, -np.conj(a.g_iw), atol=1e-7)
    assert b.density == pytest.approx(2.0 - a.density, abs=1e-7)
    np.testing.assert_allclose(b.info["bath_eps"], -np.array(a.info["bath_eps"])[::-1],
                               atol=1e-6)


def test_unresolved_far_poles_are_pulled_in_and_decoupled():
    """A pole pair far beyond the fitted frequencies is not resolved by ``Delta(i w_n)``: the
    optimiser parks it anywhere along a flat valley (thousands of D; ``|eps| ~ 1e8 D`` in a
    hypercubic ED-DMFT run, whose impurity G then asked for n_l >= 211200 Legendre
    coefficients). The fit keeps every pole within FAR_POLE_FACTOR times the highest fitted
    frequency, decoupled here, and reproduces the data to rounding."""
    from solvers.bathfit import FAR_POLE_FACTOR

    beta = 50.0
    wn = matsubara_freqs(beta, 1024)
    near_eps, near_v = [-1.2, -0.4, 0.4, 1.2], [0.3, 0.2, 0.2, 0.3]
    for far_eps, far_v in ((2e6, 2.0), (1e8, 100.0)):
        delta = hybridisation_iw(wn, near_eps + [-far_eps, far_eps], near_v + [far_v, far_v])
        fit = fit_bath(delta, beta, 6)
        bound = FAR_POLE_FACTOR * wn[fit.n_fit - 1]
        assert np.max(np.abs(fit.bath_eps)) <= bound * (1 + 1e-12)
        assert fit.residual <= 1e-10 * np.max(np.abs(delta))
        near = np.abs(fit.bath_eps) < 2.0
        assert np.allclose(fit.bath_eps[near], near_eps, atol=1e-7)
        assert np.allclose(fit.bath_v[near], near_v, atol=1e-7)
        assert np.allclose(fit.delta_iw(wn), delta, atol=1e-9)
