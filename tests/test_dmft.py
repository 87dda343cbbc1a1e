"""Bethe-lattice DMFT: exact limits, the IPT Mott hysteresis, ED-DMFT reference, flags, resume."""

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mldmft.dmft import BetheLattice, DMFTOptions, load_sweep, sweep
from solvers import SolverResult, bethe_g_iw, matsubara_freqs, solve


def test_u_zero_converges_to_the_semicircle():
    pts = sweep("ipt", 50.0, [0.0], "up", options=DMFTOptions(n_iw=512, tol=1e-10))
    g = bethe_g_iw(matsubara_freqs(50.0, 512))
    assert pts[0].converged
    np.testing.assert_allclose(pts[0].g_iw, g, atol=1e-9)
    assert pts[0].Z == pytest.approx(1.0, abs=1e-9)
    assert pts[0].density == pytest.approx(1.0, abs=1e-9)


def test_kinetic_energy_of_the_free_band():
    """T -> 0, U = 0: E_kin = 2 int_{-D}^0 e rho(e) de = -4D/(3 pi) (both spins)."""
    lat = BetheLattice(1.0)
    beta = 400.0
    g = lat.g0_iw(beta, 8192)
    assert lat.kinetic_energy(g, beta) == pytest.approx(-4 / (3 * np.pi), abs=2e-5)


@pytest.fixture(scope="module")
def ipt_hysteresis():
    U = [1.0, 2.0] + [round(u, 2) for u in np.arange(2.4, 3.51, 0.1)]
    return sweep("ipt", 100.0, U, "both", options=DMFTOptions(tol=1e-7, max_iter=500))


def test_ipt_mott_hysteresis_beta_100(ipt_hysteresis):
    """IPT-DMFT at beta = 100 (Georges, Kotliar, Krauth, Rozenberg, RMP 68, 13 (1996); Zhang,
    Rozenberg, Kotliar, PRL 70, 1666 (1993)): the metallic branch survives to U ~ 3.2-3.3 D and
    the insulating branch down to U ~ 2.6 D; Z(U=1) ~ 0.74, Z(U=2) ~ 0.35."""
    up = {p.U: p for p in ipt_hysteresis if p.branch == "up"}
    down = {p.U: p for p in ipt_hysteresis if p.branch == "down"}
    assert up[1.0].Z == pytest.approx(0.74, abs=0.01)
    assert up[2.0].Z == pytest.approx(0.35, abs=0.01)
    metal = lambda p: p.converged and p.g_beta_half > 0.5  # noqa: E731
    insulator = lambda p: p.converged and p.g_beta_half < 0.05  # noqa: E731
    uc2 = max(u for u, p in up.items() if metal(p))
    uc1 = min(u for u, p in down.items() if insulator(p))
    assert 3.1 <= uc2 <= 3.35, uc2
    assert 2.5 <= uc1 <= 2.7, uc1
    # coexistence: at U = 2.8 both solutions exist
    assert metal(up[2.8]) and insulator(down[2.8])
    # on the metallic branch Z decreases with U; the insulator has no weight at the Fermi level
    zs = [up[u].Z for u in sorted(up) if metal(up[u])]
    assert all(a > b for a, b in zip(zs, zs[1:]))
    assert all(p.g_beta_half < 0.01 for u, p in down.items() if u >= 2.8)


def test_ed_dmft_reference_point():
    """ED-DMFT, Nb = 8, beta = 100, U = 2: Im Sigma(i w_0) = -0.0877 (CT-HYB and the Fortran
    Lanczos ED agree on this value). Required: within 2 %."""
    pts = sweep("ed", 100.0, [2.0], "up", options=DMFTOptions(tol=1e-5, max_iter=40))
    assert pts[0].converged
    assert pts[0].sigma_iw[0].imag == pytest.approx(-0.0877, rel=0.02)


def test_non_convergence_is_flagged_everywhere(tmp_path):
    out = tmp_path / "nc.h5"
    pts = sweep("ipt", 100.0, [3.0], "up", options=DMFTOptions(max_iter=2, tol=1e-12), out=out)
    assert not pts[0].converged
    assert not load_sweep(out)[0].converged
    with open(out.with_suffix(".csv")) as fh:
        assert next(csv.DictReader(fh))["converged"] == "False"


