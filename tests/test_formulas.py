"""The shared physics formulas of ``solvers`` (one definition each): every helper against its
defining equation or an exact limit, and a batch of rows against the rows one at a time."""

import numpy as np
import pytest
from scipy.special import eval_legendre

from solvers import (AndersonModel, density_from_g_l, dyson_g, dyson_sigma, fermi,
                     g0_inverse_iw, g_l_from_poles, g_tau_from_l, hybridisation_iw,
                     hybridisation_l, hybridisation_l_many, hybridisation_moments,
                     hybridisation_moments_many, legendre_p, legendre_sign, legendre_tau_basis,
                     matsubara_freqs, pole_moments, quasiparticle_weight, sum_rule_from_l,
                     sum_rule_vector, tail_moments_from_l)
from solvers.mesh import matsubara_freqs_many

RNG_SEED = 20


@pytest.fixture(scope="module")
def poles():
    """Three rows of pole sums ``G = sum_p w_p/(i w_n - e_p)`` (unit weight), their ``beta`` and
    exact ``G_l`` (``n_l = 60``)."""
    rng = np.random.default_rng(RNG_SEED)
    beta = np.array([5.0, 20.0, 40.0])
    w = rng.uniform(0.1, 1.0, (3, 4))
    w /= w.sum(axis=1, keepdims=True)
    e = rng.uniform(-1.5, 1.5, (3, 4))
    g_l = np.stack([g_l_from_poles(w[r], e[r], beta[r], 60) for r in range(3)])
    return beta, w, e, g_l


# ------------------------------------------------------------------- Legendre polynomials
def test_legendre_p_is_the_legendre_polynomial_for_any_shape_of_x():
    x = np.random.default_rng(RNG_SEED).uniform(-1.0, 1.0, (4, 5))
    p = legendre_p(30, x)
    assert p.shape == (30, 4, 5)
    ref = eval_legendre(np.arange(30)[:, None, None], x[None])
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-13)
    for i in range(4):      # batched == row by row
        np.testing.assert_array_equal(p[:, i], legendre_p(30, x[i]))
    with pytest.raises(ValueError, match="n_l must be >= 1"):
        legendre_p(0, x)


def test_legendre_sign_and_sum_rule_vector_are_the_end_values():
    l = np.arange(9)
    np.testing.assert_array_equal(legendre_sign(9), [1, -1, 1, -1, 1, -1, 1, -1, 1])
    np.testing.assert_allclose(legendre_sign(9), eval_legendre(l, -1.0), rtol=1e-15)
    np.testing.assert_array_equal(legendre_p(9, -1.0), legendre_sign(9))   # exact at the ends
    np.testing.assert_array_equal(legendre_p(9, 1.0), np.ones(9))
    s = np.where(l % 2 == 0, 2.0 * np.sqrt(2 * l + 1.0), 0.0)   # sum_{l even} 2 sqrt(2l+1) G_l
    np.testing.assert_array_equal(sum_rule_vector(9), s)


def test_legendre_tau_basis_gives_g_tau(poles):
    beta, w, e, g_l = poles
    x = np.linspace(-1.0, 1.0, 7)
    basis = legendre_tau_basis(60, x)
    assert basis.shape == (7, 60)
    for r in range(3):
        tau = beta[r] * (x + 1) / 2
        exact = -np.sum(w[r] * np.exp(-tau[:, None] * e[r]) / (1 + np.exp(-beta[r] * e[r])),
                        axis=1)
        np.testing.assert_allclose(basis @ g_l[r] / beta[r], exact, atol=1e-12)
        np.testing.assert_allclose(g_tau_from_l(g_l[r], beta[r], tau), exact, atol=1e-12)


