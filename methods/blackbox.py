"""Black-box NAS: regularized evolution (``rea``), TPE (``tpe``), BOHB (``bohb``) and random search with ASHA
early stopping (``rs-asha``), beside the plain best-of-N random search (``random``).

Each is a search strategy over the space's genotypes as categorical choices (``SearchSpace.encoding``: one op
choice per edge or block, one inputs choice per node that keeps some of its edges; ``decode`` goes through the
space's own derivation rule, so every proposal is a genotype the space can build). They share random search's
budget keys, so one ``--set rs_candidates=N`` gives every black-box method the same budget:

- ``rs_candidates``: evaluations per trial. One search "epoch" of the trial is one round of ``bb_workers``
  evaluations (one by default), so checkpoints, progress and the search curve come per round.
- ``rs_epochs``: the training epochs of an evaluation at full fidelity.

**Evaluating a candidate** is chosen by the space, as random search does it. On a space with a benchmark
(NAS-Bench-201) a candidate is a query of the benchmark's validation figure for the search dataset
(``Benchmark.valid_column``), at the one fidelity the table has (200 epochs), never a test figure. Its simulated
cost is the benchmark's training time of that network (``cost_column``) where the table has it: a table imported
from an official benchmark file has ``<prefix>_train_seconds``; the bundled table has no training times, so there
a look-up costs one query and no seconds. On the other spaces a candidate is trained from scratch at the search
network's size (``build_network(..., "search")``, the shared search SGD, a cosine schedule over its budget) and
validated on the architecture half after every epoch, so that ASHA and BOHB can stop it early; its cost is the
device seconds it took.

**Candidates side by side** (``bb_workers``, default 1). A search epoch of the trial is a round of ``bb_workers``
evaluations: all proposed before any result, trained in lockstep epoch by epoch — by the trial's process and
``bb_workers - 1`` Ray actors (``CandidateTrainer``), one in each further bundle of the trial's placement group (the
runner asks for ``trial_bundles`` bundles) — their figures reported to the searcher in proposal order after every
epoch, and completed in that order. Ray actors, not nested Tune trials: the trial's own placement group holds their
resources, so a cluster full of trials cannot starve a trial's candidates (a nested Tune experiment would queue for
resources its own parent holds), and an actor keeps its candidate's network between epochs. The lockstep is our
choice for reproducibility: ASHA's decision to stop a candidate depends on the figures recorded before it, and a
searcher's next proposal on every earlier result; taken in a fixed order, the same seed and ``bb_workers`` give the
same search whichever candidate finishes first, and a candidate trains the same wherever it runs (its own
initialisation seed and batches). Without Ray (in-process tests) the round's trainers run one after another here.
The actors' device seconds are the search's too (``parallel_device_seconds``).

**Resume.** The method's state is the list of its evaluations (configuration, fidelity, curve, figure, cost).
``load_state_dict`` builds the searcher afresh from the seed and replays them: every proposal is checked equal to
the recorded one and every result fed back in the same order, which rebuilds the searcher's state exactly without
pickling a third-party object. The searchers' own NumPy draws (hpbandster and Tune's schedulers use NumPy's global
generator) run on a generator of their own (``_SearcherRandom``), so nothing else in the trial moves them.

**The result.** The genotype is the best by validation among the candidates evaluated at the highest fidelity any
candidate reached (hpbandster's incumbent rule; ties: the earlier); the search's validation figure is its figure.
The record's ``blackbox`` lists every evaluation. No method here has operation-importance or architecture scores,
so both correlations are undefined (null), as for random search.

Ray Tune's searcher extras (``optuna``; ``hpbandster`` and ``ConfigSpace``) are the optional extra ``blackbox``:
``pip install -e ".[blackbox]"``. Without them ``tpe`` or ``bohb`` stops with one line before anything runs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch

from harness.core.config import Key
from harness.core.data import DataInfo, Dataset, SearchData
from harness.core.errors import UserError
from harness.core.registry import register_method
from harness.core.train import evaluate
from methods.base import SearchMethod
from methods.random_search import (
    CANDIDATE_KEYS,
    RandomSearch,
    candidate_model,
    candidate_step_time,
    train_candidate_epoch,
)
from spaces.base import Choice, SearchSpace

METRIC = "val_acc"
EXTRA = 'pip install -e ".[blackbox]"'


def require(module: str, method: str) -> None:
    """``UserError`` (one line) when the optional package ``module`` that ``method`` needs is not installed."""
    try:
        __import__(module)
    except ImportError:
        raise UserError(f"--method {method} needs the optional package '{module}' (Ray Tune's searcher extra): "
                        f"{EXTRA}") from None


def _fitness(value: float) -> float:
    """A figure as a tournament or promotion sees it: a missing figure (NaN) loses to every known one."""
    return -math.inf if value is None or math.isnan(value) else float(value)


def mutate(space: SearchSpace, encoding: list[Choice], config: dict[str, str],
           rng: np.random.Generator) -> dict[str, str]:
    """A child of ``config`` that decodes to another genotype: a site (node or block) drawn uniformly, one of its
    active choices with more than one value drawn uniformly (``space.active_choices``: the inputs of a node, the op of
    a kept edge), and a different value of it drawn uniformly; drawn again while the child decodes to the parent's
    genotype (the heterogeneous space's rule may map a choice it cannot honour back to the parent). On NAS-Bench-201
    this is the benchmark's REA mutation exactly: a node, one of its edges, another op."""
    parent = space.to_str(space.decode(config))
    sites = list(dict.fromkeys(c.site for c in encoding))
    for _ in range(1000):
        site = sites[int(rng.integers(len(sites)))]
        active = [c for c in space.active_choices(config) if c.site == site and len(c.values) > 1]
        if not active:
            continue
        choice = active[int(rng.integers(len(active)))]
        others = [v for v in choice.values if v != config[choice.name]]
        child = {**config, choice.name: others[int(rng.integers(len(others)))]}
        if space.to_str(space.decode(child)) != parent:
            return child
    raise RuntimeError("no mutation of the genotype changes it")  # not reached on the spaces here


class _SearcherRandom:
    """A NumPy global generator state of the searcher's own: ``with rng.active():`` the searcher's calls draw from it
    (hpbandster's KDE and Tune's schedulers call ``np.random``), and everything else in the trial keeps its own."""

    def __init__(self, seed: int):
        saved = np.random.get_state()
        np.random.seed(seed % 2**32)
        self.state = np.random.get_state()
        np.random.set_state(saved)

    @contextmanager
    def active(self) -> Iterator[None]:
        saved = np.random.get_state()
        np.random.set_state(self.state)
        try:
            with warnings.catch_warnings():
                # statsmodels' KDE (hpbandster's model) draws from NumPy's global generator, which here is the
                # searcher's own; from its 0.17 it would draw fresh entropy instead (the lock pins 0.15)
                warnings.filterwarnings("ignore", message="After 0.17 or January 2028", category=FutureWarning)
                yield
        finally:
            self.state = np.random.get_state()
            np.random.set_state(saved)


class Searcher:
    """What a black-box method asks of its strategy: ``suggest`` the next evaluation (a configuration of the space's
    encoding and its budget in epochs, None for full fidelity), ``report`` a candidate's validation figure after an
    epoch (True: stop it now), and ``complete`` an evaluation with its last figure. ``lookup``: the candidates are
    look-ups of a benchmark, at its one fidelity."""

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], seed: int, lookup: bool = False):
        self.space, self.cfg, self.seed, self.lookup = space, cfg, seed, lookup
        self.encoding = space.encoding()
        self.rng = np.random.default_rng(seed)

    def suggest(self, index: int) -> tuple[dict[str, str], int | None]:
        raise NotImplementedError

    def report(self, index: int, epoch: int, value: float) -> bool:
        return False

    def complete(self, index: int, config: dict[str, str], value: float, epochs: int) -> None:
        """Evaluation ``index`` of ``config`` ended with figure ``value`` after ``epochs`` training epochs (0: a
        look-up). The default learns nothing (random sampling)."""

    def random_config(self) -> dict[str, str]:
        """A uniform random genotype (the space's ``sample``), encoded."""
        return self.space.encode(self.space.sample(self.rng))


class Evolution(Searcher):
    """Regularized (ageing) evolution, Real et al. (2019), Algorithm 1, as the NAS-Bench-201 code runs it
    (AutoDL-Projects ``exps/NAS-Bench-201-algos/R_EA.py``, ``scripts-search/NAS-Bench-201-algos/R-EA.sh``): a
    population of ``rea_population`` (10) random genotypes; then every cycle draws ``rea_sample_size`` (3) members
    uniformly *with* replacement, takes the best as the parent (ties: the one drawn first), evaluates its mutation
    (``mutate``), appends the child and removes the *oldest* member, whatever its figure."""

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], seed: int, lookup: bool = False):
        super().__init__(space, cfg, seed, lookup)
        self.population: deque[tuple[dict[str, str], float]] = deque()
        self.size, self.sample_size = int(cfg["rea_population"]), int(cfg["rea_sample_size"])
        self.proposed = 0

    def suggest(self, index: int) -> tuple[dict[str, str], int | None]:
        self.proposed += 1
        if self.proposed <= self.size:
            return self.random_config(), None
        members = list(self.population)
        drawn = [members[int(self.rng.integers(len(members)))] for _ in range(self.sample_size)]
        parent = max(drawn, key=lambda member: _fitness(member[1]))  # max keeps the first of equals
        return mutate(self.space, self.encoding, parent[0], self.rng), None

    def complete(self, index: int, config: dict[str, str], value: float, epochs: int) -> None:
        self.population.append((config, value))
        if len(self.population) > self.size:
            self.population.popleft()  # ageing: the oldest goes