def test_interrupted_sweep_resumes(tmp_path):
    out = tmp_path / "r.h5"
    calls = {"n": 0}

    def flaky(model, **opts) -> SolverResult:
        calls["n"] += 1
        if calls["n"] == 30:
            raise KeyboardInterrupt
        return solve("ipt", model, **opts)

    flaky.__name__ = "ipt_flaky"
    U = [1.0, 1.5, 2.0, 2.5]
    with pytest.raises(KeyboardInterrupt):
        sweep(flaky, 50.0, U, "up", out=out, solver_options={"n_iw": 1024})
    partial = load_sweep(out)
    assert 0 < len(partial) < 4
    done = sweep(flaky, 50.0, U, "up", out=out, solver_options={"n_iw": 1024})
    ref = sweep("ipt", 50.0, U, "up")
    assert [p.U for p in done] == U
    for a, b in zip(done, ref):
        assert a.Z == pytest.approx(b.Z, abs=1e-6)
    with pytest.raises(ValueError, match="another sweep.*beta: file 50.0, now 60.0"):
        sweep(flaky, 60.0, U, "up", out=out, solver_options={"n_iw": 1024})


def test_resume_only_the_same_plan(tmp_path):
    """A rerun resumes only the sweep stored in the file: other U values, another direction or
    other loop settings used to return the stored points silently; now a one-line error names
    the setting that differs."""
    out = tmp_path / "a.h5"
    first = sweep("ipt", 20.0, [1.0, 2.0, 3.0], out=out, options=DMFTOptions(n_iw=256))
    # same plan: read back
    again = sweep("ipt", 20, [3.0, 1.0, 2.0], out=out, options=DMFTOptions(n_iw=256))
    assert [p.wall_time for p in again] == [p.wall_time for p in first]
    for change, name in ((dict(U_values=[1.5, 2.5]), "U_values"),
                         (dict(direction="down"), "direction"),
                         (dict(direction="both"), "direction"),
                         (dict(start="seeded"), "start"),
                         (dict(options=DMFTOptions(n_iw=256, mixing=0.3)), "mixing"),
                         (dict(options=DMFTOptions(n_iw=256, stall=10)), "stall"),
                         (dict(options=DMFTOptions(n_iw=256, history=3)), "history"),
                         (dict(mu=0.8), "mu"),
                         (dict(solver_options={"n_iw": 512}), "solver_options")):
        kw = dict(solver="ipt", beta=20.0, U_values=[1.0, 2.0, 3.0], out=out,
                  options=DMFTOptions(n_iw=256))
        kw.update(change)
        with pytest.raises(ValueError, match=f"holds another sweep, not resumed \\({name}: file"
                           ) as err:
            sweep(**kw)
        assert len(str(err.value).splitlines()) == 1
    # metadata (e.g. the resolved CLI config with progress/plot flags) is not part of the plan
    assert len(sweep("ipt", 20.0, [1, 2, 3], out=out, options=DMFTOptions(n_iw=256),
                     metadata={"x": 1})) == 3


def test_sweep_hands_every_loop_option_to_the_loop(monkeypatch):
    """The sweep's ``options`` (``history``, ``stall``, ...) reach every problem's loop
    (:class:`~mldmft.dmft.loop.LoopRun` in the engine)."""
    engine = sys.modules["mldmft.dmft.engine"]
    seen = []
    real = engine.LoopRun

    def spy(*args, **kwargs):
        seen.append(args[5])                      # the DMFTOptions
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "LoopRun", spy)
    sweep("ipt", 20.0, [1.0], options=DMFTOptions(n_iw=256, history=3, stall=7, max_iter=40,
                                                  tol_density=1e-3))
    assert [(o.history, o.stall, o.max_iter, o.n_iw, o.tol_density) for o in seen] == \
        [(3, 7, 40, 256, 1e-3)]


