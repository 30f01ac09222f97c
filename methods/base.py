"""The method side of the narrow space/method interface.

A method owns how the candidates of a searchable edge are combined during search, how architecture
knowledge is learned, the operation-importance scores it produces, and how it derives the genotype (most
methods hand their scores to the space's derivation rule). The space asks the method for one edge module
per searchable edge through ``edge_factory``; those modules read the architecture state the method keeps.

Discretisation for the operation-level ranking correlation is shared: while ``discretised(group, index,
op)`` is active, every edge instance of that (group, index) must compute only candidate ``op``. Edge
modules look the choice up in ``ArchState.forced``.

Which spaces a method runs on is computed, not listed: it declares the capabilities it needs of a space
(``needs``: ``sample``, ``edges``, ``tensor-ops``, ``uniform-ops``, ``cells``, ``stage-features``; each is
described in ``spaces/base.py``), and the registry pairs it with every space that offers them
(``harness.core.registry.compatible``). ``excludes`` names a space that offers them but that the method
deliberately does not run on, with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness.core.config import Key
from harness.core.data import DataInfo, SearchData
from harness.core.metric_table import Metric
from harness.core.train import batch_statistics, check_finite, cosine_lr, evaluate, measure, set_lr
from spaces.base import SearchSpace


def log_normalised(importance: np.ndarray) -> np.ndarray:
    """log(I[e, o] / Σ_o' I[e, o']) for every entry of an ``[edges, ops]`` importance (which must be ≥ 0).

    A zero importance counts as 1e-30 (log ≈ −69) so that a pruned op ranks last without producing NaN; an
    edge whose importances are all zero gets log(1e-30) for every op, so it adds the same constant to every
    architecture.
    """
    importance = np.asarray(importance, dtype=np.float64)
    totals = importance.sum(axis=1, keepdims=True)
    normalised = importance / np.where(totals > 0, totals, 1.0)  # an all-zero edge ranks nothing
    return np.log(np.clip(normalised, 1e-30, None))


def genotype_edges(space: SearchSpace, genotypes: list[Any]) -> list[list[tuple[str, int, int]]]:
    """Every genotype's (group, edge, op) choices (``space.edge_choices``), one list per genotype."""
    choices = space.edge_choices(genotypes)
    return [[(g, int(e), int(o)) for g, (rows, ops) in choices.items() for e, o in zip(rows[i], ops[i])]
            for i in range(len(genotypes))]


def sum_log_normalised(space: SearchSpace, importance: dict[str, np.ndarray], genotypes: list[Any]) -> np.ndarray:
    """Σ over each genotype's (group, edge, op) choices of ``log_normalised(importance[group])[edge, op]``
    (groups in ``space.arch_shape()`` order): the default architecture score."""
    choices = space.edge_choices(genotypes)
    total: np.ndarray | None = None
    for group in space.arch_shape():
        rows, ops = choices[group]
        part = log_normalised(importance[group])[rows, ops].sum(axis=1)
        total = part if total is None else total + part
    return np.zeros(len(genotypes)) if total is None else total


class ArchState:
    """Architecture state shared by a method's edge modules (deliberately not an ``nn.Module``, so the
    architecture parameters never end up among the supernet's weights)."""

    def __init__(self) -> None:
        self.params: dict[str, nn.Parameter] = {}
        self.forced: dict[tuple[str, int], int] = {}


