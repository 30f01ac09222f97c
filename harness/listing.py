"""What a results folder holds: ``ls`` (every experiment and study under a folder, with its state) and ``show FOLDER``
(an experiment's or a study's trials with their key figures).

An experiment is a folder with ``experiment.json``; a study one with ``study.json``, whose cells are the experiments
under its ``cells/``. A seed is done when the experiment's ``trials/`` holds a record of it with the experiment's
setting (``harness.summary.own_records``, what a run's summary counts); the experiment is running when a driver holds
its lock (``harness.lock.lock_holder``). The last change is the newest file time of its ``experiment.json``, records
and checkpoints (a local folder; an object store shows none). Reading a folder writes nothing in it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from harness.core.errors import UserError, one_line
from harness.core.metric_table import NULL, SUMMARY
from harness.core.places import place
from harness.core.records import MAX_RECORD_BYTES, read_limited
from harness.core.storage import Remote, uri
from harness.leaderboard import cell_text
from harness.lock import lock_holder
from harness.spec import CHECKPOINTS_DIR, RECORDS_DIR, SPEC_FILE, TUNE_DIR, ExperimentSpec
from harness.study import CELLS_DIR, STUDY_SPEC
from harness.summary import own_records, resume_command

SKIPPED = {RECORDS_DIR, CHECKPOINTS_DIR, TUNE_DIR, "report", "mlruns", "wandb"}  # folders that hold no experiment


@dataclass
class Entry:
    """One experiment or study as ``ls`` shows it."""

    folder: Path | Remote
    kind: str  # "experiment" or "study"
    what: str = ""  # method · space · dataset · budget (a study: its cells')
    done: int = 0  # seeds (a study: trials) with a record
    total: int = 0
    missing: list[str] = field(default_factory=list)  # the seeds (a study: cell and seeds) without one
    holder: str | None = None  # who runs it now
    changed: float | None = None  # the newest file time (seconds since the epoch)
    problem: str | None = None  # why it cannot be read
    specs: list[ExperimentSpec] = field(default_factory=list)  # its own, or its cells'
    records: list[dict[str, Any]] = field(default_factory=list)  # an experiment's records of its setting

    @property
    def state(self) -> str:
        if self.problem:
            return "unreadable"
        if self.done == self.total:  # (a study's driver holds its finished cells' locks until it ends)
            return "done"
        if self.holder:
            return "running"
        return "not started" if self.done == 0 else "incomplete"


# --- reading ------------------------------------------------------------------------------------------------------
def _load_json(path: Path | Remote) -> Any:
    """The JSON of an ``experiment.json`` or ``study.json`` (a regular file, read up to ``MAX_RECORD_BYTES``), or a
    ``UserError`` of a few words saying why it cannot be read (a cell of the listing)."""
    try:
        return json.loads(read_limited(path, MAX_RECORD_BYTES, "file").decode("utf-8"))
    except FileNotFoundError:
        raise UserError("missing") from None
    except UserError:
        raise UserError("not a regular file, or too large") from None
    except OSError as err:
        raise UserError(err.strerror or one_line(err, 60)) from None
    except (UnicodeDecodeError, RecursionError, json.JSONDecodeError):
        raise UserError("not valid JSON") from None


def _changed(folder: Path | Remote, spec_file: str) -> float | None:
    """The newest modification time of the folder's ``spec_file``, records and checkpoints; None on an object store
    (whose listing carries no times here) or when none can be read."""
    local = place(folder).local
    if local is None:
        return None
    times = []
    for path in [local / spec_file, *(local / RECORDS_DIR).glob("*"), *(local / CHECKPOINTS_DIR).glob("*")]:
        try:
            times.append(path.stat().st_mtime)
        except OSError:
            pass
    return max(times, default=None)


def _spec(data: Any) -> ExperimentSpec:
    """The spec of an ``experiment.json``'s JSON, or a ``UserError`` of a few words when it is not an experiment's."""
    if not isinstance(data, dict):
        raise UserError("not an experiment's file")
    try:
        return ExperimentSpec.from_json(data)
    except ValueError as err:  # the keys it lacks
        keys = str(err).split(", ")
        raise UserError(f"lacks {', '.join(keys[:3])}" + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
                        ) from None
    except (TypeError, KeyError, AttributeError):
        raise UserError("malformed") from None


def read_experiment(folder: Path | Remote, spec: ExperimentSpec | None = None) -> Entry:
    """The experiment of ``folder`` (its ``experiment.json``, or the ``spec`` a study keeps of it if that is gone)."""
    entry = Entry(folder, "experiment", holder=lock_holder(folder))
    try:
        if (folder / SPEC_FILE).is_file() or spec is None:
            spec = _spec(_load_json(folder / SPEC_FILE))
    except UserError as err:
        entry.problem = f"{SPEC_FILE}: {err}"
        return entry
    spec = spec.at(folder)
    entry.what = f"{spec.method} · {spec.space} · {spec.dataset} · {spec.budget}"
    entry.specs, entry.total = [spec], len(spec.seeds)
    try:
        entry.records = own_records(spec) if folder.exists() else []
    except UserError as err:
        entry.problem = str(err)
        return entry
    have = {r.get("seed") for r in entry.records}
    entry.done = sum(s in have for s in spec.seeds)
    entry.missing = [str(s) for s in spec.seeds if s not in have]
    entry.changed = _changed(folder, SPEC_FILE)
    return entry


def read_study(folder: Path | Remote) -> tuple[Entry, list[Entry]]:
    """The study of ``folder`` and its cells (each an experiment, ``read_experiment``)."""
    entry = Entry(folder, "study", holder=lock_holder(folder))
    try:
        stored = _load_json(folder / STUDY_SPEC)
        cells = [(str(name), stored["specs"].get(name)) for name in stored["cells"]]
    except UserError as err:
        entry.problem = f"{STUDY_SPEC}: {err}"
        return entry, []
    except (KeyError, TypeError, AttributeError):
        entry.problem = f"{STUDY_SPEC}: not a study's file"
        return entry, []
    rows = []
    for name, kept in cells:
        try:
            spec = _spec(kept) if kept is not None else None
        except UserError:
            spec = None
        rows.append(read_experiment(folder / CELLS_DIR / name, spec))
    specs = [s for row in rows for s in row.specs]
    entry.specs = specs
    entry.what = " · ".join(", ".join(dict.fromkeys(values)) for values in (
        [s.cell or s.method for s in specs], [s.space for s in specs], [s.dataset for s in specs],
        [s.budget for s in specs]))
    entry.done, entry.total = sum(r.done for r in rows), sum(r.total for r in rows)
    entry.missing = [f"{(r.specs[0].cell or r.folder.name) if r.specs else r.folder.name} "
                     f"{','.join(r.missing)}" for r in rows if r.missing]
    broken = [r for r in rows if r.problem]
    if broken:
        entry.problem = f"cell {broken[0].folder.name}: {broken[0].problem}"
    entry.changed = max([t for t in [_changed(folder, STUDY_SPEC), *(r.changed for r in rows)] if t is not None],
                        default=None)
    return entry, rows


def _folders(root: Path | Remote) -> list[tuple[Path | Remote, set[str]]]:
    """Every folder under ``root`` (itself included) that is an experiment or a study, with the names of its files:
    a study's cells and the folders of an experiment (records, checkpoints, Ray Tune's) are not searched."""
    local = place(root).local
    found: list[tuple[Path | Remote, set[str]]] = []
    if local is None:  # an object store: one listing of every file below
        names: dict[str, set[str]] = {}
        for path in root.files():
            names.setdefault(str(path.parent), set()).add(path.name)
        for path, files in names.items():
            if SPEC_FILE in files or STUDY_SPEC in files:
                parts = path[len(str(root)):].strip("/").split("/") if path != str(root) else []
                if not any(p in SKIPPED or p == CELLS_DIR or p.startswith(".") for p in parts):
                    found.append((root / "/".join(parts) if parts else root, files))
        return found
    for here, dirs, files in os.walk(local, onerror=None):
        if SPEC_FILE in files or STUDY_SPEC in files:
            found.append((Path(here), set(files)))
            dirs.clear()  # an experiment's folders hold no experiment; a study's cells are read with it
            continue
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED and not d.startswith("."))
    return found


def list_folder(root: Path | Remote) -> tuple[str, list[Entry]]:
    """What ``root`` holds: ("folder", its experiments and studies), ("study", its cells) when ``root`` is a study,
    or ("experiment", itself). A missing root, or a file, is one line."""
    if not root.exists():
        raise UserError(f"folder {root} does not exist; give a results folder (default: results)")
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder; 'python -m harness show {root}' shows a record")
    if (root / STUDY_SPEC).is_file():
        return "study", read_study(root)[1]
    if (root / SPEC_FILE).is_file():
        return "experiment", [read_experiment(root)]
    entries = []
    for folder, files in sorted(_folders(root), key=lambda f: str(f[0])):
        entries.append(read_study(folder)[0] if STUDY_SPEC in files else read_experiment(folder))
    return "folder", entries


# --- showing ------------------------------------------------------------------------------------------------------
def _when(seconds: float | None) -> str:
    if seconds is None:
        return NULL
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _name(entry: Entry, root: Path | Remote) -> str:
    """The entry's folder below ``root`` (its name when it is ``root`` itself)."""
    text, base = str(entry.folder), str(root).rstrip("/") + "/"
    return text[len(base):] if text.startswith(base) else entry.folder.name


