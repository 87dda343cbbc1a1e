"""Time per model of `solvers.solve_many` (batched IPT and Hubbard-I) against a loop of `solve`.

For batches of 1, 10 and 100 models (4-site discrete baths, or the same baths as `delta_iw`;
half filling, off half filling, and a mix of both at betas 20-50 with U in [0.5, 4]), prints
the best of `--repeats` runs of

* loop:  [solve(name, m) for m in models]
* batch: solve_many(name, models)

in milliseconds per model, their ratio, and the largest difference between the two results
(g_iw, g_l, density, double occupancy). Warm-up solves first (cached Legendre and FFT tables).
Prints the date and the machine load (`uptime`): the figures depend on it.

    python benchmarks/solve_many.py [--repeats 3] [--sizes 1 10 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from solvers import AndersonModel, solve, solve_many  # noqa: E402


def random_models(n: int, kind: str, seed: int = 0, continuous: bool = False) -> list:
    """``n`` models with 4-site baths; ``kind``: "half", "off" or "mixed" (every other one)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        U = float(rng.uniform(0.5, 4.0))
        beta = float(rng.uniform(20.0, 50.0))
        half = kind == "half" or (kind == "mixed" and i % 2 == 0)
        e = rng.uniform(0.1, 1.2, 2)
        v = rng.uniform(0.15, 0.45, 2)
        if half:
            eps, vs, eps_d = np.concatenate([-e, e]), np.concatenate([v, v]), -U / 2
        else:
            eps, vs = rng.uniform(-1.2, 1.2, 4), rng.uniform(0.15, 0.45, 4)
            eps_d = float(rng.uniform(-U, 0.3))
        m = AndersonModel(U=U, eps_d=eps_d, beta=beta, bath_eps=eps, bath_v=vs)
        if continuous:
            m = AndersonModel(U=U, eps_d=eps_d, beta=beta, delta_iw=m.delta(1024))
        out.append(m)
    return out


def best_time(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def max_difference(a, b) -> float:
    return max(max(np.max(np.abs(x.g_iw - y.g_iw)), np.max(np.abs(x.g_l - y.g_l)),
                   abs(x.density - y.density), abs(x.double_occupancy - y.double_occupancy))
               for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"# {datetime.now():%Y-%m-%d %H:%M}  OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
          f"  {os.cpu_count()} cores")
    print(f"# uptime: {load}")
    print(f"{'solver':10s} {'bath':9s} {'filling':7s} {'batch':>5s} {'loop ms':>9s} "
          f"{'batch ms':>9s} {'speed-up':>8s} {'max |diff|':>10s}")
    for name in ("ipt", "hubbard_i"):
        for continuous in (False, True):
            for kind in ("half", "off", "mixed"):
                models = random_models(max(args.sizes), kind, continuous=continuous)
                solve_many(name, models[:2])
                solve(name, models[0])
                for size in args.sizes:
                    batch = models[:size]
                    t_loop = best_time(lambda: [solve(name, m) for m in batch], args.repeats)
                    t_batch = best_time(lambda: solve_many(name, batch), args.repeats)
                    diff = max_difference(solve_many(name, batch),
                                          [solve(name, m) for m in batch])
                    bath = "delta_iw" if continuous else "discrete"
                    print(f"{name:10s} {bath:9s} {kind:7s} {size:5d} {1e3 * t_loop / size:9.2f} "
                          f"{1e3 * t_batch / size:9.2f} {t_loop / t_batch:8.1f} {diff:10.1e}",
                          flush=True)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"# uptime at the end: {load}")


if __name__ == "__main__":
    main()