def test_a_sweep_is_not_resumed_with_another_model_behind_the_same_solver_name(tmp_path):
    """What besides its options decides a solver's results (the registry's ``identity`` hook;
    for the ``ml`` solver the SHA-256 of its model file) is part of the plan: replacing the
    model behind a name (as installing a retrained default network does) makes the stored
    sweep another sweep."""
    import hashlib

    import mldmft.ml  # noqa: F401  (registers "ml")
    from mldmft.dmft import PlanMismatchError
    from mldmft.ml.inference import DEFAULT_CHECKPOINT
    from solvers import register_solver, solver_identity

    assert solver_identity("ipt") == {}
    shipped = hashlib.sha256(DEFAULT_CHECKPOINT.read_bytes()).hexdigest()
    assert solver_identity("ml") == {"checkpoint_sha256": shipped}
    other = tmp_path / "other.pt"
    other.write_bytes(DEFAULT_CHECKPOINT.read_bytes()[:-1] + b"x")
    assert solver_identity("ml", {"checkpoint": str(other)})["checkpoint_sha256"] != shipped

    version = {"v": 1}

    def ipt_with_a_model(model, **options):
        return solve("ipt", model, **options)

    from solvers import registry

    register_solver("ipt_with_a_model", ipt_with_a_model, replace=True,
                    identity=lambda options: dict(version))
    try:
        out = tmp_path / "s.h5"
        first = sweep("ipt_with_a_model", 20.0, [1.0], out=out, options=DMFTOptions(n_iw=256))
        assert sweep("ipt_with_a_model", 20.0, [1.0], out=out,
                     options=DMFTOptions(n_iw=256))[0].wall_time == first[0].wall_time                                    # same model: read back
        version["v"] = 2
        with pytest.raises(PlanMismatchError,
                           match=r'solver_identity: file \{"v": 1\}, now \{"v": 2\}'):
            sweep("ipt_with_a_model", 20.0, [1.0], out=out, options=DMFTOptions(n_iw=256))
    finally:                                  # the registry is process-wide: leave it as found
        for table in (registry._REGISTRY, registry._CHECKS, registry._IDENTITIES):
            table.pop("ipt_with_a_model", None)


def test_sweep_output_is_locked_and_litter_is_removed(tmp_path):
    from mldmft.h5util import RunLockedError

    out = tmp_path / "s.h5"
    litter = tmp_path / "s.h5.tmp999999999"
    litter.write_bytes(b"half a file")
    (tmp_path / "s.h5.lock").write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "command": "another sweep"}))
    with pytest.raises(RunLockedError, match="another run.*another sweep"):
        sweep("ipt", 20.0, [1.0], out=out, options=DMFTOptions(n_iw=256))
    assert litter.exists() and not out.exists()  # nothing touched while the other run holds it
    (tmp_path / "s.h5.lock").unlink()
    sweep("ipt", 20.0, [1.0], out=out, options=DMFTOptions(n_iw=256))
    assert not litter.exists() and out.exists()
    assert not (tmp_path / "s.h5.lock").exists()


def test_iterations_are_reported_inside_a_point_and_the_retry_is_explained():
    """The loop reports every iteration (the sweep bar shows it); a failed Anderson run is
    retried with linear mixing, and the iteration count over both attempts is explained."""
    from mldmft.dmft.loop import DMFTOptions, solve_point
    from mldmft.dmft.steps import make_step
    from mldmft.dmft.sweep import metal_seed

    lattice = BetheLattice()
    seen = []
    point = solve_point(make_step("ipt", 256), 20.0, 3.0, metal_seed(lattice, 20.0, 256),
                        lattice, options=DMFTOptions(n_iw=256, max_iter=3, tol=1e-14),
                        on_iteration=lambda *a: seen.append(a))
    assert [(it, retry) for it, _, retry in seen] == [(1, False), (2, False), (3, False),
                                                      (4, True), (5, True), (6, True)]
    assert all(np.isfinite(r) and r > 0 for _, r, _ in seen)
    assert point.retried_linear and point.iterations == 6 and not point.converged
    assert point.note() == ("NOT converged, also after linear-mixing retry (Anderson "
                            "acceleration failed), 6 iterations in total")
    import dataclasses
    assert dataclasses.replace(point, converged=True).note().startswith(
        "converged after linear-mixing retry")


def test_sweep_progress_shows_the_iteration(monkeypatch, capsys):
    import importlib

    sweep_module = importlib.import_module("mldmft.dmft.sweep")  # the name is also a function
    monkeypatch.setattr(sweep_module, "_POSTFIX_INTERVAL", {True: 0.0, False: 0.0})
    sweep("ipt", 20.0, [2.0], options=DMFTOptions(n_iw=256), progress=True)
    err = capsys.readouterr().err
    assert "U=2 up: iteration 3, error" in err
    assert "U=2 up: Z=" in err


