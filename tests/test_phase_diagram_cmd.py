"""The Mott phase diagram (`mldmft phase-diagram`, mldmft.dmft.phase_diagram): branch-end
bisection, thermodynamic integration, resumability, bad configurations."""

import doctest
import importlib
import json
import math

import numpy as np
import pytest

from mldmft.dmft import BetheLattice, DMFTOptions, DMFTPoint, make_step, solve_point
from mldmft.dmft import thermo, transition
from mldmft.dmft.phase_diagram import DiagramSpec, PhaseDiagramConfig, phase_diagram
from mldmft.dmft.thermo import (BranchPotential, atomic_limit, cumulative_integral,
                                first_order_crossing, internal_energy, loop_defect, omega_slope)
from mldmft.dmft.transition import (bracket_branch_end, coexistence, on_branch,
                                    refine_branch_ends)

pd_module = importlib.import_module("mldmft.dmft.phase_diagram")   # (the package exports the
# function under the module's name)

# a small IPT diagram: beta 20 lies above IPT's critical temperature (~1/21.6), beta 100 below
IPT_OPTIONS = {"n_l": 128}
LOOP = DMFTOptions(n_iw=256, tol=1e-5, max_iter=120)


def _config(tmp_path, **changes) -> PhaseDiagramConfig:
    spec = DiagramSpec("ipt", "ipt", IPT_OPTIONS, (20.0, 100.0),
                       tuple(round(2.3 + 0.1 * k, 10) for k in range(13)))
    base = dict(main=spec, loop=LOOP, tol_U=0.01, refine_tc=0, thermo=False,
                out=str(tmp_path / "pd"), progress=False)
    base.update(changes)
    return PhaseDiagramConfig(**base)


@pytest.fixture(scope="module")
def ipt_run(tmp_path_factory):
    cfg = _config(tmp_path_factory.mktemp("ipt"))
    return cfg, phase_diagram(cfg)


@pytest.fixture(scope="module")
def ipt_diagram(ipt_run):
    return ipt_run[1]


# --------------------------------------------------------------- branch ends
def _fake_point(beta: float, U: float, branch: str, metallic: bool) -> DMFTPoint:
    z = np.zeros(4, dtype=complex)
    return DMFTPoint(U=U, beta=beta, mu=U / 2, D=1.0, branch=branch, converged=True,
                     iterations=1, residual=0.0, Z=0.5, double_occupancy=0.05, density=1.0,
                     g_beta_half=1.2 if metallic else 0.05, kinetic_energy=-0.3,
                     wall_time=0.0, g_iw=z, sigma_iw=z, delta_iw=z)


def test_bisection_finds_the_ends_of_a_synthetic_hysteresis():
    """A fake solver with a known hysteresis: continued from a metal, the solution stays
    metallic up to Uc2(T); continued from an insulator, insulating down to Uc1(T). Coarse walks
    (step 0.1) and the bisection locate every end to tol = 0.01 in ceil(log2(0.1/0.01)) = 4
    solves per end, and the window is found exactly where Uc1 < Uc2."""
    uc1 = {50.0: 2.3872, 100.0: 2.4013, 25.0: 2.4431}
    uc2 = {50.0: 2.4517, 100.0: 2.5236, 25.0: 2.4431}   # beta 25: no window
    calls = []

    def continue_from(start: DMFTPoint, U: float) -> DMFTPoint:
        calls.append((start.beta, U))
        b = start.beta
        if start.branch == "up":
            return _fake_point(b, U, "up", U <= uc2[b])
        return _fake_point(b, U, "down", U < uc1[b])

    grid = [round(2.0 + 0.1 * k, 10) for k in range(11)]
    ends = []
    for beta in uc1:
        up = [_fake_point(beta, grid[0], "up", True)]
        for u in grid[1:]:
            up.append(continue_from(up[-1], u))
            if not on_branch(up[-1], "up"):
                break
        down = [_fake_point(beta, grid[-1], "down", False)]
        for u in grid[-2::-1]:
            down.append(continue_from(down[-1], u))
            if not on_branch(down[-1], "down"):
                break
        ends += [bracket_branch_end(up, "up", beta), bracket_branch_end(down, "down", beta)]
    calls.clear()
    rounds = []
    refined = refine_branch_ends(ends, lambda reqs: [continue_from(p, u) for p, u in reqs],
                                 tol=0.01, on_round=lambda r, n: rounds.append(n))
    assert len(rounds) == 4 and len(calls) == 4 * len(ends)
    for e in refined:
        true = uc2[e.beta] if e.branch == "up" else uc1[e.beta]
        assert e.bracketed and e.width <= 0.01 + 1e-12
        assert abs(e.U - true) <= e.error + 1e-12
        assert len(e.tried) == 4
    by = {(e.beta, e.branch): e for e in refined}
    assert coexistence(by[50.0, "up"], by[50.0, "down"])
    assert coexistence(by[100.0, "up"], by[100.0, "down"])
    assert not coexistence(by[25.0, "up"], by[25.0, "down"])


