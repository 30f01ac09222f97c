"""The end of a run or a study: its leaderboard from its own records, what is missing, the exit status and the
command that resumes it."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from harness.core.metric_table import SUMMARY
from harness.core.records import load_records
from harness.core.storage import Remote, StoreError, uri
from harness.leaderboard import (
    ViewColumn,
    build_leaderboard,
    cell_text,
    column_names,
    duration_text,
    fit_tables,
    leaderboard_table,
    rich_table,
    view_width,
    write_leaderboard,
)
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
              interrupted: bool, study: Study | None = None, columns: list[str] | None = None) -> int:
    """The leaderboard of the experiment (one spec: with a table of its trials) or the study (``study``: every
    cell's own records, as an experiment's), written in ``folder``; the exit status (``exit_status``). ``columns``:
    the leaderboard's terminal columns (``harness.leaderboard.parse_columns``; None: the defaults)."""
    try:
        records = [r for spec in specs for r in own_records(spec)]
    except StoreError as err:  # the store was lost (run_jobs): end as the interruption it was
        if not interrupted:
            raise
        return exit_status(errors, True, True, f"{err}; resume with: {resume_command(folder)}")
    if study is None:
        trials_table(specs[0], records, console)
    if records:
        write_board(records, specs[0], folder, console, study, columns)
    have = {(r.get("config_hash"), r.get("seed")) for r in records}
    missing = sorted(seed for s in specs for seed in s.seeds if (s.config_hash, seed) not in have)
    total = sum(len(s.seeds) for s in specs)
    if study is None:
        what = f"{total - len(missing)} of {total} trials finished (missing seeds {','.join(map(str, missing))})"
    else:
        what = f"{total - len(missing)} of {total} trials of study '{study.name}' finished"
    return exit_status(errors, interrupted, bool(missing), f"{what}; resume with: {resume_command(folder)}")


def write_board(records: list[dict[str, Any]], first: ExperimentSpec, folder: Path | Remote, console: Console,
                study: Study | None, columns: list[str] | None = None) -> None:
    """The leaderboard of ``records`` written in ``folder`` and shown (``columns``: its terminal columns, checked
    when the run began: ``parse_columns``; a name the records give no column is left out), with where the records
    and it lie."""
    board = build_leaderboard(records)
    csv_path, _ = write_leaderboard(board, folder)
    if columns is not None:  # a leaderboard.csv column these records do not give is left out
        known = set(column_names(board))
        columns = [c for c in columns if c in known]
    width = view_width(console)
    if study is None:
        console.print(leaderboard_table(board, f"leaderboard ({first.budget} budget, {first.dataset})", width, columns))
        records = f"{folder / 'trials'} (python -m harness show RECORD)"
    else:
        console.print(leaderboard_table(board, f"study {study.name} ({study.budget} budget)", width, columns))
        records = f"{folder / CELLS_DIR}/*/trials"
    # paths and a command: one line each, which a terminal wraps and copies whole (a wrapped command would not paste)
    console.print(f"records: {records}\nleaderboard: {csv_path}\nreport: python -m harness report "
                  f"{shlex.quote(uri(folder))}", soft_wrap=True)


def summary_columns() -> list[ViewColumn]:
    """The key figures of a trial (the metric table's ``SUMMARY``) as every table of trials shows them: the run's
    summary and ``show FOLDER``. A time (record unit "s") reads in readable units, any other figure with its
    decimals."""
    return [ViewColumn(m.key, m.label if m.unit == "s" else m.summary_header, _summary_cell(m)) for m in SUMMARY]


def _summary_cell(metric: Any) -> Any:
    if metric.unit == "s":
        return lambda r: duration_text(r.get(metric.key))
    return lambda r: cell_text(r.get(metric.key), metric.decimals)


def trials_table(spec: ExperimentSpec, records: list[dict[str, Any]], console: Console) -> None:
    """The experiment's trials, one row per record, laid out for the console's width as the leaderboard
    (``harness.leaderboard.fit_tables``: no cell ever cut). The record's name (long for a ``folder:`` dataset) is in
    the first table only, and wraps onto further lines where it does not fit; a further table repeats the seed, which
    names the row as well (one record per seed)."""
    columns = [ViewColumn("seed", "seed", lambda r: str(r["seed"])),
               ViewColumn("record", "record", lambda r: Path(r["_path"]).name, numeric=False), *summary_columns()]
    cells = [{c.name: c.cell(r) for c in columns} for r in sorted(records, key=lambda r: r["seed"])]
    tables = fit_tables(columns, {"seed", "record"}, columns[:1], cells, view_width(console))
    console.print(Group(Text(f"trials of {spec.name}", style="bold"), *(rich_table(t, cells) for t in tables)))


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
