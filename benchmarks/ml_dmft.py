"""Network-DMFT against 8-site ED-DMFT and small-bath ED-DMFT, across temperature and filling.

    python benchmarks/ml_dmft.py [--betas 30,75,150] [--densities 1,0.9] [--methods ...]
                                 [--report-only] [--out-dir data/ml_dmft]

Bethe lattice (D = 1). For every beta and filling, Mott sweeps up and down in U with

* ``ed8``: ED-DMFT with 8 bath sites refitted every iteration -- the reference;
* ``ed1`` ... ``ed5``: the same with 1-5 bath sites: the cheapest competitors of a network, whose
  cost grows and error shrinks with the number of sites (the cost-accuracy front);
* ``net``: the ed3-based phase-diagram network (``mldmft/pretrained/phase_diagram.pt``, or
  ``--checkpoint``) unguarded; its guard rate is counted without acting
  (``guard={"fallback": None}``);
* ``fast``: the network with no ED among its inputs (``network="fast"``, or ``--fast-checkpoint``),
  unguarded, one problem at a time (each branch a continuation sweep of its own);
* ``fast_batched``: the same network, every point of both branches of a ``(beta, filling)`` in
  one run of the batched engine (``start="seeded"``: each U from the metallic seed on the up
  branch, from the insulating seed on the down branch, all problems iterated in lockstep with
  one network call per iteration); its time per point is the run's wall time divided by its
  points. The report says where a seeded point lands on another phase than the continuation;
* ``fast_segments``: the same network and one batched run as ``fast_batched``, but
  ``start="segments"``: each branch cut into segments of ``--segment`` U values (default
  :data:`SEGMENT`), a segment's first U from the branch's seed, the rest continued from the point
  before, all segments in one batch; its time per point and phase changes are reported as for
  ``fast_batched``. Its sweep file holds the segment length in its name (``all_s<N>``), so runs
  with other lengths sit side by side;
* ``net_guarded``: the network with the ED guard (an iteration whose ensemble spread exceeds the
  threshold or whose ``G(tau)`` is positive somewhere is done by 8-site ED instead).

Grids: half filling ``U = 1.0, 1.1, ..., 3.6`` both ways, then step 0.02 across each branch end
(``[U_end - 0.1, U_end + 0.1]``, located on the 8-site coarse sweep: the up window started from
the metal, the down window from the insulator, the same for every method); density 0.9:
``U = 1.0, 1.2, ..., 3.6`` both ways, ``mu`` found in the loop to ``|n - 0.9| < 1e-4``. All loops
``tol = 1e-5``. Guard threshold: ``max_l std(G_l) > 4e-4 beta`` (the shipped beta = 50 guard's 0.02,
scaled with beta because ``G_l`` scales with beta).

Figures, per beta and filling and method, against ``ed8`` on the points both converged: max |dZ|,
max |dn|, max |d docc| (and max |dZ| over the points where both are in the same phase), the branch
ends Uc2 (last metallic U of the up branch) and Uc1 (last insulating U of the down branch;
metallic: ``-beta G(beta/2) > 0.5``), the guard rate (flagged / all iterations), the median time
per converged point and the load average while it ran; the cheapest small-bath ED at least as
accurate as the network (its max |dZ| no larger than the network's) and the ratio of its time
per point to the network's. ``AIMS`` holds the targets the report is read against. Writes
``report.json``, ``front.png``
(time per point against max |dZ|) and ``z_curves.png`` under the output directory, and the
8-site reference curves as ``ed8_beta<B>_n<n>.csv``.

The committed figures (``--max-iter 100`` at beta = 75 and 150, where the slow passage past a
branch end otherwise costs half an hour per 8-site point) are in ``benchmarks/results/ml_dmft/``
(with their dates and machine load) and discussed in ``docs/dmft.md``; ``--reference-dir
benchmarks/results/ml_dmft`` compares another network (or method) with those 8-site curves on
the same grids without recomputing them (~3 core-hours).

Every sweep is its own resumable HDF5 file under the output directory: an interrupted run
continues where it stopped, finished sweeps are read back, and betas can run in separate
processes (``--betas 150`` and ``--betas 30,75``) before one ``--report-only`` run prints all.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mldmft.dmft.sweep import SweepSettings  # noqa: E402
from mldmft.dmft.transition import branch_ends, is_metallic  # noqa: E402

METHODS = ("ed8", "net", "net_guarded", "fast", "fast_batched", "fast_segments", "ed1", "ed2",
           "ed3", "ed4", "ed5")
#: Methods whose points of a ``(beta, filling)`` run in one batched run; the others run one
#: problem at a time: ``direction="both"`` is split into an up and a down sweep (the engine
#: would otherwise iterate the two branches side by side).
BATCHED = ("fast_batched", "fast_segments")
#: The start mode of each batched method (:func:`mldmft.dmft.sweep`).
BATCHED_START = {"fast_batched": "seeded", "fast_segments": "segments"}
TOL = 1e-5
GUARD_PER_BETA = 4e-4
AIMS = {"max_abs_dZ": 0.005, "max_abs_dn": 0.002, "dUc": 0.05, "guard_rate": 0.01,
        "speedup_vs_ed8": 100.0, "speedup_vs_front": 10.0}


def coarse_grid(density: float) -> list[float]:
    step = 0.1 if density == 1.0 else 0.2
    return [float(u) for u in np.round(np.arange(1.0, 3.6 + 1e-9, step), 6)]


def fine_window(u_end: float) -> list[float]:
    return [float(u) for u in np.round(np.arange(u_end - 0.1, u_end + 0.1 + 1e-9, 0.02), 6)]


#: The network's checkpoint (``--checkpoint``); None: the shipped default.
CHECKPOINT: str | None = None
#: The fast network's checkpoint (``--fast-checkpoint``); None: the shipped ``fast`` network.
FAST_CHECKPOINT: str | None = None
#: U values per segment of ``fast_segments`` (``--segment``); default the sweep's.
SEGMENT: int = SweepSettings().segment


def _batched_stage(method: str) -> str:
    """The stage (file-name part) of a batched method's one run: ``all``, for
    ``fast_segments`` ``all_s<segment>``."""
    return f"all_s{SEGMENT}" if method == "fast_segments" else "all"


def _solver(method: str, beta: float) -> tuple[str, dict, dict | None]:
    thr = GUARD_PER_BETA * beta
    net = {"network": "phase_diagram"} if CHECKPOINT is None else {"checkpoint": CHECKPOINT}
    if method in ("fast", "fast_batched", "fast_segments"):
        # extrapolate: at fixed density the first iterations' mu search passes through densities
        # that IPT (the fast model's density estimate) puts outside [0.5, 1.5]; beta and U of
        # every benchmark point lie inside the domain
        fast = ({"network": "fast"} if FAST_CHECKPOINT is None
                else {"checkpoint": FAST_CHECKPOINT})
        fast["extrapolate"] = True
        return "ml", fast, {"fallback": None, "threshold": thr}
    if method == "net":
        return "ml", net, {"fallback": None, "threshold": thr}
    if method == "net_guarded":
        return "ml", net, {"fallback": "ed", "threshold": thr, "fallback_options": {"n_bath": 8}}
    return "ed", {"n_bath": int(method[2:])}, None


def run_sweep(out_dir: Path, method: str, beta: float, density: float, stage: str,
              U_values: list[float], direction: str, report_only: bool = False,
              max_iter: int = 300) -> list:
    """One resumable sweep (``out_dir/b<beta>_n<n>_<method>_<stage>.h5``); ``report_only``:
    read it back as far as it got, compute nothing (``ValueError`` when it was never started).
    A one-at-a-time method runs ``direction="both"`` as an up and a down sweep (``_up``,
    ``_down`` files); ``fast_batched`` runs it seeded, ``fast_segments`` in segments of
    :data:`SEGMENT`, both branches in one batched run."""
    from mldmft.dmft import DMFTOptions, sweep
    from mldmft.dmft.io import load_sweep

    if direction == "both" and method not in BATCHED:
        return [p for d in ("up", "down")
                for p in run_sweep(out_dir, method, beta, density, f"{stage}_{d}", U_values, d,
                                   report_only, max_iter)]
    solver, opts, guard = _solver(method, beta)
    out = out_dir / f"b{beta:g}_n{density:g}_{method}_{stage}.h5"
    if report_only:
        if not out.exists():
            raise ValueError(f"{out.name} not computed yet")
        return load_sweep(out)
    kwargs = {} if density == 1.0 else {"density": density}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sweep(solver, beta, U_values, direction, solver_options=opts, guard=guard,
                     options=DMFTOptions(tol=TOL, max_iter=max_iter), out=out, progress=True,
                     start=BATCHED_START.get(method, "continuation"), segment=SEGMENT,
                     metadata={"load_average_start": os.getloadavg()[0]}, **kwargs)


def _load_start(out_dir: Path, method: str, beta: float, density: float) -> list[float]:
    import h5py

    loads = []
    prefix = f"b{beta:g}_n{density:g}_{method}_"
    for f in sorted(out_dir.glob(prefix + "*.h5")):
        stage = f.stem[len(prefix):]
        if method in BATCHED and stage != _batched_stage(method):
            continue                                  # another segment length's run
        if stage.split("_")[0] not in ("coarse", "fine", "all"):
            continue                                  # another method's (net_guarded, fast_batched)
        with h5py.File(f, "r") as h:
            meta = json.loads(h.attrs.get("meta", "{}"))
        if "load_average_start" in meta:
            loads.append(float(meta["load_average_start"]))
    return loads


def read_reference_csv(path: Path) -> list[tuple[str, Any]]:
    """``[(stage, point), ...]`` from a reference CSV this script wrote (the scalars only)."""
    pts = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            pts.append((row["stage"], SimpleNamespace(
                U=float(row["U"]), branch=row["branch"], converged=row["converged"] == "True",
                iterations=int(row["iterations"]), Z=float(row["Z"]),
                double_occupancy=float(row["double_occupancy"]), density=float(row["density"]),
                g_beta_half=float(row["g_beta_half"]), mu=float(row["mu"]),
                wall_time=float(row["wall_time"]), fallbacks=0)))
    return pts


#: The sweep direction of each stage.
_DIRECTION = {"coarse": "both", "fine_up": "up", "fine_down": "down"}


def run_case(out_dir: Path, beta: float, density: float, methods: list[str],
             reference: str = "ed8", coarse: list[float] | None = None,
             report_only: bool = False, max_iter: int = 300,
             reference_dir: Path | None = None) -> dict[str, list]:
    """All sweeps of one (beta, filling): ``{method: [(stage, point), ...]}`` (the coarse sweep,
    then the fine windows around the reference's branch ends). With ``reference_dir`` the
    reference is read from its ``<reference>_beta<B>_n<n>.csv`` (e.g. the committed
    ``benchmarks/results/ml_dmft/``) instead of being computed, and its grids are reused."""
    if reference_dir is not None:
        ref = read_reference_csv(reference_dir / f"{reference}_beta{beta:g}_n{density:g}.csv")
        grids: dict[str, set[float]] = {}
        for stage, p in ref:
            grids.setdefault(stage, set()).add(p.U)
        stages = [(st, sorted(g), _DIRECTION[st]) for st, g in grids.items()]
        result, todo = {reference: ref}, [m for m in methods if m != reference]
    else:
        coarse = coarse_grid(density) if coarse is None else coarse
        ref_coarse = run_sweep(out_dir, reference, beta, density, "coarse", coarse, "both",
                               report_only, max_iter)
        stages = [("coarse", coarse, "both")]
        uc1, uc2 = branch_ends(ref_coarse)
        if density == 1.0 and uc2 is not None:
            stages.append(("fine_up", fine_window(uc2), "up"))
        if density == 1.0 and uc1 is not None:
            stages.append(("fine_down", fine_window(uc1), "down"))
        result, todo = {}, [reference] + [m for m in methods if m != reference]
    for method in todo:
        pts = []
        if method in BATCHED:          # every point of both branches in one batched run
            grid = sorted({u for _, g, _ in stages for u in g})
            how = ("seeded" if BATCHED_START[method] == "seeded"
                   else f"segments of {SEGMENT}")
            print(f"beta = {beta:g}, n = {density:g}: {method} ({len(grid)} U values, both "
                  f"branches, {how}, one batch)", flush=True)
            try:
                run = run_sweep(out_dir, method, beta, density, _batched_stage(method), grid,
                                "both", report_only, max_iter)
            except ValueError as err:
                if not report_only:
                    raise
                print(f"  ({err})")
                run = []
            by = {(p.branch, round(p.U, 6)): p for p in run}
            result[method] = [(stage, by[(b, round(u, 6))]) for stage, g, d in stages for u in g
                              for b in (("up", "down") if d == "both" else (d,))
                              if (b, round(u, 6)) in by]
            continue
        for stage, grid, direction in stages:
            print(f"beta = {beta:g}, n = {density:g}: {method} {stage} ({len(grid)} U values, "
                  f"{direction})", flush=True)
            try:
                pts += [(stage, p) for p in run_sweep(out_dir, method, beta, density, stage,
                                                      grid, direction, report_only,
                                                      max_iter)]
            except ValueError as err:
                if not report_only:
                    raise
                print(f"  ({err})")
        result[method] = pts
    return result


def compare(points: list, ref: list) -> dict:
    """Figures of one method's points against the reference (same stage, branch and U)."""
    by = {(s, p.branch, round(p.U, 6)): p for s, p in ref}
    dz, dz_same, dn, dd, missing = [], [], [], [], 0     # dz: (|dZ|, branch, U)
    for s, p in points:
        r = by.get((s, p.branch, round(p.U, 6)))
        if r is None or not (p.converged and r.converged):
            missing += 1
            continue
        dz.append((abs(p.Z - r.Z), p.branch, p.U))
        if is_metallic(p) == is_metallic(r):
            dz_same.append(abs(p.Z - r.Z))
        dn.append(abs(p.density - r.density))
        dd.append(abs(p.double_occupancy - r.double_occupancy))
    pts = [p for _, p in points]
    uc1, uc2 = branch_ends(pts)
    iters = sum(p.iterations for p in pts)
    times = [p.wall_time for p in pts if p.converged]
    worst = max(dz) if dz else None
    return {"points": len(pts), "converged": sum(p.converged for p in pts),
            "not_compared": missing, "max_abs_dZ": worst[0] if worst else None,
            "max_abs_dZ_same_phase": max(dz_same) if dz_same else None,
            "worst_dZ_at": list(worst[1:]) if worst else None, "max_abs_dn": max(dn) if dn else None,
            "max_abs_ddocc": max(dd) if dd else None, "Uc2": uc2, "Uc1": uc1,
            "iterations": int(iters), "flagged_iterations": int(sum(p.fallbacks for p in pts)),
            "guard_rate": sum(p.fallbacks for p in pts) / max(iters, 1),
            "median_time_per_point_s": statistics.median(times) if times else None,
            "total_time_s": float(sum(p.wall_time for p in pts))}


def _write_reference_csv(out_dir: Path, beta: float, density: float, ref: list,
                         name: str = "ed8") -> Path:
    path = out_dir / f"{name}_beta{beta:g}_n{density:g}.csv"
    keys = ("U", "branch", "converged", "iterations", "Z", "double_occupancy", "density",
            "g_beta_half", "mu", "wall_time")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("stage",) + keys)
        for s, p in ref:
            w.writerow((s,) + tuple(getattr(p, k) for k in keys))
    return path


