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


def test_recipe_beyond_its_legendre_order_is_refused(tmp_path):
    """n_l = 120 holds G(tau) to 1e-8 up to beta ~ 119 for the default recipe's window
    (|e| <= 6.5); a recipe reaching beta = 1000 is refused before any work, naming both ways
    out (solvers.legendre.required_n_l / max_beta_for_n_l)."""
    from mldmft.database import DEFAULT_N_L
    sampling = dict(SMALL_SAMPLING, U=[0.5, 5.0], eps_d=[-3.0, 0.5], beta=[20.0, 1000.0])
    cfg = small_config(tmp_path / "x.h5", sampling=sampling, n_l=DEFAULT_N_L)
    with pytest.raises(ValueError, match=r"n_l=120 is too small for sampling.beta up to 1000 "
                                         r".* use n_l >= \d+ or beta <= 119"):
        cfg.validate()
    small_config(tmp_path / "y.h5", sampling=dict(sampling, beta=[20.0, 100.0]),
                 n_l=DEFAULT_N_L).validate()
    assert not (tmp_path / "x.h5").exists()


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
            "cheap_solvers=[ipt,hubbard_i]", "n_l=72", "n_sigma=8", "progress=false", *extra]


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
        generate(small_config(tmp_path / "l.h5", n_samples=1, n_l=70))
        merge_databases([out, tmp_path / "l.h5"], tmp_path / "bad.h5")


def test_merge_drops_duplicate_samples_and_keeps_twins_together(small_db, tmp_path, capsys):
    """`mldmft merge db.h5 db.h5` used to give every sample twice (one could sit in train and
    test); duplicates (same U, eps_d, beta, bath) are dropped a whole group at a time."""
    from mldmft.cli import main
    from mldmft.database.merge import merge_rows

    out, _ = small_db
    a = load_database(out)
    assert main(["merge", str(out), str(out), "--out", str(tmp_path / "m.h5")]) == 0
    assert "dropped 6 duplicate sample(s) (12 rows" in capsys.readouterr().out
    m = load_database(tmp_path / "m.h5")
    for name in a:
        assert np.array_equal(a[name], m[name], equal_nan=a[name].dtype.kind == "f"), name
    with open_database(tmp_path / "m.h5") as f:
        assert f.attrs["n_samples"] == 6 and f.attrs["duplicates_dropped"] == 6
    # a new chunk (active learning): a sample already present is dropped with its twin even when
    # it arrives as the twin of the stored one (twin row first, permuted bath, -0.0 vs 0.0)
    new = {k: v[[3, 2, 1, 0]].copy() for k, v in a.items()}  # group 1 swapped, then group 0
    new["group_id"] = np.array([0, 0, 1, 1])
    new["bath/eps"][0, :3] = new["bath/eps"][0, :3][::-1]
    new["bath/v"][0, :3] = new["bath/v"][0, :3][::-1]
    fresh = {k: v[:2].copy() for k, v in a.items()}
    fresh["params/U"] = fresh["params/U"] + 0.125  # another model: kept
    rows, report = merge_rows(a, new, fresh)
    assert report.groups_dropped == 2 and report.rows_kept == 14
    assert np.array_equal(rows["params/U"][-2:], fresh["params/U"])
    ids = rows["group_id"]
    assert len(np.unique(ids)) == 7 and np.array_equal(ids[0::2], ids[1::2])
    with pytest.raises(ValueError, match="would overwrite the input database"):
        from mldmft.database.merge import merge_databases
        merge_databases([out, tmp_path / "m.h5"], tmp_path / "m.h5")


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_second_run_to_the_same_output_is_refused_at_once(tmp_path):
    """Two runs to one output used to both compute everything; the second then failed with a
    misleading 'missing or unreadable chunk'. The lock names the run holding it."""
    import socket

    from mldmft.h5util import RunLockedError, run_lock

    out = tmp_path / "l.h5"
    cfg = small_config(out, n_samples=1, cheap=(SolverSpec("hubbard_i"),))
    with run_lock(out, command="first run"):
        with pytest.raises(RunLockedError, match=r"another run: pid \d+ .*first run"):
            generate(cfg)
    assert not (tmp_path / "l.h5.parts").exists()  # refused before any work
    # a lock held by a live process elsewhere on this host, or on another host: refused
    lock = tmp_path / "l.h5.lock"
    for pid, host in ((os.getppid(), socket.gethostname()), (_dead_pid(), "other-node")):
        lock.write_text(json.dumps({"pid": pid, "host": host, "command": "x"}))
        with pytest.raises(RunLockedError, match="delete .*l.h5.lock if that run is gone"):
            generate(cfg)
    # a stale lock (its process is dead) is taken over; the lock is released at the end
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    assert generate(cfg).n_rows == 2
    assert not lock.exists()


def test_rerun_cleans_the_litter_of_a_killed_run(tmp_path):
    """Temporary files of killed writers and a half-deleted parts folder survived reruns."""
    out = tmp_path / "c.h5"
    cfg = small_config(out, n_samples=2, chunk_size=1, cheap=(SolverSpec("hubbard_i"),))
    parts = tmp_path / "c.h5.parts"
    parts.mkdir()
    litter = [tmp_path / "c.h5.tmp424242", parts / "chunk_000001.h5.tmp77"]
    for p in litter:
        p.write_bytes(b"\x89HDF truncated")
    keep = tmp_path / "c.h5.tmpfoo"  # not our kind of name: left alone
    keep.write_text("x")
    summary = generate(cfg)
    assert summary.cleaned == 2 and not any(p.exists() for p in litter) and keep.exists()
    # killed after assembling but while deleting the parts: the rerun removes them
    parts.mkdir()
    (parts / "chunk_000000.h5").write_bytes(b"left over")
    again = generate(cfg)
    assert not parts.exists() and again.cleaned == 1 and again.already_complete


def test_progress_counts_samples_as_they_finish(tmp_path, capsys):
    """The bar advanced only when a whole chunk ended, and a rerun of a finished run showed an
    empty 0/N bar instead of saying it is complete."""
    from mldmft.cli import main

    out = tmp_path / "p.h5"
    ticks, starts = [], []
    cfg = small_config(out, n_samples=3, chunk_size=3, cheap=(SolverSpec("hubbard_i"),))
    generate(cfg, progress=ticks.append, on_start=lambda *a: starts.append(a))
    assert ticks == [1, 1, 1] and starts == [(0, 3)]
    ticks.clear()
    summary = generate(cfg, progress=ticks.append, on_start=lambda *a: starts.append(a))
    assert summary.already_complete and ticks == [] and len(starts) == 1
    assert "already complete" in "\n".join(summary.lines())
    # a process pool reports every sample too
    pool = small_config(tmp_path / "q.h5", n_samples=4, chunk_size=2, workers=2,
                        cheap=(SolverSpec("hubbard_i"),))
    generate(pool, progress=ticks.append)
    assert sum(ticks) == 4
    # the command line: a finished run says so, with no bar
    args = ["generate", f"out={tmp_path}/cli.h5", "n_samples=1", "seed=5", "sampling.n_bath=2",
            "cheap_solvers=[hubbard_i]", "n_sigma=4", "workers=1"]
    capsys.readouterr()
    assert main(args) == 0
    first = capsys.readouterr()
    assert "generating 1 samples" in first.out and "1/1" in first.err
    assert main(args) == 0
    second = capsys.readouterr()
    assert "already complete" in second.out and "generating" not in second.out
    assert "0/1" not in second.err and "sample/s" not in second.err
