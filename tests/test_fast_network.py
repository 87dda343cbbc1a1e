"""The fast network (no ED among its inputs), the batched ``ml`` solver and the shipped networks
by name: the recipe composes to what the docs say; a tiny network trained with it keeps the sum
rule, particle-hole equivariance and causality on random inputs (also where the raw network
breaks them); ``solve_many("ml", ...)`` equals the loop of ``solve("ml", ...)`` for the shipped
network and for a fast-network checkpoint; the hybridisation inputs of a continuous ``Delta``
match the discrete bath; the registry lists the shipped networks and refuses unknown ones."""

import dataclasses
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import mldmft.ml  # noqa: F401  (registers the ml solver)
import mldmft.ml.shipped as shipped
from mldmft.database import GenerateConfig, SolverSpec, generate
from mldmft.ml.constraints import (TOL_SIGMA, TOL_TAU, causality_violation, ph_sign,
                                   sum_rule_residual)
from mldmft.ml.hybridisation import c1_rows, delta_tail_c1, hybridisation_rows
from mldmft.ml.inference import models_batch
from solvers import AndersonModel, g_l_from_poles, hybridisation_iw, matsubara_freqs, solve
from solvers import solve_many

REPO = Path(__file__).resolve().parents[1]
TINY = dict(kind="bethe_random", n_bath=3, D=[0.7, 1.3], U=[0.5, 4.0],
            eps_d_shift=[-0.6, 0.6], half_filling_fraction=0.3, beta={"loguniform": [20, 60]})
TINY_DOMAIN = {"beta": [20.0, 60.0], "U": [0.5, 4.0], "density": [0.4, 1.6], "D": [0.7, 1.3]}


