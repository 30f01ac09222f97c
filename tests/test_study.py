"""Studies: the file's refusals (one line, exit 2, nothing written), the cells a file gives, the one-space shorthand,
and one study through Ray: every (cell, seed) in one experiment, each cell an experiment folder of its own, and a
resume that runs exactly the trials without a record."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from helpers import one_line

from harness.cli import main
from harness.core.errors import UserError
from harness.estimate import TrialCost
from harness.study import one_space_study, parse_study

GOOD = """
budget = "smoke"
seeds = 2
datasets = ["digits"]
spaces = ["nb201", "hetero"]
methods = ["darts", "gdas", "nos", "nos-noags"]

[variants]
nos-noags = {method = "nos", set = ["ags=false"]}

[space_methods]
nb201 = ["darts", "gdas"]
hetero = ["darts", "nos", "nos-noags"]
"""


def test_a_study_file_gives_its_cells():
    study = parse_study(GOOD, "good.toml", "good")
    assert (study.name, study.budget, study.seeds) == ("good", "smoke", [0, 1])
    assert [(c.name, c.method, c.space, c.dataset, c.overrides) for c in study.cells] == [
        ("darts", "darts", "nb201", "digits", []), ("gdas", "gdas", "nb201", "digits", []),
        ("darts", "darts", "hetero", "digits", []), ("nos", "nos", "hetero", "digits", []),
        ("nos-noags", "nos", "hetero", "digits", ["ags=false"])]
    assert [c.folder for c in study.cells][-1].startswith("nos-noags-hetero-digits-")
    assert parse_study(GOOD.replace("seeds = 2", "seeds = [3, 7]"), "x", "x").seeds == [3, 7]


@pytest.mark.parametrize("change,words", [
    (("budget = \"smoke\"", "budget = \"smoke\"\nextra = 1"), "unknown key 'extra'"),
    (("[space_methods]\nnb201 = [\"darts\", \"gdas\"]\nhetero = [\"darts\", \"nos\", \"nos-noags\"]\n", ""),
     "'nos' (nos) does not run on space 'nb201'"),
    (("nos-noags = {", "darts = {method = \"gdas\"}\nnos-noags = {"), "variant 'darts' has the name of a method"),
    (("nos-noags = {method", "nos-noags = {method = \"nos\"}\nnos-noags = {method"), "not valid TOML"),
    (("seeds = 2", "seeds = 2\nseeds = 3"), "not valid TOML"),
    (("budget = \"smoke\"", "budget = [\"smoke\""), "not valid TOML"),
    (("methods = [\"darts\", \"gdas\"", "methods = [\"darts\", \"gdaz\""), "'gdaz' is neither a method"),
    (("spaces = [\"nb201\", \"hetero\"]", "spaces = [\"nb201\", \"hetero\", \"nb202\"]"), "unknown space 'nb202'"),
    (("seeds = 2", "seeds = [1, 1]"), "repeats a seed"),
    (("seeds = 2", "seeds = 0"), "seeds = 0"),
    (("budget = \"smoke\"", "budget = \"huge\""), "unknown budget 'huge'"),
    (("{method = \"nos\", set", "{method = \"nos\", sett"), "unknown key 'sett'"),
    (("hetero = [\"darts\", \"nos\", \"nos-noags\"]", "hetero = [\"darts\", \"nos\", \"nos\"]"), "lists 'nos' twice"),
    (("datasets = [\"digits\"]\n", ""), "missing 'datasets'"),
    (("budget = \"smoke\"", "budget = [\"smoke\"]"), "'budget' must be a string"),
    (("{method = \"nos\", set", "{method = [\"nos\"], set"), "variant 'nos-noags': 'method' must be a string"),
    (("budget = \"smoke\"", "budget = \"smoke\"\ndeep = " + "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    (("budget = \"smoke\"", "budget = \"smoke\"\n# " + "x" * 2**20), "larger than 1 MiB"),
])
def test_bad_study_files_are_refused_in_one_line(change, words, tmp_path, capsys):
    old, new = change
    assert old in GOOD
    path = tmp_path / "bad.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(UserError) as exc:
        parse_study(path.read_text(), str(path), "bad")
    assert words in one_line(exc)
    out = tmp_path / "results"
    assert main(["study", "run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words in err
    assert not out.exists()  # nothing written


@pytest.mark.parametrize("change,words", [
    ("ags=false", "ags=maybe"), ("ags=false", "agz=false"), ("[\"digits\"]", "[\"mnist\"]"),
])
def test_cells_are_checked_key_by_key_before_anything_runs(change, words, tmp_path, capsys):
    path = tmp_path / "study.toml"
    path.write_text(GOOD.replace(change, words))
    out = tmp_path / "results"
    assert main(["study", "run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and words.split("=")[0].strip("[]\"") in err
    assert not out.exists()


def test_a_study_file_that_is_not_a_regular_file_is_one_line(tmp_path, capsys):
    """A FIFO (or /dev/zero) given as the study file: one line, not a driver waiting for a writer for ever."""
    fifo = tmp_path / "study.toml"
    os.mkfifo(fifo)
    assert main(["study", "run", str(fifo), "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "not a regular file" in err


def test_missing_file_and_existing_study_are_refused(tmp_path, capsys):
    assert main(["study", "run", str(tmp_path / "none.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    path = tmp_path / "s.toml"
    path.write_text(GOOD)
    (tmp_path / "results" / "s").mkdir(parents=True)
    assert main(["study", "run", str(path), "--out", str(tmp_path / "results")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_run_with_several_methods_is_a_one_space_study():
    study = one_space_study(["darts", "gdas"], "nb201", "digits", "smoke", [0, 1], [], "pair")
    assert [(c.name, c.method, c.space) for c in study.cells] == [("darts", "darts", "nb201"),
                                                                  ("gdas", "gdas", "nb201")]
    shared = one_space_study(["darts", "gdas"], "nb201", "digits", "smoke", [0], ["corr_edges=1"], "pair")
    assert [(c.name, c.method, c.overrides) for c in shared.cells] == [("darts-set", "darts", ["corr_edges=1"]),
                                                                       ("gdas-set", "gdas", ["corr_edges=1"])]


TINY = """
name = "tiny"
budget = "smoke"
seeds = 2
datasets = ["digits"]
spaces = ["nb201"]
methods = ["gdas", "gdas-q"]

