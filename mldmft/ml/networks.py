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

:class:`Stacked` evaluates a trained network (any of the three, in eval mode) in numpy float64
with the weights of all members stacked: one batched matrix product per layer for the whole
ensemble instead of one torch module call per layer and member (~60 calls for 5 residual MLPs,
whose overhead is what a prediction for a few rows costs). It computes the same function
(tested to 1e-12).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import NetConfig

__all__ = ["MLP", "ResMLP", "Ensemble", "Stacked", "build_network"]


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


def _act_function(module: nn.Module):
    """The element-wise numpy function of an activation module of :func:`_activation`."""
    if isinstance(module, nn.GELU):
        if module.approximate != "none":
            raise ValueError("Stacked: only the exact GELU is supported")
        from scipy.special import erf

        return lambda h: 0.5 * h * (1.0 + erf(h * 0.7071067811865476))
    return {nn.Tanh: np.tanh, nn.ReLU: lambda h: np.maximum(h, 0.0),
            nn.SiLU: lambda h: h / (1.0 + np.exp(-h))}[type(module)]


class Stacked:
    """A trained :class:`MLP`, :class:`ResMLP` or :class:`Ensemble` of them as a numpy float64
    function with the members' weights stacked (module docstring): ``Stacked(net)(x)`` equals
    ``net.double().eval()(x)`` to rounding.

    The weights are copied at construction; dropout is off (eval).

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> net = Ensemble([ResMLP(6, 3, 8, 2, "gelu") for _ in range(3)]).double().eval()
        >>> for p in net.parameters():
        ...     _ = torch.nn.init.normal_(p, std=0.3)
        >>> x = np.random.default_rng(0).normal(size=(4, 6))
        >>> with torch.no_grad():
        ...     bool(np.allclose(Stacked(net)(x), net(torch.as_tensor(x)).numpy(), rtol=0,
        ...                      atol=1e-12))
        True
    """

    def __init__(self, net: nn.Module) -> None:
        members = list(net.members) if isinstance(net, Ensemble) else [net]
        programs = [self._program(m) for m in members]
        if any([op[0] for op in prog] != [op[0] for op in programs[0]] for prog in programs):
            raise ValueError("Stacked: the members differ in structure")
        # (kind, arrays stacked over the members, activation function or None)
        self.ops = [(kind, [np.stack([t.detach().to(torch.float64).numpy() for t in ts])
                            for ts in zip(*[prog[k][1] for prog in programs])], fn)
                    for k, (kind, _, fn) in enumerate(programs[0])]

    @staticmethod
    def _program(member: nn.Module) -> list[tuple]:
        """The layers of one member as ``(kind, tensors, activation)`` in order."""
        def linear(m: nn.Linear) -> tuple:
            return ("linear", [m.weight.T, m.bias], None)

        def norm(m: nn.LayerNorm) -> list:
            return [m.weight, m.bias, torch.tensor(m.eps)]

        if isinstance(member, ResMLP):
            prog = [linear(member.inp)]
            prog += [("block", norm(b.norm) + [b.fc1.weight.T, b.fc1.bias, b.fc2.weight.T,
                                               b.fc2.bias], _act_function(b.act))
                     for b in member.blocks]
            return prog + [("norm", norm(member.norm), None), linear(member.out)]
        if isinstance(member, MLP):
            return [linear(m) if isinstance(m, nn.Linear) else ("act", [], _act_function(m))
                    for m in member.body if not isinstance(m, nn.Dropout)]
        raise ValueError(f"Stacked: cannot stack a {type(member).__name__}")

    @staticmethod
    def _norm(h: np.ndarray, w: np.ndarray, b: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """Layer norm of ``h`` ``[members, batch, width]`` with per-member weights."""
        centred = h - h.mean(axis=-1, keepdims=True)
        var = (centred * centred).mean(axis=-1, keepdims=True)
        return centred / np.sqrt(var + eps[:, None, None]) * w[:, None, :] + b[:, None, :]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``[members, batch, n_out]`` of ``x`` ``[batch, n_in]`` (float64)."""
        h = np.asarray(x, dtype=np.float64)[None]
        for kind, p, fn in self.ops:
            if kind == "linear":
                h = np.matmul(h, p[0]) + p[1][:, None, :]
            elif kind == "norm":
                h = self._norm(h, *p)
            elif kind == "act":
                h = fn(h)
            else:  # block: h + W2 act(W1 LayerNorm(h))
                inner = fn(np.matmul(self._norm(h, *p[:3]), p[3]) + p[4][:, None, :])
                h = h + np.matmul(inner, p[5]) + p[6][:, None, :]
        return h