def _state(entry: Entry) -> str:
    if entry.state == "incomplete" and entry.kind == "experiment":
        return f"missing {','.join(entry.missing)}"
    if entry.state == "incomplete":
        return f"missing {entry.total - entry.done}"
    return entry.state


WHAT = "method · space · dataset · budget"


def _two_lines(name: str, what: str) -> Group:
    """``name`` over ``what``, indented by two (a long ``what`` wraps under its indent)."""
    return Group(Text(name), Padding(Text(what), (0, 0, 0, 2)))


def entries_table(entries: list[Entry], root: Path | Remote, title: str, width: int) -> Table:
    """One row per experiment or study: its folder (never shortened), what it runs, seeds (or trials) done, its state
    and its last change. When that is wider than ``width`` (a terminal of 80 columns), what it runs goes on a second
    line under the folder, so that no name is cut and the columns stay one word wide."""
    names = [_name(e, root) + ("/" if e.kind == "study" else "") for e in entries]
    rows = [(name, e.problem or ("study: " if e.kind == "study" else "") + e.what,
             NULL if e.problem else f"{e.done}/{e.total}", _state(e), _when(e.changed))
            for name, e in zip(names, entries)]
    headers = ("name", WHAT, "done", "state", "changed")
    widths = [max(len(text) for text in column) for column in zip(headers, *rows)]
    # each column border is three spaces wide (padding, rule, padding) and each edge one
    one_line = sum(widths) + 3 * (len(widths) - 1) + 2 <= width
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    room = width - sum(widths[2:]) - 3 * 3 - 2  # what the first column may take beside the other three
    table.add_column("name" if one_line else _two_lines("name", WHAT), no_wrap=one_line,
                     min_width=widths[0] if one_line else max(widths[0], min(widths[1] + 2, room)))
    if one_line:
        table.add_column(WHAT)
    table.add_column("done", justify="right", no_wrap=True)
    table.add_column("state", overflow="fold")
    table.add_column("changed", min_width=10)
    for name, what, *rest in rows:
        table.add_row(name, what, *rest) if one_line else table.add_row(_two_lines(name, what), *rest)
    return table


