"""The time estimate (``harness.estimate``): every phase a trial runs multiplied out from its timed units, the counts
taken from the configuration, the run's concurrency and overheads, and the measurement on a cluster's node."""

from __future__ import annotations

import pytest
from conftest import tiny_overrides

from harness.estimate import (
    END_STARTUPS,
    RAY_START_STARTUPS,
    Timings,
    TrialCost,
    contention,
    makespan,
    measure_on_cluster,
    measure_timings,
    run_seconds,
    trial_cost,
    trial_slots,
)
from harness.experiment import RunRequest, build_spec


def a_request(tmp_path, method: str, space: str, **fields) -> RunRequest:
    sets = [f"{k}={v}" for k, v in tiny_overrides(method, space).items()]  # or the test's own ``overrides``
    return RunRequest(**{"method": method, "space": space, "dataset": "digits", "budget": "smoke", "seeds": [0],
                         "overrides": sets, "out": tmp_path, "name": f"{method}-{space}", "cpus_per_trial": 1,
                         "gpus_per_trial": 0, "max_concurrent": None, "max_failures": None, "address": None,
                         "data_dir": None, "resume": False, **fields})


def test_each_phase_is_its_timed_units_times_their_counts():
    timings = Timings(startup=7.0, search_fixed=1.5, search_streams=((0.5, 6), (0.25, 4), (0.5, 6), (0.25, 4)),
                      corr_pass=0.2, corr_ops=14, corr_batches=2, arch_score=0.01, arch_cells=100,
                      one_shot_pass=0.05, one_shot_cells=20, eval_build=0.3, eval_step=0.1, eval_steps=23,
                      eval_epochs=4, test_batch=0.2, test_batches=6, net_build=0.6, madds=0.4, latency_pass=0.25,
                      latency_passes=4)
    cost = trial_cost(timings, "here")
    assert cost.startup == 7.0
    assert cost.search == pytest.approx(1.5 + 2 * (0.5 * 6 + 0.25 * 4))  # 9.5: two epochs of steps and validation
    assert cost.correlation == pytest.approx(0.2 * 14 * 2 + 0.01 * 100 + 0.05 * 20 * 2)  # 5.6 + 1 + 2
    assert cost.evaluation == pytest.approx(0.3 + 0.1 * 23 * 4 + 0.2 * 6)  # 10.7
    assert cost.latency == pytest.approx(0.6 + 0.4 + 0.25 * 4)  # 2.0
    assert cost.total == pytest.approx(7 + 9.5 + 8.6 + 10.7 + 2.0)
    assert cost.after("search") == pytest.approx(8.6 + 10.7 + 2.0) and cost.after("latency") == 0
    assert cost.where == "here"


