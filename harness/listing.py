"""What a results folder holds: ``ls`` (every experiment and study under a folder, with its state) and ``show FOLDER``
(an experiment's or a study's trials with their key figures); and ``published``, the papers' figures the harness
sets beside its own (``harness.core.published``).

An experiment is a folder with ``experiment.json``; a study one with ``study.json``, whose cells are the experiments
under its ``cells/``. A seed is done when the experiment's ``trials/`` holds a record of it with the experiment's
setting (``harness.summary.own_records``, what a run's summary counts); the experiment is running when a driver holds
its lock (``harness.lock.lock_holder``). The last change is the newest file time of its ``experiment.json``, records
and checkpoints (a local folder; an object store shows none). Reading a folder writes nothing in it.
"""

from __future__ import annotations

import datetime as dt
import itertools
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

from harness.core.errors import UserError, one_line, unknown_name
from harness.core.metric_table import NULL
from harness.core.places import place
from harness.core.published import METRICS, PUBLISHED_FILE, Published, load_published
from harness.core.records import MAX_RECORD_BYTES, read_limited
from harness.core.storage import Remote, uri
from harness.leaderboard import superscript
from harness.lock import lock_holder
from harness.spec import CHECKPOINTS_DIR, RECORDS_DIR, SPEC_FILE, ExperimentSpec
from harness.study import CELLS_DIR, STUDY_SPEC
from harness.summary import own_records, resume_command, summary_columns


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


def _stored_cells(folder: Path | Remote) -> list[tuple[str, ExperimentSpec | None]]:
    """The study's cells as its ``study.json`` lists them: each one's folder name and the spec it keeps of it (None
    where that is not an experiment's); a ``UserError`` of a few words when the file is not a study's."""
    stored = _load_json(folder / STUDY_SPEC)
    try:
        cells = [(str(name), stored["specs"].get(name)) for name in stored["cells"]]
    except (KeyError, TypeError, AttributeError):
        raise UserError("not a study's file") from None
    out = []
    for name, kept in cells:
        try:
            out.append((name, _spec(kept)))
        except UserError:
            out.append((name, None))
    return out


def _names(values: list[str]) -> str:
    """``values`` once each, in order, joined by commas."""
    return ", ".join(dict.fromkeys(values))


def read_study(folder: Path | Remote) -> tuple[Entry, list[Entry]]:
    """The study of ``folder`` and its cells (each an experiment, ``read_experiment``)."""
    entry = Entry(folder, "study", holder=lock_holder(folder))
    try:
        rows = [read_experiment(folder / CELLS_DIR / name, kept) for name, kept in _stored_cells(folder)]
    except UserError as err:
        entry.problem = f"{STUDY_SPEC}: {err}"
        return entry, []
    entry.specs = [s for row in rows for s in row.specs]
    entry.what = " · ".join(_names([getattr(s, key) or s.method for s in entry.specs])
                            for key in ("cell", "space", "dataset", "budget"))
    entry.done, entry.total = sum(r.done for r in rows), sum(r.total for r in rows)
    entry.missing = [f"{r.specs[0].cell or r.folder.name} {','.join(r.missing)}" for r in rows if r.missing]
    broken = [r for r in rows if r.problem]
    if broken:
        entry.problem = f"cell {broken[0].folder.name}: {broken[0].problem}"
    times = [t for t in (_changed(folder, STUDY_SPEC), *(r.changed for r in rows)) if t is not None]
    entry.changed = max(times, default=None)
    return entry, rows


def _folders(root: Path | Remote) -> list[tuple[Path | Remote, set[str]]]:
    """Every folder below ``root`` that is an experiment or a study, with the names of its files; nothing inside one is
    searched (a study's cells are read with it), nor hidden folders."""
    local = place(root).local
    if local is None:
        return _store_folders(root)
    found: list[tuple[Path | Remote, set[str]]] = []
    for here, dirs, files in os.walk(local):
        if SPEC_FILE in files or STUDY_SPEC in files:
            found.append((Path(here), set(files)))
            dirs.clear()
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return found