def print_listing(root: Path | Remote, console: Console) -> int:
    """``ls``: the table of what ``root`` holds, who runs what now, and how to resume what is incomplete."""
    kind, entries = list_folder(root)
    if not entries:
        console.print(f"no experiments or studies in {root} (an experiment's folder holds {SPEC_FILE}, a study's "
                      f"{STUDY_SPEC})")
        return 0
    if kind == "study":
        study = read_study(root)[0]
        title = f"study {root.name}: {study.done} of {study.total} trials done, {len(entries)} cells"
    elif kind == "experiment":
        title = f"experiment {root.name}"
    else:
        studies = sum(e.kind == "study" for e in entries)
        counts = [f"{n} {what}" for n, what in ((len(entries) - studies, "experiment" if len(entries) - studies == 1
                                                 else "experiments"), (studies, "study" if studies == 1 else "studies"))
                  if n]
        title = f"{' and '.join(counts)} in {root}"
    console.print(entries_table(entries, root, title, console.width))
    running: dict[str, list[str]] = {}  # who runs what: a study's driver holds every cell
    for entry in entries:
        if entry.holder:
            running.setdefault(entry.holder, []).append(_name(entry, root))
    for holder, names in running.items():
        what = f"all {len(names)} cells" if kind == "study" and len(names) == len(entries) else ", ".join(names)
        console.print(f"running now: {what} by {holder}", soft_wrap=True)
    resumable = [e.folder for e in entries if e.state in ("incomplete", "not started")]
    if kind != "folder" and resumable:  # a study resumes all its cells
        console.print(f"resume: {resume_command(root)}", soft_wrap=True)
    elif len({str(f.parent) for f in resumable}) == 1 and len(resumable) > 1:
        console.print(f"resume: python -m harness run --resume --name NAME --out "
                      f"{shlex.quote(uri(resumable[0].parent))} (NAME: {', '.join(f.name for f in resumable)})",
                      soft_wrap=True)
    else:
        for folder in resumable:
            console.print(f"resume: {resume_command(folder)}", soft_wrap=True)
    return 0


