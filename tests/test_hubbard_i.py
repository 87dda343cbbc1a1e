"""Hubbard-I solver (solvers/hubbard_i.py): atomic limit vs ED, U = 0, symmetries, sum rules."""

import doctest

import numpy as np
import pytest
from checks import assert_noninteracting, assert_particle_hole_images

import solvers.hubbard_i  # registers "hubbard_i"
from solvers import AndersonModel, solve
from solvers.legendre import sum_rule_from_l, tail_moments_from_l

SYM_EPS = [-1.0, -0.3, 0.3, 1.0]
SYM_V = [0.4, 0.3, 0.3, 0.4]


def _off(U: float, eps_d: float, beta: float = 10.0, seed: int = 11) -> AndersonModel:
    rng = np.random.default_rng(seed)
    return AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=rng.uniform(-1.2, 1.2, 4),
                         bath_v=rng.uniform(0.2, 0.5, 4))


def _half(U: float, beta: float = 10.0) -> AndersonModel:
    return AndersonModel(U=U, eps_d=-U / 2, beta=beta, bath_eps=SYM_EPS, bath_v=SYM_V)


def _continuous(model: AndersonModel, n_iw: int = 1024) -> AndersonModel:
    return AndersonModel(U=model.U, eps_d=model.eps_d, beta=model.beta,
                         delta_iw=model.delta(n_iw))


def _ed(model: AndersonModel):
    # all four atomic states must be kept: the default cutoff 1e-10 drops weights below it
    return solve("ed", model, cutoff=1e-300)


# ------------------------------------------------------------------------------- exact limits
@pytest.mark.parametrize("model", [
    AndersonModel(U=0.0, eps_d=0.0, beta=10.0, bath_eps=SYM_EPS, bath_v=SYM_V),
    _off(0.0, -0.35),
    _continuous(_off(0.0, 0.2)),
], ids=["half", "off", "continuous"])
def test_u0_gives_the_noninteracting_green_function(model):
    r = solve("hubbard_i", model)
    assert_noninteracting(r, model, atol=1e-13)
    if model.is_discrete:
        ed = solve("ed", model, cutoff=1e-15)
        assert abs(r.density - ed.density) < 1e-12
        assert np.max(np.abs(r.g_l - ed.g_l)) < 1e-11  # ED drops poles lighter than 1e-15


@pytest.mark.parametrize("U,eps_d,beta", [(2.0, -1.0, 10.0), (2.0, -0.4, 10.0), (3.0, -2.5, 20.0),
                                          (1.0, 0.3, 5.0), (4.0, -1.0, 100.0)])
def test_atomic_limit_is_exact(U, eps_d, beta):
    model = AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=[], bath_v=[])
    r = solve("hubbard_i", model)
    ed = _ed(model)
    assert r.converged
    assert np.max(np.abs(r.g_iw - ed.g_iw)) < 1e-10
    assert np.max(np.abs(r.g_l - ed.g_l)) < 1e-10
    assert abs(r.density - ed.density) < 1e-12
    assert abs(r.double_occupancy - ed.double_occupancy) < 1e-12
    # the exact thermal occupation of the atom
    x, y = np.exp(-beta * eps_d), np.exp(-beta * (2 * eps_d + U))
    assert abs(r.density - 2 * (x + y) / (1 + 2 * x + y)) < 1e-12


def test_atomic_limit_with_a_continuous_zero_bath():
    model = AndersonModel(U=2.0, eps_d=-0.4, beta=10.0, delta_iw=np.zeros(1024))
    r = solve("hubbard_i", model)
    ed = _ed(AndersonModel(U=2.0, eps_d=-0.4, beta=10.0, bath_eps=[], bath_v=[]))
    assert np.max(np.abs(r.g_iw - ed.g_iw)) < 1e-10
    assert abs(r.density - ed.density) < 1e-10
    assert abs(r.double_occupancy - ed.double_occupancy) < 1e-10


def test_half_filling_is_insulating_for_any_u():
    # Sigma_at = U/2 + U^2/(4 i w_n) diverges at w -> 0: Z = 1/(1 + U^2/(4 w_0^2)) -> 0 with beta
    for U in (0.2, 1.0):
        for beta in (50.0, 500.0):
            r = solve("hubbard_i", _half(U, beta=beta))
            w0 = np.pi / beta
            assert abs(r.sigma_iw[0].imag * w0 + U * U / 4) < 1e-12
            assert abs(r.z - 1.0 / (1.0 + U * U / (4 * w0 * w0))) < 1e-12


# ------------------------------------------------------------------------------- sum rules
@pytest.mark.parametrize("model", [_half(2.0), _off(2.0, -0.6), _off(4.0, -1.0, beta=50.0),
                                   _continuous(_off(1.5, -0.3))],
                         ids=["half", "off", "off-beta50", "continuous"])
