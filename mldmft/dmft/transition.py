"""The ends of the two branches of a Mott-transition sweep (the coexistence window), and their
refinement by bisection with continuation.

A point is metallic when ``-beta G(beta/2) > 0.5`` (:data:`METAL_THRESHOLD`): ``-beta G(beta/2)``
tends to ``pi A(0)`` in a Fermi liquid at low temperature (``2/D`` on the Bethe lattice at half
filling) and to zero, exponentially in ``beta`` times the gap, in the Mott insulator. The up
branch (started from the metal) stays metallic up to ``Uc2``; the down branch (started from the
insulator) stays insulating down to ``Uc1``; on a grid the two solutions coexist for
``Uc1 <= U <= Uc2`` (Georges, Kotliar, Krauth, Rozenberg, Rev. Mod. Phys. 68, 13 (1996)).

Refinement (:func:`refine_branch_ends`): a coarse sweep brackets each end between the last point
still on the branch and the first U where continuation left it; each bisection step solves the
DMFT problem at the midpoint *started from the last point still on the branch* (continuation:
the branch is followed as far as it exists, a seeded start could land on the other solution
inside the window) and keeps the half that still holds the end, until the bracket is at most
``tol`` wide. Above the critical temperature the two branches are one solution and both "ends"
mark the same crossover, where ``-beta G(beta/2)`` passes the threshold; :func:`coexistence`
tells the two cases apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Sequence

from .loop import DMFTPoint

__all__ = ["METAL_THRESHOLD", "is_metallic", "branch_ends", "on_branch", "BranchEnd",
           "bracket_branch_end", "refine_branch_ends", "coexistence", "SolveFrom"]

METAL_THRESHOLD = 0.5

#: ``solve_from(requests) -> points``: for every ``(start, U)`` the converged (or not) DMFT point
#: at ``U`` (same ``beta``, branch label ``start.branch``) iterated from ``start.delta_iw``; all
#: requests of one call are independent (a batch).
SolveFrom = Callable[[Sequence[tuple[DMFTPoint, float]]], Sequence[DMFTPoint]]


def is_metallic(point: DMFTPoint, threshold: float = METAL_THRESHOLD) -> bool:
    """``-beta G(beta/2) > threshold`` (default :data:`METAL_THRESHOLD` = 0.5)."""
    return point.g_beta_half > threshold


def branch_ends(points: Sequence[DMFTPoint]) -> tuple[float | None, float | None]:
    """``(Uc1, Uc2)``: the smallest U at which the down branch is still insulating and the largest
    U at which the up branch is still metallic, over the converged points (``None`` where the
    branch is missing or has no such point). ``Uc1 <= Uc2`` means hysteresis on this grid."""
    up = [p.U for p in points if p.branch == "up" and p.converged and is_metallic(p)]
    down = [p.U for p in points if p.branch == "down" and p.converged and not is_metallic(p)]
    return (min(down) if down else None), (max(up) if up else None)


def on_branch(point: DMFTPoint, branch: str, threshold: float = METAL_THRESHOLD) -> bool:
    """Whether ``point`` lies on ``branch``: converged, and metallic for ``"up"`` (the metallic
    branch), insulating for ``"down"`` (the insulating one). A point that did not converge counts
    as off the branch (no solution continuing it was found)."""
    if branch not in ("up", "down"):
        raise ValueError(f"branch must be 'up' or 'down', got {branch!r}")
    return point.converged and is_metallic(point, threshold) == (branch == "up")


@dataclass(frozen=True)
class BranchEnd:
    """Where one branch ends at one temperature.

    Attributes:
        branch: ``"up"`` (the metallic branch, ends at ``Uc2``) or ``"down"`` (the insulating
            branch, ends at ``Uc1``).
        beta: inverse temperature (1/D).
        last_on: the last point still on the branch (``None``: the first point of the sweep was
            already off it).
        first_off: the U where continuation from ``last_on`` left the branch (``None``: the
            branch reaches the end of the U range).
        tried: the points the bisection solved for this end, in order.
    """

    branch: str
    beta: float
    last_on: DMFTPoint | None
    first_off: float | None
    tried: tuple[DMFTPoint, ...] = ()

    @property
    def bracketed(self) -> bool:
        """The end lies between two computed U values."""
        return self.last_on is not None and self.first_off is not None

    @property
    def width(self) -> float:
        """``|first_off - last_on.U|`` (inf unless :attr:`bracketed`)."""
        return abs(self.first_off - self.last_on.U) if self.bracketed else float("inf")

    @property
    def U(self) -> float:
        """The estimate: the middle of the bracket (NaN unless :attr:`bracketed`)."""
        return 0.5 * (self.first_off + self.last_on.U) if self.bracketed else float("nan")

    @property
    def error(self) -> float:
        """Half the bracket: the end lies within ``U +- error``."""
        return 0.5 * self.width

    @property
    def status(self) -> str:
        """``"bracketed"``, ``"beyond range"`` (the branch outlives the U range) or
        ``"before range"`` (the first point is already off the branch)."""
        if self.bracketed:
            return "bracketed"
        return "beyond range" if self.last_on is not None else "before range"


def bracket_branch_end(chain: Sequence[DMFTPoint], branch: str, beta: float,
                       threshold: float = METAL_THRESHOLD) -> BranchEnd:
    """The coarse bracket from a continuation sweep ``chain`` (points in sweep order: increasing
    U for ``"up"``, decreasing for ``"down"``): the last point before the first one off the
    branch, and that first one's U."""
    for k, point in enumerate(chain):
        if not on_branch(point, branch, threshold):
            return BranchEnd(branch, float(beta), chain[k - 1] if k else None, float(point.U))
    return BranchEnd(branch, float(beta), chain[-1] if chain else None, None)