def _train_script():
    spec = importlib.util.spec_from_file_location("mldmft_train_script_fast", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def compose_fast(*overrides: str):
    """``configs/train_fast.yaml`` with overrides, as ``python train.py --config-name
    train_fast`` composes it."""
    from mldmft.cli import _compose

    return _train_script().to_train_config(_compose("train_fast", list(overrides)))


@pytest.fixture(scope="module")
def fast_trained(tmp_path_factory):
    """The fast recipe's inputs and constraints on 60 samples (ED Nb = 3 target; IPT, and
    Hubbard-I in the database but not among the inputs) with a 2-member network ensemble in place of its KRR (the torch path; the KRR
    path is the shipped file's), a domain in the checkpoint."""
    import torch

    torch.set_num_threads(1)
    from mldmft.ml import run_training

    out = tmp_path_factory.mktemp("fast_db") / "tiny.h5"
    generate(GenerateConfig(out=str(out), n_samples=60, seed=12, sampling=TINY,
                            target=SolverSpec("ed"),
                            cheap=(SolverSpec("ipt"), SolverSpec("hubbard_i")), n_l=160,
                            n_sigma=8, chunk_size=30, workers=1, progress=False))
    domain = "{" + ",".join(f"{k}:[{lo},{hi}]" for k, (lo, hi) in TINY_DOMAIN.items()) + "}"
    cfg = compose_fast(f"data.path={out}", "model=ensemble", "~model.alphas", "~model.gammas",
                       "~model.max_train", "~model.rows_float32", "~model.fit_twins",
                       "model.n_members=2", "model.hidden=32",
                       "model.depth=1", "trainer.max_epochs=20", "trainer.patience=20",
                       "trainer.progress_bar=false", "metrics.plots=false", f"domain={domain}")
    return run_training(cfg, tmp_path_factory.mktemp("fast_run"), log=print)


def random_models(seed: int, n: int, beta=(20.0, 60.0), n_iw: int = 1024,
                  shift: float = 0.3) -> list[AndersonModel]:
    """Random models inside the tiny domain, each with a continuous ``delta_iw`` (as in a DMFT
    loop) from a random 4-pole bath of scale ``D = 2 sqrt(sum V^2)`` in [0.8, 1.2]."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        b = float(np.exp(rng.uniform(np.log(beta[0]), np.log(beta[1]))))
        U = float(rng.uniform(0.8, 3.5))
        D = float(rng.uniform(0.8, 1.2))
        eps = rng.uniform(-1.0, 1.0, 4)
        v = rng.uniform(0.3, 1.0, 4)
        v *= 0.5 * D / np.sqrt(np.sum(v ** 2))
        delta = hybridisation_iw(matsubara_freqs(b, n_iw), eps, v)
        out.append(AndersonModel(U=U, eps_d=-U / 2 + float(rng.uniform(-shift, shift)), beta=b,
                                 delta_iw=delta))
    return out


def twin(m: AndersonModel) -> AndersonModel:
    """The particle-hole image: ``eps_d -> -eps_d - U``, ``Delta -> -conj(Delta)``."""
    return AndersonModel(U=m.U, eps_d=-m.eps_d - m.U, beta=m.beta, delta_iw=-np.conj(m.delta_iw))


# --------------------------------------------------------------- the recipe
def test_the_fast_recipe_composes_to_an_ipt_base_without_ed_inputs():
    cfg = compose_fast("data.path=db.h5")
    d = cfg.data
    assert (d.base, d.feature_solvers, d.features, d.basis, d.docc) == (
        "ipt", ("ipt",), ("delta_l", "scalars", "g_l", "docc"), "ir", True)
    assert not any(s.startswith("ed") for s in (d.base,) + d.feature_solvers)
    c = cfg.constraints
    assert (c.sum_rule, c.particle_hole, c.causal) == (True, True, True)
    assert c.exact_base_scale == 0 and c.trust_ratio == 0
    assert cfg.model.kind == "krr" and cfg.model.alphas == (3e-6,) and cfg.model.gammas == (4.0,)
    assert cfg.model.rows_float32 and not cfg.model.fit_twins
    assert cfg.domain == {k: tuple(v) for k, v in shipped.shipped_network("fast").domain.items()}


def test_the_fast_active_learning_config_composes_held_out_of_the_benchmark():
    """``mldmft active --config-name active_fast``: KRR refitted from scratch with the training
    settings of the shipped run, flags a KRR can raise, and a grid that avoids the ML-DMFT
    benchmark's temperatures and fillings (held out)."""
    from mldmft.cli import active_config

    cfg = active_config(["checkpoint=start.pt"], "active_fast")
    assert cfg.train.model.kind == "krr" and not cfg.warm_start and not cfg.install
    assert cfg.train.model.gammas == (1.0,) and cfg.train.data.split == (0.8, 0.1, 0.1)
    assert set(cfg.flag.reasons) == {"unphysical", "acausal"}
    assert not set(cfg.grid.beta) & {30.0, 75.0, 150.0}
    assert not set(cfg.grid.density) & {0.9}


def test_bath_fit_gates_are_refused_for_a_base_that_fits_no_bath():
    with pytest.raises(ValueError, match=r"data.base = ipt fits no bath"):
        compose_fast("data.path=db.h5", "constraints.exact_base_scale=3e-4")
    with pytest.raises(ValueError, match=r"trust_ratio"):
        compose_fast("data.path=db.h5", "constraints.trust_ratio=3.0")


def test_tiny_fast_network_trains_and_stores_the_recipe(fast_trained):
    p = fast_trained.predictor
    assert p.spec.cheap_solvers == ("ipt",)
    assert p.spec.basis == "ir" and p.spec.docc
    assert p.domain == TINY_DOMAIN
    assert fast_trained.metrics["test"]["model"]["frac_acausal"] == 0.0


# --------------------------------------------------------------- physics on random inputs
def _amplified(predictor, factor: float):
    """The predictor with its corrections ``factor`` times larger (a network far from its
    training), so that the raw predictions break causality."""
    yt = predictor.y_transform
    return dataclasses.replace(predictor, y_transform=dataclasses.replace(yt, std=yt.std * factor))


def test_fast_network_keeps_sum_rule_particle_hole_and_causality_on_random_inputs(fast_trained):
    ckpt = fast_trained.checkpoint
    models = random_models(3, 12)
    res = solve_many("ml", models, checkpoint=ckpt)
    res_twin = solve_many("ml", [twin(m) for m in models], checkpoint=ckpt)
    beta = np.array([m.beta for m in models])
    g_l = np.stack([r.g_l for r in res])
    sign = ph_sign(g_l.shape[1])
    assert np.max(np.abs(sum_rule_residual(g_l, beta))) < 1e-10
    np.testing.assert_allclose(np.stack([r.g_l for r in res_twin]), g_l * sign,
                               atol=1e-10 * beta.max())
    for r, rt in zip(res, res_twin):
        assert rt.density == pytest.approx(2.0 - r.density, abs=1e-10)
        assert rt.double_occupancy == pytest.approx(1.0 - r.density + r.double_occupancy,
                                                    abs=1e-10)
    delta_l = hybridisation_rows(models, g_l.shape[1])
    eps_d = np.array([m.eps_d for m in models])
    im, gt = causality_violation(g_l, beta, eps_d, delta_l)
    assert np.all(im <= TOL_SIGMA) and np.all(gt <= TOL_TAU)
    assert all(np.all(r.sigma_iw.imag[:64] <= TOL_SIGMA) for r in res)

    # the same, with corrections 300x too large: the constraints still hold, and they are what
    # holds them (the raw predictions break causality and the equivariance)
    predictor = fast_trained.predictor
    spec = predictor.spec
    cheap = {s: solve_many(s, models, n_l=spec.n_l) for s in spec.cheap_solvers}
    batch = models_batch(models, spec, cheap)
    wild = _amplified(predictor, 300.0)
    p, p_twin = wild.predict(batch), wild.predict(batch.particle_hole())
    assert np.max(np.abs(sum_rule_residual(p.g_l, beta))) < 1e-10
    np.testing.assert_allclose(p_twin.g_l, p.g_l * sign, atol=1e-10 * beta.max())
    im, gt = causality_violation(p.g_l, beta, eps_d, batch.delta_l)
    assert np.all(im <= TOL_SIGMA) and np.all(gt <= TOL_TAU)
    assert np.any(p.causal_step < 1)                       # the projection was needed
    off = dataclasses.replace(wild, constraints=dataclasses.replace(
        wild.constraints, causal=False, particle_hole=False, sum_rule=False))
    q, q_twin = off.predict(batch), off.predict(batch.particle_hole())
    im, gt = causality_violation(q.g_l, beta, eps_d, batch.delta_l)
    assert np.any((im > TOL_SIGMA) | (gt > TOL_TAU))
    assert not np.allclose(q_twin.g_l, q.g_l * sign, atol=1e-6)
    assert np.max(np.abs(sum_rule_residual(q.g_l, beta))) > 1e-8


# --------------------------------------------------------------- batched == one at a time
def _assert_same(many, loop, tol=1e-10):
    assert len(many) == len(loop)
    for a, b in zip(many, loop):
        scale = max(1.0, a.beta)
        assert np.max(np.abs(a.g_l - b.g_l)) <= tol * scale
        assert np.max(np.abs(a.g_iw - b.g_iw)) <= tol
        # Sigma = G0^-1 - 1/G cancels two terms of size |1/G(i w_n)| ~ w_n: its rounding scales
        # with them (an input rounding of 1e-16 that the shipped KRR amplifies ~1e4x reaches
        # ~1e-12 |1/G| at the top frequency), so compare per frequency on that scale
        sigma_scale = np.maximum(np.max(np.abs(b.sigma_iw)), np.abs(1.0 / b.g_iw))
        assert np.all(np.abs(a.sigma_iw - b.sigma_iw) <= tol * sigma_scale)
        assert abs(a.density - b.density) <= tol
        assert (a.double_occupancy is None) == (b.double_occupancy is None)
        if a.double_occupancy is not None:
            assert abs(a.double_occupancy - b.double_occupancy) <= tol
        if b.info["spread"] is not None:
            assert np.max(np.abs(a.info["spread"] - b.info["spread"])) <= tol * scale
        assert a.info["causal_step"] == pytest.approx(b.info["causal_step"], abs=tol)
        assert a.converged == b.converged and a.info["warnings"] == b.info["warnings"]


def test_solve_many_equals_the_loop_for_a_fast_network(fast_trained):
    ckpt = fast_trained.checkpoint
    models = random_models(5, 7)
    m = models[0]
    models.append(AndersonModel(U=2.0, eps_d=-0.8, beta=30.0, bath_eps=[-0.6, 0.1, 0.5],
                                bath_v=[0.3, 0.25, 0.28]))   # a discrete bath in the same batch
    many = solve_many("ml", models, checkpoint=ckpt)
    _assert_same(many, [solve("ml", x, checkpoint=ckpt) for x in models])
    assert many[0].info["batch_size"] == 8 and many[0].info["network"] is None
    assert solve_many("ml", [], checkpoint=ckpt) == []
    with_n_iw = solve_many("ml", models[:3], checkpoint=ckpt, n_iw=256)
    _assert_same(with_n_iw, [solve("ml", x, checkpoint=ckpt, n_iw=256) for x in models[:3]])
    assert with_n_iw[0].g_iw.size == 256
    # a model outside the domain is refused by its index, before any cheap solve
    calls = []
    import mldmft.ml.inference as inference

    real = inference.solve_many

    def spy(name, ms, **kw):
        calls.append(name)
        return real(name, ms, **kw)

    inference.solve_many = spy
    try:
        with pytest.raises(ValueError, match=r"model 2 of 3 is outside the domain.*U = 4.5"):
            solve_many("ml", [m, m, m.replace(U=4.5)], checkpoint=ckpt)
    finally:
        inference.solve_many = real
    assert calls == []


@pytest.mark.parametrize("network", [shipped.DEFAULT_NETWORK, "fast"])
def test_solve_many_equals_the_loop_for_the_shipped_network(network):
    rng = np.random.default_rng(8)
    models = []
    for _ in range(3):
        beta = float(rng.uniform(30.0, 150.0))
        eps = np.linspace(-1.0, 1.0, 6)
        v = np.full(6, 0.5 / np.sqrt(6)) * float(rng.uniform(0.9, 1.1))
        U = float(rng.uniform(1.5, 3.0))
        models.append(AndersonModel(U=U, eps_d=-U / 2 + float(rng.uniform(-0.2, 0.2)), beta=beta,
                                    delta_iw=hybridisation_iw(matsubara_freqs(beta, 1024), eps, v)))
    many = solve_many("ml", models, network=network)
    _assert_same(many, [solve("ml", m, network=network) for m in models])
    assert many[0].info["network"] == network


# --------------------------------------------------------------- the hybridisation inputs
@pytest.mark.parametrize("beta", [20.0, 200.0])
def test_continuous_delta_gives_the_discrete_bath_inputs(beta):
    """``Delta_l`` and ``c1`` from 1024 values of ``Delta(i w_n)`` (the tail fitted) against the
    exact pole formulas of the same 8-site bath: ``|dDelta_l|/beta < 1e-8``, ``c1`` (hence ``D``)
    to 1e-5 relative; the batch of many rows equals row by row."""
    rng = np.random.default_rng(int(beta))
    discrete, continuous = [], []
    for _ in range(4):
        eps = np.sort(rng.uniform(-1.2, 1.2, 8))
        v = rng.uniform(0.1, 0.3, 8)
        discrete.append(AndersonModel(U=2.0, eps_d=-1.0, beta=beta, bath_eps=eps, bath_v=v))
        continuous.append(AndersonModel(U=2.0, eps_d=-1.0, beta=beta,
                                        delta_iw=discrete[-1].delta(1024)))
    exact = hybridisation_rows(discrete, 160)
    for m, row in zip(discrete, exact):
        np.testing.assert_allclose(row, g_l_from_poles(m.bath_v ** 2, m.bath_eps, beta, 160),
                                   atol=1e-12 * beta)
    cont = hybridisation_rows(continuous, 160)
    assert np.max(np.abs(cont - exact)) / beta < 1e-8
    c1 = c1_rows(continuous)
    np.testing.assert_allclose(c1, [np.sum(m.bath_v ** 2) for m in discrete], rtol=1e-5)
    one_by_one = [delta_tail_c1(m.delta_iw, beta) for m in continuous]
    np.testing.assert_allclose(c1, one_by_one, rtol=1e-13)
    np.testing.assert_allclose(cont, np.concatenate([hybridisation_rows([m], 160)
                                                     for m in continuous]), atol=1e-13 * beta)


# --------------------------------------------------------------- shipped networks by name
def test_registry_lists_the_shipped_networks_and_the_default():
    names = [n.name for n in shipped.SHIPPED]
    assert names[:3] == ["fast", "phase_diagram", "demo_beta50"]
    assert shipped.DEFAULT_NETWORK in names
    from mldmft.ml.inference import DEFAULT_CHECKPOINT

    assert DEFAULT_CHECKPOINT == shipped.shipped_network(shipped.DEFAULT_NETWORK).path
    for net in shipped.SHIPPED:
        if not net.is_shipped:
            continue
        from mldmft.ml.checkpoint import load_checkpoint_cached

        p = load_checkpoint_cached(net.path)
        stored = p.domain or {k: p.train_range[k] for k in ("beta", "U")}
        assert set(stored) == set(net.domain), net.name
        for key, (lo, hi) in net.domain.items():
            assert stored[key] == pytest.approx([lo, hi], abs=0.01), (net.name, key)


def test_network_by_name_and_its_errors(monkeypatch, tmp_path):
    m = AndersonModel(U=2.0, eps_d=-1.0, beta=50.0, bath_eps=[-0.8, -0.2, 0.2, 0.8],
                      bath_v=[0.25] * 4)
    by_name = solve("ml", m, network="demo_beta50")
    by_file = solve("ml", m, checkpoint=str(shipped.PRETRAINED_DIR / "demo_beta50.pt"))
    np.testing.assert_array_equal(by_name.g_l, by_file.g_l)
    assert by_name.info["network"] == "demo_beta50" and by_file.info["network"] is None
    with pytest.raises(ValueError, match=r"no shipped network 'fsat' \(did you mean 'fast'\?\)"):
        solve("ml", m, network="fsat")
    with pytest.raises(ValueError, match="not both"):
        solve("ml", m, network="fast", checkpoint="x.pt")
    from solvers import check_options, solver_identity

    with pytest.raises(ValueError, match="no shipped network 'phase'"):
        check_options("ml", {"network": "phase"})
    assert solver_identity("ml", {"network": shipped.DEFAULT_NETWORK}) == solver_identity("ml")
    # a registry entry whose file this installation does not hold
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ValueError, match=r"network 'fast' is not shipped in this installation "
                                         r"\(.*fast.pt is missing"):
        solve("ml", m, network="fast")
    with pytest.raises(ValueError, match="'fast' is not shipped"):
        check_options("ml", {"network": "fast"})


