"""Correction networks (torch only; no Lightning, so inference loads fast).

Every network maps standardised features ``x`` ``[batch, n_in]`` to standardised targets and
returns ``[members, batch, n_out]`` (``members = 1`` for a single network):

* :class:`MLP` -- fully connected; ``configs/model/mlp_small.yaml`` is ``MLP(hidden=51, depth=2, tanh)``.
* :class:`ResMLP` -- input projection, ``depth`` pre-norm residual blocks
  ``h <- h + W2 act(W1 LayerNorm(h))`` (inner width ``2 hidden``), output projection. The last
  layer of every block starts at zero, so the untrained network is a shallow map and depth
  costs no stability.
* :class:`Ensemble` -- ``n_members`` networks with independent initialisations trained side by
  side on the same batches (a deep ensemble, Lakshminarayanan et al., NeurIPS 2017); the spread
  of the members is the per-sample uncertainty.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import NetConfig

__all__ = ["MLP", "ResMLP", "Ensemble", "build_network"]


def _activation(name: str) -> nn.Module:
    return {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}[name]()


class MLP(nn.Module):
    """Fully connected network: ``depth`` hidden layers of ``hidden`` units.

    Example:
        >>> import torch
        >>> net = MLP(10, 3, hidden=51, depth=2, activation="tanh")
        >>> tuple(net(torch.zeros(4, 10)).shape)
        (1, 4, 3)
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, depth: int, activation: str,
                 dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), _activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, n_out))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[None]


class _ResBlock(nn.Module):
    def __init__(self, width: int, activation: str, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.act = _activation(activation)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(2 * width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(self.drop(self.act(self.fc1(self.norm(h)))))


class ResMLP(nn.Module):
    """Residual MLP: ``Linear -> depth x (pre-norm residual block) -> LayerNorm -> Linear``.

    Example:
        >>> import torch
        >>> tuple(ResMLP(10, 3, hidden=32, depth=2, activation="gelu")(torch.zeros(4, 10)).shape)
        (1, 4, 3)
    """

    def __init__(self, n_in: int, n_out: int, hidden: int, depth: int, activation: str,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.blocks = nn.Sequential(*[_ResBlock(hidden, activation, dropout)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.blocks(self.inp(x))))[None]


class Ensemble(nn.Module):
    """``n_members`` networks; output ``[n_members, batch, n_out]``."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self.members], dim=0)


def build_network(cfg: NetConfig, n_in: int, n_out: int) -> nn.Module:
    """The network of a :class:`~mldmft.ml.config.NetConfig` (weights from torch's RNG)."""
    def one(kind: str) -> nn.Module:
        cls = MLP if kind == "mlp" else ResMLP
        return cls(n_in, n_out, cfg.hidden, cfg.depth, cfg.activation, cfg.dropout)

    if cfg.kind == "ensemble":
        return Ensemble([one(cfg.member) for _ in range(cfg.n_members)])
    return one(cfg.kind)
