"""NCA solver: exact atomic limit, sum rules, symmetries, thermodynamic consistency, mesh
convergence, agreement with ED at weak hybridisation, bad input."""

import warnings

import numpy as np
import pytest
from checks import assert_particle_hole_images
from conftest import random_model

import solvers.nca  # noqa: F401  (registers "nca")
from solvers import AndersonModel, SolverWarning, matsubara_freqs, solve, sum_rule_from_l

BETHE_EPS = [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5]


def _atomic_reference(U: float, eps_d: float, beta: float):
    """Exact atomic G(i w_n) weights and occupations (Boltzmann factors relative to the ground)."""
    e = np.array([0.0, eps_d, eps_d, 2 * eps_d + U])
    p = np.exp(-beta * (e - e.min()))
    p /= p.sum()
    weights = np.array([p[0] + p[1], p[2] + p[3]])
    poles = np.array([eps_d, eps_d + U])
    return weights, poles, p[1] + p[2] + 2 * p[3], p[3]


def _free_energy_ed(model: AndersonModel) -> float:
    """Impurity free energy -ln(Z/Z_bath)/beta from ED (Z_bath of both spins)."""
    e = solve("ed", model)
    ln_z = np.log(e.info["partition_function_rel"]) - model.beta * e.info["ground_energy"]
    ln_z_bath = 2 * np.sum(np.logaddexp(0.0, -model.beta * model.bath_eps))
    return float(-(ln_z - ln_z_bath) / model.beta), e


# ------------------------------------------------------------------------------ atomic limit
@pytest.mark.parametrize("U, eps_d, beta", [(2.0, -1.0, 10.0), (3.0, -0.4, 10.0),
                                            (8.0, -8.0, 100.0), (8.0, 1.0, 100.0),
                                            (6.0, -2.0, 100.0)])
def test_atomic_limit_is_exact(U, eps_d, beta):
    model = AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=[], bath_v=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow anywhere at beta = 100
        # n_l = 160: the pole at eps_d = -8 needs ~110 coefficients at beta = 100 (80 are flagged)
        res = solve("nca", model, n_tau=1001, n_l=160)
    weights, poles, density, docc = _atomic_reference(U, eps_d, beta)
    iw = 1j * matsubara_freqs(beta, res.g_iw.size)
    exact_iw = weights[0] / (iw - poles[0]) + weights[1] / (iw - poles[1])
    assert np.max(np.abs(res.g_iw - exact_iw)) < 1e-10
    assert abs(res.density - density) < 1e-12
    assert abs(res.double_occupancy - docc) < 1e-12
    exact_tau = -sum(w * np.exp(-res.tau * e - np.logaddexp(0.0, -beta * e))
                     for w, e in zip(weights, poles))
    assert np.max(np.abs(res.g_tau - exact_tau)) < 1e-12
    assert res.converged and res.iterations == 1
    assert res.energy is None


# ------------------------------------------------------------------ sum rules and causality
@pytest.mark.parametrize("seed, beta", [(1, 10.0), (2, 30.0)])
def test_sum_rules_and_causality(seed, beta):
    model = random_model(seed, 4, beta)
    res = solve("nca", model)
    assert abs(res.g_tau[0] + res.g_tau[-1] + 1.0) < 1e-13
    assert abs(sum_rule_from_l(res.g_l, beta) + 1.0) < 1e-6
    assert np.all(res.g_iw.imag < 0)
    assert np.all(res.g_tau < 0)
    assert abs(res.density + 2 * res.g_tau[-1]) < 1e-13
    occ = res.info["pseudo_particle_occupations"]
    assert abs(sum(occ) - 1.0) < 1e-13
    assert abs(res.double_occupancy - occ[3]) < 1e-15
    # G(i w_n) -> 1/(i w_n) + c_2/(i w_n)^2, |c_2| <= max(|eps_d|, |eps_d + U|)
    w_last = res.wn[-1]
    c2_bound = max(abs(model.eps_d), abs(model.eps_d + model.U))
    assert abs(res.g_iw[-1] * 1j * w_last - 1.0) < 1.5 * c2_bound / w_last


# ----------------------------------------------------------------------------- particle-hole
def test_particle_hole_map_on_asymmetric_model():
    model = random_model(5, 4, 10.0, U=3.0)
    assert not model.is_particle_hole_symmetric()
    a = solve("nca", model)
    b = solve("nca", model.particle_hole_transformed())
    assert np.max(np.abs(b.g_tau - a.g_tau[::-1])) < 1e-12
    assert_particle_hole_images(a, b, g_l=1e-11, g_iw=1e-11, density=1e-12, docc=1e-12)


def test_half_filling_is_symmetric():
    model = random_model(7, 4, 20.0, U=2.5, half_filling=True)
    assert model.is_particle_hole_symmetric()
    res = solve("nca", model)
    assert abs(res.density - 1.0) < 1e-12
    assert np.max(np.abs(res.g_l[1::2])) < 1e-11
    assert np.max(np.abs(res.g_iw.real)) < 1e-11
    assert np.max(np.abs(res.g_tau - res.g_tau[::-1])) < 1e-13


