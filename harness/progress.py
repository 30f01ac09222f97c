"""The driver's progress display, fed by Ray Tune's results (``RichProgressCallback``): for every trial its phase,
``epoch k/N``, the time since it started and the time it has left (``time_left``).

In a terminal: one live line per trial (a bar, the phase and epoch, elapsed and ETA). Elsewhere (a log file, a pipe,
``ray job logs -f``): plain lines with the same facts and the time of day, at most one per trial every ``LOG_EVERY_S``
seconds: news that comes sooner waits until then (the latest wins), and a trial's end is written at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ray import tune
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
from rich.text import Text

from harness.estimate import TrialCost
from harness.spec import ExperimentSpec
from harness.trial import DIVERGED, read_job

LOG_EVERY_S = 5.0  # a trial's progress lines in a log: at most one per this many seconds within a phase
# what a trial's report calls a phase, and the estimate's name of it (``harness.estimate.PHASES``)
REPORTED = {"search": "search", "correlation": "correlation", "eval": "evaluation", "latency": "latency"}
EPOCH_PHASES = ("search", "eval")  # phases reported once per epoch, with ``epochs`` and ``phase_seconds``
RATIO_LIMITS = (0.25, 4.0)  # how far a trial's pace may move the estimate of its later phases


def job_label(spec: ExperimentSpec, seed: int) -> str:
    """How the progress display names a trial: ``seed 3``, or in a study ``nos-noags hetero digits seed 3``."""
    if spec.cell:
        return f"{spec.cell} {spec.space} {spec.dataset} seed {seed}"
    return f"seed {seed}"


def trial_label(trial: Any) -> str:
    """``job_label`` of a Ray Tune trial (or of a trial's result)."""
    return job_label(*read_job(trial.config["job"]))


def clock(seconds: float) -> str:
    """``0:07``, ``12:05``, ``1:02:03``."""
    whole = max(0, int(round(seconds)))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def time_left(cost: TrialCost | None, phase: str, epoch: int | None = None, epochs: int | None = None,
              phase_seconds: float | None = None, in_phase: float = 0.0, since_start: float = 0.0,
              ratio: float = 1.0) -> tuple[float | None, bool, float]:
    """The seconds a trial has left, whether that is only a lower bound, and its pace against the estimate.

    ``phase`` is the trial's (``starting`` before its first report, its worker up: ``cost.launch`` is over; else a
    report's ``search``, ``correlation``, ``eval``, ``latency``); in an epoch phase ``epoch`` epochs of ``epochs`` are
    done and took ``phase_seconds``: the phase's rest goes at that pace, and the later phases take the estimate's
    seconds scaled by the pace against the estimate's (``ratio``, returned for the phases that report once, kept
    within ``RATIO_LIMITS``). A one-report phase has run ``in_phase`` seconds: it takes the estimate's seconds ×
    ``ratio``. Without an estimate (a resume) only an epoch phase's rest is known: a lower bound. ``since_start``:
    seconds since the trial started."""
    if phase == "starting":  # its worker has started (``cost.launch``)
        return (None, False, ratio) if cost is None else (
            max(cost.after("startup"), cost.total - cost.launch - since_start), False, ratio)
    name = REPORTED.get(phase)
    if name is None:
        return None, False, ratio
    if phase in EPOCH_PHASES and epoch and epochs and phase_seconds is not None:
        pace = phase_seconds / epoch
        rest = pace * (epochs - epoch)
        if cost is None:
            return rest, True, ratio
        expected = getattr(cost, name) / epochs
        if expected > 0:
            ratio = min(max(pace / expected, RATIO_LIMITS[0]), RATIO_LIMITS[1])
        return rest + cost.after(name) * ratio, False, ratio
    if cost is None:
        return None, False, ratio
    return max(0.0, getattr(cost, name) * ratio - in_phase) + cost.after(name) * ratio, False, ratio


@dataclass
class TrialProgress:
    """What the driver knows of one trial (monotonic seconds for its clocks)."""

    label: str
    cost: TrialCost | None = None
    status: str = "pending"  # pending, starting, a reported phase, finished, finished earlier, error, diverged
    started: float | None = None
    phase_started: float = 0.0
    epoch: int | None = None  # epochs done in the phase (1-based)
    epochs: int | None = None
    extra: str = ""  # the last validation or test accuracy
    deadline: float | None = None  # when it should end
    lower_bound: bool = False
    ratio: float = 1.0
    fraction: float = 0.0
    ended: float | None = None

    def text(self) -> str:
        """``search epoch 2/10  val 45.1%``, ``correlation``, ``finished  test 93.2%``."""
        words = {"eval": "evaluation", "starting": "starting"}.get(self.status, self.status)
        if self.status in EPOCH_PHASES and self.epoch is not None:
            words += f" epoch {self.epoch}/{self.epochs}" if self.epochs else f" epoch {self.epoch}"
        return f"{words}  {self.extra}" if self.extra else words

    def times(self, now: float, short: bool = False) -> str:
        """``0:37 elapsed, ETA 1:12`` (``ETA ≥ 0:40`` when only a lower bound is known); ``short``: ``0:37 · ETA
        1:12``. A trial that ended: how long it ran."""
        if self.started is None:
            return ""
        elapsed = clock((self.ended or now) - self.started)
        if self.ended is not None:
            return elapsed
        if self.deadline is None:
            return elapsed if short else f"{elapsed} elapsed"
        eta = f"ETA {'≥ ' if self.lower_bound else ''}{clock(max(0.0, self.deadline - now))}"
        return f"{elapsed} · {eta}" if short else f"{elapsed} elapsed, {eta}"

    def start(self, now: float) -> None:
        self.started, self.phase_started, self.status, self.ended = now, now, "starting", None
        self.epoch = self.epochs = None
        self.extra, self.fraction, self.ratio = "", 0.0, 1.0
        self.update_deadline(now)

    def update_deadline(self, now: float, phase_seconds: float | None = None) -> None:
        left, self.lower_bound, self.ratio = time_left(
            self.cost, self.status, self.epoch, self.epochs, phase_seconds, now - self.phase_started,
            now - (self.started or now), self.ratio)
        self.deadline = None if left is None else now + left

    def result(self, result: dict[str, Any], now: float) -> None:
        """A report of the trial (``harness.trial.execute_trial``'s, through Ray Tune)."""
        if self.started is None:
            self.start(now)
        phase = result.get("phase") or ""
        if phase in ("done", DIVERGED):
            self.finish(now, "finished" if phase == "done" else DIVERGED)
        elif phase:
            if phase != self.status:
                self.status, self.phase_started, self.extra = phase, now, ""
            epoch = result.get("epoch")
            self.epoch = None if epoch is None else int(epoch) + 1
            self.epochs = result.get("epochs")
            self.update_deadline(now, result.get("phase_seconds"))
        if result.get("progress") is not None:
            self.fraction = float(result["progress"])
        shown = {"search": ("val_acc", "val"), "eval": ("train_acc", "train"), "done": ("test_acc", "test")}
        key, word = shown.get(phase, ("", ""))
        if result.get(key) is not None:
            self.extra = f"{word} {result[key]:.2f}%" if phase == "done" else f"{word} {result[key]:.1f}%"

    def finish(self, now: float, status: str) -> None:
        self.status, self.ended, self.deadline = status, now, None
        if status.startswith("finished"):
            self.fraction = 1.0


class TrialTimesColumn(ProgressColumn):
    """The elapsed time and ETA of the task's trial, counting between reports."""

    def render(self, task: Any) -> Text:
        trial = task.fields.get("trial")
        return Text("" if trial is None else trial.times(time.monotonic(), short=True), style="progress.elapsed")


class ProgressBoard:
    """Every trial's ``TrialProgress``, shown live in a terminal or written as plain lines elsewhere."""

    def __init__(self, console: Console, labels: list[str], costs: dict[str, TrialCost] | None = None,
                 clock_fn: Any = time.monotonic):
        self.console, self.now = console, clock_fn
        self.trials = {label: TrialProgress(label, (costs or {}).get(label)) for label in labels}
        self.live = console.is_terminal
        self.logged: dict[str, float] = {}  # label: when its last line was written
        self.pending: set[str] = set()  # trials whose news waits for their next line (``LOG_EVERY_S``)
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        if self.live:
            bar = [BarColumn(bar_width=12)] if console.width >= 100 else []  # 80 columns: a study's label, the
            # phase with its epoch and accuracy, and the times fill them
            self.progress = Progress(TextColumn("{task.description}", markup=False),  # a label names a dataset
                                     *bar, TextColumn("{task.fields[status]}", markup=False), TrialTimesColumn(),
                                     console=console, transient=False, refresh_per_second=2)
            self.tasks = {label: self.progress.add_task(label, total=1.0, status="pending", trial=trial)
                          for label, trial in self.trials.items()}

    def done_earlier(self, label: str) -> None:
        """A resume's trial with its record already: shown (in a log, said once) as finished earlier."""
        self.trials[label].finish(self.now(), "finished earlier")
        self.trials[label].started = None
        self.show(label, always=True)

    def started(self, label: str) -> None:
        if label in self.trials:
            self.trials[label].start(self.now())
            self.show(label)

    def reported(self, label: str, result: dict[str, Any]) -> None:
        trial = self.trials.get(label)
        if trial is not None:
            trial.result(result, self.now())
            self.show(label, always=trial.ended is not None)  # its last report: done or diverged

    def ended(self, label: str, status: str) -> None:
        trial = self.trials.get(label)
        if trial is not None and not (trial.status == status and trial.ended is not None):  # its last report said so
            trial.finish(self.now(), status)
            self.show(label, always=True)

    def show(self, label: str, always: bool = False) -> None:
        """Update the trial's live line; in a log, write its line unless its last one is less than ``LOG_EVERY_S``
        seconds old (its news then waits for ``flush``), or ``always`` (its end)."""
        trial = self.trials[label]
        if self.progress is not None:
            self.progress.update(self.tasks[label], completed=trial.fraction, status=trial.text())
            return
        now, last = self.now(), self.logged.get(label)
        if always or last is None or now - last >= LOG_EVERY_S:
            self.write(label, now)
        else:
            self.pending.add(label)

    def flush(self) -> None:
        """Write the news that waited, for every trial whose last line is ``LOG_EVERY_S`` seconds old (called on
        every step of Ray Tune's loop)."""
        now = self.now()
        for label in sorted(self.pending):
            if now - self.logged.get(label, 0.0) >= LOG_EVERY_S:
                self.write(label, now)

    def write(self, label: str, now: float) -> None:
        """``18:31:17  seed 0: search epoch 1/2  val 11.3%, 0:41 elapsed, ETA 1:10``."""
        trial = self.trials[label]
        self.logged[label] = now
        self.pending.discard(label)
        times = trial.times(now)
        line = f"{dt.datetime.now():%H:%M:%S}  {label}: {trial.text()}" + (f", {times}" if times else "")
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    @contextmanager
    def shown(self) -> Iterator[None]:
        if self.progress is None:
            yield
            return
        with self.progress:
            yield


_SINK: ProgressBoard | None = None  # the driver's live display; the callback below is stateless so that Ray can
                                    # pickle it into the experiment state


@contextmanager
def live_progress(console: Console, labels: list[str], done: list[str],
                  costs: dict[str, TrialCost] | None = None) -> Iterator[ProgressBoard]:
    """Show every trial of ``labels`` while the block runs: ``done`` (also among ``labels``) as finished earlier, the
    others fed by ``RichProgressCallback``; ``costs``: the plan's estimate of a trial, for its ETA."""
    global _SINK
    board = ProgressBoard(console, labels, costs)
    for label in done:
        board.done_earlier(label)
    _SINK = board
    try:
        with board.shown():
            yield board
    finally:
        _SINK = None


class RichProgressCallback(tune.Callback):
    def on_step_end(self, iteration, trials, **info):
        if _SINK is not None:
            _SINK.flush()

    def on_trial_start(self, iteration, trials, trial, **info):
        if _SINK is not None:
            _SINK.started(trial_label(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _SINK is not None:
            _SINK.reported(trial_label(trial), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if _SINK is not None:
            diverged = (trial.last_result or {}).get(DIVERGED)
            _SINK.ended(trial_label(trial), "diverged" if diverged else "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        if _SINK is not None:
            _SINK.ended(trial_label(trial), "error")