class RandomWithASHA(Searcher):
    """Random search with early stopping (Li & Talwalkar 2019): uniform genotypes, each trained for ``rs_epochs``
    and stopped by Ray Tune's ``AsyncHyperBandScheduler`` (ASHA, Li et al. 2020) when its validation figure at a
    rung (``asha_grace``·``asha_eta``^k epochs) falls below the top 1/``asha_eta`` of the figures recorded there so
    far. Tune's scheduler is called directly (``on_trial_add``/``on_trial_result``/``on_trial_complete``) with the
    trial's candidates as its trials. On a look-up benchmark there is one fidelity and nothing to stop: it is random
    search."""

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], seed: int, lookup: bool = False):
        super().__init__(space, cfg, seed, lookup)
        from ray.tune.schedulers import AsyncHyperBandScheduler

        self.random = _SearcherRandom(seed)
        self.scheduler = AsyncHyperBandScheduler(time_attr="epoch", metric=METRIC, mode="max",
                                                 max_t=max(int(cfg["rs_epochs"]), 1),
                                                 grace_period=int(cfg["asha_grace"]),
                                                 reduction_factor=float(cfg["asha_eta"]))

    class _Trial:  # what the scheduler reads of a Tune trial
        def __init__(self, index: int):
            self.trial_id = f"c{index}"

    def suggest(self, index: int) -> tuple[dict[str, str], int | None]:
        with self.random.active():
            self.scheduler.on_trial_add(None, self._Trial(index))
        return self.random_config(), None

    def report(self, index: int, epoch: int, value: float) -> bool:
        from ray.tune.schedulers import TrialScheduler

        with self.random.active():
            action = self.scheduler.on_trial_result(None, self._Trial(index), {"epoch": epoch, METRIC: value})
        return action == TrialScheduler.STOP and epoch < int(self.cfg["rs_epochs"])

    def complete(self, index: int, config: dict[str, str], value: float, epochs: int) -> None:
        with self.random.active():
            if epochs == 0:  # a look-up: the scheduler saw no epoch
                self.scheduler.on_trial_remove(None, self._Trial(index))
            else:
                self.scheduler.on_trial_complete(None, self._Trial(index), {"epoch": epochs, METRIC: value})


class TPE(Searcher):
    """Tree-structured Parzen estimator through Ray Tune's ``OptunaSearch`` with Optuna's ``TPESampler`` seeded by
    the trial (Optuna's defaults otherwise: 10 random start-up trials, independent per-choice densities). Every
    candidate is evaluated at full fidelity."""

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], seed: int, lookup: bool = False):
        super().__init__(space, cfg, seed, lookup)
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = {c.name: optuna.distributions.CategoricalDistribution(c.values) for c in self.encoding}
        self.search = OptunaSearch(space=distributions, metric=METRIC, mode="max",
                                   sampler=optuna.samplers.TPESampler(seed=seed))

    def suggest(self, index: int) -> tuple[dict[str, str], int | None]:
        config = self.search.suggest(f"c{index}")
        return {name: str(value) for name, value in config.items()}, None

    def complete(self, index: int, config: dict[str, str], value: float, epochs: int) -> None:
        if math.isnan(value):
            self.search.on_trial_complete(f"c{index}", None, error=True)
        else:
            self.search.on_trial_complete(f"c{index}", {METRIC: value})


