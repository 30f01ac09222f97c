"""``tools/measurements.py``: docs/measurements.md is made from records alone, each entry with its command; bad input
is one line and exit status 2. In-process, on crafted records folders (no run, no Ray)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("measurements", ROOT / "tools" / "measurements.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["measurements"] = module
    spec.loader.exec_module(module)
    return module


measurements = _load_script()

ENV = {"torch": "2.14.1+cpu", "cuda": None, "blas": "openblas", "cpu_capability": "AVX2", "numpy": "2.4.6",
       "python": "3.11.7", "cpu": "Test CPU", "cpu_count": 4, "gpu": None}
MANIFEST = """
[[entry]]
id = "tiny"
title = "Two methods, two seeds"
command = "python -m harness run --method darts,gdas --space darts --seeds 2 --budget smoke --dataset digits"
records = "docs/measurements/tiny"
note = "Crafted for the test."
"""


def record(method: str, seed: int, test_acc: float, search_seconds: float) -> dict:
    return {"method": method, "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
            "experiment": "tiny", "config": {"eval_epochs": 4}, "config_hash": f"hash-{method}", "overrides": {},
            "test_acc": test_acc, "test_acc_source": "digits test", "search_seconds": search_seconds,
            "correlation_seconds": 5.0, "eval_seconds": 25.0, "device_hours": (search_seconds + 30.0) / 3600,
            "params_m": 0.25, "madds_m": 3.5, "environment": ENV, "finished_at": "2026-12-01T10:00:00+00:00"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "measurements.toml").write_text(MANIFEST)
    trials = tmp_path / "docs" / "measurements" / "tiny" / "trials"
    trials.mkdir(parents=True)
    for method, accs, search in (("darts", (90.0, 94.0), 60.0), ("gdas", (91.0, 96.0, 95.5), 90.0)):
        for seed, acc in enumerate(accs):
            (trials / f"{method}-darts-digits-s{seed}.json").write_text(json.dumps(record(method, seed, acc, search)))
    run = {"command": "ignored: the page shows the manifest's", "started_at": "2026-12-01T09:58:00+00:00",
           "wall_seconds": 150.0, "load_before": [0.3, 0.2, 0.1], "load_after": [3.5, 1.0, 0.5], "cpu_count": 4,
           "revision": "abc1234"}
    (trials.parent / "run.json").write_text(json.dumps(run))
    return tmp_path


def rows(text: str) -> dict[str, list[str]]:
    """The page's table rows by method: their cells."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in ("darts", "gdas"):
            out[cells[0]] = cells
    return out


def test_write_makes_each_row_from_the_records_with_its_command_and_source(root, capsys):
    assert measurements.main(["write"], root=root) == 0
    text = (root / "docs" / "measurements.md").read_text()
    command = ("`python -m harness run --method darts,gdas --space darts --seeds 2 --budget smoke --dataset digits "
               "--out docs/measurements --name tiny`")
    assert command in text
    assert "### darts · search dataset digits · smoke budget" in text
    assert "Test accuracy: digits test, network trained 4 epochs." in text  # harness.leaderboard.test_source
    assert "[docs/measurements/tiny/](measurements/tiny/) (5 trials" in text
    assert "Date: 2026-12-01 (UTC), code abc1234" in text
    assert ("2.50 min; load average 0.3 before the command and 3.5 at its end (its own trials included), on 4 "
            "logical cores\n") in text  # not a loaded machine: 0.3 before it on 4 cores
    assert ("Environment: torch 2.14.1+cpu (CPU-only build) · BLAS openblas · AVX2 · numpy 2.4.6 · Python 3.11.7 · "
            "CPU Test CPU (4 logical cores)") in text
    assert "Crafted for the test." in text
    assert ("| method | seeds | test acc % (mean ± std) | per seed | search | trial time | params (M) | "
            "multiply-adds (M) |") in text
    table = rows(text)
    # gdas: mean of 91, 96, 95.5 = 94.17, sample std 2.75; ranked first; search 1.50 min, trial 2.00 min
    assert table["gdas"] == ["gdas", "0, 1, 2", "94.17 ± 2.75", "91.00, 96.00, 95.50", "1.50 min", "2.00 min",
                             "0.25", "3.50"]
    assert table["darts"] == ["darts", "0, 1", "92.00 ± 2.83", "90.00, 94.00", "1.00 min", "1.50 min", "0.25",
                              "3.50"]
    assert text.index("| gdas |") < text.index("| darts |")
    assert capsys.readouterr().out == "wrote docs/measurements.md (1 entries)\n"


def test_check_says_whether_the_page_is_current(root, capsys):
    assert measurements.main(["write"], root=root) == 0
    assert measurements.main(["write", "--check"], root=root) == 0
    page = root / "docs" / "measurements.md"
    page.write_text(page.read_text().replace("94.17", "99.99"))  # edited by hand
    assert measurements.main(["write", "--check"], root=root) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("docs/measurements.md is not what the records give")


def test_a_missing_records_folder_is_one_line_and_exit_2(root, capsys):
    page = root / "docs" / "measurements.md"
    page.write_text("the page before\n")
    shutil.rmtree(root / "docs" / "measurements" / "tiny")
    assert measurements.main(["write"], root=root) == 2
    err = capsys.readouterr().err
    assert err == ("measurements: entry 'tiny': records folder docs/measurements/tiny does not exist; run "
                   "'python tools/measurements.py run tiny' first\n")
    assert page.read_text() == "the page before\n"  # nothing half-written