def test_cli_table_explains_a_linear_mixing_retry(tmp_path, capsys):
    from mldmft.cli import main

    assert main(["dmft", "solver=ipt", "U_values=[2.0]", "beta=20", "direction=up",
                 "progress=false", "plot=false", "loop.n_iw=256", "loop.max_iter=2",
                 "loop.tol=1e-14", f"out={tmp_path}/r.h5"]) == 0
    out = capsys.readouterr().out
    assert "NOT converged, also after linear-mixing retry" in out
    assert "4 iterations in total" in out and "max_iter = 2" in out
    assert load_sweep(tmp_path / "r.h5")[0].retried_linear


def test_guarded_mode_counts_fallbacks():
    def shaky(model, **opts):
        res = solve("hubbard_i", model, **opts)
        res.info["spread"] = np.full(4, 1.0)  # an ensemble that disagrees with itself
        return res

    pts = sweep(shaky, 20.0, [1.0], "up", guard={"fallback": "ipt", "threshold": 0.1},
                options=DMFTOptions(max_iter=50))
    assert pts[0].fallbacks == pts[0].iterations
    ipt = sweep("ipt", 20.0, [1.0], "up")
    assert pts[0].Z == pytest.approx(ipt[0].Z, abs=1e-5)
    # fallback None: every iteration is flagged and counted, the result stays the primary's
    watched = sweep(shaky, 20.0, [1.0], "up", guard={"fallback": None, "threshold": 0.1},
                    options=DMFTOptions(max_iter=50))
    plain = sweep("hubbard_i", 20.0, [1.0], "up", options=DMFTOptions(max_iter=50))
    assert watched[0].fallbacks == watched[0].iterations > 0
    assert watched[0].Z == pytest.approx(plain[0].Z, abs=1e-12)
    assert abs(watched[0].Z - ipt[0].Z) > 1e-3


def test_bad_input():
    with pytest.raises(ValueError, match="unknown solver"):
        sweep("magic", 10.0, [1.0])
    with pytest.raises(ValueError, match="direction"):
        sweep("ipt", 10.0, [1.0], "sideways")
    with pytest.raises(ValueError, match="beta"):
        sweep("ipt", -1.0, [1.0])
    with pytest.raises(ValueError, match="U_values"):
        sweep("ipt", 10.0, [np.nan])


