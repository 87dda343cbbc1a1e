"""Benchmark of the finite-temperature ED solver.

Times the Nb = 8 literature model (U = 2, half filling, bath +-0.1, +-0.4, +-0.9, +-1.5,
V = sqrt(0.25/8)) at beta = 10, 20, 30, 50, 100, a random Bethe-like Nb = 8 model of the AIM
database at moderate temperature (``bethe_random`` recipe, seed 1234, sample 3: U = 0.94,
beta = 23, D = 0.61; 2390 kept states), and symmetric Nb = 4, 6 baths at beta = 50; prints the
median wall time of repeated solves, the kept states (and total-spin multiplets), the sectors
diagonalised, and the peak memory of one solve (tracemalloc: numpy buffers included). Aim:
<= 0.45 s for beta = 50, Nb = 8. Slow cases (> 5 s) are repeated at most 3 times.

BLAS runs single-threaded (as in database generation, where each worker process has one core):
the sector blocks are small and threads only add contention.

Run: ``python benchmarks/ed.py [--repeats N]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

from solvers import AndersonModel, solve  # noqa: E402

BATHS = {
    4: [-1.0, -0.2, 0.2, 1.0],
    6: [-1.2, -0.5, -0.1, 0.1, 0.5, 1.2],
    8: [-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5],
}


def model(nb: int, beta: float) -> AndersonModel:
    return AndersonModel(U=2.0, eps_d=-1.0, beta=beta, bath_eps=BATHS[nb],
                         bath_v=[np.sqrt(0.25 / nb)] * nb)


def random_bethe_model() -> AndersonModel:
    """Sample 3 of the ``bethe_random`` recipe (seed 1234): U = 0.94, beta = 23, D = 0.61."""
    from mldmft.database.sampling import make_recipe
    recipe = make_recipe(dict(kind="bethe_random", n_bath=8, D=[0.5, 1.0], U=[0.5, 5.0],
                              eps_d=[-3, 0.5], beta=[20.0, 40.0]))
    return recipe.draw(1234, 3).model


def run(nb: int, beta: float, repeats: int, m: AndersonModel | None = None, **options) -> dict:
    m = model(nb, beta) if m is None else m
    t0 = time.perf_counter()
    res = solve("ed", m, **options)  # warm-up (imports, caches)
    if time.perf_counter() - t0 > 5.0:
        repeats = min(repeats, 3)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = solve("ed", m, **options)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    solve("ed", m, **options)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {"nb": nb, "beta": m.beta, "median_s": statistics.median(times),
            "min_s": min(times), "kept": res.info["n_kept_states"],
            "multiplets": res.info.get("n_multiplets") or 0,
            "sectors": len(res.info["sectors_diagonalised"]), "chains": res.info["gf_chains"],
            "peak_mb": peak / 2 ** 20, "docc": res.double_occupancy, "z": res.z,
            "converged": res.converged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    cases = [(8, 10.0, "lit"), (8, 20.0, "lit"), (8, 30.0, "lit"), (8, 50.0, "lit"),
             (8, 100.0, "lit"), (8, None, "random"), (4, 50.0, "lit"), (6, 50.0, "lit")]
    print(f"{'model':>6} {'Nb':>3} {'beta':>6} {'median s':>9} {'min s':>7} {'kept':>5} "
          f"{'mult':>5} {'sectors':>7} {'chains':>6} {'peak MB':>8} {'double occ':>11} "
          f"{'Z':>8}")
    for nb, beta, kind in cases:
        r = run(nb, beta, args.repeats, m=random_bethe_model() if kind == "random" else None)
        print(f"{kind:>6} {r['nb']:>3} {r['beta']:>6.4g} {r['median_s']:>9.3f} {r['min_s']:>7.3f} "
              f"{r['kept']:>5} {r['multiplets']:>5} {r['sectors']:>7} {r['chains']:>6} "
              f"{r['peak_mb']:>8.1f} {r['docc']:>11.7f} {r['z']:>8.4f}"
              + ("" if r["converged"] else "  NOT CONVERGED"), flush=True)
    gs = solve("ed", model(8, 50.0), ground_state_only=True)
    t0 = time.perf_counter()
    gs = solve("ed", model(8, 50.0), ground_state_only=True)
    print(f"ground state only (Nb=8): {time.perf_counter() - t0:.3f} s, double occupancy "
          f"{gs.double_occupancy:.7f} (Fortran Lanczos ED reference: 0.0827152)")
    r = run(8, 50.0, 3, use_symmetry=False)
    print(f"Nb=8 beta=50 without symmetry shortcuts (S^2, particle-hole): median "
          f"{r['median_s']:.3f} s")
    r = run(8, 50.0, 3, spin_symmetry=False)
    print(f"Nb=8 beta=50 without the S^2 shortcut: median {r['median_s']:.3f} s")


if __name__ == "__main__":
    main()