def trials_of(rows: list[Entry], title: str, study: bool) -> Table:
    """Every trial of ``rows`` (an experiment, or a ``study``'s cells) with the figures a run's summary shows (the
    metric table's ``SUMMARY``): by cell (its method or variant; its space and dataset where the cells differ in
    them), then seed."""
    rows = [row for row in rows if row.records]
    varies = [key for key in ("space", "dataset") if len({getattr(row.specs[0], key) for row in rows}) > 1]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in (["cell"] if study else []) + varies + ["seed"]:
        table.add_column(header, no_wrap=True)
    for m in SUMMARY:
        table.add_column(m.summary_header, justify="right")
    for row in rows:
        spec = row.specs[0]
        ids = ([spec.cell or spec.method] if study else []) + [str(getattr(spec, key)) for key in varies]
        for record in sorted(row.records, key=lambda r: r["seed"]):
            table.add_row(*ids, str(record["seed"]), *(cell_text(record.get(m.key), m.decimals) for m in SUMMARY))
    return table


def show_folder(folder: Path | Remote, console: Console) -> int:
    """``show FOLDER``: an experiment's trials with their key figures (a ``trials/`` folder: its experiment's), or a
    study's, every cell's; anything else is one line."""
    if folder.name == RECORDS_DIR and (folder.parent / SPEC_FILE).is_file():
        folder = folder.parent
    if (folder / STUDY_SPEC).is_file():
        entry, rows = read_study(folder)
    elif (folder / SPEC_FILE).is_file():
        entry = read_experiment(folder)
        rows = [entry]
    else:
        raise UserError(f"{folder} is a folder, but not an experiment's or a study's (no {SPEC_FILE} or "
                        f"{STUDY_SPEC}); 'python -m harness ls {shlex.quote(uri(folder))}' lists what it holds")
    if entry.problem and (entry.kind == "experiment" or not rows):
        raise UserError(f"{folder}: {entry.problem}")
    console.print(Text(f"{entry.kind} {folder.name}: {entry.what}", style="bold"))
    console.print(f"{entry.done} of {entry.total} {'trials' if entry.kind == 'study' else 'seeds'} done"
                  + (f" (missing {'; '.join(entry.missing)})" if entry.missing else "")
                  + (f"; being run now by {entry.holder}" if entry.holder else ""), soft_wrap=True)
    for row in rows:
        if row.problem:
            console.print(f"cell {row.folder.name}: {row.problem}", soft_wrap=True)
    records = [r for row in rows for r in row.records]
    if records:
        console.print(trials_of(rows, f"trials of {folder.name}", entry.kind == "study"))
        console.print(f"one trial: python -m harness show {shlex.quote(records[0]['_path'])}", soft_wrap=True)
    return 0
