"""The batched DMFT engine (run_chains, DMFTProblem), sweeps on it (both branches side by side,
seeded and continuation starts, resume of out-of-order points), solver warnings in DMFT points,
small fixed densities and repeated sweep values."""

import csv
import dataclasses
import json

import h5py
import numpy as np
import pytest

from mldmft.dmft import (BetheLattice, DMFTOptions, DMFTProblem, load_sweep, load_sweep_csv,
                         run_chains, solve_point, sweep)
from mldmft.dmft.engine import insulator_seed, metal_seed
from mldmft.dmft.steps import make_step
from solvers import solve

OPTS = DMFTOptions(n_iw=256, tol=1e-8)
LAT = BetheLattice()
BETA = 20.0


def _same(a, b, tol=1e-9, same_path=True):
    """Two points agree (iterations, flags, scalars and functions; with ``same_path`` false the
    iteration count and the linear retry may differ, the converged point may not)."""
    assert (a.U, a.branch, a.converged) == (b.U, b.branch, b.converged)
    if same_path:
        assert (a.iterations, a.retried_linear) == (b.iterations, b.retried_linear)
    for key in ("Z", "double_occupancy", "density", "g_beta_half", "kinetic_energy", "mu"):
        assert getattr(a, key) == pytest.approx(getattr(b, key), abs=tol), key
    np.testing.assert_allclose(a.delta_iw, b.delta_iw, atol=tol)


def test_run_chains_equals_solve_point_problem_by_problem():
    """Chains side by side (continuation up, continuation down, a fixed-density chain, a start
    array) give the points of solve_point run problem by problem from the same starts."""
    seed = LAT.seed_delta_iw(BETA, OPTS.n_iw, 1.5)
    chains = [
        [DMFTProblem(BETA, 1.0), DMFTProblem(BETA, 2.0, start="previous"),
         DMFTProblem(BETA, 2.8, start="previous")],
        [DMFTProblem(BETA, 3.5, start="insulator", branch="down"),
         DMFTProblem(BETA, 2.8, start="previous", branch="down")],
        [DMFTProblem(BETA, 1.5, density=0.9), DMFTProblem(BETA, 2.5, density=0.9,
                                                          start="previous")],
        [DMFTProblem(BETA, 2.2, mu=0.9, start=seed, branch="given")],
    ]
    seen = []
    points = run_chains("ipt", chains, OPTS, on_point=lambda c, i, p: seen.append((c, i)))
    assert sorted(seen) == [(c, i) for c, ch in enumerate(chains) for i in range(len(ch))]
    for c in range(len(chains)):     # a chain's points finish in order
        assert [i for cc, i in seen if cc == c] == list(range(len(chains[c])))
    step = make_step("ipt", OPTS.n_iw)
    for chain, got in zip(chains, points):
        previous = None
        for p, point in zip(chain, got):
            if isinstance(p.start, np.ndarray):
                delta0 = p.start
            elif p.start == "previous":
                delta0 = previous.delta_iw
            elif p.start == "insulator":
                delta0 = insulator_seed(LAT, BETA, OPTS.n_iw, p.U)
            else:                              # the free lattice at the problem's filling
                mu_free = (0.0 if p.density is None
                           else LAT.chemical_potential(p.density, BETA, np.zeros(OPTS.n_iw)))
                delta0 = metal_seed(LAT, BETA, OPTS.n_iw, mu_free)
            mu_start = (previous.mu + (p.U - previous.U) * p.density / 2   # Hartree shift
                        if p.density is not None and previous is not None else None)
            ref = solve_point(step, BETA, p.U, delta0, LAT, p.mu, OPTS, p.branch,
                              density=p.density, mu_start=mu_start)
            _same(point, ref)
            previous = ref
    assert all(p.converged for chain in points for p in chain)
    assert points[2][1].density == pytest.approx(0.9, abs=OPTS.tol_density)


def test_one_batched_solver_call_per_iteration():
    """Every iteration makes one call of the solver's batch step with every active problem."""
    import solvers.registry as registry

    calls = []
    real = registry.solve_many

    def counting(name, models, **options):
        calls.append(len(models))
        return real(name, models, **options)

    problems = [[DMFTProblem(BETA, u)] for u in (0.5, 1.0, 1.5, 2.0)]
    iterations = []
    mp = pytest.MonkeyPatch()
    mp.setattr("mldmft.dmft.steps.solve_many", counting)
    try:
        points = run_chains("ipt", problems, OPTS,
                            on_iteration=lambda k, active: iterations.append(len(active)))
    finally:
        mp.undo()
    assert calls == iterations                       # one call per batched iteration
    assert calls[0] == 4 and sorted(calls, reverse=True) == calls   # problems leave when done
    assert len(calls) == max(p.iterations for (p,) in points)


@pytest.fixture(scope="module")
def branches():
    """IPT at beta = 100 over both branches (the Mott coexistence window lies at U ~ 2.6-3.2),
    batched (both branches side by side, one run), and the same points one by one as the
    sequential sweep did: each branch a chain of solve_point calls."""
    U = [1.0, 2.0, 2.8, 3.6]
    opts = DMFTOptions(n_iw=1024, tol=1e-7, max_iter=500)
    batched = sweep("ipt", 100.0, U, "both", options=opts)
    step = make_step("ipt", opts.n_iw)
    sequential = []
    for branch, values, delta in (("up", sorted(U), LAT.seed_delta_iw(100.0, opts.n_iw)),
                                  ("down", sorted(U, reverse=True),
                                   LAT.seed_delta_iw(100.0, opts.n_iw, max(U)))):
        for u in values:
            p = solve_point(step, 100.0, u, delta, LAT, None, opts, branch)
            sequential.append(p)
            delta = p.delta_iw
    return U, opts, batched, sequential


def test_batched_sweep_equals_the_sequential_one(branches):
    """Point by point to the loop tolerance, and by the same iterations except where the down
    branch falls from the insulator to the metal (U = 2): there Anderson mixing is chaotic, and
    the rounding-level difference between a batch and a single IPT solve (~2e-16 in G(i w_n)) may
    send one run to the linear retry."""
    U, opts, batched, sequential = branches
    assert [(p.branch, p.U) for p in batched] == [(p.branch, p.U) for p in sequential]
    for a, b in zip(batched, sequential):
        jump = a.branch == "down" and a.U == 2.0
        _same(a, b, tol=10 * opts.tol, same_path=not jump)
    up = {p.U: p for p in batched if p.branch == "up"}
    down = {p.U: p for p in batched if p.branch == "down"}
    assert up[2.8].g_beta_half > 0.5 > down[2.8].g_beta_half   # both solutions at U = 2.8


def test_batched_fixed_density_chain_equals_the_sequential_one():
    opts = DMFTOptions(n_iw=512, tol=1e-7)
    U = [1.0, 2.0, 3.0]
    batched = sweep("ipt", 50.0, U, "up", density=0.85, options=opts)
    step = make_step("ipt", opts.n_iw)
    mu_free = LAT.chemical_potential(0.85, 50.0, np.zeros(opts.n_iw))
    delta, mu = metal_seed(LAT, 50.0, opts.n_iw, mu_free), None   # the free lattice at n
    for u, got in zip(U, batched):
        ref = solve_point(step, 50.0, u, delta, LAT, None, opts, density=0.85, mu_start=mu)
        _same(got, ref, tol=10 * opts.tol)
        assert got.converged and abs(got.density - 0.85) < opts.tol_density
        delta, mu = ref.delta_iw, ref.mu + 0.85 / 2        # the next U is 1 larger


def test_seeded_equals_continuation_away_from_the_coexistence_window(branches):
    """Every U of a branch from the branch's seed, all in one batch: away from the window (one
    solution there) the same points as the continuation; inside it (U = 2.8) each seed stays on
    its own solution too, as the continuation does from its side."""
    U, opts, batched, _ = branches
    seeded = sweep("ipt", 100.0, U, "both", options=opts, start="seeded")
    assert [(p.branch, p.U) for p in seeded] == [(p.branch, p.U) for p in batched]
    for a, b in zip(seeded, batched):
        assert a.converged and b.converged
        if a.U != 2.8:
            for key in ("Z", "double_occupancy", "g_beta_half", "kinetic_energy"):
                assert getattr(a, key) == pytest.approx(getattr(b, key), abs=1e-5), (a.U, key)
    ins = {p.branch: p for p in seeded if p.U == 1.0}
    assert ins["down"].g_beta_half > 0.5      # the insulating seed at U = 1 lands on the metal


@pytest.mark.parametrize("start", ["continuation", "seeded", "segments"])
def test_a_killed_batched_sweep_resumes_to_the_same_results(tmp_path, monkeypatch, start):
    """Both branches side by side finish points out of sweep order; the run is killed (an
    exception as the fifth point is saved); the rerun solves only the missing points and the
    file ends equal to an uninterrupted run's. (Segments of 2 values: 4 chains, and a saved
    point cuts a segment as it cuts a continuation chain; the other start modes ignore the
    segment length.)"""
    import importlib

    sweep_module = importlib.import_module("mldmft.dmft.sweep")  # the name is also a function
    U = [1.0, 1.5, 2.0, 2.5]
    opts = DMFTOptions(n_iw=256, tol=1e-8)
    full = sweep("ipt", BETA, U, "both", options=opts, start=start, segment=2)
    out = tmp_path / "s.h5"
    real = sweep_module.save_sweep
    saved = []

    def killed_after_five(path, points, meta, plan):
        real(path, points, meta, plan)
        saved.append([(p.branch, p.U) for p in points])
        if len(saved) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "save_sweep", killed_after_five)
    with pytest.raises(KeyboardInterrupt):
        sweep("ipt", BETA, U, "both", options=opts, start=start, segment=2, out=out)
    monkeypatch.setattr(sweep_module, "save_sweep", real)
    partial = load_sweep(out)
    assert [(p.branch, p.U) for p in partial] == saved[-1] and len(partial) == 5
    # the batch finished points of both branches, not the sweep order's first five
    order = [(p.branch, p.U) for p in full]
    assert {b for b, _ in saved[-1]} == {"up", "down"} and saved[-1] != order[:5]
    calls = []
    monkeypatch.setattr(sweep_module, "make_solver_batch", _counting(calls))
    again = sweep("ipt", BETA, U, "both", options=opts, start=start, segment=2, out=out)
    assert [(p.branch, p.U) for p in again] == order
    done_before = {key for key in saved[-1]}
    for a, b in zip(again, full):
        if (a.branch, a.U) in done_before:
            assert a.wall_time == next(p.wall_time for p in partial
                                       if (p.branch, p.U) == (a.branch, a.U))   # read back
        _same(a, b, tol=1e-10)
    assert set(calls) == {u for b, u in order if (b, u) not in done_before}
    _same_files(load_sweep(out), full)


# ------------------------------------------------------------------ start="segments"
SEG_U = [1.0, 1.5, 2.0, 2.5, 3.0]


def _exactly(got, want):
    """Two sweeps give the same points bit for bit (same chains in the same batch)."""
    assert [(p.branch, p.U) for p in got] == [(p.branch, p.U) for p in want]
    for a, b in zip(got, want):
        assert (a.converged, a.iterations, a.retried_linear, a.Z, a.mu, a.density) == \
            (b.converged, b.iterations, b.retried_linear, b.Z, b.mu, b.density)
        assert np.array_equal(a.delta_iw, b.delta_iw) and np.array_equal(a.g_iw, b.g_iw)


@pytest.mark.parametrize("density", [None, 0.9])
def test_segments_of_one_are_seeded_and_of_a_whole_branch_are_continuation(density):
    """``segment=1``: every point from its branch's seed (the seeded sweep); a segment at least
    as long as the branch: one chain per branch (the continuation) -- point for point."""
    kw = dict(options=OPTS, density=density)
    _exactly(sweep("ipt", BETA, SEG_U, "both", start="segments", segment=1, **kw),
             sweep("ipt", BETA, SEG_U, "both", start="seeded", **kw))
    continued = sweep("ipt", BETA, SEG_U, "both", start="continuation", **kw)
    for segment in (len(SEG_U), 50):
        _exactly(sweep("ipt", BETA, SEG_U, "both", start="segments", segment=segment, **kw),
                 continued)