# ---------------------------------------------------------------------------------- vs ED
@pytest.mark.parametrize("nb", [2, 3, 4])
@pytest.mark.parametrize("eps_d", [-2.0, -1.0])
def test_close_to_ed_at_weak_hybridisation(nb, eps_d):
    """NCA is exact to first order in Delta for Z: density, double occupancy and free energy
    err by O(V^4) (ratio ~16 when V halves). G misses the first-order vertex corrections (the
    hybridisation line crossing an external vertex), so G errs by O(V^2) (ratio ~4).
    Measured here at V = 0.1, U = 4, beta = 10: max|dG(i w_n)| <= 1.3e-2 (<= 3.5 % of max|G|),
    |dn|, |dd| <= 5e-5, |dF| <= 7.2e-5; ratios 3.9-4.3 (G) and 16.6-18.2 (d, F)."""
    rng = np.random.default_rng(40 + nb)
    eps = np.sort(rng.uniform(-1.5, 1.5, nb))
    errors = []
    for v in (0.1, 0.05):
        model = AndersonModel(U=4.0, eps_d=eps_d, beta=10.0, bath_eps=eps, bath_v=np.full(nb, v))
        res = solve("nca", model)
        f_ed, ed = _free_energy_ed(model)
        errors.append(np.array([
            np.max(np.abs(res.g_iw - ed.g_iw)) / np.max(np.abs(ed.g_iw)),
            abs(res.density - ed.density),
            abs(res.double_occupancy - ed.double_occupancy),
            abs(res.info["free_energy"] - f_ed),
        ]))
    weak, weaker = errors
    assert weak[0] < 0.05
    assert np.all(weak[1:] < 1e-4)
    ratio = weak / weaker
    assert 3.5 < ratio[0] < 4.6                      # O(V^2) in G
    assert ratio[2] > 12 and ratio[3] > 12           # O(V^4) in d and F
    assert weaker[1] < 1e-5


# --------------------------------------------------------------------- thermodynamics, mesh
def test_thermodynamic_consistency():
    """The pseudo-particle occupations are derivatives of the NCA free energy:
    dF/d eps_d = density and dF/dU = double occupancy (to O(h^2) of the mesh)."""
    model = random_model(11, 4, 10.0, U=3.0)
    res = solve("nca", model, n_tau=1001)
    step = 1e-4

    def free(**change):
        return solve("nca", model.replace(**change), n_tau=1001).info["free_energy"]

    d_eps = (free(eps_d=model.eps_d + step) - free(eps_d=model.eps_d - step)) / (2 * step)
    d_u = (free(U=model.U + step) - free(U=model.U - step)) / (2 * step)
    assert abs(d_eps - res.density) < 1e-5
    assert abs(d_u - res.double_occupancy) < 1e-5


def test_second_order_mesh_convergence():
    model = AndersonModel(U=4.0, eps_d=-1.5, beta=10.0, bath_eps=BETHE_EPS,
                          bath_v=[np.sqrt(0.25 / 8)] * 8)
    ref = solve("nca", model, n_tau=4001)
    err = [np.max(np.abs(solve("nca", model, n_tau=n).g_iw - ref.g_iw)) for n in (251, 501)]
    assert err[1] < 1e-4
    assert 3.0 < err[0] / err[1] < 5.0


# --------------------------------------------------------------------------- methods, baths
def test_iterate_converges_to_march_solution():
    model = random_model(3, 4, 10.0)
    march = solve("nca", model, n_tau=1001)
    it = solve("nca", model, n_tau=1001, method="iterate", tol=1e-12)
    assert it.converged and 1 < it.iterations < 100
    assert it.info["max_change"] < 1e-12
    assert np.max(np.abs(it.g_iw - march.g_iw)) < 1e-10
    assert abs(it.density - march.density) < 1e-11


def test_max_iter_stops_short_without_exception():
    model = AndersonModel(U=4.0, eps_d=-2.0, beta=20.0, bath_eps=BETHE_EPS, bath_v=[0.5] * 8)
    res = solve("nca", model, method="iterate", max_iter=1)
    assert res.converged is False and res.iterations == 1
    assert res.info["max_change"] > 1e-2
    assert np.all(np.isfinite(res.g_iw))


def test_continuous_bath_matches_discrete():
    discrete = random_model(4, 4, 10.0)
    continuous = AndersonModel(U=discrete.U, eps_d=discrete.eps_d, beta=10.0,
                               delta_iw=discrete.delta(1024))
    a = solve("nca", discrete, n_tau=1001)
    b = solve("nca", continuous, n_tau=1001)
    assert np.max(np.abs(a.g_iw - b.g_iw)) < 1e-9
    assert abs(a.density - b.density) < 1e-10
    assert abs(b.info["delta_tail"][0] - np.sum(discrete.bath_v ** 2)) < 1e-8


