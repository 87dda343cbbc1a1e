"""Time the README's Python example `solve("ed", model)` (8 bath sites, beta = 50) as a user runs
it: a fresh interpreter without OMP_NUM_THREADS (or any other thread variable) set.

Each setting runs in its own subprocess: the solvers' default (one BLAS thread), and
`MLDMFT_SOLVER_THREADS=none` (the BLAS library's own choice: every core), for comparison.
Prints the import time, the first solve and the best of `--repeats` further solves, with the
date and the machine load (`uptime`).

    python benchmarks/readme_ed_example.py [--repeats 3] [--timeout 900]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = """
import time
t0 = time.perf_counter()
from solvers import AndersonModel, solve
t1 = time.perf_counter()
model = AndersonModel(U=2.0, eps_d=-1.0, beta=50.0,
                      bath_eps=[-1.5, -0.9, -0.4, -0.1, 0.1, 0.4, 0.9, 1.5],
                      bath_v=[(0.25 / 8) ** 0.5] * 8)
t2 = time.perf_counter()
res = solve("ed", model)
first = time.perf_counter() - t2
times = []
for _ in range({repeats}):
    t = time.perf_counter()
    solve("ed", model)
    times.append(time.perf_counter() - t)
print(f"import {{t1 - t0:.2f}} s, first solve {{first:.2f}} s, best of {repeats} {{min(times):.2f}} s, "
      f"density {{res.density:.6f}}, double occupancy {{res.double_occupancy:.7f}}")
"""

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "MLDMFT_SOLVER_THREADS")


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds allowed per setting (then reported as not finished)")
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    print(f"# {datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, no thread variables set")
    for label, extra in (("default (1 solver thread)", {}),
                         ("MLDMFT_SOLVER_THREADS=none", {"MLDMFT_SOLVER_THREADS": "none"})):
        print(f"# uptime: {uptime()}")
        try:
            run = subprocess.run([sys.executable, "-c", SNIPPET.format(repeats=args.repeats)],
                                 capture_output=True, text=True, cwd=ROOT,
                                 env=dict(base, **extra), timeout=args.timeout)
            lines = (run.stdout.strip() or run.stderr.strip()).splitlines()
            out = lines[-1] if lines else f"no output (exit code {run.returncode})"
        except subprocess.TimeoutExpired:
            out = f"did not finish within {args.timeout:g} s"
        print(f"{label:28s} {out}", flush=True)
    print(f"# uptime at the end: {uptime()}")


if __name__ == "__main__":
    main()