# ------------------------------------------------------------- density, sum rule, moments
def test_density_and_sum_rule_from_g_l(poles):
    beta, w, e, g_l = poles
    n = density_from_g_l(g_l, beta)
    exact = np.sum(w * fermi(e, beta[:, None]), axis=1)          # -G(beta-) = sum_p w_p f(e_p)
    np.testing.assert_allclose(n, exact, atol=1e-13)
    np.testing.assert_allclose(n, [density_from_g_l(g_l[r], beta[r]) for r in range(3)],
                               rtol=1e-15)
    assert isinstance(density_from_g_l(g_l[0], beta[0]), float)
    rule = sum_rule_from_l(g_l, beta)
    np.testing.assert_allclose(rule, -1.0, atol=1e-13)
    np.testing.assert_allclose(rule, [sum_rule_from_l(g_l[r], beta[r]) for r in range(3)],
                               rtol=1e-15)
    ends = [g_tau_from_l(g_l[r], beta[r], np.array([0.0, beta[r]])) for r in range(3)]
    np.testing.assert_allclose(rule, [a + b for a, b in ends], atol=1e-13)


def test_tail_moments_from_l(poles):
    beta, w, e, g_l = poles
    c = tail_moments_from_l(g_l, beta)
    exact = np.stack([pole_moments(w[r], e[r]) for r in range(3)])  # (1, sum w e, sum w e^2)
    np.testing.assert_allclose(c, exact, atol=1e-9)
    np.testing.assert_allclose(c, [tail_moments_from_l(g_l[r], beta[r]) for r in range(3)],
                               rtol=1e-14)


# ------------------------------------------------------------------------------- Dyson
def test_dyson_batched_equals_rows_and_round_trips():
    rng = np.random.default_rng(RNG_SEED)
    beta = np.array([10.0, 30.0])
    eps_d = np.array([-0.4, 0.7])
    wn = matsubara_freqs_many(beta, 16)
    delta = np.stack([hybridisation_iw(wn[r], [-0.5, 0.5], [0.4, 0.3]) for r in range(2)])
    sigma = rng.normal(size=(2, 16)) - 1j * np.abs(rng.normal(size=(2, 16)))
    g0_inv = g0_inverse_iw(wn, eps_d, delta)
    np.testing.assert_array_equal(g0_inv, 1j * wn - eps_d[:, None] - delta)   # the definition
    g = dyson_g(g0_inv, sigma)
    np.testing.assert_allclose(g, 1.0 / (1j * wn - eps_d[:, None] - delta - sigma), rtol=1e-15)
    np.testing.assert_allclose(dyson_sigma(g0_inv, g), sigma, atol=1e-13)
    for r in range(2):      # batched == row by row
        row = g0_inverse_iw(wn[r], eps_d[r], delta[r])
        np.testing.assert_array_equal(g0_inv[r], row)
        np.testing.assert_array_equal(dyson_g(row, sigma[r]), g[r])
        np.testing.assert_array_equal(dyson_sigma(row, g[r]), dyson_sigma(g0_inv, g)[r])
    # one mesh for every row, and leading (ensemble) axes on G
    np.testing.assert_array_equal(g0_inverse_iw(wn[0], eps_d, delta), 1j * wn[0] - eps_d[:, None]
                                  - delta)
    members = np.stack([g, 2 * g])
    np.testing.assert_array_equal(dyson_sigma(g0_inv, members)[1], dyson_sigma(g0_inv, 2 * g))


def test_dyson_refuses_mismatched_shapes():
    wn = matsubara_freqs(10.0, 8)
    with pytest.raises(ValueError, match="delta_iw has shape"):
        g0_inverse_iw(wn, 0.0, np.zeros(7))
    with pytest.raises(ValueError, match="delta_iw has shape"):
        g0_inverse_iw(wn, np.zeros(3), np.zeros((2, 8)))
    with pytest.raises(ValueError, match="G has"):
        dyson_sigma(np.ones(8), np.ones(7))


def test_quasiparticle_weight_is_the_first_matsubara_slope():
    beta = np.array([10.0, 50.0])
    a = np.array([0.25, 3.0])                                    # Im Sigma = -a w_n
    wn = matsubara_freqs_many(beta, 4)
    sigma = 0.3 - 1j * a[:, None] * wn
    z = quasiparticle_weight(sigma, beta)
    np.testing.assert_allclose(z, 1.0 / (1.0 + a), rtol=1e-14)
    assert [quasiparticle_weight(sigma[r], beta[r]) for r in range(2)] == z.tolist()
    assert isinstance(quasiparticle_weight(sigma[0], beta[0]), float)


