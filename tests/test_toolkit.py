"""The shared Green's-function toolkit: model validation, meshes, Legendre/tau/Matsubara round
trips on exact pole functions, tails, sum rule, Dyson, Bethe lattice."""

import numpy as np
import pytest

from solvers import (AndersonModel, bethe_delta_iw, bethe_g_iw, density_from_g_iw, dyson_g,
                     dyson_sigma, g0_inverse_iw, g_iw_from_l, g_l_from_iw, g_l_from_poles,
                     g_l_from_tau, g_tau_from_l, hybridisation_iw, iw_to_tau, matsubara_freqs,
                     poles_g_iw, poles_g_tau, sum_rule_from_l, tail_moments_from_l, tau_to_iw)

ONE_POLE = (np.array([1.0]), np.array([0.37]))
TWO_POLE = (np.array([0.4, 0.6]), np.array([-1.1, 0.8]))  # atomic-like G at U ~ 2


# ---------------------------------------------------------------- model validation
@pytest.mark.parametrize("kwargs, field", [
    (dict(U=np.nan), "U"),
    (dict(eps_d=np.inf), "eps_d"),
    (dict(beta=-1.0), "beta"),
    (dict(beta=0.0), "beta"),
    (dict(U=-0.1), "U"),
    (dict(U=True), "U"),            # float(True) == 1.0: a flag in a number's place is a mistake
    (dict(beta="50"), "beta"),
    (dict(bath_v=[0.1, 0.2, 0.3]), "bath_v"),
    (dict(bath_eps=[0.0, np.nan]), "bath_eps"),
])
def test_model_rejects_bad_fields(kwargs, field):
    base = dict(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
    base.update(kwargs)
    with pytest.raises(ValueError, match=field):
        AndersonModel(**base)


def test_model_bath_choices():
    with pytest.raises(ValueError, match="bath"):
        AndersonModel(U=1.0, eps_d=0.0, beta=1.0)
    with pytest.raises(ValueError, match="not both"):
        AndersonModel(U=1.0, eps_d=0.0, beta=1.0, bath_eps=[0.0], bath_v=[0.1],
                      delta_iw=np.array([-0.1j]))
    with pytest.raises(ValueError, match="delta_iw"):
        AndersonModel(U=1.0, eps_d=0.0, beta=1.0, delta_iw=np.array([0.1j]))  # acausal
    m = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=[-0.3, 0.3], bath_v=[0.2, 0.2])
    with pytest.raises(Exception):
        m.U = 3.0  # frozen
    assert m.is_particle_hole_symmetric()
    assert not m.replace(eps_d=-0.4).is_particle_hole_symmetric()
    again = AndersonModel.from_dict(m.to_dict())
    assert again.U == m.U and np.array_equal(again.bath_eps, m.bath_eps)


def test_model_particle_hole_transform_maps_delta():
    m = AndersonModel(U=2.0, eps_d=-0.3, beta=10.0, bath_eps=[-0.7, 0.1, 0.9],
                      bath_v=[0.2, 0.3, 0.4])
    ph = m.particle_hole_transformed()
    assert ph.eps_d == pytest.approx(-m.eps_d - m.U)
    np.testing.assert_allclose(ph.delta(64), -np.conj(m.delta(64)), atol=1e-15)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("poles", [ONE_POLE, TWO_POLE])
@pytest.mark.parametrize("beta", [2.0, 10.0, 50.0])
def test_legendre_round_trips_on_exact_poles(poles, beta):
    w, e = poles
    n_l = 80 if beta > 10 else 50
    exact_l = g_l_from_poles(w, e, beta, n_l)
    # tau -> Legendre by Gauss-Legendre quadrature agrees with the closed form
    quad_l = g_l_from_tau(lambda t: poles_g_tau(w, e, beta, t), beta, n_l, n_quad=400)
    np.testing.assert_allclose(quad_l, exact_l, atol=1e-11)
    # Legendre -> tau
    tau = np.linspace(0, beta, 57)
    np.testing.assert_allclose(g_tau_from_l(exact_l, beta, tau), poles_g_tau(w, e, beta, tau),
                               atol=1e-10)
    # Legendre -> Matsubara through T_nl
    wn = matsubara_freqs(beta, 200)
    np.testing.assert_allclose(g_iw_from_l(exact_l, 200), poles_g_iw(w, e, wn), atol=1e-10)
    # Matsubara -> Legendre through tau, tails analytic
    g_iw = poles_g_iw(w, e, matsubara_freqs(beta, 4096))
    tail = (w.sum(), (w * e).sum(), (w * e * e).sum())
    np.testing.assert_allclose(g_l_from_iw(g_iw, beta, n_l, tail=tail), exact_l, atol=1e-10)


