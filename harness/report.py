"""The comparison report of a results folder: one self-contained HTML page, its Markdown twin, CSVs and plots.

``write_report(DIR)`` reads every record under ``DIR`` (a study's folder, an experiment's, or a whole results
folder) and writes ``DIR/report/``: ``report.html`` (every plot embedded as a PNG data URI: it opens in any
browser with no server and no network), ``report.md`` (the same tables; plots as files beside it),
``leaderboard.csv`` (every statistic, ``harness.leaderboard``), ``leaderboard.tex`` (the leaderboard as booktabs
tables, ``harness.leaderboard.latex_leaderboard``) and ``plots/`` (each plot a PDF, a PNG and the CSV of exactly what
it draws, ``harness.plots``). On the page every plot is shown at its printed size (``plot_width``: a one-panel figure
about 650 pixels wide, a two-panel one twice that), never wider than the page. Per (space, dataset, budget) group,
titled with where its test accuracy comes from: the statistics over seeds against the baseline
(``harness.core.stats``), each stating its limits (an interval of fewer than 5 seeds is their range, a p-value that
cannot reach 0.05 with so few seeds says so), the notes (a search that queried a benchmark in place of training),
then the plots. A section says how each statistic is computed. The
page also carries the study file when ``DIR`` holds one, the harness version, every setting's configuration hash
and the devices the trials ran on. It is derived from the records only, so ``report`` regenerates it at any time.
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
from harness.core.published import PAPER_BUDGET, budget_note, figure_text
from harness.core.records import atomic_write_many, load_records, read_limited
from harness.core.stats import (
    BOOTSTRAP_RESAMPLES,
    CI_LABEL,
    MIN_CI_VALUES,
    MIN_IQM_VALUES,
    RANGE_LABEL,
    SIGNIFICANCE,
)
from harness.core.storage import Remote, location, relative_parts
from harness.leaderboard import (
    Notes,
    build_leaderboard,
    cell_text,
    group_title,
    interval_text,
    iqm_text,
    is_query_search,
    latex_leaderboard,
    md_text,
    p_text,
    paper_diff_text,
    paper_text,
    published_key,
    search_cost_text,
    statistics_notes,
    superscript,
    test_acc_text,
    variant_of,
    won_text,
)
from harness.plots import DPI, PlotFile, write_plots
from harness.study import STUDY_FILE

REPORT_DIR = "report"
MAX_TEXT_BYTES = 2**20  # an experiment's spec or the study file the report reads (a study file is at most 1 MiB)
# The two statistics tables of a group, the figures over seeds and the comparison with the baseline: (header, the cell
# of a leaderboard row). ``_stats_rows`` adds the method first and, where a group's rows do not share one, the test
# accuracy's source.
TEST_ACC = "test acc % mean ± std"  # its cells carry the number of their source's note, where the rows have several
STAT_COLUMNS: list[tuple[str, Any]] = [
    ("seeds", lambda r: cell_text(r["n_seeds"], 0) if r["n_seeds"] else cell_text(None, 0)),
    (TEST_ACC, test_acc_text),
    ("median", lambda r: cell_text(r["test_acc_median"], 2)),
    ("IQM", iqm_text),
    ("interval of the mean", lambda r: interval_text(r["test_acc_ci_low"], r["test_acc_ci_high"],
                                                     r["test_acc_interval"])),
    ("search cost", search_cost_text),
    ("search cost interval", lambda r: cell_text(None, 0) if is_query_search(r) else interval_text(
        _seconds(r["search_hours_ci_low"]), _seconds(r["search_hours_ci_high"]), r["search_hours_interval"],
        duration=True)),
    ("params M", lambda r: cell_text(r["params_m_mean"], 3)),
    ("op τ", lambda r: cell_text(r["op_kendall_tau_mean"], 3)),
    ("arch τ", lambda r: cell_text(r["arch_kendall_tau_mean"], 3)),
    ("one-shot τ", lambda r: cell_text(r["oneshot_kendall_tau_mean"], 3)),
]
COMPARISON_COLUMNS: list[tuple[str, Any]] = [
    ("common seeds", lambda r: cell_text(r["n_common_seeds"], 0)),
    ("p Wilcoxon", lambda r: p_text(r["p_wilcoxon"], r["p_wilcoxon_min"], r["n_common_seeds"])),
    ("p paired t", lambda r: cell_text(r["p_ttest"], 3)),
    ("p Holm", lambda r: p_text(r["p_holm"], r["p_holm_min"], r["n_common_seeds"])),
    ("effect d_z", lambda r: cell_text(r["effect_size"], 2)),
    ("seeds won", lambda r: won_text(r["seeds_won_share"], r["n_common_seeds"])),
    ("note", lambda r: str(r["comparison_note"]) if isinstance(r["comparison_note"], str) else ""),
]
# The papers' figures beside a group's rows (``harness.leaderboard.PUBLISHED_COLUMNS``): (header, the cell of a
# leaderboard row). ``_published_rows`` adds the method first; the paper's budget and source are the notes below.
PUBLISHED_TABLE: list[tuple[str, Any]] = [
    ("budget", lambda r: str(r["budget"]) if r["n_seeds"] else "—"),
    ("test acc % mean ± std", test_acc_text),
    ("interval of the mean", lambda r: interval_text(r["test_acc_ci_low"], r["test_acc_ci_high"],
                                                     r["test_acc_interval"])),
    ("paper test acc %", paper_text),
    ("paper's figure", lambda r: str(r["published_statistic"] or "—")),
    ("Δ paper (inside our interval?)", paper_diff_text),
    ("best: ours / paper", lambda r: f"{cell_text(r['test_acc_best'], 2)} / "
                                     f"{_published(r['published_test_acc_best'])}"),
    ("params M: ours / paper", lambda r: f"{cell_text(r['params_m_mean'], 2)} / {_published(r['published_params_m'])}"),
    ("search: ours / paper", lambda r: f"{search_cost_text(r) if r['n_seeds'] else '—'} / "
                                       f"{r['published_search_cost'] or '—'}"),
]
# How each number of the report is computed, said on the page (HTML and Markdown).
HOW = [
    "Every figure is computed from the trial records under the folder, over the seeds of a row (a seed that two "
    "folders hold counts once, its newest record); only finite values count.",
    "mean ± std: the mean and the sample standard deviation (ddof 1) over seeds; median over seeds.",
    f"IQM: interquartile mean, the mean of the middle 50 % (scipy.stats.trim_mean(x, 0.25)); with fewer than "
    f"{MIN_IQM_VALUES} seeds nothing is trimmed and it equals the mean (said in the cell).",
    f"interval of the mean: from {MIN_CI_VALUES} seeds on, the {CI_LABEL} (percentile bootstrap of the mean, "
    f"{BOOTSTRAP_RESAMPLES} resamples, seeded: the same records give the same interval); with fewer seeds the "
    f"{RANGE_LABEL} of the seeds, min to max, labelled so: a bootstrap of 3 seeds gives their range anyway, and "
    "no honest 95 % interval comes from so few.",
    "search cost: the mean search time per seed in readable units (the search alone: not the correlations, the "
    "final training or a teacher); for a search that queries a benchmark in place of training, its number of "
    "queries — the benchmark gives no training times to simulate it with, and the look-ups' milliseconds are no "
    "cost to compare.",
    "p Wilcoxon: two-sided Wilcoxon signed-rank test (scipy.stats.wilcoxon, exact for small samples, zero "
    "differences dropped) of the test accuracy against the baseline on the seeds both have, paired by seed. Its "
    f"smallest possible value with n common seeds is 2/2ⁿ (n = 3: 0.25; n = 5: 0.0625; 6 seeds are the fewest "
    f"that can reach {SIGNIFICANCE:g}), and so is the sign test's; where it cannot reach {SIGNIFICANCE:g} the "
    "cell says so instead of giving a number.",
    "p paired t: two-sided paired t-test (scipy.stats.ttest_rel) on the same seeds; it has no such floor but "
    "assumes normally distributed differences, which a handful of seeds cannot show.",
    "p Holm: the Wilcoxon p-values of a group's rows adjusted by Holm's step-down method over the rows compared "
    "with the baseline (at least the number of rows times the smallest attainable p).",
    "effect d_z: Cohen's d_z, the mean of the paired differences over their standard deviation.",
    "seeds won: of the common seeds, those where the row's test accuracy beats the baseline's (a tie counts "
    "half) — a count, not a probability of beating it.",
    "test accuracy's source (in each group's title): a benchmark's figure looked up for the derived cell (which "
    "dataset and how many training epochs, as the benchmark states them), or the final network trained on the "
    "search dataset for the recorded number of epochs and tested once on its test split.",
    "published figures: what the papers report for the same method, space and dataset (searched and tested on it), "
    "copied from their tables into harness/core/published.toml ('python -m harness published' lists them), as "
    "printed; a published test or top-1 error e is the test accuracy 100 − e. Δ paper: our mean − the published "
    "mean (an average, or one figure where the paper gives no more); 'inside' where the published mean lies in our "
    f"interval of the mean. The papers ran at their own budgets: a row of another budget than '{PAPER_BUDGET}' says "
    "so, and its difference measures the budget as much as the method.",
]
# A figure is as wide as its image (its caption wraps under it: a table box), images at their printed size
# (``plot_width``) and never wider than the page; two one-panel figures sit side by side where the page is wide enough.
STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1400px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
figure{display:inline-table;margin:1em 1.5em 1em 0;vertical-align:top;max-width:100%}
figcaption{display:table-caption;caption-side:bottom;font-size:13px;color:#444;padding-top:.3em}
img{max-width:100%;height:auto;border:1px solid #ddd}pre{background:#f7f7f7;padding:1em;overflow-x:auto}
p.note{font-size:13px;color:#444;margin:.2em 0;max-width:1100px}"""
SCREEN_DPI = 100  # CSS pixels per inch a plot is shown at: its printed size (``harness.plots.DPI`` pixels per inch)