# ------------------------------------------------------------------ moments of Delta
def _baths(beta, n_iw=1024, n=4):
    rng = np.random.default_rng(int(beta))
    discrete, continuous = [], []
    for _ in range(n):
        eps = np.sort(rng.uniform(-1.2, 1.2, 8))
        v = rng.uniform(0.1, 0.3, 8)
        discrete.append(AndersonModel(U=2.0, eps_d=-1.0, beta=beta, bath_eps=eps, bath_v=v))
        continuous.append(AndersonModel(U=2.0, eps_d=-1.0, beta=beta,
                                        delta_iw=discrete[-1].delta(n_iw)))
    return discrete, continuous


@pytest.mark.parametrize("beta, rtol", [(20.0, 1e-12), (200.0, 1e-6)])
def test_hybridisation_moments_against_the_exact_pole_sum(beta, rtol):
    """``M_k = sum_j V_j^2 eps_j^(k-1)``: exact for discrete baths; fitted from 1024 values of
    ``Delta(i w_n)`` of the same baths (measured: M_1 to ~1e-15 at beta 20, ~5e-8 at beta 200)."""
    discrete, continuous = _baths(beta)
    exact = np.stack([pole_moments(m.bath_v ** 2, m.bath_eps) for m in discrete])
    np.testing.assert_array_equal(hybridisation_moments_many(discrete), exact)
    fitted = hybridisation_moments_many(continuous)
    np.testing.assert_allclose(fitted[:, 0], exact[:, 0], rtol=rtol)
    np.testing.assert_allclose(fitted, exact, atol=50 * rtol * np.max(np.abs(exact)))
    mixed = hybridisation_moments_many(continuous[:2] + discrete[2:])
    np.testing.assert_array_equal(mixed[2:], exact[2:])
    one_by_one = np.stack([hybridisation_moments(m) for m in continuous])
    # one least-squares solve with several right-hand sides rounds differently from one with a
    # single one: the fitted M_3 of the batch moves by up to ~1e-10 relative (beta = 200)
    np.testing.assert_allclose(fitted, one_by_one, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(fitted[:, 0], one_by_one[:, 0], rtol=1e-13)


def test_hybridisation_l_batched_equals_rows_and_the_exact_poles():
    discrete, continuous = _baths(20.0, n=3)
    exact = np.stack([g_l_from_poles(m.bath_v ** 2, m.bath_eps, 20.0, 80) for m in discrete])
    np.testing.assert_allclose(hybridisation_l_many(discrete, 80), exact, atol=1e-12 * 20)
    mixed = hybridisation_l_many([continuous[0], discrete[1], continuous[2]], 80)
    assert np.max(np.abs(mixed - exact)) / 20.0 < 1e-8
    rows = np.stack([hybridisation_l(m, 80) for m in (continuous[0], discrete[1], continuous[2])])
    np.testing.assert_allclose(mixed, rows, atol=1e-13 * 20)
    assert hybridisation_l_many([], 80).shape == (0, 80)


# --------------------------------------------------------------- the ml layer calls them
def test_ml_layer_uses_the_solvers_helpers(poles):
    from mldmft.ml import constraints
    from mldmft.ml.hybridisation import c1_rows, half_bandwidth

    beta, w, e, g_l = poles
    np.testing.assert_array_equal(constraints.sum_rule_vector(11), sum_rule_vector(11))
    np.testing.assert_array_equal(constraints.ph_sign(11), legendre_sign(11))
    np.testing.assert_array_equal(constraints.density_from_g_l_rows(g_l, beta),
                                  2.0 * density_from_g_l(g_l, beta))
    discrete, continuous = _baths(50.0, n=2)
    np.testing.assert_array_equal(c1_rows(continuous), hybridisation_moments_many(continuous)[:, 0])
    assert half_bandwidth(np.array([0.25]))[0] == 1.0