@pytest.mark.parametrize("beta", [5.0, 50.0])
def test_fourier_round_trip(beta):
    w, e = TWO_POLE
    wn = matsubara_freqs(beta, 4096)
    g_iw = poles_g_iw(w, e, wn)
    tau = np.linspace(0, beta, 4001)
    tail = (1.0, (w * e).sum(), (w * e * e).sum())
    np.testing.assert_allclose(iw_to_tau(g_iw, beta, tau.size, tail=tail),
                               poles_g_tau(w, e, beta, tau), atol=1e-10)
    np.testing.assert_allclose(tau_to_iw(poles_g_tau(w, e, beta, tau), beta, 512), g_iw[:512],
                               atol=1e-10 * beta)


def test_sum_rule_and_tail_moments_from_legendre():
    beta = 20.0
    w, e = TWO_POLE
    g_l = g_l_from_poles(w, e, beta, 90)
    assert sum_rule_from_l(g_l, beta) == pytest.approx(-1.0, abs=1e-12)
    even = np.arange(90) % 2 == 0
    assert np.sum(2 * np.sqrt(2 * np.arange(90) + 1)[even] * g_l[even]) == pytest.approx(-beta)
    c = tail_moments_from_l(g_l, beta)
    np.testing.assert_allclose(c, [1.0, (w * e).sum(), (w * e * e).sum()], atol=1e-9)


def test_pole_legendre_is_stable_for_extreme_energies():
    # beta * e = 4000: naive exp(beta e) or i_l(beta e / 2) would overflow
    w, e = np.array([0.5, 0.5]), np.array([-40.0, 40.0])
    g_l = g_l_from_poles(w, e, 100.0, 60)
    assert np.all(np.isfinite(g_l))
    quad = g_l_from_tau(lambda t: poles_g_tau(w, e, 100.0, t), 100.0, 60, n_quad=1500)
    np.testing.assert_allclose(g_l, quad, atol=1e-10)


# ---------------------------------------------------------------- Dyson, density, Bethe
def test_dyson_and_density_noninteracting():
    beta = 30.0
    wn = matsubara_freqs(beta, 2048)
    eps, v = np.array([-0.6, 0.2, 0.7]), np.array([0.3, 0.2, 0.25])
    delta = hybridisation_iw(wn, eps, v)
    g0_inv = g0_inverse_iw(wn, -0.2, delta)
    g = 1 / g0_inv
    np.testing.assert_allclose(dyson_sigma(g0_inv, g), 0, atol=1e-13)
    np.testing.assert_allclose(dyson_g(g0_inv, 0.0), g)
    # density from the exact poles of the 4x4 one-body problem
    h = np.diag([-0.2, *eps])
    h[0, 1:] = h[1:, 0] = v
    lev, vec = np.linalg.eigh(h)
    n_exact = np.sum(vec[0] ** 2 / (1 + np.exp(beta * lev)))
    assert density_from_g_iw(g, beta) == pytest.approx(n_exact, abs=1e-9)


def test_bethe_semicircle():
    beta = 50.0
    wn = matsubara_freqs(beta, 1000)
    g = bethe_g_iw(wn, D=1.0)
    assert np.all(g.imag < 0)
    # self-consistent: G = 1 / (i w - t^2 G)
    np.testing.assert_allclose(g, 1 / (1j * wn - bethe_delta_iw(g, D=1.0)), atol=1e-13)
    np.testing.assert_allclose(g.real, 0, atol=1e-14)
    assert density_from_g_iw(g, beta) == pytest.approx(0.5, abs=1e-10)
    # large-D limit of the scale: G(D) = G(1)(w/D)/D
    np.testing.assert_allclose(bethe_g_iw(2 * wn, D=2.0), g / 2, atol=1e-14)


# ---------------------------------------------------------------- tails (solvers.tails)
@pytest.mark.parametrize("tail", [(1.0,), (1.0, 0.3), (1.0, -0.2, 1.3), (1.0, 0.3, 0.5, 0.1),
                                  (0.0, 0.0, 2.0, -1.0), (1.0, -0.2, 1.3, 0.4, 2.0, 0.7)])
def test_tail_poles_carry_the_moments_and_transform_exactly(tail):
    from solvers import TailPoles
    tp = TailPoles.from_moments(tail)
    # the same tail as an explicit pole list: pairs p [pole(e) + pole(-e)]/2, r/(2e) [.. - ..]
    w = np.concatenate([tp.odd_weights / 2, tp.odd_weights / 2,
                        tp.even_weights / (2 * tp.even_energies),
                        -tp.even_weights / (2 * tp.even_energies)])
    e = np.concatenate([tp.odd_energies, -tp.odd_energies, tp.even_energies, -tp.even_energies])
    np.testing.assert_allclose([np.sum(w * e ** k) for k in range(len(tail))], tail, atol=1e-14)
    beta, wn, tau = 20.0, matsubara_freqs(20.0, 64), np.linspace(0.0, 20.0, 9)
    np.testing.assert_allclose(tp.iw(wn), poles_g_iw(w, e, wn), atol=1e-14)
    np.testing.assert_allclose(tp.tau(tau, beta), poles_g_tau(w, e, beta, tau), atol=1e-14)
    assert tp.at_beta(beta) == pytest.approx(poles_g_tau(w, e, beta, np.array([beta]))[0],
                                             abs=1e-14)