def test_a_tiny_trial_is_timed_with_the_counts_of_its_configuration(tmp_path, digits_dataset):
    """The search runs every epoch on two batches of each stream; the other phases' counts are the configuration's."""
    spec = build_spec(a_request(tmp_path, "gdas", "darts", overrides=[  # GDAS: one op per edge, a cheap step
        *(f"{k}={v}" for k, v in tiny_overrides("gdas", "darts").items()), "train_limit=80"]))
    cfg = spec.config
    t, where = measure_timings(spec, digits_dataset, startup=1.5, steps=1)
    assert where == "this machine, CPU, 1 thread"
    assert t.startup > 1.5  # the imports and data given, plus the split, space and method built
    # each of the 2 epochs: its weight-half steps (the architecture batches zipped with them) and its validation pass
    # over the architecture half, 40 images each in batches of 20
    assert [count for _, count in t.search_streams] == [2, 2, 2, 2]
    assert all(pace > 0 for pace, _ in t.search_streams) and t.search_fixed >= 0
    assert t.corr_ops == 7 * int(cfg["corr_edges"])  # the DARTS space: 7 ops per edge ('none' is no choice)
    assert t.corr_batches == 1 and t.arch_cells == 0 and t.one_shot_cells == 0  # no table: no cells to score
    assert t.eval_epochs == int(cfg["eval_epochs"]) and t.test_batches > 0
    assert t.eval_steps == -(-80 // int(cfg["eval_batch_size"]))  # the whole training set (both halves)
    assert t.net_build == 0  # trained, not looked up
    assert t.latency_passes == int(cfg["latency_runs"]) + int(cfg["latency_warmup"])
    for unit in ("corr_pass", "eval_build", "eval_step", "test_batch", "madds", "latency_pass"):
        assert getattr(t, unit) > 0, unit


def test_a_method_whose_epochs_differ_is_timed_epoch_by_epoch(tmp_path, digits_dataset):
    """Random search trains one candidate per epoch for rs_epochs: every candidate epoch is a stream of its own."""
    spec = build_spec(a_request(tmp_path, "random", "darts", overrides=[
        *(f"{k}={v}" for k, v in tiny_overrides("random", "darts").items()), "train_limit=80", "rs_epochs=2"]))
    t, _ = measure_timings(spec, digits_dataset, steps=1)
    # 2 candidates × (2 training epochs of 2 weight batches + the validation of 2 batches)
    assert [count for _, count in t.search_streams] == [2, 2, 2] * 2, t.search_streams


def test_a_look_up_trial_scores_the_tables_cells_and_evaluates_nothing(tmp_path, digits_dataset):
    spec = build_spec(a_request(tmp_path, "gdas", "nb201"))
    t, _ = measure_timings(spec, digits_dataset, steps=1)
    assert t.arch_cells == int(spec.config["arch_corr_samples"]) == 100
    assert t.one_shot_cells == min(int(spec.config["oneshot_samples"]), 100) and t.one_shot_pass > 0
    assert t.eval_steps == t.eval_epochs == 0 and t.eval_step == 0  # evaluated by look-up
    assert t.net_build > 0 and t.latency_pass > 0  # the benchmark's own network, whose latency is timed


def test_trials_take_the_first_free_slot_in_their_order():
    assert makespan([10, 10, 10], 2) == 20
    assert makespan([30, 10, 10, 10], 2) == 30  # the three short ones follow each other beside the long one
    assert makespan([10, 10, 30], 2) == 40  # the long one last: it starts when a short one ends
    assert makespan([5, 5, 5], 1) == 15 and makespan([7], 4) == 7 and makespan([], 2) == 0


def test_slots_count_what_fits_on_every_node_capped_by_max_concurrent():
    nodes = [{"CPU": 16, "GPU": 4}, {"CPU": 8, "GPU": 0}, {"CPU": 6, "GPU": 2}]
    assert trial_slots(4, 1, nodes, None, 100) == 4 + 0 + 1  # GPU trials: node 3 has CPUs for one only
    assert trial_slots(2, 1, nodes, None, 100) == 4 + 0 + 2
    assert trial_slots(4, 0, nodes, None, 100) == 4 + 2 + 1  # CPU trials run on every node
    assert trial_slots(4, 0.5, nodes, None, 100) == 4 + 0 + 1  # half a GPU each: CPUs bind first
    assert trial_slots(4, 0, nodes, 3, 100) == 3 and trial_slots(4, 0, nodes, None, 2) == 2
    assert trial_slots(32, 0, nodes, None, 5) == 1  # nothing fits: the check before refuses, one at a time here


def test_cpu_trials_sharing_the_cores_run_slower_than_the_one_measured():
    assert contention(2, 1, 2, load=1.0) == 1.0  # two single-thread trials on two idle cores
    assert contention(4, 1, 2, load=1.0) == 2.0  # four threads take turns on two cores
    assert contention(2, 1, 2, load=3.0) == pytest.approx(((2 + 2) / 2) / ((1 + 2) / 2))  # 2 busy threads beside
    assert contention(1, 1, 2, load=9.0) == 1.0  # measured beside the same work


def test_the_run_is_rays_start_the_trials_on_their_slots_and_the_end():
    costs = [TrialCost(startup=2, search=8), TrialCost(search=10), TrialCost(evaluation=10)]
    run = run_seconds(costs, slots=2, joined_cluster=False, startup=4.0)
    assert (run.start, run.trials, run.end) == (RAY_START_STARTUPS * 4.0, 20.0, END_STARTUPS * 4.0)
    assert run.total == (RAY_START_STARTUPS + END_STARTUPS) * 4.0 + 20.0
    slower = run_seconds(costs, slots=2, joined_cluster=True, slowdown=1.5, startup=4.0)
    assert (slower.start, slower.trials) == (0.0, 30.0)  # a joined cluster is already up


def test_on_a_cluster_a_task_with_the_trials_resources_measures(ray_session, tmp_path):
    """The measurement runs in a Ray task that asks for a trial's CPUs and GPUs (here the local Ray of the tests);
    its round trip beyond its own work (the worker's start and imports) counts as start-up."""
    spec = build_spec(a_request(tmp_path, "random", "nb201", address=ray_session))
    cost = measure_on_cluster(spec, timeout=300)
    assert cost.where.startswith("cluster node ") and cost.where.endswith(", CPU, 1 thread"), cost.where
    assert cost.startup > 0 and cost.latency > 0 and cost.search < 0.5  # random search on NB201: table queries


class FiveBatches:
    """A batch stream of five batches that honours ``limit_batches`` as ``harness.core.data.Batches`` does."""

    limit_batches = 0

    def __len__(self) -> int:
        return min(5, self.limit_batches) if self.limit_batches else 5

    def __iter__(self):
        yield from range(len(self))


def test_a_timed_stream_runs_two_batches_of_its_five_and_counts_every_pass():
    from harness.estimate import TimedBatches

    stream = TimedBatches(FiveBatches(), 2)
    assert stream.full == 5 and len(stream) == 2 and stream.per_batch() is None
    assert list(stream) == [0, 1] and stream.per_batch() is not None and len(stream.asked) == 3  # two, then the end
    assert list(stream) == [0, 1] and (stream.passes, stream.yielded, len(stream.asked)) == (2, 4, 3)
    zipped = TimedBatches(FiveBatches(), 2)
    list(zip([0, 1], zipped))  # the shorter partner of a zip: its end is never asked for
    assert zipped.per_batch() is None


def test_a_dry_run_that_diverges_still_gives_every_epoch_a_time():
    """A learning rate too high diverges the search's dry run: the estimate goes on (the trial itself ends as diverged
    and the summary says so: test_hardening.py), the epochs after the divergence taken to be like its last."""
    from harness.core.train import Diverged
    from harness.estimate import search_timings

    epochs_run: list[int] = []

    class Diverging:
        def step_time(self, data, steps):
            pass

        def num_epochs(self):
            return 4

        def train_epoch(self, epoch, data):
            epochs_run.append(epoch)
            if epoch == 1:
                raise Diverged(float("nan"), "loss")

    timings = search_timings(Diverging(), data=None, steps=1)
    assert epochs_run == [0, 1] and timings["search_fixed"] >= 0.0 and timings["search_streams"] == ()