class SearchMethod:
    """Base class of a search method. Subclasses are registered with ``@register_method``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # What the method needs of a space (capability names of ``spaces.base.FEATURES``; the registry runs the method
    # on every space that offers them all), and the spaces it deliberately leaves out although they offer them,
    # each with its one-line reason (``python -m harness list`` shows it)
    needs: ClassVar[frozenset[str]] = frozenset()
    excludes: ClassVar[dict[str, str]] = {}
    # Configuration (``harness.core.config``): the method's own keys (a subclass extends its parent's:
    # ``{**Darts.keys, ...}``); ``search_epochs`` is declared here for every method that searches epoch by
    # epoch, valued by each in its ``defaults``.
    keys: ClassVar[dict[str, Key]] = {
        "search_epochs": Key(None, "search epochs", "[1, inf)", kind=int),
    }
    space_keys: ClassVar[dict[str, dict[str, Key]]] = {}  # keys of the method that exist on one space only
    # True for a method whose scores are per search cell (``derive_cells``): the pair then has the space's
    # ``cell_keys`` (the DARTS space's stage rule)
    scores_per_cell: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}  # the method's values of keys declared elsewhere
    # the method's paper values on one space (they win over ``defaults`` there), e.g. AGNAS's r = 16 in its macro
    # search: ``{"proxyless": {"attention_reduction": 16}}``
    space_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    ignored_keys: ClassVar[frozenset[str]] = frozenset()  # declared keys the method does not have
    budgets: ClassVar[dict[str, dict[str, Any]]] = {}  # the method's own values of a budget preset
    # Record keys the method adds (``record_info``) that are metrics: declared like the shared ones
    # (``harness.core.metric_table.Metric``: label, unit, display), checked and shown by the record views and averaged
    # by the leaderboard in its trailing ``<key>_mean`` columns; no leaderboard statistics nor summary place
    # (``metric_table.all_metrics``). NOS: its teacher's cost.
    metrics: ClassVar[tuple[Metric, ...]] = ()
    # The configuration key whose value is how many times the search queries the space's benchmark in place of
    # training anything, on a space that has one (random search on NAS-Bench-201: ``rs_candidates``); None: the
    # search trains. The views (``harness.leaderboard``) show such a search's cost as its queries, never as the
    # milliseconds the look-ups took, and label its row as a benchmark-query search.
    benchmark_queries: ClassVar[str | None] = None

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        self.space, self.cfg, self.info, self.device, self.seed = space, cfg, info, device, seed
        self.arch = ArchState()
        self.supernet: nn.Module | None = None
        self.w_opt: torch.optim.Optimizer | None = None  # the shared search SGD of the supernet's weights

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        """Refuse impossible combinations of the method's values with one line (called when the configuration is
        resolved, after every value passed its own declaration and the space's rules). What the method needs
        of the space's networks it asks the space (``space.check_stage_features``), never its keys. The
        default has no rule."""

    @classmethod
    def trial_bundles(cls, cfg: dict[str, Any], space: SearchSpace) -> int:
        """How many equal bundles of resources (each ``--cpus-per-trial`` CPUs and ``--gpus-per-trial`` GPUs) a trial
        of the method asks Ray for: the first runs the trial, the others what it starts beside itself (the black-box
        methods' ``bb_workers`` candidate trainers). The default: one."""
        return 1

    # --- search ---------------------------------------------------------------------------------
    def num_epochs(self) -> int:
        return int(self.cfg["search_epochs"])

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        """One search epoch; returns the epoch's metrics (``val_acc`` among them, percent).

        The default is the epoch of a method that trains a supernet with the shared search SGD
        (``self.w_opt``): the epoch's weight learning rate (``weight_lr``), ``train_step``
        on every pair of ``step_batches``, then ``validate``, and the genotype derived so far. A method
        without a supernet (random search) overrides it.
        """
        set_lr(self.w_opt, self.weight_lr(epoch))
        loss_sum, correct, count = 0.0, 0.0, 0
        for weight_batch, arch_batch in self.step_batches(epoch, data):
            stats = self.train_step(weight_batch, arch_batch, epoch)
            self.check_step(stats)
            n = len(weight_batch[1])
            loss_sum, correct, count = loss_sum + stats["loss"] * n, correct + stats["correct"], count + n
        val_loss, val_acc = self.validate(data)
        check_finite(val_loss)
        return {"train_loss": loss_sum / count, "train_acc": 100.0 * correct / count, "val_loss": val_loss,
                "val_acc": val_acc, "lr": self.w_opt.param_groups[0]["lr"],
                "genotype": self.space.to_str(self.derive())}

    def check_step(self, stats: dict[str, Any]) -> None:
        """``Diverged`` when the step's loss or an architecture parameter is NaN or infinite (``check_finite``): a
        diverged search ends at the step, not later in a sampler or the derivation."""
        check_finite(stats["loss"])
        check_finite(*self.arch.params.values(), what="architecture parameters")

    def weight_lr(self, epoch: int) -> float:
        """The weight learning rate of ``epoch``: the shared cosine from ``w_lr`` to ``w_lr_min`` over the search
        epochs (a method whose reference code schedules it otherwise overrides this)."""
        return cosine_lr(epoch, self.num_epochs(), self.cfg["w_lr"], self.cfg["w_lr_min"])

    def step_batches(self, epoch: int, data: SearchData) -> Iterable[tuple[Any, Any]]:
        """The (weight-half batch, architecture-half batch) pairs of the epoch's steps."""
        return zip(data.weight_batches(epoch), data.arch_batches(epoch))

    def validate(self, data: SearchData) -> tuple[float, float]:
        """Loss and accuracy (percent) of the supernet on the whole architecture half, after an epoch."""
        return evaluate(self.supernet, data.val_batches())

    def timing_epoch(self) -> int:
        """An epoch whose steps cost what most of the search's steps cost (timed for the plan's estimate and
        by ``tools/supernet_step.py``)."""
        return 0

    def step_time(self, data: SearchData, steps: int = 1) -> tuple[float, int]:
        """Measured seconds of one search step (as in ``timing_epoch``) and the number of steps per epoch, for
        the plan's time estimate (run on a throw-away instance: it trains)."""
        weight_batch, arch_batch = next(iter(data.weight_batches(0))), next(iter(data.arch_batches(0)))
        epoch = self.timing_epoch()
        self.train_step(weight_batch, arch_batch, epoch)  # warm-up
        start = time.perf_counter()
        for _ in range(steps):
            self.train_step(weight_batch, arch_batch, epoch)
        return (time.perf_counter() - start) / steps, len(data.weight_batches(0))

    def train_step(self, weight_batch: Any, arch_batch: Any, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def excluded_seconds(self) -> dict[str, float]:
        """Wall-clock seconds this trial's method has spent so far (resumptions included: keep them in the method's
        state) on work that is not search cost, by the name the epoch's history gives them: ``harness.trial``
        leaves what an epoch adds to them out of ``search_seconds`` (and so out of ``device_hours``) and
        records it in that epoch's history entry (NOS: ``teacher_obtain_seconds``, the time spent training,
        waiting for or loading its cached teacher, which the paper's search cost leaves out). A method states
        such a cost in its record itself (``record_info``). The default is none."""
        return {}

    def parallel_device_seconds(self) -> float:
        """Device seconds the search spent beside the trial's own process (the black-box methods' candidates trained
        by Ray actors in the trial's further bundles, ``trial_bundles``): ``harness.trial`` adds them to the record's
        ``device_hours`` and records them as ``parallel_device_seconds`` where there are any. The default: none."""
        return 0.0

    # --- results --------------------------------------------------------------------------------
    def search_val_acc(self, last_epoch: dict[str, Any]) -> float:
        """Validation accuracy (percent, architecture half) that the search ends with."""
        return float(last_epoch["val_acc"])

    def record_info(self) -> dict[str, Any]:
        """Method-specific facts for the trial record (e.g. NOS's teacher), called after the search."""
        return {}

    def importance(self) -> dict[str, np.ndarray] | None:
        """Operation-importance scores per group (``[edges, ops]``), or None if the method has none."""
        return None

    def score_architectures(self, genotypes: list[Any], data: SearchData | None = None) -> np.ndarray | None:
        """The method's score of each genotype (higher = predicted better), for the architecture-level
        correlation; None if the method has no scores. ``data`` is the trial's, for a method whose score
        measures the architectures (ADWPNAS: their accuracy with predicted weights); NaN leaves one out.

        Default: Σ over the genotype's (group, edge, op) choices (``space.edge_choices``) of the log of the
        op's importance normalised over the edge's ops, ``log_normalised(importance()[group])[edge, op]``,
        groups added in ``space.arch_shape()`` order.
        """
        importance = self.importance()
        return None if importance is None else sum_log_normalised(self.space, importance, genotypes)

    def correlation_ops(self, group: str, index: int) -> list[int]:
        """The ops of edge (group, index) that the operation-level correlation discretises to: every op the
        derivation may choose there (``space.choice_ops``; a method that prunes ops has fewer left)."""
        return list(self.space.choice_ops(group, index))

    def discrete_accuracies(self, genotypes: list[Any], batches: Any) -> np.ndarray:
        """The supernet's accuracy (percent) on ``batches`` of each genotype, every one of its (group, edge, op)
        choices (``genotype_edges``) discretised (``discretised``): the one-shot correlation's measure, and
        ADWPNAS's architecture score. NaN for a genotype with an op outside ``correlation_ops`` (a pruned op),
        which is not evaluated. BatchNorm uses batch statistics; the running ones are restored once, after the
        last cell, as they do not enter a pass."""
        cells = genotype_edges(self.space, genotypes)
        usable = [all(op in self.correlation_ops(g, e) for g, e, op in cell) for cell in cells]
        accs = np.full(len(cells), np.nan)
        with batch_statistics(self.supernet):
            for i in np.flatnonzero(usable):
                with ExitStack() as stack:
                    for group, edge, op in cells[i]:
                        stack.enter_context(self.discretised(group, edge, op))
                    accs[i] = measure(self.supernet, batches)[1]
        return accs

    def derive(self) -> Any:
        """The derived genotype (default: the space's rule on the importance scores)."""
        scores = self.importance()
        assert scores is not None
        return self.space.derive(scores)

    @contextmanager
    def discretised(self, group: str, index: int, op: int) -> Iterator[None]:
        """Make every instance of edge (group, index) compute only candidate ``op``."""
        self.arch.forced[(group, index)] = op
        try:
            yield
        finally:
            del self.arch.forced[(group, index)]

    # --- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError
