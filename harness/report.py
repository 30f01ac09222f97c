"""The comparison report of a results folder: one self-contained HTML page, its Markdown twin, CSVs and plots.

``write_report(DIR)`` reads every record under ``DIR`` (a study's folder, an experiment's, or a whole results
folder) and writes ``DIR/report/``: ``report.html`` (every plot embedded as a PNG data URI: it opens in any
browser with no server and no network), ``report.md`` (the same tables; plots as files beside it),
``leaderboard.csv`` (every statistic, ``harness.leaderboard``) and ``plots/`` (each plot a PNG and the CSV of
exactly what it draws, ``harness.plots``). Per (space, dataset, budget) group: the statistics over seeds
against the baseline (``harness.core.stats``), then the plots. The page also carries the study file when ``DIR``
holds one, the harness version, every setting's configuration hash and the devices the trials ran on. It is
derived from the records only, so ``report`` regenerates it at any time.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import html
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from harness import __version__
from harness.core.config import BASELINE_METHOD
from harness.core.errors import UserError, one_line
from harness.core.places import place
from harness.core.records import atomic_write_many, load_records, read_limited
from harness.core.storage import Remote, location, relative_parts
from harness.leaderboard import build_leaderboard, cell_text, md_text, variant_of
from harness.plots import PlotFile, write_plots
from harness.study import STUDY_FILE

REPORT_DIR = "report"
MAX_TEXT_BYTES = 2**20  # an experiment's spec or the study file the report reads (a study file is at most 1 MiB)
# (column, header, decimals) of the statistics table, where the leaderboard has the column
STAT_COLUMNS = [
    ("n_seeds", "seeds", 0), ("test_acc_mean", "test acc % mean", 2), ("test_acc_std", "std", 2),
    ("test_acc_median", "median", 2), ("test_acc_iqm", "IQM", 2), ("test_acc_ci_low", "95 % CI low", 2),
    ("test_acc_ci_high", "95 % CI high", 2), ("search_hours_mean", "search h", 4),
    ("search_hours_ci_low", "search h CI low", 4), ("search_hours_ci_high", "search h CI high", 4),
    ("params_m_mean", "params M", 3), ("op_kendall_tau_mean", "op τ", 3), ("arch_kendall_tau_mean", "arch τ", 3),
    ("oneshot_kendall_tau_mean", "one-shot τ", 3), ("n_common_seeds", "common seeds", 0),
    ("p_wilcoxon", "p Wilcoxon", 3), ("p_ttest", "p paired t", 3), ("p_holm", "p Holm", 3),
    ("effect_size", "effect d_z", 2), ("p_beats_baseline", "P(beats baseline)", 2), ("comparison_note", "note", 0),
]
STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{display:inline-block;margin:1em;vertical-align:top}figcaption{font-size:13px;color:#444}
img{max-width:640px;border:1px solid #ddd}pre{background:#f7f7f7;padding:1em;overflow-x:auto}"""


def _group_name(space: str, dataset: str, budget: str) -> str:
    return f"{space} / {dataset} / {budget}"


def _label(row: pd.Series, names: dict[tuple[str, str], str]) -> str:
    """A row's name: the study's variant name where the records came from a study cell, else method [variant]."""
    named = names.get((str(row["method"]), str(row["variant"])))
    if named:
        return named
    return str(row["method"]) + (f" [{row['variant']}]" if str(row["variant"]) else "")


def _text(value: Any, decimals: int) -> str:
    if decimals == 0 and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(int(value))
    return cell_text(value, decimals) if not isinstance(value, str) else value


