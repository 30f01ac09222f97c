"""The leaderboard's views as a reader meets them (issue 29): laid out for 80, 120 and 200 columns and for a pipe
without cutting a number or a name, ``--columns``, where each figure comes from (a benchmark look-up or a trained
network; a search that queried the benchmark), the statistics' limits in every cell, costs in readable units, and
the LaTeX tables (escaped, best in bold, the protocol below)."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess

import numpy as np
import pytest
from rich.console import Console

from harness.cli import main
from harness.console import PIPE_WIDTH, layout_width, make_console
from harness.core.benchmarks.nb201 import load_table
from harness.core.errors import UserError
from harness.core.records import write_record
from harness.leaderboard import (
    DEFAULT_COLUMNS,
    build_leaderboard,
    count_text,
    duration_text,
    interval_text,
    latex_leaderboard,
    latex_text,
    leaderboard_table,
    markdown_leaderboard,
    p_text,
    parse_columns,
    search_cost_text,
    view_width,
    won_text,
)
from spaces.nb201 import NB201Space

LOOKUP_SOURCE = ("NAS-Bench-201 {dataset} test accuracy of the derived cell: the search dataset 'digits' is not one of "
                 "the benchmark's datasets (table column {column})")
CELLS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|avg_pool_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
         "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_1x1~2|",
         "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
         "|nor_conv_1x1~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"]


def nb201_record(table, method: str, seed: int, cell: str, **extra) -> dict:
    """A record as a look-up trial on NAS-Bench-201 writes it (searched on digits, CIFAR-10 test figure)."""
    genotype = NB201Space({}).parse(cell)
    record = {"method": method, "space": "nb201", "dataset": "digits", "budget": "smoke", "seed": seed,
              "overrides": {}, "genotype": cell, "test_acc": table.figures(genotype)["cifar10_test"],
              "test_acc_source": LOOKUP_SOURCE.format(dataset="cifar10", column="cifar10_test"),
              "config": {"eval": "lookup", "eval_epochs": 4, "rs_candidates": 3},
              "benchmark_info": {**table.locate(genotype), "table": table.describe()},
              "search_seconds": 1.0 + seed, "finished_at": "2026-12-07T00:00:00+00:00"}
    record.update(extra)
    return record


def random_records(table, seeds: int = 3) -> list[dict]:
    """Random search on NAS-Bench-201: three benchmark queries per seed, nothing trained (about 0.4 ms of look-ups)."""
    out = []
    for seed in range(seeds):
        record = nb201_record(table, "random", seed, CELLS[seed], search_seconds=0.0004 + 0.0001 * seed)
        record["history"] = [{"phase": "search", "epoch": e, "val_acc": 80.0 + e, "genotype": CELLS[e]}
                             for e in range(3)]
        out.append(record)
    return out


@pytest.fixture(scope="module")
def table():
    return load_table("default")


LONG = "proxyless"  # with its variant: "proxyless [cost=latency]"


@pytest.fixture(scope="module")
def records(table):
    """darts, gdas and random on NAS-Bench-201 (3 seeds; darts derives a cell of pooling: a wide std), and a variant
    on a long folder dataset trained on the DARTS space."""
    out = [nb201_record(table, "darts", s, CELLS[(1, 3, 4)[s]]) for s in range(3)]
    out += [nb201_record(table, "gdas", s, CELLS[(5, 0, 3)[s]]) for s in range(3)] + random_records(table)
    out += [{"method": LONG, "space": "darts", "dataset": "folder:/data/my_images", "budget": "smoke", "seed": s,
             "overrides": {"cost": "latency"}, "test_acc": 70.04 + 28.0 * (s == 0) - 14.0 * (s == 2),
             "test_acc_source": "the final network trained from scratch (4 epochs), tested once on folder:/data/…",
             "config": {"eval_epochs": 4}, "search_seconds": 5400.0, "params_m": 1.5, "latency_ms": 3.0 + s}
            for s in range(3)]
    return out


@pytest.fixture(scope="module")
def board(records):
    return build_leaderboard(records)


def _render(renderable, width: int) -> str:
    console = Console(record=True, width=width, file=io.StringIO())  # markup on: names must still print as they are
    console.print(renderable)
    return console.export_text()


def _whole(text: str, board) -> None:
    """Every mean ± std of the test accuracy and every method name appears whole on one line, nothing is cut."""
    lines = text.splitlines()
    assert "…" not in text
    for _, row in board.iterrows():
        acc = f"{row['test_acc_mean']:.2f} ± {row['test_acc_std']:.2f}"
        assert any(acc in line for line in lines), acc
        assert any(re.search(rf"(^|\s){re.escape(row['method'])}(\W|$)", line) for line in lines), row["method"]


# --- width ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [80, 120, 200])
def test_no_number_or_name_is_cut_at_any_width(board, width):
    text = _render(leaderboard_table(board, "leaderboard of /results/a-long-folder-name (12 records)"), width)
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    _whole(text, board)
    for header in ("rank", "method", "space", "search dataset", "budget", "seeds", "test acc %", "best",
                   "search cost", "params M", "MAdds M", "latency ms", "op τ", "p (Wilcoxon, Holm)", "seeds won"):
        assert header in text, header  # every column is somewhere: the ones that do not fit go to a further table
    assert "folder:/data/my_images" in text and "cost=latency" in text
    assert "leaderboard of /results/a-long-folder-name (12 records)" in " ".join(text.split())  # the title wraps
    first = text.split("(continued")[0]
    for header in ("method", "space", "search dataset", "test acc %"):  # the essential columns: in the first table
        assert header in first
    # a further table repeats only the method (room for the rest); at 200 columns the first table is 191 wide and
    # "seeds won" alone goes to a second one
    assert len(text.split("(continued")) == {80: 4, 120: 3, 200: 2}[width]


def test_a_pipe_is_laid_out_for_columns_or_120(board, monkeypatch):
    piped = Console(file=io.StringIO(), width=160)  # what the commands print through in a pipe (not a terminal)
    monkeypatch.delenv("COLUMNS", raising=False)
    assert not piped.is_terminal and view_width(piped) == 120
    monkeypatch.setenv("COLUMNS", "80")
    assert view_width(piped) == 80
    monkeypatch.setenv("COLUMNS", "300")
    assert view_width(piped) == 160  # never wider than the console prints
    monkeypatch.setenv("COLUMNS", "7")
    assert view_width(Console(file=io.StringIO(), width=200)) == 40  # a width no table fits: the smallest sensible


def test_the_command_in_a_pipe_never_cuts(tmp_path, records, board, capsys, monkeypatch):
    for k, record in enumerate(records):
        write_record(tmp_path / "exp" / "trials" / f"r{k}.json", record)
    for columns, width in ((None, 120), ("80", 80), ("200", 200)):
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        assert main(["leaderboard", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        widest = max(len(line.rstrip()) for line in out.splitlines())
        assert widest <= width
        if width == 200:  # laid out at COLUMNS, not at a fixed pipe width (the first table is 191 wide)
            assert widest > 160
        _whole(out, board)
        notes = " ".join(out.split())
        assert "test acc %: " not in out  # two sources: numbered notes, one per source
        assert "¹ test accuracy: folder:/data/my_images test, network trained 4 epochs" in notes
        assert "² test accuracy: NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up" in notes
        assert "³ random searched by benchmark queries" in notes and "random³" in out


def test_the_console_is_as_wide_as_the_views_are_laid_out(monkeypatch):
    """One rule for the width (``harness.console.layout_width``): COLUMNS where set (at least 40), else the
    terminal's width, else 120 in a pipe; the commands' console is built that wide, so that its titles and notes
    wrap where the tables are laid out."""
    assert layout_width(False, 93, {}) == PIPE_WIDTH == 120 and layout_width(True, 93, {}) == 93
    assert layout_width(False, 93, {"COLUMNS": "200"}) == layout_width(True, 93, {"COLUMNS": "200"}) == 200
    assert layout_width(False, 93, {"COLUMNS": "7"}) == 40 and layout_width(False, 93, {"COLUMNS": "wide"}) == 120
    monkeypatch.setattr("sys.stdout", io.StringIO())  # a pipe, even where pytest runs in a terminal with -s
    for columns, width in ((None, 120), ("80", 80), ("200", 200), ("7", 40)):
        if columns is None:
            monkeypatch.delenv("COLUMNS", raising=False)
        else:
            monkeypatch.setenv("COLUMNS", columns)
        console = make_console()
        assert not console.is_terminal and console.width == view_width(console) == width


def test_the_trials_table_never_cuts_a_long_record_name(records):
    """The run's table of trials at 80 columns: a record of a long ``folder:`` dataset's name wraps in the first table
    and is not repeated in the further ones (the seed names the row); no line is wider, no figure is cut."""
    from types import SimpleNamespace

    from harness.summary import trials_table

    name = "proxyless-darts-folder-home-someone-datasets-a-very-long-dataset-name-of-images-at-64px-s{}.json"
    mine = [{**record, "_path": f"/results/exp/trials/{name.format(record['seed'])}", "search_val_acc": 50.0 + s,
             "params_m": 1.5, "op_kendall_tau": 0.25, "eval_seconds": 600.0}
            for s, record in enumerate(r for r in records if r["method"] == LONG)]
    console = Console(record=True, width=80, file=io.StringIO())
    trials_table(SimpleNamespace(name="exp"), mine, console)
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80 and "…" not in text
    joined = "".join(text.split())  # the name's pieces, wrapped in the first table (seed and record), in order
    for record in mine:
        assert record["_path"].rsplit("/", 1)[1] in joined
    assert joined.count(name.format(0)) == 1  # not repeated in a further table
    for figure in ("50.00", "1.500", "0.250", "1.50 h", "10.0 min"):  # search val %, params, op τ, times
        assert figure in text, figure


# --- --columns ----------------------------------------------------------------------------------------------------
def test_columns_selects_and_orders_the_columns(board):
    text = _render(leaderboard_table(board, "board", columns=["dataset", "test_acc", "search", "p_ttest"]), 200)
    header = next(line for line in text.splitlines() if "method" in line)
    assert header.split() == ["method", "search", "dataset", "test", "acc", "%", "search", "cost", "p", "paired", "t"]
    assert "rank" not in header and "seeds won" not in text
    assert "3 queries" in text and "1.50 h" in text  # the cost of a query search and of a trained one
    narrow = _render(leaderboard_table(board, "board", columns=["test_acc", "iqm", "interval", "seed_list",
                                                                "search_source"]), 80)
    assert "(range)" in narrow and "0,1,2" in narrow and "benchmark queries: 3 per seed" in " ".join(narrow.split())
    assert max(len(line) for line in narrow.splitlines()) <= 80


def test_an_unknown_column_is_one_line_with_the_closest_name(tmp_path, records, capsys):
    assert parse_columns(None) is None
    assert parse_columns("test_acc, search ,p_holm") == ["test_acc", "search", "p_holm"]  # any CSV column too
    with pytest.raises(UserError, match="unknown column 'tset_acc'; did you mean 'test_acc'"):
        parse_columns("method,tset_acc")
    with pytest.raises(UserError, match="empty"):
        parse_columns(" , ")
    write_record(tmp_path / "exp" / "trials" / "r.json", records[0])
    assert main(["leaderboard", str(tmp_path), "--columns", "method,serch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'search'" in err
    assert not (tmp_path / "leaderboard.csv").exists()  # refused before anything is written
    assert set(DEFAULT_COLUMNS) <= set(p.strip() for p in err.split("valid: ")[1].split(" or ")[0].split(","))


# --- provenance ---------------------------------------------------------------------------------------------------
def test_every_row_says_where_its_test_accuracy_comes_from(board, table, capsys):
    rows = board.set_index("method")
    for method in ("darts", "gdas", "random"):
        assert rows.loc[method, "test_source"] == "NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up"
        assert rows.loc[method, "dataset"] == "digits"  # the search dataset, a column of its own
    assert rows.loc[LONG, "test_source"] == "folder:/data/my_images test, network trained 4 epochs"
    assert rows.loc["darts", "search_source"] == "trained on digits"
    # the dataset's own figure where the benchmark has it; a trained nb201 cell; a table not on this machine
    own = nb201_record(table, "darts", 0, CELLS[0], dataset="cifar100",
                       test_acc_source=LOOKUP_SOURCE.format(dataset="cifar100", column="cifar100_test"))
    trained = nb201_record(table, "gdas", 0, CELLS[0], config={"eval": "train", "eval_epochs": 200},
                           test_acc_source="the final network trained from scratch (200 epochs), tested once on digits")
    moved = nb201_record(table, "agnas", 0, CELLS[0])
    moved["benchmark_info"]["table"] = {"path": "/elsewhere/t.nb201.npz"}
    other = build_leaderboard([own, trained, moved]).set_index("method")
    assert other.loc["darts", "test_source"] == "NAS-Bench-201 CIFAR-100 test, 200 epochs, look-up"
    assert other.loc["gdas", "test_source"] == "digits test, network trained 200 epochs"
    assert other.loc["agnas", "test_source"] == moved["test_acc_source"]  # the record's own words
    assert capsys.readouterr().err.count("\n") == 1


def test_a_search_that_queries_the_benchmark_is_labelled_and_never_free(board):
    rows = board.set_index("method")
    random = rows.loc["random"]
    assert random["search_queries_mean"] == 3.0 and math.isnan(rows.loc["darts", "search_queries_mean"])
    assert random["search_source"] == ("benchmark queries: 3 per seed of NAS-Bench-201 CIFAR-10 validation "
                                       "(cifar10-valid: trained on 25k), 200 epochs; nothing trained")
    assert random["search_hours_mean"] < 1e-6  # what the look-ups took: kept in the CSV, never shown as the cost
    assert search_cost_text(random) == "3 queries" and search_cost_text(rows.loc["darts"]) == "2.00 s"
    nb201 = board[board["space"] == "nb201"]
    text = " ".join(_render(leaderboard_table(nb201, "board"), 120).split())
    assert "random¹" in text and "3 queries" in text
    assert "¹ random searched by benchmark queries: 3 per seed of NAS-Bench-201 CIFAR-10 validation" in text
    assert "its cost is its queries" in text
    markdown = markdown_leaderboard(nb201)
    assert "| random¹ |" in markdown and "| 3 queries |" in markdown
    assert "Test accuracy: NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up." in markdown  # shared: said once
    assert r"random\textsuperscript{1}" in latex_leaderboard(nb201)


def test_the_markdown_leaderboard_is_short(board):
    markdown = markdown_leaderboard(board)
    tables = [line for line in markdown.splitlines() if line.startswith("|")]
    assert tables and all(line.count(" | ") + 1 <= 8 for line in tables if not set(line) <= set("|-:"))
    assert "## darts · search dataset folder:/data/my\\_images" not in markdown  # no Markdown escape of "_" needed
    assert "## darts · search dataset folder:/data/my_images · smoke budget" in markdown
    assert f"| {LONG} \\[cost=latency\\] |" in markdown


# --- statistics that state their limits and readable costs -----------------------------------------------------
def test_p_cells_say_when_the_seeds_cannot_reach_significance(board):
    gdas = board.set_index("method").loc["gdas"]
    assert (gdas["n_common_seeds"], gdas["p_wilcoxon_min"], gdas["p_holm_min"]) == (3, 0.25, 0.5)  # Holm over 2
    assert p_text(gdas["p_holm"], gdas["p_holm_min"], 3) == "n = 3: cannot reach p < 0.05"
    assert p_text(0.25, 0.25, 3, compact=True) == "n=3: cannot reach p<0.05"
    assert p_text(0.03125, 0.03125, 6) == "0.031" and p_text(0.5, 0.03125, 6) == "0.500"
    assert p_text(0.0625, 0.0625, 5) == "n = 5: cannot reach p < 0.05"
    assert p_text(float("nan"), float("nan"), 1) == "—" and p_text(None, None, None) == "—"


def test_seeds_won_intervals_and_counts():
    assert won_text(2 / 3, 3) == "2/3" and won_text(0.5, 3) == "1.5/3" and won_text(1.0, 5) == "5/5"
    assert won_text(float("nan"), 3) == "—" and won_text(0.5, 0) == "—"
    assert interval_text(90.53, 94.71, "range") == "90.53–94.71 (range)"
    assert interval_text(1.0, 2.0, "95 % CI", digits=1) == "1.0–2.0 (95 % CI)"
    assert interval_text(0.1, 0.2, "range", duration=True) == "100 ms–200 ms (range)"
    assert interval_text(float("nan"), 1.0, "range") == "—"
    assert count_text(3.0) == "3" and count_text(2.5) == "2.5"


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0 s"), (1.2e-7, "0.120 µs"), (0.0004424, "442 µs"), (0.957, "957 ms"), (0.9996, "1.00 s"), (1.0, "1.00 s"),
    (12.34, "12.3 s"), (59.96, "0.999 min"), (90.0, "1.50 min"), (3007.0, "50.1 min"), (3600.0, "1.00 h"),
    (5400.0, "1.50 h"), (36 * 3600.0, "36.0 h"),
    (100_000.0, "27.8 h"), (2 * 86400.0, "2.00 d"), (None, "—"), (float("nan"), "—"), ("x", "—")])
def test_durations_read_in_their_unit(seconds, text):
    assert duration_text(seconds) == text


# --- LaTeX --------------------------------------------------------------------------------------------------------
def check_latex(tex: str) -> None:
    """What pdflatex would refuse, checked by structure (no TeX installation needed): every environment closed in
    order, braces and math balanced, no unescaped special character outside a command, every tabular row with as
    many cells as its column specification, booktabs rules in order."""
    body = "\n".join(line for line in tex.splitlines() if not line.startswith("%"))  # whole-line comments
    stack = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+)\}", body):
        if kind == "begin":
            stack.append(name)
        else:
            assert stack and stack.pop() == name, name
    assert not stack
    unescaped = re.sub(r"\\[\\{}&%$#_]|\\textbackslash\{\}", "", body)
    depth = 0
    for ch in unescaped:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert unescaped.count("$") % 2 == 0 and "%" not in unescaped and "#" not in unescaped
    text = re.sub(r"\$[^$]*\$", "", unescaped)  # outside math: no _ or ^
    assert "_" not in text and "^" not in text
    for spec, rows in re.findall(r"\\begin\{tabular\}\{((?:[lrc]|p\{[\d.]+cm\})+)\}(.*?)\\end\{tabular\}", body,
                                 re.S):
        columns = len(re.sub(r"p\{[^}]*\}", "p", spec))
        lines = [line for line in rows.strip().splitlines() if line.endswith(r"\\")]
        assert lines and all(re.sub(r"\\&", "", line).count("&") == columns - 1 for line in lines)
        rules = re.findall(r"\\(toprule|midrule|bottomrule)", rows)
        assert rules[0] == "toprule" and rules[1] == "midrule" and rules[-1] == "bottomrule"


def test_latex_text_escapes_every_special_character():
    assert latex_text("a_b%c&d$e#f{g}h~i^j\\k<l>m|n") == (
        r"a\_b\%c\&d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k\textless{}l\textgreater{}m"
        r"\textbar{}n")
    assert latex_text("92.57 ± 0.58 — τ 2/2ⁿ ¹") == (r"92.57 $\pm$ 0.58 --- $\tau$ 2/2\textsuperscript{n} "
                                                   r"\textsuperscript{1}")
    assert latex_text("two\nlines") == "two lines"


def test_the_latex_tables_are_valid_with_the_best_in_bold_and_the_protocol_below(board, records):
    weird = [dict(r, method="my_method & 100% #1", overrides={"lr": "$x^2$"}) for r in records[-3:]]
    tex = latex_leaderboard(build_leaderboard(records + weird))
    check_latex(tex)
    assert tex.count(r"\begin{table}") == 2 and tex.count(r"\toprule") == 2  # one per space, dataset and budget
    assert r"my\_method \& 100\% \#1 [lr=\$x\textasciicircum{}2\$]" in tex
    nb201 = tex.split(r"\begin{table}")[2]
    best = board[(board["space"] == "nb201") & (board["rank"] == 1)].iloc[0]
    bold = re.findall(r"\\textbf\{([^}]*)\}", nb201)
    assert bold == [f"{best['test_acc_mean']:.2f} $\\pm$ {best['test_acc_std']:.2f}"]  # only the best mean
    assert ("Protocol: smoke budget; search dataset digits; seeds 0, 1, 2 (3 per method); test accuracy: "
            "NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up.") in nb201
    assert r"$n=3$: cannot reach $p<0.05$" in nb201
    json.dumps(tex)  # plain text


def test_report_latex_prints_the_tables(tmp_path, records, capsys, monkeypatch):
    import harness.report

    monkeypatch.setattr(harness.report, "write_plots", lambda records, out, tables=None: out.mkdir() or [])  # no plot
    for k, record in enumerate(records[:9]):
        write_record(tmp_path / "exp" / "trials" / f"r{k}.json", record)
    assert main(["report", str(tmp_path), "--latex"]) == 0
    out = capsys.readouterr().out
    tex = (tmp_path / "report" / "leaderboard.tex").read_text()
    assert tex in out and f"latex: {tmp_path / 'report' / 'leaderboard.tex'}" in out
    check_latex(tex)
    assert np.isfinite(float(re.search(r"\\textbf\{([\d.]+)", tex).group(1)))


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="no pdflatex here: check_latex checks the structure")
def test_the_latex_tables_compile(tmp_path, records):
    """Where pdflatex is installed: the tables compile in a plain article with booktabs, without an error and, for
    the usual names, no table wider than the text; names with every special character compile too."""

    def compile_(tables: str) -> str:
        (tmp_path / "tables.tex").write_text(tables, encoding="utf-8")
        (tmp_path / "doc.tex").write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n"
                                          "\\usepackage{booktabs}\n\\begin{document}\n\\input{tables.tex}\n"
                                          "\\end{document}\n")
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 and (tmp_path / "doc.pdf").stat().st_size > 1000, run.stdout[-2000:]
        return run.stdout

    assert "Overfull \\hbox" not in compile_(latex_leaderboard(build_leaderboard(records)))
    weird = [dict(r, method="my_method & 100% #1 ~x^{y}\\z", overrides={"lr": "$x^2$"}) for r in records[-3:]]
    compile_(latex_leaderboard(build_leaderboard(weird)))
