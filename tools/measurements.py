"""The measurements page, ``docs/measurements.md``: every figure on it made by a command, from records kept here.

The manifest, ``tools/measurements.toml``, lists the entries: an id, the command and the folder of its records
(from the repository root). ``run`` runs entries and keeps their records; ``write`` makes the page from the records
alone (nothing is run, nothing typed by hand), so a fresh clone regenerates the same page.

    python tools/measurements.py list               # the entries, and which have records
    python tools/measurements.py run [ID ...]       # run entries (default: all but those marked on_request)
    python tools/measurements.py write [--check]    # docs/measurements.md from the records; --check: is it current?

``run`` of a ``harness`` entry runs its ``python -m harness run ...`` (or ``study run``) command with ``--out`` and
``--name`` from the entry's folder, e.g. ``--out docs/measurements --name quickstart``; keeps the records, the
experiment's or study's files and its leaderboard, not Ray Tune's folder (pickles, event files) nor checkpoints;
and writes ``run.json`` beside them: the command as run, the date, the code's revision, the command's wall time and
the machine's load average before and after (the wall time of a loaded machine is not an idle one's). A failed run
leaves the previous records as they were. A ``pair_records`` entry (``tools/pair_records.py``, the behaviour
baseline) runs only when named.

``write`` reads each entry's records (``harness.core.records.load_records``) and builds the rows with
``harness.leaderboard.build_leaderboard``: per (space, dataset, budget) and method, the test accuracy mean ± std with
the value of every seed, where it comes from (``test_source``: a trained network's test set or a benchmark look-up),
the search cost (time, or a benchmark-query search's queries), the trial's device time, the size, and for each entry
the command, the date, the wall time, and the environment of its records (``environment_summary``: torch build,
BLAS, CPU). A missing folder, a folder without records or an invalid manifest is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = Path("tools/measurements.toml")
PAGE = Path("docs/measurements.md")
RUN_FILE = "run.json"  # beside a harness entry's records: how the script ran the command
KINDS = ("harness", "pair_records")
# what `run` keeps of a harness run's folder: its records, spec and leaderboard files; never Ray Tune's own folder
KEPT_SUFFIXES = (".json", ".toml", ".csv", ".md")
DROPPED_FOLDERS = ("tune", "checkpoints", "mlruns", "wandb", "report")
CODE = ("harness", "methods", "spaces", "pyproject.toml", "constraints.txt")  # what a run's figures depend on
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class Refusal(Exception):
    """A mistake said in one line (exit status 2)."""


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    kind: str
    command: str
    records: Path  # relative to the repository root
    note: str = ""
    on_request: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)  # pair_records: dataset, budget, seed

    def argv(self) -> list[str]:
        """The command as ``run`` runs it: a harness entry's with ``--out`` and ``--name`` from its folder."""
        args = shlex.split(self.command)
        if self.kind == "harness":
            args += ["--out", self.records.parent.as_posix(), "--name", self.records.name]
        return args

    def command_run(self) -> str:
        return shlex.join(self.argv())


