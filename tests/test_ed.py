"""Exact diagonalisation: exact limits, symmetries, independent brute force, dense vs Lanczos,
and the literature reference point."""

import dataclasses
from functools import reduce

import numpy as np
import pytest
from checks import assert_particle_hole_images
from conftest import random_model

from solvers import AndersonModel, matsubara_freqs, solve, sum_rule_from_l
from solvers.greens import poles_g_iw


# ---------------------------------------------------------------- independent brute force
def _brute_force(model: AndersonModel, n_iw: int):
    """Full Fock space of 2(Nb+1) modes by Jordan-Wigner Kronecker products (no sectors)."""
    n_orb = model.n_bath + 1
    n_modes = 2 * n_orb  # mode index: spin * n_orb + orbital; orbital 0 = impurity
    a = np.array([[0.0, 1.0], [0.0, 0.0]])  # annihilator on one mode
    z = np.diag([1.0, -1.0])
    eye = np.eye(2)
    c = [reduce(np.kron, [z] * j + [a] + [eye] * (n_modes - j - 1)) for j in range(n_modes)]
    n = [cj.T @ cj for cj in c]
    h = model.U * n[0] @ n[n_orb]
    for s in range(2):
        o = s * n_orb
        h = h + model.eps_d * n[o]
        for k in range(model.n_bath):
            h = h + model.bath_eps[k] * n[o + k + 1]
            hop = c[o].T @ c[o + k + 1]
            h = h + model.bath_v[k] * (hop + hop.T)
    e, v = np.linalg.eigh(h)
    e = e - e[0]
    boltz = np.exp(-model.beta * e)
    zsum = boltz.sum()
    cdag = v.T @ c[0].T @ v  # <m| d+_up |n>
    wts = (cdag ** 2) * (boltz[None, :] + boltz[:, None]) / zsum
    diff = e[:, None] - e[None, :]
    g_iw = poles_g_iw(wts.ravel(), diff.ravel(), matsubara_freqs(model.beta, n_iw))
    occ = lambda op: float(np.sum(boltz * np.einsum("ij,ik,kj->j", v, op, v)) / zsum)  # noqa: E731
    return g_iw, occ(n[0] + n[n_orb]), occ(n[0] @ n[n_orb])


@pytest.mark.parametrize("seed, nb, beta", [(1, 1, 5.0), (2, 2, 20.0), (3, 3, 10.0),
                                            (4, 3, 100.0)])
def test_matches_brute_force_fock_space(seed, nb, beta):
    model = random_model(seed, nb, beta)
    g_ref, n_ref, d_ref = _brute_force(model, 256)
    res = solve("ed", model, n_iw=256, cutoff=1e-15)  # brute force keeps every state
    np.testing.assert_allclose(res.g_iw, g_ref, atol=1e-10)
    assert res.density == pytest.approx(n_ref, abs=1e-11)
    assert res.double_occupancy == pytest.approx(d_ref, abs=1e-11)


# ---------------------------------------------------------------- exact limits
@pytest.mark.parametrize("eps_d, beta", [(-0.3, 10.0), (0.4, 100.0), (0.0, 1.0)])
def test_u_zero_equals_noninteracting(eps_d, beta):
    model = AndersonModel(U=0.0, eps_d=eps_d, beta=beta, bath_eps=[-0.8, -0.1, 0.3, 1.1],
                          bath_v=[0.3, 0.2, 0.25, 0.35])
    res = solve("ed", model, n_iw=512, n_l=60, cutoff=1e-15)  # exact: keep every state
    wn = matsubara_freqs(beta, 512)
    g0 = 1.0 / (1j * wn - eps_d - model.delta(512))
    np.testing.assert_allclose(res.g_iw, g0, atol=1e-10)
    np.testing.assert_allclose(res.sigma_iw, 0.0, atol=1e-8)
    # exact one-body poles: Legendre coefficients and density
    h = np.diag([eps_d, *model.bath_eps])
    h[0, 1:] = h[1:, 0] = model.bath_v
    lev, vec = np.linalg.eigh(h)
    from solvers import g_l_from_poles
    np.testing.assert_allclose(res.g_l, g_l_from_poles(vec[0] ** 2, lev, beta, 60), atol=1e-10)
    assert res.density == pytest.approx(2 * np.sum(vec[0] ** 2 / (1 + np.exp(beta * lev))),
                                        abs=1e-10)


