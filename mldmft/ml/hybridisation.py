"""The hybridisation inputs of the ``ml`` solver, for many models at once.

Every network input that describes the bath comes from the model's own hybridisation, with no
bath fit, through the toolkit of :mod:`solvers`:

* ``Delta_l`` (``l < n_l``, units 1/D), the Legendre coefficients of ``Delta(tau)``:
  :func:`solvers.hybridisation_l_many` (exact from the poles of a discrete bath; for a
  continuous ``delta_iw`` the exact Legendre kernel of the given frequencies with the tail
  ``M_1/(i w_n) + M_2/(i w_n)^2 + M_3/(i w_n)^3`` carried analytically). With 1024 frequencies
  the coefficients of an 8-pole bath given as ``delta_iw`` agree with the exact ones to
  ``|dDelta_l|/beta < 1e-8`` at ``beta = 20`` and ``200`` (``tests/test_fast_network.py``).
* ``c1 = M_1 = sum_k V_k^2 = lim -w_n Im Delta(i w_n)``, the first moment of
  :func:`solvers.hybridisation_moments_many` (exact for a discrete bath, the tail fit of
  :func:`solvers.estimate_tail` for ``delta_iw``). The half-bandwidth feature is
  ``D = 2 sqrt(c1)`` (:func:`solvers.tails.half_bandwidth`; the relation of the database's Bethe-like baths,
  where ``Delta = D^2 G / 4``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from solvers import AndersonModel, estimate_tail, hybridisation_l, hybridisation_moments_many
from solvers import hybridisation_l_many as hybridisation_rows
from solvers.tails import half_bandwidth

__all__ = ["c1_rows", "delta_tail_c1", "half_bandwidth", "hybridisation_rows", "hybridisation_l"]


def c1_rows(models: Sequence[AndersonModel]) -> np.ndarray:
    """``c1 = sum_k V_k^2`` of every model, shape ``[N]`` (units D^2): the first moment of
    :func:`solvers.hybridisation_moments_many`."""
    return hybridisation_moments_many(models, 3)[:, 0]


def delta_tail_c1(delta_iw: np.ndarray, beta: float) -> float:
    """``c1 = lim w_n -> inf  -w_n Im Delta(i w_n)`` (``= sum_k V_k^2``) from the given values
    (the first moment of :func:`solvers.estimate_tail` with nothing known, as
    :func:`solvers.hybridisation_moments` fits a continuous bath).

    Example:
        >>> import numpy as np
        >>> from solvers import hybridisation_iw, matsubara_freqs
        >>> d = hybridisation_iw(matsubara_freqs(10.0, 400), [-0.5, 0.3], [0.4, 0.2])
        >>> round(delta_tail_c1(d, 10.0), 6)
        0.2
    """
    return float(estimate_tail(np.asarray(delta_iw, dtype=complex), float(beta), None,
                               n_moments=3)[0])