# --- the manifest -------------------------------------------------------------------------------
def load_manifest(root: Path) -> list[Entry]:
    path = root / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refusal(f"no manifest {MANIFEST} in {root}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise Refusal(f"{MANIFEST}: not valid TOML: {err}") from None
    raw = data.get("entry")
    if not isinstance(raw, list) or not raw:
        raise Refusal(f"{MANIFEST}: no [[entry]] tables")
    entries, seen = [], set()
    for n, item in enumerate(raw, 1):
        entries.append(_entry(item, n))
        if entries[-1].id in seen:
            raise Refusal(f"{MANIFEST}: entry id '{entries[-1].id}' appears twice")
        seen.add(entries[-1].id)
    return entries


def _entry(item: dict[str, Any], n: int) -> Entry:
    where = f"{MANIFEST}, entry {n}"
    for key in ("id", "title", "command", "records"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            raise Refusal(f"{where}: '{key}' must be a non-empty string")
    if not _ID.match(item["id"]):
        raise Refusal(f"{where}: id '{item['id']}' must be lower-case letters, digits and '-'")
    kind = item.get("kind", "harness")
    if kind not in KINDS:
        raise Refusal(f"{where}: kind '{kind}' is not one of {', '.join(KINDS)}")
    records = Path(item["records"])
    if records.is_absolute() or ".." in records.parts or len(records.parts) < 2:
        raise Refusal(f"{where}: records '{records}' must be a folder inside the repository, e.g. docs/measurements/ID")
    args = shlex.split(item["command"])
    fixed: dict[str, Any] = {}
    if kind == "harness":
        if args[:3] != ["python", "-m", "harness"] or args[3:4] not in (["run"], ["study"]):
            raise Refusal(f"{where}: a harness entry's command is 'python -m harness run ...' or 'study run ...'")
        if {"--out", "--name"} & set(args):
            raise Refusal(f"{where}: leave --out and --name out of the command: run adds them from 'records'")
    else:
        if args[:2] != ["python", "tools/pair_records.py"] or "--out" not in args or \
                args[args.index("--out") + 1:args.index("--out") + 2] != [records.as_posix()]:
            raise Refusal(f"{where}: a pair_records entry's command is 'python tools/pair_records.py --out RECORDS'")
        for key, kind_of in (("dataset", str), ("budget", str), ("seed", int)):
            if not isinstance(item.get(key), kind_of):
                raise Refusal(f"{where}: a pair_records entry names its '{key}' (the records do not)")
            fixed[key] = item[key]
    return Entry(id=item["id"], title=item["title"], kind=kind, command=item["command"], records=records,
                 note=str(item.get("note", "")), on_request=bool(item.get("on_request", False)), fixed=fixed)


def chosen(entries: list[Entry], ids: list[str]) -> list[Entry]:
    if not ids:
        return [e for e in entries if not e.on_request]
    by_id = {e.id: e for e in entries}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise Refusal(f"no entry '{unknown[0]}' in {MANIFEST} (entries: {', '.join(by_id)})")
    return [by_id[i] for i in ids]


# --- run ----------------------------------------------------------------------------------------
def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _git(root: Path, *args: str) -> str:
    """A git command's output in ``root`` ("" outside a git checkout, or when git fails)."""
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _revision(root: Path) -> str:
    """The commit the command ran, and whether the code that computes (``CODE``) had uncommitted changes."""
    head = _git(root, "rev-parse", "--short", "HEAD")
    if head and _git(root, "status", "--porcelain", "--", *CODE):
        head += " with uncommitted changes to the code"
    return head


def run_entry(entry: Entry, root: Path) -> int:
    """Run ``entry``'s command from ``root``; keep its records and ``run.json`` (harness entries). The previous
    records stay as they were unless the command succeeds."""
    from harness.cli import RAY_ENV  # imports no ray

    folder = root / entry.records
    backup = folder.with_name(f".{folder.name}.previous")
    if entry.kind == "harness" and folder.exists():
        if backup.exists():
            shutil.rmtree(backup)
        folder.rename(backup)  # the harness refuses an existing experiment; restored if the run fails
    argv = [sys.executable if entry.argv()[0] == "python" else entry.argv()[0], *entry.argv()[1:]]
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in RAY_ENV.items()}}
    print(f"== {entry.id}: {entry.command_run()}", flush=True)
    started = dt.datetime.now(dt.timezone.utc)
    load_before, clock = _load(), time.perf_counter()
    status = subprocess.run(argv, cwd=root, env=env).returncode
    wall, load_after = time.perf_counter() - clock, _load()
    if entry.kind != "harness":
        print(f"== {entry.id}: exit status {status}, {wall:.1f} s", flush=True)
        return status
    if status != 0:
        shutil.rmtree(folder, ignore_errors=True)
        if backup.exists():
            backup.rename(folder)
        print(f"== {entry.id}: exit status {status}; the previous records are kept", flush=True)
        return status
    for name in DROPPED_FOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() and (path.suffix not in KEPT_SUFFIXES or path.name.startswith(".")):
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    meta = {"id": entry.id, "command": entry.command_run(), "started_at": started.isoformat(timespec="seconds"),
            "wall_seconds": round(wall, 1), "load_before": load_before, "load_after": load_after,
            "cpu_count": os.cpu_count(), "revision": _revision(root)}
    (folder / RUN_FILE).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(backup, ignore_errors=True)
    print(f"== {entry.id}: done in {wall:.1f} s; records in {entry.records}", flush=True)
    return 0