class BOHB(Searcher):
    """BOHB (Falkner et al. 2018): HyperBand's brackets of successive halving, with configurations proposed by
    Ray Tune's ``TuneBOHB`` (hpbandster's kernel-density model, fitted on the largest budget that has enough
    results). The brackets run here, synchronously and in order: Tune's ``HyperBandForBOHB`` needs Tune's trial
    controller to pause and resume trials, which a search inside one trial does not have. As hpbandster's workers
    do, an evaluation at budget b trains the configuration from scratch for b epochs (its own cosine schedule).

    Budgets from ``bohb_min_epochs`` to ``rs_epochs`` with η = 3; the model's settings are the NAS-Bench-201 code's
    (``BOHB.sh``: ``num_samples`` 4, ``random_fraction`` 0, ``bandwidth_factor`` 3; hpbandster's ``min_bandwidth``
    1e-3). On a look-up benchmark the budgets collapse to its one fidelity: every bracket is one configuration,
    queried, and BOHB is its model alone (the NAS-Bench-201 code queried the 200-epoch figures at every budget)."""

    ETA = 3
    MODEL = {"num_samples": 4, "random_fraction": 0.0, "bandwidth_factor": 3, "min_bandwidth": 1e-3}

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], seed: int, lookup: bool = False):
        super().__init__(space, cfg, seed, lookup)
        import ConfigSpace as CS
        from ray.tune.search.bohb import TuneBOHB

        configspace = CS.ConfigurationSpace(seed=seed)
        configspace.add([CS.CategoricalHyperparameter(c.name, list(c.values)) for c in self.encoding])
        self.random = _SearcherRandom(seed)
        with self.random.active():
            self.search = TuneBOHB(space=configspace, metric=METRIC, mode="max", seed=seed, bohb_config=self.MODEL)
        top = int(cfg["rs_epochs"])
        low = top if lookup else min(int(cfg["bohb_min_epochs"]), top)
        self.s_max = int(math.floor(math.log(top / low) / math.log(self.ETA) + 1e-9))
        self.top = top
        self.started = 0  # brackets started: they run s = s_max, s_max - 1, ..., 0, then again
        self.brackets: list[_Bracket] = []  # the open ones, oldest first
        self.owner: dict[int, tuple[_Bracket, str]] = {}  # evaluation index → its bracket and trial id

    def _rungs(self, s: int) -> list[tuple[int, int]]:
        """(configurations, budget in epochs) of each successive-halving rung of bracket ``s``."""
        n = int(math.ceil((self.s_max + 1) / (s + 1) * self.ETA ** s))
        return [(max(int(n * self.ETA ** -i), 1), max(int(round(self.top * self.ETA ** (i - s))), 1))
                for i in range(s + 1)]

    def suggest(self, index: int) -> tuple[dict[str, str], int | None]:
        """The next evaluation of the oldest open bracket that has one to hand out; a new bracket when every open one
        waits for results (several workers: as hpbandster runs brackets side by side)."""
        bracket = next((b for b in self.brackets if b.has_work()), None)
        if bracket is None:
            bracket = _Bracket(self._rungs(self.s_max - self.started % (self.s_max + 1)))
            self.started += 1
            self.brackets.append(bracket)
        if bracket.queue:
            trial, config = bracket.queue.pop(0)
        else:
            trial = f"c{index}"
            with self.random.active():
                config = {name: str(value) for name, value in self.search.suggest(trial).items()}
        bracket.handed += 1
        self.owner[index] = (bracket, trial)
        return config, None if self.lookup else bracket.budget()

    def complete(self, index: int, config: dict[str, str], value: float, epochs: int) -> None:
        bracket, trial = self.owner.pop(index)
        with self.random.active():
            if not math.isnan(value):
                budget = self.top if self.lookup else bracket.budget()
                self.search.on_trial_result(trial, {METRIC: value, "hyperband_info": {"budget": budget}})
        bracket.results.append((index, trial, config, value))
        if len(bracket.results) < bracket.size():
            return
        # the rung is complete: promote its best 1/η to the next rung (ties: the earlier), end the others
        results = sorted(bracket.results)  # in the order they were handed out
        ranked = sorted(range(len(results)), key=lambda k: -_fitness(results[k][3]))
        keep = bracket.rungs[bracket.rung + 1][0] if bracket.rung + 1 < len(bracket.rungs) else 0
        promoted = sorted(ranked[:keep])
        with self.random.active():
            for k, (_, trial_id, _, _) in enumerate(results):
                if k not in promoted:
                    self.search.on_trial_complete(trial_id)
        if keep:
            bracket.promote([(results[k][1], results[k][2]) for k in promoted])
        else:
            self.brackets.remove(bracket)


