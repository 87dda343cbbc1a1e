"""DMFT on any lattice with any registered impurity solver, at fixed mu or fixed density; a
batched engine that iterates many problems at once; sweeps in U or mu with hysteresis;
the Mott phase diagram; real-frequency spectra."""

from .engine import DMFTProblem, ProblemProgress, run_chains
from .io import PlanMismatchError, load_sweep, load_sweep_csv, save_sweep, write_csv
from .lattice import (BetheLattice, CubicLattice, HypercubicLattice, Lattice, SquareLattice,
                      TabulatedLattice, available_lattices, get_lattice, register_lattice)
from .loop import DMFTOptions, DMFTPoint, solve_point
from .phase_diagram import DiagramSpec, PhaseDiagramConfig, phase_diagram
from .plots import plot_spectra, plot_sweeps
from .spectra import Spectrum, point_spectrum, result_spectrum
from .steps import ed_refit_step, guarded_batch_step, guarded_step, make_batch_step, make_step
from .sweep import SweepSettings, insulator_seed, metal_seed, sweep, sweep_mu
from .transition import branch_ends

__all__ = ["BetheLattice", "SquareLattice", "CubicLattice", "HypercubicLattice",
           "TabulatedLattice", "Lattice", "available_lattices", "get_lattice", "register_lattice",
           "DMFTOptions", "DMFTPoint", "DMFTProblem", "ProblemProgress", "run_chains",
           "solve_point", "sweep", "sweep_mu", "SweepSettings", "metal_seed", "insulator_seed",
           "make_step", "make_batch_step", "ed_refit_step", "guarded_step", "guarded_batch_step",
           "save_sweep", "load_sweep", "load_sweep_csv", "write_csv", "plot_sweeps", "plot_spectra",
           "Spectrum", "point_spectrum", "result_spectrum", "branch_ends", "PlanMismatchError",
           "phase_diagram", "PhaseDiagramConfig", "DiagramSpec"]