# --- records ------------------------------------------------------------------------------------
def entry_records(entry: Entry, root: Path) -> list[dict[str, Any]]:
    """The records of ``entry``: a harness entry's trial records; a pair_records entry's files made into records
    (method and space from the file name, dataset, budget and seed from the manifest)."""
    folder = root / entry.records
    if not folder.is_dir():
        raise Refusal(f"entry '{entry.id}': records folder {entry.records} does not exist; "
                      f"run 'python tools/measurements.py run {entry.id}' first")
    if entry.kind == "harness":
        from harness.core.records import load_records

        records = load_records(folder)
    else:
        records = [pair_record(path, entry) for path in sorted(folder.glob("*.json"))]
    if not records:
        raise Refusal(f"entry '{entry.id}': no records in {entry.records}")
    seen = Counter((r.get("method"), r.get("space"), r.get("dataset"), r.get("budget"), r.get("config_hash"),
                    r.get("seed")) for r in records)
    twice = [key for key, count in seen.items() if count > 1]
    if twice:
        raise Refusal(f"entry '{entry.id}': two records of {twice[0][0]}/{twice[0][1]} seed {twice[0][5]} in "
                      f"{entry.records}; keep one")
    return records


def pair_record(path: Path, entry: Entry) -> dict[str, Any]:
    """A ``tools/pair_records.py`` file as a record. Its file keeps the figures and the configuration hash, not the
    configuration: where the configuration that today's code resolves for the pair has that hash (the same setting),
    it is attached, and so the test accuracy's source can be said (a looked-up figure: the table column the trial
    would name, checked against the kept benchmark figures); otherwise the source is left unsaid."""
    from harness.core.config import config_hash, resolve
    from harness.core.registry import get_method, get_space

    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Refusal(f"entry '{entry.id}': {path.name} is not a readable JSON file: {err}") from None
    method, _, space = path.stem.rpartition("-")
    if not isinstance(kept, dict) or not method:
        raise Refusal(f"entry '{entry.id}': {path.name} is not a pair_records file (METHOD-SPACE.json of an object)")
    record = {"method": method, "space": space, **entry.fixed, **kept}
    try:
        resolved = resolve(get_method(method), get_space(space), entry.fixed["budget"])
    except Exception:  # a pair this code no longer has: its figures are shown, their source is not said
        return record
    if config_hash(method, space, entry.fixed["dataset"], entry.fixed["budget"], resolved.values) != \
            kept.get("config_hash"):
        return record
    record["config"] = resolved.values
    space_obj = get_space(space)(resolved.values)
    if space_obj.evaluates_by_lookup():
        table = space_obj.benchmark()
        column, source = table.target_column(entry.fixed["dataset"])
        if isinstance(kept.get("benchmark"), dict) and kept["benchmark"].get(column) == kept.get("test_acc"):
            record["test_acc_source"] = f"{source} (table column {column})"
            record["benchmark_info"] = {"table": table.describe()}
        else:
            record.pop("config")  # the figure is not the column the code would look up: say nothing
    return record


# --- the page -----------------------------------------------------------------------------------
def _md(value: Any) -> str:
    from harness.leaderboard import md_text

    return md_text(value)


def _run_meta(entry: Entry, root: Path) -> dict[str, Any] | None:
    path = root / entry.records / RUN_FILE
    if entry.kind != "harness" or not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Refusal(f"entry '{entry.id}': {entry.records / RUN_FILE} is not readable JSON: {err}") from None
    if not isinstance(meta, dict):
        raise Refusal(f"entry '{entry.id}': {entry.records / RUN_FILE} is not a JSON object")
    return meta


def _git_date(root: Path, folder: Path) -> str:
    """The date of the last commit that changed ``folder`` ("" outside a git checkout)."""
    return _git(root, "log", "-1", "--format=%cs", "--", folder.as_posix())


def _dates(records: list[dict[str, Any]]) -> str:
    days = sorted({r["finished_at"][:10] for r in records if isinstance(r.get("finished_at"), str)})
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else ""


def environment_lines(records: list[dict[str, Any]]) -> list[str]:
    """Each distinct environment of ``records`` in one line (``environment_summary`` and the logical cores), with
    the number of records it made when there are several."""
    from harness.core.records import environment_summary

    counts: Counter[str] = Counter()
    for record in records:
        env = record.get("environment")
        if not isinstance(env, dict):
            counts["not recorded (the records predate the environment key)"] += 1
            continue
        line = environment_summary(env)
        cores = env.get("cpu_count")
        counts[line + (f" ({cores} logical cores)" if isinstance(cores, int) else "")] += 1
    if len(counts) == 1:
        return [next(iter(counts))]
    return [f"{line}: {n} record{'s' if n > 1 else ''}" for line, n in counts.most_common()]


