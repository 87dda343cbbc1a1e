"""Active learning (``mldmft active``) on a tiny database: ED with 3 bath sites as the target,
IPT as the cheap solver, a 2-member ensemble, ED-DMFT with 3 refitted bath sites as the held-out
reference. Two retraining rounds grow the database without duplicate samples and write their
records; an interrupted run resumed gives the same records and the same final model as an
uninterrupted one; a run whose starting model is trusted stops at round 0 without ED or
training; bad configurations are refused in one line before any work."""

import json
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import mldmft.ml  # noqa: E402,F401  (registers "ml")
from mldmft.active import active_config_from_dict, run_active  # noqa: E402
from mldmft.active import run as active_run  # noqa: E402
from mldmft.active.records import COLUMNS, read_rounds_csv, read_rounds_h5  # noqa: E402
from mldmft.active.select import farthest_point_sampling  # noqa: E402
from mldmft.cli import _compose, main  # noqa: E402
from mldmft.database import GenerateConfig, SolverSpec, generate  # noqa: E402
from mldmft.database.merge import sample_keys  # noqa: E402
from mldmft.database.store import load_database  # noqa: E402
from mldmft.h5util import RunLockedError, run_lock  # noqa: E402
from mldmft.ml.checkpoint import load_checkpoint  # noqa: E402
from mldmft.ml.config import train_config_from_dict  # noqa: E402
from mldmft.ml.training import run_training  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from solvers import AndersonModel, hybridisation_iw, matsubara_freqs, solve  # noqa: E402

SAMPLING = dict(kind="bethe_random", n_bath=3, D=[0.8, 1.2], U=[1.0, 3.5], beta=[10.0, 20.0],
                eps_d_shift=[-0.3, 0.3], half_filling_fraction=0.5)
TRAIN = ["model=ensemble", "model.member=mlp", "model.n_members=2", "model.hidden=16",
         "model.depth=1", "model.batch_size=16", "model.lr_patience=null",
         "data.n_l_features=10", "trainer.max_epochs=4", "trainer.patience=5",
         "trainer.progress_bar=false", "metrics.plots=false"]


def train_config(db, *extra):
    return train_config_from_dict(OmegaConf.to_container(
        _compose("train", [f"data.path={db}", *TRAIN, *extra]), resolve=True))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """30 samples (ED Nb = 3, IPT) and a 2-member ensemble trained on them."""
    root = tmp_path_factory.mktemp("active")
    db = root / "db.h5"
    generate(GenerateConfig(out=str(db), n_samples=30, seed=11, sampling=SAMPLING,
                            target=SolverSpec("ed"), cheap=(SolverSpec("ipt"),), n_l=64,
                            n_sigma=16, chunk_size=10, workers=1, progress=False))
    res = run_training(train_config(db, "trainer.max_epochs=30"), root / "start",
                       log=lambda s: None)
    return {"db": db, "start": res.checkpoint, "root": root}


def active_dict(tiny, run_dir, **changes):
    c = {"run_dir": str(run_dir), "database": str(tiny["db"]), "checkpoint": str(tiny["start"]),
         "warm_start": True,
         "grid": {"beta": [15.0], "U": [1.5, 3.0], "density": [1.0], "direction": "both"},
         "loop": {"n_iw": 256, "tol": 1e-4, "max_iter": 25},
         "flag": {"spread_threshold": 1e-9},
         "selection": {"budget_per_round": 5, "budget": 100, "min_distance": 0.0,
                       "n_delta_l": 8, "n_bath": 3},
         "generation": {"seed": 3, "chunk_size": 3, "workers": 1},
         "reference": {"solver": "ed", "options": {"n_bath": 3},
                       "points": [{"beta": 15.0, "U": 2.0, "density": 1.0, "branch": "up"}]},
         "max_rounds": 2, "final": "last", "progress": False}
    for key, val in changes.items():
        node = c
        *parents, last = key.split(".")
        for p in parents:
            node = node[p]
        node[last] = val
    return c


def active_config(tiny, run_dir, **changes):
    return active_config_from_dict(active_dict(tiny, run_dir, **changes),
                                   train_config(tiny["db"]))