def _store_folders(root: Remote) -> list[tuple[Path | Remote, set[str]]]:
    """``_folders`` on an object store: one listing of every file below ``root``, then the outermost folders that hold
    an ``experiment.json`` or a ``study.json``."""
    names: dict[str, set[str]] = {}
    for path in root.files():
        names.setdefault(str(path.parent), set()).add(path.name)
    base = str(root).rstrip("/") + "/"
    found: list[tuple[Path | Remote, set[str]]] = []
    taken: list[str] = []
    for path in sorted(p for p, files in names.items() if p.startswith(base) and {SPEC_FILE, STUDY_SPEC} & files):
        parts = path[len(base):].split("/")
        if not any(part.startswith(".") for part in parts) and not any(path.startswith(t + "/") for t in taken):
            taken.append(path)
            found.append((root / "/".join(parts), names[path]))
    return found


def list_folder(root: Path | Remote) -> tuple[Entry | None, list[Entry]]:
    """What ``root`` holds: its experiments and studies (and None), or, when ``root`` is a study or an experiment,
    that one and its cells (or itself). A missing root, or a file, is one line."""
    if not root.exists():
        raise UserError(f"folder {root} does not exist; give a results folder (default: results)")
    if not root.is_dir():
        raise UserError(f"{root} is a file, not a folder; 'python -m harness show {root}' shows a record")
    if (root / STUDY_SPEC).is_file():
        return read_study(root)
    if (root / SPEC_FILE).is_file():
        entry = read_experiment(root)
        return entry, [entry]
    return None, [read_study(folder)[0] if STUDY_SPEC in files else read_experiment(folder)
                  for folder, files in sorted(_folders(root), key=lambda f: str(f[0]))]


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


def fits(widths: list[int], width: int) -> bool:
    """Whether columns of ``widths`` fit ``width`` on one line in a ``box.SIMPLE_HEAD`` table without padded edges:
    each column border is three spaces wide (padding, rule, padding) and each edge one."""
    return sum(widths) + 3 * (len(widths) - 1) + 2 <= width


def entries_table(entries: list[Entry], root: Path | Remote, width: int) -> Table:
    """One row per experiment or study: its folder (never shortened), what it runs, seeds (or trials) done, its state
    and its last change. When that is wider than ``width`` (a terminal of 80 columns), what it runs goes on a second
    line under the folder, so that no name is cut and the columns stay one word wide."""
    names = [_name(e, root) + ("/" if e.kind == "study" else "") for e in entries]
    rows = [(name, e.problem or ("study: " if e.kind == "study" else "") + e.what,
             NULL if e.problem else f"{e.done}/{e.total}", _state(e), _when(e.changed))
            for name, e in zip(names, entries)]
    headers = ("name", WHAT, "done", "state", "changed")
    widths = [max(len(text) for text in column) for column in zip(headers, *rows)]
    one_line = fits(widths, width)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
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


def _title(root: Path | Remote, head: Entry | None, entries: list[Entry]) -> str:
    if head is None:
        studies = sum(e.kind == "study" for e in entries)
        experiments = len(entries) - studies
        counts = [f"{experiments} experiment{'s' if experiments != 1 else ''}"] if experiments else []
        counts += [f"{studies} stud{'ies' if studies != 1 else 'y'}"] if studies else []
        return f"{' and '.join(counts)} in {root}"
    if head.kind == "study":
        return f"study {root.name}: {head.done} of {head.total} trials done, {len(entries)} cells"
    return f"experiment {root.name}"


def _notes(root: Path | Remote, head: Entry | None, entries: list[Entry]) -> list[str]:
    """Who runs what now (one line per driver: a study's holds all its cells), and how to resume what is incomplete
    (a study: all its cells at once)."""
    running: dict[str, list[str]] = {}
    for entry in entries:
        if entry.holder:
            running.setdefault(entry.holder, []).append(_name(entry, root))
    every = len(entries) > 1 and head is not None  # a study's cells
    notes = [f"running now: {f'all {len(names)} cells' if every and len(names) == len(entries) else ', '.join(names)} "
             f"by {holder}" for holder, names in running.items()]
    resumable = [e.folder for e in entries if e.state in ("incomplete", "not started")]
    if head is not None and resumable:
        return [*notes, f"resume: {resume_command(root)}"]
    if len(resumable) > 1 and len({str(f.parent) for f in resumable}) == 1:
        out = shlex.quote(uri(resumable[0].parent))
        return [*notes, f"resume: python -m harness run --resume --name NAME --out {out} (NAME: "
                        f"{', '.join(f.name for f in resumable)})"]
    return [*notes, *(f"resume: {resume_command(folder)}" for folder in resumable)]


