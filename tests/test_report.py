"""The comparison report: from the records under a folder, one HTML page that parses and embeds every plot, its
Markdown twin naming every plot file, the leaderboard CSV and LaTeX tables, the study file where there is one, and one
line (exit 2) for a folder without records. Each group's title says where its test accuracy comes from, a search that
queried the benchmark is labelled so and costed in queries, and every statistic states its limits."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from test_plots import darts_records, nb201_records
from test_views import LOOKUP_SOURCE, check_latex, random_records

from harness.cli import main
from harness.core.benchmarks.nb201 import load_table
from harness.report import write_report


class Page(HTMLParser):
    """The page's tags, images and headings, with a check that every opened element is closed."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[str] = []
        self.widths: list[str | None] = []
        self.headings: list[str] = []
        self._heading = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])
            self.widths.append(dict(attrs).get("width"))
        if tag not in self.VOID:
            self.stack.append(tag)
        self._heading = tag in ("h1", "h2")

    def handle_endtag(self, tag):
        assert self.stack and self.stack.pop() == tag, tag
        self._heading = False

    def handle_data(self, data):
        if self._heading:
            self.headings.append(data)


def write_records(root: Path, records: list[dict]) -> None:
    for k, record in enumerate(records):
        folder = root / f"exp{record['method']}" / "trials"
        folder.mkdir(parents=True, exist_ok=True)
        full = {"config": {}, "config_hash": f"h{record['method']}{json.dumps(record['overrides'])}",
                "harness_version": "test", "finished_at": "2026-11-29T00:00:00+00:00", "device": "cpu (test)",
                **record}
        (folder / f"r{k}.json").write_text(json.dumps(full))


def sourced(records: list[dict]) -> list[dict]:
    """The records as the trial writes them: the test accuracy's source (a look-up on NAS-Bench-201, the trained
    network elsewhere) and the evaluation epochs of the configuration."""
    for record in records:
        if record["space"] == "nb201":
            record.update(test_acc_source=LOOKUP_SOURCE.format(dataset="cifar10", column="cifar10_test"),
                          config={"eval": "lookup", "eval_epochs": 4})
        else:
            record.update(test_acc_source="the final network trained from scratch (4 epochs), tested once on digits",
                          config={"eval_epochs": 4})
    return records


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    table = load_table("default")
    write_records(root, sourced(nb201_records(table) + darts_records()) + random_records(table))
    (root / "study.toml").write_text('name = "x"\n# the study file\n')
    return root, write_report(root)


def test_the_html_parses_and_embeds_every_plot(report):
    root, written = report
    page = Page()
    page.feed(written["html"].read_text())
    page.close()
    assert page.stack == []  # every element closed
    pngs = sorted((root / "report" / "plots").glob("*.png"))
    assert len(pngs) == len(written["plots"]) > 5
    assert len(page.images) == len(pngs)
    embedded = set(page.images)
    assert all(src.startswith("data:image/png;base64,") for src in embedded)
    assert {base64.b64decode(src.split(",", 1)[1]) for src in embedded} == {p.read_bytes() for p in pngs}
    assert ("nb201 · search dataset digits · smoke budget — test accuracy: NAS-Bench-201 CIFAR-10 test, 200 epochs, "
            "look-up") in page.headings
    assert "darts · search dataset digits · smoke budget — test accuracy: digits test, network trained 4 epochs" in (
        page.headings)
    text = written["html"].read_text()
    assert "the study file" in text and "cpu (test)" in text and "hdarts{}" in text  # study, device, config hash


def test_plots_are_shown_at_their_printed_size(report):
    """Every plot at its printed size (100 CSS pixels per inch of the figure: its PNG's width at 200 dpi halved), so
    that a two-panel figure is twice as wide as a one-panel one, never squeezed to a fixed 640 pixels; never wider than
    the page (max-width 100 %)."""
    from PIL import Image

    _, written = report
    page = Page()
    page.feed(written["html"].read_text())
    for src, width in zip(page.images, page.widths):
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            assert int(width) == round(image.size[0] / 2)
    widths = sorted(int(w) for w in page.widths)
    assert widths[0] >= 500 and widths[-1] >= 2 * 580  # the one-panel figures and the two-panel accuracy vs cost
    style = written["html"].read_text().split("<style>")[1].split("</style>")[0]
    assert "img{max-width:100%" in style and "640px" not in style


def test_markdown_and_csvs(report):
    root, written = report
    markdown = written["markdown"].read_text()
    for png in written["plots"]:
        assert f"(plots/{png.name})" in markdown
    for csv in written["csvs"]:
        assert csv.is_file() and csv.stat().st_size > 0
    board = pd.read_csv(root / "report" / "leaderboard.csv", keep_default_na=False)
    nb201 = board[board["space"] == "nb201"]
    assert set(nb201["method"]) == {"darts", "gdas", "random", "optimum"}
    gdas = nb201[nb201["method"] == "gdas"].iloc[0]
    assert int(gdas["n_common_seeds"]) == 3 and "p Holm" in markdown
    # the statistics table's figures are the leaderboard's
    assert f"| {float(gdas['test_acc_mean']):.2f} ± {float(gdas['test_acc_std']):.2f} |" in markdown


