"""Exact diagonalisation of the Anderson impurity model (numpy/scipy only)."""

from .cost import EDCost, estimate_cost
from .solver import MAX_BATH_SITES, solve_ed

__all__ = ["solve_ed", "estimate_cost", "EDCost", "MAX_BATH_SITES"]