def print_listing(root: Path | Remote, console: Console) -> int:
    """``ls``: the table of what ``root`` holds, who runs what now, and how to resume what is incomplete."""
    head, entries = list_folder(root)
    if not entries:
        console.print(f"no experiments or studies in {root} (an experiment's folder holds {SPEC_FILE}, a study's "
                      f"{STUDY_SPEC})")
        return 0
    # the title names the folder: its own lines at the console's width (a table's title would wrap at the table's)
    console.print(Text(_title(root, head, entries), style="bold"))
    console.print(entries_table(entries, root, console.width))
    for line in _notes(root, head, entries):  # a command stays one line, which a terminal wraps (and copies whole)
        console.print(line, soft_wrap=True)
    return 0


def trials_of(rows: list[Entry], title: str, study: bool) -> Table:
    """Every trial of ``rows`` (an experiment, or a ``study``'s cells) with the figures a run's summary shows
    (``summary_columns``): by cell (its method or variant; its space and dataset where the cells differ in
    them), then seed."""
    rows = [row for row in rows if row.records]
    varies = [key for key in ("space", "dataset") if len({getattr(row.specs[0], key) for row in rows}) > 1]
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in (["cell"] if study else []) + varies + ["seed"]:
        table.add_column(header, no_wrap=True)
    figures = summary_columns()
    for column in figures:
        table.add_column(column.header, justify="right")
    for row in rows:
        spec = row.specs[0]
        ids = ([spec.cell or spec.method] if study else []) + [str(getattr(spec, key)) for key in varies]
        for record in sorted(row.records, key=lambda r: r["seed"]):
            table.add_row(*ids, str(record["seed"]), *(column.cell(record) for column in figures))
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


# --- the papers' published figures: ``published`` ---------------------------------------------------------------
PUBLISHED_COLUMNS = ("method", "as the paper names it", "dataset", "metric", "published", "figure")


def _row_note(row: Published) -> str:
    if row.compare:
        return row.note
    return "context only, never set beside a measured row" + (f": {row.note}" if row.note else "")


