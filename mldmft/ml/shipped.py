"""The networks shipped with mldmft, by name: one registry (name, file, domain, what it is).

``solve("ml", model)`` uses :data:`DEFAULT_NETWORK`; ``solve("ml", model, network="fast")`` picks
another shipped one by name (``checkpoint=PATH`` stays for any other file); ``mldmft models``
lists them::

    from mldmft.ml.shipped import SHIPPED, shipped_checkpoint
    [n.name for n in SHIPPED]              # ['fast', 'phase_diagram', 'demo_beta50']
    shipped_checkpoint("phase_diagram")    # .../mldmft/pretrained/phase_diagram.pt

A registry entry may name a file that this installation does not hold (a network whose training
is documented but whose file is not shipped yet): asking for it by name is then a one-line
``ValueError`` saying so, and :func:`describe_shipped` lists it as ``not shipped``.

The domain written here is what the entry promises; the domain the ``ml`` solver enforces is the
one stored in the checkpoint (``tests/test_fast_network.py`` checks that they agree).

This module imports neither torch nor numpy.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ShippedNetwork", "SHIPPED", "DEFAULT_NETWORK", "PRETRAINED_DIR", "shipped_network",
           "shipped_checkpoint", "describe_shipped", "format_domain"]

#: Where the shipped files live (``mldmft/pretrained/``, package data).
PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"


@dataclass(frozen=True)
class ShippedNetwork:
    """One shipped network.

    Attributes:
        name: the registry name (``solve("ml", model, network=name)``).
        file: file name inside :data:`PRETRAINED_DIR`.
        domain: where it may be used, ``{"beta", "U", "density", "D": (lo, hi)}`` (any subset;
            units D, 1/D); the checkpoint stores the domain the solver enforces.
        description: one line on what it is.
        recipe: where its training recipe is written.
    """

    name: str
    file: str
    domain: dict
    description: str
    recipe: str = "mldmft/pretrained/README.md"

    @property
    def path(self) -> Path:
        """The file's path in this installation (it may be absent: :attr:`is_shipped`)."""
        return PRETRAINED_DIR / self.file

    @property
    def is_shipped(self) -> bool:
        """Whether this installation holds the file."""
        return self.path.is_file()


_PHASE_DIAGRAM_DOMAIN = {"beta": (20.0, 200.0), "U": (0.5, 5.0), "density": (0.5, 1.5),
                         "D": (0.7, 1.3)}

#: Every shipped network, the default first.
SHIPPED: tuple[ShippedNetwork, ...] = (
    ShippedNetwork("fast", "fast.pt", _PHASE_DIAGRAM_DOMAIN,
                   "Bethe-lattice phase diagram without ED: kernel ridge regression correcting IPT "
                   "from the IR coefficients of Delta and IPT's G (configs/train_fast.yaml); in "
                   "DMFT within 0.005 of 8-site ED-DMFT in Z (0.01 at beta 150)"),
    ShippedNetwork("phase_diagram", "phase_diagram.pt", _PHASE_DIAGRAM_DOMAIN,
                   "Bethe-lattice phase diagram: corrects ed3 (ED on 3 refitted bath sites) toward "
                   "8-site ED; inputs include ed2 and ed3 (ED inside every call)"),
    ShippedNetwork("demo_beta50", "demo_beta50.pt", {"beta": (50.0, 50.0), "U": (0.5, 4.5)},
                   "half filling at beta = 50 only: corrects IPT from IPT, Hubbard-I and Delta "
                   "(Legendre); the beta = 50 demo network"),
)

#: The network ``solve("ml", model)`` uses without ``network`` or ``checkpoint``: the one
#: constant that decides the default.
DEFAULT_NETWORK = "fast"

_BY_NAME = {n.name: n for n in SHIPPED}


def shipped_network(name: str) -> ShippedNetwork:
    """The registry entry ``name``; ``ValueError`` (with the closest name and the known ones)
    for an unknown name.

    Example:
        >>> shipped_network("fast").file
        'fast.pt'
        >>> shipped_network("phase-diagram")
        Traceback (most recent call last):
        ...
        ValueError: ml solver: no shipped network 'phase-diagram' (did you mean 'phase_diagram'?...
    """
    if not isinstance(name, str) or name not in _BY_NAME:
        close = difflib.get_close_matches(str(name), list(_BY_NAME), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"ml solver: no shipped network {name!r}{hint}; shipped: "
                         f"{', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def shipped_checkpoint(name: str) -> Path:
    """The file of shipped network ``name``; ``ValueError`` for an unknown name or a network
    whose file this installation does not hold."""
    net = shipped_network(name)
    if not net.is_shipped:
        raise ValueError(f"ml solver: network {name!r} is not shipped in this installation "
                         f"({net.path} is missing; its recipe: {net.recipe}); pass "
                         "checkpoint=PATH for a file of your own")
    return net.path


def format_domain(domain: dict) -> str:
    """``beta 20-200, U 0.5-5, ...`` (a single value where ``lo == hi``).

    Example:
        >>> format_domain({"beta": (50.0, 50.0), "U": (0.5, 4.5)})
        'beta 50, U 0.5-4.5'
    """
    parts = []
    for key, (lo, hi) in domain.items():
        parts.append(f"{key} {lo:g}" if lo == hi else f"{key} {lo:g}-{hi:g}")
    return ", ".join(parts)


def describe_shipped() -> list[str]:
    """The lines ``mldmft models`` prints: name, default mark, file size (or ``not shipped``),
    domain and description of every shipped network."""
    rows = []
    for net in SHIPPED:
        size = f"{net.path.stat().st_size / 2 ** 20:.1f} MiB" if net.is_shipped else "not shipped"
        mark = "default" if net.name == DEFAULT_NETWORK else ""
        rows.append((net.name, mark, net.file, size, format_domain(net.domain), net.description))
    head = ("name", "", "file", "size", "domain", "what it is")
    widths = [max(len(r[k]) for r in rows + [head]) for k in range(5)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head[:5], widths)) + "  " + head[5]]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5])
    lines.append(f"use: solve('ml', model, network=NAME) or mldmft dmft solver=ml "
                 f"+solver_options.network=NAME; the default is {DEFAULT_NETWORK!r}")
    return lines