@pytest.mark.parametrize("density", [None, 0.9])
def test_segments_start_from_the_seed_and_continue_within(density):
    """``segment=2`` over 5 values: per branch the chains (seed, previous), (seed, previous),
    (seed) in sweep order, all six in one batch -- the points of run_chains on those chains;
    at fixed density every point holds n (mu continued within a segment), and at beta = 20
    (one solution at every U) the points are the continuation's to the loop tolerance."""
    pts = sweep("ipt", BETA, SEG_U, "both", start="segments", segment=2, options=OPTS,
                density=density)
    chains = []
    for branch, seed, values in (("up", "metal", SEG_U), ("down", "insulator", SEG_U[::-1])):
        for first in range(0, len(values), 2):
            chains.append([DMFTProblem(BETA, u, density=density, branch=branch,
                                       start=seed if i == 0 else "previous")
                           for i, u in enumerate(values[first:first + 2])])
    _exactly(pts, [p for chain in run_chains("ipt", chains, OPTS) for p in chain])
    continued = sweep("ipt", BETA, SEG_U, "both", options=OPTS, density=density)
    for a, b in zip(pts, continued):
        assert a.converged and a.error == ""
        assert a.Z == pytest.approx(b.Z, abs=1e-6) and a.mu == pytest.approx(b.mu, abs=1e-5)
        if density is not None:
            assert abs(a.density - density) < OPTS.tol_density


def test_segments_plan_holds_the_segment_length(tmp_path):
    """A segments sweep stores ``segment`` in its plan: rerun with the same length it is read
    back, with another it is refused naming the length; continuation and seeded plans hold no
    ``segment`` (their files stay as they were), and a continuation file is not resumed as a
    segments sweep."""
    from mldmft.dmft import PlanMismatchError

    out = tmp_path / "seg.h5"
    first = sweep("ipt", BETA, [1.0, 2.0, 3.0], "up", options=OPTS, start="segments",
                  segment=2, out=out)
    with h5py.File(out, "r") as f:
        assert json.loads(f.attrs["plan"])["segment"] == 2
    again = sweep("ipt", BETA, [1.0, 2.0, 3.0], "up", options=OPTS, start="segments",
                  segment=2, out=out)
    assert [p.wall_time for p in again] == [p.wall_time for p in first]       # read back
    with pytest.raises(PlanMismatchError, match="segment: file 2, now 3") as err:
        sweep("ipt", BETA, [1.0, 2.0, 3.0], "up", options=OPTS, start="segments", segment=3,
              out=out)
    assert len(str(err.value).splitlines()) == 1
    for start in ("continuation", "seeded"):
        other = tmp_path / f"{start}.h5"
        sweep("ipt", BETA, [1.0, 2.0], "up", options=OPTS, start=start, segment=3, out=other)
        with h5py.File(other, "r") as f:
            assert "segment" not in json.loads(f.attrs["plan"])
    with pytest.raises(PlanMismatchError, match='segment: file "\\(absent\\)", now 2; '
                                                'start: file "continuation", now "segments"'):
        sweep("ipt", BETA, [1.0, 2.0], "up", options=OPTS, start="segments", segment=2,
              out=tmp_path / "continuation.h5")


def test_bad_segment_is_refused_in_one_line(tmp_path, capsys):
    from mldmft.cli import main

    for bad in (0, -2, 1.5, True, "4", None):
        with pytest.raises(ValueError, match="segment must be an integer >= 1") as err:
            sweep("ipt", BETA, [1.0], start="segments", segment=bad)
        assert len(str(err.value).splitlines()) == 1
    assert main(["dmft", "solver=ipt", "U_values=[1.0]", "beta=20", "start=segments",
                 "segment=0", "progress=false", "plot=false",
                 f"out={tmp_path / 'bad.h5'}"]) == 2
    err = capsys.readouterr().err
    assert "segment must be an integer >= 1" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.h5").exists()


def test_cli_runs_segments_and_names_their_default_file(tmp_path, capsys):
    """``mldmft dmft start=segments segment=N``: the sweep's plan holds N; the default file
    name holds the start mode and N, so sweeps with other lengths do not share a file."""
    from mldmft.cli import _compose, main, sweep_arguments

    out = tmp_path / "cli.h5"
    assert main(["dmft", "solver=ipt", "U_values=[1.0,2.0,3.0]", "beta=20", "loop.n_iw=256",
                 "start=segments", "segment=2", "progress=false", "plot=false",
                 f"out={out}"]) == 0
    with h5py.File(out, "r") as f:
        plan = json.loads(f.attrs["plan"])
    assert (plan["start"], plan["segment"]) == ("segments", 2)
    args = sweep_arguments(_compose("dmft", ["start=segments", "segment=3"]))
    assert args["out"] == "data/dmft/ipt_beta100_start-segments3.h5" and args["segment"] == 3
    assert sweep_arguments(_compose("dmft", []))["out"] == "data/dmft/ipt_beta100.h5"