@pytest.mark.parametrize("U, eps_d, beta", [(2.0, -1.0, 10.0), (4.0, -0.5, 50.0),
                                            (1.0, 0.3, 2.0)])
def test_atomic_limit_two_poles(U, eps_d, beta):
    model = AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=[-0.5, 0.5], bath_v=[0.0, 0.0])
    res = solve("ed", model, n_iw=200, cutoff=1e-15)  # exact: keep every state
    w = np.exp(-beta * np.array([0.0, eps_d, eps_d, 2 * eps_d + U]) + beta * min(0, eps_d, 2 * eps_d + U))
    w /= w.sum()
    n_s = w[1] + w[3]
    wn = matsubara_freqs(beta, 200)
    g_exact = (1 - n_s) / (1j * wn - eps_d) + n_s / (1j * wn - eps_d - U)
    np.testing.assert_allclose(res.g_iw, g_exact, atol=1e-12)
    assert res.double_occupancy == pytest.approx(w[3], abs=1e-12)
    assert res.density == pytest.approx(2 * n_s, abs=1e-12)


# ---------------------------------------------------------------- symmetries
def test_half_filling_is_particle_hole_symmetric():
    model = random_model(7, 5, 30.0, U=2.5, half_filling=True)
    assert model.is_particle_hole_symmetric()
    res = solve("ed", model, n_l=60, n_tau=201)
    np.testing.assert_allclose(res.g_l[1::2], 0.0, atol=1e-10)
    np.testing.assert_allclose(res.g_tau, res.g_tau[::-1], atol=1e-10)
    assert res.density == pytest.approx(1.0, abs=1e-10)
    np.testing.assert_allclose(res.g_iw.real, 0.0, atol=1e-10)
    # the symmetry shortcut changes nothing
    plain = solve("ed", model, n_l=60, use_symmetry=False)
    np.testing.assert_allclose(res.g_iw, plain.g_iw, atol=1e-9)
    assert res.double_occupancy == pytest.approx(plain.double_occupancy, abs=1e-10)


@pytest.mark.parametrize("seed, nb, beta", [(11, 4, 20.0), (12, 6, 50.0)])
def test_particle_hole_map_on_solved_results(seed, nb, beta):
    model = random_model(seed, nb, beta)
    assert not model.is_particle_hole_symmetric()
    res = solve("ed", model, n_l=60)
    img = solve("ed", model.particle_hole_transformed(), n_l=60)
    assert_particle_hole_images(res, img, g_l=1e-9, g_iw=1e-9, density=1e-9, docc=1e-9)


def test_sum_rule_and_causality():
    model = random_model(21, 6, 40.0)
    res = solve("ed", model, n_l=80)
    assert sum_rule_from_l(res.g_l, model.beta) == pytest.approx(-1.0, abs=1e-10)
    assert np.all(res.g_iw.imag < 0)
    assert res.converged and not res.info["warnings"]


# ---------------------------------------------------------------- dense vs Lanczos
@pytest.mark.parametrize("nb, beta", [(4, 1.0), (4, 10.0), (4, 100.0), (5, 10.0), (5, 100.0),
                                      (6, 10.0), (6, 100.0)])
def test_dense_lehmann_and_lanczos_agree(nb, beta):
    model = random_model(100 + nb, nb, beta)
    dense = solve("ed", model, method="dense", n_iw=300)
    lanczos = solve("ed", model, method="lanczos", n_iw=300)
    assert lanczos.converged
    np.testing.assert_allclose(lanczos.g_iw, dense.g_iw, atol=1e-8)
    np.testing.assert_allclose(lanczos.g_l, dense.g_l, atol=1e-8)
    assert lanczos.double_occupancy == pytest.approx(dense.double_occupancy, abs=1e-8)
    assert lanczos.info["n_kept_states"] == dense.info["n_kept_states"]