def plot_width(png: bytes) -> int:
    """The width in CSS pixels a plot's PNG is shown at: its printed size, ``SCREEN_DPI`` per inch of the figure (the
    PNG's pixel width, from its header, over ``harness.plots.DPI``), so that every figure has the same scale and a
    two-panel figure is shown twice as wide as a one-panel one instead of squeezed to the same width."""
    return round(int.from_bytes(png[16:20], "big") * SCREEN_DPI / DPI)


def _group_name(space: str, dataset: str, budget: str) -> str:
    """The group's key as the plots name it (``harness.plots``: "nb201 / digits / smoke")."""
    return f"{space} / {dataset} / {budget}"


def _seconds(hours: Any) -> float | None:
    return float(hours) * 3600.0 if isinstance(hours, (int, float)) and math.isfinite(hours) else None


def _published(value: Any) -> str:
    """A published figure as printed (``figure_text``); "—" where there is none."""
    return figure_text(float(value)) if isinstance(value, (int, float)) and math.isfinite(value) else "—"


def _published_rows(board: pd.DataFrame, names: dict[tuple[str, str], str], notes: Notes
                    ) -> tuple[list[str], list[list[str]], list[str]] | None:
    """The "Published figures" table of one group: headers, a row per leaderboard row with a published figure
    beside it (``PUBLISHED_TABLE``; the paper's cell marked with its source's note), and the lines below it: each
    source with the paper's budget, what the columns mean and, where a row's budget is not the papers', that it is
    not. None where no row has one."""
    board = board[[published_key(row) is not None for _, row in board.iterrows()]]
    if not len(board):
        return None
    headers = ["method"] + [header for header, _ in PUBLISHED_TABLE]

    def cell(header: str, fill: Any, row: pd.Series) -> str:
        mark = notes.published_mark(row) if header == "paper test acc %" else None
        return fill(row) + (superscript(mark) if mark else "")

    rows = [[_label(row, names, notes)] + [cell(header, fill, row) for header, fill in PUBLISHED_TABLE]
            for _, row in board.iterrows()]
    lines = [f"{superscript(n)} {source}; the paper's budget: {budget}"
             for (source, budget), n in notes.published.items()]
    for _, row in board.iterrows():  # the row's own notes; its budget is said once, below
        note = str(row["published_note"]).removesuffix(budget_note(str(row["budget"]))).rstrip("; ")
        if note:
            lines.append(f"{_label(row, names)}: {note}")
    return headers, rows, lines + notes.published_lines


