"""Bethe-lattice DMFT with any registered impurity solver; sweeps in U with hysteresis."""

from .io import load_sweep, load_sweep_csv, save_sweep, write_csv
from .lattice import BetheLattice
from .loop import DMFTOptions, DMFTPoint, solve_point
from .plots import plot_sweeps
from .steps import ed_refit_step, guarded_step, make_step
from .sweep import insulator_seed, metal_seed, sweep

__all__ = ["BetheLattice", "DMFTOptions", "DMFTPoint", "solve_point", "sweep", "metal_seed",
           "insulator_seed", "make_step", "ed_refit_step", "guarded_step", "save_sweep",
           "load_sweep", "load_sweep_csv", "write_csv", "plot_sweeps"]