def _counting(calls):
    """A make_solver_batch whose batch step records the U of every model it solves."""
    from mldmft.dmft.engine import make_solver_batch

    def make(*args, **kwargs):
        batch = make_solver_batch(*args, **kwargs)

        def counted(models, states):
            calls.extend(m.U for m in models)
            return batch(models, states)

        return counted

    return make


def _same_files(stored, full):
    assert [(p.branch, p.U) for p in stored] == [(p.branch, p.U) for p in full]
    for a, b in zip(stored, full):
        _same(a, b, tol=1e-10)


def test_dmft_problem_refuses_bad_input_in_one_line():
    good = dict(beta=20.0, U=2.0)
    for change, message in ((dict(beta=0.0), "beta must be a finite number and > 0"),
                            (dict(beta=True), "beta must be a finite number"),
                            (dict(U=-1.0), "U must be a finite number and >= 0"),
                            (dict(U=float("nan")), "U must be a finite number"),
                            (dict(mu="0.5"), "mu must be a finite number"),
                            (dict(mu=0.5, density=0.9), "either mu or density, not both"),
                            (dict(density=2.0), r"density must lie in \(0, 2\)"),
                            (dict(start="sideways"), "start must be one of metal, insulator, "
                                                     "previous"),
                            (dict(start=np.full(4, np.nan)), "finite 1-d Delta"),
                            (dict(start=np.zeros((2, 4))), "finite 1-d Delta"),
                            (dict(branch=""), "branch must be a non-empty string"),
                            (dict(lattice=5), "lattice must be a Lattice"),
                            (dict(lattice="honeycomb"), "unknown lattice 'honeycomb'"),
                            (dict(mu_start=0.3), "mu_start is the first mu")):
        with pytest.raises(ValueError, match=message) as err:
            DMFTProblem(**{**good, **change})
        assert len(str(err.value).splitlines()) == 1
    p = DMFTProblem(beta=20, U=1, lattice={"name": "square"}, start=[0j] * 4)
    assert p.beta == 20.0 and p.lattice.name == "square" and not p.start.flags.writeable
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.U = 3.0


def test_run_chains_refuses_bad_chains_before_any_solve():
    calls = []

    def counting(model, **options):
        calls.append(model)
        return solve("ipt", model, n_iw=256)

    ok = DMFTProblem(BETA, 1.0)
    for chains, options, message in (
            ([[DMFTProblem(BETA, 1.0, start="previous")]], OPTS, "needs a problem before it"),
            ([[ok], [DMFTProblem(BETA, 1.0, start=np.zeros(64, complex))]], OPTS,
             r"chains\[1\]\[0\]: its start Delta has 64 frequencies, options.n_iw = 256"),
            ([[ok, "U=2"]], OPTS, r"chains\[0\]\[1\] must be a DMFTProblem"),
            ([ok], OPTS, r"chains\[0\] must be a sequence"),
            ([[DMFTProblem(BETA, 1.0, density=0.8)]], DMFTOptions(n_iw=256, symmetrise=True),
             "symmetrise=True needs half filling"),
            ([[ok]], {"n_iw": 256}, "options must be a DMFTOptions")):
        with pytest.raises(ValueError, match=message) as err:
            run_chains(counting, chains, options)
        assert len(str(err.value).splitlines()) == 1
    with pytest.raises(ValueError, match="unknown solver 'magic'"):
        run_chains("magic", [[ok]], OPTS)
    assert calls == [] and run_chains(counting, [], OPTS) == [] == calls


def test_guarded_batch_counts_fallbacks_per_problem():
    """The network (here: IPT with an ensemble spread that disagrees on the rows with U > 1.5)
    is called for the batch; only the flagged rows go to the fallback (IPT under another name),
    and each problem counts its own fallbacks."""
    batches = []

    def shaky(model, **options):
        res = solve("ipt", model, n_iw=256)
        res.info["spread"] = np.full(4, 1.0 if model.U > 1.5 else 0.0)
        return res

    real = solve

    def watched_ipt(model, **options):
        if model.beta == BETA:                     # not the option check's probe model
            batches.append(model.U)
        return real("ipt", model, **options)

    from solvers import register_solver, registry

    register_solver("ipt_watched", watched_ipt, replace=True)
    try:
        points = run_chains(shaky, [[DMFTProblem(BETA, 1.0)], [DMFTProblem(BETA, 2.0)]],
                            DMFTOptions(n_iw=256, max_iter=50),
                            guard={"fallback": "ipt_watched", "threshold": 0.1})
    finally:
        for table in (registry._REGISTRY, registry._CHECKS, registry._IDENTITIES):
            table.pop("ipt_watched", None)
    (low,), (high,) = points
    assert low.fallbacks == 0 and high.fallbacks == high.iterations > 0
    assert set(batches) == {2.0} and len(batches) == high.iterations
    ipt = sweep("ipt", BETA, [1.0, 2.0], options=DMFTOptions(n_iw=256, max_iter=50))
    _same(low, ipt[0], tol=1e-5)             # the loop's tolerance: IPT one by one or batched
    _same(high, ipt[1], tol=1e-5)