def _label(row: pd.Series, names: dict[tuple[str, str], str], notes: Notes | None = None) -> str:
    """A row's name: the study's variant name where the records came from a study cell, else method [variant];
    with the number of its note where its search queried a benchmark (``Notes``)."""
    named = names.get((str(row["method"]), str(row["variant"])))
    label = named or str(row["method"]) + (f" [{row['variant']}]" if str(row["variant"]) else "")
    mark = notes.query_mark(row) if notes is not None else None
    return label + (superscript(mark) if mark else "")


def _stats_rows(board: pd.DataFrame, names: dict[tuple[str, str], str], notes: Notes,
                columns: list[tuple[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """A statistics table of one group: headers and rows of ``columns`` (``STAT_COLUMNS``: with the test accuracy's
    source where the group's rows do not share one; ``COMPARISON_COLUMNS``: the rows compared with the
    baseline)."""
    if columns is STAT_COLUMNS and notes.shared_source is None:
        columns = [columns[0], ("test accuracy source", lambda r: str(r["test_source"] or "")), *columns[1:]]
    if columns is COMPARISON_COLUMNS:
        board = board[board["baseline"].astype(str) != ""]  # not the reference rows
    headers = ["method"] + [header for header, _ in columns]

    def mark(header: str, row: pd.Series) -> str:
        number = notes.source_mark(row) if header == TEST_ACC else None
        return superscript(number) if number else ""

    rows = [[_label(row, names, notes)] + [cell(row) + mark(header, row) for header, cell in columns]
            for _, row in board.iterrows()]
    return headers, rows


def _group_heading(key: tuple[str, str, str], notes: Notes) -> str:
    """A group's title: its space, search dataset and budget, and where its test accuracy comes from."""
    title = group_title(*key)
    return f"{title} — test accuracy: {notes.shared_source}" if notes.shared_source else title


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
    ``markdown``, ``latex``, ``plots``, ``csvs``). No record is one line (``UserError``). On an object store the
    report is made in a local temporary folder and then uploaded, file by file (``Place.fill``)."""
    root = location(root)
    records = [r for r in load_records(root) if REPORT_DIR not in relative_parts(location(r["_path"]), root)]
    if not records:
        raise UserError(f"no trial records under {root}; run an experiment or a study first")
    written, moved = place(root / REPORT_DIR).fill(lambda out: _write_report(root, records, out, baseline),
                                                   "the report")
    return {"html": moved(written["html"]), "markdown": moved(written["markdown"]), "latex": moved(written["latex"]),
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
                  f"<b>{html.escape(baseline)}</b>. How each statistic is computed: "
                  "<a href='#how'>below</a>. The leaderboard as LaTeX tables: <code>leaderboard.tex</code>.</p>"]
    parts_md = [f"# {md_text(title)}\n", f"Generated {generated} by nas-harness {__version__} from {len(records)} "
                f"trial records under {md_text(root)}. Baseline of the paired tests: **{md_text(baseline)}**. How "
                "each statistic is computed: at the end. The leaderboard as LaTeX tables: `leaderboard.tex`.\n"]
    for key, group in board.groupby(["space", "dataset", "budget"], sort=True):
        name = _group_name(*key)
        notes = Notes.of(group)
        heading = _group_heading(key, notes)
        lines = ([f"{superscript(n)} {text}" for n, text in notes.texts.items() if n not in notes.published.values()]
                 + statistics_notes(group, baseline))
        figures, comparison = (_stats_rows(group, names, notes, c) for c in (STAT_COLUMNS, COMPARISON_COLUMNS))
        parts_html += [f"<h2>{html.escape(heading)}</h2>", _html_table(*figures),
                       f"<h3>Compared with {html.escape(baseline)}, seed by seed</h3>", _html_table(*comparison)]
        parts_html += [f"<p class=note>{html.escape(line)}</p>" for line in lines]
        parts_md += [f"## {md_text(heading)}\n", _md_table(*figures),
                     f"### Compared with {md_text(baseline)}, seed by seed\n", _md_table(*comparison)]
        parts_md += ["".join(md_text(line) + "  \n" for line in lines)]
        published = _published_rows(group, names, notes)
        if published is not None:
            headers, rows, below = published
            parts_html += ["<h3>Published figures</h3>", _html_table(headers, rows)]
            parts_html += [f"<p class=note>{html.escape(line)}</p>" for line in below]
            parts_md += ["### Published figures\n", _md_table(headers, rows),
                         "".join(md_text(line) + "  \n" for line in below)]
        for plot in [p for p in plots if p.group == name]:
            png = plot.png.read_bytes()
            data = base64.b64encode(png).decode("ascii")
            rel_csv, rel_pdf = plot.csv.relative_to(out).as_posix(), plot.pdf.relative_to(out).as_posix()
            parts_html.append(f"<figure><img alt='{html.escape(plot.title)}' width='{plot_width(png)}' "
                              f"src='data:image/png;base64,{data}'>"
                              f"<figcaption>{html.escape(plot.title)} (<a href='{html.escape(rel_pdf)}'>PDF</a>, "
                              f"data: <code>{html.escape(rel_csv)}</code>)</figcaption></figure>")
            parts_md.append(f"![{md_text(plot.title)}]({plot.png.relative_to(out).as_posix()}) ([PDF]({rel_pdf}), "
                            f"data: `{rel_csv}`)\n")
    settings = sorted({(str(r.get("method")), variant_of(r), str(r.get("space")), str(r.get("dataset")),
                        str(r.get("budget")), str(r.get("config_hash"))) for r in records})
    setting_rows = [[names.get((m, v), m + (f" [{v}]" if v else "")), s, d, b, h] for m, v, s, d, b, h in settings]
    setting_headers = ["method", "space", "dataset", "budget", "config hash"]
    devices = sorted({str(r.get("device")) for r in records if r.get("device")})
    parts_html += ["<h2 id='how'>How each statistic is computed</h2>",
                   "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in HOW) + "</ul>"]
    parts_md += ["## How each statistic is computed\n", "".join(f"- {md_text(line)}\n" for line in HOW)]
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
    latex = latex_leaderboard(board)
    html_path, md_path, csv_path = out / "report.html", out / "report.md", out / "leaderboard.csv"
    tex_path = out / "leaderboard.tex"
    atomic_write_many({html_path: (lambda f: f.write(page), False), md_path: (lambda f: f.write(markdown), False),
                       csv_path: (lambda f: f.write(csv_text), False), tex_path: (lambda f: f.write(latex), False)})
    return {"html": html_path, "markdown": md_path, "latex": tex_path, "plots": [p.png for p in plots],
            "csvs": [csv_path] + [p.csv for p in plots]}

