"""The whole-phase-diagram network: IR/Legendre encodings, the sampling recipe, causality, the
double-occupancy output and the shipped default model."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import mldmft.ml  # noqa: F401  (registers the ml solver)
from mldmft.database import GenerateConfig, SolverSpec, generate, make_recipe
from mldmft.ml.constraints import (TOL_SIGMA, TOL_TAU, causality_violation, project_causal,
                                   sum_rule_residual)
from solvers import AndersonModel, g_l_from_poles, g_tau_from_l, poles_g_tau, solve
from solvers.ir import IRBasis

REPO = Path(__file__).resolve().parents[1]
PD_N_L = 160  # the phase-diagram recipe's Legendre order (docs/database.md)


@pytest.fixture(scope="module")
def ir_basis() -> IRBasis:
    basis = IRBasis()
    basis.matrix(PD_N_L)
    return basis


# --------------------------------------------------------------- encodings
@pytest.mark.parametrize("beta", [20.0, 200.0])
def test_legendre_and_ir_round_trip_g_to_1e8(beta, ir_basis):
    """G(tau) of random pole sums with |e| <= 6.5 D (the largest atomic excitation energies of the
    recipe: |eps_d|, |eps_d + U| <= U/2 + 0.65 (U/2 + D) + D): the 160 Legendre coefficients and
    the IR coefficients (Lambda = 2000, eps = 1e-9: 54 numbers) both reproduce it to 1e-8."""
    rng = np.random.default_rng(3)
    tau = np.linspace(0.0, beta, 1001)
    for _ in range(4):
        e = rng.uniform(-6.5, 6.5, 10)
        w = rng.uniform(0.0, 1.0, 10)
        w /= w.sum()
        exact = poles_g_tau(w, e, beta, tau)
        g_l = g_l_from_poles(w, e, beta, PD_N_L)
        assert np.max(np.abs(g_tau_from_l(g_l, beta, tau) - exact)) < 1e-8
        g_ir = ir_basis.from_legendre(g_l, beta)
        assert g_ir.shape == (ir_basis.size,) and ir_basis.size < 60
        back = ir_basis.to_legendre(g_ir, beta, PD_N_L)
        assert np.max(np.abs(g_tau_from_l(back, beta, tau) - exact)) < 1e-8
        # Parseval: both coefficient sets carry the mean square of G(tau) over [0, beta]
        assert np.sum(g_ir ** 2) == pytest.approx(np.sum((g_l / beta) ** 2), rel=1e-8)


def test_ir_coefficients_are_the_same_functions_at_every_temperature(ir_basis):
    """The fixed-Lambda basis in s = tau/beta: a G that depends on tau only through tau/beta
    (poles scaling like 1/beta) has the same IR coefficients at beta = 20 and 200."""
    w = np.array([0.3, 0.7])
    g20 = ir_basis.from_legendre(g_l_from_poles(w, np.array([-40.0, 25.0]) / 20, 20.0, PD_N_L), 20)
    g200 = ir_basis.from_legendre(g_l_from_poles(w, np.array([-40.0, 25.0]) / 200, 200.0,
                                                 PD_N_L), 200)
    assert np.max(np.abs(g20 - g200)) < 1e-9


def test_phase_diagram_n_l_reconstructs_ed_at_the_recipe_corners():
    """n_l = 160 keeps the ED G(tau) reconstruction error below 1e-8 at beta = 200 at the corners
    of configs/sampling/phase_diagram.yaml (U = 5, D = 1.3, eps_d shift +-0.65, half filling)."""
    for shift in (-0.65, 0.0, 0.65):
        U, D = 5.0, 1.3
        eps_d = -U / 2 + shift * (U / 2 + D)
        m = AndersonModel(U=U, eps_d=eps_d, beta=200.0, bath_eps=[-D, -0.3, 0.3, D],
                          bath_v=[D / 4] * 4)
        res = solve("ed", m, n_l=PD_N_L, n_tau=2001)
        err = np.max(np.abs(g_tau_from_l(res.g_l, m.beta, res.tau) - res.g_tau))
        assert err < 1e-8, (shift, err)


# --------------------------------------------------------------- sampling recipe
def test_recipe_config_builds_a_mixture_with_log_uniform_beta():
    import yaml

    cfg = yaml.safe_load((REPO / "configs/sampling/phase_diagram.yaml").read_text())
    recipe = make_recipe(cfg)
    kinds = [type(c).__name__ for c in recipe.components]
    assert kinds == ["BetheRandomBath", "DMFTIterateRecipe"]
    picks = np.array([recipe.component_of(1, i) for i in range(400)])
    assert 0.5 < picks.mean() < 0.7            # weights 0.4 / 0.6
    bethe = recipe.components[0]
    betas = np.array([bethe.draw(1, i).model.beta for i in range(300)])
    assert betas.min() >= 20 and betas.max() <= 200
    # log-uniform: half of the samples below the geometric mean sqrt(20 * 200) = 63.2
    assert 0.4 < np.mean(betas < np.sqrt(20 * 200)) < 0.6
    scales = [bethe.draw(1, i).D for i in range(50)]
    assert min(scales) >= 0.7 and max(scales) <= 1.3


def test_phase_diagram_recipe_needs_its_n_l():
    """The recipe's window (beta <= 200, |e| <= 6.27) needs 153 Legendre coefficients: the
    generator accepts n_l = 160 and refuses the default 120, naming what would do."""
    import yaml

    from mldmft.database.generate import check_legendre_order

    recipe = make_recipe(yaml.safe_load((REPO / "configs/sampling/phase_diagram.yaml")
                                        .read_text()))
    check_legendre_order(PD_N_L, recipe)
    with pytest.raises(ValueError, match=r"n_l >= 153 or beta <= 12"):
        check_legendre_order(120, recipe)


@pytest.fixture(scope="module")
def small_iterates():
    return make_recipe(dict(kind="dmft_iterates", U=[2.0, 3.0], beta=30.0, D=[0.8, 1.2],
                            solvers=["ipt"], half_filling_fraction=0.5, mu_shift=[-0.3, 0.3],
                            max_iterations=6, n_iw=256))


def test_dmft_iterates_are_reproducible_scaled_baths(small_iterates):
    from solvers import hybridisation_iw, matsubara_freqs

    wn = matsubara_freqs(30.0, 128)
    for i in range(6):
        a, b = small_iterates.draw(4, i), small_iterates.draw(4, i)
        # the same hybridisation (an 8-pole fit of a smoother function is degenerate: its pole
        # parameters are not unique, and scipy's Levenberg-Marquardt is not bit-reproducible
        # between calls, but the fitted Delta(i w_n) is)
        da = hybridisation_iw(wn, a.model.bath_eps, a.model.bath_v)
        db = hybridisation_iw(wn, b.model.bath_eps, b.model.bath_v)
        assert np.max(np.abs(da - db)) < 1e-4 * np.max(np.abs(da))
        plan = small_iterates.plan(4, i)
        assert a.model.U == plan["U"] and a.model.eps_d == pytest.approx(-plan["mu"])
        assert a.model.n_bath == 8
        # the Bethe self-consistency Delta = (D/2)^2 G fixes sum V^2 = (D/2)^2
        assert a.D == pytest.approx(plan["D"], rel=0.02)
        if plan["half_filling"]:
            assert a.model.eps_d == pytest.approx(-a.model.U / 2)
            assert np.allclose(np.sort(a.model.bath_eps), -np.sort(a.model.bath_eps)[::-1],
                               atol=1e-8)


def test_dmft_iterates_follow_the_loop(small_iterates):
    """An iterate stopped after k iterations lies between the seed and the fixed point: its
    hybridisation differs from both (the recipe samples transients, not only solutions)."""
    from mldmft.dmft.lattice import BetheLattice
    from mldmft.dmft.sweep import metal_seed
    from solvers import hybridisation_iw, matsubara_freqs

    idx = next(i for i in range(50) if small_iterates.plan(4, i)["start"] == "metal"
               and small_iterates.plan(4, i)["iterations"] >= 2)
    s = small_iterates.draw(4, idx)
    p = small_iterates.plan(4, idx)
    wn = matsubara_freqs(30.0, 256)
    delta = hybridisation_iw(wn, s.model.bath_eps, s.model.bath_v)
    seed = metal_seed(BetheLattice(p["D"]), 30.0, 256)
    assert np.max(np.abs(delta - seed)) > 1e-3


# --------------------------------------------------------------- causality
def test_causality_projection_restores_causality_and_keeps_the_sum_rule():
    """An ED G_l plus a correction that makes Im Sigma(i w_0) > 0 is moved back toward the
    (causal) ED result until causal; the sum rule and the particle-hole symmetry survive."""
    m = AndersonModel(U=2.0, eps_d=-1.0, beta=50.0, bath_eps=[-0.8, 0.0, 0.8],
                      bath_v=[0.3, 0.25, 0.3])
    n_l = 80
    base = solve("ed", m, n_l=n_l).g_l[None]
    delta_l = g_l_from_poles(m.bath_v ** 2, m.bath_eps, m.beta, n_l)[None]
    beta, eps_d = np.array([m.beta]), np.array([m.eps_d])
    im0, gt0 = causality_violation(base, beta, eps_d, delta_l)
    assert im0[0] < 0 and gt0[0] <= TOL_TAU
    # a particle-hole symmetric (even-l) bump that raises Im G near w_0: Im Sigma(i w_0) > 0
    bump = np.zeros(n_l)
    bump[2] = -0.6 * m.beta / np.sqrt(5)
    bump[0] = 0.6 * m.beta  # keeps the sum rule: 2 (G_0 + sqrt(5) G_2) unchanged
    bad = base + bump
    assert causality_violation(bad, beta, eps_d, delta_l)[0][0] > TOL_SIGMA
    fixed, a = project_causal(bad, base, beta, eps_d, delta_l)
    im, gt = causality_violation(fixed, beta, eps_d, delta_l)
    assert im[0] <= TOL_SIGMA and gt[0] <= TOL_TAU
    assert 0.0 < a[0] < 1.0
    assert abs(sum_rule_residual(fixed[0], m.beta)) < 1e-12
    assert np.allclose(fixed[0, 1::2], 0.0, atol=1e-12)   # half filling: odd l stay zero
    # a causal prediction is untouched
    same, a1 = project_causal(base, base, beta, eps_d, delta_l)
    assert a1[0] == 1.0 and np.array_equal(same, base)


# --------------------------------------------------------------- tiny trained network
TINY = dict(kind="bethe_random", n_bath=3, D=[0.7, 1.3], U=[0.5, 4.0],
            eps_d_shift=[-0.6, 0.6], half_filling_fraction=0.3, beta={"loguniform": [20, 60]})


def _train_script():
    spec = importlib.util.spec_from_file_location("mldmft_train_script_pd", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_trained(tmp_path_factory):
    """60 samples (120 rows): ED Nb = 3 target, IPT and ed1 cheap; IR encoding with the double
    occupancy, all constraints on, a domain in the checkpoint."""
    import torch

    torch.set_num_threads(1)
    from mldmft.ml import run_training

    out = tmp_path_factory.mktemp("pd_db") / "tiny.h5"
    generate(GenerateConfig(out=str(out), n_samples=60, seed=11, sampling=TINY,
                            target=SolverSpec("ed"),
                            cheap=(SolverSpec("ipt"), SolverSpec("ed1")), n_l=PD_N_L,
                            n_sigma=8, chunk_size=30, workers=1, progress=False))
    train = _train_script()
    cfg = train.compose(["data=phase_diagram", f"data.path={out}",
                         "data.base=ed1", "data.feature_solvers=[ipt,ed1]", "model=resmlp",
                         "model.hidden=32", "model.depth=1", "trainer.max_epochs=40",
                         "trainer.patience=40", "trainer.progress_bar=false",
                         "constraints.particle_hole=true", "metrics.plots=false",
                         "domain={beta:[20,60],U:[0.5,4],density:[0.4,1.6],D:[0.7,1.3]}"])
    return run_training(cfg, tmp_path_factory.mktemp("pd_run"), log=print)


def test_tiny_network_predicts_causal_g_and_the_double_occupancy(tiny_trained):
    test = tiny_trained.metrics["test"]
    assert test["model"]["frac_acausal"] == 0.0
    assert test["model"]["mae_docc"] is not None and np.isfinite(test["model"]["mae_docc"])
    assert tiny_trained.predictor.spec.basis == "ir"
    assert {"by_beta", "by_filling"} <= set(test["binned"])


def test_ml_solver_docc_is_particle_hole_equivariant_and_domain_is_enforced(tiny_trained):
    """With particle-hole averaging the prediction for the mirrored inputs is the mirrored
    prediction: G_l -> (-1)^l G_l and d -> 1 - n + d exactly; a model outside the stored domain
    is refused by name."""
    from mldmft.ml.inference import model_batch

    ckpt = tiny_trained.checkpoint
    predictor = tiny_trained.predictor
    spec = predictor.spec
    m = AndersonModel(U=2.0, eps_d=-0.7, beta=30.0, bath_eps=[-0.9, 0.1, 0.7],
                      bath_v=[0.3, 0.25, 0.28])
    cheap = {s: solve(s, m, n_l=spec.n_l) for s in spec.cheap_solvers}
    batch = model_batch(m, spec, cheap)
    p, p_twin = predictor.predict(batch), predictor.predict(batch.particle_hole())
    n = 2.0 * (p.g_l[0] @ np.sqrt(2 * np.arange(spec.n_l) + 1.0)) / -m.beta
    assert np.allclose(p_twin.g_l[0], p.g_l[0] * (-1.0) ** np.arange(spec.n_l), atol=1e-10)
    assert p_twin.double_occupancy[0] == pytest.approx(1 - n + p.double_occupancy[0], abs=1e-10)
    r = solve("ml", m, checkpoint=ckpt)
    assert r.double_occupancy == pytest.approx(p.double_occupancy[0], abs=1e-12)
    assert 0 <= r.double_occupancy <= 0.5
    ed = solve("ed", m)
    assert abs(r.double_occupancy - ed.double_occupancy) < 0.05
    with pytest.raises(ValueError, match=r"U = 4.5 is outside the model's domain \[0.5, 4\]"):
        solve("ml", AndersonModel(U=4.5, eps_d=-2.25, beta=30.0, bath_eps=m.bath_eps,
                                  bath_v=m.bath_v), checkpoint=ckpt)
    with pytest.raises(ValueError, match=r"D = 0.2.* \[0.7, 1.3\]"):
        solve("ml", AndersonModel(U=2.0, eps_d=-1.0, beta=30.0, bath_eps=[-0.5, 0.0, 0.5],
                                  bath_v=[0.1 / np.sqrt(3)] * 3), checkpoint=ckpt)
    assert solve("ml", AndersonModel(U=4.5, eps_d=-2.25, beta=30.0, bath_eps=m.bath_eps,
                                     bath_v=m.bath_v), checkpoint=ckpt,
                 extrapolate=True).info["extrapolated"]


# --------------------------------------------------------------- the shipped default model
def test_default_ml_solver_loads_the_shipped_model_and_refuses_outside_its_domain():
    from mldmft.ml.inference import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT.is_file()
    assert DEFAULT_CHECKPOINT.stat().st_size < 20 * 2 ** 20
    m = AndersonModel(U=2.4, eps_d=-1.0, beta=75.0,
                      bath_eps=[-0.9, -0.5, -0.2, -0.05, 0.05, 0.2, 0.5, 0.9],
                      bath_v=[0.5 / np.sqrt(8)] * 8)
    res = solve("ml", m)                                 # no checkpoint: the shipped model
    assert res.info["checkpoint"] == str(DEFAULT_CHECKPOINT)
    assert res.double_occupancy is not None and 0.0 < res.double_occupancy < 0.25
    delta_l = g_l_from_poles(m.bath_v ** 2, m.bath_eps, m.beta, res.g_l.size)[None]
    im, gt = causality_violation(res.g_l[None], np.array([m.beta]), np.array([m.eps_d]), delta_l)
    assert im[0] <= TOL_SIGMA and gt[0] <= TOL_TAU
    ed = solve("ed", m)
    assert abs(res.density - ed.density) < 0.01
    for kw, msg in ((dict(U=6.0), r"U = 6 is outside the model's domain \[0.5, 5\]"),
                    (dict(beta=10.0), r"beta = 10 is outside the model's domain \[20, 200\]")):
        bad = AndersonModel(**{**dict(U=m.U, eps_d=m.eps_d, beta=m.beta), **kw},
                            bath_eps=m.bath_eps, bath_v=m.bath_v)
        with pytest.raises(ValueError, match=msg):
            solve("ml", bad)


def test_trust_region_cuts_a_correction_the_base_misfit_cannot_explain():
    """A held-out row of the phase-diagram database (ed3's 3-pole fit misses the hybridisation by
    only ~2e-5): the phase-diagram network's correction is cut to at most 3 x that misfit (the
    RMS of the G(tau) change), and the solver reports it."""
    m = AndersonModel(U=2.949, eps_d=-0.049, beta=114.24,
                      bath_eps=[-1.0486049166801976, -0.7271196060726969, -0.724678767196046,
                                0.25923490453594666, 0.6761372346435393, 0.8424664797452657,
                                0.8495085389663404, 1.1134241670753497],
                      bath_v=[0.01562414112946388, 0.15894301638475408, 0.2212655749125035,
                              0.01053668503243281, 0.08378224284452186, 0.24031664220281795,
                              0.3460243939810171, 0.18184389831893302])
    res, base = solve("ml", m, network="phase_diagram"), solve("ed3", m, n_l=PD_N_L)
    r = base.info["fit_residual"]
    assert 1e-6 < r < 1e-4
    assert res.info["trust_scale"] < 0.8
    rms = np.sqrt(np.sum(((res.g_l - base.g_l) / m.beta) ** 2))
    assert rms <= 3.0 * r + 1e-7
    if res.info["trust_scale"] < 0.5:
        assert any("unlike the training data" in w for w in res.info["warnings"])