# ------------------------------------------------------------ issue: warnings, densities, repeats
def test_solver_warnings_reach_the_point_files_and_table(tmp_path, capsys):
    """IPT on the square lattice with t' = -0.05, mu = -0.2 (a documented command) gives a
    negative double occupancy at U >= 2.2; IPT says so in info["warnings"] and the point carries
    it: converged, but with the warning in its note, the HDF5 file, the CSV and the table."""
    from mldmft.cli import main

    out = tmp_path / "sq.h5"
    assert main(["dmft", "solver=ipt", "lattice=square", "lattice.tp=-0.05", "mu=-0.2",
                 "U_values=[1.0,2.4]", "beta=30", "direction=up", "loop.n_iw=256",
                 "progress=false", "plot=false", f"out={out}"]) == 0
    table = capsys.readouterr().out
    low, high = load_sweep(out)
    assert low.warnings == [] and low.note() == ""
    assert high.converged and high.double_occupancy < 0
    assert any("outside the physical bounds" in w for w in high.warnings)
    assert high.note().startswith("converged, but the solver warned: double_occupancy=")
    assert "converged, but the solver warned" in table and "SOLVER WARNINGS at 1 point(s): U=2.4" \
        in table
    with open(out.with_suffix(".csv")) as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["warnings"] == "" and "outside the physical bounds" in rows[1]["warnings"]
    assert load_sweep_csv(out.with_suffix(".csv"))[1].warnings == high.warnings
    with h5py.File(out, "r") as f:
        assert json.loads(f["points/0001"].attrs["warnings"]) == high.warnings


def test_a_solver_result_that_did_not_converge_is_a_warning():
    def unsure(model, **options):
        return dataclasses.replace(solve("ipt", model, n_iw=256), converged=False)

    p = run_chains(unsure, [[DMFTProblem(BETA, 1.0)]], OPTS)[0][0]
    assert p.converged and p.warnings == ["ipt: the solver's own iteration did not converge"]


@pytest.mark.parametrize("density", [0.02, 0.05, 1.98])
def test_small_and_large_densities_converge(density):
    """``density=0.02`` at beta = 20 with IPT used to stop after one iteration (the first
    iterate's impurity density 0.15 against the lattice's 0.011 aimed the mu search at a
    negative density); the target is now kept near n and the point converges to n."""
    p = sweep("ipt", BETA, [1.0, 3.0], density=density, options=DMFTOptions(n_iw=512))
    assert all(q.converged and abs(q.density - density) < 1e-4 and q.error == "" for q in p)


def test_a_failed_chemical_potential_search_is_reported(monkeypatch, tmp_path):
    """A density the free lattice cannot hold: a one-line error before any solve. A search that
    fails inside the loop: the point says why (error, note, files), not a bare 'NOT converged'."""
    calls = []

    def ipt(model, **options):
        calls.append(model.U)
        return solve("ipt", model, n_iw=256)

    real = BetheLattice.chemical_potential

    def never(self, density, *args, **kwargs):
        raise RuntimeError(f"bethe: no chemical potential gives density {density}")

    monkeypatch.setattr(BetheLattice, "chemical_potential", never)
    with pytest.raises(ValueError, match="density 0.5: bethe: no chemical potential gives "
                                         "density 0.5") as err:
        sweep(ipt, BETA, [1.0], density=0.5, options=OPTS)
    assert calls == [] and len(str(err.value).splitlines()) == 1
    first = []

    def only_the_free_lattice(self, density, beta, sigma_iw, *args, **kwargs):
        if np.any(sigma_iw):                     # inside the loop: fail
            return never(self, density)
        first.append(density)
        return real(self, density, beta, sigma_iw, *args, **kwargs)

    monkeypatch.setattr(BetheLattice, "chemical_potential", only_the_free_lattice)
    out = tmp_path / "n.h5"
    (p,) = sweep(ipt, BETA, [1.0], density=0.5, options=OPTS, out=out)
    assert first == [0.5] and not p.converged and p.iterations == 1 and not p.retried_linear
    assert p.error.startswith("the chemical-potential search failed: bethe: no chemical "
                              "potential gives density")
    assert p.note().startswith("NOT converged in 1 iterations: the chemical-potential search")
    assert load_sweep(out)[0].error == p.error
    assert load_sweep_csv(out.with_suffix(".csv"))[0].error == p.error


