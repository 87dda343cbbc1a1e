"""The batched DMFT engine against the sequential loop: an IPT sweep over both branches.

    python benchmarks/dmft_engine.py [--beta 100] [--U 1.0,3.9,0.1] [--n-iw 1024] [--tol 1e-6]
                                     [--repeat 1] [--out benchmarks/results/dmft_engine]

Bethe lattice, half filling, IPT, ``len(U)`` values up and down (default 30 values, 60 points),
in one process, one after the other:

* ``sequential``: each branch a chain of :func:`mldmft.dmft.solve_point` calls, one point and
  one impurity solve (``solvers.solve``) at a time;
* ``continuation``: ``sweep(..., "both")`` on the engine -- the two branches side by side, one
  batched IPT call per iteration for both;
* ``seeded``: ``sweep(..., "both", start="seeded")`` -- every point of both branches from its
  branch's seed, all in one batch.

and, with ``--betas`` (default 50,75,100,150), the up and down branches of every listed
temperature (``2 x len(betas)`` continuation chains) once problem by problem with ``solve_point``
and once in one :func:`mldmft.dmft.run_chains` call, all chains side by side.

Printed and written (``report.txt``, ``report.json``): wall time of each (the best of
``--repeat`` runs), solver calls and batched iterations, ``max |dZ|`` of the batched runs against
the sequential one, the branch ends ``(Uc1, Uc2)`` of each, and which seeded points land on
another branch than the continuation (near the ends of the coexistence window a seed may pick
the other solution), with the date, the machine's cores and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _sequential(betas: list[float], U: list[float], options) -> tuple[list, int]:
    """Both branches at every beta, point by point (solve_point chains); the solver calls."""
    from mldmft.dmft import BetheLattice, solve_point
    from solvers import solve

    lattice = BetheLattice()
    calls = [0]

    def step(model, state):
        calls[0] += 1
        return solve("ipt", model, n_iw=options.n_iw)

    points = []
    for beta in betas:
        for branch, values in (("up", sorted(U)), ("down", sorted(U, reverse=True))):
            delta = lattice.seed_delta_iw(beta, options.n_iw,
                                          None if branch == "up" else values[0])
            for u in values:
                p = solve_point(step, beta, u, delta, lattice, None, options, branch)
                points.append(p)
                delta = p.delta_iw
    return points, calls[0]


@contextmanager
def _batch_sizes() -> Iterator[list[int]]:
    """The size of every batched solver call of the DMFT steps made inside the block."""
    import mldmft.dmft.steps as steps

    sizes: list[int] = []
    real = steps.solve_many

    def counted(name, models, **kwargs):
        sizes.append(len(models))
        return real(name, models, **kwargs)

    steps.solve_many = counted
    try:
        yield sizes
    finally:
        steps.solve_many = real


def _chains(betas: list[float], U: list[float], options) -> tuple[list, int, list[int]]:
    """The same chains as :func:`_sequential` in one run_chains call; solver calls and the
    batch size of every iteration."""
    from mldmft.dmft import DMFTProblem, run_chains

    chains = [[DMFTProblem(beta, u, branch=branch,
                           start=("previous" if i else "metal" if branch == "up" else "insulator"))
               for i, u in enumerate(sorted(U, reverse=branch == "down"))]
              for beta in betas for branch in ("up", "down")]
    with _batch_sizes() as sizes:
        points = [p for chain in run_chains("ipt", chains, options) for p in chain]
    return points, sum(sizes), sizes


def _batched(beta: float, U: list[float], options, start: str) -> tuple[list, int, list[int]]:
    """``sweep(..., "both", start=start)``; solver calls and the batch size of every iteration."""
    from mldmft.dmft import sweep

    with _batch_sizes() as sizes:
        points = sweep("ipt", beta, U, "both", options=options, start=start)
    return points, sum(sizes), sizes


def _timed(run, repeat: int):
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beta", type=float, default=100.0)
    ap.add_argument("--U", default="1.0,3.9,0.1", help="start,stop,step (stop included)")
    ap.add_argument("--n-iw", type=int, default=1024)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--betas", default="50,75,100,150",
                    help="temperatures side by side in one run_chains call ('' : skip)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best time counts")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dmft_engine")
    args = ap.parse_args(argv)

    from mldmft.dmft import DMFTOptions
    from mldmft.dmft.transition import branch_ends, is_metallic
    from solvers import supports_batch

    start, stop, step = (float(x) for x in args.U.split(","))
    U = [float(u) for u in np.round(np.arange(start, stop + step / 2, step), 6)]
    options = DMFTOptions(n_iw=args.n_iw, tol=args.tol, max_iter=args.max_iter)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_seq, (seq, seq_calls) = _timed(lambda: _sequential([args.beta], U, options),
                                         args.repeat)
        runs = {"sequential": {"time_s": t_seq, "solver_calls": seq_calls,
                               "batched_iterations": None, "points": seq}}
        for mode in ("continuation", "seeded"):
            t, (pts, calls, sizes) = _timed(lambda: _batched(args.beta, U, options, mode),
                                            args.repeat)
            runs[mode] = {"time_s": t, "solver_calls": calls, "batched_iterations": len(sizes),
                          "largest_batch": max(sizes), "points": pts}
        betas = [float(b) for b in args.betas.split(",") if b.strip()]
        many = {}
        if betas:
            t_one, (one, one_calls) = _timed(lambda: _sequential(betas, U, options), args.repeat)
            t_all, (every, all_calls, sizes) = _timed(lambda: _chains(betas, U, options),
                                                     args.repeat)
            many = {"betas": betas, "chains": 2 * len(betas), "points": len(one),
                    "sequential_time_s": t_one, "sequential_solver_calls": one_calls,
                    "batched_time_s": t_all, "batched_solver_calls": all_calls,
                    "batched_iterations": len(sizes), "largest_batch": max(sizes),
                    "speed_up": t_one / t_all,
                    "max_abs_dZ": max(abs(a.Z - b.Z) for a, b in zip(one, every)),
                    "converged": sum(p.converged for p in every)}
    load_after = os.getloadavg()
    ref = {(p.branch, p.U): p for p in seq}
    report: dict = {"date": started, "machine": f"{os.cpu_count()} cores, {platform.machine()}",
                    "load_average_before": load_before, "load_average_after": load_after,
                    "beta": args.beta, "U": [start, stop, step], "n_U": len(U),
                    "points": 2 * len(U), "n_iw": args.n_iw, "tol": args.tol,
                    "max_iter": args.max_iter, "repeat": args.repeat,
                    "ipt_vectorised": supports_batch("ipt"), "runs": {}}
    for name, r in runs.items():
        pts = r.pop("points")
        uc1, uc2 = branch_ends(pts)
        row = {**r, "converged": sum(p.converged for p in pts), "Uc1": uc1, "Uc2": uc2,
               "iterations": int(sum(p.iterations for p in pts)),
               "speed_up": runs["sequential"]["time_s"] / r["time_s"]}
        if name != "sequential":
            same = [(p, ref[(p.branch, p.U)]) for p in pts]
            row["max_abs_dZ_vs_sequential"] = max(abs(a.Z - b.Z) for a, b in same)
            row["other_branch_than_continuation"] = sorted(
                f"U={a.U:g} {a.branch}" for a, b in same if is_metallic(a) != is_metallic(b))
        report["runs"][name] = row
    lines = [f"# {started}, {report['machine']}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}",
             f"# load average before {load_before[0]:.2f} {load_before[1]:.2f} "
             f"{load_before[2]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f} "
             f"{load_after[2]:.2f}",
             f"# IPT, Bethe lattice, half filling, beta = {args.beta:g}, U = {start:g} .. "
             f"{stop:g} step {step:g} ({len(U)} values, {2 * len(U)} points, both branches), "
             f"n_iw = {args.n_iw}, tol = {args.tol:g}; IPT batch function: "
             f"{'yes' if report['ipt_vectorised'] else 'no (loop)'}; best of {args.repeat}",
             f"{'run':<13} {'time s':>8} {'speed-up':>8} {'calls':>6} {'batched it':>10} "
             f"{'iterations':>10} {'conv':>5} {'Uc1':>5} {'Uc2':>5} {'max|dZ|':>9}"]
    for name, row in report["runs"].items():
        dz = row.get("max_abs_dZ_vs_sequential")
        lines.append(f"{name:<13} {row['time_s']:>8.2f} {row['speed_up']:>8.1f} "
                     f"{row['solver_calls']:>6} {row['batched_iterations'] or '-':>10} "
                     f"{row['iterations']:>10} {row['converged']:>5} {row['Uc1'] or '-':>5} "
                     f"{row['Uc2'] or '-':>5} {'-' if dz is None else f'{dz:.1e}':>9}")
    other = report["runs"]["seeded"]["other_branch_than_continuation"]
    lines.append("seeded points on another branch than the continuation: "
                 + (", ".join(other) if other else "none"))
    if many:
        report["side_by_side"] = many
        lines.append(f"side by side: beta = {', '.join(f'{b:g}' for b in betas)}, "
                     f"{many['chains']} continuation chains, {many['points']} points: "
                     f"sequential {many['sequential_time_s']:.2f} s "
                     f"({many['sequential_solver_calls']} solves), one run_chains call "
                     f"{many['batched_time_s']:.2f} s ({many['batched_solver_calls']} solves in "
                     f"{many['batched_iterations']} batched iterations, largest batch "
                     f"{many['largest_batch']}): speed-up {many['speed_up']:.1f}, max |dZ| "
                     f"{many['max_abs_dZ']:.1e}, {many['converged']} converged")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.txt").write_text("\n".join(lines) + "\n")
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print("\n".join(lines))
    print(f"written  {args.out / 'report.txt'}  and  report.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
