"""IPT's auxiliary-level search: the slope of the free density and the safeguarded Newton roots
(:func:`solvers._roots.newton_roots`) agree with finite differences and with the bracketing
root finder; each row's root does not depend on its batch."""

import numpy as np
import pytest

from solvers import AndersonModel
from solvers._batch import ModelBatch
from solvers._roots import expand_bracket, find_roots, newton_roots
from solvers.greens import poles_g_iw
from solvers.mesh import matsubara_freqs

BETA = 40.0
EPS, V = np.array([-0.9, -0.2, 0.1, 0.1, 0.8]), np.array([0.35, 0.3, 0.2, 0.25, 0.4])


def _batches():
    discrete = AndersonModel(U=2.0, eps_d=-0.6, beta=BETA, bath_eps=EPS, bath_v=V)
    delta = poles_g_iw(V ** 2, EPS, matsubara_freqs(BETA, 1024))
    continuous = AndersonModel(U=2.0, eps_d=-0.6, beta=BETA, delta_iw=delta)
    return {"discrete": ModelBatch.build([discrete] * 4, 1024),
            "continuous": ModelBatch.build([continuous] * 4, 1024)}


@pytest.mark.parametrize("kind, rtol, atol", [("discrete", 1e-7, 0.0),
                                               ("continuous", 1e-5, 2e-6)])
def test_free_density_slope_is_its_derivative(kind, rtol, atol):
    """Continuous bath: the mesh sum plus the 1/w^2 tail, exact to O(1/w_N^3) absolute."""
    b = _batches()[kind]
    level, rows = np.array([-1.3, -0.15, 0.1, 2.5]), np.arange(4)
    n0, slope = b.free_density(level, rows, slope=True)
    np.testing.assert_array_equal(n0, b.free_density(level, rows))
    h = 1e-5
    fd = (b.free_density(level + h, rows) - b.free_density(level - h, rows)) / (2 * h)
    assert np.all(slope < 0)
    np.testing.assert_allclose(slope, fd, rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_newton_roots_equal_the_bracketing_roots(kind):
    b = _batches()[kind]
    target = np.array([0.02, 0.3, 0.5, 0.97])      # nearly empty to nearly full
    start = np.array([0.0, 5.0, -3.0, 0.4])

    def fd(x, rows):
        n0, slope = b.free_density(x, rows, slope=True)
        return n0 - target[rows], slope

    def f(x, rows):
        return b.free_density(x, rows) - target[rows]

    root, f_root, ok, its = newton_roots(fd, start, 1.0, xtol=1e-13, rtol=1e-15, max_iter=200)
    lo, hi, f_lo, f_hi = expand_bracket(f, start, 1.0)
    ref = find_roots(f, lo, hi, f_lo, f_hi, xtol=1e-13, rtol=1e-15, max_iter=200)[0]
    assert ok.all() and np.all(its < 40)
    np.testing.assert_allclose(root, ref, rtol=0, atol=2e-13)
    np.testing.assert_array_equal(f_root, f(root, np.arange(4)))
    for i in range(4):       # alone == in the batch (rounding: BLAS on other shapes)
        one = newton_roots(lambda x, rows: fd(x, rows + i), start[i:i + 1], 1.0, xtol=1e-13,
                           rtol=1e-15, max_iter=200)
        assert abs(one[0][0] - root[i]) <= 1e-13 * max(1.0, abs(root[i]))


@pytest.mark.parametrize("kind", ["discrete", "continuous"])
def test_newton_roots_with_a_curvature_bound_skip_the_confirming_evaluation(kind):
    """With curvature = beta (|n0''/(2 n0')| <= beta/2), a converged search stops at x + s
    unevaluated: fewer evaluations, the same roots to the tolerance, f(root) still ~0."""
    b = _batches()[kind]
    target = np.array([0.02, 0.3, 0.5, 0.97])
    start = np.array([0.0, 5.0, -3.0, 0.4])
    calls = []

    def fd(x, rows):
        calls.append(rows.size)
        n0, slope = b.free_density(x, rows, slope=True)
        return n0 - target[rows], slope

    ref, _, ok_ref, its_ref = newton_roots(fd, start, 1.0, xtol=1e-13, rtol=1e-15, max_iter=200)
    n_ref, calls[:] = sum(calls), []
    root, f_root, ok, its = newton_roots(fd, start, 1.0, xtol=1e-13, rtol=1e-15, max_iter=200,
                                         curvature=np.full(4, BETA))
    assert ok.all() and ok_ref.all()
    assert sum(calls) < n_ref and np.all(its <= its_ref)
    np.testing.assert_allclose(root, ref, rtol=0, atol=1e-13)
    assert np.all(np.abs(b.free_density(root, np.arange(4)) - target) <= 1e-13)
    assert np.all(np.abs(f_root) <= 1e-15)


def test_newton_roots_survive_a_useless_slope_and_report_max_iter():
    c = np.array([2.0, 30.0])
    # a slope of the wrong sign: the steps are the doubling search, then bisection
    root, _, ok, _ = newton_roots(lambda x, rows: (c[rows] - x, np.ones_like(x)), np.zeros(2),
                                  xtol=1e-12, rtol=0.0, max_iter=200)
    assert ok.all() and np.allclose(root, c, atol=1e-12)
    root, _, ok, its = newton_roots(lambda x, rows: (c[rows] - x ** 3, -3 * x ** 2 - 1e-3),
                                    np.zeros(2), xtol=1e-15, rtol=0.0, max_iter=2)
    assert not ok.any() and its.tolist() == [2, 2]


@pytest.mark.parametrize("eps_d", [-2.2, -1.4, -0.7, 0.3])
def test_ipt_off_half_filling_converges_with_n0_equal_n_s(eps_d):
    """The outer iteration stops at |n_s[G(n)] - n| <= tol within a few evaluations, and the
    level search makes n0 = n_s (so A = 1) to its tolerance, for a discrete bath and delta_iw."""
    from solvers import solve_many

    delta = poles_g_iw(V ** 2, EPS, matsubara_freqs(BETA, 1024))
    models = [AndersonModel(U=2.0, eps_d=eps_d, beta=BETA, bath_eps=EPS, bath_v=V),
              AndersonModel(U=2.0, eps_d=eps_d, beta=BETA, delta_iw=delta)]
    for r in solve_many("ipt", models, tol=1e-10):
        assert r.converged and r.info["method"] == "modified"
        assert abs(r.info["residual"]) <= 1e-10 and r.iterations <= 8
        assert abs(r.info["n0"] - r.info["history"][-1][0]) <= 1e-12
        assert abs(r.info["A"] - 1.0) <= 1e-10