@pytest.mark.parametrize("manifest, message", [
    ("", "no [[entry]] tables"),
    ("[[entry]]\nid = 'x'\n", "'title' must be a non-empty string"),
    (MANIFEST.replace("--dataset digits", "--dataset digits --out /tmp"), "leave --out and --name out"),
    (MANIFEST.replace('records = "docs/measurements/tiny"', 'records = "../outside"'), "inside the repository"),
    (MANIFEST + MANIFEST, "entry id 'tiny' appears twice"),
    ("[[entry]\n", "not valid TOML"),
])
def test_a_bad_manifest_is_one_line_and_exit_2(root, capsys, manifest, message):
    (root / "tools" / "measurements.toml").write_text(manifest)
    assert measurements.main(["write"], root=root) == 2
    err = capsys.readouterr().err
    assert err.startswith("measurements: ") and message in err and err.count("\n") == 1, err


def test_run_refuses_an_unknown_entry(root, capsys):
    assert measurements.main(["run", "nope"], root=root) == 2
    assert "no entry 'nope' in tools/measurements.toml (entries: tiny)" in capsys.readouterr().err


def test_a_harness_entry_runs_with_out_and_name_from_its_folder():
    (entry,) = [e for e in measurements.load_manifest(ROOT) if e.id == "quickstart"]
    assert entry.argv()[-4:] == ["--out", "docs/measurements", "--name", "quickstart"]


def test_a_pair_records_file_gets_its_source_when_todays_configuration_is_the_one_it_ran(tmp_path):
    """The baseline keeps the configuration's hash, not the configuration: the source of a figure is said only where
    today's resolved configuration has that hash (and a looked-up figure is the column the trial would name)."""
    from harness.core.config import config_hash, resolve
    from harness.core.registry import get_method, get_space
    from harness.leaderboard import test_source

    (entry,) = [e for e in measurements.load_manifest(ROOT) if e.kind == "pair_records"]
    values = resolve(get_method("random"), get_space("nb201"), "smoke").values
    table = get_space("nb201")(values).benchmark()
    column, _ = table.target_column("digits")
    kept = {"test_acc": 93.0, "benchmark": {column: 93.0}, "environment": ENV,
            "config_hash": config_hash("random", "nb201", "digits", "smoke", values)}
    (tmp_path / "random-nb201.json").write_text(json.dumps(kept))
    made = measurements.pair_record(tmp_path / "random-nb201.json", entry)
    assert (made["method"], made["space"], made["dataset"], made["budget"], made["seed"]) == \
        ("random", "nb201", "digits", "smoke", 0)
    assert test_source(made, {}) == f"{table.figure_label(column)}, look-up"
    kept["config_hash"] = "another"  # a configuration that is not today's: nothing is said
    (tmp_path / "random-nb201.json").write_text(json.dumps(kept))
    made = measurements.pair_record(tmp_path / "random-nb201.json", entry)
    assert "config" not in made and test_source(made, {}) == ""


def _fake_run(status: int, made: list[str]):
    """A stand-in for the harness subprocess: writes ``made`` files under the --out/--name folder, exits ``status``."""
    real = measurements.subprocess.run

    def run(argv, cwd=None, env=None, **kwargs):
        if argv[0] == "git":  # the revision: not the command
            return real(argv, cwd=cwd, env=env, **kwargs)
        args = list(argv)
        folder = Path(cwd) / args[args.index("--out") + 1] / args[args.index("--name") + 1]
        for name in made:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text("{}")
        return measurements.subprocess.CompletedProcess(argv, status)
    return run


def test_run_keeps_the_records_and_what_made_them_not_ray_tunes_folder(root, monkeypatch):
    made = ["experiment.json", "trials/darts-darts-digits-s0.json", "leaderboard.csv", "tune/tuner.pkl",
            "tune/trial/events.out.tfevents", "checkpoints/x.pt", ".driver.lock"]
    monkeypatch.setattr(measurements.subprocess, "run", _fake_run(0, made))
    (entry,) = measurements.load_manifest(root)
    assert measurements.run_entry(entry, root) == 0
    folder = root / "docs" / "measurements" / "tiny"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == \
        ["experiment.json", "leaderboard.csv", "run.json", "trials/darts-darts-digits-s0.json"]
    meta = json.loads((folder / "run.json").read_text())
    assert meta["command"].endswith("--dataset digits --out docs/measurements --name tiny")
    assert meta["wall_seconds"] >= 0 and meta["cpu_count"] and not (folder.parent / ".tiny.previous").exists()


def test_a_failed_run_leaves_the_previous_records_as_they_were(root, monkeypatch):
    folder = root / "docs" / "measurements" / "tiny"
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    monkeypatch.setattr(measurements.subprocess, "run", _fake_run(1, ["experiment.json", "trials/half.json"]))
    (entry,) = measurements.load_manifest(root)
    assert measurements.run_entry(entry, root) == 1
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before
    assert not (folder.parent / ".tiny.previous").exists()
