"""Metrics: correlations against SciPy and by hand, parameter and multiply-add counts by hand."""

from __future__ import annotations

import math
import statistics
import warnings

import pytest
import scipy.stats
import torch
from torch import nn

from harness.core.metrics import (
    count_madds_m,
    count_params_m,
    describe_device,
    device_hours_kind,
    mean_ignoring_nan,
    measure_latency_ms,
    peak_memory_mb,
    rank_correlation,
)


def test_rank_correlation_perfect_orders():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx((1.0, 1.0))
    assert rank_correlation([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx((-1.0, -1.0))


def test_rank_correlation_hand_worked():
    # x = 1..4, y = 1,3,2,4: pairs (1,2),(1,3),(1,4),(2,3),(2,4),(3,4); only (2,3) is discordant.
    # τ = (5 - 1) / 6 = 2/3; ρ = 1 - 6·Σd² / (n(n²-1)) = 1 - 6·2 / 60 = 0.8.
    tau, rho = rank_correlation([1, 2, 3, 4], [1, 3, 2, 4])
    assert tau == pytest.approx(2 / 3)
    assert rho == pytest.approx(0.8)


def test_rank_correlation_matches_scipy_with_ties():
    scores = [0.1, 0.4, 0.4, 0.2, 0.9, 0.05, 0.3]
    accs = [50.0, 61.0, 58.0, 58.0, 70.0, 40.0, 62.0]
    tau, rho = rank_correlation(scores, accs)
    assert tau == pytest.approx(scipy.stats.kendalltau(scores, accs).statistic)
    assert rho == pytest.approx(scipy.stats.spearmanr(scores, accs).statistic)


@pytest.mark.parametrize("scores, accs", [
    ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]),  # constant scores (uniform α)
    ([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]),  # constant accuracies
    ([1.0], [2.0]),                      # one point
    ([], []),
    ([1.0, float("nan")], [1.0, 2.0]),   # one finite pair left
])
def test_rank_correlation_undefined_is_nan_without_warnings(scores, accs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau, rho = rank_correlation(scores, accs)
    assert math.isnan(tau) and math.isnan(rho)


def test_rank_correlation_drops_non_finite_pairs():
    tau, _ = rank_correlation([1, 2, float("nan"), 3], [1, 2, 100, 3])
    assert tau == pytest.approx(1.0)


def test_rank_correlation_length_mismatch():
    with pytest.raises(ValueError):
        rank_correlation([1, 2], [1, 2, 3])


def test_mean_ignoring_nan():
    assert mean_ignoring_nan([1.0, float("nan"), 3.0, None]) == pytest.approx(2.0)
    assert math.isnan(mean_ignoring_nan([float("nan"), None]))
    assert math.isnan(mean_ignoring_nan([]))


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, bias=False)
        self.auxiliary_head = nn.Linear(100, 10)  # 1010 parameters, excluded

    def forward(self, x):
        y = self.conv(x)
        aux = self.auxiliary_head(y.flatten(1)[:, :100]) if self.training else None
        return y, aux


def test_count_params_excludes_auxiliary_head():
    assert count_params_m(TinyNet()) == pytest.approx(18 / 1e6)
    assert count_params_m(nn.Linear(10, 5)) == pytest.approx(55 / 1e6)


def test_madds_linear_by_hand():
    assert count_madds_m(nn.Linear(10, 5), (1, 10)) == pytest.approx(50 / 1e6)


def test_madds_conv_by_hand():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    assert count_madds_m(conv, (1, 3, 8, 8)) == pytest.approx(3 * 4 * 9 * 64 / 1e6)


def test_madds_tuple_output_eval_mode_and_training_flags_restored():
    model = TinyNet()
    model.train()
    model.auxiliary_head.eval()  # mixed flags must come back exactly as they were
    # 10x10 input → 8x8 output, 2 channels, 9 taps: the auxiliary head is not run in eval mode.
    assert count_madds_m(model, (1, 1, 10, 10)) == pytest.approx(2 * 9 * 64 / 1e6)
    assert model.training and model.conv.training and not model.auxiliary_head.training


class ClockedNet(nn.Module):
    """A forward pass that advances a fake clock by the next scripted duration and notes how it was run."""

    def __init__(self, clock, durations):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(2, 2, 3), nn.BatchNorm2d(2)
        self.clock, self.durations, self.calls = clock, list(durations), []

    def forward(self, x):
        self.calls.append((self.training, self.bn.training, torch.is_grad_enabled(), tuple(x.shape),
                           x.is_contiguous(memory_format=torch.channels_last)))
        self.clock[0] += self.durations.pop(0)
        return self.bn(self.conv(x))