def test_cli_dmft_and_overlay(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for solver in ("ipt", "hubbard_i"):
        res = subprocess.run([sys.executable, "-m", "mldmft.cli", "dmft", f"solver={solver}",
                              "U_values=[1.0,2.0]", "beta=20", "progress=false",
                              f"out={tmp_path}/{solver}.h5"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert (tmp_path / f"{solver}.png").exists() and (tmp_path / f"{solver}.csv").exists()
    res = subprocess.run([sys.executable, "-m", "mldmft.cli", "overlay", f"{tmp_path}/ipt.h5",
                          f"{tmp_path}/hubbard_i.h5", "--out", f"{tmp_path}/o.png"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o.png").exists()


def test_overlay_default_name_is_beside_the_inputs_and_printed(tmp_path, capsys):
    from mldmft.cli import main

    for name in ("a", "b"):
        sweep("ipt", 20.0, [1.0], options=DMFTOptions(n_iw=256), out=tmp_path / f"{name}.h5")
    assert main(["overlay", str(tmp_path / "a.h5"), str(tmp_path / "b.h5")]) == 0
    assert (tmp_path / "overlay_a_b.png").exists()
    assert f"{tmp_path / 'overlay_a_b.png'}  (default name" in capsys.readouterr().out
    before = (tmp_path / "a.h5").read_bytes()
    assert main(["overlay", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"), "--out",
                 str(tmp_path / "a.h5")]) == 2
    assert "--out must end in .png" in capsys.readouterr().err
    assert (tmp_path / "a.h5").read_bytes() == before


def test_dmft_loop_keeps_hydra_run_dirs_under_data(tmp_path):
    """`python dmft_loop.py` used to create Hydra's outputs/ in the working directory (the
    repository); its run directory is now under data/dmft/hydra/."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, str(repo / "dmft_loop.py"), "solver=ipt",
                          "U_values=[1.0]", "beta=20", "direction=up", "loop.n_iw=256",
                          "progress=false", "plot=false", f"out={tmp_path}/d.h5"], cwd=tmp_path,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "outputs").exists()
    assert list((tmp_path / "data" / "dmft" / "hydra").glob("*/*/.hydra/config.yaml"))


def test_exported_baths_feed_the_bath_list_recipe(tmp_path):
    from mldmft.database import make_recipe
    from mldmft.dmft.export import export_baths

    pts = sweep("ipt", 50.0, [1.0, 2.0], "up")
    out = export_baths(pts, tmp_path / "visited.yaml", n_bath=8)
    recipe = make_recipe(dict(kind="bath_list", path=str(out), U=1.0, beta=50.0))
    m = recipe.draw(0, 1).model
    assert m.U == 2.0 and m.n_bath == 8 and m.eps_d == pytest.approx(-1.0)
    # the fitted bath reproduces the DMFT hybridisation at low frequency
    np.testing.assert_allclose(m.delta(32), pts[1].delta_iw[:32], atol=1e-3)


def test_unphysical_green_function_is_detected():
    from mldmft.dmft.steps import unphysical
    from solvers import AndersonModel

    good = solve("ipt", AndersonModel(U=2.0, eps_d=-1.0, beta=20.0, bath_eps=[-0.5, 0.5],
                                      bath_v=[0.4, 0.4]))
    assert not unphysical(good)
    import dataclasses
    bad = dataclasses.replace(good, g_l=good.g_l.copy())
    bad.g_l[2] += 3.0  # adds a positive bump at tau = beta/2
    assert unphysical(bad)


def test_shipped_network_dmft_matches_ed_dmft(tmp_path, capsys):
    """The demo (the default network, unguarded, at DEMO_BETA) runs on two metallic
    points and lands within 0.005 of the shipped ED-DMFT (Nb = 8) reference there, on both
    branches (below Uc1 the metal is the only solution, so a point missing from the reference's
    down branch is compared with its up branch), reporting the branch ends; the beta = 50 demo
    network (mldmft/pretrained) in the DMFT loop gives Z within 0.02 of the beta = 50 ED-DMFT
    curve on the metallic side."""
    from mldmft.dmft import load_sweep_csv
    from mldmft.dmft.demo import DEMO_BETA, PRETRAINED, reference_csv, run_demo

    lines = run_demo(out_dir=tmp_path, U_values=(1.5, 1.8), progress=False)  # metal
    assert (tmp_path / f"mott_beta{DEMO_BETA:g}.png").exists()
    ref = {(p.U, p.branch): p.Z for p in load_sweep_csv(reference_csv())}
    default = {(p.U, p.branch): p for p in load_sweep(tmp_path / f"ml_beta{DEMO_BETA:g}.h5")}
    assert len(default) == 4
    for (u, branch), p in default.items():   # the default network, no ED fallback
        z_ed = ref.get((u, branch), ref[(u, "up")])
        assert p.converged and p.fallbacks == 0 and p.Z == pytest.approx(z_ed, abs=0.005)
    assert any("max |Z - Z_ED| over the 4 points where every method converged" in line
               for line in lines)
    assert not any(line.startswith("not converged") for line in lines)
    assert any(line.strip().startswith("network ") and "metal up to U = 1.80" in line
               for line in lines)
    # an earlier demo's sweep of another default network is not resumed: recomputed
    import h5py

    ml_file = tmp_path / f"ml_beta{DEMO_BETA:g}.h5"
    with h5py.File(ml_file, "r+") as f:
        plan = json.loads(f.attrs["plan"])
        plan["solver_identity"]["checkpoint_sha256"] = "0" * 64
        f.attrs["plan"] = json.dumps(plan)
    run_demo(out_dir=tmp_path, U_values=(1.5, 1.8), progress=False)
    assert "holds another sweep (solver_identity" in capsys.readouterr().out
    again = {(p.U, p.branch): p.Z for p in load_sweep(ml_file)}
    assert again == pytest.approx({k: p.Z for k, p in default.items()}, abs=1e-12)
    ref50 = {(p.U, p.branch): p.Z for p in load_sweep_csv(PRETRAINED / "ed_dmft_beta50.csv")}
    metal = sweep("ml", 50.0, [1.5, 2.0], "up",
                  solver_options={"checkpoint": str(PRETRAINED / "demo_beta50.pt")})
    for p in metal:
        assert p.Z == pytest.approx(ref50[(p.U, p.branch)], abs=0.02), p.U


def test_ed_dmft_coexistence_appears_between_beta_50_and_100():
    """ED-DMFT on 4 refitted bath sites (benchmarks/coexistence.py, step 0.02: no window wider
    than one step at beta = 50, Uc1 ... Uc2 = 2.38 ... 2.52 at beta = 100), at U = 2.45 from the
    metallic and from the insulating seed: at beta = 100 the metal seed stays metallic and the
    insulating seed insulating (coexistence); at beta = 50 both end insulating. This is why the
    demo runs at beta = 100."""
    from mldmft.dmft import branch_ends

    loose = DMFTOptions(tol=1e-5)
    cold = sweep("ed", 100.0, [2.45], "both", solver_options={"n_bath": 4}, options=loose)
    hot = sweep("ed", 50.0, [2.45], "both", solver_options={"n_bath": 4}, options=loose)
    assert all(p.converged for p in hot + cold)
    assert branch_ends(cold) == (2.45, 2.45)   # both solutions at 2.45
    assert branch_ends(hot) == (2.45, None)    # no metal at 2.45
    assert max(p.g_beta_half for p in hot) < 0.05


def test_shipped_references():
    """The shipped ED-DMFT (Nb = 8) references: at beta = 50 no hysteresis on the 0.1 grid (the
    metallic branch ends at U = 2.3, the insulating one at 2.4); at the demo's beta, on the whole
    demo grid, both branches coexist over more than one grid step, where 4 bath sites put the
    window (U = 2.38-2.52 at beta = 100)."""
    from mldmft.dmft import load_sweep_csv
    from mldmft.dmft.demo import DEMO_BETA, DEMO_U, PRETRAINED, reference_csv
    from mldmft.dmft.transition import branch_ends

    assert branch_ends(load_sweep_csv(PRETRAINED / "ed_dmft_beta50.csv")) == (2.4, 2.3)
    ed = load_sweep_csv(reference_csv())
    grid = sorted(round(u, 6) for u in DEMO_U)
    for branch in ("up", "down"):
        assert sorted(round(p.U, 6) for p in ed if p.branch == branch) == grid
    assert all(p.beta == DEMO_BETA for p in ed)
    assert sum(not p.converged for p in ed) <= 1      # the slow passage at a branch end
    uc1, uc2 = branch_ends(ed)
    assert 2.3 <= uc1 <= 2.45 and 2.45 <= uc2 <= 2.6 and uc2 - uc1 >= 0.06


def test_branch_ends_and_the_plot_options(tmp_path):
    """branch_ends takes converged points only; plot_sweeps draws a reference, a zoom and the
    branch ends, and names a bad option in one line."""
    import dataclasses

    from mldmft.dmft import load_sweep_csv, plot_sweeps
    from mldmft.dmft.demo import PRETRAINED
    from mldmft.dmft.transition import branch_ends

    ed = load_sweep_csv(PRETRAINED / "ed_dmft_beta50.csv")
    assert branch_ends([p for p in ed if p.branch == "up"]) == (None, 2.3)
    # a non-converged metallic point further up does not move the end
    fake = dataclasses.replace(next(p for p in ed if p.U == 2.3 and p.branch == "up"), U=2.35,
                               converged=False)
    assert branch_ends(ed + [fake]) == (2.4, 2.3)
    half = [p for p in ed if round(p.U * 10) % 2 == 0]
    png = plot_sweeps([("ED", ed), ("half", half)], tmp_path / "m.png", reference="ED",
                      zoom=(2.0, 2.8), mark_ends=True)
    assert png.exists()
    with pytest.raises(ValueError, match="reference 'ED8' is not one of the runs"):
        plot_sweeps([("ED", ed)], tmp_path / "x.png", reference="ED8")
    with pytest.raises(ValueError, match="zoom must be"):
        plot_sweeps([("ED", ed)], tmp_path / "x.png", zoom=(3.0, 2.0))


def test_anderson_gives_up_when_it_stalls():
    """Anderson acceleration hands over to linear mixing once ``stall`` iterations brought no
    halving of the best residual (the slow passage past a branch end), not while it progresses."""
    from mldmft.dmft.loop import DMFTOptions, _stalled

    opts = DMFTOptions(stall=10)
    flat = [1e-1] * 5 + [2e-2] * 15           # best 2e-2 before the last 10, no better since
    assert _stalled(flat, opts)
    assert not _stalled(flat[:19], opts)      # fewer than 2 x stall iterations: too early
    slow = list(np.geomspace(1e-1, 1e-3, 20))  # steady progress
    assert not _stalled(slow, opts)
    assert not _stalled(flat, DMFTOptions(stall=0))
    assert not _stalled(flat, DMFTOptions(stall=10, accel="linear"))
    with pytest.raises(ValueError, match="stall"):
        DMFTOptions(stall=-1)