#: The networks placed on the cost-accuracy front.
NETWORKS = ("net", "fast", "fast_batched", "fast_segments")


def front_summary(figs: dict, reference: str = "ed8") -> dict:
    """Each network (:data:`NETWORKS`) against the cheapest small-bath ED at least as accurate
    (max |dZ| over the points both it and the reference converged; its unconverged points are
    counted in its ``not_compared``): ``{network: {cheapest_as_accurate, its_time_s,
    speedup_vs_front, speedup_vs_<reference>}}``. Times are ``time_per_point_s``."""
    out = {}
    for name in NETWORKS:
        net = figs.get(name)
        if not net or net["max_abs_dZ"] is None:
            continue
        row: dict[str, Any] = {}
        as_good = [(figs[m]["time_per_point_s"], m) for m in ("ed1", "ed2", "ed3", "ed4", "ed5")
                   if m in figs and figs[m]["max_abs_dZ"] is not None
                   and figs[m]["max_abs_dZ"] <= net["max_abs_dZ"]]
        t_net = net["time_per_point_s"]
        if as_good:
            t, m = min(as_good)
            row.update(cheapest_as_accurate=m, its_time_s=t, speedup_vs_front=t / t_net)
        if reference in figs:
            row[f"speedup_vs_{reference}"] = figs[reference]["time_per_point_s"] / t_net
        out[name] = row
    return out