def test_the_report_states_sources_queries_and_the_limits_of_its_statistics(report):
    root, written = report
    page = written["html"].read_text()
    markdown = written["markdown"].read_text()
    board = pd.read_csv(root / "report" / "leaderboard.csv", keep_default_na=False)
    nb201 = board[board["space"] == "nb201"].set_index("method")
    assert set(nb201["test_source"]) == {"NAS-Bench-201 CIFAR-10 test, 200 epochs, look-up",
                                         "NAS-Bench-201 CIFAR-10 test, 200 epochs, the best cell of the table"}
    assert nb201.loc["random", "search_source"] == ("benchmark queries: 3 per seed of NAS-Bench-201 CIFAR-10 "
                                                    "validation (cifar10-valid: trained on 25k), 200 epochs; "
                                                    "nothing trained")
    assert nb201.loc["darts", "search_source"] == "trained on digits"
    for text in (page, markdown):
        assert "CIFAR-10" in text
        assert "random¹" in text and "3 queries" in text  # labelled, and costed in queries, never as free
        assert "¹ random searched by benchmark queries: 3 per seed" in text
        assert "n = 3: cannot reach p &lt; 0.05" in text  # 3 common seeds: no Wilcoxon p below 0.25
        assert "(range)" in text and "(95 % CI)" not in text  # 3 seeds: their range, labelled so
        assert "(= mean: n &lt; 4)" in text  # nothing trimmed: the IQM is the mean
        assert "How each statistic is computed" in text and "6 seeds are the fewest" in text
        assert "h 0.0000" not in text and "0.0000" not in text
    assert "search h" not in page and "P(beats baseline)" not in page
    latex = written["latex"].read_text()
    check_latex(latex)
    assert r"random\textsuperscript{1}" in latex and "3 queries" in latex


def test_report_of_a_folder_without_records_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no trial records" in err and "\n" not in err
    assert not (tmp_path / "report").exists()


def test_series_take_their_study_names_and_a_new_report_keeps_no_old_plot(tmp_path):
    table = load_table("default")
    records = nb201_records(table)
    write_records(tmp_path, records)
    gdas = next(r for r in records if r["method"] == "gdas")  # a study cell: gdas with tau_max=5, named gdas-fast
    (tmp_path / "expgdas" / "experiment.json").write_text(json.dumps({"cell": "gdas-fast", "method": "gdas",
                                                                      "overrides": gdas["overrides"]}))
    written = write_report(tmp_path)
    names = sorted(p.name for p in (tmp_path / "report" / "plots").glob("*.png"))
    assert "nb201-digits-smoke-cells-gdas-fast.png" in names
    assert "gdas-fast" in written["html"].read_text() and "[tau_max" not in written["markdown"].read_text()
    for path in (tmp_path / "expgdas" / "trials").glob("*.json"):  # gdas is gone: so are its plots
        path.unlink()
    again = write_report(tmp_path)
    left = sorted(p.name for p in (tmp_path / "report" / "plots").glob("*"))
    assert not [name for name in left if "gdas" in name]
    assert sorted(p.name for p in again["plots"]) == [n for n in left if n.endswith(".png")]
    assert [p.name for p in (tmp_path / "report").iterdir() if p.name.startswith(".")] == []


# --- hardening (issue 27) -----------------------------------------------------------------------------------------
def test_seeds_of_equal_values_give_a_report(tmp_path, capsys):
    """Three seeds of one accuracy and one search time (NAS-Bench-201 seeds often derive the same cell): the mean
    lands a rounding step beside the value, and the error bars are still drawn."""
    records = [{"method": "darts", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
                "overrides": {}, "test_acc": 91.53, "search_seconds": 360.0} for seed in range(3)]
    write_records(tmp_path, records)
    assert main(["report", str(tmp_path)]) == 0
    assert (tmp_path / "report" / "plots" / "darts-digits-smoke-accuracy_vs_cost.png").is_file()


def test_a_benchmark_table_not_on_this_machine_leaves_out_what_needs_it(tmp_path, capsys):
    """Results copied from another machine: the records name a table that is not here. The report is written
    without the optimum row and the anytime plot, and says so in one line."""
    records = nb201_records(load_table("default"))
    for record in records:
        record["benchmark_info"]["table"] = {**record["benchmark_info"]["table"], "path": "/elsewhere/t.nb201.npz"}
    write_records(tmp_path, records)
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning:") and "/elsewhere/t.nb201.npz" in err
    plots = sorted(p.name for p in (tmp_path / "report" / "plots").glob("*.png"))
    assert plots and not [p for p in plots if "anytime" in p]
    board = pd.read_csv(tmp_path / "report" / "leaderboard.csv")
    assert "optimum" not in set(board["method"])


def test_markup_math_and_html_in_names_are_shown_as_text(tmp_path, capsys):
    """A method or variant name with a TeX formula, rich markup or HTML: the plots draw it as text (no math
    parser), the console prints it as it is, and both pages escape it."""
    name = "<script>alert(1)</script>$\\foo$[/bold]"
    records = [{"method": name, "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
                "overrides": {"x": "$\\bar$<b>|"}, "test_acc": 90.0 + seed, "search_seconds": 100.0 + seed,
                "op_kendall_tau": 0.1 * seed, "device": "<img src=x onerror=alert(1)>"} for seed in range(2)]
    root = tmp_path / "res [old] $x$"
    write_records(root, records)
    assert main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert str(root / "report" / "report.html") in out
    markdown = (root / "report" / "report.md").read_text()
    page = (root / "report" / "report.html").read_text()
    for text in (markdown, page):
        assert "<script>" not in text and "<img src=x" not in text and "<b>|" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in markdown


def test_a_full_disk_is_one_line_and_leaves_no_temporary_folder(tmp_path, capsys, monkeypatch):
    import errno

    import matplotlib.figure

    write_records(tmp_path, darts_records())
    assert main(["report", str(tmp_path)]) == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "report" / "plots").iterdir()}
    capsys.readouterr()

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "No space left on device" in err and err.startswith("harness: error:")
    assert [p.name for p in (tmp_path / "report").iterdir() if p.name.startswith(".")] == []
    assert {p.name: p.read_bytes() for p in (tmp_path / "report" / "plots").iterdir()} == before
