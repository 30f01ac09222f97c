"""The evaluation protocol: train the derived network from scratch and measure test accuracy.

Shared by every method (fairness): the whole training set (both search halves), SGD with momentum
(Nesterov where the space's protocol says so), weight decay and gradient clip, learning rate
cosine-annealed per epoch from ``eval_lr`` to ``eval_lr_min``, cutout, the auxiliary head weighted by
``auxiliary_weight``, and drop-path ramped linearly from 0 to ``drop_path`` over the epochs (DARTS:
``drop_path · epoch / epochs``). The test set is touched once, after the last epoch: the reported figure is
the final network's, never a best-of-epochs. The space's defaults set these keys where its protocol
differs (NAS-Bench-201: Nesterov, lr 0.1, weight decay 5e-4, no cutout, auxiliary head or drop-path).
"""

from __future__ import annotations

from typing import Any

import torch

from harness.core.data import SearchData
from harness.core.train import cosine_lr, evaluate, set_lr, sgd, to_device, train_epoch
from spaces.base import SearchSpace


class FinalTraining:
    def __init__(self, space: SearchSpace, genotype: Any, data: SearchData, cfg: dict[str, Any],
                 device: torch.device):
        self.data, self.cfg = data, cfg
        self.net = space.build_network(genotype, data.info, "eval", auxiliary=cfg["auxiliary_weight"] > 0)
        self.net = to_device(self.net, cfg, device)
        self.opt = sgd(self.net.parameters(), cfg, "eval")

    @property
    def epochs(self) -> int:
        return int(self.cfg["eval_epochs"])

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg = self.cfg
        lr = cosine_lr(epoch, self.epochs, cfg["eval_lr"], cfg["eval_lr_min"])
        set_lr(self.opt, lr)
        self.net.drop_path_prob = cfg["drop_path"] * epoch / self.epochs
        loss, acc = train_epoch(self.net, self.opt, self.data.eval_train_batches(epoch), cfg["eval_grad_clip"],
                                cfg["auxiliary_weight"])
        return {"train_loss": loss, "train_acc": acc, "lr": lr}

    def test(self) -> tuple[float, float]:
        return evaluate(self.net, self.data.test_batches())

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.opt.load_state_dict(state["opt"])
