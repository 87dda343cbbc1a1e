"""AIM databases: sampling recipes, per-sample solving with particle-hole twins, HDF5 storage,
resumable parallel generation, inspection, packing for commits. Schema: :mod:`mldmft.h5schema`."""

from .generate import DEFAULT_N_L, GenerateConfig, GenerateSummary, generate
from .pack import pack_database, unpack_database
from .records import RecordLayout, SolverSpec, particle_hole_twin, solve_sample
from .sampling import BathListRecipe, BetheRandomBath, ParamSpec, make_recipe, sample_rng
from .store import load_database, open_database

__all__ = ["GenerateConfig", "GenerateSummary", "generate", "DEFAULT_N_L", "RecordLayout",
           "SolverSpec", "solve_sample", "particle_hole_twin", "BetheRandomBath",
           "BathListRecipe", "ParamSpec", "make_recipe", "sample_rng", "load_database",
           "open_database", "pack_database", "unpack_database"]