[variants]
gdas-q = {method = "gdas", set = ["arch_corr_samples=50", "oneshot_samples=10", "tau_max=5"]}
"""


@pytest.fixture(scope="module")
def tiny_study(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    (root / "tiny.toml").write_text(TINY)
    assert main(["study", "run", str(root / "tiny.toml"), "--out", str(root / "results"),
                 "--cpus-per-trial", "1"]) == 0
    return root / "results" / "tiny"


def test_a_study_runs_every_cell_and_seed(tiny_study):
    assert (tiny_study / "study.toml").read_text() == TINY
    stored = json.loads((tiny_study / "study.json").read_text())
    folders = [c.folder for c in parse_study(TINY, "tiny.toml", "tiny").cells]
    assert stored["cells"] == folders and folders[0].startswith("gdas-nb201-digits-")
    for cell, name, overrides in ((folders[0], "gdas", {}), (folders[1], "gdas-q", {"arch_corr_samples": 50,
                                                                                  "oneshot_samples": 10,
                                                                                  "tau_max": 5.0})):
        spec = json.loads((tiny_study / "cells" / cell / "experiment.json").read_text())
        assert spec["overrides"] == overrides and spec["cell"] == name
        records = sorted((tiny_study / "cells" / cell / "trials").glob("*.json"))
        assert [p.name for p in records] == ["gdas-nb201-digits-s0.json", "gdas-nb201-digits-s1.json"]
        for path in records:
            record = json.loads(path.read_text())
            assert record["config_hash"] == spec["config_hash"] and record["test_acc"] > 10.0
    board = pd.read_csv(tiny_study / "leaderboard.csv", keep_default_na=False)
    assert sorted(board["variant"]) == ["", "arch_corr_samples=50,oneshot_samples=10,tau_max=5.0"]
    assert list(board["n_seeds"]) == [2, 2]


def test_a_study_resumes_exactly_the_trials_without_a_record(tiny_study, capsys):
    cells = tiny_study / "cells"
    kept = {p: json.loads(p.read_text())["finished_at"] for p in cells.glob("*/trials/*.json")}
    lost = cells / parse_study(TINY, "tiny.toml", "tiny").cells[1].folder / "trials" / "gdas-nb201-digits-s1.json"
    lost.unlink()
    capsys.readouterr()
    assert main(["run", "--resume", "--name", "tiny", "--out", str(tiny_study.parent)]) == 0
    out = capsys.readouterr().out
    assert "1 trials left to run" in out and "finished earlier" in out
    assert lost.is_file()
    for path, finished in kept.items():
        if path != lost:
            assert json.loads(path.read_text())["finished_at"] == finished  # not run again
    assert main(["study", "run", str(tiny_study.parent.parent / "tiny.toml"), "--resume", "--out",
                 str(tiny_study.parent)]) == 0
    assert "nothing to run" in capsys.readouterr().out
    changed = tiny_study.parent.parent / "changed.toml"
    changed.write_text(TINY.replace("tau_max=5", "tau_max=4"))
    assert main(["study", "run", str(changed), "--resume", "--out", str(tiny_study.parent)]) == 2
    assert "no longer describes study 'tiny'" in capsys.readouterr().err


def test_run_resume_of_a_study_hands_on_every_option(tmp_path, monkeypatch):
    """``run --resume --name STUDY`` is the study's resume with the options of how its trials run, --no-ship-code
    among them."""
    import harness.experiment as experiment

    (tmp_path / "st").mkdir()
    (tmp_path / "st" / "study.json").write_text("{}")
    asked = []
    monkeypatch.setattr(experiment, "run_study", lambda req, console: asked.append(req) or 0)
    assert main(["run", "--resume", "--name", "st", "--out", str(tmp_path), "--no-ship-code", "--max-failures", "5",
                 "--max-concurrent", "1"]) == 0
    (req,) = asked
    assert (req.name, req.resume, req.ship_code, req.max_failures, req.max_concurrent) == ("st", True, False, 5, 1)


# --- a study's folder, cells and resume, without running trials ------------------------------------------------------
# ``run_jobs`` is replaced by one that writes each job's record where its spec says (what a trial does at its end), and
# the time estimate by a constant: everything the driver decides before and after its trials runs as it is.

def fake_trials(monkeypatch, during=None) -> list[tuple[str, int, str]]:
    """Replace the trials: every job (spec, seed) writes a small record of its setting at ``record_path``; ``during``
    (if given) is called while the study's driver holds its locks. Returns the (cell folder, seed, records folder)
    of every job run."""
    import harness.experiment as experiment
    from harness.core.records import write_record

    ran: list[tuple[str, int, str]] = []

    def run_jobs(jobs, done, exp_dir, options, console, costs=None):
        if during is not None:
            during()
        for spec, seed in jobs:
            ran.append((spec.name, seed, str(spec.records_dir)))
            write_record(spec.record_path(seed), {"experiment": spec.name, "method": spec.method, "space": spec.space,
                                                  "dataset": spec.dataset, "budget": spec.budget,
                                                  "config_hash": spec.config_hash, "overrides": spec.overrides,
                                                  "seed": seed, "test_acc": 50.0})
        return [], False

    monkeypatch.setattr(experiment, "run_jobs", run_jobs)
    monkeypatch.setattr(experiment, "estimate_seconds",
                        lambda spec, dataset, load_seconds: TrialCost(search=1.0, evaluation=1.0, where="here"))
    return ran


def files_of(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_moved_or_copied_study_resumes_where_out_points(tmp_path, monkeypatch, capsys):
    """Item 2: the cells' specs keep the absolute folder they were made in; a resume must run in the copy --out names,
    not write into (or read its records from) the old place."""
    ran = fake_trials(monkeypatch)
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["study", "run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path / "a"), "--cpus-per-trial",
                 "1"]) == 0
    import shutil

    shutil.copytree(tmp_path / "a", tmp_path / "b")
    old = files_of(tmp_path / "a")
    folder = parse_study(TINY, "tiny.toml", "tiny").cells[1].folder
    (tmp_path / "b" / "tiny" / "cells" / folder / "trials" / "gdas-nb201-digits-s1.json").unlink()
    ran.clear()
    capsys.readouterr()
    assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path / "b")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ran == [(folder, 1, str(tmp_path / "b" / "tiny" / "cells" / folder / "trials"))]
    assert f"the study was made in {tmp_path / 'a' / 'tiny'}; it continues in {tmp_path / 'b' / 'tiny'}" in out
    assert files_of(tmp_path / "a") == old  # the old copy is untouched
    shutil.rmtree(tmp_path / "a")  # moved: the old place is gone, and stays gone
    spec = json.loads((tmp_path / "b" / "tiny" / "cells" / folder / "experiment.json").read_text())
    assert spec["records_dir"] == str(tmp_path / "b" / "tiny" / "cells" / folder / "trials")
    assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path / "b")]) == 0
    assert "nothing to run" in capsys.readouterr().out and not (tmp_path / "a").exists()


def test_cells_get_distinct_bounded_folders(tmp_path, monkeypatch, capsys):
    """Item 4: ``folder:/x/a/b`` and ``folder:/x/a_b`` were one cell folder (one spec kept, a deleted record never run
    again); a path with a space or a long one made the cell's folder name refused as a --name."""
    import harness.experiment as experiment
    from harness.core.data import load_dataset

    for sub in ("x/a/b", "x/a_b", "with space/" + "d" * 90):
        for split in ("train", "test"):
            (tmp_path / sub / split).mkdir(parents=True)
    monkeypatch.setattr(experiment, "load_dataset", lambda *args, **kw: load_dataset("digits"))  # the folders are empty
    ran = fake_trials(monkeypatch)
    pair = [f"folder:{tmp_path / 'x' / 'a' / 'b'}", f"folder:{tmp_path / 'x' / 'a_b'}"]
    study = parse_study(TINY.replace('["digits"]', json.dumps(pair)), "pair.toml", "pair")
    folders = [c.folder for c in study.cells]
    assert len(set(folders)) == 4 and all(len(f) <= 71 for f in folders)
    (tmp_path / "pair.toml").write_text(study.text)
    assert main(["study", "run", str(tmp_path / "pair.toml"), "--out", str(tmp_path / "r"), "--cpus-per-trial",
                 "1"]) == 0
    stored = json.loads((tmp_path / "r" / "tiny" / "study.json").read_text())
    assert stored["cells"] == folders and sorted(stored["specs"]) == sorted(folders)
    records = sorted((tmp_path / "r" / "tiny" / "cells" / folders[0] / "trials").glob("*.json"))
    assert len(records) == 2
    records[1].unlink()
    ran.clear()
    assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path / "r")]) == 0
    assert ran == [(folders[0], 1, str(records[1].parent))]
    long = f"folder:{tmp_path / 'with space' / ('d' * 90)}"
    capsys.readouterr()
    assert main(["run", "--method", "darts,gdas", "--space", "nb201", "--dataset", long, "--budget", "smoke",
                 "--out", str(tmp_path / "r"), "--name", "long", "--cpus-per-trial", "1"]) == 0, capsys.readouterr().err
    assert all(len(p.name) <= 71 for p in (tmp_path / "r" / "long" / "cells").iterdir())