def test_latency_is_the_median_of_the_timed_runs_without_the_warmup(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("harness.core.metrics.time.perf_counter", lambda: clock[0])
    # two warm-up passes of 9 s (excluded), then timed passes of 5, 1, 3, 4 and 2 ms: the median is 3 ms
    model = ClockedNet(clock, [9.0, 9.0, 0.005, 0.001, 0.003, 0.004, 0.002])
    model.train()
    model.bn.eval()  # mixed flags must come back exactly as they were
    assert measure_latency_ms(model, (4, 2, 6, 6), warmup=2, runs=5) == pytest.approx(3.0)
    assert model.durations == [] and len(model.calls) == 7
    assert all(call == (False, False, False, (4, 2, 6, 6), False) for call in model.calls)  # eval, no grad
    assert model.training and model.conv.training and not model.bn.training
    # one timed pass, no warm-up, in the channels-last layout the trial's batches have
    model = ClockedNet(clock, [0.25])
    assert measure_latency_ms(model, (1, 2, 6, 6), warmup=0, runs=1, layout=torch.channels_last) == 250.0
    assert model.calls == [(False, False, False, (1, 2, 6, 6), True)] and model.training


def test_latency_of_a_real_network_is_positive_and_training_flags_come_back():
    model = TinyNet()
    model.train()
    assert measure_latency_ms(model, (2, 1, 10, 10), warmup=1, runs=3) > 0
    assert model.training and model.auxiliary_head.training


@pytest.mark.parametrize("kwargs, match", [
    ({"runs": 0}, "runs must be an int >= 1"),
    ({"runs": 2.5}, "runs must be an int >= 1"),
    ({"runs": True}, "runs must be an int >= 1"),
    ({"warmup": -1}, "warmup must be an int >= 0"),
    ({"input_shape": (0, 1, 10, 10)}, "input_shape must be positive"),
    ({"input_shape": ()}, "input_shape must be positive"),
])
def test_latency_refuses_silly_arguments(kwargs, match):
    model = TinyNet()
    with pytest.raises(ValueError, match=match):
        measure_latency_ms(model, **{"input_shape": (1, 1, 10, 10), **kwargs})


def test_peak_memory_cpu_is_positive():
    assert peak_memory_mb(torch.device("cpu")) > 1.0


def test_device_labels():
    assert describe_device(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"
    assert device_hours_kind(torch.device("cpu")) == "CPU-hours"
    assert device_hours_kind("cuda") == "GPU-hours"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_metrics():
    device = torch.device("cuda")
    conv = nn.Conv2d(3, 4, 3, padding=1).to(device)
    assert count_madds_m(conv, (1, 3, 8, 8)) == pytest.approx(3 * 4 * 9 * 64 / 1e6)
    assert measure_latency_ms(conv, (2, 3, 8, 8), warmup=1, runs=2, layout=torch.channels_last) > 0
    assert describe_device(device).startswith("cuda (")
    assert peak_memory_mb(device) > 0


# --- the metric table ------------------------------------------------------------------------------
def _metric_record(seed, **values):
    from harness.core.metric_table import all_metrics

    record = {"method": "m", "space": "s", "dataset": "d", "budget": "b", "seed": seed, "config_hash": "h",
              "device_hours_kind": "CPU-hours"}
    record.update({m.key: 10.0 * (seed + 1) + i for i, m in enumerate(all_metrics())})
    record.update(values)
    return record


def test_metric_table_is_consistent():
    from harness.core.metric_table import METRICS, SUMMARY, SUMMARY_KEYS, all_metrics
    from harness.leaderboard import BASE_COLUMNS

    keys = [m.key for m in all_metrics()]
    assert len(keys) == len(set(keys))
    assert [m.summary for m in SUMMARY] == list(range(1, len(SUMMARY) + 1))
    assert SUMMARY_KEYS == tuple(m.key for m in SUMMARY)
    assert len(BASE_COLUMNS) == len(set(BASE_COLUMNS))
    with pytest.raises(ValueError, match="unknown statistics"):
        type(METRICS[0])("x", "x", stats=("mode",))


def test_every_metric_with_leaderboard_statistics_is_aggregated_over_seeds():
    from harness.core.metric_table import all_metrics
    from harness.leaderboard import build_leaderboard

    records = [_metric_record(0), _metric_record(1), _metric_record(2, test_acc=float("nan"))]
    row = build_leaderboard(records).iloc[0]
    for m in all_metrics():  # a method's own metrics among them, averaged in the trailing columns
        values = [r[m.key] for r in records if math.isfinite(r[m.key])]
        expected = {"mean": statistics.mean(values), "std": statistics.stdev(values),
                    "median": statistics.median(values), "best": max(values)}
        for stat in m.stats:
            assert row[m.stat_column(stat)] == pytest.approx(expected[stat] / m.divisor), (m.key, stat)
        if not m.stats:  # averaged among the other numeric keys
            assert row[f"{m.key}_mean"] == pytest.approx(expected["mean"])
    assert row["device_hours_kind"] == "CPU-hours"


def test_every_shown_metric_has_its_label_and_unit_and_null_is_a_dash():
    from rich.console import Console

    from harness.core.metric_table import NULL, shown_metrics
    from harness.core.records import show_record

    console = Console(record=True, width=200)
    show_record(_metric_record(0, device_hours_kind="GPU-hours"), console)
    # a number the kernel's table lacks makes the display use the whole table (metric_table.record_metrics), so the
    # methods' own null metrics are dashes in their labelled rows too
    show_record(_metric_record(1, **{m.key: None for m in shown_metrics()}, some_methods_number=1.0), console)
    lines = console.export_text().splitlines()
    for m in shown_metrics():
        rows = [line for line in lines if line.startswith(f"│ {m.label} ")]
        assert len(rows) == 2, m.key
        cells = [[c.strip() for c in row.strip("│").split("│")] for row in rows]
        assert cells[0][1] != NULL and cells[1][1] == NULL
        # a time reads in its own units ("1.00 h"), with the device's kind where the record names it
        assert cells[0][2] == ("GPU" if m.unit_key else "" if m.unit in ("s", "hours") else m.unit)


def test_missing_metrics_are_dashes_in_the_leaderboard_views():
    from rich.console import Console

    from harness.core.metric_table import METRICS, NULL
    from harness.leaderboard import build_leaderboard, leaderboard_table, to_markdown

    record = {key: value for key, value in _metric_record(0).items() if key not in {m.key for m in METRICS}}
    df = build_leaderboard([record])
    markdown_cells = [c.strip() for c in to_markdown(df).splitlines()[2].strip("|").split("|")]
    for m in METRICS:
        for column in m.board_columns:
            if column != m.unit_key:
                assert markdown_cells[list(df.columns).index(column)] == NULL, column
    console = Console(record=True, width=250)
    console.print(leaderboard_table(df, "board"))
    row = console.export_text().splitlines()[-2]
    assert f"{NULL} ± {NULL}" in row and "arch τ" not in console.export_text()  # arch τ only when some row has it


def test_a_finished_trial_reports_the_summary_metrics(tmp_path):
    from helpers import a_spec

    from harness.core.metric_table import SUMMARY
    from harness.core.records import record_filename, write_record
    from harness.trial import execute_trial

    spec = a_spec(tmp_path, dataset="d")
    record = _metric_record(3, op_kendall_tau=None)
    write_record(tmp_path / "trials" / record_filename("m", "s", "d", 3), record)
    reports = []
    execute_trial(spec, 3, reports.append)
    assert reports == [{**{m.key: record[m.key] for m in SUMMARY}, "phase": "done", "progress": 1.0}]


def test_a_method_declares_its_own_metrics_and_the_table_names_no_method():
    """NOS's teacher metrics come from its class, through the registry, after the device time (where the record
    display has always shown them); the table's module names no method; a method's metric with leaderboard
    statistics, or another declaration of a shared key, is refused."""
    import re
    from dataclasses import replace
    from pathlib import Path

    import harness.core.metric_table as table
    from harness.core.registry import all_methods, get_method

    keys = [m.key for m in table.all_metrics()]
    at = keys.index("device_hours") + 1
    assert keys[at:at + 4] == ["teacher_seconds", "teacher_device_hours", "teacher_cached", "teacher_obtain_seconds"]
    assert [m.key for m in get_method("nos").metrics] == keys[at:at + 4]
    assert keys[:at] + keys[at + 4:] == [m.key for m in table.METRICS]  # the shared table, in its order
    assert table.metric("teacher_cached").label == "teacher from the cache"
    text = Path(table.__file__).read_text()
    for name in [*all_methods(), "teacher"]:
        assert not re.search(rf"\b{name}\b", text, flags=re.I), name

    class Ranked:
        metrics = (replace(table.METRICS[0], key="own_acc"),)  # it has leaderboard statistics

    class Twice:
        metrics = (table.Metric("test_acc", "again"),)

    for cls in (Ranked, Twice):
        with pytest.raises(TypeError, match=cls.metrics[0].key):
            table._with_method_metrics((cls,))


def test_records_and_the_metric_table_import_no_torch():
    import subprocess
    import sys

    code = "import sys, harness.core.records, harness.core.metric_table; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_record_without_a_methods_metric_is_checked_without_the_plugins():
    """``record_metrics``: the kernel's table for a record whose numbers it all knows (the views of such records do
    not import the plug-ins, so not torch: measured in a fresh process); the whole table, NOS's teacher metrics
    included, as soon as a record has a number the kernel's table lacks."""
    import subprocess
    import sys

    from harness.core.metric_table import METRICS, all_metrics, record_metrics

    plain = {"method": "darts", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": 3,
             "test_acc": 90.0, "genotype": "x", "done": True}
    assert record_metrics(plain) is METRICS
    with_teacher = {**plain, "teacher_seconds": 17.0}
    assert record_metrics(with_teacher) == all_metrics() and "teacher_seconds" in {m.key for m in all_metrics()}
    assert "teacher_seconds" not in {m.key for m in METRICS}
    code = ("import json, sys\nfrom harness.core.records import check_record\n"
            f"print(check_record({plain!r}, 'r.json'), 'torch' in sys.modules, 'methods' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "False", "False"]
    code = code.replace(repr(plain), repr(with_teacher))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "True", "True"]
