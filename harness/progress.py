"""The driver's progress display: one line per trial, fed by Ray Tune's results (``RichProgressCallback``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ray import tune
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from harness.spec import ExperimentSpec
from harness.trial import DIVERGED, read_job


def job_label(spec: ExperimentSpec, seed: int) -> str:
    """How the progress display names a trial: ``seed 3``, or in a study ``nos-noags hetero digits seed 3``."""
    if spec.cell:
        return f"{spec.cell} {spec.space} {spec.dataset} seed {seed}"
    return f"seed {seed}"


def trial_label(trial: Any) -> str:
    """``job_label`` of a Ray Tune trial (or of a trial's result)."""
    return job_label(*read_job(trial.config["job"]))


class _ProgressCallback:
    """Feeds Ray Tune's per-trial results into a rich progress display (driver side)."""

    def __init__(self, progress: Progress, labels: list[str]):
        self.progress = progress
        self.tasks = {label: progress.add_task(label, total=1.0, status="pending") for label in labels}

    def update(self, label: str, result: dict[str, Any] | None, status: str | None = None) -> None:
        task = self.tasks.get(label)
        if task is None:
            return
        if result is not None:
            phase, epoch = result.get("phase", ""), result.get("epoch")
            text = phase if epoch is None or phase == "done" else f"{phase} epoch {epoch + 1}"
            acc = result.get("val_acc")
            if acc is not None and phase == "search":
                text += f"  val {acc:.1f}%"
            if result.get("test_acc") is not None:
                text += f"  test {result['test_acc']:.2f}%"
            self.progress.update(task, completed=float(result.get("progress", 0.0)), status=text)
        if status is not None:
            self.progress.update(task, status=status)


_SINK: _ProgressCallback | None = None  # the driver's live display; the callback below is stateless so
                                        # Ray can pickle it into the experiment state


@contextmanager
def live_progress(console: Console, labels: list[str], done: list[str]) -> Iterator[None]:
    """Show a progress line per trial label while the block runs: ``done`` (also among ``labels``) shown as finished
    earlier, the others fed by ``RichProgressCallback``."""
    global _SINK
    progress = Progress(TextColumn("{task.description}", markup=False), BarColumn(),  # a label names a dataset
                        TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=False)
    _SINK = _ProgressCallback(progress, labels)
    for label in done:
        _SINK.update(label, {"progress": 1.0}, status="finished earlier")
    try:
        with progress:
            yield
    finally:
        _SINK = None


class RichProgressCallback(tune.Callback):
    def on_trial_result(self, iteration, trials, trial, result, **info):
        if _SINK is not None:
            _SINK.update(trial_label(trial), result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if _SINK is not None:
            diverged = (trial.last_result or {}).get(DIVERGED)
            _SINK.update(trial_label(trial), None if diverged else {"progress": 1.0},
                         status="[red]diverged[/]" if diverged else "finished")

    def on_trial_error(self, iteration, trials, trial, **info):
        if _SINK is not None:
            _SINK.update(trial_label(trial), None, status="[red]error[/]")