def phase_changes(batched: list, continued: list) -> list[list]:
    """``[[stage, branch, U], ...]`` where a point of a batched run (seeded or segments) lands
    on another phase (metal or insulator, :func:`is_metallic`) than the continuation point of
    the same stage, branch and U."""
    by = {(s, p.branch, round(p.U, 6)): p for s, p in continued}
    return [[s, p.branch, p.U] for s, p in batched
            if (s, p.branch, round(p.U, 6)) in by
            and is_metallic(p) != is_metallic(by[(s, p.branch, round(p.U, 6))])]


def _plots(out_dir: Path, cases: dict, report: dict, reference: str = "ed8") -> list[Path]:
    """``front.png``: time per point against max |dZ| per beta (methods labelled at their
    points, circles half filling, squares n = 0.9); ``z_curves.png``: per (beta, filling) Z(U)
    of the reference and the network, and below it Z - Z_ref of the network and the 3-5-site
    EDs (up solid, down dashed) with the aim's band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    betas = sorted({b for b, _ in cases})
    dens = sorted({n for _, n in cases}, reverse=True)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {m: c for m, c in zip(METHODS, cycle + ["#4b0082", "#006400"])}
    fig, axes = plt.subplots(1, len(betas), figsize=(5 * len(betas), 4.4), squeeze=False)
    for ax, b in zip(axes[0], betas):
        for n, marker in zip(dens, ("o", "s")):
            figs = report.get(f"beta={b:g}, n={n:g}", {}).get("methods", {})
            for m, f in figs.items():
                if m == reference or f["max_abs_dZ"] is None:
                    continue
                x, y = f["time_per_point_s"], max(f["max_abs_dZ"], 1e-6)
                ax.loglog(x, y, marker, color=colors[m], ms=8, mfc="none" if n != 1 else None)
                ax.annotate(m.replace("_guarded", "+guard"), (x, y), fontsize=7,
                            xytext=(4, 3 if marker == "o" and m != "net_guarded" else -9),
                            textcoords="offset points")
            if reference in figs:
                ax.axvline(figs[reference]["time_per_point_s"], color="k",
                           ls="-" if n == 1 else ":", lw=1)
        ax.axhline(AIMS["max_abs_dZ"], color="gray", ls="--", lw=1)
        ax.set_xlabel(f"time per DMFT point (s; batched: run time / points); vertical: {reference}")
        ax.set_ylabel(f"max |Z - Z({reference})|")
        ax.set_title(f"beta = {b:g} (o: n = 1, open square: n = 0.9)", fontsize=9)
    fig.suptitle("Cost-accuracy front, Bethe lattice; dashed: the aim |dZ| = 0.005", fontsize=10)
    fig.tight_layout()
    paths.append(out_dir / "front.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(2 * len(dens), len(betas), figsize=(4.6 * len(betas),
                             3.2 * 2 * len(dens)), squeeze=False, sharex="col")
    for (i, n), (j, b) in ((a, c) for a in enumerate(dens) for c in enumerate(betas)):
        top, bottom = axes[2 * i][j], axes[2 * i + 1][j]
        if (b, n) not in cases:
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        res = cases[(b, n)]
        ref = {(s, p.branch, round(p.U, 6)): p for s, p in res[reference]}
        for m in [reference, *NETWORKS] + [f"ed{k}" for k in (3, 4, 5)]:
            if m not in res:
                continue
            for branch, ls, mk in (("up", "-", ">"), ("down", "--", "<")):
                pts = sorted(((s, p) for s, p in res[m] if p.branch == branch),
                             key=lambda sp: sp[1].U)
                if not pts:
                    continue
                u = [p.U for _, p in pts]
                if m in (reference, *NETWORKS):
                    style = (dict(lw=5, alpha=0.3) if m == reference
                             else dict(lw=1, marker=mk, ms=3))
                    top.plot(u, [p.Z for _, p in pts], ls, color=colors[m],
                             label=f"{m} {branch}", **style)
                if m == reference:
                    continue
                pairs = [(p.U, p.Z - ref[(s, p.branch, round(p.U, 6))].Z) for s, p in pts
                         if (s, p.branch, round(p.U, 6)) in ref and p.converged
                         and ref[(s, p.branch, round(p.U, 6))].converged]
                if pairs:
                    bottom.plot(*zip(*pairs), ls, color=colors[m], lw=1, marker=mk, ms=2,
                                label=f"{m} {branch}")
        bottom.axhspan(-AIMS["max_abs_dZ"], AIMS["max_abs_dZ"], color="gray", alpha=0.15)
        bottom.set_ylim(-0.06, 0.06)
        top.set_title(f"beta = {b:g}, n = {n:g}")
        top.set_ylabel("Z")
        bottom.set_ylabel(f"Z - Z({reference}) (clipped at 0.06)")
        bottom.set_xlabel("U / D")
        top.legend(fontsize=6)
        bottom.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    paths.append(out_dir / "z_curves.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def _fmt(x, spec=".4f") -> str:
    return "-" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    global CHECKPOINT, FAST_CHECKPOINT, SEGMENT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--betas", default="30,75,150")
    ap.add_argument("--densities", default="1,0.9")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out-dir", type=Path, default=REPO / "data" / "ml_dmft")
    ap.add_argument("--report-only", action="store_true",
                    help="read the finished sweeps, run nothing new")
    ap.add_argument("--max-iter", type=int, default=300,
                    help="loop iterations per point (and again for the linear-mixing retry)")
    ap.add_argument("--reference", default="ed8", help="reference method (default ed8)")
    ap.add_argument("--reference-dir", type=Path, default=None,
                    help="read the reference curves from <reference>_beta<B>_n<n>.csv there "
                         "(e.g. benchmarks/results/ml_dmft) instead of computing them")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="the network of net and net_guarded (default: the shipped "
                         "mldmft/pretrained/phase_diagram.pt), e.g. an active-learning round's")
    ap.add_argument("--fast-checkpoint", type=Path, default=None,
                    help="the network of fast, fast_batched and fast_segments (default: the "
                         "shipped 'fast')")
    ap.add_argument("--segment", type=int, default=SEGMENT,
                    help=f"U values per segment of fast_segments (default {SEGMENT})")
    ap.add_argument("--coarse", default=None,
                    help="comma-separated coarse U grid instead of the default (smoke tests)")
    args = ap.parse_args(argv)
    betas = [float(b) for b in args.betas.split(",")]
    densities = [float(n) for n in args.densities.split(",")]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    coarse = None if args.coarse is None else [float(u) for u in args.coarse.split(",")]
    bad = [m for m in methods + [args.reference] if m not in METHODS]
    if bad:
        ap.error(f"unknown method(s) {bad}; choose from {', '.join(METHODS)}")
    if any(not 20 <= b <= 200 for b in betas):
        ap.error("betas must lie in the network's domain [20, 200]")
    if args.checkpoint is not None:
        if not args.checkpoint.is_file():
            ap.error(f"--checkpoint {args.checkpoint}: no such file")
        CHECKPOINT = str(args.checkpoint.resolve())
    if args.segment < 1:
        ap.error(f"--segment must be >= 1, got {args.segment}")
    SEGMENT = args.segment
    if args.fast_checkpoint is not None:
        if not args.fast_checkpoint.is_file():
            ap.error(f"--fast-checkpoint {args.fast_checkpoint}: no such file")
        FAST_CHECKPOINT = str(args.fast_checkpoint.resolve())
    args.out_dir.mkdir(parents=True, exist_ok=True)

    import torch

    torch.set_num_threads(1)
    import mldmft.ml  # noqa: F401

    cases, report = {}, {}
    for b in betas:
        for n in densities:
            try:
                cases[(b, n)] = res = run_case(args.out_dir, b, n, methods, args.reference,
                                               coarse, args.report_only, args.max_iter,
                                               args.reference_dir)
            except ValueError as err:          # --report-only: the reference not started
                if not args.report_only:
                    raise
                print(f"beta = {b:g}, n = {n:g}: {err}")
                continue
            ref = res[args.reference]
            if args.reference_dir is None:
                _write_reference_csv(args.out_dir, b, n, ref, args.reference)
            figs = {m: compare(pts, ref) for m, pts in res.items() if pts}
            for m, f in figs.items():
                # one at a time: the median point; batched: the run's time over its points
                f["time_per_point_s"] = (f["total_time_s"] / f["points"] if m in BATCHED
                                         else f["median_time_per_point_s"])
            for m in BATCHED:
                if m in figs and res.get("fast"):
                    figs[m]["phase_differs_from_continuation"] = phase_changes(res[m],
                                                                               res["fast"])
            if "fast_segments" in figs:
                figs["fast_segments"]["segment"] = SEGMENT
            for m in figs:
                loads = _load_start(args.out_dir, m, b, n)
                figs[m]["load_average"] = [min(loads), max(loads)] if loads else None
            report[f"beta={b:g}, n={n:g}"] = {"methods": figs,
                                              "front": front_summary(figs, args.reference)}
    for key, r in report.items():
        figs = r["methods"]
        ref_uc2, ref_uc1 = figs[args.reference]["Uc2"], figs[args.reference]["Uc1"]
        print(f"\n{key}  ({args.reference}: Uc2 {_fmt(ref_uc2, '.2f')}, Uc1 {_fmt(ref_uc1, '.2f')})")
        print(f"{'method':<14}{'pts':>5}{'conv':>5}{'max|dZ|':>9}{'same ph':>9}{'max|dn|':>10}"
              f"{'max|dD|':>9}{'Uc2':>6}{'Uc1':>6}{'guard':>8}{'it/pt':>7}{'s/pt':>8}"
              f"{'load':>10}")
        for m, f in figs.items():
            load = "-" if f["load_average"] is None else \
                f"{f['load_average'][0]:.1f}-{f['load_average'][1]:.1f}"
            print(f"{m:<14}{f['points']:>5}{f['converged']:>5}{_fmt(f['max_abs_dZ']):>9}"
                  f"{_fmt(f['max_abs_dZ_same_phase']):>9}{_fmt(f['max_abs_dn'], '.1e'):>10}"
                  f"{_fmt(f['max_abs_ddocc']):>9}{_fmt(f['Uc2'], '.2f'):>6}{_fmt(f['Uc1'], '.2f'):>6}"
                  f"{f['guard_rate']:>8.3%}{f['iterations'] / max(f['points'], 1):>7.1f}"
                  f"{_fmt(f['time_per_point_s'], '.3f'):>8}{load:>10}")
        for name, fr in r["front"].items():
            print(f"{name}: {_fmt(fr.get('speedup_vs_' + args.reference), '.1f')}x faster per "
                  f"point than {args.reference}; cheapest small-bath ED as accurate: "
                  f"{fr.get('cheapest_as_accurate', 'none')}"
                  + (f" ({fr['speedup_vs_front']:.2f}x the network's time)"
                     if "speedup_vs_front" in fr else ""))
        for m in BATCHED:
            moved = figs.get(m, {}).get("phase_differs_from_continuation")
            if moved is None:
                continue
            how = ("seeded" if BATCHED_START[m] == "seeded"
                   else f"segments-of-{figs[m]['segment']}")
            print(f"{m}: {how} points on another phase than the continuation: "
                  f"{len(moved)}" + (f" ({', '.join(f'{b} U={u:g}' for _, b, u in moved)})"
                                     if moved else ""))
    if report:
        (args.out_dir / "report.json").write_text(json.dumps(
            {"aims": AIMS, "guard_threshold": f"{GUARD_PER_BETA} beta", "tol": TOL,
             "cases": report}, indent=2) + "\n")
        for p in _plots(args.out_dir, cases, report, args.reference):
            print(f"figure: {p}")
        print(f"report: {args.out_dir / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