def _load_text(meta: dict[str, Any]) -> str:
    """The machine's load around the command: what else was running decides whether its times are an idle
    machine's (the load at the end counts the command's own trials too)."""
    before, after, cores = meta.get("load_before"), meta.get("load_after"), meta.get("cpu_count")
    if not (isinstance(before, list) and isinstance(after, list) and before and after and isinstance(cores, int)):
        return ""
    text = (f"load average {before[0]:.1f} before the command and {after[0]:.1f} at its end (its own trials "
            f"included), on {cores} logical cores")
    if before[0] > 0.5 * cores:
        text += ": a loaded machine, so the times are longer than an idle machine's"
    return text


def _seed_key(seed: Any) -> tuple[int, Any]:
    return (0, seed) if isinstance(seed, int) else (1, str(seed))


def group_table(group: Any, records: list[dict[str, Any]]) -> list[str]:
    """One (space, dataset, budget) group's Markdown table: a row per method and variant."""
    from harness.leaderboard import (
        NULL,
        cell_text,
        duration_text,
        search_cost_text,
        test_acc_text,
        variant_of,
    )

    rows = []
    for _, row in group.iterrows():
        key = tuple(str(row[k]) for k in ("method", "space", "dataset", "budget"))
        mine = sorted((r for r in records if tuple(str(r.get(k, "")) for k in ("method", "space", "dataset", "budget"))
                       == key and variant_of(r) == str(row["variant"])), key=lambda r: _seed_key(r.get("seed")))
        method = str(row["method"]) + (f" [{row['variant']}]" if str(row["variant"]) else "")
        per_seed = ", ".join(cell_text(r.get("test_acc") if isinstance(r.get("test_acc"), (int, float)) else None, 2)
                             for r in mine)
        hours = float(row.get("device_hours_mean", math.nan))
        rows.append({
            "method": method,
            "seeds": ", ".join(str(r.get("seed")) for r in mine),
            "test acc %": test_acc_text(row) if len(mine) > 1 else per_seed,
            "per seed": per_seed if len(mine) > 1 else NULL,
            "search": search_cost_text(row),
            "trial time": duration_text(hours * 3600 if math.isfinite(hours) else None),
            "wall per trial": duration_text(row.get("wall_seconds_mean")),
            "params (M)": cell_text(row.get("params_m_mean"), 2),
            "multiply-adds (M)": cell_text(row.get("madds_m_mean"), 2),
        })
    columns = [c for c in rows[0] if any(r[c] != NULL for r in rows)]  # a column no row fills is left out
    headers = {"test acc %": "test acc % (mean ± std)" if any(r["per seed"] != NULL for r in rows) else "test acc %"}
    lines = ["| " + " | ".join(headers.get(c, c) for c in columns) + " |",
             "|" + "|".join("---" if c in ("method", "seeds") else "---:" for c in columns) + "|"]
    lines += ["| " + " | ".join(_md(r[c]) for c in columns) + " |" for r in rows]
    return lines


def entry_section(entry: Entry, root: Path, page_dir: Path) -> list[str]:
    from harness.leaderboard import build_leaderboard, duration_text, group_title

    records = entry_records(entry, root)
    meta = _run_meta(entry, root)
    df = build_leaderboard(records)
    link = os.path.relpath(root / entry.records, root / page_dir).replace(os.sep, "/") + "/"
    lines = [f"## {_md(entry.title)}", "", f"`{entry.command_run() if entry.kind == 'harness' else entry.command}`",
             ""]
    # each fact is Markdown; what comes from a record or run.json is escaped (md_text)
    count = f"{len(records)} trial{'s' if len(records) > 1 else ''}"
    facts = [f"Records: [{entry.records.as_posix()}/]({link}) ({count}; entry `{entry.id}`, rerun with "
             f"`python tools/measurements.py run {entry.id}`)"]
    if meta:
        revision = f", code {_md(meta['revision'])}" if meta.get("revision") else ""
        facts.append(f"Date: {_md(str(meta.get('started_at', ''))[:10])} (UTC){revision}")
        if isinstance(meta.get("wall_seconds"), (int, float)):
            load = _load_text(meta)
            facts.append(f"Wall time of the whole command (Ray's start included): {duration_text(meta['wall_seconds'])}"
                         + (f"; {load}" if load else ""))
    elif _dates(records):
        facts.append(f"Date: {_md(_dates(records))} (UTC, the records' finish times)")
    else:
        day = _git_date(root, entry.records)
        facts.append(f"Date: {_md(day)} (the commit that wrote the records)" if day else "Date: not recorded")
    envs = [_md(line) for line in environment_lines(records)]
    facts.append(f"Environment: {envs[0]}" if len(envs) == 1
                 else "Environments:\n" + "\n".join(f"  - {e}" for e in envs))
    lines += [f"- {fact}" for fact in facts]
    if entry.note:  # the manifest's own Markdown
        lines += ["", " ".join(entry.note.split())]
    for (space, dataset, budget), group in df.groupby(["space", "dataset", "budget"], sort=False):
        lines += ["", f"### {_md(group_title(space, dataset, budget))}", ""]
        sources = [s for s in dict.fromkeys(group["test_source"]) if s]
        unsaid = [m for m, s in zip(group["method"], group["test_source"]) if not s]
        if sources:
            lines.append(f"Test accuracy: {_md('; '.join(sources))}"
                         + (f" ({_md(', '.join(unsaid))}: not said, see the note above)." if unsaid else "."))
        searched = {m: s for m, s in zip(group["method"], group["search_source"]) if s and not s.startswith("trained")}
        for method, source in searched.items():
            lines += ["", f"Search of {_md(method)}: {_md(source)}."]
        lines += [""] + group_table(group, records)
    return lines