@pytest.mark.slow
@pytest.mark.parametrize("nb", [5, 6])
def test_dense_lehmann_and_lanczos_agree_high_temperature(nb):
    model = random_model(100 + nb, nb, 1.0)
    dense = solve("ed", model, method="dense", n_iw=300)
    lanczos = solve("ed", model, method="lanczos", n_iw=300)
    np.testing.assert_allclose(lanczos.g_iw, dense.g_iw, atol=1e-8)


def test_degenerate_bath_levels_find_every_state():
    # repeated bath levels make degenerate states inside a sector
    model = AndersonModel(U=1.5, eps_d=-0.6, beta=40.0, bath_eps=[-0.4, -0.4, 0.3, 0.3, 0.9],
                          bath_v=[0.3, 0.2, 0.25, 0.25, 0.1])
    dense = solve("ed", model, method="dense")
    lanczos = solve("ed", model, method="lanczos")
    assert lanczos.info["n_kept_states"] == dense.info["n_kept_states"]
    np.testing.assert_allclose(lanczos.g_iw, dense.g_iw, atol=1e-8)


# ---------------------------------------------------------------- total spin S^2
def _assert_same_result(a, b, tol):
    np.testing.assert_allclose(a.g_iw, b.g_iw, atol=tol)
    np.testing.assert_allclose(a.g_l, b.g_l, atol=tol)
    assert a.density == pytest.approx(b.density, abs=tol)
    assert a.double_occupancy == pytest.approx(b.double_occupancy, abs=tol)
    assert a.energy == pytest.approx(b.energy, abs=tol)
    assert a.info["n_kept_states"] == b.info["n_kept_states"]


@pytest.mark.parametrize("case", ["random5", "half_filled6", "degenerate_bath", "random6"])
def test_spin_multiplets_match_plain_sectors(case):
    """Only S_z = 0, -1/2 sectors, each state weighted by 2S+1 (G from (G_up + G_dn)/2),
    against every sector solved separately; dense and Lanczos states alike."""
    if case == "random5":
        model = random_model(31, 5, 8.0)
    elif case == "half_filled6":
        model = random_model(32, 6, 15.0, U=2.0, half_filling=True)
    elif case == "degenerate_bath":  # repeated levels: degenerate states of different S
        model = AndersonModel(U=1.2, eps_d=-0.5, beta=12.0, bath_eps=[-0.4, -0.4, 0.3, 0.3],
                              bath_v=[0.3, 0.3, 0.25, 0.25])
    else:
        model = random_model(33, 6, 10.0)
    # (Lanczos with decoupled bath combinations, as here, meets degeneracies beyond any block
    # size: the S check then falls back; that case runs the dense path only)
    for method in ("auto",) if case == "degenerate_bath" else ("auto", "lanczos"):
        su2 = solve("ed", model, method=method, n_iw=200)
        plain = solve("ed", model, method=method, n_iw=200, spin_symmetry=False)
        assert su2.info["spin_symmetry_used"] and not plain.info["spin_symmetry_used"]
        assert su2.converged and plain.converged
        assert su2.info["spin_deviation_max"] < 1e-8
        # fewer sectors: one per particle number (and particle-hole image)
        assert len(su2.info["sectors_diagonalised"]) < len(plain.info["sectors_diagonalised"])
        _assert_same_result(su2, plain, 1e-9)


def test_spin_check_failure_falls_back_to_plain_sectors(monkeypatch):
    import solvers.ed.solver as ed_solver
    model = random_model(34, 4, 10.0)
    ref = solve("ed", model, spin_symmetry=False, n_iw=200)
    monkeypatch.setattr(ed_solver, "_SPIN_TOL", -1.0)  # every spin check fails
    res = solve("ed", model, n_iw=200)
    assert not res.info["spin_symmetry_used"]
    assert "abandoned" in res.info["spin_symmetry_note"]
    assert res.converged
    _assert_same_result(res, ref, 1e-12)