def test_studies_made_with_the_old_cell_folders(tmp_path, monkeypatch, capsys):
    """Studies made before cell folders carried a hash: read and resumed under their own folders; one whose cells
    shared a folder is refused in one line (its records cannot be told apart)."""
    fake_trials(monkeypatch)
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["study", "run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path), "--cpus-per-trial", "1"]) == 0
    study_dir = tmp_path / "tiny"
    stored = json.loads((study_dir / "study.json").read_text())
    for k, folder in enumerate(list(stored["cells"])):  # the old names: <cell>-<space>-<dataset>
        old = folder.rsplit("-", 1)[0]
        (study_dir / "cells" / folder).rename(study_dir / "cells" / old)
        spec = json.loads((study_dir / "cells" / old / "experiment.json").read_text())
        spec.update(experiment=old, records_dir=str(study_dir / "cells" / old / "trials"))
        (study_dir / "cells" / old / "experiment.json").write_text(json.dumps(spec))
        stored["cells"][k] = old
        stored["specs"][old] = spec
        del stored["specs"][folder]
    (study_dir / "study.json").write_text(json.dumps(stored))
    capsys.readouterr()
    assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path)]) == 0
    assert "nothing to run" in capsys.readouterr().out
    stored["cells"][1] = stored["cells"][0]  # two cells in one folder, as folder:/x/a/b and folder:/x/a_b were
    (study_dir / "study.json").write_text(json.dumps(stored))
    before = files_of(study_dir)
    assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"share the folder 'cells/{stored['cells'][0]}'" in err
    assert files_of(study_dir) == before