def page(entries: list[Entry], root: Path) -> str:
    lines = ["# Measurements", "",
             "Generated by `python tools/measurements.py write` from the records named below (the manifest: "
             "[`tools/measurements.toml`](../tools/measurements.toml)); do not edit it by hand. Every figure comes "
             "from a record kept in this repository, made by the command above it; "
             "`python tools/measurements.py run ID` makes an entry's records again.", "",
             "Budgets differ between entries, and figures of different budgets or datasets are not comparable. The "
             "smoke budget only shows that everything runs (a few steps of search and training), so its accuracies "
             "are no ranking of the methods. Times depend on the machine and on what else runs on it: each entry says "
             "its machine's load.", "",
             "In the tables: test accuracy in %, the mean ± the sample standard deviation over seeds with every "
             "seed's value; search: the search's time, or the queries of a search that queries the benchmark instead "
             "of training; trial time: search, ranking correlations and evaluation of one trial (mean over seeds); "
             "wall per trial: the whole trial as a pair_records file keeps it.", "",
             "Earlier figures, typed by hand from runs whose records were not kept: [history.md](history.md).", ""]
    for entry in entries:
        lines += entry_section(entry, root, PAGE.parent) + [""]
    return "\n".join(lines).rstrip() + "\n"


def write(root: Path, check: bool) -> int:
    entries = load_manifest(root)
    text = page(entries, root)
    target = root / PAGE
    if check:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            print(f"{PAGE} is not what the records give: run 'python tools/measurements.py write'")
            return 1
        print(f"{PAGE} is current")
        return 0
    from harness.core.records import atomic_write

    atomic_write(target, lambda f: f.write(text))  # parent folders created; a complete page or the old one
    print(f"wrote {PAGE} ({len(entries)} entries)")
    return 0


def list_entries(root: Path) -> int:
    for entry in load_manifest(root):
        folder = root / entry.records
        have = "records kept" if folder.is_dir() and any(folder.rglob("*.json")) else "no records yet"
        mark = " (on request)" if entry.on_request else ""
        print(f"{entry.id}{mark}: {have} in {entry.records}\n  {entry.command_run()}")
    return 0


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(prog="python tools/measurements.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the manifest's entries, and which have records")
    run_parser = sub.add_parser("run", help="run entries' commands and keep their records")
    run_parser.add_argument("ids", nargs="*", metavar="ID", help="entries to run (default: all but on_request ones)")
    write_parser = sub.add_parser("write", help=f"regenerate {PAGE} from the committed records")
    write_parser.add_argument("--check", action="store_true",
                              help=f"only say whether {PAGE} is current (exit 1 if not)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return list_entries(root)
        if args.command == "write":
            return write(root, args.check)
        for entry in chosen(load_manifest(root), args.ids):
            status = run_entry(entry, root)
            if status != 0:
                return status
        return write(root, check=False)
    except Refusal as err:
        print(f"measurements: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # noqa: BLE001 - a harness UserError (an unreadable records folder) is one line too
        from harness.core.errors import UserError, one_line

        if isinstance(err, UserError):
            print(f"measurements: {one_line(err)}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the harness of this checkout
    sys.exit(main())
