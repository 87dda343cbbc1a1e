"""Benchmark of AIM database generation.

Generates ``--samples`` (default 200) samples of the standard recipe — exactly
``configs/generate.yaml``: ED Nb = 8 target at mixed beta, plus IPT, Hubbard-I, NCA and ED with
2 fitted bath sites, particle-hole twins — on the local process pool (all cores), and prints the
rate, the projected time for 10,000 samples (aim: under 45 minutes on 2 cores) and each solver's
median time, with the ED time broken down by beta.

Run: ``python benchmarks/generate.py [--samples N] [--workers W] [override ...]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from mldmft.cli import _compose, _generate_config  # noqa: E402
from mldmft.database import generate, load_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides of generate.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.h5"
        cfg = _generate_config(_compose("generate", [f"n_samples={args.samples}", f"out={out}",
                                                     "progress=false", *args.overrides]))
        cfg = dataclasses.replace(cfg, workers=args.workers)
        print(f"recipe: {cfg.sampling}")
        print(f"target {cfg.target.name}, cheap {[c.name for c in cfg.cheap]}, "
              f"{args.workers} workers, {args.samples} samples")
        t0 = time.perf_counter()
        summary = generate(cfg)
        wall = time.perf_counter() - t0
        data = load_database(out)
    rate = args.samples / wall
    print(f"wall time {wall:.1f} s  ->  {rate:.3f} samples/s "
          f"({summary.n_rows} rows with twins)")
    proj = 10_000 / rate
    print(f"projected for 10,000 samples: {proj / 60:.1f} min (aim: < 45 min; ratio "
          f"{proj / 2700:.2f} x the aim)")
    orig = ~data["augmented"].astype(bool)
    print(f"{'solver':<10} {'median s':>9} {'mean s':>9} {'failed':>7} {'not conv':>9}")
    for name in [cfg.target.name] + [c.name for c in cfg.cheap]:
        t = data[f"solvers/{name}/wall_time"][orig]
        print(f"{name:<10} {np.median(t):>9.4f} {np.mean(t):>9.4f} {summary.failed[name]:>7} "
              f"{summary.not_converged[name]:>9}")
    beta = data["params/beta"][orig]
    t_ed = data[f"solvers/{cfg.target.name}/wall_time"][orig]
    edges = [0, 30, 50, 75, 1e9]
    print("target time by beta:")
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (beta >= lo) & (beta < hi)
        if sel.any():
            print(f"  beta in [{lo:g}, {hi:g}): n={int(sel.sum()):>4}  median {np.median(t_ed[sel]):.3f} s"
                  f"  max {np.max(t_ed[sel]):.3f} s")


if __name__ == "__main__":
    main()