def test_bracket_of_a_branch_that_never_ends():
    pts = [_fake_point(50.0, u, "up", True) for u in (2.0, 2.1)]
    end = bracket_branch_end(pts, "up", 50.0)
    assert end.status == "beyond range" and not end.bracketed and math.isnan(end.U)
    assert refine_branch_ends([end], lambda r: pytest.fail("solved"), 0.01) == [end]
    assert bracket_branch_end([_fake_point(50.0, 2.0, "up", False)], "up", 50.0).status \
        == "before range"


def test_ipt_branch_ends_at_beta_100_to_the_tolerance(ipt_diagram):
    """IPT at beta = 100: each end bracketed to <= 0.01, and an independent continuation (its
    own path: up from U = 2.3 in steps of 0.1 to the bracket's two sides) confirms the branch
    is still on at the bracket's lower side and gone at its upper."""
    t = next(t for t in ipt_diagram.main.temperatures if t.beta == 100.0)
    assert t.coexist and t.up.width <= 0.01 + 1e-9 and t.down.width <= 0.01 + 1e-9
    assert 2.55 < t.down.U < 2.65 and 3.15 < t.up.U < 3.30   # README: IPT window 2.6-3.3
    lat, step = BetheLattice(), make_step("ipt", LOOP.n_iw, IPT_OPTIONS)

    def walk(values, branch, seed):
        delta, out = seed, []
        for u in values:
            p = solve_point(step, 100.0, u, delta, lat, None, LOOP, branch)
            out.append(p)
            delta = p.delta_iw
        return out

    metal = lat.seed_delta_iw(100.0, LOOP.n_iw)
    lo, hi = t.up.last_on.U, t.up.first_off
    path = list(np.arange(2.3, lo - 0.01, 0.1)) + [lo, hi]
    up = walk(path, "up", metal)
    assert on_branch(up[-2], "up") and not on_branch(up[-1], "up")
    hi, lo = t.down.last_on.U, t.down.first_off
    path = list(np.arange(3.5, hi + 0.01, -0.1)) + [hi, lo]
    down = walk(path, "down", lat.seed_delta_iw(100.0, LOOP.n_iw, 3.5))
    assert on_branch(down[-2], "down") and not on_branch(down[-1], "down")
    hot = next(t for t in ipt_diagram.main.temperatures if t.beta == 20.0)
    assert not hot.coexist and abs(hot.up.U - hot.down.U) <= 0.011


# --------------------------------------------------------------- thermodynamic integration
def test_integration_is_exact_for_the_hubbard_atom():
    """The half-filled atom (E_kin = 0) has Omega = -T ln(2 + 2 e^{beta U/2}): integrating
    d - 1/2 along U at beta = 5, then E along beta at U = 3 (Phi = beta Omega) reproduces
    beta Omega at (40, 3) to within the stated error, and the error is small."""
    U = np.linspace(0.0, 3.0, 61)
    om, docc, _ = atomic_limit(5.0, U)
    along_u = cumulative_integral(U, docc - 0.5, initial=om[0])       # Omega(5, U)
    betas = np.geomspace(5.0, 40.0, 81)
    energies = np.array([atomic_limit(b, 3.0)[2] for b in betas])
    along_b = cumulative_integral(betas, energies, initial=5.0 * along_u.value[-1],
                                  initial_error=5.0 * along_u.error[-1])
    exact = 40.0 * atomic_limit(40.0, 3.0)[0]
    assert abs(along_b.value[-1] - exact) <= along_b.error[-1]
    assert along_b.error[-1] < 2e-4 * abs(exact)
    # reversed direction gives the negative integral
    back = cumulative_integral(U[::-1], (docc - 0.5)[::-1])
    assert back.value[-1] == pytest.approx(-(along_u.value[-1] - along_u.value[0]), abs=1e-12)


def test_loop_closes_for_the_atom_and_not_around_a_fake_jump():
    U = np.linspace(0.5, 2.5, 41)
    betas = np.linspace(4.0, 12.0, 41)
    line = lambda b: (U, atomic_limit(b, U)[1] - 0.5)                        # noqa: E731
    path = lambda u: (betas, np.array([atomic_limit(b, u)[2] for b in betas]))  # noqa: E731
    defect, error = loop_defect(4.0, line(4.0), 12.0, line(12.0), path(0.5), path(2.5))
    assert abs(defect) <= error and error < 1e-3   # the estimate is conservative (trapezoid)
    # an energy off by 0.01 on one side: the loop no longer closes
    b, e = path(2.5)
    defect, error = loop_defect(4.0, line(4.0), 12.0, line(12.0), path(0.5), (b, e + 0.01))
    assert abs(defect - 0.08) < 1e-5 and abs(defect) > 10 * error