def test_a_study_driver_holds_every_cell(tmp_path, monkeypatch, capsys):
    """Item 5a: while a study runs, ``run --resume`` of one of its cells (an experiment folder) is refused, and a
    study is not resumed while one of its cells is run by another driver."""
    from harness.experiment import driver_lock

    study_dir = tmp_path / "tiny"
    folder = parse_study(TINY, "tiny.toml", "tiny").cells[0].folder
    beside: list[tuple[int, str]] = []

    def resume_a_cell():
        capsys.readouterr()
        beside.append((main(["run", "--resume", "--out", str(study_dir / "cells"), "--name", folder]),
                       capsys.readouterr().err.strip()))

    ran = fake_trials(monkeypatch, during=resume_a_cell)
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["study", "run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path), "--cpus-per-trial", "1"]) == 0
    status, err = beside[0]  # (today's code ran it, and the resume's own trials tried the same again)
    assert len(beside) == 1 and status == 2 and "\n" not in err
    assert f"experiment '{folder}' is being run now by process" in err
    assert len(ran) == 4
    (study_dir / "cells" / folder / "trials" / "gdas-nb201-digits-s0.json").unlink()
    with driver_lock(study_dir / "cells" / folder, create=False):
        assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "is being run now by process" in err
    assert len(ran) == 4


def test_a_changed_study_file_adds_its_seeds_or_is_refused(tmp_path, monkeypatch, capsys):
    """Item 6: more seeds in the study file (given again, or the one kept in the study's folder) join every cell,
    said in one line; fewer seeds, or a cell's setting changed, are refused in one line with nothing written."""
    ran = fake_trials(monkeypatch)
    one = TINY.replace("seeds = 2", "seeds = 1")
    (tmp_path / "tiny.toml").write_text(one)
    assert main(["study", "run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path), "--cpus-per-trial", "1"]) == 0
    study_dir, ran[:] = tmp_path / "tiny", []
    (tmp_path / "tiny.toml").write_text(one.replace("seeds = 1", "seeds = 3"))
    capsys.readouterr()
    assert main(["study", "run", str(tmp_path / "tiny.toml"), "--resume", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "resume: adding seeds 1,2" in out and "4 trials left to run" in out
    assert sorted((f, s) for f, s, _ in ran) == sorted((c.folder, s) for c in parse_study(TINY, "t", "t").cells
                                                        for s in (1, 2))
    assert (study_dir / "study.toml").read_text() == one.replace("seeds = 1", "seeds = 3")
    kept = study_dir / "study.toml"
    for change, words in ((("seeds = 3", "seeds = 2"), "leaves out seeds 2 of study 'tiny'"),
                          (("tau_max=5", "tau_max=4"), "changes --set tau_max"),
                          (("budget = \"smoke\"", "budget = \"small\""), "at budget small"),
                          (("methods = [\"gdas\", \"gdas-q\"]", "methods = [\"gdas\"]"), "cell gdas-q on nb201/digits "
                                                                                          "is gone")):
        text = kept.read_text()
        kept.write_text(text.replace(*change))
        before = files_of(study_dir)
        assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and words in err, err
        assert files_of(study_dir) == before
        kept.write_text(text)


def test_resuming_a_study_refuses_what_its_file_says(tmp_path, monkeypatch, capsys):
    """Item 6: ``run --resume --name STUDY`` with an option of what its cells compute dropped it without a word."""
    fake_trials(monkeypatch)
    (tmp_path / "tiny.toml").write_text(TINY)
    assert main(["study", "run", str(tmp_path / "tiny.toml"), "--out", str(tmp_path), "--cpus-per-trial", "1"]) == 0
    (tmp_path / "tiny" / "cells" / parse_study(TINY, "t", "t").cells[0].folder / "trials" /
     "gdas-nb201-digits-s0.json").unlink()
    before = files_of(tmp_path / "tiny")
    for option in (["--method", "darts"], ["--space", "hetero"], ["--dataset", "cifar10"], ["--budget", "small"],
                   ["--set", "tau_max=4"], ["--seeds", "3"], ["--seed-list", "0,5"]):
        capsys.readouterr()
        assert main(["run", "--resume", "--name", "tiny", "--out", str(tmp_path), *option]) == 2, option
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"--resume of study 'tiny' takes no {option[0].replace('-list', 's')}" in err
        assert files_of(tmp_path / "tiny") == before