@pytest.fixture(scope="session")
def two_rounds(tiny):
    """An uninterrupted two-round run."""
    cfg = active_config(tiny, tiny["root"] / "run_a")
    return cfg, run_active(cfg, log=lambda s: None)


def _model_probe():
    wn = matsubara_freqs(15.0, 256)
    return AndersonModel(U=2.0, eps_d=-1.0, beta=15.0,
                         delta_iw=hybridisation_iw(wn, [-0.6, 0.0, 0.6], [0.3, 0.3, 0.3]))


def test_two_rounds_grow_the_database_without_duplicates(tiny, two_rounds):
    cfg, summary = two_rounds
    run_dir = Path(cfg.run_dir)
    rows = summary.rounds
    assert [r["round"] for r in rows] == [0, 1, 2]
    assert rows[0]["guard_rate"] == 1.0           # a spread above 1e-9 flags every iteration
    assert rows[0]["checkpoint"] == "start_model.pt"
    assert rows[2]["checkpoint"] == "round_001/train/model.pt"
    assert summary.final_checkpoint == run_dir / "round_001" / "train" / "model.pt"
    assert "max_rounds = 2" in summary.stop_reason
    n0 = int(np.unique(load_database(tiny["db"], ["group_id"])["group_id"]).size)
    for k in (0, 1):
        assert rows[k]["selected"] == 5 and rows[k]["samples_added"] == 5
        assert rows[k]["db_samples"] == n0 + 5 * (k + 1)
        assert np.isfinite(rows[k]["val_mse_g_tau"])
    assert rows[2]["selected"] == 0 and rows[2]["samples_added"] == 0
    # the final database: every sample once (with its twin), the new ones appended
    db = load_database(run_dir / "round_001" / "db.h5")
    keys = sample_keys(db)
    groups: dict = {}
    for key, g in zip(keys, db["group_id"]):
        groups.setdefault(key, set()).add(int(g))
    assert all(len(g) == 1 for g in groups.values())
    assert np.unique(db["group_id"]).size == n0 + 10
    assert set(db["params/n_bath"].tolist()) == {3}
    # the per-round files hold the numbers
    csv_rows = read_rounds_csv(run_dir / "rounds.csv")
    h5 = read_rounds_h5(run_dir / "rounds.h5")
    assert h5["stop_reason"] == summary.stop_reason
    assert h5["final_checkpoint"] == "round_001/train/model.pt"
    for name, kind in COLUMNS:
        mine = [r[name] for r in rows]
        assert [r[name] for r in csv_rows] == pytest.approx(mine, nan_ok=True) \
            if kind == "float" else [r[name] for r in csv_rows] == mine
        assert list(h5[name]) == pytest.approx(mine, nan_ok=True) if kind == "float" \
            else list(h5[name]) == mine
    assert h5["heldout_abs_dz"].shape == (3, 1)
    assert np.all(np.isfinite(h5["heldout_abs_dz"]))
    assert (run_dir / "rounds.png").stat().st_size > 5000
    assert (run_dir / "reference" / "point_00.h5").is_file()
    # the warm start: round 1's training began at round 0's model
    assert load_checkpoint(summary.final_checkpoint).meta["config"]["init_checkpoint"] == \
        str(run_dir / "round_000" / "train" / "model.pt")


def test_resumed_run_equals_an_uninterrupted_one(tiny, two_rounds, monkeypatch):
    cfg_a, summary_a = two_rounds
    run_dir = tiny["root"] / "run_b"
    # first stop: max_rounds = 1 (round 1 only evaluates)
    short = run_active(active_config(tiny, run_dir, max_rounds=1), log=lambda s: None)
    assert "max_rounds = 1" in short.stop_reason and len(short.rounds) == 2
    # then a crash in round 1's merge, with a temporary file left behind
    (run_dir / "round_001").mkdir(exist_ok=True)
    litter = run_dir / "round_001" / "stages.json.tmp99999"
    litter.write_text("{")
    real_merge = active_run._stage_merge

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(active_run, "_stage_merge", crash)
    with pytest.raises(RuntimeError, match="killed"):
        run_active(active_config(tiny, run_dir), log=lambda s: None)
    monkeypatch.setattr(active_run, "_stage_merge", real_merge)
    summary_b = run_active(active_config(tiny, run_dir), log=lambda s: None)
    assert not litter.exists()
    a = (Path(cfg_a.run_dir) / "rounds.csv").read_text()
    b = (run_dir / "rounds.csv").read_text()
    assert a == b
    model = _model_probe()
    ga = solve("ml", model, checkpoint=str(summary_a.final_checkpoint), n_iw=256).g_l
    gb = solve("ml", model, checkpoint=str(summary_b.final_checkpoint), n_iw=256).g_l
    np.testing.assert_array_equal(ga, gb)


