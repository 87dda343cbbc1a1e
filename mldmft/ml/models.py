"""The LightningModule that trains the networks of :mod:`mldmft.ml.networks`.

:class:`CorrectionModule` trains them with the mean-square error in standardised target units
(each member gets its own loss; validation scores the member mean, i.e. the prediction used).
A non-finite training loss stops the run with :class:`NonFiniteLossError`.

Optional low-frequency term (``model.iw_loss_weight = w > 0``, target ``g_l_correction`` with
the identity transform): with ``d_l`` the error of the standardised target and
``T_nl`` the Legendre-to-Matsubara matrix (:func:`solvers.legendre_t_matrix`), the loss per row is

    ( sum_l d_l^2 + w sum_{n < n_w} |sum_l T_nl d_l|^2 ) / n_targets,

i.e. the ``G(tau)`` mean-square error plus ``w`` times the error of ``G(i w_n) / beta`` on the
first ``n_w = model.iw_loss_frequencies`` frequencies (the global target scale cancels). With
``model.iw_loss_beta`` the second term of each row is multiplied by ``(beta / <beta>_train)^2``
(the error of ``G(i w_n)`` itself, in units of the training mean of beta). It
weights what ``Z`` and the DMFT update depend on, which a small ``G(tau)`` error can still miss.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from .config import NetConfig
from .networks import build_network

__all__ = ["CorrectionModule", "NonFiniteLossError"]


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite."""


class CorrectionModule(L.LightningModule):
    """Lightning wrapper: MSE training in standardised units, Adam(W), optional LR halving.

    Args:
        net_config: plain dict of a :class:`~mldmft.ml.config.NetConfig`.
        n_in: feature count.
        n_out: target count.
        iw_matrix: ``[n_w, n_out]`` complex ``T_nl`` of the low-frequency loss term (required
            when ``iw_loss_weight > 0``).
        iw_beta: ``(column, mean, std, beta_ref)``: ``beta = x[:, column] std + mean`` of the
            standardised input; the low-frequency term of each row is weighted by
            ``(beta / beta_ref)^2`` (required when ``iw_loss_beta``).
    """

    def __init__(self, net_config: dict[str, Any], n_in: int, n_out: int,
                 iw_matrix: np.ndarray | None = None,
                 iw_beta: tuple[int, float, float, float] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["iw_matrix", "iw_beta"])
        # (column of beta in the network input, its mean and std there, reference beta)
        self.iw_beta = iw_beta
        self.cfg = NetConfig(**net_config)
        self.net = build_network(self.cfg, n_in, n_out)
        self.iw_weight = float(self.cfg.iw_loss_weight)
        if self.iw_weight > 0:
            if iw_matrix is None or np.shape(iw_matrix)[-1] != n_out:
                raise ValueError("model.iw_loss_weight > 0 needs the [n_w, n_targets] "
                                 "Legendre-to-Matsubara matrix of the targets")
            if self.cfg.iw_loss_beta and iw_beta is None:
                raise ValueError("model.iw_loss_beta needs the position of beta in the input")
            t = np.asarray(iw_matrix)
            self.register_buffer("iw_t", torch.as_tensor(np.concatenate([t.real, t.imag]).T,
                                                         dtype=torch.float32))

    def _loss(self, pred: torch.Tensor, y: torch.Tensor, x: torch.Tensor | None = None
              ) -> torch.Tensor:
        d = pred - y
        loss = (d ** 2).mean()
        if self.iw_weight > 0:
            term = ((d @ self.iw_t) ** 2).sum(-1)
            if self.cfg.iw_loss_beta:
                col, mean, std, ref = self.iw_beta
                term = term * ((x[:, col] * std + mean) / ref) ** 2
            loss = loss + self.iw_weight * term.mean() / d.shape[-1]
        return loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
                      ) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self.net(x), y[None], x)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, batch "
                f"{batch_idx}: the run is stopped (lower model.lr, check the data for "
                "extreme values, or use a bounded target transform)")
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss = self._loss(self.net(x).mean(dim=0), y, x)
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=x.shape[0])

    def configure_optimizers(self) -> Any:
        if self.cfg.weight_decay > 0:
            opt = torch.optim.AdamW(self.parameters(), lr=self.cfg.lr,
                                    weight_decay=self.cfg.weight_decay)
        else:
            opt = torch.optim.Adam(self.parameters(), lr=self.cfg.lr)
        if self.cfg.lr_patience is None:
            return opt
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5,
                                                           patience=self.cfg.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
