"""Exact diagonalisation of the Anderson impurity model (numpy/scipy only)."""

from .solver import MAX_BATH_SITES, solve_ed

__all__ = ["solve_ed", "MAX_BATH_SITES"]
