"""AIM database generation: sampling recipes, particle-hole augmentation, HDF5 schema, resume after
SIGKILL, local pool vs Dask, and refusal of bad configurations."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mldmft.database import (GenerateConfig, SolverSpec, generate, load_database, make_recipe,
                             open_database, solve_sample)
from mldmft.database.records import RecordLayout
from mldmft.h5schema import STATUS_FAILED, STATUS_NOT_CONVERGED, STATUS_OK, SchemaError
from solvers import g_tau_from_l, solve
from solvers import registry as solver_registry

REPO = Path(__file__).resolve().parents[1]

SMALL_SAMPLING = dict(kind="bethe_random", n_bath=3, D=[0.5, 1.0], U=[0.5, 4.0],
                      eps_d=[-2.0, 0.5], beta=[10.0, 30.0])


def small_config(out, **kw) -> GenerateConfig:
    base = dict(out=str(out), n_samples=6, seed=7, sampling=SMALL_SAMPLING,
                target=SolverSpec("ed"),
                cheap=(SolverSpec("ipt"), SolverSpec("hubbard_i"), SolverSpec("nca"),
                       SolverSpec("ed2")),
                n_l=60, n_sigma=16, chunk_size=2, workers=1, progress=False)
    base.update(kw)
    return GenerateConfig(**base)


# ---------------------------------------------------------------- sampling
def test_bethe_recipe_constraints_and_reproducibility():
    recipe = make_recipe(dict(SMALL_SAMPLING, n_bath=8))
    for i in range(20):
        s = recipe.draw(3, i)
        m = s.model
        assert np.sum(m.bath_v ** 2) == pytest.approx(s.D ** 2 / 4, rel=1e-12)
        assert (m.bath_eps.max() - m.bath_eps.min()) / (2 * s.D) == pytest.approx(1.0, rel=1e-12)
        assert 10.0 <= m.beta <= 30.0 and 0.5 <= s.D <= 1.0
    # sample i does not depend on which other samples were drawn, nor in which order
    a = recipe.draw(3, 17).model
    b = [recipe.draw(3, i).model for i in (17, 2, 5)][0]
    assert a.U == b.U and np.array_equal(a.bath_eps, b.bath_eps)
    assert recipe.draw(4, 17).model.U != a.U


def test_half_filling_recipe_is_particle_hole_symmetric():
    recipe = make_recipe(dict(kind="bethe_random", n_bath=5, D=1.0, U=[1, 3], beta=50.0,
                              half_filling=True))
    for i in range(5):
        assert recipe.draw(0, i).model.is_particle_hole_symmetric(atol=1e-12)


def test_bath_list_recipe(tmp_path):
    f = tmp_path / "baths.yaml"
    f.write_text("- {bath_eps: [-0.5, 0.5], bath_v: [0.3, 0.3]}\n"
                 "- {bath_eps: [-0.2, 0.1, 0.7], bath_v: [0.2, 0.3, 0.1], U: 2.0, beta: 20}\n")
    recipe = make_recipe(dict(kind="bath_list", path=str(f), U=[1.0, 2.0], beta=30.0,
                              half_filling=True))
    assert recipe.max_bath == 3
    m1 = recipe.draw(0, 1).model
    assert m1.U == 2.0 and m1.beta == 20.0 and m1.eps_d == -1.0
    assert recipe.draw(0, 0).model.beta == 30.0


@pytest.mark.parametrize("sampling, field", [
    (dict(SMALL_SAMPLING, U=[3.0, 1.0]), "sampling.U"),
    (dict(SMALL_SAMPLING, beta=[-1.0, 5.0]), "sampling.beta"),
    (dict(SMALL_SAMPLING, D={"choice": []}), "sampling.D"),
    (dict(SMALL_SAMPLING, n_bath=9), "sampling.n_bath"),
    (dict(SMALL_SAMPLING, kind="nope"), "sampling.kind"),
    (dict(SMALL_SAMPLING, colour=3), "colour"),
])
def test_bad_sampling_refused_before_work(tmp_path, sampling, field):
    with pytest.raises(ValueError, match=field):
        generate(small_config(tmp_path / "x.h5", sampling=sampling))
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "x.h5.parts").exists()


def test_unknown_solver_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown solver 'magic'"):
        generate(small_config(tmp_path / "x.h5", cheap=(SolverSpec("magic"),)))


# ---------------------------------------------------------------- augmentation
def test_particle_hole_twin_equals_solving_the_mapped_model():
    recipe = make_recipe(SMALL_SAMPLING)
    solvers_ = (SolverSpec("ed"), SolverSpec("ipt"), SolverSpec("hubbard_i"), SolverSpec("nca"))
    layout = RecordLayout(n_l=50, n_sigma=16, n_bath_max=3, solvers=solvers_)
    sample = recipe.draw(11, 4)
    rec = solve_sample(sample, layout)
    assert rec["augmented"].tolist() == [False, True]
    assert rec["group_id"][0] == rec["group_id"][1]
    ph = sample.model.particle_hole_transformed()
    assert rec["params/eps_d"][1] == pytest.approx(ph.eps_d)
    np.testing.assert_allclose(rec["bath/eps"][1], np.sort(ph.bath_eps))
    for spec in solvers_:
        direct = solve(spec.name, ph, n_l=50)
        p = f"solvers/{spec.name}/"
        np.testing.assert_allclose(rec[p + "g_l"][1], direct.g_l, atol=1e-7, err_msg=spec.name)
        np.testing.assert_allclose(rec[p + "sigma_iw"][1], direct.sigma_iw[:16], atol=1e-6,
                                   err_msg=spec.name)
        assert rec[p + "density"][1] == pytest.approx(direct.density, abs=1e-7)
        if direct.double_occupancy is not None:
            assert rec[p + "double_occupancy"][1] == pytest.approx(direct.double_occupancy,
                                                                   abs=1e-7)


def test_default_legendre_order_reconstructs_g_tau():
    """DEFAULT_N_L = 120 keeps the G(tau) reconstruction error below 1e-8 at beta = 100 at the
    corners of the default recipe (U = 5, eps_d = -3 and 0.5, D = 1)."""
    from mldmft.database import DEFAULT_N_L

    for eps_d in (-3.0, 0.5, -2.5):
        recipe = make_recipe(dict(kind="bethe_random", n_bath=4, D=1.0, U=5.0, eps_d=eps_d,
                                  beta=100.0))
        m = recipe.draw(0, 0).model
        res = solve("ed", m, n_l=DEFAULT_N_L, n_tau=1001)
        err = np.max(np.abs(g_tau_from_l(res.g_l, m.beta, res.tau) - res.g_tau))
        assert err < 1e-8, (eps_d, err)


# ---------------------------------------------------------------- files, schema, failures
@pytest.fixture(scope="module")
def small_db(tmp_path_factory):
    out = tmp_path_factory.mktemp("db") / "small.h5"
    summary = generate(small_config(out))
    return out, summary


def test_generated_file_schema_and_contents(small_db):
    out, summary = small_db
    assert summary.n_rows == 12 and summary.chunks_computed == 3
    with open_database(out) as f:
        cfg = json.loads(f.attrs["config"])
        assert cfg["n_samples"] == 6 and f.attrs["target"] == "ed"
        assert f["solvers/ed/g_l"].chunks is not None
        assert f.attrs["git_revision"]
    data = load_database(out)
    assert data["solvers/ed/g_l"].shape == (12, 60)
    assert data["solvers/ed/g_l"].dtype == np.float64
    assert np.array_equal(data["group_id"][0::2], data["group_id"][1::2])
    assert np.all(data["solvers/ed/status"] == STATUS_OK)
    # exact labels: the ED sum rule holds on every stored row
    from solvers import sum_rule_from_l
    for row, beta in zip(data["solvers/ed/g_l"], data["params/beta"]):
        assert sum_rule_from_l(row, beta) == pytest.approx(-1.0, abs=1e-8)


def test_rerun_is_a_no_op_and_other_config_is_refused(small_db):
    out, _ = small_db
    again = generate(small_config(out))
    assert again.chunks_computed == 0
    with pytest.raises(ValueError, match="different config"):
        generate(small_config(out, seed=8))


def test_truncated_or_foreign_file_is_refused(small_db, tmp_path):
    out, _ = small_db
    cut = tmp_path / "cut.h5"
    cut.write_bytes(out.read_bytes()[:4000])
    with pytest.raises(SchemaError, match="cut.h5"):
        open_database(cut)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(SchemaError, match="not a mldmft.aim_database"):
        open_database(other)


def _fails_with_a_bath(model, *, n_l: int = 80, n_iw: int = 1024):
    """A solver that works on the one-site probe of ``check_options`` but fails on the recipe's
    three-site baths: a failure that only shows on the samples."""
    if model.n_bath > 1:
        raise FloatingPointError("diverged on this bath")
    return solve("hubbard_i", model, n_l=n_l, n_iw=n_iw)


def test_failures_are_recorded_and_the_run_goes_on(tmp_path, monkeypatch):
    monkeypatch.setitem(solver_registry._REGISTRY, "fails_with_a_bath", _fails_with_a_bath)
    cfg = small_config(tmp_path / "f.h5", n_samples=2,
                       cheap=(SolverSpec("nca", {"method": "iterate", "max_iter": 1}),
                              SolverSpec("fails_with_a_bath")))
    summary = generate(cfg)
    data = load_database(tmp_path / "f.h5")
    assert np.all(data["solvers/fails_with_a_bath/status"] == STATUS_FAILED)
    assert "diverged on this bath" in data["solvers/fails_with_a_bath/error"][0]
    assert np.all(np.isnan(data["solvers/fails_with_a_bath/g_l"]))
    assert np.all(data["solvers/nca/status"] == STATUS_NOT_CONVERGED)
    assert np.all(data["solvers/ed/status"] == STATUS_OK)
    assert summary.failed["fails_with_a_bath"] == 4 and summary.not_converged["nca"] == 4


@pytest.mark.parametrize("changes, fragment", [
    (dict(target=SolverSpec("ed", {"cutof": 1e-6})), "target.options: solver 'ed' has no option "
                                                     "'cutof' (did you mean 'cutoff'?)"),
    (dict(target=SolverSpec("ed", {"n_iw": "abc"})), "option 'n_iw' must be an integer"),
    (dict(target=SolverSpec("ed", {"n_iw": 0})), "n_iw and n_l must be >= 1"),
    (dict(cheap=(SolverSpec("ipt", {"mixing": 2.0}),)), "solver_options.ipt: solver 'ipt': mixing"),
    (dict(cheap=(SolverSpec("ed2", {"cutoff": 2.0}),)), "cutoff must lie in (0, 1)"),
    (dict(n_sigma=100000), "n_sigma = 100000 exceeds the 1024 Matsubara frequencies"),
    (dict(n_samples=2.7), "n_samples must be an integer, got 2.7"),
    (dict(augment="false"), "augment must be true or false"),
    (dict(sampling=dict(SMALL_SAMPLING, half_filling="false")), "sampling.half_filling must be"),
])
def test_bad_solver_options_and_types_are_refused_before_work(tmp_path, changes, fragment):
    cfg = small_config(tmp_path / "bad.h5", **changes)
    with pytest.raises(ValueError) as err:
        generate(cfg)
    assert fragment in str(err.value)
    assert not (tmp_path / "bad.h5").exists() and not (tmp_path / "bad.h5.parts").exists()


# ---------------------------------------------------------------- crash safety and backends
def _cli(out: Path, n: int, extra=()):
    return [sys.executable, "-m", "mldmft.cli", "generate", f"out={out}", f"n_samples={n}",
            "seed=5", "sampling.n_bath=4", "sampling.beta=[10,40]", "chunk_size=1",
            "cheap_solvers=[ipt,hubbard_i]", "n_l=40", "n_sigma=8", "progress=false", *extra]


def test_sigkill_then_resume_gives_identical_file(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ref = tmp_path / "ref.h5"
    subprocess.run(_cli(ref, 12, ["workers=1"]), check=True, cwd=tmp_path, env=env,
                   capture_output=True)
    out = tmp_path / "killed.h5"
    proc = subprocess.Popen(_cli(out, 12, ["workers=2"]), cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    parts = tmp_path / "killed.h5.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("chunk_*.h5"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("chunk_*.h5")))
    assert 0 < done_before < 12 and not out.exists()
    res = subprocess.run(_cli(out, 12, ["workers=2"]), cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"{12 - done_before} computed, {done_before} resumed" in res.stdout
    a, b = load_database(ref), load_database(out)
    assert set(a) == set(b)
    for name in a:
        if name.endswith("wall_time"):
            continue
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name


@pytest.mark.filterwarnings("ignore")
def test_dask_local_cluster_writes_the_same_data(tmp_path, small_db):
    out, _ = small_db
    dask_out = tmp_path / "dask.h5"
    generate(small_config(dask_out, backend="dask", dask_workers=2))
    a, b = load_database(out), load_database(dask_out)
    for name in a:
        if name.endswith("wall_time"):
            continue
        assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name


def test_cli_generate_and_inspect(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "cli.h5"
    subprocess.run(_cli(out, 2, ["workers=1"]), check=True, cwd=tmp_path, env=env,
                   capture_output=True)
    res = subprocess.run([sys.executable, "-m", "mldmft.cli", "inspect", str(out)], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "error against ed" in res.stdout and "ipt" in res.stdout
    assert (tmp_path / "cli_params.png").exists() and (tmp_path / "cli_gtau.png").exists()
    bad = subprocess.run([sys.executable, "-m", "mldmft.cli", "generate", f"out={tmp_path}/b.h5",
                          "sampling.n_bath=9"], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "n_bath" in bad.stderr


def test_partial_run_can_be_extended(tmp_path):
    """Sample i does not depend on n_samples or the chunking: a partial run resumes with more
    samples and another chunk size, and equals a fresh run."""
    out = tmp_path / "grow.h5"
    cfg = small_config(out, n_samples=3, chunk_size=1,
                       cheap=(SolverSpec("hubbard_i"),))
    parts = tmp_path / "grow.h5.parts"
    # simulate an interrupted run: compute chunks by hand, no assembly
    from mldmft.database.generate import _compute_chunk
    from mldmft.database.store import write_chunk
    parts.mkdir()
    from mldmft.database.store import config_digest
    (parts / "config.json").write_text(config_digest(cfg.to_dict()))
    for k in range(3):
        write_chunk(parts, k, _compute_chunk(cfg.to_dict(), [k]))
    bigger = small_config(out, n_samples=5, chunk_size=1, cheap=(SolverSpec("hubbard_i"),))
    summary = generate(bigger)
    assert summary.chunks_reused == 3 and summary.chunks_computed == 2
    fresh = tmp_path / "fresh.h5"
    generate(small_config(fresh, n_samples=5, chunk_size=2, cheap=(SolverSpec("hubbard_i"),)))
    a, b = load_database(out), load_database(fresh)
    for name in a:
        if not name.endswith("wall_time"):
            assert np.array_equal(a[name], b[name], equal_nan=a[name].dtype.kind == "f"), name
    with pytest.raises(ValueError, match="n_samples=5"):
        generate(small_config(out, n_samples=6, chunk_size=1, cheap=(SolverSpec("hubbard_i"),)))


def test_merge_keeps_groups_unique(small_db, tmp_path):
    from mldmft.database.merge import merge_databases

    out, _ = small_db
    other = tmp_path / "other.h5"
    generate(small_config(other, seed=99, n_samples=2))
    merged = merge_databases([out, other], tmp_path / "merged.h5")
    a, b, m = load_database(out), load_database(other), load_database(merged)
    assert len(m["group_id"]) == len(a["group_id"]) + len(b["group_id"])
    # twins still share a group, different samples never do
    assert len(np.unique(m["group_id"])) == len(m["group_id"]) // 2
    np.testing.assert_array_equal(m["solvers/ed/g_l"][len(a["group_id"]):], b["solvers/ed/g_l"])
    with pytest.raises(ValueError, match="n_l"):
        generate(small_config(tmp_path / "l.h5", n_samples=1, n_l=40))
        merge_databases([out, tmp_path / "l.h5"], tmp_path / "bad.h5")
