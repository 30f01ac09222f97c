"""Everyday commands and safe defaults (in-process, no Ray): ``run --dry-run``, the question before the paper budget
runs without a GPU, ``ls``, ``show FOLDER`` and the closest valid name in every refusal of an unknown one."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

from harness import experiment
from harness.cli import main
from harness.core.errors import UserError, closest, unknown_name
from harness.core.stats import duration_text
from harness.estimate import TrialCost
from harness.listing import print_listing
from harness.request import RunRequest, StudyRequest, confirm_cpu_paper
from harness.spec import ExperimentSpec

OLD = Path(__file__).parent / "data" / "old_folders"
QUICK = ["--method", "random", "--space", "nb201", "--dataset", "digits"]
TRAINS = [*QUICK, "--set", "eval=train"]  # the cell trained, not looked up: the paper budget asks first
ESTIMATE = TrialCost(search=12.0, evaluation=30.0, where="here")  # per trial, as the stubbed measurement gives it


def snapshot(root: Path) -> dict[str, str]:
    """Every file below ``root`` with a hash of its content (empty when ``root`` does not exist)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()} if root.exists() else {}


@pytest.fixture
def no_launch(monkeypatch):
    """The time estimate stubbed (``ESTIMATE``) and the trials' launch replaced by a recorder: what reaches it ran."""
    launched: list[list[str]] = []

    def run_cells(specs, folder, study, todo, console, estimates=None, columns=None):
        launched.append([s.name for s in specs])
        return 0

    monkeypatch.setattr(experiment, "estimate_seconds", lambda spec, data, load_seconds: ESTIMATE)
    monkeypatch.setattr(experiment, "run_cells", run_cells)
    return launched


class Terminal(io.StringIO):
    """A stdin that is a terminal (the answer itself comes from the stubbed ``input``)."""

    def isatty(self) -> bool:
        return True


def answer(monkeypatch, reply: str | type[BaseException]) -> list[int]:
    """stdin a terminal whose user types ``reply`` (or ends the input: ``EOFError``); returns the questions asked."""
    asked: list[int] = []

    def typed() -> str:
        asked.append(1)
        if isinstance(reply, type):
            raise reply
        return reply

    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", typed)
    return asked


