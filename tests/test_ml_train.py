"""Correction networks end to end on a tiny generated database: every model config runs
(``fast_dev_run``; KRR a tiny fit), a small network beats its base solver on held-out data,
predictions obey the sum rule, the ``ml`` solver reproduces the training-time prediction, and bad
input (missing solver, out-of-range model, empty split, failed rows, NaN loss) is refused."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mldmft.ml  # noqa: E402,F401  (registers "ml")
from mldmft.database import GenerateConfig, SolverSpec, generate  # noqa: E402
from mldmft.ml.checkpoint import load_checkpoint, load_checkpoint_cached  # noqa: E402
from mldmft.ml.constraints import sum_rule_residual  # noqa: E402
from mldmft.ml.data import prepare_data  # noqa: E402
from mldmft.ml.training import fit_network, run_training  # noqa: E402
from solvers import solve  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY_SAMPLING = dict(kind="bethe_random", n_bath=3, D=[0.5, 1.0], U=[0.5, 4.0],
                     eps_d=[-2.0, 0.5], beta=[10.0, 30.0])
QUIET = ["trainer.progress_bar=false"]


def _load_train_script():
    spec = importlib.util.spec_from_file_location("mldmft_train_script", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN = _load_train_script()


def compose(db: Path, *overrides: str):
    return TRAIN.compose([f"data.path={db}", *QUIET, *overrides])


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_db(tmp_path_factory) -> Path:
    """100 samples (200 rows with twins): ED Nb = 3 target, Hubbard-I and IPT."""
    out = tmp_path_factory.mktemp("ml_db") / "tiny.h5"
    generate(GenerateConfig(out=str(out), n_samples=100, seed=5, sampling=TINY_SAMPLING,
                            target=SolverSpec("ed"),
                            cheap=(SolverSpec("hubbard_i"), SolverSpec("ipt")), n_l=64,
                            n_sigma=16, chunk_size=25, workers=1, progress=False))
    return out


@pytest.fixture(scope="session")
def trained(tiny_db, tmp_path_factory):
    """A small residual MLP correcting IPT with IPT and Hubbard-I features (collective)."""
    cfg = compose(tiny_db, "model=resmlp", "model.hidden=64", "model.depth=2",
                  "data.n_l_features=10", "data.feature_solvers=[ipt,hubbard_i]",
                  "trainer.max_epochs=150", "trainer.patience=20")
    return run_training(cfg, tmp_path_factory.mktemp("ml_run"), log=print)


# ------------------------------------------------------------------ training
def test_tiny_database_trains_below_the_base_solver(trained):
    test = trained.metrics["test"]
    model, base = test["model"]["mse_g_tau"], test["base"]["mse_g_tau"]
    print(f"test MSE G(tau): model {model:.3e}, base ipt {base:.3e}, factor "
          f"{test['improvement']['improvement_over_base']:.2f}; over best cheap "
          f"{test['best_cheap']}: {test['improvement']['improvement_over_best_cheap']:.2f}")
    assert model < base
    assert test["model"]["mse_g_l"] < test["base"]["mse_g_l"]
    assert test["best_cheap"] == "ipt"   # so the model also beats the best single cheap solver
    # every promised output is written
    out = trained.out_dir
    written = json.loads((out / "metrics.json").read_text())
    assert written["test"]["improvement"] == test["improvement"]
    for key in ("mae_z", "median_abs_z", "mae_density"):
        assert np.isfinite(written["test"]["model"][key])
    assert 0 <= written["test"]["model"]["frac_acausal"] <= 1
    assert written["test"]["cheap"]["ipt"]["frac_acausal"] == 0   # IPT's Sigma is causal
    assert len(written["test"]["by_beta"]) == 3 and len(written["test"]["by_U"]) == 3
    assert sum(b["n"] for b in written["test"]["by_U"]) == written["test"]["n_rows"]
    assert written["data"]["dropped"]["kept"] == 200
    for png in ("learning_curves.png", "g_tau_examples.png", "error_vs_params.png"):
        assert (out / png).stat().st_size > 1000
    assert (out / "model.pt").is_file() and list(out.glob("logs/*/metrics.csv"))


def test_predictions_obey_the_sum_rule(trained):
    data = trained.data
    batch = data.rows.batch.take(data.splits.test)
    g_l = trained.predictor.predict(batch).g_l
    assert np.max(np.abs(sum_rule_residual(g_l, batch.beta))) < 1e-10
    # the network alone does not: the projection is what enforces it
    raw = dataclasses.replace(trained.predictor,
                              constraints=dataclasses.replace(trained.predictor.constraints,
                                                              sum_rule=False))
    assert np.max(np.abs(sum_rule_residual(raw.predict(batch).g_l, batch.beta))) > 1e-8


@pytest.mark.parametrize("overrides", [
    ["model=mlp_small"], ["model=resmlp"], ["model=ensemble", "model.n_members=3"],
    ["model=krr", "model.alphas=[1e-4]", "model.gammas=[0.3]"],
    ["model=krr", "model.alphas=[1e-4]", "model.gammas=[0.3]", "model.fit_twins=false",
     "model.rows_float32=true", "constraints.particle_hole=true"],
    ["model=mlp_small", "data=sigma", "constraints.particle_hole=true"],
    ["model=resmlp", "model.iw_loss_weight=2.0"],
], ids=["mlp_small", "resmlp", "ensemble", "krr", "krr_drawn_rows", "sigma_ph", "iw_loss"])
def test_each_model_config_runs(tiny_db, tmp_path, overrides):
    cfg = compose(tiny_db, "trainer.fast_dev_run=true", "metrics.plots=false", *overrides)
    result = run_training(cfg, tmp_path, log=lambda s: None)
    pred = load_checkpoint(result.checkpoint)
    assert pred.kind == ("krr" if cfg.model.kind == "krr" else "torch")
    data = result.data
    batch = data.rows.batch.take(data.splits.test[:4])
    p = pred.predict(batch)
    assert np.all(np.isfinite(p.g_l))
    np.testing.assert_allclose(p.g_l, result.predictor.predict(batch).g_l, atol=1e-12)
    assert (p.spread is not None) == (cfg.model.kind == "ensemble")
    assert json.loads((tmp_path / "metrics.json").read_text())["test"]["n_rows"] > 0
    if cfg.model.kind == "krr" and not cfg.model.fit_twins:    # the drawn rows only
        train = data.splits.train
        assert pred.backend.x_fit.shape[0] == np.count_nonzero(~data.rows.augmented[train]) > 0
        assert np.count_nonzero(data.rows.augmented[train]) > 0


def test_krr_without_twin_rows_needs_the_particle_hole_average(tiny_db):
    """Refused when the config is built, before any data is read."""
    with pytest.raises(ValueError, match="model.fit_twins = false needs "
                                         "constraints.particle_hole = true"):
        compose(tiny_db, "model=krr", "model.fit_twins=false",
                "constraints.particle_hole=false", "metrics.plots=false")


def test_summary_names_the_improvement_factor_and_warns_when_worse():
    """The summary printed "(x0.497)" unexplained and no warning for a model worse than its
    base solver."""
    from mldmft.ml.training import improvement_lines

    def metrics(factor):
        return {"base_solver": "ipt", "best_cheap": "ed2", "model": {"mse_g_tau": 2e-4},
                "base": {"mse_g_tau": 2e-4 * factor},
                "improvement": {"improvement_over_base": factor,
                                "improvement_over_best_cheap": factor / 2}}

    worse = "\n".join(improvement_lines(metrics(0.497)))
    assert "improvement factor over the base solver ipt" in worse and ": 0.497x" in worse
    assert "over the best cheap solver ed2: 0.248x" in worse
    assert "warning" in worse and "WORSE than its base solver ipt" in worse
    better = "\n".join(improvement_lines(metrics(4.0)))
    assert ": 4x" in better and "warning" not in better


def test_no_per_batch_progress_bar_in_a_log(tiny_db, tmp_path, capfd):
    """With stdout not a terminal (a log file), Lightning's per-batch bar is off even with
    trainer.progress_bar=true; the summary lines still print."""
    cfg = TRAIN.compose([f"data.path={tiny_db}", "trainer.progress_bar=true",
                         "trainer.fast_dev_run=true", "metrics.plots=false"])
    run_training(cfg, tmp_path, log=print)
    out, err = capfd.readouterr()
    assert "improvement factor over the base solver" in out
    assert "Epoch 0" not in out + err and "it/s" not in out + err


def test_low_frequency_loss_term_is_the_matsubara_error():
    import torch

    from mldmft.ml.models import CorrectionModule
    from solvers import legendre_t_matrix

    n_out, n_w, w = 12, 3, 2.5
    t = legendre_t_matrix(n_w, n_out)
    module = CorrectionModule({"kind": "mlp", "hidden": 4, "iw_loss_weight": w,
                               "iw_loss_frequencies": n_w}, 5, n_out, iw_matrix=t)
    rng = np.random.default_rng(0)
    pred, y = rng.normal(size=(7, n_out)), rng.normal(size=(7, n_out))
    d = pred - y
    expected = np.mean((np.sum(d ** 2, axis=1) + w * np.sum(np.abs(d @ t.T) ** 2, axis=1))
                       / n_out)
    got = module._loss(torch.as_tensor(pred, dtype=torch.float32),
                       torch.as_tensor(y, dtype=torch.float32))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="Legendre-to-Matsubara"):
        CorrectionModule({"kind": "mlp", "iw_loss_weight": w}, 5, n_out)


def test_low_frequency_matrix_of_an_ir_target_with_docc_gives_the_matsubara_correction():
    """The loss matrix of an IR-encoded target (with the docc column) maps the target to
    (G(i w_n) - G_base(i w_n)) / beta of the decoded G, and ignores the docc column."""
    from types import SimpleNamespace

    from mldmft.ml.config import NetConfig
    from mldmft.ml.features import EncodingSpec, RawBatch, decode_target
    from mldmft.ml.training import _iw_matrix
    from solvers import g_iw_from_l
    from solvers.ir import IRBasis

    n_l, n_w, beta = 40, 4, 37.0
    n_ir = IRBasis().size
    spec = EncodingSpec("ed", "ipt", ("ipt",), ("scalars",), "g_l_correction", n_l, n_l, n_l,
                        1, basis="ir", n_ir=n_ir, docc=True)
    cfg = SimpleNamespace(model=NetConfig(kind="mlp", iw_loss_weight=1.0,
                                          iw_loss_frequencies=n_w))
    t = _iw_matrix(cfg, SimpleNamespace(spec=spec, y_transform=SimpleNamespace(kind="T0")))
    assert t.shape == (n_w, n_ir + 1) and not np.any(t[:, -1])
    rng = np.random.default_rng(1)
    y = rng.normal(size=(1, n_ir + 1)) / (1.0 + np.arange(n_ir + 1)) ** 2
    one = np.ones(1)
    batch = RawBatch(U=one, eps_d=-0.5 * one, beta=beta * one, D=one,
                     delta_l=np.zeros((1, n_l)), delta_iw=np.zeros((1, 1), complex),
                     g_l={"ipt": np.zeros((1, n_l))})
    g_iw = g_iw_from_l(decode_target(y, batch, spec), n_w)
    np.testing.assert_allclose(y @ t.T, g_iw / beta, atol=1e-12)


def test_low_frequency_loss_weighted_by_beta():
    """model.iw_loss_beta: the low-frequency term of each row carries (beta / beta_ref)^2, beta
    read back from its standardised input column."""
    import torch

    from mldmft.ml.models import CorrectionModule
    from solvers import legendre_t_matrix

    n_out, n_w, w = 6, 2, 0.7
    t = legendre_t_matrix(n_w, n_out)
    col, mean, std, ref = 2, 60.0, 30.0, 50.0
    module = CorrectionModule({"kind": "mlp", "hidden": 4, "iw_loss_weight": w,
                               "iw_loss_frequencies": n_w, "iw_loss_beta": True}, 5, n_out,
                              iw_matrix=t, iw_beta=(col, mean, std, ref))
    rng = np.random.default_rng(2)
    pred, y, x = (rng.normal(size=(9, n_out)), rng.normal(size=(9, n_out)),
                  rng.normal(size=(9, 5)))
    d = pred - y
    beta = x[:, col] * std + mean
    expected = np.mean((np.sum(d ** 2, axis=1)
                        + w * (beta / ref) ** 2 * np.sum(np.abs(d @ t.T) ** 2, axis=1)) / n_out)
    got = module._loss(*(torch.as_tensor(a, dtype=torch.float32) for a in (pred, y, x)))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="position of beta"):
        CorrectionModule({"kind": "mlp", "iw_loss_weight": w, "iw_loss_beta": True}, 5, n_out,
                         iw_matrix=t)


def test_low_frequency_loss_needs_the_identity_target_transform(tiny_db, tmp_path):
    cfg = compose(tiny_db, "model=resmlp", "model.iw_loss_weight=1.0",
                  "data.target_transform=T1", "trainer.fast_dev_run=true")
    with pytest.raises(ValueError, match="target_transform = T0"):
        run_training(cfg, tmp_path, log=lambda s: None)


def test_warm_start_begins_at_the_given_model(tiny_db, tmp_path):
    """init_checkpoint: the run starts from that network's weights and standardisation, so with
    a vanishing learning rate it predicts what that model predicts (a fresh seeded start does
    not); another network or a KRR model is refused in one line."""
    first = run_training(compose(tiny_db, "model=mlp_small", "model.hidden=8",
                                 "trainer.max_epochs=2", "metrics.plots=false",
                                 "data.split_seed=1"),
                         tmp_path / "a", log=lambda s: None)
    still = ["model=mlp_small", "model.hidden=8", "model.lr=1e-12", "trainer.max_epochs=1",
             "metrics.plots=false", "seed=7"]
    warm = run_training(compose(tiny_db, *still, f"init_checkpoint={first.checkpoint}"),
                        tmp_path / "b", log=lambda s: None)
    cold = run_training(compose(tiny_db, *still), tmp_path / "c", log=lambda s: None)
    batch = warm.data.rows.batch.take(warm.data.splits.test)
    before = first.predictor.predict(batch).g_l
    assert np.max(np.abs(warm.predictor.predict(batch).g_l - before)) < 1e-8
    assert np.max(np.abs(cold.predictor.predict(batch).g_l - before)) > 1e-4
    with pytest.raises(ValueError, match=r"differs from model \(model.hidden"):
        run_training(compose(tiny_db, "model=mlp_small", "model.hidden=9",
                             f"init_checkpoint={first.checkpoint}"), tmp_path / "d")
    with pytest.raises(ValueError, match="krr is always fitted from scratch"):
        compose(tiny_db, "model=krr", f"init_checkpoint={first.checkpoint}")


# ------------------------------------------------------------------ the ml solver
def _first_original_test_row(data) -> int:
    rows = [int(r) for r in data.splits.test if not data.rows.augmented[r]]
    return rows[0]


def test_ml_solver_reproduces_the_training_prediction(trained):
    data = trained.data
    r = _first_original_test_row(data)
    expected = trained.predictor.predict(data.rows.batch.take([r])).g_l[0]
    model = data.rows.model(r)
    res = solve("ml", model, checkpoint=trained.checkpoint)
    assert res.solver == "ml" and res.converged and res.double_occupancy is None
    np.testing.assert_allclose(res.g_l, expected, atol=1e-6 * model.beta)
    assert res.info["base"] == "ipt" and res.info["spread"] is None
    assert res.info["checkpoint"] == str(trained.checkpoint)
    # g_iw and sigma_iw are consistent with g_l and with Dyson's equation
    ipt = solve("ipt", model, n_l=64)
    assert res.g_iw.shape == ipt.g_iw.shape == res.sigma_iw.shape
    from solvers import g_iw_from_l

    np.testing.assert_allclose(res.g_iw[:8], g_iw_from_l(res.g_l, 8), atol=1e-8)
    g0_inv = 1j * res.wn - model.eps_d - model.delta(res.wn.size)
    np.testing.assert_allclose(1.0 / (g0_inv - res.sigma_iw), res.g_iw, atol=1e-10)
    assert abs(res.density - (-2 * np.sum(np.sqrt(2 * np.arange(res.g_l.size) + 1) * res.g_l)
                              / model.beta)) < 1e-12


def test_ml_solver_refuses_a_model_outside_the_training_range(trained):
    data = trained.data
    model = data.rows.model(_first_original_test_row(data))
    lo, hi = trained.predictor.train_range["beta"]
    hot = model.replace(beta=2 * hi)
    with pytest.raises(ValueError,
                       match=r"beta = .* is outside the training range.*extrapolate=True"):
        solve("ml", hot, checkpoint=trained.checkpoint)
    strong = model.replace(U=10.0)
    with pytest.raises(ValueError, match="U = 10"):
        solve("ml", strong, checkpoint=trained.checkpoint)
    res = solve("ml", hot, checkpoint=trained.checkpoint, extrapolate=True)
    assert res.info["extrapolated"] and np.all(np.isfinite(res.g_l))


def test_ml_solver_caches_the_checkpoint(trained):
    data = trained.data
    model = data.rows.model(_first_original_test_row(data))
    assert load_checkpoint_cached(trained.checkpoint) is load_checkpoint_cached(trained.checkpoint)
    solve("ml", model, checkpoint=trained.checkpoint)
    t0 = time.perf_counter()
    n = 5
    for _ in range(n):
        res = solve("ml", model, checkpoint=trained.checkpoint)
    per_call = (time.perf_counter() - t0) / n - sum(res.info["cheap_wall_time"].values())
    print(f"ml solver overhead beyond the cheap solvers: {per_call * 1e3:.1f} ms")
    assert per_call < 0.2   # ~2-5 ms unloaded; generous for busy CI machines
    with pytest.raises(ValueError, match="no such file"):
        solve("ml", model, checkpoint=trained.out_dir / "missing.pt")


# ------------------------------------------------------------------ bad input
def test_missing_solver_in_database_is_named(tiny_db):
    with pytest.raises(ValueError, match=r"data.base: solver 'nca' is not in database"):
        prepare_data(compose(tiny_db, "data.base=nca").data)
    with pytest.raises(ValueError, match=r"data.feature_solvers: solver 'ed2'"):
        prepare_data(compose(tiny_db, "data.feature_solvers=[ipt,ed2]").data)


def test_empty_split_is_refused(tiny_db):
    with pytest.raises(ValueError, match="split 'val' is empty"):
        prepare_data(compose(tiny_db, "data.max_samples=3").data)


def test_failed_and_unconverged_rows_are_dropped_and_counted(tiny_db, tmp_path):
    db = tmp_path / "edited.h5"
    shutil.copy(tiny_db, db)
    with h5py.File(db, "r+") as f:
        status = f["solvers/ipt/status"][()]
        status[[0, 1, 7]] = 2
        status[[10, 11]] = 1
        f["solvers/ipt/status"][...] = status
        g = f["solvers/hubbard_i/g_l"][()]
        g[20] = np.nan
        f["solvers/hubbard_i/g_l"][...] = g
    data = prepare_data(compose(db, "data.feature_solvers=[ipt,hubbard_i]").data)
    rep = data.rows.report
    assert rep.failed == {"ed": 0, "ipt": 3, "hubbard_i": 1}
    assert rep.not_converged["ipt"] == 2 and rep.kept == 200 - 6
    assert "failed 3" in "\n".join(rep.lines())
    kept = prepare_data(compose(db, "data.keep_not_converged=true").data).rows.report
    assert kept.kept == 200 - 3 and kept.kept_not_converged


def test_nan_loss_stops_with_a_clear_error(tiny_db, tmp_path):
    cfg = compose(tiny_db, "model=mlp_small", "trainer.max_epochs=2")
    data = prepare_data(cfg.data)
    poisoned = dataclasses.replace(data, targets=data.targets * np.nan)
    with pytest.raises(ValueError, match="training loss is nan"):
        fit_network(cfg, poisoned, tmp_path, log=lambda s: None)


# ------------------------------------------------------------------ the command line
def test_train_py_multirun_sweep(tiny_db, tmp_path):
    """``python train.py -m model.hidden=8,16`` runs one job per value into its own directory."""
    env = dict(os.environ, OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="1")
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", f"data.path={tiny_db}",
         "model.hidden=8,16", "trainer.fast_dev_run=true", "trainer.progress_bar=false",
         "metrics.plots=false", f"hydra.sweep.dir={tmp_path}"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hidden = sorted(json.loads((tmp_path / str(k) / "metrics.json").read_text())
                    ["config"]["model"]["hidden"] for k in (0, 1))
    assert hidden == [8, 16]
    bad = subprocess.run([sys.executable, str(REPO / "train.py"), f"data.path={tiny_db}",
                          "data.base=nca", f"hydra.run.dir={tmp_path / 'bad'}"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert bad.returncode == 2 and "solver 'nca' is not in database" in bad.stderr


def test_benchmark_script_prints_the_table(tiny_db, tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_train", REPO / "benchmarks" / "train.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.main([str(tiny_db), "--max-samples", "60", "--models", "krr", "--threads", "1",
                       "--out", str(tmp_path), "model.alphas=[1e-4]", "model.gammas=[0.3]"])
    out = capsys.readouterr().out
    assert "x best cheap" in out and "krr" in out
    assert rows[0]["splits"]["test"] > 0 and rows[0]["train_time_s"] >= 0
    assert json.loads((tmp_path / "summary.json").read_text())[0]["model"] == "krr"


@pytest.mark.slow
def test_every_model_beats_the_best_cheap_solver_on_a_small_database(tmp_path_factory):
    """200 samples (400 rows): the residual MLP, the ensemble and KRR, each with its default
    config (epochs capped at 150), beat IPT -- the best cheap solver here -- on the test split."""
    db = tmp_path_factory.mktemp("ml_db200") / "db200.h5"
    generate(GenerateConfig(out=str(db), n_samples=200, seed=3, sampling=TINY_SAMPLING,
                            target=SolverSpec("ed"),
                            cheap=(SolverSpec("hubbard_i"), SolverSpec("ipt")), n_l=64,
                            n_sigma=16, chunk_size=25, workers=2, progress=False))
    for model in ("resmlp", "ensemble", "krr"):
        cfg = compose(db, f"model={model}", "trainer.max_epochs=150", "metrics.plots=false")
        test = run_training(cfg, tmp_path_factory.mktemp(model), log=lambda s: None).metrics["test"]
        factor = test["improvement"]["improvement_over_best_cheap"]
        print(f"{model}: x{factor:.2f} over {test['best_cheap']}")
        assert test["best_cheap"] == "ipt" and factor > 2.0, (model, factor)