def test_a_changed_setting_and_a_second_run_are_refused(tiny, two_rounds):
    cfg, _ = two_rounds
    other = active_config(tiny, cfg.run_dir, **{"flag.spread_threshold": 1e-8})
    with pytest.raises(ValueError, match=r"another active-learning run \(flag.spread_threshold"):
        run_active(other, log=lambda s: None)
    with run_lock(Path(cfg.run_dir) / "run"):        # a live run holds the directory
        with pytest.raises(RunLockedError, match="being written by another run"):
            run_active(cfg, log=lambda s: None)


def test_install_copies_the_final_model(tiny, two_rounds, tmp_path, monkeypatch):
    cfg, summary = two_rounds
    target = tmp_path / "pretrained" / "phase_diagram.pt"
    monkeypatch.setattr(mldmft.ml.shipped, "PRETRAINED_DIR", tmp_path / "pretrained")
    before = (Path(cfg.run_dir) / "rounds.csv").read_text()
    again = run_active(replace(cfg, install=True), log=lambda s: None)   # finished: resumes
    assert (Path(cfg.run_dir) / "rounds.csv").read_text() == before
    assert again.final_checkpoint == summary.final_checkpoint
    assert again.installed == target
    assert target.read_bytes() == summary.final_checkpoint.read_bytes()
    assert (target.parent / "phase_diagram_metrics.json").is_file()


def test_a_trusted_model_stops_at_round_0_without_ed_or_training(tiny, capsys):
    run_dir = tiny["root"] / "run_stop"
    overrides = [f"run_dir={run_dir}", f"database={tiny['db']}", f"checkpoint={tiny['start']}",
                 "train.config=train",
                 "train.overrides=[" + ",".join(f'"{o}"' for o in TRAIN) + "]",
                 "grid.beta=[15.0]", "grid.U_values=[2.0]", "grid.density=[1.0]",
                 "grid.direction=up",
                 "loop.n_iw=256", "loop.tol=1e-4", "loop.max_iter=25",
                 "flag.spread_threshold=1e3", "flag.reasons=[spread]", "reference.points=[]",
                 "progress=false"]
    assert main(["active", *overrides]) == 0
    out = capsys.readouterr().out
    assert "below stop_guard_rate 1.00%: the starting model stays, no ED or training" in out
    assert f"final      {run_dir / 'start_model.pt'}" in out
    assert sorted(p.name for p in (run_dir / "round_000").iterdir()) == ["stages.json",
                                                                          "sweeps"]
    rows = read_rounds_csv(run_dir / "rounds.csv")
    assert len(rows) == 1 and rows[0]["guard_rate"] == 0.0 and rows[0]["iterations"] > 0


@pytest.mark.parametrize("override, fragment", [
    ("selection.budgett=3", "did you mean 'selection.budget'"),
    ("max_rounds=1.5", "max_rounds"),
    ("flag.reasons=[spread,loud]", "flag.reasons: choose from"),
    ("grid.density=[2.5]", "grid.density must lie in (0, 2)"),
    ("grid.U_range.step=-1", "grid.U_range: need step > 0"),
    ("train.config=nope", "no training config configs/nope.yaml"),
    ("database=/nonexistent.h5", "database: no such file"),
])
def test_bad_config_is_one_line_before_any_work(override, fragment, capsys, tmp_path):
    assert main(["active", f"run_dir={tmp_path / 'run'}", override]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_grid_outside_the_model_domain_and_a_foreign_warm_start_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="grid: outside the domain.*beta = 50"):
        run_active(active_config(tiny, tmp_path / "r", **{"grid.beta": [50.0]}))
    other = active_config_from_dict(active_dict(tiny, tmp_path / "r"),
                                    train_config(tiny["db"], "model.hidden=17"))
    with pytest.raises(ValueError, match="model.hidden"):
        run_active(other)
    # the sweeps decide symmetrisation by the filling; a loop setting they would ignore is refused
    with pytest.raises(ValueError, match="loop.symmetrise: the sweeps symmetrise at half filling"):
        active_config(tiny, tmp_path / "r", **{"loop.symmetrise": True})
    assert not (tmp_path / "r").exists()


