"""DMFT sweeps in U or mu on any lattice (Hydra entry point; same function as ``mldmft dmft``).

    python dmft_loop.py solver=ipt beta=100 direction=both
    python dmft_loop.py solver=ipt beta=100 start=seeded     # every U from its seed, one batch
    python dmft_loop.py solver=ipt beta=100 start=segments segment=4   # seeded runs of 4 U
    python dmft_loop.py solver=ipt beta=50 density=0.9 "U_values=[1.0,2.0]"   # mu found
    python dmft_loop.py solver=ipt beta=50 U=2.7 "mu_range=[0.95,1.35,0.05]"  # sweep in mu
    python dmft_loop.py solver=ed solver_options.n_bath=8 "U_values=[2.0]" beta=100
    python dmft_loop.py -m solver=ipt,hubbard_i          # Hydra multirun

Writes ``data/dmft/<solver>_beta<beta>.h5`` (every point's G, Sigma, Delta), a CSV summary and a
PNG of Z, double occupancy and -beta G(beta/2) against U with the up and down branches.
"""

import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from mldmft.cli import run_sweep, sweep_arguments  # noqa: E402


@hydra.main(config_path="configs", config_name="dmft", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        run_sweep(sweep_arguments(cfg))
    except (ValueError, OSError) as err:  # bad options, an unreadable file: one line, status 2
        print(f"dmft_loop.py: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
