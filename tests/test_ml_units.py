"""Correction-network building blocks without a database: transforms, group splits, the sum-rule
projection, the particle-hole map of inputs, the Sigma-correction encoding, exact particle-hole
equivariance of the predictor, continuous-bath inputs, configuration errors and doctests."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses  # noqa: E402
import doctest  # noqa: E402
import importlib  # noqa: E402
import pkgutil  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mldmft.ml  # noqa: E402
from mldmft.ml.config import (ConstraintConfig, DataConfig, NetConfig,  # noqa: E402
                              train_config_from_dict)
from mldmft.ml.constraints import project_sum_rule, sum_rule_residual  # noqa: E402
from mldmft.ml.data import split_groups  # noqa: E402
from mldmft.ml.features import (EncodingSpec, RawBatch, build_features,  # noqa: E402
                                decode_target, encode_target)
from mldmft.ml.inference import model_batch  # noqa: E402
from mldmft.ml.transforms import FittedTransform, element_inverse  # noqa: E402
from solvers import AndersonModel, g_l_from_poles, solve  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    import torch

    torch.set_num_threads(1)


# ------------------------------------------------------------------ transforms
@pytest.mark.parametrize("kind", ["T0", "T1", "T2"])
@pytest.mark.parametrize("scale", ["per_component", "global"])
def test_transforms_invert_exactly(kind, scale):
    rng = np.random.default_rng(0)
    scales = ([1e-3, 0.1, 1.0, 10.0, 100.0, 1.0] if scale == "per_component"
              else [1.0, 0.7, 1.3, 0.9, 1.1, 1.0])  # global: one scale for like columns
    v = rng.normal(size=(50, 6)) * np.array(scales) + 3.0
    v[:, 5] = 2.5  # a constant column
    t = FittedTransform.fit(kind, v[:30], scale)
    z = t.forward(v)
    back, n_clipped = t.inverse(z)
    assert n_clipped == 0
    np.testing.assert_allclose(back, v, rtol=1e-12, atol=1e-12 * np.abs(v).max())
    # fitted on the training rows only, and stored losslessly
    assert np.allclose(t.mean, v[:30].mean(axis=0)) and not np.allclose(t.mean, v.mean(axis=0))
    t2 = FittedTransform.from_dict(t.to_dict())
    assert np.array_equal(t2.forward(v), z)
    if scale == "global":
        assert np.all(t.std == t.std[0])


def test_tanh_inverse_clips_outside_the_unit_interval():
    v, n = element_inverse("T1", np.array([0.5, 1.0, -3.0]))
    assert n == 2 and np.all(np.isfinite(v)) and abs(v[1]) < 9.0
    v2, _ = element_inverse("T2", np.array([0.5]))
    assert v2[0] == pytest.approx(-np.arctanh(0.5))


# ------------------------------------------------------------------ splits
def test_group_split_never_leaks_a_group():
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 4, size=300)           # twins (2), singles, triples
    group_id = rng.permutation(np.repeat(rng.permutation(10_000)[:300], sizes))
    for seed in range(5):
        s = split_groups(group_id, (0.7, 0.15, 0.15), seed)
        sets = [set(group_id[idx].tolist()) for idx in (s.train, s.val, s.test)]
        assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
        rows = np.concatenate([s.train, s.val, s.test])
        assert np.array_equal(np.sort(rows), np.arange(group_id.size))
        assert len(sets[1]) == 45 and len(sets[2]) == 45
    fractions = (0.7, 0.15, 0.15)
    a, b = split_groups(group_id, fractions, 3), split_groups(group_id, fractions, 3)
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, split_groups(group_id, fractions, 4).test)


def test_empty_split_is_refused():
    with pytest.raises(ValueError, match="split 'val' is empty"):
        split_groups(np.repeat(np.arange(3), 2), (0.8, 0.1, 0.1), 0)


# ------------------------------------------------------------------ sum rule
def test_sum_rule_projection_is_exact_minimal_and_contracting():
    rng = np.random.default_rng(2)
    beta = np.array([10.0, 37.0, 80.0])
    exact = np.stack([g_l_from_poles(np.array([0.6, 0.4]), np.array([-0.7, 0.9]), b, 60)
                      for b in beta])
    assert np.all(np.abs(sum_rule_residual(exact, beta)) < 1e-12)
    noisy = exact + 0.05 * rng.normal(size=exact.shape) * beta[:, None]
    proj = project_sum_rule(noisy, beta)
    assert np.all(np.abs(sum_rule_residual(proj, beta)) < 1e-13)
    assert np.array_equal(proj[:, 1::2], noisy[:, 1::2])          # odd l untouched
    # orthogonal projection: closer to every G obeying the rule (here the exact one)
    assert np.all(np.linalg.norm(proj - exact, axis=1) < np.linalg.norm(noisy - exact, axis=1))
    # idempotent
    np.testing.assert_allclose(project_sum_rule(proj, beta), proj, atol=1e-14 * beta.max())


# ------------------------------------------------------------------ encodings
def _solved_batch(models, solvers_, n_l=40, n_sigma=16):
    res = [{s: solve(s, m, n_l=n_l) for s in solvers_} for m in models]
    spec = EncodingSpec("ed", "ipt", ("ipt",), ("delta_l", "scalars", "g_l", "sigma_iw"),
                        "sigma_correction", n_l, n_l, n_l, n_sigma,
                        solver_options={s: {} for s in solvers_})
    parts = [model_batch(m, spec, r) for m, r in zip(models, res)]
    batch = RawBatch(**{k: np.concatenate([getattr(p, k) for p in parts])
                        for k in ("U", "eps_d", "beta", "D", "delta_l", "delta_iw")},
                     g_l={s: np.concatenate([r[s].g_l[None, :n_l] for r in res])
                          for s in solvers_},
                     sigma_iw={s: np.concatenate([r[s].sigma_iw[None, :n_sigma] for r in res])
                               for s in solvers_})
    return batch, spec


MODELS = [AndersonModel(U=2.0, eps_d=-0.7, beta=15.0, bath_eps=[-0.6, 0.2, 0.8],
                        bath_v=[0.3, 0.25, 0.2]),
          AndersonModel(U=3.0, eps_d=-1.5, beta=25.0, bath_eps=[-0.5, 0.5], bath_v=[0.35, 0.35])]


def test_particle_hole_map_of_inputs_matches_solving_the_twin():
    batch, spec = _solved_batch(MODELS, ("ipt", "hubbard_i"))
    twin_batch, _ = _solved_batch([m.particle_hole_transformed() for m in MODELS],
                                  ("ipt", "hubbard_i"))
    mapped = batch.particle_hole()
    np.testing.assert_allclose(mapped.eps_d, twin_batch.eps_d)
    np.testing.assert_allclose(mapped.delta_l, twin_batch.delta_l, atol=1e-12)
    np.testing.assert_allclose(mapped.delta_iw, twin_batch.delta_iw, atol=1e-12)
    for s in ("ipt", "hubbard_i"):
        np.testing.assert_allclose(mapped.g_l[s], twin_batch.g_l[s], atol=1e-7)
        np.testing.assert_allclose(mapped.sigma_iw[s], twin_batch.sigma_iw[s], atol=1e-6)


def test_sigma_correction_decodes_by_dyson_to_the_target_g():
    """Decoding the exact Sigma correction on the first n frequencies recovers ED's G_l; the
    error left by frequencies beyond n falls as n grows (the encoding floor)."""
    errors = []
    for n_sigma in (16, 128, 1024):
        batch, spec = _solved_batch(MODELS, ("ipt", "ed"), n_sigma=n_sigma)
        g = decode_target(encode_target(batch, spec), batch, spec)
        errors.append(np.max(np.abs(g - batch.g_l["ed"]) / batch.beta[:, None]))
        # a zero correction decodes to the base solver exactly
        g0 = decode_target(np.zeros((2, spec.n_targets)), batch, spec)
        np.testing.assert_allclose(g0, batch.g_l["ipt"], atol=1e-13)
    assert errors[0] > errors[1] > errors[2] and errors[2] < 2e-3, errors


def test_sigma_w_correction_is_the_sigma_correction_over_w_n():
    """sigma_w_correction = sigma_correction / w_n column by column, and decodes to the same G."""
    from dataclasses import replace

    batch, spec = _solved_batch(MODELS, ("ipt", "ed"))
    spec_w = replace(spec, target="sigma_w_correction")
    y, y_w = encode_target(batch, spec), encode_target(batch, spec_w)
    wn = (2 * np.arange(spec.n_sigma) + 1) * np.pi / batch.beta[:, None]
    np.testing.assert_allclose(y_w, y / np.concatenate([wn, wn], axis=1), rtol=1e-14)
    np.testing.assert_allclose(decode_target(y_w, batch, spec_w), decode_target(y, batch, spec),
                               atol=1e-13)


def test_g_l_correction_round_trip_and_feature_layout():
    batch, spec = _solved_batch(MODELS, ("ipt", "ed"))
    spec = EncodingSpec("ed", "ipt", ("ipt",), ("delta_l", "scalars", "g_l"), "g_l_correction",
                        40, 10, 40, 16)
    y = encode_target(batch, spec)
    np.testing.assert_allclose(decode_target(y, batch, spec), batch.g_l["ed"], atol=1e-12)
    x = build_features(batch, spec)
    assert x.shape == (2, spec.n_features) == (2, 10 + 4 + 10)
    np.testing.assert_allclose(x[:, 10:14], np.stack([batch.U, batch.eps_d, batch.beta,
                                                      batch.D], axis=1))


def test_predictor_is_exactly_particle_hole_equivariant_and_obeys_the_sum_rule():
    import torch

    from mldmft.ml.networks import build_network
    from mldmft.ml.predictor import Predictor, TorchBackend

    batch, _ = _solved_batch(MODELS, ("ipt", "hubbard_i", "ed"))
    spec = EncodingSpec("ed", "ipt", ("ipt", "hubbard_i"), ("delta_l", "scalars", "g_l"),
                        "g_l_correction", 40, 12, 40, 16)
    torch.manual_seed(0)
    net = build_network(NetConfig(kind="ensemble", member="mlp", n_members=3, hidden=16),
                        spec.n_features, spec.n_targets)
    both = RawBatch(**{k: np.concatenate([getattr(batch, k), getattr(batch.particle_hole(), k)])
                       for k in ("U", "eps_d", "beta", "D", "delta_l", "delta_iw")},
                    g_l={s: np.concatenate([batch.g_l[s], batch.particle_hole().g_l[s]])
                         for s in batch.g_l})
    pred = Predictor(spec=spec, x_transform=FittedTransform.fit("T1", build_features(both, spec)),
                     y_transform=FittedTransform.fit("T0", 0.01 * np.ones((1, 40)), "global"),
                     backend=TorchBackend(net),
                     constraints=ConstraintConfig(sum_rule=True, particle_hole=True))
    p, p_twin = pred.predict(batch), pred.predict(batch.particle_hole())
    sign = (-1.0) ** np.arange(40)
    np.testing.assert_allclose(p_twin.g_l, p.g_l * sign, atol=1e-12 * batch.beta.max())
    assert p.spread is not None and p.spread.shape == (2, 40)
    assert np.all(np.abs(sum_rule_residual(p.members, batch.beta)) < 1e-10)
    pred = dataclasses.replace(pred, constraints=ConstraintConfig(sum_rule=True,
                                                                  particle_hole=False))
    q, q_twin = pred.predict(batch), pred.predict(batch.particle_hole())
    assert not np.allclose(q_twin.g_l, q.g_l * sign, atol=1e-6)  # the raw network is not


def test_continuous_bath_inputs_match_the_discrete_bath():
    m = MODELS[0]
    cont = AndersonModel(U=m.U, eps_d=m.eps_d, beta=m.beta, delta_iw=m.delta(2048))
    spec = EncodingSpec("ed", "ipt", ("ipt",), ("delta_l", "scalars", "g_l"), "g_l_correction",
                        40, 40, 40, 16)
    res = {"ipt": solve("ipt", m, n_l=40)}
    a, b = model_batch(m, spec, res), model_batch(cont, spec, res)
    np.testing.assert_allclose(b.delta_l, a.delta_l, atol=1e-6)
    assert b.D[0] == pytest.approx(a.D[0], rel=1e-6)
    np.testing.assert_allclose(b.delta_iw, a.delta_iw, atol=1e-14)


# ------------------------------------------------------------------ configuration
def _cfg(**data):
    base = {"path": "db.h5", "base": "ipt", "feature_solvers": ["ipt"]}
    base.update(data)
    return {"data": base, "model": {"kind": "mlp"}}


@pytest.mark.parametrize("change, message", [
    ({"model": {"kind": "mlp", "hiden": 3}}, "model.hiden"),
    ({"model": {"kind": "transformer"}}, "model.kind"),
    ({"data": _cfg(target="g_tau")["data"]}, "data.target"),
    ({"data": _cfg(split=[0.5, 0.5, 0.5])["data"]}, "data.split"),
    ({"data": _cfg(features=["delta_l", "colour"])["data"]}, "colour"),
    ({"data": _cfg(feature_transform="T3")["data"]}, "data.feature_transform"),
    ({"trainer": {"max_epochs": 0}}, "trainer.max_epochs"),
    ({"optimiser": {}}, "optimiser"),
])
def test_bad_config_is_refused_naming_the_key(change, message):
    cfg = _cfg()
    cfg.update(change)
    with pytest.raises(ValueError, match=message):
        train_config_from_dict(cfg)


def test_data_config_needs_a_feature_solver():
    with pytest.raises(ValueError, match="feature_solvers"):
        DataConfig(path="x", base="ipt", feature_solvers=())


def test_importing_mldmft_ml_registers_ml_without_torch():
    import subprocess
    import sys

    code = ("import sys, mldmft.ml; from solvers import available_solvers; "
            "print('ml' in available_solvers(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "False"]


ML_MODULES = sorted(m.name for m in pkgutil.walk_packages(mldmft.ml.__path__, "mldmft.ml."))


@pytest.mark.parametrize("name", ML_MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


def test_krr_flags_a_selection_at_the_edge_of_its_grid():
    from mldmft.ml.krr import KRRFit

    def fit(best_alpha, best_gamma):
        grid = [{"alpha": a, "gamma_rel": g, "gamma": g, "val_mse":
                 0.0 if (a, g) == (best_alpha, best_gamma) else 1.0}
                for a in (1e-8, 1e-6, 1e-4) for g in (0.01, 0.1, 1.0)]
        return KRRFit(model=None, grid=grid, n_train=10)

    assert fit(1e-6, 0.1).at_grid_edge() == []
    assert [s.split(" =")[0] for s in fit(1e-8, 0.1).at_grid_edge()] == ["alpha"]
    assert [s.split(" =")[0] for s in fit(1e-6, 1.0).at_grid_edge()] == ["gamma"]
    assert len(fit(1e-4, 0.01).at_grid_edge()) == 2


def _krr_data(seed=0, n=240):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    return x, np.column_stack([np.sin(x[:, 0]) * x[:, 1], np.cos(x[:, 2])])


def test_nystrom_on_every_training_row_is_the_exact_regression():
    """With as many centres as training rows the Nystrom (subset-of-regressors) solution
    ``(K^2 + alpha K) w = K Y`` is ``w = (K + alpha)^-1 Y``, the exact kernel ridge regression;
    with fewer centres it stores only those rows and still fits."""
    from mldmft.ml.config import KRRConfig
    from mldmft.ml.krr import fit_krr

    x, y = _krr_data()
    cfg = KRRConfig(alphas=(1e-3,), gammas=(1.0,), max_train=None)
    exact = fit_krr(cfg, x[:200], y[:200], x[200:], y[200:]).model
    full = fit_krr(dataclasses.replace(cfg, n_centres=200), x[:200], y[:200], x[200:],
                   y[200:]).model
    np.testing.assert_allclose(full(x[200:]), exact(x[200:]), atol=1e-9)
    mse = [fit_krr(dataclasses.replace(cfg, n_centres=m), x[:200], y[:200], x[200:],
                   y[200:]).grid[0]["val_mse"] for m in (25, 50, 100)]
    assert mse[0] > mse[1] > mse[2] > fit_krr(cfg, x[:200], y[:200], x[200:],
                                              y[200:]).grid[0]["val_mse"]   # more centres: closer
    assert mse[0] < 0.5 * np.var(y[200:])
    small = fit_krr(dataclasses.replace(cfg, n_centres=50), x[:200], y[:200], x[200:], y[200:])
    assert small.model.x_fit.shape == (50, 5) and small.model.dual_coef.shape == (50, 2)
    with pytest.raises(ValueError, match="n_centres = 300 exceeds the 200 training rows"):
        fit_krr(dataclasses.replace(cfg, n_centres=300), x[:200], y[:200], x[200:], y[200:])
    with pytest.raises(ValueError, match="n_centres must be >= 1"):
        KRRConfig(n_centres=0)


def test_float32_rows_are_fitted_and_stored_exactly():
    """``rows_float32``: the model is the regression of the rounded rows, stored as float32 and
    loaded back to the same predictions bit for bit; float64 rows stay float64."""
    from mldmft.ml.config import KRRConfig
    from mldmft.ml.krr import KRRModel, fit_krr

    x, y = _krr_data(1)
    cfg = KRRConfig(alphas=(1e-3,), gammas=(1.0,), max_train=None, rows_float32=True)
    model = fit_krr(cfg, x[:200], y[:200], x[200:], y[200:]).model
    stored = model.to_dict()
    assert stored["x_fit"].dtype.itemsize == 4 and stored["dual_coef"].dtype.itemsize == 8
    assert np.array_equal(KRRModel.from_dict(stored)(x[200:]), model(x[200:]))
    plain = fit_krr(dataclasses.replace(cfg, rows_float32=False), x[:200], y[:200], x[200:],
                    y[200:]).model
    assert plain.to_dict()["x_fit"].dtype.itemsize == 8
    assert np.max(np.abs(plain(x[200:]) - model(x[200:]))) < 1e-4


def test_krr_evaluates_equal_rows_once_with_the_same_bits():
    from mldmft.ml.config import KRRConfig
    from mldmft.ml.krr import fit_krr

    x, y = _krr_data(2)
    model = fit_krr(KRRConfig(alphas=(1e-3,), gammas=(1.0,), max_train=None), x[:200], y[:200],
                    x[200:], y[200:]).model
    rows = x[[200, 201, 200, 202, 201]]
    alone = np.concatenate([model(r[None])[0] for r in rows])
    assert np.array_equal(model(rows)[0], alone)