# --- --dry-run ----------------------------------------------------------------------------------------------------
def test_dry_run_prints_the_plan_and_estimate_and_writes_nothing(tmp_path, capsys, no_launch, monkeypatch):
    monkeypatch.setattr("harness.cluster.start_local_ray", lambda: pytest.fail("a dry run started Ray"))
    out = tmp_path / "out"
    assert main(["run", *QUICK, "--budget", "smoke", "--seeds", "3", "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    # 42 s per trial (the run's total, with Ray's start, the waves and the end: tests/test_estimate.py)
    words = " ".join(printed.split())  # the plan's table wraps its cells at the width the folder's name leaves
    assert "per trial ≈ 42 s (search 12 s, evaluation 30 s)" in words and " from now (" in words
    assert "trials      3: random on nb201 / digits, seeds 0,1,2" in printed
    assert printed.rstrip().endswith("dry run: nothing was started or written (drop --dry-run to run it)")
    assert not out.exists() and no_launch == []


def test_a_dry_run_of_the_paper_budget_asks_nothing_and_warns(tmp_path, capsys, no_launch, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda: pytest.fail("a dry run asked"))
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # a pipe: a real run would be refused
    assert main(["run", *TRAINS, "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "paper budget is about to run without a GPU" in printed and "dry run: nothing" in printed
    assert not (tmp_path / "out").exists()
    assert main(["run", *QUICK, "--out", str(tmp_path / "out"), "--dry-run"]) == 0  # look-ups alone: no warning
    printed = capsys.readouterr().out
    assert "without a GPU" not in printed and "dry run: nothing" in printed


def test_study_run_dry_run_shows_every_cell(tmp_path, capsys, no_launch):
    study = tmp_path / "pair.toml"
    study.write_text('budget = "smoke"\nseeds = 2\ndatasets = ["digits"]\nspaces = ["nb201"]\n'
                     'methods = ["random", "darts"]\n')
    out = tmp_path / "out"
    assert main(["study", "run", str(study), "--out", str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "2 cells, 4 trials (smoke budget)" in printed and "dry run: nothing was started" in printed
    cells = [line for line in printed.splitlines() if line.startswith(("│ random", "│ darts"))]
    assert len(cells) == 2 and all("≈ 42 s" in c and "≈ 84 s" in c for c in cells)  # per trial, per cell of 2 seeds
    assert not out.exists() and no_launch == []


def test_a_dry_run_resume_shows_what_is_left_and_touches_nothing(tmp_path, capsys, no_launch):
    shutil.copytree(OLD / "old-run", tmp_path / "old-run")
    before = snapshot(tmp_path)
    assert main(["run", "--resume", "--name", "old-run", "--out", str(tmp_path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "resume" in printed and "dry run: nothing was started or written" in printed
    assert snapshot(tmp_path) == before and not (tmp_path / "old-run" / ".driver.lock").exists()
    assert no_launch == []


# --- the paper budget without a GPU -----------------------------------------------------------------------------------
def test_the_paper_budget_off_a_terminal_is_refused_before_anything_is_measured(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(experiment, "load_dataset", lambda *a: pytest.fail("the data was loaded"))
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    out = tmp_path / "out"
    assert main(["run", *TRAINS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("harness: error: the paper budget (the default) would run without")
    assert "--budget smoke" in err and "--yes" in err
    assert not out.exists()


@pytest.mark.parametrize("reply", ["y", "yes", "Y "])
def test_a_yes_typed_in_a_terminal_runs_it(reply, tmp_path, capsys, monkeypatch, no_launch):
    asked = answer(monkeypatch, reply)
    assert main(["run", *TRAINS, "--budget", "paper", "--out", str(tmp_path), "--name", "p"]) == 0
    assert asked == [1] and no_launch == [["p"]]
    assert "[y/N]" in capsys.readouterr().err  # the question is on stderr: seen even when the output goes to a file
    assert (tmp_path / "p" / "experiment.json").is_file()


@pytest.mark.parametrize("reply", ["", "n", "no", "maybe", EOFError])
def test_anything_else_leaves_it_unstarted(reply, tmp_path, capsys, monkeypatch, no_launch):
    asked = answer(monkeypatch, reply)
    out = tmp_path / "out"
    assert main(["run", *TRAINS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert asked == [1] and no_launch == [] and not out.exists()
    # after the question (which a user's Enter ends; Ctrl-D: the harness)
    refusal = ("harness: error: not started: the paper budget (the default) was not confirmed; use --budget smoke "
               "(seconds) or --budget small (minutes) on a CPU, or add --yes to run it without asking\n")
    assert err.endswith(("[y/N] \n" if reply is EOFError else "[y/N] ") + refusal)


def test_the_question_comes_after_the_plan(tmp_path, capsys, monkeypatch, no_launch):
    order: list[str] = []
    monkeypatch.setattr(sys, "stdin", Terminal())
    monkeypatch.setattr("builtins.input", lambda: order.append(capsys.readouterr().out) or "n")
    assert main(["run", *TRAINS, "--out", str(tmp_path / "out")]) == 2
    assert "per trial ≈ 42 s" in order[0] and "without a GPU" in order[0]


def test_yes_runs_it_off_a_terminal_without_asking(tmp_path, monkeypatch, no_launch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr("builtins.input", lambda: pytest.fail("--yes asked"))
    assert main(["run", *TRAINS, "--out", str(tmp_path), "--name", "p", "--yes"]) == 0
    assert no_launch == [["p"]]


def test_a_machine_with_a_gpu_is_not_asked(tmp_path, monkeypatch, no_launch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    assert main(["run", *QUICK, "--out", str(tmp_path), "--name", "g"]) == 0
    assert no_launch == [["g"]]
    assert json.loads((tmp_path / "g" / "experiment.json").read_text())["gpus_per_trial"] == 1


def test_smaller_budgets_and_trials_with_a_gpu_are_never_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    cpu = SimpleNamespace(budget="small", gpus_per_trial=0, address=None)
    confirm_cpu_paper([cpu], RunRequest(out=tmp_path, name=None, resume=False, method="darts", space="nb201",
                                        dataset=None, budget="small", seeds=None, overrides=[]), ask=True)
    gpu = SimpleNamespace(budget="paper", gpus_per_trial=0.5, address=None)
    confirm_cpu_paper([gpu], StudyRequest(out=tmp_path, name=None, resume=False, file=None, study=None), ask=True)


def test_a_paper_run_of_benchmark_look_ups_alone_is_not_asked(tmp_path, monkeypatch):
    """Random search and the black-box methods on NAS-Bench-201 train nothing at the paper budget: no question; one
    experiment that trains among them brings it back."""
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    request = RunRequest(out=tmp_path, name=None, resume=False, method="rea,random", space="nb201", dataset=None,
                         budget="paper", seeds=None, overrides=[])
    def spec(method: str, evaluation: str) -> SimpleNamespace:
        made = SimpleNamespace(budget="paper", gpus_per_trial=0, address=None, method=method, space="nb201",
                               config={"nb201_table": "default", "eval": evaluation})
        made.trains = ExperimentSpec.trains.fget(made)
        return made

    lookups = [spec("rea", "lookup"), spec("random", "lookup")]
    assert not any(s.trains for s in lookups)
    confirm_cpu_paper(lookups, request, ask=False)
    trained = spec("rea", "train")
    assert trained.trains
    with pytest.raises(UserError, match="^the paper budget would run without a GPU"):
        confirm_cpu_paper([*lookups, trained], request, ask=False)


def test_the_refusal_says_how_each_entry_point_picks_a_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    spec = [SimpleNamespace(budget="paper", gpus_per_trial=0, address="10.0.0.1:6379", trains=True)]
    study = StudyRequest(out=tmp_path, name=None, resume=False, file=tmp_path / "s.toml", study=None)
    with pytest.raises(UserError, match='set budget = "smoke" .* in the study file') as err:
        confirm_cpu_paper(spec, study, ask=False)
    assert "--gpus-per-trial 1 gives each trial a GPU of the cluster" in str(err.value)
    given = RunRequest(out=tmp_path, name=None, resume=False, method="darts", space="nb201", dataset=None,
                       budget="paper", seeds=None, overrides=[])
    with pytest.raises(UserError, match=r"^the paper budget would run .*--budget smoke"):
        confirm_cpu_paper(spec, given, ask=False)


def test_study_run_of_a_paper_study_off_a_terminal_is_refused(tmp_path, capsys, monkeypatch, no_launch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    study = tmp_path / "paper.toml"
    study.write_text('datasets = ["digits"]\nspaces = ["nb201"]\nmethods = ["darts"]\n')
    assert main(["study", "run", str(study), "--out", str(tmp_path / "out")]) == 2
    assert 'budget = "smoke"' in capsys.readouterr().err and not (tmp_path / "out").exists()


# --- ls -------------------------------------------------------------------------------------------------------------
@pytest.fixture
def results(tmp_path) -> Path:
    """A results folder: old-run (seeds 0 and 1 — seed 1's record added here — done), old-study (one of two seeds of
    each of its two cells), every file last changed at 2026-01-02 03:04 local time."""
    root = tmp_path / "results"
    shutil.copytree(OLD, root)
    record = json.loads((root / "old-run" / "trials" / "random-nb201-digits-s0.json").read_text())
    (root / "old-run" / "trials" / "random-nb201-digits-s1.json").write_text(json.dumps({**record, "seed": 1}))
    stamp = dt.datetime(2026, 1, 2, 3, 4).timestamp()
    for path in root.rglob("*"):
        os.utime(path, (stamp, stamp))
    return root


def rows(printed: str) -> dict[str, list[str]]:
    """The rows of a one-line-per-entry table by their folder: its cells (name, what, done, state, changed)."""
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line.strip()) for line in printed.splitlines()
                                          if line.startswith(" ") and line.strip())
            if cells[0] not in ("name",) and not cells[0].startswith("─")}


def test_ls_lists_experiments_and_studies_with_their_state(results, capsys):
    assert main(["ls", str(results)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"1 experiment and 1 study in {results}")
    table = rows(printed)
    assert table["old-run"] == ["old-run", "random · nb201 · digits · smoke", "2/2", "done", "2026-01-02 03:04"]
    assert table["old-study/"] == ["old-study/", "study: random, random-1k · nb201 · digits · smoke", "2/4",
                                   "missing 2", "2026-01-02 03:04"]
    assert f"resume: python -m harness run --resume --name old-study --out {results}" in printed
    assert "running now" not in printed


def test_ls_of_a_study_lists_its_cells_and_of_an_experiment_itself(results, capsys):
    assert main(["ls", str(results / "old-study")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("study old-study: 2 of 4 trials done, 2 cells")
    table = rows(printed)
    assert table["cells/random-nb201-digits-1ca170aa82"][2:4] == ["1/2", "missing 1"]
    assert table["cells/random-1k-nb201-digits-ad4fcd7794"][2:4] == ["1/2", "missing 0"]
    assert f"resume: python -m harness run --resume --name old-study --out {results}" in printed
    assert main(["ls", str(results / "old-run")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("experiment old-run") and rows(printed)["old-run"][2:4] == ["2/2", "done"]


@contextmanager
def driven(*folders: Path) -> Iterator[None]:
    """The driver locks of ``folders`` held as a driver holds them (``harness.lock.driver_lock``: an ``flock`` on
    ``.driver.lock`` naming the holder), by "process 4242 on lab-host"."""
    with ExitStack() as stack:
        for folder in folders:
            held = stack.enter_context(open(folder / ".driver.lock", "w"))
            fcntl.flock(held, fcntl.LOCK_EX)
            held.write(json.dumps({"pid": 4242, "host": "lab-host", "started": "2026-12-07T10:00:00"}))
            held.flush()
        yield


HOLDER = "process 4242 on lab-host (started 2026-12-07T10:00:00)"


def test_ls_names_the_driver_that_runs_an_experiment_now(results, capsys):
    (results / "old-run" / "trials" / "random-nb201-digits-s1.json").unlink()
    with driven(results / "old-run"):
        assert main(["ls", str(results)]) == 0
        printed = capsys.readouterr().out
        assert main(["show", str(results / "old-run")]) == 0
        shown = capsys.readouterr().out
    assert rows(printed)["old-run"][2:4] == ["1/2", "running"]
    assert f"running now: old-run by {HOLDER}" in printed
    assert "--name old-study" in printed and "--name old-run" not in printed  # only what no driver runs is resumed
    assert f"1 of 2 seeds done (missing 1); being run now by {HOLDER}" in shown
    assert main(["ls", str(results)]) == 0  # the lock released: to resume
    assert rows(capsys.readouterr().out)["old-run"][3] == "missing 1"


def test_a_study_driver_shows_once_and_its_finished_cells_as_done(results, capsys):
    cells = results / "old-study" / "cells"
    trials = cells / "random-nb201-digits-1ca170aa82" / "trials"  # both seeds of this cell done
    record = json.loads((trials / "random-nb201-digits-s0.json").read_text())
    (trials / "random-nb201-digits-s1.json").write_text(json.dumps({**record, "seed": 1}))
    with driven(results / "old-study", *cells.iterdir()):
        assert main(["ls", str(results / "old-study")]) == 0
        printed = capsys.readouterr().out
        assert main(["ls", str(results)]) == 0
        top = capsys.readouterr().out
    table = rows(printed)
    assert table["cells/random-nb201-digits-1ca170aa82"][2:4] == ["2/2", "done"]  # held, but every seed has a record
    assert table["cells/random-1k-nb201-digits-ad4fcd7794"][2:4] == ["1/2", "running"]
    assert printed.count("running now") == 1 and f"running now: all 2 cells by {HOLDER}" in printed
    assert rows(top)["old-study/"][2:4] == ["3/4", "running"] and f"running now: old-study by {HOLDER}" in top


def test_ls_at_80_columns_keeps_every_name_whole(results):
    long_name = "darts-nb201-cifar10-paper-20261207-181900-with-a-long-tail"
    (results / "old-run").rename(results / long_name)
    for width in (80, 60):
        buffer = io.StringIO()
        assert print_listing(results, Console(file=buffer, width=width, markup=False, emoji=False)) == 0
        # (the resume command is one long line the terminal wraps: a copied command keeps no line break)
        lines = [line for line in buffer.getvalue().splitlines() if not line.startswith("resume: ")]
        assert max(len(line.rstrip()) for line in lines) <= width
        assert any(line.strip().startswith(long_name) for line in lines)  # on one line, never cut
        assert any(line.strip() == "random · nb201 · digits · smoke" for line in lines)  # under it, indented


def test_ls_of_an_unreadable_experiment_says_so(results, capsys):
    (results / "old-run" / "experiment.json").write_text("{not json")
    assert main(["ls", str(results)]) == 0
    assert rows(capsys.readouterr().out)["old-run"][1:4] == ["experiment.json: not valid JSON", "—", "unreadable"]
    (results / "old-run" / "experiment.json").write_text('{"method": "darts"}')
    assert main(["ls", str(results)]) == 0
    assert rows(capsys.readouterr().out)["old-run"][1] == "experiment.json: lacks space, dataset, budget and 12 more"


def test_ls_of_an_empty_or_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["ls", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"no experiments or studies in {tmp_path}")
    assert main(["ls", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"folder {tmp_path / 'none'} does not exist" in err


def test_ls_reads_an_object_store(results, s3_endpoint, capsys):
    from conftest import s3_uri

    from harness.core.storage import location, upload_tree

    store = location(s3_uri(s3_endpoint, "everyday-ls", "results"))
    upload_tree(results, store)
    assert main(["ls", store.uri]) == 0
    table = rows(capsys.readouterr().out)
    assert table["old-run"][2:] == ["2/2", "done", "—"]  # no file times from a store
    assert table["old-study/"][2:4] == ["2/4", "missing 2"]


# --- --columns of run and study run -----------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["run", "--method", "random", "--space", "nb201", "--budget", "smoke", "--dataset", "digits"],
    ["run", "--method", "darts,random", "--space", "nb201", "--budget", "smoke", "--dataset", "digits"],
    ["study", "run", str(Path(__file__).parent.parent / "studies" / "nb201.toml")],
], ids=["run", "run-methods", "study-run"])
def test_an_unknown_run_column_is_one_line_before_anything(tmp_path, capsys, no_launch, argv):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out), "--columns", "method,test_acc,serch"]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "unknown column 'serch'; did you mean 'search'?" in captured.err
    assert captured.out == "" and not out.exists() and no_launch == []  # no plan, nothing written, nothing run


def test_run_columns_reach_the_end_of_run_leaderboard(results, capsys, monkeypatch):
    seen = {}
    real = experiment.summarise

    def summarise(*args, **kwargs):
        seen["columns"] = args[6] if len(args) > 6 else kwargs.get("columns")
        return real(*args, **kwargs)

    monkeypatch.setattr(experiment, "summarise", summarise)
    # every seed of old-run has its record: the resume runs nothing and ends with the leaderboard
    assert main(["run", "--resume", "--name", "old-run", "--out", str(results), "--columns",
                 "method,test_acc,search,correlation_seconds_mean"]) == 0
    assert seen["columns"] == ["method", "test_acc", "search", "correlation_seconds_mean"]
    board = capsys.readouterr().out.split("leaderboard (smoke budget, digits)")[1]
    header = next(line for line in board.splitlines() if "method" in line)
    assert header.split() == ["method", "test", "acc", "%", "search", "cost", "correlation_seconds_mean"]


# --- show FOLDER ----------------------------------------------------------------------------------------------------
def test_show_of_an_experiment_folder_lists_its_trials(results, capsys):
    record = json.loads((results / "old-run" / "trials" / "random-nb201-digits-s0.json").read_text())
    for folder in (results / "old-run", results / "old-run" / "trials"):
        assert main(["show", str(folder)]) == 0
        printed = capsys.readouterr().out
        assert printed.startswith("experiment old-run: random · nb201 · digits · smoke\n2 of 2 seeds done\n")
        seeds = [line.split() for line in printed.splitlines() if line.split()[:1] in (["0"], ["1"])]
        assert [s[0] for s in seeds] == ["0", "1"] and seeds[0][2] == f"{record['test_acc']:.2f}"
        # the figures as the run's summary shows them (summary_columns): times in readable units
        assert f" {duration_text(record['search_seconds'])} " in printed and "search time" in printed
        assert f"one trial: python -m harness show {results / 'old-run' / 'trials'}" in printed


def test_show_of_a_study_folder_lists_every_cells_trials(results, capsys):
    assert main(["show", str(results / "old-study")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("study old-study: random, random-1k · nb201 · digits · smoke\n"
                              "2 of 4 trials done (missing random 1; random-1k 0)\n")
    cells = [line.split()[:2] for line in printed.splitlines() if line.startswith(" random")]
    assert cells == [["random", "0"], ["random-1k", "1"]]


def test_show_of_another_folder_is_one_line_and_a_record_still_shows(results, capsys):
    assert main(["show", str(results / "old-study" / "cells")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an experiment's or a study's" in err and "harness ls" in err
    assert main(["show", str(results / "old-run" / "trials" / "random-nb201-digits-s0.json")]) == 0
    assert capsys.readouterr().out.startswith("method random · space nb201 · dataset digits · budget smoke · seed 0")


# --- the closest valid name ---------------------------------------------------------------------------------------
SUGGESTIONS = {
    "method": (["run", "--method", "dartz", "--space", "nb201"], "unknown method 'dartz'; did you mean 'darts'?"),
    "method case": (["run", "--method", "GDAS", "--space", "nb201"], "did you mean 'gdas'?"),
    "space": (["run", "--method", "darts", "--space", "nb21"], "unknown space 'nb21'; did you mean 'nb201'?"),
    "dataset": (["run", *QUICK[:4], "--dataset", "cifar-10"], "unknown dataset 'cifar-10'; did you mean 'cifar10'?"),
    "budget": (["run", *QUICK, "--budget", "smoek"], "unknown budget 'smoek'; did you mean 'smoke'?"),
    "--set key": (["run", *QUICK, "--budget", "smoke", "--set", "eval_epoch=3"],
                  "unknown configuration key 'eval_epoch' for random/nb201; did you mean 'eval_epochs'?"),
    "config command": (["config", "--method", "random", "--space", "nb201", "--set", "rs_candidate=3"],
                       "did you mean 'rs_candidates'?"),
    "a list of methods": (["run", "--method", "random,gdsa", "--space", "nb201"], "did you mean 'gdas'?"),
}


@pytest.mark.parametrize("case", sorted(SUGGESTIONS))
def test_an_unknown_name_gets_the_closest_valid_one(case, tmp_path, capsys):
    argv, expected = SUGGESTIONS[case]
    assert main([*argv, *(["--out", str(tmp_path / "out")] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("line, expected", [
    ('budget = "papr"\n', "unknown budget 'papr'; did you mean 'paper'?"),
    ('dataset = ["digits"]\n', "unknown key 'dataset'; did you mean 'datasets'?"),
    ('[variants]\nfast = {method = "randmo"}\n', "variant 'fast': unknown method 'randmo'; did you mean 'random'?"),
    ('[variants]\nfast = {method = "random", sets = []}\n', "unknown key 'sets'; did you mean 'set'?"),
])
def test_a_study_files_unknown_names_get_the_closest_valid_one(line, expected, tmp_path, capsys):
    study = tmp_path / "s.toml"
    study.write_text('datasets = ["digits"]\nspaces = ["nb201"]\nmethods = ["random"]\n' + line)
    assert main(["study", "run", str(study), "--out", str(tmp_path / "out")]) == 2
    assert expected in capsys.readouterr().err


def test_unknown_name_without_a_close_one_lists_the_valid_names():
    assert closest("mnist", ["digits", "cifar10"]) is None
    assert unknown_name("dataset", "mnist", ["digits", "cifar10"]) == (
        "unknown dataset 'mnist'; valid datasets: digits, cifar10")
    assert unknown_name("budget", "PAPER", ["smoke", "paper"]) == (
        "unknown budget 'PAPER'; did you mean 'paper'? (valid budgets: smoke, paper)")
    assert unknown_name("key", "lr", ["w_lr", "eval_lr"], where=" for x/y", see="see 'config'") == (
        "unknown key 'lr' for x/y; did you mean 'w_lr'? (see 'config')")
