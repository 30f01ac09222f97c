"""The driver's progress display (``harness.progress``): the time a trial has left, its live line in a terminal and its
rate-limited plain lines in a log, fed the way Ray Tune's callback feeds it."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from helpers import a_spec
from rich.console import Console

from harness import progress
from harness.estimate import TrialCost
from harness.progress import LOG_EVERY_S, ProgressBoard, RichProgressCallback, clock, live_progress, time_left
from harness.trial import job_text

COST = TrialCost(startup=10, search=20, correlation=10, evaluation=15, latency=5)  # 60 s


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_clock_format():
    assert [clock(s) for s in (0, 7.4, 65, 725, 3723, -3)] == ["0:00", "0:07", "1:05", "12:05", "1:02:03", "0:00"]


def test_time_left_from_the_phase_pace_and_the_estimate_of_later_phases():
    assert time_left(COST, "starting", since_start=4) == (56, False, 1.0)
    assert time_left(COST, "starting", since_start=15) == (50, False, 1.0)  # start-up over its estimate: the rest
    launched = TrialCost(startup=10, search=20, correlation=10, evaluation=15, latency=5, launch=6)
    assert time_left(launched, "starting", since_start=1) == (53, False, 1.0)  # its worker's 6 s were before
    # search epoch 2 of 10 in 6 s: 3 s an epoch against the estimate's 2 → the 8 left take 24 s, and the later
    # phases 1.5 × their 30 s
    assert time_left(COST, "search", epoch=2, epochs=10, phase_seconds=6) == (24 + 45, False, 1.5)
    # the pace against the estimate is bounded: 100 s an epoch is 50 × the estimate, counted as 4 ×
    assert time_left(COST, "search", epoch=1, epochs=10, phase_seconds=100) == (900 + 4 * 30, False, 4.0)
    # a phase reported once: its estimate at the trial's pace, less what it has run
    assert time_left(COST, "correlation", in_phase=3, ratio=2.0) == (2 * 10 - 3 + 2 * 20, False, 2.0)
    assert time_left(COST, "correlation", in_phase=30, ratio=2.0) == (2 * 20, False, 2.0)
    assert time_left(COST, "eval", epoch=3, epochs=3, phase_seconds=15) == (5, False, 1.0)  # its last epoch
    assert time_left(COST, "latency", in_phase=1) == (4, False, 1.0)
    # a resume has no estimate: an epoch phase's rest is a lower bound, other phases unknown
    assert time_left(None, "search", epoch=2, epochs=10, phase_seconds=6) == (24, True, 1.0)
    assert time_left(None, "correlation", in_phase=3) == (None, False, 1.0)
    assert time_left(COST, "pending") == (None, False, 1.0)


def log_board(labels, costs=None):
    out, now = io.StringIO(), Clock()
    console = Console(file=out, width=100, markup=False)  # not a terminal: a log
    return ProgressBoard(console, labels, costs, clock_fn=now), out, now


LINE = re.compile(r"^\d\d:\d\d:\d\d  (.*)$")


def lines(out: io.StringIO) -> list[str]:
    found = [LINE.match(line) for line in out.getvalue().splitlines()]
    assert all(found), out.getvalue()
    return [m.group(1) for m in found]


def test_a_log_gets_a_trials_news_at_most_every_few_seconds_and_its_end_at_once():
    board, out, now = log_board(["seed 0", "seed 1"], {"seed 0": COST})
    seen = 0

    def new() -> list[str]:
        nonlocal seen
        said = lines(out)
        seen, fresh = len(said), said[seen:]
        return fresh

    board.done_earlier("seed 1")  # a resume's finished seed
    board.started("seed 0")
    assert new() == ["seed 1: finished earlier", "seed 0: starting, 0:00 elapsed, ETA 1:00"]
    now.now = 2.0
    board.reported("seed 0", {"phase": "search", "epoch": 0, "epochs": 10, "phase_seconds": 3.0, "val_acc": 40.0,
                              "progress": 0.05})
    now.now = 4.0
    board.reported("seed 0", {"phase": "search", "epoch": 1, "epochs": 10, "phase_seconds": 6.0, "val_acc": 45.0,
                              "progress": 0.1})
    now.now = LOG_EVERY_S - 0.1
    board.flush()
    assert new() == []  # the news waits: the trial's last line is not LOG_EVERY_S seconds old
    now.now = 5.0
    board.flush()  # the latest news: epoch 2 at 3 s an epoch (the ETA of 69 s at t=4, one second later)
    assert new() == ["seed 0: search epoch 2/10  val 45.0%, 0:05 elapsed, ETA 1:08"]
    board.flush()
    assert new() == []  # nothing new
    now.now = 6.0
    board.reported("seed 0", {"phase": "correlation", "progress": 0.5})
    now.now = 12.0
    board.flush()
    assert new() == ["seed 0: correlation, 0:12 elapsed, ETA 0:39"]  # 1.5 × 10 - 6 s + 1.5 × 20
    now.now = 13.0
    board.reported("seed 0", {"phase": "eval", "epoch": 0, "epochs": 4, "phase_seconds": 4.0, "train_acc": 60.0})
    now.now = 14.0
    board.reported("seed 0", {"phase": "done", "test_acc": 93.456, "progress": 1.0})
    board.ended("seed 0", "finished")  # Ray Tune's on_trial_complete after the last report: no second line
    assert new() == ["seed 0: finished  test 93.46%, 0:14"]


def test_a_failed_trial_and_a_diverged_one_say_so():
    board, out, now = log_board(["seed 0", "seed 1"])
    board.started("seed 0")
    board.started("seed 1")
    now.now = 1.0
    board.ended("seed 0", "error")
    board.reported("seed 1", {"phase": "diverged", "diverged": "diverged at search epoch 1 of 2 (loss nan)"})
    board.ended("seed 1", "diverged")
    assert lines(out) == ["seed 0: starting, 0:00 elapsed", "seed 1: starting, 0:00 elapsed",  # no estimate: no ETA
                          "seed 0: error, 0:01", "seed 1: diverged, 0:01"]


def test_a_terminal_shows_one_live_line_per_trial_within_80_columns():
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    labels = ["nos-noags hetero digits seed 0", "nos-noags hetero digits seed 1"]
    now = Clock()
    board = ProgressBoard(console, labels, {label: COST for label in labels}, clock_fn=now)
    assert board.live
    board.started(labels[0])
    now.now = 4.0
    board.reported(labels[0], {"phase": "search", "epoch": 1, "epochs": 10, "phase_seconds": 6.0, "val_acc": 45.0,
                               "progress": 0.1})
    shown = Console(file=io.StringIO(), width=80, record=True, color_system=None)
    board.trials[labels[0]].started = progress.time.monotonic() - 4.0  # the live column reads the real clock
    board.trials[labels[0]].deadline = progress.time.monotonic() + 69.0
    shown.print(board.progress.get_renderable())
    text = shown.export_text()
    first, second = text.splitlines()[:2]
    assert first.startswith(labels[0]) and "search epoch 2/10  val 45.0%" in first, text
    assert first.rstrip().endswith(("0:04 · ETA 1:09", "0:04 · ETA 1:08")), text  # the clock ran a little
    assert second.startswith(labels[1]) and "pending" in second, text
    assert max(len(line) for line in text.splitlines()) <= 80, text


def test_ray_tunes_callback_feeds_the_board_of_the_running_driver(tmp_path):
    spec = a_spec(tmp_path / "exp", seeds=(0, 1))
    trial = SimpleNamespace(config={"job": job_text(spec, 1)}, last_result={"phase": "done"})
    out = io.StringIO()
    console = Console(file=out, width=100, markup=False)
    callback = RichProgressCallback()
    with live_progress(console, ["seed 0", "seed 1"], ["seed 0"], {"seed 1": COST}) as board:
        callback.on_trial_start(0, [], trial)
        callback.on_trial_result(0, [], trial, {"phase": "search", "epoch": 0, "epochs": 2, "phase_seconds": 1.0})
        callback.on_trial_complete(0, [], trial)
        assert board.trials["seed 1"].status == "finished" and board.trials["seed 0"].status == "finished earlier"
    callback.on_trial_result(0, [], trial, {"phase": "search"})  # after the block: no display, nothing happens
    said = lines(out)
    assert said[0] == "seed 0: finished earlier" and said[1].startswith("seed 1: starting"), said
    assert said[-1].startswith("seed 1: finished"), said


@pytest.mark.parametrize("phase, words", [("eval", "evaluation epoch 1/4"), ("latency", "latency"),
                                          ("correlation", "correlation")])
def test_each_phase_is_named_in_words(phase, words):
    board, out, now = log_board(["seed 0"], {"seed 0": COST})
    board.started("seed 0")
    now.now = 10.0
    board.reported("seed 0", {"phase": phase, "epoch": 0 if phase == "eval" else None, "epochs": 4})
    assert lines(out)[1].startswith(f"seed 0: {words}, 0:10 elapsed, ETA ")