def test_ipt_loop_closes_at_weak_coupling_and_its_defect_grows_like_U4():
    """IPT DMFT points around [0, U1] x beta [10, 20]: for U1 = 0.5 the loop closes to its
    integration error; IPT is exact to third order in U, so the defect (a thermodynamic
    inconsistency, not an integration error) grows as U1^4: 16x from U1 = 0.25 to 0.5."""
    lat, opts = BetheLattice(), DMFTOptions(n_iw=256, tol=1e-10)
    step = make_step("ipt", 256, {"n_l": 64})

    def point(b, u):
        return solve_point(step, b, u, lat.seed_delta_iw(b, 256), lat, None, opts)

    defects = {}
    for u1 in (0.25, 0.5):
        U, betas = np.linspace(0.0, u1, 9), np.linspace(10.0, 20.0, 9)
        lines = [(U, [omega_slope(point(b, u)) for u in U]) for b in (10.0, 20.0)]
        paths = [(betas, [internal_energy(point(b, u)) for b in betas]) for u in (0.0, u1)]
        defects[u1] = loop_defect(10.0, lines[0], 20.0, lines[1], paths[0], paths[1])
    defect, error = defects[0.5]
    assert abs(defect) <= error
    assert 12.0 < defects[0.5][0] / defects[0.25][0] < 20.0


def test_first_order_crossing_of_two_analytic_branches():
    """Omega_m = 0.1 x^2 - 0.45 x and Omega_i = 0.02 - 0.48 x (x = U - 2) cross where
    0.1 x^2 + 0.03 x - 0.02 = 0; the PCHIP integral of the sampled slopes, anchored at U = 2
    (metal) and U = 3 (insulator), finds it to the stated error."""
    x_star = (-0.03 + math.sqrt(0.03 ** 2 + 4 * 0.1 * 0.02)) / (2 * 0.1)
    Um = np.linspace(2.0, 2.6, 13)
    metal = BranchPotential(Um, 0.2 * (Um - 2.0) - 0.45, 2.0, 0.0, 1e-6)
    Ui = np.linspace(2.1, 3.0, 10)
    ins = BranchPotential(Ui, np.full(Ui.size, -0.48), 3.0, 0.02 - 0.48, 1e-6)
    c = first_order_crossing(metal, ins, 2.1, 2.6)
    assert c.status == "crossing" and abs(c.U - (2.0 + x_star)) <= c.error + 1e-9
    assert c.error < 1e-3 and c.delta_lo < 0 < c.delta_hi
    assert first_order_crossing(metal, ins, 2.1, 2.15).status == "metal lower"
    assert first_order_crossing(metal, ins, 2.5, 2.6).status == "insulator lower"
    # the metal anchor known only to 0.02: a one-sign difference below that is no evidence
    vague = BranchPotential(Um, 0.2 * (Um - 2.0) - 0.45, 2.0, 0.0, 2e-2)   # |delta| <= 0.0133
    assert first_order_crossing(vague, ins, 2.1, 2.15).status == "unresolved"


def test_thermo_doctests():
    assert doctest.testmod(thermo).failed == 0
    assert doctest.testmod(transition).failed == 0


# --------------------------------------------------------------- resume, outputs
def test_a_killed_run_resumes_without_recomputing(tmp_path, monkeypatch):
    """Interrupt after 7 DMFT solves: the rerun solves exactly the points not stored (the
    uninterrupted total minus 7), gives the same ends, and a third run solves nothing."""
    cfg = _config(tmp_path, main=DiagramSpec("ipt", "ipt", IPT_OPTIONS, (20.0, 30.0),
                                             (2.3, 2.5, 2.7, 2.9)), tol_U=0.05)
    calls = []
    real = pd_module.run_chains

    def counting(solver, chains, options, *, on_point, **kwargs):
        def point_done(c, i, point):
            if len(calls) == 7 and limit[0]:
                raise KeyboardInterrupt
            calls.append(point.U)
            on_point(c, i, point)

        return real(solver, chains, options, on_point=point_done, **kwargs)

    monkeypatch.setattr(pd_module, "run_chains", counting)
    limit = [True]
    with pytest.raises(KeyboardInterrupt):
        phase_diagram(cfg)
    assert len(calls) == 7
    assert not (tmp_path / "pd" / "diagram.h5.lock").exists()   # the lock is released
    limit[0] = False
    second = phase_diagram(cfg)
    assert second.resumed == 7 and second.solved == len(calls) - 7
    fresh_calls = len(calls)
    clean = phase_diagram(_config(tmp_path, main=cfg.main, tol_U=0.05,
                                  out=str(tmp_path / "fresh")))
    assert clean.solved == fresh_calls   # interrupted + resumed = one uninterrupted run
    for a, b in zip(second.main.temperatures, clean.main.temperatures):
        assert (a.up.U, a.down.U) == (b.up.U, b.down.U) and a.up.bracketed
    third = phase_diagram(cfg)
    assert third.solved == 0 and len(calls) == 2 * fresh_calls