class _Bracket:
    """One HyperBand bracket's progress: its rungs, the rung it is in, what it still hands out and its results."""

    def __init__(self, rungs: list[tuple[int, int]]):
        self.rungs, self.rung = rungs, 0
        self.queue: list[tuple[str, dict[str, str]]] = []  # promoted (trial id, configuration)s not handed out yet
        self.handed = 0  # evaluations of the rung handed out
        self.results: list[tuple[int, str, dict[str, str], float]] = []  # the rung's (index, trial, config, figure)

    def size(self) -> int:
        return self.rungs[self.rung][0]

    def budget(self) -> int:
        return self.rungs[self.rung][1]

    def has_work(self) -> bool:
        return self.handed < self.size()

    def promote(self, survivors: list[tuple[str, dict[str, str]]]) -> None:
        self.rung += 1
        self.queue, self.handed, self.results = list(survivors), 0, []


def candidate_seed(seed: int, index: int) -> int:
    """The torch seed of evaluation ``index``'s initialisation: its own, so that it trains the same wherever it runs."""
    return (seed * 1_000_003 + 7_919 * (index + 1)) % (2**63)


class CandidateTrainer:
    """Trains one candidate at a time from scratch, epoch by epoch: the search network of its genotype at the space's
    search size (``build_network(..., "search")``, no auxiliary head or drop-path), the shared search SGD with a
    cosine schedule over its budget, its own batches of the weight half (stream ``index · rs_epochs + epoch``) and
    its own initialisation seed (``candidate_seed``); after every epoch its accuracy on the architecture half. A
    candidate's training is so a function of the trial's seed, its index, its genotype and its budget, the same in
    the trial's process and in a Ray actor (``remote_trainers``) on the same kind of device and threads."""

    def __init__(self, space: str, cfg: dict[str, Any], data: Any, seed: int, device: torch.device | None = None,
                 threads: int | None = None):
        from harness.core.registry import get_space

        if threads:
            torch.set_num_threads(threads)
        if device is None:  # a Ray actor: its bundle's device
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.space, self.cfg, self.seed, self.device = get_space(space)(cfg), cfg, seed, device
        self.data = SearchData(data, cfg, seed, device) if isinstance(data, Dataset) else data  # an actor: built
        self.net: torch.nn.Module | None = None

    def start(self, index: int, genotype: str, epochs: int) -> None:
        torch.manual_seed(candidate_seed(self.seed, index))
        self.net, self.opt = candidate_model(self.space, self.space.parse(genotype), self.data.info, self.cfg,
                                             self.device)
        self.index, self.epochs, self.done = index, epochs, 0

    def epoch(self) -> tuple[float, float]:
        """Train the next epoch; the validation accuracy (percent) after it and the device seconds it took."""
        assert self.net is not None
        start = time.perf_counter()
        train_candidate_epoch(self.net, self.opt, self.data, self.cfg, self.index, self.done, self.epochs)
        value = evaluate(self.net, self.data.val_batches())[1]
        self.done += 1
        return value, time.perf_counter() - start


def remote_trainers(space: str, cfg: dict[str, Any], data: SearchData, seed: int, count: int) -> list[Any]:
    """``count`` ``CandidateTrainer`` Ray actors, one in each bundle after the first of the trial's placement group
    (the runner asks for ``trial_bundles`` of them: ``bb_workers``), with the bundle's CPUs as threads and its GPU
    share; none outside a Ray trial or where the group has too few bundles (the trainers then run in the trial's
    process)."""
    try:
        import ray
        from ray.util import get_current_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy
    except ImportError:  # pragma: no cover - Ray is a dependency
        return []
    group = get_current_placement_group() if ray.is_initialized() else None
    if group is None or len(group.bundle_specs) < count + 1:
        return []
    dataset = ray.put(data.dataset)
    actors = []
    for k in range(1, count + 1):
        bundle = group.bundle_specs[k]
        cpus, gpus = float(bundle.get("CPU", 1)), float(bundle.get("GPU", 0))
        actor = ray.remote(CandidateTrainer).options(
            num_cpus=cpus, num_gpus=gpus,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=k))
        actors.append(_Remote(actor.remote(space, cfg, dataset, seed, None, max(1, int(cpus)))))
    return actors


class _Remote:
    """A ``CandidateTrainer`` actor behind the trainer's own calls (``start`` waits; ``epoch`` is sent and collected
    by ``step_trainers``)."""

    def __init__(self, actor: Any):
        self.actor = actor

    def start(self, index: int, genotype: str, epochs: int) -> None:
        import ray

        ray.get(self.actor.start.remote(index, genotype, epochs))