def test_single_pole_tail_is_that_pole():
    # default node spacing sqrt(c3/c1): the transforms of one pole are exact to rounding
    beta, e = 50.0, 0.37
    g_iw = poles_g_iw(*ONE_POLE, matsubara_freqs(beta, 1024))
    tail = (1.0, e, e ** 2, e ** 3)
    np.testing.assert_allclose(g_l_from_iw(g_iw, beta, 80, tail=tail),
                               g_l_from_poles(*ONE_POLE, beta, 80), atol=1e-13)
    tau = np.linspace(0.0, beta, 513)
    np.testing.assert_allclose(iw_to_tau(g_iw, beta, tau.size, tail=tail),
                               poles_g_tau(*ONE_POLE, beta, tau), atol=1e-14)


@pytest.mark.parametrize("beta", [10.0, 50.0, 200.0])
def test_legendre_transform_converges_with_the_number_of_moments(beta):
    w, e = np.array([0.3, 0.3, 0.4]), np.array([-1.7, 0.2, 1.5])
    g_iw = poles_g_iw(w, e, matsubara_freqs(beta, 1024))
    exact = g_l_from_poles(w, e, beta, 80)
    err = [np.max(np.abs(g_l_from_iw(g_iw, beta, 80, tail=tuple(np.sum(w * e ** k)
                                                                 for k in range(n))) - exact))
           for n in (2, 3, 4, 6)]
    assert err[0] > err[1] > err[2] > err[3]
    assert err[2] < {10.0: 1e-12, 50.0: 1e-9, 200.0: 1e-7}[beta]


def test_estimate_tail_and_hybridisation_moments():
    from solvers import estimate_tail, hybridisation_moments, pole_moments
    beta = 50.0
    eps, v = np.array([-1.5, -0.4, 0.1, 0.9]), np.array([0.2, 0.3, 0.25, 0.1])
    exact = pole_moments(v ** 2, eps, 3)
    m = AndersonModel(U=1.0, eps_d=0.0, beta=beta, bath_eps=eps, bath_v=v)
    np.testing.assert_array_equal(hybridisation_moments(m), exact)
    cont = AndersonModel(U=1.0, eps_d=0.0, beta=beta, delta_iw=m.delta(1024))
    np.testing.assert_allclose(hybridisation_moments(cont), exact, atol=1e-9)
    # known leading moments are kept; a G with c1 = 1
    g = 1 / (1j * matsubara_freqs(beta, 1024) - 0.3)
    c = estimate_tail(g, beta, (1.0, 0.3), n_moments=4)
    assert c[:2] == (1.0, 0.3)
    np.testing.assert_allclose(c[2:], [0.09, 0.027], atol=1e-10)
    with pytest.raises(ValueError, match="fraction"):
        estimate_tail(g, beta, fraction=0.0)


def test_matsubara_sum_and_density():
    from solvers import matsubara_sum
    beta = 30.0
    wn = matsubara_freqs(beta, 1024)
    w, e = TWO_POLE
    g = poles_g_iw(w, e, wn)
    n_exact = float(np.sum(w / (1 + np.exp(beta * e))))
    tail = tuple(np.sum(w * e ** k) for k in range(4))
    assert density_from_g_iw(g, beta, tail) == pytest.approx(n_exact, abs=1e-12)
    assert density_from_g_iw(g, beta) == pytest.approx(n_exact, abs=1e-11)  # moments fitted
    # (1/beta) sum_n 1/(i w_n - a)^2 = d fermi(a)/da = -beta f (1 - f), moments (0, 1, 2a, 3a^2)
    f = 1 / (1 + np.exp(beta * 0.2))
    s = matsubara_sum(1 / (1j * wn - 0.2) ** 2, beta, (0.0, 1.0, 0.4, 0.12))
    assert s == pytest.approx(-beta * f * (1 - f), abs=1e-12)


def test_tau_to_iw_caches_its_mesh_integrals():
    from solvers.fourier import _moment_integrals
    g_tau = poles_g_tau(*ONE_POLE, 10.0, np.linspace(0.0, 10.0, 101))
    first = tau_to_iw(g_tau, 10.0, 64)
    hits = _moment_integrals.cache_info().hits
    np.testing.assert_array_equal(tau_to_iw(g_tau, 10.0, 64), first)
    assert _moment_integrals.cache_info().hits == hits + 1
    assert not any(a.flags.writeable for a in _moment_integrals(100, 64))


def test_bethe_green_function_keeps_its_digits_at_high_frequency():
    wn = matsubara_freqs(10.0, 4096)
    g = bethe_g_iw(wn)
    # G = 1/z + (D/2)^2/z^3 + 2 (D/2)^4/z^5 + ...: no cancellation in 2/(z + sqrt(z^2 - D^2))
    z = 1j * wn[-1]
    assert abs(g[-1] - (1 / z + 0.25 / z ** 3 + 2 * 0.0625 / z ** 5)) < 1e-15 * abs(g[-1])


# ------------------------------------------------------------ accepted temperatures
@pytest.mark.parametrize("beta", [1e-300, 1e-9, 1.5e8, 1e300])
def test_beta_outside_the_accepted_range_is_refused(beta):
    """beta = 1e-300 used to give inf/NaN arrays marked converged (w_n overflows), 1e300 an
    endless Legendre recursion: both are refused with one line naming beta and the range."""
    from solvers.mesh import check_beta
    with pytest.raises(ValueError, match=r"AndersonModel.beta = .* is outside the accepted "
                                         r"range \[1e-08, 1e\+08\]"):
        AndersonModel(U=2.0, eps_d=-1.0, beta=beta, bath_eps=[0.0], bath_v=[0.5])
    with pytest.raises(ValueError, match="outside the accepted range"):
        check_beta(beta)
    with pytest.raises(ValueError, match="outside the accepted range"):
        matsubara_freqs(beta, 4)


@pytest.mark.parametrize("beta", [1e-8, 1e8])
def test_accepted_beta_extremes_give_finite_results(beta):
    """Finite everywhere; at beta = 1e8 the 80 Legendre coefficients cannot hold G (tens of
    thousands would be needed), which is reported, not hidden."""
    import warnings

    from solvers import SolverWarning, solve
    model = AndersonModel(U=2.0, eps_d=-1.0, beta=beta, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = solve("hubbard_i", model)
    for arr in (res.g_iw, res.sigma_iw, res.g_l):
        assert np.all(np.isfinite(arr))
    assert res.density == pytest.approx(1.0, abs=1e-9)
    flagged = [w for w in caught if issubclass(w.category, SolverWarning)]
    assert bool(flagged) == (beta > 1) == (not res.converged)


# ------------------------------------------------------------ Legendre truncation
@pytest.mark.parametrize("beta, e", [(10.0, 1.0), (100.0, 6.5), (1000.0, 10.0), (50.0, 0.0)])
def test_required_n_l_is_the_smallest_sufficient_order(beta, e):
    """required_n_l(beta, e_max) reproduces a pole at |e| = e_max to tol at every tau, one
    coefficient fewer does not (the error sits at tau = 0+ / beta-); poles closer to 0 need
    fewer; max_beta_for_n_l inverts it."""
    from solvers.legendre import legendre_truncation_error, max_beta_for_n_l, required_n_l
    tol = 1e-8
    n = required_n_l(beta, e, tol)
    tau = np.linspace(0.0, beta, 2001)

    def err(n_l, energy):
        g_l = g_l_from_poles([1.0], [energy], beta, n_l)
        return np.max(np.abs(g_tau_from_l(g_l, beta, tau) - poles_g_tau([1.0], [energy], beta,
                                                                          tau)))

    assert err(n, e) <= tol and err(n, -e) <= tol
    assert err(n, 0.6 * e) <= tol
    if n > 1:
        assert err(n - 1, e) > tol
        assert legendre_truncation_error(n - 1, beta, e) == pytest.approx(err(n - 1, e),
                                                                           rel=1e-6)
    if e > 0:
        b = max_beta_for_n_l(n, e, tol)
        assert required_n_l(b, e, tol) <= n < required_n_l(1.02 * b, e, tol) + 1
        assert beta <= b * (1 + 1e-9)


def test_check_legendre_truncation_flags_a_truncated_series():
    from solvers.legendre import check_legendre_truncation, required_n_l
    w, e, beta = [0.5, 0.5], [-10.0, 10.0], 1000.0     # atom U = 20 at half filling
    short = g_l_from_poles(w, e, beta, 80)
    assert sum_rule_from_l(short, beta) == pytest.approx(-0.4685, abs=1e-4)
    assert "n_l=80" in check_legendre_truncation(short, beta)
    assert "G(0+), G(beta-)" in check_legendre_truncation(short, beta, (-0.5, -0.5))
    enough = g_l_from_poles(w, e, beta, required_n_l(beta, 10.0, 1e-7))
    assert check_legendre_truncation(enough, beta) is None
    assert check_legendre_truncation(enough, beta, (-0.5, -0.5)) is None