def published_block(rows: list[Published], width: int) -> list[Any]:
    """One table of the file (rows of one source, space and budget) for ``published``: its source (bold), space,
    the dataset searched on where a figure is measured on another, and budget as lines that wrap at ``width``, a
    note every row shares, then a row per figure — the method with its variant, the row as the paper names it (where
    it is not the previous row's), the dataset, the metric, the figure as printed and what it is (an average, a
    best, one figure) — and the notes of single rows, numbered. Laid out for ``width``: in six columns where they
    fit; else the paper's name under the method; else each row's words stacked on two lines beside its figure. A
    figure never wraps and nothing is cut."""
    first = rows[0]
    transferred = [r for r in rows if r.dataset != r.search_dataset]
    searches = {r.search_dataset for r in rows}
    searched = f", searched on {first.search_dataset}" if transferred and len(searches) == 1 else ""
    parts: list[Any] = [Text(first.source, style="bold"),
                        Text(f"space {first.space}{searched}; the paper's budget: {first.budget}")]
    notes = list(dict.fromkeys(_row_note(r) for r in rows))
    shared = notes[0] if len(notes) == 1 and notes[0] else None
    if shared:
        parts.append(Text(f"note: {shared}"))
    numbered = {} if shared or notes == [""] else {n: k for k, n in enumerate((n for n in notes if n), 1)}
    cells = []
    for k, row in enumerate(rows):
        mark = numbered.get(_row_note(row))
        # the paper's name where it is not the previous row's (a table's rows of one method and name read as one)
        same = k and (rows[k - 1].label, rows[k - 1].name, _row_note(rows[k - 1])) == (row.label, row.name,
                                                                                           _row_note(row))
        name = "" if same else row.name + (superscript(mark) if mark else "")
        dataset = (f"{row.dataset} (searched on {row.search_dataset})"
                   if row.dataset != row.search_dataset and not searched else row.dataset)
        cells.append((row.label, name, dataset, METRICS[row.metric][0], row.text(), row.statistic_text()))
    widths = [max(len(text) for text in column) for column in zip(PUBLISHED_COLUMNS, *cells)]
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    if fits(widths, width):  # one line per figure
        for k, header in enumerate(PUBLISHED_COLUMNS):
            table.add_column(header, justify="right" if k == 4 else "left", no_wrap=True)
        for row in cells:  # as Text: a "[order=1]" is no markup
            table.add_row(*(Text(c) for c in row))
    elif fits([widths[0], *widths[2:]], width):  # the paper's name under the method
        table.add_column(_two_lines(*PUBLISHED_COLUMNS[:2]), overflow="fold", min_width=widths[0])
        for k, header in enumerate(PUBLISHED_COLUMNS[2:], 2):
            table.add_column(header, justify="right" if k == 4 else "left", no_wrap=True)
        for method, name, *rest in cells:
            table.add_row(_two_lines(method, name) if name else Text(method), *(Text(c) for c in rest))
    else:  # each row's words on two lines: method · name, then dataset · metric · figure; the figure beside them
        table.add_column(_two_lines(f"{PUBLISHED_COLUMNS[0]} · {PUBLISHED_COLUMNS[1]}",
                                    "dataset · metric · figure"), overflow="fold")
        table.add_column(PUBLISHED_COLUMNS[4], justify="right", no_wrap=True, vertical="bottom")
        for method, name, dataset, metric, value, figure in cells:
            what = f"{dataset} · {metric} · {figure}"
            table.add_row(_two_lines(f"{method} · {name}", what) if name else Padding(Text(what), (0, 0, 0, 2)),
                          Text(value))
    parts.append(table)
    parts += [Text(f"{superscript(k)} {note}") for note, k in numbered.items()]
    return parts


def print_published(console: Console, method: str | None = None, space: str | None = None,
                    dataset: str | None = None) -> int:
    """``published``: the rows of the published-figures file (``harness.core.published``), those of ``method``,
    ``space`` and ``dataset`` (the dataset measured on or searched on) where given, by the table they come from. A
    name the file does not hold is one line naming the closest one."""
    rows = list(load_published())
    chosen = rows
    for option, value, names in (("method", method, lambda r: [r.method]), ("space", space, lambda r: [r.space]),
                                 ("dataset", dataset, lambda r: [r.dataset, r.search_dataset])):
        if value is None:
            continue
        valid = list(dict.fromkeys(n for r in rows for n in names(r)))
        if value not in valid:
            raise UserError(unknown_name(option, value, valid, " in the published figures"))
        chosen = [r for r in chosen if value in names(r)]
    filters = ", ".join(f"{k} {v}" for k, v in (("method", method), ("space", space), ("dataset", dataset)) if v)
    title = (f"published figures: {len(chosen)} of {len(rows)} rows" + (f" ({filters})" if filters else "")
             + f", from {Path(*PUBLISHED_FILE.parts[-3:]).as_posix()}")
    console.print(Text(title, style="bold"))
    if not chosen:
        console.print(f"no row has {filters}")
        return 0
    # the tables of the file: runs of rows of one source, space and budget, in the file's order
    for _, block in itertools.groupby(chosen, key=lambda r: (r.source, r.space, r.budget)):
        console.print()
        for part in published_block(list(block), console.width):
            console.print(part)
    console.print()
    console.print("Figures as printed (a test error stays an error). The leaderboard and the report set the test "
                  "accuracy of a row (100 − a test or top-1 error) beside their rows of the same method, space and "
                  "dataset; a row marked 'context only' never stands beside one.", soft_wrap=False)
    return 0