def test_outputs_of_a_run(ipt_diagram):
    files = ipt_diagram.files
    for name in ("h5", "png", "points_csv", "ends_csv", "summary_json", "summary_txt"):
        assert files[name].is_file(), name
    summary = json.loads(files["summary_json"].read_text())
    ends = summary["diagrams"]["ipt"]["ends"]
    assert [e["beta"] for e in ends] == [20.0, 100.0] and ends[1]["coexist"]
    import h5py

    with h5py.File(files["h5"]) as f:
        assert f.attrs["schema"] == "mldmft.phase_diagram"
        assert len(f["ipt/points"]) == ipt_diagram.solved + ipt_diagram.resumed
        assert f["ipt/ends/uc2"][1] == pytest.approx(ends[1]["uc2"])
    rows = files["points_csv"].read_text().splitlines()
    assert len(rows) == 1 + ipt_diagram.solved + ipt_diagram.resumed
    text = "\n".join(ipt_diagram.lines())
    assert "time: total" in text and "ipt: walks" in text


def test_the_check_walks_in_from_the_main_ends_and_resumes_the_main(ipt_run):
    """The ED check's machinery with IPT in ED's place at beta = 100: it walks from 0.08 inside
    the main diagram's ends in steps of 0.04 and bisects; the same solver must find the same
    ends to the tolerance; the main diagram is read from its store, not recomputed."""
    cfg, first = ipt_run
    import dataclasses

    check = phase_diagram(dataclasses.replace(cfg, check_ed=True, ed_betas=(100.0,),
                                              ed_solver="ipt", ed_options=IPT_OPTIONS))
    assert check.main.store.added == 0 and check.ed.store.added > 0
    (t,) = check.ed.temperatures
    main = next(m for m in first.main.temperatures if m.beta == 100.0)
    for a, b in ((t.up, main.up), (t.down, main.down)):
        assert a.width <= 0.01 + 1e-9 and abs(a.U - b.U) <= 0.01 + 1e-9
    assert "ED-DMFT check" in "\n".join(check.lines())


# --------------------------------------------------------------- bad configurations
@pytest.mark.parametrize("changes, message", [
    (dict(betas=(50.0, 30.0)), "betas must increase (temperatures decrease): 30 follows 50"),
    (dict(betas=(50.0, 50.0)), "betas must increase"),
    (dict(U_values=()), "the U range holds 0 value(s)"),
    (dict(U_values=(2.5,)), "the U range holds 1 value(s)"),
    (dict(U_values=(3.0, 2.0)), "strictly increasing"),
    (dict(solver="ml", label="ml", solver_options={}, betas=(10.0, 50.0)),
     "beta = 10 is outside the ml model's domain [20, 200]"),
    (dict(solver="nosuch", label="x"), "unknown solver 'nosuch'"),
])
def test_bad_configurations_stop_at_once_with_one_line(tmp_path, monkeypatch, changes, message):
    spec = DiagramSpec(**{**_config(tmp_path).main.__dict__, **changes})
    monkeypatch.setattr(pd_module, "run_chains", lambda *a, **k: pytest.fail("solved"))
    with pytest.raises(ValueError) as err:
        phase_diagram(_config(tmp_path, main=spec))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "pd").exists()


def test_cli_refuses_a_bad_config_in_one_line(capsys):
    from mldmft.cli import main

    assert main(["phase-diagram", "betas=[30,25,50]", "compare.ipt.enabled=false"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("mldmft phase-diagram: error: betas must increase (temperatures decrease): "
                   "25 follows 30")


def test_cli_config_maps_onto_the_typed_config():
    from mldmft.cli import phase_diagram_config

    cfg = phase_diagram_config(["solver=ipt", "betas=[20,50]", "U_range=[2.0,2.4,0.2]",
                                "follow_max_iter=40", "ed.betas=[50]"], check_ed=True)
    assert cfg.main.solver == "ipt" and cfg.main.betas == (20.0, 50.0)
    assert cfg.main.U_values == (2.0, 2.2, 2.4) and cfg.follow_max_iter == 40
    assert cfg.compare == ()              # the IPT comparison of an IPT diagram is left out
    assert cfg.check_ed and cfg.ed_betas == (50.0,) and cfg.ed_solver == "ed"
    assert cfg.loop.tol == 1e-5 and cfg.lattice["name"] == "bethe"
    default = phase_diagram_config([])
    assert default.main.solver == "ml" and len(default.main.betas) >= 12
    assert [c.label for c in default.compare] == ["ipt"] and not default.check_ed