def test_mldmft_models_lists_every_network(monkeypatch, tmp_path, capsys):
    from mldmft.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for net in shipped.SHIPPED:
        row = next(line for line in lines if line.startswith(net.name + " "))
        assert shipped.format_domain(net.domain) in row and net.description in row
        assert ("default" in row.split(net.file)[0]) == (net.name == shipped.DEFAULT_NETWORK)
        assert ("not shipped" in row) == (not net.is_shipped)
        if net.is_shipped:
            assert "MiB" in row
    monkeypatch.setattr(shipped, "PRETRAINED_DIR", tmp_path)
    assert main(["models"]) == 0
    assert capsys.readouterr().out.count("not shipped") == len(shipped.SHIPPED)


# --------------------------------------------------------------- the forward pass
@pytest.mark.parametrize("kind, member, activation", [
    ("ensemble", "resmlp", "gelu"), ("ensemble", "mlp", "tanh"), ("mlp", "mlp", "relu"),
    ("resmlp", "mlp", "silu")])
def test_stacked_numpy_forward_equals_the_torch_modules(kind, member, activation):
    """Few rows go through the numpy evaluation with the members stacked, many through the torch
    modules (both float64): the same function, so a model's prediction does not depend on the
    size of the batch it was in."""
    import torch

    from mldmft.ml.config import NetConfig
    from mldmft.ml.networks import Stacked, build_network
    from mldmft.ml.predictor import TorchBackend

    torch.manual_seed(1)
    net = build_network(NetConfig(kind=kind, member=member, activation=activation, hidden=16,
                                  depth=2, n_members=3 if kind == "ensemble" else 1), 12, 5)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.4)
    x = np.random.default_rng(2).normal(size=(40, 12))
    with torch.no_grad():
        ref = net.double().eval()(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(Stacked(net)(x), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    backend = TorchBackend(net.float())
    few, many = backend(x[:2]), backend(x)
    assert few.shape == (3 if kind == "ensemble" else 1, 2, 5)
    np.testing.assert_allclose(few, many[:, :2], rtol=0, atol=1e-12 * np.abs(many).max())


def test_batch_benchmark_script_runs_small(fast_trained, tmp_path, capsys):
    """``benchmarks/ml_batch.py``: per-model times batched and one at a time (the loop's results
    equal to the batch's), and the training cost per epoch and 1000 rows."""
    spec = importlib.util.spec_from_file_location("bench_ml_batch",
                                                  REPO / "benchmarks" / "ml_batch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rep = bench.main(["--networks", "phase_diagram,fast", "--sizes", "1,2", "--repeats", "1",
                      "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "load average" in out
    assert ("fast" in rep["networks"]) != ("fast: not shipped" in out)
    rows = rep["networks"]["phase_diagram"]["rows"]
    assert [r["n_models"] for r in rows] == [1, 2]
    assert all(r["max_abs_diff_g_l"] <= 1e-10 and r["batched_ms"] > 0 for r in rows)
    train = bench.main(["--train", str(fast_trained.data.info.path), "--rows", "100",
                        "--epochs", "1", "--out", str(tmp_path)])
    assert train["train_rows"] == 100 and train["s_per_epoch_per_1000_rows"] > 0
    assert (tmp_path / "report.json").is_file() and (tmp_path / "training.json").is_file()


def test_causality_projection_is_continuous_at_its_threshold():
    """A DMFT loop through the projection needs a fixed point: selecting rows beyond the full
    tolerance but aiming at half of it made the output jump at the threshold, and the fast
    model's insulating solutions (beta 44, U = 3.1; beta 70, U = 2.7) cycled for 400 iterations
    at a residual of 1e-4. A prediction just past the threshold now moves by little, and one
    just inside it not at all."""
    from solvers import g_l_from_poles
    from mldmft.ml.constraints import TOL_TAU, _MARGIN, causality_violation, project_causal

    beta, n_l = np.array([10.0]), 40
    base = g_l_from_poles(np.array([0.5, 0.5]), np.array([-1.0, 1.0]), 10.0, n_l)[None]
    bump = np.zeros((1, n_l))
    bump[0, 0], bump[0, 2] = 1.0, -1.0 / np.sqrt(5)            # raises G(tau) in the middle
    eps_d, delta_l = np.array([0.0]), np.zeros((1, n_l))

    def g_tau_excess(g):
        return causality_violation(g, beta, eps_d, delta_l)[1][0]

    # the bump size that brings G(tau) exactly to the projection's threshold
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g_tau_excess(base + mid * bump) <= _MARGIN * TOL_TAU else (lo, mid)
    inside, past = base + lo * 0.999 * bump, base + lo * 1.001 * bump
    out_inside, a_inside = project_causal(inside, base, beta, eps_d, delta_l)
    out_past, a_past = project_causal(past, base, beta, eps_d, delta_l)
    assert a_inside[0] == 1.0 and np.array_equal(out_inside, inside)
    assert 0.99 < a_past[0] < 1.0
    assert np.max(np.abs(out_past - inside)) < 0.01 * lo * np.max(np.abs(bump))
    assert g_tau_excess(out_past) <= _MARGIN * TOL_TAU
