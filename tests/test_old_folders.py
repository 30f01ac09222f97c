"""Folders made by the harness before the typed spec (``tests/data/old_folders``, made by the code of commit fd59792
with ``run --method random --space nb201 --dataset digits --budget smoke --seeds 2 --name old-run`` and a two-cell
study of random and a variant, then one record of each deleted) are read and resumed by today's code: every field
of their ``experiment.json`` comes back, and a resume runs exactly the seeds without a record, into the same paths."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from harness.core.storage import location
from harness.spec import ExperimentSpec

OLD = Path(__file__).parent / "data" / "old_folders"
RUN_SPEC = OLD / "old-run" / "experiment.json"
CELLS = {"random-nb201-digits-1ca170aa82": ("random", [1]), "random-1k-nb201-digits-ad4fcd7794": ("random-1k", [0])}
# The keys the first experiment.json (commit b762bec) did not have yet.
LATER_KEYS = ("split", "callbacks", "mlflow_uri", "ship_code", "cell", "study")


def stored_specs() -> list[dict]:
    """Every experiment.json the old code wrote, and the cells' specs inside its study.json."""
    files = [RUN_SPEC, *(OLD / "old-study" / "cells" / f / "experiment.json" for f in CELLS)]
    study = json.loads((OLD / "old-study" / "study.json").read_text())
    return [json.loads(p.read_text()) for p in files] + [study["specs"][f] for f in study["cells"]]


@pytest.mark.parametrize("k", range(5))
def test_every_stored_spec_reads_back_field_by_field(k):
    stored = stored_specs()[k]
    spec = ExperimentSpec.from_json(stored)
    assert spec.to_json() == stored  # what the file carried, every key, every value
    assert spec.folder == Path(stored["out"]) / stored["experiment"] and spec.name == stored["experiment"]
    assert spec.records_dir == location(stored["records_dir"])  # the duplicate key agrees with the one folder
    assert spec.checkpoints_dir == spec.folder / "checkpoints" and spec.tune_dir == spec.folder / "tune"
    assert spec.seeds == (0, 1) and spec.method == "random" and spec.split == stored["split"]
    assert (spec.cell, spec.study) == (stored.get("cell"), stored.get("study"))
    assert spec.record_path(1) == spec.folder / "trials" / "random-nb201-digits-s1.json"
    assert spec.checkpoint_path(1) == spec.folder / "checkpoints" / "random-nb201-digits-s1.pt"


def test_the_first_format_reads_with_the_defaults_it_ran_with():
    stored = {k: v for k, v in json.loads(RUN_SPEC.read_text()).items() if k not in LATER_KEYS}
    spec = ExperimentSpec.from_json(stored)
    assert (spec.split, spec.callbacks, spec.mlflow_uri, spec.ship_code, spec.cell) == (None, (), None, True, None)
    assert spec.to_json() == {**stored, "callbacks": [], "mlflow_uri": None, "ship_code": True}


def test_a_file_without_a_required_key_is_named():
    stored = json.loads(RUN_SPEC.read_text())
    del stored["config_hash"], stored["seeds"]
    with pytest.raises(ValueError, match="seeds, config_hash"):
        ExperimentSpec.from_json(stored)


def fake_trials(monkeypatch) -> list[tuple[Path, int, Path]]:
    """``run_jobs`` replaced: records each job's (folder, seed, record path) and runs nothing."""
    import harness.experiment as experiment

    ran: list[tuple[Path, int, Path]] = []

    def run_jobs(jobs, done, exp_dir, options, console, costs=None):
        ran.extend((spec.folder, seed, spec.record_path(seed)) for spec, seed in jobs)
        return [], True

    monkeypatch.setattr(experiment, "run_jobs", run_jobs)
    return ran


def resume(out: Path, name: str) -> int:
    from harness.experiment import RunRequest, run

    return run(RunRequest(method=None, space=None, dataset=None, budget=None, seeds=None, overrides=[], out=out,
                          name=name, resume=True), Console(width=200))


def test_an_old_run_resumes_its_missing_seed_only(tmp_path, monkeypatch, capsys):
    ran = fake_trials(monkeypatch)
    shutil.copytree(OLD / "old-run", tmp_path / "old-run")
    assert resume(tmp_path, "old-run") == 130  # interrupted: the fake trial wrote no record
    exp = tmp_path / "old-run"
    assert ran == [(exp, 1, exp / "trials" / "random-nb201-digits-s1.json")]
    out = " ".join(capsys.readouterr().out.split())
    assert f"the experiment was made in /tmp/h1old/old-run; it continues in {exp}" in out
    rewritten = json.loads((exp / "experiment.json").read_text())
    assert rewritten == {**json.loads(RUN_SPEC.read_text()), "out": str(tmp_path),
                         "records_dir": str(exp / "trials")}


def test_an_old_study_resumes_each_cells_missing_seed_only(tmp_path, monkeypatch, capsys):
    ran = fake_trials(monkeypatch)
    shutil.copytree(OLD / "old-study", tmp_path / "old-study")
    assert resume(tmp_path, "old-study") == 130
    cells = tmp_path / "old-study" / "cells"
    assert sorted(ran) == sorted((cells / f, seed, cells / f / "trials" / f"random-nb201-digits-s{seed}.json")
                                 for f, (_, seeds) in CELLS.items() for seed in seeds)
    out = " ".join(capsys.readouterr().out.split())
    assert f"the study was made in /tmp/h1old/old-study; it continues in {tmp_path / 'old-study'}" in out
    assert "2 trials left to run" in out
    study = json.loads((tmp_path / "old-study" / "study.json").read_text())
    assert study["cells"] == list(CELLS) and sorted(study["specs"]) == sorted(CELLS)
    assert all(s["out"] == str(cells) for s in study["specs"].values())


@pytest.mark.slow
def test_an_old_run_and_study_finish_through_ray(tmp_path, ray_session, capsys):
    """The resumes run for real: each missing record is written where the old records lie, the others untouched."""
    for name in ("old-run", "old-study"):
        shutil.copytree(OLD / name, tmp_path / name)
    kept = {p: p.read_bytes() for p in tmp_path.rglob("trials/*.json")}
    assert resume(tmp_path, "old-run") == 0
    assert resume(tmp_path, "old-study") == 0
    records = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("trials/*.json"))
    assert records == ["old-run/trials/random-nb201-digits-s0.json", "old-run/trials/random-nb201-digits-s1.json",
                       *(f"old-study/cells/{f}/trials/random-nb201-digits-s{s}.json" for f in sorted(CELLS)
                         for s in (0, 1))]
    assert all(p.read_bytes() == data for p, data in kept.items())


def test_a_spec_on_an_object_store_keeps_its_uri_and_query():
    """``out`` of an experiment on an object store is a URI with its query (the endpoint): it comes back whole, and
    the record and Tune paths lie under it."""
    from harness.core.storage import Remote

    stored = {**json.loads(RUN_SPEC.read_text()), "out": "s3://bucket/runs?endpoint_override=127.0.0.1:9000",
              "records_dir": "s3://bucket/runs/old-run/trials?endpoint_override=127.0.0.1:9000"}
    spec = ExperimentSpec.from_json(stored)
    assert isinstance(spec.folder, Remote) and str(spec.folder) == "s3://bucket/runs/old-run"
    assert spec.to_json() == stored
    assert str(spec.record_path(0)) == "s3://bucket/runs/old-run/trials/random-nb201-digits-s0.json"
    assert spec.tune_dir.uri == "s3://bucket/runs/old-run/tune?endpoint_override=127.0.0.1:9000"