def test_final_model_rule():
    from mldmft.active.run import final_model

    run_dir = Path("/runs/a")
    rows = [{"checkpoint": "start_model.pt", "heldout_max_abs_dz": 0.022},
            {"checkpoint": "round_000/train/model.pt", "heldout_max_abs_dz": 0.0074},
            {"checkpoint": "round_001/train/model.pt", "heldout_max_abs_dz": 0.0028},
            {"checkpoint": "round_002/train/model.pt", "heldout_max_abs_dz": 0.020}]
    last = run_dir / "round_002/train/model.pt"
    said = []
    assert final_model("best_heldout", run_dir, rows, last, said.append) == \
        run_dir / "round_001/train/model.pt"
    assert "model of round 2" in said[0] and "(the last model's: 0.0200)" in said[0]
    assert final_model("last", run_dir, rows, last) == last
    rows[3]["heldout_max_abs_dz"] = 0.0028                      # a tie: the later model
    assert final_model("best_heldout", run_dir, rows, last) == last
    nan = [dict(r, heldout_max_abs_dz=float("nan")) for r in rows]  # no held-out points
    assert final_model("best_heldout", run_dir, nan, last) == last


def test_a_finished_run_can_end_with_its_best_heldout_model(tiny, two_rounds):
    """``final`` may change on a rerun of a finished run: nothing is recomputed, the records
    name the chosen model."""
    cfg, summary = two_rounds
    rows, run_dir = summary.rounds, Path(cfg.run_dir)
    dz = [r["heldout_max_abs_dz"] for r in rows]
    best = max(k for k in range(len(dz)) if dz[k] == min(dz))
    try:
        again = run_active(replace(cfg, final="best_heldout"), log=lambda s: None)
        assert json.dumps(again.rounds, sort_keys=True) == json.dumps(rows, sort_keys=True)
        assert again.final_checkpoint == run_dir / rows[best]["checkpoint"]
        assert read_rounds_h5(run_dir / "rounds.h5")["final_checkpoint"] == \
            rows[best]["checkpoint"]
    finally:
        run_active(cfg, log=lambda s: None)                    # the fixture's records back
    with pytest.raises(ValueError, match="final must be one of best_heldout, last"):
        replace(cfg, final="best")


def test_farthest_point_sampling_skips_near_duplicates_and_refused_picks():
    x = np.array([[0.0], [0.01], [0.5], [1.0], [3.0]])
    ref = np.array([[3.0]])
    # farthest from ref first, then farthest from everything chosen; 0.01 is a near-duplicate
    # of 0, and nothing is within 0.1 of ref
    assert farthest_point_sampling(x, ref, 10, 0.1) == [0, 3, 2]
    assert farthest_point_sampling(x, ref, 1, 0.1) == [0]
    assert farthest_point_sampling(x, ref, 10, 0.1, accept=lambda i: i != 0)[0] == 1


def test_guard_reasons_and_the_probe_outside_the_domain(tiny):
    from mldmft.active.evaluate import NetworkProbe
    from mldmft.dmft.steps import guard_reasons

    res = solve("ipt", _model_probe(), n_iw=256)
    assert guard_reasons(res, 1e-3) == []
    res.info.update(spread=np.array([0.0, 2e-3]), causal_step=0.5, unlike_training=True)
    assert guard_reasons(res, 1e-3) == ["spread", "acausal", "unlike_training"]
    assert guard_reasons(res, 1e-2) == ["acausal", "unlike_training"]
    probe = NetworkProbe(tiny["start"], 256, 1e-9)
    inside = probe(_model_probe())
    outside = probe(replace(_model_probe(), U=9.0, eps_d=-4.5))   # U beyond the training range
    assert (probe.iterations, probe.outside_domain, len(probe.flagged)) == (2, 1, 1)
    assert inside.info["spread"] is not None and outside.info["extrapolated"]