def refine_branch_ends(ends: Sequence[BranchEnd], solve_from: SolveFrom, tol: float,
                       threshold: float = METAL_THRESHOLD,
                       on_round: Callable[[int, int], None] | None = None) -> list[BranchEnd]:
    """Bisect every bracketed end until its bracket is at most ``tol`` wide.

    Each round solves the midpoints of all open brackets in one call of ``solve_from`` (each
    started from its bracket's last point on the branch); a midpoint still on the branch becomes
    the new ``last_on``, otherwise the new ``first_off``. Ends that are not bracketed are
    returned unchanged. ``ceil(log2(width / tol))`` rounds for a coarse step ``width``.

    Args:
        ends: coarse brackets (:func:`bracket_branch_end`).
        solve_from: the batch solver (:data:`SolveFrom`).
        tol: the largest bracket width kept (U units, D).
        threshold: the metallic threshold on ``-beta G(beta/2)``.
        on_round: ``on_round(round, open_brackets)`` before each round (progress).
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    ends = list(ends)
    rnd = 0
    while True:
        open_ = [i for i, e in enumerate(ends) if e.bracketed and e.width > tol * (1 + 1e-9)]
        if not open_:
            return ends
        rnd += 1
        if on_round is not None:
            on_round(rnd, len(open_))
        mids = [round(0.5 * (ends[i].last_on.U + ends[i].first_off), 10) for i in open_]
        points = list(solve_from([(ends[i].last_on, u) for i, u in zip(open_, mids)]))
        if len(points) != len(open_):
            raise RuntimeError(f"solve_from returned {len(points)} points for {len(open_)} "
                               "requests")
        for i, u, p in zip(open_, mids, points):
            e = ends[i]
            if on_branch(p, e.branch, threshold):
                ends[i] = dataclasses.replace(e, last_on=p, tried=e.tried + (p,))
            else:
                ends[i] = dataclasses.replace(e, first_off=u, tried=e.tried + (p,))


def coexistence(up: BranchEnd, down: BranchEnd) -> bool:
    """Both solutions were found at a common U: the insulating branch's last point lies at or
    below the metallic branch's last point (``Uc1 <= Uc2`` on the points computed). Above the
    critical temperature both bisections close in on the same crossover from either side and
    this is false."""
    if up.last_on is None or down.last_on is None:
        return False
    return down.last_on.U <= up.last_on.U