def test_repeated_sweep_values_are_refused(capsys):
    from mldmft.cli import main
    from mldmft.dmft import sweep_mu

    for call in (lambda: sweep("ipt", BETA, [2.0, 1.0, 2.0]),
                 lambda: sweep_mu("ipt", BETA, 2.0, [0.5, 0.5])):
        with pytest.raises(ValueError, match="holds .* more than once") as err:
            call()
        assert len(str(err.value).splitlines()) == 1
    assert main(["dmft", "solver=ipt", "U_values=[2.0,1.0,2.0]", "beta=20", "progress=false",
                 "plot=false"]) == 2
    err = capsys.readouterr().err
    assert "U_values holds 2 more than once" in err and len(err.strip().splitlines()) == 1


def test_sweep_settings_are_checked():
    from mldmft.dmft import SweepSettings

    with pytest.raises(ValueError, match="unknown keyword n_iw; the sweep takes options"):
        sweep("ipt", BETA, [1.0], n_iw=256)
    with pytest.raises(ValueError, match="start must be one of continuation, seeded"):
        sweep("ipt", BETA, [1.0], start="random")
    with pytest.raises(ValueError, match="options must be a DMFTOptions"):
        SweepSettings(options={"n_iw": 256})
    assert SweepSettings(lattice="square").lattice.name == "square"


