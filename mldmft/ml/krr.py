"""Kernel ridge regression baseline (scikit-learn ``KernelRidge``), in the spirit of Arsenault,
Lopez-Bezanilla, von Lilienfeld and Millis, PRB 90, 155136 (2014), who learned Legendre
coefficients of the impurity Green's function from the model's inputs by KRR.

Here KRR learns exactly what the networks learn: the standardised targets from the standardised
features of :mod:`mldmft.ml.features` (same transforms, same constraints, same checkpoint
loader). The prediction is

    y(x) = sum_i a_i k(x, x_i),    (K + alpha 1) a = Y   on the training rows,

with ``k`` the ``rbf`` kernel ``exp(-gamma |x - x'|_2^2)`` (default) or the ``laplacian`` kernel
``exp(-gamma |x - x'|_1)``. Hyperparameters are chosen on the validation split from the grid
``alpha in alphas``, ``gamma = g / n_features`` for ``g in gammas`` (``E|x - x'|_2^2 =
2 n_features`` for standardised features, so ``g ~ 0.1 - 1`` spans kernels from smooth to local).
The selected model is the one fitted on the training rows (no refit on train + val, so the
validation score stays an honest estimate). At most ``max_train`` training rows (whole groups,
seeded) are used: memory ``8 n^2`` bytes, time ``~n^3/3`` flops per fit. With ``rows_float32``
the training rows are rounded to float32 before the fit: the model is the exact regression of
the rounded rows, and it stores them in half the bytes (the weights stay float64: with a small
ridge they are large and cancel, so rounding them would move the predictions).

With ``n_centres = m`` the model is the Nystrom (subset-of-regressors) approximation of the same
kernel ridge regression (Williams and Seeger, NIPS 13 (2001); Rudi, Camoriano and Rosasco,
NIPS 28 (2015)): ``m`` centres ``c_j`` drawn at random from the training rows, and

    y(x) = sum_j w_j k(x, c_j),    (K_nm^T K_nm + alpha K_mm) w = K_nm^T Y,

the minimiser of ``|Y - K_nm w|^2 + alpha w^T K_mm w`` over the ``n`` training rows (the exact
model's objective restricted to functions spanned by the centres). It is fitted as
scikit-learn's ``Nystroem`` feature map followed by ``Ridge`` and stored in the exact model's
form (centres and weights), so prediction is unchanged: memory ``8 n m`` bytes, time
``~n m^2`` flops per fit, and a stored model of ``m`` rows instead of ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .config import KRRConfig

__all__ = ["KRRModel", "KRRFit", "fit_krr", "rows_matmul", "ROW_BLOCK"]


def _kernel(kernel: str, a: np.ndarray, b: np.ndarray | None, gamma: float) -> np.ndarray:
    from sklearn.metrics.pairwise import pairwise_kernels

    return pairwise_kernels(a, b, metric=kernel, gamma=gamma)


#: Rows per block of :func:`rows_matmul`: every block has this many rows (zero-padded), so every
#: BLAS call has the same shapes.
ROW_BLOCK = 4


def rows_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (real, ``a`` of shape ``(N, K)``) with each row of the result independent of the
    other rows of ``a``: the rows go through BLAS in blocks of exactly :data:`ROW_BLOCK` (the last
    one zero-padded), each block a fresh contiguous array. Every call then has the same shapes,
    and a BLAS product computes each element of a full block by the same sequence of operations
    wherever its row lies, so a row gives the same bits alone or in any batch (a product of the
    whole batch rounds differently with its number of rows). Cost: the product of ``ceil(N/4)``
    blocks of 4 rows.

    Example:
        >>> a = np.arange(10.0).reshape(5, 2)
        >>> bool(np.array_equal(rows_matmul(a, np.eye(2)), a))
        True
    """
    a = np.asarray(a, dtype=float)
    n_rows = a.shape[0]
    out = np.empty((n_rows, b.shape[1]), dtype=np.result_type(a, b))
    for i in range(0, n_rows, ROW_BLOCK):
        k = min(ROW_BLOCK, n_rows - i)
        block = np.zeros((ROW_BLOCK, a.shape[1]))
        block[:k] = a[i:i + k]
        out[i:i + k] = (block @ b)[:k]
    return out


def _predict_rows(kernel: str, x: np.ndarray, x_fit: np.ndarray, gamma: float,
                  dual_coef: np.ndarray, x_fit_t: np.ndarray | None = None,
                  x_fit_sq: np.ndarray | None = None) -> np.ndarray:
    """``k(x, x_fit) @ dual_coef``, each row independent of the other rows of the call.

    ``rbf``: in blocks of exactly :data:`ROW_BLOCK` rows (the last one zero-padded), each copied
    into a fresh contiguous array, ``|x - x'|^2 = |x|^2 + |x'|^2 - 2 x.x'`` (clipped at 0) with
    the products by BLAS, as in :func:`rows_matmul`: every step has the same shapes whatever the
    batch, so a row gives the same bits alone or in any batch. ``x_fit_t`` (``x_fit.T``,
    contiguous) and ``x_fit_sq`` (``|x'|^2``) may be passed precomputed. ``laplacian``: the
    distances ``sum_k |x_k - x'_k|`` and the sums by ``einsum``'s own loops, row by row. With a
    small ridge ``alpha`` the dual coefficients are large and cancel, which would turn a
    rounding difference of 1e-16 between a batch and one row into ~1e-9 in ``G_l``: hence the
    fixed order of operations per row.
    """
    n_rows = x.shape[0]
    out = np.empty((n_rows, dual_coef.shape[1]))
    if kernel == "rbf":
        if x_fit_t is None:
            x_fit_t = np.ascontiguousarray(x_fit.T)
        if x_fit_sq is None:
            x_fit_sq = np.einsum("ij,ij->i", x_fit, x_fit)
        for i in range(0, n_rows, ROW_BLOCK):
            k = min(ROW_BLOCK, n_rows - i)
            block = np.zeros((ROW_BLOCK, x.shape[1]))
            block[:k] = x[i:i + k]
            dist = np.einsum("ij,ij->i", block, block)[:, None] + x_fit_sq[None, :]
            dist -= 2.0 * (block @ x_fit_t)
            np.maximum(dist, 0.0, out=dist)
            out[i:i + k] = (np.exp(-gamma * dist) @ dual_coef)[:k]
        return out
    if kernel != "laplacian":
        raise ValueError(f"KRR: unknown kernel {kernel!r}")
    for i in range(n_rows):
        dist = np.einsum("jk->j", np.abs(x[i, None, :] - x_fit))
        out[i] = np.einsum("j,jk->k", np.exp(-gamma * dist), dual_coef)
    return out


@dataclass(frozen=True, eq=False)
class KRRModel:
    """A fitted kernel ridge regression: ``y(x) = k(x, x_fit) @ dual_coef``.

    Called on standardised features ``[n, n_features]`` it returns ``[1, n, n_targets]`` (one
    "member", like a single network).
    """

    kernel: str
    gamma: float
    alpha: float
    x_fit: np.ndarray
    dual_coef: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """``[1, n, n_targets]``; equal rows of ``x`` are evaluated once (every row's value is
        independent of the other rows, so this changes no bit: at half filling a model and its
        particle-hole twin have the same features)."""
        x = np.asarray(x, dtype=float)
        x_fit_t, x_fit_sq = self._fit_products
        slot: dict[bytes, int] = {}         # row bytes -> index among the distinct rows
        inverse = [slot.setdefault(row.tobytes(), len(slot)) for row in x]
        repeats = len(slot) < len(x)
        distinct = x[np.unique(inverse, return_index=True)[1]] if repeats else x
        y = _predict_rows(self.kernel, distinct, self.x_fit, self.gamma, self.dual_coef,
                          x_fit_t, x_fit_sq)
        return (y[inverse] if repeats else y)[None]

    @cached_property
    def _fit_products(self) -> tuple[np.ndarray, np.ndarray]:
        """``x_fit.T`` (contiguous) and ``|x_fit|^2`` per row, computed once."""
        return (np.ascontiguousarray(self.x_fit.T),
                np.einsum("ij,ij->i", self.x_fit, self.x_fit))

    def to_dict(self) -> dict[str, Any]:
        import torch

        x_fit = np.ascontiguousarray(self.x_fit)
        as_float32 = x_fit.astype(np.float32)
        if np.array_equal(as_float32, x_fit):       # rows fitted in float32: stored exactly
            x_fit = as_float32
        return {"kernel": self.kernel, "gamma": float(self.gamma), "alpha": float(self.alpha),
                "x_fit": torch.from_numpy(x_fit),
                "dual_coef": torch.from_numpy(np.ascontiguousarray(self.dual_coef))}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "KRRModel":
        return cls(kernel=str(d["kernel"]), gamma=float(d["gamma"]), alpha=float(d["alpha"]),
                   x_fit=np.asarray(d["x_fit"].numpy(), dtype=float),
                   dual_coef=np.asarray(d["dual_coef"].numpy(), dtype=float))


@dataclass(frozen=True, eq=False)
class KRRFit:
    """The selected model and the validation scores of the whole grid."""

    model: KRRModel
    grid: list[dict[str, float]]
    n_train: int

    def at_grid_edge(self) -> list[str]:
        """Hyperparameters whose selected value is the smallest or largest of a grid with more
        than one value (the optimum may lie outside: widen that grid)."""
        best = min(self.grid, key=lambda row: row["val_mse"]
                   if np.isfinite(row["val_mse"]) else np.inf)
        out = []
        for key in ("alpha", "gamma_rel"):
            values = sorted({row[key] for row in self.grid})
            if len(values) > 1 and best[key] in (values[0], values[-1]):
                out.append(f"{'gamma' if key == 'gamma_rel' else key} = {best[key]:g} "
                           f"(grid {values[0]:g} .. {values[-1]:g})")
        return out


def _subset(groups: np.ndarray, max_rows: int | None, seed: int) -> np.ndarray:
    idx = np.arange(groups.size)
    if max_rows is None or groups.size <= max_rows:
        return idx
    order = np.random.default_rng(seed).permutation(np.unique(groups))
    chosen, n = [], 0
    sizes = {g: int(c) for g, c in zip(*np.unique(groups, return_counts=True))}
    for g in order:
        if n + sizes[g] > max_rows:
            continue
        chosen.append(g)
        n += sizes[g]
    return idx[np.isin(groups, chosen)]


def _fits(cfg: KRRConfig, x_tr: np.ndarray, y_tr: np.ndarray, gamma: float, seed: int):
    """``(alpha, (x_fit, dual_coef))`` for every ``alpha`` of the grid at one ``gamma``: the
    exact kernel ridge regression (``cfg.n_centres`` None) or its Nystrom approximation on
    ``cfg.n_centres`` centres drawn with ``seed`` (module doc)."""
    if cfg.n_centres is None:
        from sklearn.kernel_ridge import KernelRidge

        k_tr = _kernel(cfg.kernel, x_tr, None, gamma)
        for alpha in cfg.alphas:
            reg = KernelRidge(alpha=alpha, kernel="precomputed").fit(k_tr, y_tr)
            yield alpha, (x_tr, np.asarray(reg.dual_coef_, float))
        return
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import Ridge

    feature_map = Nystroem(kernel=cfg.kernel, gamma=gamma, n_components=cfg.n_centres,
                           random_state=seed).fit(x_tr)
    phi = feature_map.transform(x_tr)
    for alpha in cfg.alphas:
        reg = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(phi, y_tr)
        dual_coef = feature_map.normalization_.T @ np.atleast_2d(reg.coef_).T
        yield alpha, (np.asarray(feature_map.components_, float),
                      np.ascontiguousarray(dual_coef.reshape(cfg.n_centres, -1)))


def fit_krr(cfg: KRRConfig, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
            y_val: np.ndarray, train_groups: np.ndarray | None = None, seed: int = 0) -> KRRFit:
    """Fit KRR on the training rows for every ``(alpha, gamma)`` and keep the best on val.

    Args:
        cfg: kernel and grids.
        x_train, y_train: standardised training features and targets.
        x_val, y_val: standardised validation features and targets.
        train_groups: group ids of the training rows (for the ``max_train`` subset).
        seed: seed of the subset.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 2)); y = np.sin(x[:, :1])
        >>> fit = fit_krr(KRRConfig(), x[:40], y[:40], x[40:], y[40:])
        >>> bool(np.mean((fit.model(x[40:])[0] - y[40:]) ** 2) < 0.01)
        True
    """
    groups = np.arange(len(x_train)) if train_groups is None else np.asarray(train_groups)
    keep = _subset(groups, cfg.max_train, seed)
    x_tr, y_tr = np.asarray(x_train, float)[keep], np.asarray(y_train, float)[keep]
    if cfg.rows_float32:
        x_tr = x_tr.astype(np.float32).astype(float)
    n_feat = x_tr.shape[1]
    best: tuple[float, KRRModel] | None = None
    grid = []
    if cfg.n_centres is not None and cfg.n_centres > x_tr.shape[0]:
        raise ValueError(f"model.n_centres = {cfg.n_centres} exceeds the {x_tr.shape[0]} "
                         "training rows")
    x_val = np.asarray(x_val, float)
    for g in cfg.gammas:
        gamma = g / n_feat
        for alpha, (x_fit, dual_coef) in _fits(cfg, x_tr, y_tr, gamma, seed):
            model = KRRModel(kernel=cfg.kernel, gamma=gamma, alpha=float(alpha), x_fit=x_fit,
                             dual_coef=dual_coef)
            mse = float(np.mean((model(x_val)[0] - y_val) ** 2))
            grid.append({"alpha": float(alpha), "gamma_rel": float(g), "gamma": gamma,
                         "val_mse": mse})
            if np.isfinite(mse) and (best is None or mse < best[0]):
                best = (mse, model)
    if best is None:
        raise ValueError("kernel ridge regression: every (alpha, gamma) of the grid gave a "
                         "non-finite validation error")
    return KRRFit(model=best[1], grid=grid, n_train=int(keep.size))