def step_trainers(trainers: list[Any]) -> list[tuple[float, float]]:
    """One epoch of every trainer, side by side: the actors' epochs sent first, this process's trained meanwhile."""
    pending = {k: t.actor.epoch.remote() for k, t in enumerate(trainers) if isinstance(t, _Remote)}
    results: dict[int, tuple[float, float]] = {k: t.epoch() for k, t in enumerate(trainers) if k not in pending}
    if pending:
        import ray

        results.update(zip(pending, ray.get(list(pending.values()))))
    return [results[k] for k in range(len(trainers))]


class BlackBoxSearch(SearchMethod):
    """The shared protocol of the black-box methods (module docstring); a subclass names its ``searcher``."""

    needs = frozenset({"sample", "encoding"})
    keys: ClassVar[dict[str, Key]] = {
        **CANDIDATE_KEYS,
        "bb_workers": Key(1, "black-box: candidates trained side by side, each in a bundle of the trial's resources",
                          "[1, inf)"),
    }
    ignored_keys = RandomSearch.ignored_keys
    # smoke: six evaluations of up to three epochs, so that ASHA and BOHB's brackets (1 and 3 epochs) have something
    # to stop; small: random search's eight candidates of three epochs. The paper budget on NAS-Bench-201 is 100
    # look-ups (our choice: the bundled table has no training times to simulate the benchmark paper's 12,000 s).
    budgets = {"smoke": {"rs_candidates": 6, "rs_epochs": 3}, "small": RandomSearch.budgets["small"]}
    space_defaults = RandomSearch.space_defaults
    benchmark_queries = "rs_candidates"
    extras: ClassVar[tuple[str, ...]] = ()  # optional packages the searcher needs (``require``)
    searcher_class: ClassVar[type[Searcher]] = Searcher  # the search strategy

    def __init__(self, space: SearchSpace, cfg: dict[str, Any], info: DataInfo, device: torch.device,
                 seed: int):
        for module in self.extras:
            require(module, self.name)
        super().__init__(space, cfg, info, device, seed)
        self.table = space.benchmark()
        self.valid_column = self.table.valid_column(info.name) if self.table is not None else None
        self.cost_column = self.table.cost_column(self.valid_column) if self.table is not None else None
        self.searcher = self.make_searcher()
        self.evaluations: list[dict[str, Any]] = []
        self.workers = self.trial_bundles(cfg, space)  # candidates per round, trained side by side
        self.pool: list[Any] = []  # the candidate trainers (``_trainers``)

    def make_searcher(self) -> Searcher:
        """A fresh searcher of the method's ``searcher_class``, seeded by the trial (also on resume, to replay into)."""
        return self.searcher_class(self.space, self.cfg, self.seed, lookup=self.table is not None)

    @classmethod
    def trial_bundles(cls, cfg: dict[str, Any], space: SearchSpace) -> int:
        """``bb_workers`` on a space whose candidates are trained; a look-up needs no worker."""
        return 1 if space.benchmark() is not None else int(cfg["bb_workers"])

    def num_epochs(self) -> int:
        return math.ceil(int(self.cfg["rs_candidates"]) / self.workers)

    # --- one round of evaluations per search epoch -------------------------------------------------------
    def _trainers(self, data: SearchData, count: int) -> list[Any]:
        """``count`` candidate trainers: this process's, and up to ``bb_workers`` - 1 Ray actors, one per further
        bundle of the trial's placement group (``remote_trainers``); without them (no Ray, or no bundles), more
        trainers in this process, stepped one after another. Made once per trial."""
        if not self.pool:
            self.pool = [CandidateTrainer(self.space.name, self.cfg, data, self.seed, self.device)]
            if self.workers > 1:
                self.pool += remote_trainers(self.space.name, self.cfg, data, self.seed, self.workers - 1) or [
                    CandidateTrainer(self.space.name, self.cfg, data, self.seed, self.device)
                    for _ in range(self.workers - 1)]
        return self.pool[:count]

    def _round(self, first: int, count: int, data: SearchData | None,
               recorded: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Evaluations ``first`` .. ``first + count - 1``: all proposed first, then trained side by side epoch by
        epoch — after each epoch their figures are reported to the searcher in proposal order, which may stop some —
        and completed in proposal order. ``recorded``: replay those evaluations' figures instead (``load_state_dict``),
        making the same calls to the searcher in the same order."""
        entries = []
        for index in range(first, first + count):
            config, budget = self.searcher.suggest(index)
            if recorded is not None and config != recorded[index - first]["config"]:
                raise UserError(f"the resumed {self.name} search proposes another candidate at evaluation "
                                f"{index + 1} than its checkpoint holds (a different package version?)")
            genotype = self.space.decode(config)
            entry: dict[str, Any] = {"index": index, "genotype": self.space.to_str(genotype), "config": config}
            if self.table is not None:
                value = float(self.table.query([genotype], self.valid_column)[0])
                cost = float(self.table.query([genotype], self.cost_column)[0]) if self.cost_column else None
                entry.update(fidelity="look-up", val_acc=value, simulated_seconds=cost)
            else:
                epochs = int(budget if budget is not None else self.cfg["rs_epochs"])
                entry.update(fidelity=epochs, epochs=0, curve=[], stopped=False, seconds=0.0)
            entries.append(entry)
        if self.table is None:
            self._train_round(entries, data, recorded)
        for entry in entries:
            self.searcher.complete(entry["index"], entry["config"], entry["val_acc"], int(entry.get("epochs", 0)))
        return entries if recorded is None else [dict(e) for e in recorded]

    def _train_round(self, entries: list[dict[str, Any]], data: SearchData | None,
                     recorded: list[dict[str, Any]] | None) -> None:
        """Train the round's candidates in lockstep, one epoch each at a time (``CandidateTrainer``), until each has
        its budget or the searcher stops it; fills their curves, figures, epochs and device seconds."""
        trainers = [] if recorded is not None else self._trainers(data, len(entries))
        for trainer, entry in zip(trainers, entries):
            trainer.start(entry["index"], entry["genotype"], entry["fidelity"])
            entry["trainer"] = "actor" if isinstance(trainer, _Remote) else "trial"
        running = list(range(len(entries)))
        while running:
            if recorded is not None:
                results = [(recorded[k]["curve"][entries[k]["epochs"]], 0.0) for k in running]
            else:
                results = step_trainers([trainers[k] for k in running])
            for k, (value, seconds) in zip(list(running), results):
                entry = entries[k]
                entry["curve"].append(value)
                entry["epochs"] += 1
                entry["seconds"] += seconds
                entry["val_acc"] = value
                if self.searcher.report(entry["index"], entry["epochs"], value) and entry["epochs"] < entry["fidelity"]:
                    entry["stopped"] = True
                    running.remove(k)
                elif entry["epochs"] == entry["fidelity"]:
                    running.remove(k)

    def train_epoch(self, epoch: int, data: SearchData) -> dict[str, Any]:
        first = epoch * self.workers
        entries = self._round(first, min(self.workers, int(self.cfg["rs_candidates"]) - first), data)
        self.evaluations += entries
        best = self.incumbent()
        top = max(entries, key=lambda e: _fitness(e["val_acc"]))  # the round's best (ties: the earlier)
        costs = [e.get("simulated_seconds") for e in entries]
        return {"val_acc": top["val_acc"], "best_val_acc": best["val_acc"], "genotype": top["genotype"],
                "incumbent": best["genotype"], **({"evaluations": len(entries)} if self.workers > 1 else {}),
                **({"simulated_seconds": sum(costs)} if all(c is not None for c in costs) else {}),
                **({"candidate_epochs": [e["epochs"] for e in entries] if self.workers > 1 else entries[0]["epochs"],
                    "stopped": sum(e["stopped"] for e in entries) if self.workers > 1 else entries[0]["stopped"]}
                   if self.table is None else {})}

    def step_time(self, data: SearchData, steps: int = 1) -> tuple[float, int]:
        """A uniform candidate's training step, and the steps of an evaluation at full fidelity (a look-up: none)."""
        if self.table is not None:
            return 0.0, 1
        genotype = self.space.sample(np.random.default_rng(self.seed))
        return candidate_step_time(*candidate_model(self.space, genotype, self.info, self.cfg, self.device), data,
                                   self.cfg, steps)

    # --- results ------------------------------------------------------------------------------------
    def incumbent(self) -> dict[str, Any]:
        """The best evaluation by validation among those at the highest fidelity reached (ties: the earlier)."""
        def level(e: dict[str, Any]) -> int:
            return int(e.get("epochs", 0))

        top = max(level(e) for e in self.evaluations)
        best = None
        for e in self.evaluations:
            if level(e) == top and (best is None or _fitness(e["val_acc"]) > _fitness(best["val_acc"])):
                best = e
        assert best is not None
        return best

    def derive(self) -> Any:
        best = self.incumbent()
        if math.isnan(best["val_acc"]):
            raise UserError(f"none of the {len(self.evaluations)} evaluated architectures has a "
                            f"'{self.valid_column}' figure in the benchmark table; use a table with validation figures")
        return self.space.parse(best["genotype"])

    def search_val_acc(self, last_epoch: dict[str, Any]) -> float:
        return float(self.incumbent()["val_acc"])

    def parallel_device_seconds(self) -> float:
        """The device seconds of the candidates Ray actors trained (``trainer`` "actor")."""
        return sum(e["seconds"] for e in self.evaluations if e.get("trainer") == "actor")

    def record_info(self) -> dict[str, Any]:
        simulated = [e.get("simulated_seconds") for e in self.evaluations]
        known = [s for s in simulated if s is not None]
        return {"blackbox": {
            "searcher": type(self.searcher).__name__,
            "evaluations": self.evaluations,
            "evaluation": ("look-up of the benchmark's " + str(self.valid_column)) if self.table is not None
            else "trained from scratch at the search network's size, validated on the architecture half each epoch",
            "stopped_early": sum(bool(e.get("stopped")) for e in self.evaluations),
            "workers": self.workers,
            "trained_by_actors": sum(e.get("trainer") == "actor" for e in self.evaluations),
            "device_seconds": sum(e.get("seconds", 0.0) for e in self.evaluations) if self.table is None else None,
            "simulated_seconds": sum(known) if known and len(known) == len(simulated) else None,
            "simulated_cost": (f"the benchmark's training seconds ({self.cost_column})" if self.cost_column
                               else "none: the table has no training times (one query per evaluation)"
                               if self.table is not None else None),
        }}

    # --- checkpoints: the evaluations, replayed into a fresh searcher ---------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"evaluations": [dict(e) for e in self.evaluations]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.searcher = self.make_searcher()
        self.evaluations = []
        recorded = list(state["evaluations"])
        while len(self.evaluations) < len(recorded):
            first = len(self.evaluations)
            count = min(self.workers, len(recorded) - first)
            self.evaluations += self._round(first, count, None, recorded[first:first + count])


@register_method
class RegularizedEvolution(BlackBoxSearch):
    name = "rea"
    searcher_class = Evolution
    description = "regularized evolution (Real et al. 2019): ageing tournament, one-choice mutations"
    keys = {**BlackBoxSearch.keys,
            "rea_population": Key(10, "REA: population size (NAS-Bench-201's R-EA.sh)", "[1, inf)"),
            "rea_sample_size": Key(3, "REA: tournament size, drawn with replacement (R-EA.sh)", "[1, inf)")}
    # smoke: a population of three, so that its six evaluations evolve
    budgets = {**BlackBoxSearch.budgets, "smoke": {**BlackBoxSearch.budgets["smoke"], "rea_population": 3,
                                                   "rea_sample_size": 2}}


@register_method
class TreeParzen(BlackBoxSearch):
    name = "tpe"
    searcher_class = TPE
    description = "TPE through Ray Tune's OptunaSearch (Bergstra et al. 2011)"
    extras = ("optuna",)


@register_method
class Bohb(BlackBoxSearch):
    name = "bohb"
    searcher_class = BOHB
    description = "BOHB: Tune's TuneBOHB model in HyperBand brackets (Falkner et al. 2018)"
    extras = ("hpbandster", "ConfigSpace")
    keys = {**BlackBoxSearch.keys,
            "bohb_min_epochs": Key(1, "BOHB: smallest budget in epochs (trained spaces)", "[1, inf)")}


@register_method
class RandomASHA(BlackBoxSearch):
    name = "rs-asha"
    searcher_class = RandomWithASHA
    description = "random search with ASHA early stopping (Li & Talwalkar 2019), Tune's scheduler"
    keys = {**BlackBoxSearch.keys,
            "asha_eta": Key(4, "ASHA: reduction factor (Tune's default)", "[2, inf)"),
            "asha_grace": Key(1, "ASHA: epochs before a candidate may be stopped", "[1, inf)")}

    @classmethod
    def validate_config(cls, cfg: dict[str, Any], space: type[SearchSpace]) -> None:
        super().validate_config(cfg, space)
        if cfg["asha_grace"] > cfg["rs_epochs"]:  # Tune's scheduler asserts it
            raise UserError(f"asha_grace ({cfg['asha_grace']}) must be at most rs_epochs ({cfg['rs_epochs']}): ASHA's "
                            "first rung comes after asha_grace of a candidate's epochs")
