"""The LightningModule that trains the networks of :mod:`mldmft.ml.networks`.

:class:`CorrectionModule` trains them with the mean-square error in standardised target units
(each member gets its own loss; validation scores the member mean, i.e. the prediction used).
A non-finite training loss stops the run with :class:`NonFiniteLossError`.
"""

from __future__ import annotations

from typing import Any

import lightning as L
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
    """

    def __init__(self, net_config: dict[str, Any], n_in: int, n_out: int) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = NetConfig(**net_config)
        self.net = build_network(self.cfg, n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
                      ) -> torch.Tensor:
        x, y = batch
        loss = ((self.net(x) - y[None]) ** 2).mean()
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, batch "
                f"{batch_idx}: the run is stopped (lower model.lr, check the data for "
                "extreme values, or use a bounded target transform)")
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss = ((self.net(x).mean(dim=0) - y) ** 2).mean()
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
