"""Per-call and per-iteration cost of the fast network's DMFT path (prints the figures).

    python benchmarks/fast_path.py [--checkpoint PATH] [--beta 75] [--rounds 3] [--parts calls,loop]

1. ``solvers.solve_many("ml", models)`` on 1, 8 and 64 models (``beta``, Bethe hybridisations
   ``Delta = t^2 G_0`` scaled by a few per cent, ``U = 1.5 .. 3``) at half filling and with
   ``eps_d = -U/2 + 0.3`` (off half filling: IPT's Kajueter-Kotliar iteration): the median time
   of a call per model, the best of ``--rounds`` rounds.
2. The DMFT loop at fixed density ``n = 0.9`` and at half filling, ``U = 1.0, 1.2, .., 3.6``:
   one continuation chain (one problem at a time) and the seeded problems in one batched run
   (:func:`mldmft.dmft.run_chains`): wall time per loop iteration (per problem-iteration for the
   batch) and per point.

The network is the shipped ``fast`` one unless ``--checkpoint`` names another file; its SHA-256
prefix is printed (its size -- the rows of a kernel model -- sets part of the cost). Times
depend on the machine's load: the script prints ``os.getloadavg()`` before and after. Results
measured on the project machine are in ``benchmarks/results/ml_dmft/report.txt``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time

import numpy as np

import mldmft.ml  # noqa: F401  (registers "ml")
from mldmft.dmft import DMFTOptions, DMFTProblem, run_chains
from mldmft.dmft.lattice import BetheLattice
from mldmft.ml.checkpoint import load_checkpoint_cached
from mldmft.ml.shipped import shipped_checkpoint
from solvers import AndersonModel, solve_many

U_GRID = [round(1.0 + 0.2 * k, 1) for k in range(14)]


def models(n: int, beta: float, shift: float) -> list[AndersonModel]:
    """``n`` models at ``beta``: ``U`` from 1.5 to 3, ``eps_d = -U/2 + shift``, ``Delta`` the
    Bethe seed scaled by ``1 + 0.05 x`` (``x`` standard normal, seed 0; real part dropped at
    half filling)."""
    rng = np.random.default_rng(0)
    seed = BetheLattice().seed_delta_iw(beta, 1024)
    out = []
    for i in range(n):
        U = 1.5 + 1.5 * i / max(n - 1, 1)
        d = seed * (1.0 + 0.05 * rng.standard_normal())
        d = (d.real if shift else 0.0) + 1j * d.imag
        out.append(AndersonModel(U=U, eps_d=-U / 2 + shift, beta=beta, delta_iw=d))
    return out


def call_times(checkpoint: str, beta: float, rounds: int) -> None:
    for shift, label in ((0.0, "half filling"), (0.3, "eps_d = -U/2 + 0.3")):
        for n in (1, 8, 64):
            ms = models(n, beta, shift)
            reps = {1: 20, 8: 6, 64: 2}[n]
            best = np.inf
            for _ in range(rounds):
                ts = []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    solve_many("ml", ms, checkpoint=checkpoint, extrapolate=True)
                    ts.append(time.perf_counter() - t0)
                best = min(best, statistics.median(ts))
            print(f"solve_many ml, {label:20s} {n:3d} models: {best / n * 1e3:7.3f} ms per model")


def loop_times(checkpoint: str, beta: float) -> None:
    options = DMFTOptions(n_iw=1024, tol=1e-5, max_iter=100)
    solver_options = {"checkpoint": checkpoint, "extrapolate": True}
    for density in (0.9, 1.0):
        chain = [DMFTProblem(beta=beta, U=U_GRID[0], density=density)] + [
            DMFTProblem(beta=beta, U=u, density=density, start="previous") for u in U_GRID[1:]]
        seeded = [[DMFTProblem(beta=beta, U=u, density=density)] for u in U_GRID]
        for mode, chains in (("one chain", [chain]), ("batched", seeded)):
            t0 = time.perf_counter()
            points = run_chains("ml", chains, options, solver_options=solver_options)
            wall = time.perf_counter() - t0
            its = sum(p.iterations for c in points for p in c)
            conv = sum(p.converged for c in points for p in c)
            print(f"DMFT n = {density}, {mode:9s}: {wall / its * 1e3:6.2f} ms per iteration "
                  f"({its} iterations), {wall / len(U_GRID):.3f} s per point, "
                  f"{conv}/{len(U_GRID)} converged")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model file (default: shipped 'fast')")
    ap.add_argument("--beta", type=float, default=75.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="calls,loop",
                    help="what to time: 'calls' (1.), 'loop' (2.) or both (default)")
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    if not parts or not parts <= {"calls", "loop"}:
        ap.error(f"--parts takes 'calls', 'loop' or 'calls,loop', got {args.parts!r}")
    checkpoint = str(args.checkpoint or shipped_checkpoint("fast"))
    with open(checkpoint, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()[:12]
    load_checkpoint_cached(checkpoint)          # the first load (torch import) not timed
    print(f"model {checkpoint} (sha256 {sha}), beta = {args.beta:g}, "
          f"load {os.getloadavg()[0]:.2f}")
    if "calls" in parts:
        call_times(checkpoint, args.beta, args.rounds)
    if "loop" in parts:
        loop_times(checkpoint, args.beta)
    print(f"load {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