def test_strong_hybridisation_at_low_temperature_stays_finite():
    """No overflow (RuntimeWarning) at sum V^2 = 8, beta = 100; the answer is finite but NCA's
    Sigma is acausal there, which is reported (converged=False, SolverWarning), not hidden."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for eps_d in (-8.0, 1.0):
            model = AndersonModel(U=8.0, eps_d=eps_d, beta=100.0, bath_eps=BETHE_EPS,
                                  bath_v=[1.0] * 8)
            with pytest.warns(SolverWarning, match="acausal self-energy"):
                res = solve("nca", model, n_tau=2001)
            assert np.all(np.isfinite(res.g_iw)) and np.all(np.isfinite(res.g_l))
            assert abs(res.g_tau[0] + res.g_tau[-1] + 1.0) < 1e-13
            assert 0.0 <= res.double_occupancy <= res.density / 2 <= 1.0
            assert not res.converged and np.max(res.sigma_iw.imag) > 1.0


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("options, name", [
    ({"n_tau": 3}, "n_tau"), ({"n_tau": 100.5}, "n_tau"), ({"n_iw": 0}, "n_iw"),
    ({"n_l": 0}, "n_l"), ({"method": "exact"}, "method"), ({"mixing": 0.0}, "mixing"),
    ({"tol": -1.0}, "tol"), ({"max_iter": 0}, "max_iter"),
])
def test_bad_options_name_the_field(options, name):
    model = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0, bath_eps=[0.0], bath_v=[0.3])
    with pytest.raises(ValueError, match=name):
        solve("nca", model, **options)


def test_continuous_bath_rejects_too_many_frequencies():
    model = AndersonModel(U=2.0, eps_d=-1.0, beta=10.0,
                          delta_iw=0.1 / (1j * matsubara_freqs(10.0, 64)))
    with pytest.raises(ValueError, match="n_iw"):
        solve("nca", model, n_iw=128)
    with pytest.raises(TypeError):
        solve("nca", model, n_tua=1001)


# --------------------------------------------------- acausal results, coarse meshes
def test_acausal_nca_result_is_reported_not_converged():
    """Four bath levels at 0 (V = 1/4), U = 2, beta = 50: NCA's G(i w_0) = -0.467i exceeds the
    bound 1/|Im G0^-1(i w_0)| = 0.247 that a causal Sigma allows (ED: -0.246i), so Dyson gives
    Im Sigma(i w_0) = +1.90, Z = -0.034 (ED 0.69). It is the NCA answer, not a numerical fault
    (converged in n_tau, the same by Picard iteration), and is returned flagged."""
    model = AndersonModel(U=2.0, eps_d=-1.0, beta=50.0, bath_eps=[0.0] * 4, bath_v=[0.25] * 4)
    with pytest.warns(SolverWarning, match=r"acausal self-energy, Im Sigma\(i w_n\) > 0"):
        res = solve("nca", model)
    assert not res.converged and res.sigma_iw[0].imag > 1.5 and res.z < 0
    assert any("acausal" in w for w in res.info["warnings"])
    assert np.all(res.g_tau < 0) and np.all(res.g_iw.imag < 0)   # G itself stays causal
    with pytest.warns(SolverWarning):
        fine = solve("nca", model, n_tau=8001)
        picard = solve("nca", model, method="iterate", n_tau=1001)
        coarse = solve("nca", model, n_tau=1001)
    assert abs(fine.sigma_iw[0] - res.sigma_iw[0]) < 1e-3
    assert abs(picard.sigma_iw[0] - coarse.sigma_iw[0]) < 1e-8


def test_causal_results_stay_converged_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed, beta in ((1, 10.0), (2, 30.0)):
            res = solve("nca", random_model(seed, 4, beta))
            assert res.converged and res.info["warnings"] == []
            assert np.all(res.sigma_iw.imag < 0)


def test_too_coarse_mesh_is_refused_before_any_work():
    """beta = 1e5 put h = 25 on the 4001-point default mesh: docc 3.0 or 'math domain error'.
    Default meshes are unchanged up to beta = 100 and grow to 20001 points above it."""
    from solvers.nca import default_n_tau
    model = AndersonModel(U=2.0, eps_d=-1.0, beta=1e5, bath_eps=[-0.8, -0.25, 0.25, 0.8],
                          bath_v=[0.25] * 4)
    with pytest.raises(ValueError, match=r"tau mesh too coarse .* pass n_tau >= 200001"):
        solve("nca", model)
    with pytest.raises(ValueError, match="tau mesh too coarse"):
        solve("nca", model.replace(beta=100.0), n_tau=51)
    assert [default_n_tau(b, 5.0) for b in (10.0, 50.0, 100.0)] == [1001, 2001, 4001]
    assert default_n_tau(1000.0, 2.0) == 20001 and default_n_tau(200.0, 1.0) == 4001
    # the atomic limit is exact on any mesh: never refused (80 coefficients cannot hold its G
    # at beta = 1e5, which is reported)
    atom = AndersonModel(U=2.0, eps_d=-1.0, beta=1e5, bath_eps=[], bath_v=[])
    with pytest.warns(SolverWarning, match="n_l=80 Legendre"):
        assert solve("nca", atom, n_tau=101).double_occupancy < 1e-12
