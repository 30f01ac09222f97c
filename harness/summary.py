"""The end of a run or a study: its leaderboard from its own records, what is missing, the exit status and the
command that resumes it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness.core.metric_table import SUMMARY
from harness.core.records import load_records
from harness.core.storage import Remote, StoreError, uri
from harness.leaderboard import build_leaderboard, cell_text, leaderboard_table, write_leaderboard
from harness.spec import ExperimentSpec
from harness.study import CELLS_DIR, Study


def resume_command(folder: Path | Remote) -> str:
    """The command that resumes the experiment or study of ``folder``."""
    return f"python -m harness run --resume --name {shlex.quote(folder.name)} --out {shlex.quote(uri(folder.parent))}"


def own_records(spec: ExperimentSpec) -> list[dict[str, Any]]:
    """The records of the experiment (or study cell) of ``spec``: its own ``trials/`` only, of its setting; an
    experiment nested in its folder lends it no seed."""
    return [r for r in load_records(spec.folder, nested=False) if r.get("config_hash") == spec.config_hash]


def summarise(specs: list[ExperimentSpec], folder: Path | Remote, console: Console, errors: list[str],
              interrupted: bool, study: Study | None = None) -> int:
    """The leaderboard of the experiment (one spec: with a table of its trials) or the study (``study``: every
    cell's own records, as an experiment's), written in ``folder``; the exit status (``exit_status``)."""
    try:
        records = [r for spec in specs for r in own_records(spec)]
    except StoreError as err:  # the store was lost (run_jobs): end as the interruption it was
        if not interrupted:
            raise
        return exit_status(errors, True, True, f"{err}; resume with: {resume_command(folder)}")
    if study is None:
        trials_table(specs[0], records, console)
    if records:
        write_board(records, specs[0], folder, console, study)
    have = {(r.get("config_hash"), r.get("seed")) for r in records}
    missing = sorted(seed for s in specs for seed in s.seeds if (s.config_hash, seed) not in have)
    total = sum(len(s.seeds) for s in specs)
    if study is None:
        what = f"{total - len(missing)} of {total} trials finished (missing seeds {','.join(map(str, missing))})"
    else:
        what = f"{total - len(missing)} of {total} trials of study '{study.name}' finished"
    return exit_status(errors, interrupted, bool(missing), f"{what}; resume with: {resume_command(folder)}")


def write_board(records: list[dict[str, Any]], first: ExperimentSpec, folder: Path | Remote, console: Console,
                study: Study | None) -> None:
    """The leaderboard of ``records`` written in ``folder`` and shown, with where the records and it lie."""
    board = build_leaderboard(records)
    csv_path, _ = write_leaderboard(board, folder)
    if study is None:
        console.print(leaderboard_table(board, f"leaderboard ({first.budget} budget, {first.dataset})"))
        console.print(f"records: {folder / 'trials'} (python -m harness show RECORD)\nleaderboard: {csv_path}\n"
                      f"report: python -m harness report {shlex.quote(uri(folder))}")
    else:
        console.print(leaderboard_table(board, f"study {study.name} ({study.budget} budget)"))
        console.print(f"records: {folder / CELLS_DIR}/*/trials\nleaderboard: {csv_path}\n"
                      f"report: python -m harness report {shlex.quote(uri(folder))}")


def trials_table(spec: ExperimentSpec, records: list[dict[str, Any]], console: Console) -> None:
    """The experiment's trials, one row per record."""
    table = Table(title=f"trials of {spec.name}")
    for header in ("seed", "record", *(m.summary_header for m in SUMMARY)):
        table.add_column(header)
    for r in sorted(records, key=lambda r: r["seed"]):
        table.add_row(str(r["seed"]), Path(r["_path"]).name, *(cell_text(r.get(m.key), m.decimals) for m in SUMMARY))
    console.print(table)


def exit_status(errors: list[str], interrupted: bool, missing: bool, progress: str) -> int:
    """The end of a run or study: the trials' errors on stderr and, when trials are ``missing``, the line
    ``interrupted: <progress>`` (exit 130: the driver was stopped, or nothing failed) or ``failed: <progress>``
    (exit 1); 0 when none is missing."""
    for line in errors:
        print(f"trial error: {line}", file=sys.stderr)
    if not missing:
        return 0
    what = "interrupted" if interrupted or not errors else "failed"
    print(f"{what}: {progress}", file=sys.stderr)
    return 130 if what == "interrupted" else 1