def test_many_state_filtered_solver_matches_dense():
    """Nb = 6 at moderate temperature (1076 kept states): sectors holding many states go
    through the Chebyshev-filtered Lanczos solver; everything must agree with dense ``eigh``."""
    model = random_model(41, 6, 8.0)
    dense = solve("ed", model, method="dense", n_iw=200)
    lanczos = solve("ed", model, method="lanczos", n_iw=200)
    assert lanczos.info["eigensolvers"]["filtered"] > 0
    assert lanczos.converged
    np.testing.assert_allclose(lanczos.g_iw, dense.g_iw, atol=1e-8)
    np.testing.assert_allclose(lanczos.g_l, dense.g_l, atol=1e-8)
    assert lanczos.double_occupancy == pytest.approx(dense.double_occupancy, abs=1e-8)
    assert lanczos.energy == pytest.approx(dense.energy, abs=1e-8)
    assert lanczos.info["n_kept_states"] == dense.info["n_kept_states"]


def test_filtered_solver_finds_every_state_of_a_sector():
    """Direct check of the many-state eigensolver on one sector against dense eigh."""
    from solvers.ed.filtered import filtered_lowest_states, probe_ritz
    from solvers.ed.fock import build_spin_spaces
    from solvers.ed.sector import Sector
    model = random_model(43, 6, 4.0)
    spaces = build_spin_spaces(model.eps_d, model.bath_eps, model.bath_v)
    sec = Sector(spaces[3], spaces[3], model.U)
    exact = np.linalg.eigvalsh(sec.dense())
    apply = lambda x: sec.apply(x.reshape(sec.shape)).ravel()  # noqa: E731
    width = 3.0
    ritz = probe_ritz(apply, sec.dim, 40, 1)
    top = exact[-1] + 0.1  # any upper bound of the spectrum
    res = filtered_lowest_states(apply, sec.dim, float(ritz[0]), top, lambda e0: e0 + width,
                                 lambda th: np.exp(-4.0 * (th - th[0])), 1e-10, 1500, 0)
    want = exact[exact <= exact[0] + width]
    assert not res.limited and res.energies.size == want.size > 50
    np.testing.assert_allclose(res.energies, want, atol=1e-9)
    assert np.max(res.residuals * np.clip(np.exp(-4.0 * (res.energies - want[0])), 1e-4, 1)) < 1e-10
    np.testing.assert_allclose(res.vectors.T @ res.vectors, np.eye(want.size), atol=1e-10)


# ---------------------------------------------------------------- literature reference
def test_literature_ground_state_double_occupancy(literature_model):
    """Nb = 8, U = 2, half filling, bath +-0.1, +-0.4, +-0.9, +-1.5, V = sqrt(0.25/8): the
    established Fortran Lanczos ED gives double occupancy 0.0827152 in its ground state."""
    res = solve("ed", literature_model, ground_state_only=True)
    assert res.double_occupancy == pytest.approx(0.0827152, abs=1e-6)
    assert res.density == pytest.approx(1.0, abs=1e-10)


# ---------------------------------------------------------------- bad input and limits
def test_refuses_too_many_bath_sites_and_continuous_baths():
    big = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, bath_eps=np.linspace(-1, 1, 9),
                        bath_v=np.full(9, 0.1))
    with pytest.raises(ValueError, match="at most 8"):
        solve("ed", big)
    cont = AndersonModel(U=1.0, eps_d=-0.5, beta=10.0, delta_iw=-0.1j * np.ones(64))
    with pytest.raises(ValueError, match="fit"):
        solve("ed", cont)
    small = random_model(1, 2, 10.0)
    with pytest.raises(ValueError, match="method"):
        solve("ed", small, method="magic")
    with pytest.raises(ValueError, match="cutoff"):
        solve("ed", small, cutoff=2.0)
    with pytest.raises(TypeError):
        solve("ed", small, no_such_option=1)
    with pytest.raises(ValueError, match="unknown solver"):
        solve("no-such-solver", small)


