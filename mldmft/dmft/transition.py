"""The ends of the two branches of a Mott-transition sweep (the coexistence window).

A point is metallic when ``-beta G(beta/2) > 0.5`` (:data:`METAL_THRESHOLD`): ``-beta G(beta/2)``
tends to ``pi A(0)`` in a Fermi liquid at low temperature (``2/D`` on the Bethe lattice at half
filling) and to zero, exponentially in ``beta`` times the gap, in the Mott insulator. The up
branch (started from the metal) stays metallic up to ``Uc2``; the down branch (started from the
insulator) stays insulating down to ``Uc1``; on a grid the two solutions coexist for
``Uc1 <= U <= Uc2`` (Georges, Kotliar, Krauth, Rozenberg, Rev. Mod. Phys. 68, 13 (1996)).
"""

from __future__ import annotations

from typing import Sequence

from .loop import DMFTPoint

__all__ = ["METAL_THRESHOLD", "is_metallic", "branch_ends"]

METAL_THRESHOLD = 0.5


def is_metallic(point: DMFTPoint) -> bool:
    """``-beta G(beta/2) > 0.5`` (:data:`METAL_THRESHOLD`)."""
    return point.g_beta_half > METAL_THRESHOLD


def branch_ends(points: Sequence[DMFTPoint]) -> tuple[float | None, float | None]:
    """``(Uc1, Uc2)``: the smallest U at which the down branch is still insulating and the largest
    U at which the up branch is still metallic, over the converged points (``None`` where the
    branch is missing or has no such point). ``Uc1 <= Uc2`` means hysteresis on this grid."""
    up = [p.U for p in points if p.branch == "up" and p.converged and is_metallic(p)]
    down = [p.U for p in points if p.branch == "down" and p.converged and not is_metallic(p)]
    return (min(down) if down else None), (max(up) if up else None)