def _stats_rows(board: pd.DataFrame, names: dict[tuple[str, str], str]) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in STAT_COLUMNS if c[0] in board.columns]
    headers = ["method"] + [header for _, header, _ in columns]
    rows = [[_label(row, names)] + [_text(row[c], d) for c, _, d in columns] for _, row in board.iterrows()]
    return headers, rows


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td{' class=num' if k else ''}>{html.escape(cell)}</td>"
                                    for k, cell in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    rule = "|" + "|".join("---" if k == 0 else "---:" for k in range(len(headers))) + "|"
    lines = ["| " + " | ".join(md_text(h) for h in headers) + " |", rule]
    lines += ["| " + " | ".join(md_text(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _md_code(text: str, language: str = "") -> str:
    """``text`` as a fenced code block whose fence no run of backticks in it can close."""
    fence = "`" * max(3, 1 + max((len(run) for run in re.findall(r"`+", text)), default=0))
    return f"{fence}{language}\n{text.rstrip()}\n{fence}\n"


def _read_text(path: Path | Remote, what: str) -> str | None:
    """A small text file of the results folder (a spec, the study file), read at most ``MAX_TEXT_BYTES``; None, with
    one warning line, when it cannot be read."""
    try:
        return read_limited(path, MAX_TEXT_BYTES, what).decode("utf-8")
    except (UserError, OSError, UnicodeDecodeError) as err:
        print(f"warning: {what} {path} left out: {one_line(err, 300)}", file=sys.stderr)
        return None


def _study_names(root: Path | Remote) -> dict[tuple[str, str], str]:
    """(method, variant) → the study's cell name, from the cells' experiment specs under ``root``."""
    names: dict[tuple[str, str], str] = {}
    for spec_path in root.rglob("experiment.json"):
        text = _read_text(spec_path, "experiment spec")
        try:
            spec = json.loads(text) if text is not None else None
        except (ValueError, RecursionError):
            continue
        if isinstance(spec, dict) and spec.get("cell") and isinstance(spec.get("overrides"), (dict, type(None))):
            names[(str(spec.get("method")), variant_of(spec))] = str(spec["cell"])
    return names


def replace_plots(records: list[dict[str, Any]], folder: Path, tables: dict[str, Any] | None = None) -> list[PlotFile]:
    """``write_plots`` into a fresh folder that then takes the place of ``folder``: a regenerated report keeps no
    plot of an earlier one (a series renamed or gone), and a failure (a full disk) leaves the old plots whole and
    no fresh folder behind."""
    fresh = folder.with_name(f".{folder.name}-new-{os.getpid()}")
    old = folder.with_name(f".{folder.name}-old-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        plots = write_plots(records, fresh, tables)
        if folder.exists():
            folder.rename(old)
        try:
            fresh.rename(folder)
        except BaseException:
            if old.exists() and not folder.exists():
                old.rename(folder)
            raise
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return [dataclasses.replace(p, png=folder / p.png.name, csv=folder / p.csv.name) for p in plots]


def write_report(root: Path | Remote | str, baseline: str = BASELINE_METHOD) -> dict[str, Any]:
    """Write ``root/report/`` from every record under ``root``; returns the paths written (``html``,
    ``markdown``, ``plots``, ``csvs``). No record is one line (``UserError``). On an object store the report is
    made in a local temporary folder and then uploaded, file by file (``Place.fill``)."""
    root = location(root)
    records = [r for r in load_records(root) if REPORT_DIR not in relative_parts(location(r["_path"]), root)]
    if not records:
        raise UserError(f"no trial records under {root}; run an experiment or a study first")
    written, moved = place(root / REPORT_DIR).fill(lambda out: _write_report(root, records, out, baseline),
                                                   "the report")
    return {"html": moved(written["html"]), "markdown": moved(written["markdown"]),
            "plots": [moved(p) for p in written["plots"]], "csvs": [moved(p) for p in written["csvs"]]}


def _write_report(root: Path | Remote, records: list[dict[str, Any]], out: Path, baseline: str) -> dict[str, Any]:
    """``write_report`` into the local folder ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, Any] = {}  # the benchmark tables, shared by the optimum rows and the plots
    board = build_leaderboard(records, reference=True, baseline=baseline, tables=tables)
    names = _study_names(root)
    for record in records:  # the plots name a series as the tables do: by its study's name where it has one
        named = names.get((str(record.get("method")), variant_of(record)))
        if named:
            record["_label"] = named
    plots = replace_plots(records, out / "plots", tables)
    csv_text = board.to_csv(index=False)

    generated = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    title = f"NAS comparison report: {root.name}"
    parts_html = [f"<h1>{html.escape(title)}</h1>",
                  f"<p>Generated {generated} by nas-harness {html.escape(__version__)} from {len(records)} trial "
                  f"records under <code>{html.escape(str(root))}</code>. Baseline of the paired tests: "
                  f"<b>{html.escape(baseline)}</b> (Wilcoxon signed-rank and paired t-test over the seeds both have, "
                  "Holm's correction over the methods of a group; effect size Cohen's d_z; 95 % intervals: "
                  "seeded percentile bootstrap of the mean).</p>"]
    parts_md = [f"# {md_text(title)}\n", f"Generated {generated} by nas-harness {__version__} from {len(records)} "
                f"trial records under {md_text(root)}. Baseline of the paired tests: **{md_text(baseline)}**.\n"]
    for key, group in board.groupby(["space", "dataset", "budget"], sort=True):
        name = _group_name(*key)
        headers, rows = _stats_rows(group, names)
        parts_html += [f"<h2>{html.escape(name)}</h2>", _html_table(headers, rows)]
        parts_md += [f"## {md_text(name)}\n", _md_table(headers, rows)]
        for plot in [p for p in plots if p.group == name]:
            data = base64.b64encode(plot.png.read_bytes()).decode("ascii")
            rel_csv, rel_pdf = plot.csv.relative_to(out).as_posix(), plot.pdf.relative_to(out).as_posix()
            parts_html.append(f"<figure><img alt='{html.escape(plot.title)}' src='data:image/png;base64,{data}'>"
                              f"<figcaption>{html.escape(plot.title)} (<a href='{html.escape(rel_pdf)}'>PDF</a>, "
                              f"data: <code>{html.escape(rel_csv)}</code>)</figcaption></figure>")
            parts_md.append(f"![{md_text(plot.title)}]({plot.png.relative_to(out).as_posix()}) ([PDF]({rel_pdf}), "
                            f"data: `{rel_csv}`)\n")
    settings = sorted({(str(r.get("method")), variant_of(r), str(r.get("space")), str(r.get("dataset")),
                        str(r.get("budget")), str(r.get("config_hash"))) for r in records})
    setting_rows = [[names.get((m, v), m + (f" [{v}]" if v else "")), s, d, b, h] for m, v, s, d, b, h in settings]
    setting_headers = ["method", "space", "dataset", "budget", "config hash"]
    devices = sorted({str(r.get("device")) for r in records if r.get("device")})
    parts_html += ["<h2>Settings and devices</h2>", _html_table(setting_headers, setting_rows),
                   "<p>Devices: " + html.escape("; ".join(devices) or "not recorded") + "</p>"]
    parts_md += ["## Settings and devices\n", _md_table(setting_headers, setting_rows),
                 "Devices: " + md_text("; ".join(devices) or "not recorded") + "\n"]
    study_file = root / STUDY_FILE
    text = _read_text(study_file, "study file") if study_file.is_file() else None
    if text is not None:
        parts_html += ["<h2>Study file</h2>", f"<pre>{html.escape(text)}</pre>"]
        parts_md += ["## Study file\n", _md_code(text, "toml")]
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(parts_html) + "</body></html>\n")
    markdown = "\n".join(parts_md)
    html_path, md_path, csv_path = out / "report.html", out / "report.md", out / "leaderboard.csv"
    atomic_write_many({html_path: (lambda f: f.write(page), False), md_path: (lambda f: f.write(markdown), False),
                       csv_path: (lambda f: f.write(csv_text), False)})
    return {"html": html_path, "markdown": md_path, "plots": [p.png for p in plots],
            "csvs": [csv_path] + [p.csv for p in plots]}