def test_limit_is_reported_not_hidden():
    model = random_model(5, 6, 50.0)
    res = solve("ed", model, method="lanczos", max_krylov_basis=4)
    assert not res.converged
    assert any("max_krylov_basis" in w for w in res.info["warnings"])


# ------------------------------------------------------------ Legendre truncation, cost
def test_truncated_legendre_series_is_reported():
    """An atom with U = 20 at beta = 1000: 80 coefficients gave the sum rule -0.47 with
    converged=True. Now: converged=False, a SolverWarning naming the n_l needed; enough
    coefficients pass (the poles, g_iw and observables are unchanged)."""
    from solvers import SolverWarning
    model = AndersonModel(U=20.0, eps_d=-10.0, beta=1000.0, bath_eps=[-0.8, -0.25, 0.25, 0.8],
                          bath_v=[1e-8] * 4)
    with pytest.warns(SolverWarning, match=r"n_l=80 Legendre .* ask for n_l >= \d+"):
        short = solve("ed", model)
    assert not short.converged
    assert sum_rule_from_l(short.g_l, model.beta) == pytest.approx(-0.4685, abs=1e-3)
    need = int(short.info["warnings"][-1].rsplit(">= ", 1)[1])
    full = solve("ed", model, n_l=need)
    assert full.converged and not full.info["warnings"]
    assert sum_rule_from_l(full.g_l, model.beta) == pytest.approx(-1.0, abs=2e-6)  # 2 ends
    np.testing.assert_array_equal(full.g_iw, short.g_iw)
    np.testing.assert_allclose(full.g_l[:80], short.g_l, atol=1e-12)


def test_cost_estimate_brackets_the_kept_states():
    from solvers.ed import estimate_cost
    hot = AndersonModel(U=2.0, eps_d=-1.0, beta=0.1, bath_eps=[-0.5, 0.5], bath_v=[0.3, 0.3])
    c = estimate_cost(hot)
    assert (c.n_states, c.window_min, c.window_max) == (64, 64, 64)
    for seed, beta in ((3, 10.0), (4, 50.0)):
        model = random_model(seed, 5, beta)
        res = solve("ed", model)
        est = res.info["cost_estimate"]
        assert est == dataclasses.asdict(estimate_cost(model))
        assert est["window_min"] <= res.info["n_kept_states"] <= est["window_max"]
        assert est["largest_sector"] <= 4 ** 6 and est["memory_bytes"] > 0


def test_hot_eight_site_bath_is_refused_or_announced_up_front(monkeypatch):
    """Nb = 8 at beta = 0.1 ran 15 minutes with growing memory and no word: every one of the
    262144 states is in the Boltzmann window. The estimate says so at once; above the
    available memory the solve is refused before any work, below it a SolverWarning says so."""
    import solvers.ed.solver as ed_solver
    from solvers import SolverWarning
    from solvers.ed import estimate_cost
    eps = [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5]
    model = AndersonModel(U=2.0, eps_d=-1.0, beta=0.1, bath_eps=eps,
                          bath_v=[np.sqrt(0.25 / 8)] * 8)
    c = estimate_cost(model)
    assert c.window_min == c.window_max == c.n_states == 4 ** 9
    assert c.uncertifiable and c.memory_bytes > 2 * 2 ** 30
    monkeypatch.setattr(ed_solver, "available_memory", lambda: 1e9)
    with pytest.raises(ValueError, match=r"more memory than is available .*262144-262144 of "
                                         r"262144 states"):
        solve("ed", model)
    # the warning path, checked without running the solve
    monkeypatch.setattr(ed_solver, "available_memory", lambda: 1e15)
    with pytest.warns(SolverWarning, match="expensive solve .* max_krylov_basis=1500"):
        ed_solver._check_cost(model, cutoff=1e-10, ground_state_only=False, method="auto",
                              dense_max_dim=300, use_symmetry=True, spin_symmetry=True,
                              max_krylov_basis=1500)
