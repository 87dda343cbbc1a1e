"""Standardisation and the element-wise transforms T0/T1/T2, fitted on the training split only.

A :class:`FittedTransform` maps encoded values ``v`` (features or targets) to network units::

    z = T((v - mean) / std)

with ``T`` one of three element-wise transforms

* ``T0``: ``T(u) = u``                      inverse ``u = z``
* ``T1``: ``T(u) = tanh(u)``                inverse ``u = artanh(z)``
* ``T2``: ``T(u) = -tanh(u)``               inverse ``u = -artanh(z)``

Standardising first puts every column at the scale where ``tanh`` is informative: it is nearly
linear within one standard deviation and squashes outliers (a raw ``beta = 50`` would give
``tanh(50) = 1`` and lose everything). The inverse of ``tanh`` needs ``|z| < 1``: a network output
outside is clipped to ``|z| <= 1 - CLIP_EPS`` (``CLIP_EPS = 1e-7``), so an inverted value lies
within ``artanh(1 - 1e-7) ~ 8.4`` standard deviations of the training mean; ``inverse`` returns how
many values were clipped. The transforms invert to rounding for ``|u| <~ 5`` (``tanh`` saturates in
float64 beyond ``|u| ~ 19``).

Standardisation (fitted by :meth:`FittedTransform.fit` on training rows only):

* ``scale="per_component"`` (features): mean and standard deviation of each column; a constant
  column gets ``std = 1``.
* ``scale="per_block"`` (features): the mean of each column but one ``std`` per block of columns
  (``groups`` labels them), the RMS of the block's centred values. Within a block of Legendre
  coefficients ``G_l / beta`` the Euclidean distance then stays the ``L2`` distance of the
  functions ``G(tau)`` (Parseval), instead of blowing the tiny high-``l`` coefficients up to unit
  variance -- what a distance-based kernel (KRR) needs.
* ``scale="global"`` (targets): the mean of each column but one common ``std`` (the RMS of all
  centred values), so that with T0 the squared error in network units is proportional to the
  squared error of the encoded target -- for the ``g_l_correction`` encoding, the mean-square
  error of ``G(tau)`` (see ``docs/networks.md``).

Everything is numpy float64; the arrays are stored in the checkpoint
(:meth:`FittedTransform.to_dict`) so a prediction needs nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CLIP_EPS", "element_forward", "element_inverse", "FittedTransform"]

CLIP_EPS = 1e-7


def element_forward(kind: str, v: np.ndarray) -> np.ndarray:
    """Apply T0 (identity), T1 (tanh) or T2 (-tanh) element-wise.

    Example:
        >>> import numpy as np
        >>> element_forward("T2", np.array([0.0, 1.0])).round(6).tolist()
        [-0.0, -0.761594]
    """
    v = np.asarray(v, dtype=float)
    if kind == "T0":
        return v.copy()
    if kind == "T1":
        return np.tanh(v)
    if kind == "T2":
        return -np.tanh(v)
    raise ValueError(f"unknown transform {kind!r}; choose T0, T1 or T2")


def element_inverse(kind: str, u: np.ndarray) -> tuple[np.ndarray, int]:
    """Inverse of :func:`element_forward`; returns ``(v, n_clipped)``.

    ``tanh`` images outside ``|u| <= 1 - CLIP_EPS`` are clipped before ``artanh``.

    Example:
        >>> import numpy as np
        >>> v, n = element_inverse("T1", np.tanh(np.array([0.3, -2.0])))
        >>> np.allclose(v, [0.3, -2.0]), n
        (True, 0)
    """
    u = np.asarray(u, dtype=float)
    if kind == "T0":
        return u.copy(), 0
    if kind not in ("T1", "T2"):
        raise ValueError(f"unknown transform {kind!r}; choose T0, T1 or T2")
    lim = 1.0 - CLIP_EPS
    n_clipped = int(np.count_nonzero(np.abs(u) > lim))
    uc = np.clip(u, -lim, lim)
    v = np.arctanh(uc)
    return (v if kind == "T1" else -v), n_clipped


@dataclass(frozen=True, eq=False)
class FittedTransform:
    """``z = T((v - mean) / std)`` with arrays fitted on the training rows.

    Attributes:
        kind: element transform, T0, T1 or T2.
        mean: column means of ``v`` over the training rows, shape ``[n_columns]``.
        std: column scales, shape ``[n_columns]`` (all equal for ``scale="global"``).
        scale: ``"per_component"`` or ``"global"``.
    """

    kind: str
    mean: np.ndarray
    std: np.ndarray
    scale: str = "per_component"

    @classmethod
    def fit(cls, kind: str, v_train: np.ndarray, scale: str = "per_component",
            groups: np.ndarray | None = None) -> "FittedTransform":
        """Fit mean and scale of ``v`` on training rows ``v_train`` ``[n_rows, n_columns]``.

        ``groups`` (one label per column) defines the blocks of ``scale="per_block"``.

        Example:
            >>> import numpy as np
            >>> t = FittedTransform.fit("T1", np.array([[0.0, 1.0], [2.0, 1.0]]))
            >>> t.mean.tolist(), t.std.tolist()     # a constant column keeps std = 1
            ([1.0, 1.0], [1.0, 1.0])
        """
        v_train = np.asarray(v_train, dtype=float)
        if v_train.ndim != 2 or v_train.shape[0] < 1:
            raise ValueError(f"cannot fit a transform on an array of shape {v_train.shape}: "
                             "need [rows >= 1, columns]")
        if not np.all(np.isfinite(v_train)):
            raise ValueError("cannot fit a transform: the training values contain NaN or inf")
        element_forward(kind, np.zeros(1))  # validates the kind
        mean = v_train.mean(axis=0)
        centred = v_train - mean
        if scale == "per_component":
            std = centred.std(axis=0)
            tiny = std <= 1e-12 * np.maximum(1.0, np.abs(v_train).max(axis=0))
            std = np.where(tiny, 1.0, std)
        elif scale in ("global", "per_block"):
            if scale == "global" or groups is None:
                groups = np.zeros(v_train.shape[1], dtype=int)
            groups = np.asarray(groups)
            if groups.shape != (v_train.shape[1],):
                raise ValueError(f"groups must label each of the {v_train.shape[1]} columns, got "
                                 f"shape {groups.shape}")
            std = np.ones(v_train.shape[1])
            for g in np.unique(groups):
                cols = groups == g
                rms = float(np.sqrt(np.mean(centred[:, cols] ** 2)))
                std[cols] = rms if rms > 1e-12 * max(1.0, float(np.abs(v_train[:, cols]).max())) \
                    else 1.0
        else:
            raise ValueError(f"unknown scale {scale!r}; choose per_component, per_block or "
                             "global")
        return cls(kind=kind, mean=mean, std=std, scale=scale)

    @property
    def n_columns(self) -> int:
        return int(self.mean.size)

    def forward(self, v: np.ndarray) -> np.ndarray:
        """Encoded values -> network units ``T((v - mean) / std)``."""
        v = np.asarray(v, dtype=float)
        if v.shape[-1] != self.n_columns:
            raise ValueError(f"transform expects {self.n_columns} columns, got {v.shape[-1]}")
        return element_forward(self.kind, (v - self.mean) / self.std)

    def inverse(self, z: np.ndarray) -> tuple[np.ndarray, int]:
        """Network units -> encoded values; returns ``(v, n_clipped)``."""
        z = np.asarray(z, dtype=float)
        if z.shape[-1] != self.n_columns:
            raise ValueError(f"transform expects {self.n_columns} columns, got {z.shape[-1]}")
        u, n_clipped = element_inverse(self.kind, z)
        return u * self.std + self.mean, n_clipped

    def to_dict(self) -> dict[str, Any]:
        """Plain representation stored in checkpoints (lists of floats)."""
        return {"kind": self.kind, "scale": self.scale, "mean": self.mean.tolist(),
                "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FittedTransform":
        return cls(kind=str(d["kind"]), mean=np.asarray(d["mean"], dtype=float),
                   std=np.asarray(d["std"], dtype=float), scale=str(d.get("scale",
                                                                         "per_component")))
