"""Random search baseline: the NOS paper's "best of 30 random cells".

Samples ``rs_candidates`` genotypes from the trial's seed (the space's uniform sampler), trains each one
from scratch for ``rs_epochs`` epochs on the weight half — the final network at the space's search size
(``build_network(..., "search")``: the cell spaces' ``search_layers`` and ``search_channels``), no auxiliary
head or drop-path, with the shared search weight optimiser — and keeps the one with the best accuracy on the
architecture half (ties: the earlier sample). One search "epoch" is one candidate, so checkpoints and
progress come per candidate. It has no operation-importance scores, so
its operation-level correlation is undefined (null in the record).

On a space with a benchmark (NAS-Bench-201) nothing is trained: each candidate is a query (``Benchmark.query``)
of the benchmark's *validation* figure for the search dataset (``Benchmark.valid_column``; NAS-Bench-201's:
``cifar10_valid_valid`` unless the table has the dataset's own), ``rs_candidates`` queries in all — random
search with a budget of benchmark queries, selecting by validation, never by test accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from harness.core.config import Key
from harness.core.data import DataInfo, SearchData
from harness.core.errors import UserError
from harness.core.registry import register_method
from harness.core.train import cosine_lr, evaluate, set_lr, sgd, time_train_steps, to_device, train_epoch
from methods.base import SearchMethod
from spaces.base import SearchSpace

# The budget of every black-box search (this one and ``methods/blackbox.py``'s), so that one ``--set`` gives them all
# the same: evaluations per trial, and the training epochs of one at full fidelity.
CANDIDATE_KEYS: dict[str, Key] = {
    "rs_candidates": Key(30, "black-box search: candidates evaluated (random search: genotypes sampled)", "[1, inf)"),
    "rs_epochs": Key(10, "black-box search: training epochs of a candidate at full fidelity", "[1, inf)"),
}


def candidate_model(space: SearchSpace, genotype: Any, info: DataInfo, cfg: dict[str, Any],
                    device: torch.device) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A candidate's network at the space's search size (``build_network(..., "search")``, no auxiliary head or
    drop-path) on ``device``, and the shared search SGD over its weights: what every black-box search trains."""
    net = to_device(space.build_network(genotype, info, "search", auxiliary=False), cfg, device)
    return net, sgd(net.parameters(), cfg, "w")


def train_candidate_epoch(net: torch.nn.Module, opt: torch.optim.Optimizer, data: SearchData, cfg: dict[str, Any],
                          index: int, epoch: int, epochs: int) -> None:
    """Epoch ``epoch`` of candidate ``index``'s ``epochs``: the cosine from ``w_lr`` to ``w_lr_min`` over them, on the
    weight half's batch stream ``index · rs_epochs + epoch`` (the candidate's own)."""
    set_lr(opt, cosine_lr(epoch, epochs, cfg["w_lr"], cfg["w_lr_min"]))
    train_epoch(net, opt, data.weight_batches(index * int(cfg["rs_epochs"]) + epoch, phase="candidate"),
                cfg["grad_clip"])


def candidate_step_time(net: torch.nn.Module, opt: torch.optim.Optimizer, data: SearchData, cfg: dict[str, Any],
                        steps: int) -> tuple[float, int]:
    """Measured seconds of one candidate training step, and the steps of a candidate at full fidelity (the plan's
    estimate)."""
    per_step = time_train_steps(net, opt, data.weight_batches(0, phase="candidate"), cfg["grad_clip"], steps=steps)
    return per_step, len(data.weight_batches(0)) * int(cfg["rs_epochs"])


@register_method
class RandomSearch(SearchMethod):
    name = "random"
    description = "random search: best of k sampled genotypes, each trained briefly"
    needs = frozenset({"sample"})
    keys = CANDIDATE_KEYS  # no search_epochs: the search has rs_candidates steps
    ignored_keys = frozenset({"corr_edges", "corr_batches"})
    # smoke: three candidates of one epoch each (seconds); small: eight of three epochs (minutes on a CPU)
    budgets = {"smoke": {"rs_candidates": 3, "rs_epochs": 1}, "small": {"rs_candidates": 8, "rs_epochs": 3}}
    benchmark_queries = "rs_candidates"  # on a space with a benchmark each candidate is one query (train_epoch)
    # on NAS-Bench-201 every black-box method (``methods/blackbox.py``) has the same paper budget: 100 look-ups
    space_defaults = {"nb201": {"rs_candidates": 100}}

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        super().__init__(space, cfg, info, device, seed)
        rng = np.random.default_rng(seed)
        self.candidates = [space.sample(rng) for _ in range(cfg["rs_candidates"])]
        self.val_accs: list[float] = []
        self.table = space.benchmark()
        self.valid_column = self.table.valid_column(info.name) if self.table is not None else None

    def num_epochs(self) -> int:
        return int(self.cfg["rs_candidates"])

    def _build_candidate(self, index: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        return candidate_model(self.space, self.candidates[index], self.info, self.cfg, self.device)

    def _train_candidate(self, index: int, data: SearchData) -> float:
        net, opt = self._build_candidate(index)
        for epoch in range(self.cfg["rs_epochs"]):
            train_candidate_epoch(net, opt, data, self.cfg, index, epoch, self.cfg["rs_epochs"])
        return evaluate(net, data.val_batches())[1]

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        if self.table is not None:
            val_acc = float(self.table.query([self.candidates[epoch]], self.valid_column)[0])
        else:
            val_acc = self._train_candidate(epoch, data)
        self.val_accs.append(val_acc)
        return {"val_acc": val_acc, "best_val_acc": self.search_val_acc({}),
                "genotype": self.space.to_str(self.candidates[epoch])}

    def step_time(self, data: SearchData, steps: int = 1) -> tuple[float, int]:
        if self.table is not None:
            return 0.0, 1
        return candidate_step_time(*self._build_candidate(0), data, self.cfg, steps)

    def derive(self) -> Any:
        if np.isnan(self.val_accs).all():
            raise UserError(f"none of the {len(self.val_accs)} sampled architectures has a '{self.valid_column}' "
                            "figure in the benchmark table; use a table with validation figures")
        return self.candidates[int(np.nanargmax(self.val_accs))]

    def search_val_acc(self, last_epoch: dict[str, Any]) -> float:
        known = [v for v in self.val_accs if not np.isnan(v)]
        return max(known) if known else float("nan")

    def state_dict(self) -> dict[str, Any]:
        return {"val_accs": list(self.val_accs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.val_accs = list(state["val_accs"])