def test_engine_benchmark_runs_small(tmp_path):
    """benchmarks/dmft_engine.py on a small grid: the batched runs give the sequential points."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "dmft_engine.py"
    spec = importlib.util.spec_from_file_location("dmft_engine_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--beta", "20", "--U", "1.0,3.0,1.0", "--n-iw", "256", "--betas", "20,30",
                       "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    runs = report["runs"]
    assert runs["continuation"]["max_abs_dZ_vs_sequential"] < 1e-5
    assert runs["continuation"]["solver_calls"] == runs["sequential"]["solver_calls"]
    assert runs["seeded"]["largest_batch"] == 6 and report["points"] == 6
    assert report["side_by_side"]["chains"] == 4 and report["side_by_side"]["max_abs_dZ"] < 1e-5
    assert (tmp_path / "report.txt").read_text().startswith("# ")


def test_a_file_without_a_start_mode_is_a_continuation_sweep(tmp_path):
    """Sweep files written before the start modes hold no ``start`` in their plan: they resume
    as continuation sweeps and are refused as seeded ones."""
    from mldmft.dmft import PlanMismatchError

    out = tmp_path / "old.h5"
    first = sweep("ipt", BETA, [1.0, 2.0], options=OPTS, out=out)
    with h5py.File(out, "r+") as f:
        plan = json.loads(f.attrs["plan"])
        del plan["start"]
        f.attrs["plan"] = json.dumps(plan)
    again = sweep("ipt", BETA, [1.0, 2.0], options=OPTS, out=out)
    assert [p.wall_time for p in again] == [p.wall_time for p in first]      # read back
    with pytest.raises(PlanMismatchError, match='start: file "continuation", now "seeded"'):
        sweep("ipt", BETA, [1.0, 2.0], options=OPTS, out=out, start="seeded")


@pytest.mark.parametrize("density", [1e-4, 1.999])
def test_the_metallic_seed_at_fixed_density_holds_that_density(density):
    """At fixed density the metallic seed is the free lattice holding ``n`` (its ``mu``), so the
    first iterate's impurity density is already close to ``n``: extreme fillings converge (from
    the half-filled seed the first mu search at n = 1e-4, beta = 100 found no chemical
    potential)."""
    p = sweep("ipt", 100.0, [1.0, 3.0], density=density, options=DMFTOptions(n_iw=512))
    assert all(q.converged and abs(q.density - density) < 1e-4 and q.error == "" for q in p)
    mu_free = LAT.chemical_potential(density, 100.0, np.zeros(512))
    np.testing.assert_allclose(metal_seed(LAT, 100.0, 512, mu_free),
                               LAT.t ** 2 * LAT.g0_iw(100.0, 512, mu_free), atol=1e-14)


# ---------------------------------------------------------------- a failing problem in a batch
def _good_chains():
    return [[DMFTProblem(BETA, 1.0), DMFTProblem(BETA, 2.0, start="previous")],
            [DMFTProblem(BETA, 3.0, start="insulator", branch="down")]]


def test_a_problem_the_solver_fails_on_leaves_the_batch_with_its_reason():
    """IPT refuses U = 300 at n_iw = 256 (its Matsubara mesh stops below the model's energies):
    that problem ends at once, not converged, with the solver's reason, and every other problem
    gives bit for bit the points of a run without it (the batch is re-solved without the
    failing model). A problem after it in its chain starts from its last Delta."""
    alone = run_chains("ipt", _good_chains(), OPTS)
    mixed = run_chains("ipt", [_good_chains()[0], [DMFTProblem(BETA, 300.0)],
                               _good_chains()[1]], OPTS)
    failed = mixed[1][0]
    assert not failed.converged and failed.iterations == 1
    assert "the solver failed on this problem: ValueError: IPT: n_iw=256" in failed.error
    assert np.isnan(failed.Z) and np.isnan(failed.density)
    np.testing.assert_array_equal(failed.delta_iw, metal_seed(LAT, BETA, OPTS.n_iw))
    assert "the solver failed" in failed.note()
    for got, want in zip(mixed[0] + mixed[2], alone[0] + alone[1]):
        _same(got, want, tol=0.0)
    calls = []
    chained = run_chains("ipt", [[DMFTProblem(BETA, 300.0), DMFTProblem(BETA, 1.0,
                                                                          start="previous")]],
                         OPTS, on_iteration=lambda step, progress: calls.append(len(progress)))
    assert not chained[0][0].converged
    _same(chained[0][1], alone[0][0], tol=1e-10)   # the metallic seed, as U = 1 alone
    assert len(calls) == 1 + alone[0][0].iterations


def test_every_problem_failing_stops_each_with_its_reason():
    """A batch whose every model the solver refuses: each problem ends with the reason."""
    points = run_chains("ipt", [[DMFTProblem(BETA, 300.0)], [DMFTProblem(BETA, 400.0)]], OPTS)
    assert [p[0].converged for p in points] == [False, False]
    assert all("IPT: n_iw=256" in p[0].error for p in points)


def test_a_failing_problem_is_saved_and_shown_by_a_sweep(tmp_path):
    """A seeded sweep with a U the solver refuses: the others converge, the failed point is
    saved (NaN scalars, its reason) and read back."""
    out = tmp_path / "s.h5"
    pts = sweep("ipt", BETA, [1.0, 300.0], "up", start="seeded", options=OPTS, out=out)
    assert [p.converged for p in pts] == [True, False]
    back = load_sweep(out)
    assert back[1].error == pts[1].error and np.isnan(back[1].Z)
    assert back[0].Z == pts[0].Z


def test_the_ml_solver_refusing_one_model_leaves_the_others_going():
    """The fast network refuses U = 8 (outside its domain, no extrapolation): that problem
    stops with the OutsideDomainError's message; the others equal a run without it."""
    pytest.importorskip("torch")
    import mldmft.ml  # noqa: F401

    opts = DMFTOptions(n_iw=1024, tol=1e-5, max_iter=60)
    good = [[DMFTProblem(50.0, 1.5)], [DMFTProblem(50.0, 3.5, start="insulator", branch="down")]]
    so = {"network": "fast"}
    alone = run_chains("ml", good, opts, solver_options=so)
    mixed = run_chains("ml", [good[0], [DMFTProblem(50.0, 8.0)], good[1]], opts,
                       solver_options=so)
    assert not mixed[1][0].converged
    assert "OutsideDomainError" in mixed[1][0].error and "U = 8" in mixed[1][0].error
    for got, want in zip(mixed[0] + mixed[2], alone[0] + alone[1]):
        _same(got, want, tol=0.0)