def test_sum_rule_causality_and_tails(model):
    r = solve("hubbard_i", model)
    assert r.converged
    assert abs(sum_rule_from_l(r.g_l, model.beta) + 1.0) < 1e-10
    assert np.all(r.g_iw.imag < 0)
    assert np.all(r.sigma_iw.imag <= 0)
    # density is self-consistent: n_s inside Sigma_at equals the density of G
    assert abs(r.info["residual"]) < 1e-10
    # second moment of G: eps_d + U n_s
    c = tail_moments_from_l(r.g_l, model.beta)
    assert abs(c[1] - (model.eps_d + model.U * r.density / 2)) < 1e-6


def test_g_tau_option():
    for model in (_off(2.0, -0.6), _continuous(_off(2.0, -0.6))):
        r = solve("hubbard_i", model, n_tau=101)
        assert r.g_tau.shape == (101,)
        assert abs(r.g_tau[0] + r.g_tau[-1] + 1.0) < 1e-10
        assert abs(-r.g_tau[-1] - r.density / 2) < 1e-9


# ------------------------------------------------------------------------------- symmetries
def test_half_filling_is_exactly_particle_hole_symmetric():
    for model in (_half(2.5), _continuous(_half(2.5))):
        r = solve("hubbard_i", model)
        assert r.density == 1.0
        assert np.all(r.g_iw.real == 0.0)
        assert np.all(r.sigma_iw.real == model.U / 2)
        assert np.all(r.g_l[1::2] == 0.0)
        assert abs(r.info["residual"]) < 1e-12


@pytest.mark.parametrize("model", [_off(1.5, -0.3), _off(3.0, -2.2, seed=3),
                                   _continuous(_off(2.0, -0.5, seed=5))],
                         ids=["moderate", "strong", "continuous"])
def test_particle_hole_map(model):
    r = solve("hubbard_i", model)
    p = solve("hubbard_i", model.particle_hole_transformed())
    assert_particle_hole_images(r, p, g_l=1e-10, g_iw=1e-11, density=1e-12, docc=1e-11)


def test_continuous_bath_matches_discrete():
    for model in (_half(2.0), _off(2.0, -0.6)):
        r = solve("hubbard_i", model)
        c = solve("hubbard_i", _continuous(model))
        assert np.max(np.abs(r.g_iw - c.g_iw)) < 1e-10
        assert np.max(np.abs(r.g_l - c.g_l)) < 1e-8
        assert abs(r.density - c.density) < 1e-10
        assert abs(r.double_occupancy - c.double_occupancy) < 1e-10


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("option,value", [("max_iter", -1), ("max_iter", 0), ("tol", -1e-3),
                                          ("tol", float("inf")), ("n_iw", 0), ("n_l", 0),
                                          ("n_tau", 1)])
def test_bad_options_raise_naming_the_option(option, value):
    with pytest.raises(ValueError, match=option):
        solve("hubbard_i", _off(2.0, -0.6), **{option: value})


def test_unknown_option_is_rejected():
    with pytest.raises(TypeError, match="mixing"):
        solve("hubbard_i", _half(1.0), mixing=0.5)


def test_iteration_limit_is_reported():
    r = solve("hubbard_i", _off(2.0, -0.6), max_iter=1)
    assert r.converged is False and r.info["warnings"]
    full = solve("hubbard_i", _off(2.0, -0.6))
    assert full.converged and full.iterations > 1


def test_docstring_examples():
    assert doctest.testmod(solvers.hubbard_i).failed == 0


# ------------------------------------------------------------------------------- density search
@pytest.mark.parametrize("eps_d", [-1.6, -0.6, 0.4, 1.5])
def test_newton_density_search_matches_the_bracketing_one(eps_d):
    """delta_iw: the analytic dh/dn agrees with finite differences, and the Newton search finds
    the root of the bracketing (Chandrupatla) search to its tolerance, in fewer evaluations."""
    from solvers._batch import ModelBatch
    from solvers.hubbard_i import _continuous_excess, _find_density

    b = ModelBatch.build([_continuous(_off(2.0, eps_d, beta=40.0, seed=s)) for s in (1, 2, 3)],
                         1024)
    rows, n = np.arange(3), np.array([0.2, 0.45, 0.8])
    _, dh = _continuous_excess(b, n, rows, slope=True)
    fd = (_continuous_excess(b, n + 1e-6, rows) - _continuous_excess(b, n - 1e-6, rows)) / 2e-6
    np.testing.assert_allclose(dh, fd, rtol=1e-5, atol=1e-6)
    ph = np.zeros(3, bool)
    counts = {}

    def counted(key, slope):
        def h(x, r):
            counts[key] = counts.get(key, 0) + 1
            return _continuous_excess(b, x, r, slope) if slope else _continuous_excess(b, x, r)
        return h

    ref, ok_ref, _ = _find_density(counted("bracket", False), 3, ph, 1e-13, 100)
    new, ok, _ = _find_density(counted("newton", False), 3, ph, 1e-13, 100,
                               counted("newton", True))
    assert ok.all() and ok_ref.all()
    np.testing.assert_allclose(new, ref, rtol=0, atol=2e-13)
    assert counts["newton"] < counts["bracket"]
