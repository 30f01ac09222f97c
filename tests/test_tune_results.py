"""Ray Tune's own results of a run through the CLI: result.json, progress.csv, params.json and TensorBoard's events
in every trial folder, ExperimentAnalysis and the ResultGrid with one row per seed, the same after a resume; the
MLflow logger of ``--callback mlflow`` (when mlflow is installed) and the one-line refusal of a logger whose package
is missing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from helpers import result_frame

from harness.cli import main

SMOKE = ["--method", "gdas", "--space", "nb201", "--budget", "smoke", "--dataset", "digits",
         "--set", "arch_corr_samples=50"]
RAY_FILES = ("result.json", "progress.csv", "params.json")


def trial_dirs(exp: Path) -> list[Path]:
    return sorted(p for p in (exp / "tune").iterdir() if p.is_dir())


def records(exp: Path) -> dict[int, dict]:
    return {r["seed"]: r for r in (json.loads(p.read_text()) for p in (exp / "trials").glob("*.json"))}


def check_ray_files(exp: Path, seeds: int) -> None:
    dirs = trial_dirs(exp)
    assert len(dirs) == seeds
    for trial in dirs:
        for name in RAY_FILES:
            assert (trial / name).is_file() and (trial / name).stat().st_size > 0, (trial, name)
        assert list(trial.glob("events.out.tfevents.*")), f"no TensorBoard events in {trial}"


@pytest.fixture(scope="module")
def tb_run(ray_session, tmp_path_factory):
    """One real run of two seeds through the CLI with the MLflow callback (module-scoped: every check of Ray's folder
    and of MLflow's reads it; the resume test, which adds a run, comes after them)."""
    out = tmp_path_factory.mktemp("tune-results")
    assert main(["run", *SMOKE, "--seeds", "2", "--out", str(out), "--name", "tb", "--callback", "mlflow"]) == 0
    return out, out / "tb"


def test_every_trial_folder_has_ray_results(tb_run):
    _, exp = tb_run
    check_ray_files(exp, 2)
    params = json.loads((trial_dirs(exp)[0] / "params.json").read_text())
    assert set(params) == {"job"}


def test_experiment_analysis_has_one_row_per_seed(tb_run):
    from ray import tune

    _, exp = tb_run
    frame = tune.ExperimentAnalysis(str(exp / "tune")).dataframe()
    assert len(frame) == 2 and sorted(frame["seed"]) == [0, 1]
    by_seed = records(exp)
    for _, row in frame.iterrows():
        record = by_seed[int(row["seed"])]
        assert row["phase"] == "done" and row["method"] == "gdas" and row["space"] == "nb201"
        assert row["experiment"] == "tb" and row["config_hash"] == record["config_hash"]
        assert row["test_acc"] == pytest.approx(record["test_acc"])
        assert row["params_m"] == pytest.approx(record["params_m"])
        assert row["madds_m"] == pytest.approx(record["madds_m"])  # a figure beyond the summary's


def test_result_grid_has_one_row_per_seed(tb_run):
    _, exp = tb_run
    frame = result_frame(exp / "tune")
    assert sorted(frame["seed"]) == [0, 1] and set(frame["phase"]) == {"done"}
    by_seed = records(exp)
    for _, row in frame.iterrows():
        assert row["test_acc"] == pytest.approx(by_seed[int(row["seed"])]["test_acc"])


def test_result_json_holds_every_report(tb_run):
    _, exp = tb_run
    for trial in trial_dirs(exp):
        lines = [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]
        phases = [r["phase"] for r in lines]  # the search's epochs, then each later phase as it begins (the
        searched = phases.count("search")     # progress display's), then the record's figures
        assert searched >= 1 and phases == ["search"] * searched + ["correlation", "latency", "done"], phases
        assert [r["epochs"] for r in lines[:searched]] == [searched] * searched
        assert all(isinstance(r["seed"], int) and r["dataset"] == "digits" for r in lines)


def test_progress_csv_ends_with_the_summary(tb_run):
    import pandas as pd

    _, exp = tb_run
    by_seed = records(exp)
    for trial in trial_dirs(exp):
        last = pd.read_csv(trial / "progress.csv").iloc[-1]
        assert last["phase"] == "done"
        assert last["test_acc"] == pytest.approx(by_seed[int(last["seed"])]["test_acc"])


def test_tensorboard_events_hold_the_metrics(tb_run):
    from tensorboardX.proto import event_pb2

    _, exp = tb_run
    for trial in trial_dirs(exp):
        tags = set()
        for path in trial.glob("events.out.tfevents.*"):
            data, pos = path.read_bytes(), 0
            while pos < len(data):  # TFRecord: length (8 bytes), its CRC (4), the event, its CRC (4)
                length = int.from_bytes(data[pos:pos + 8], "little")
                event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + length])
                tags.update(v.tag for v in event.summary.value)
                pos += 16 + length
        assert "ray/tune/test_acc" in tags and "ray/tune/progress" in tags


def test_mlflow_callback_logs_every_trial(tb_run):
    from mlflow.tracking import MlflowClient

    _, exp = tb_run
    spec = json.loads((exp / "experiment.json").read_text())
    assert spec["callbacks"] == ["mlflow"] and spec["mlflow_uri"] is None
    client = MlflowClient((exp / "mlruns").absolute().as_uri())
    experiment = client.get_experiment_by_name("tb")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.data.params["seed"] for run in runs) == ["0", "1"]
    for run in runs:
        record = records(exp)[int(run.data.params["seed"])]
        assert run.info.status == "FINISHED"
        assert run.data.metrics["test_acc"] == pytest.approx(record["test_acc"])
        assert run.data.params["method"] == "gdas" and run.data.params["config_hash"] == record["config_hash"]
        assert len(client.get_metric_history(run.info.run_id, "progress")) >= 2


def test_resume_has_its_own_ray_results(tb_run):
    """A resume is a fresh Ray Tune experiment of the missing seed in the same tune/ folder: the seed's trial
    folder holds the resumed run's results, and ExperimentAnalysis reads the newest experiment."""
    from ray import tune

    out, exp = tb_run
    folder_of_1 = trial_dirs(exp)[1]
    first_id = json.loads((folder_of_1 / "result.json").read_text().splitlines()[-1])["trial_id"]
    record_of_1 = next(p for p in (exp / "trials").glob("*.json") if json.loads(p.read_text())["seed"] == 1)
    record_of_1.unlink()
    assert main(["run", "--resume", "--name", "tb", "--out", str(out)]) == 0
    assert record_of_1.is_file()
    check_ray_files(exp, 2)
    lines = [json.loads(line) for line in (folder_of_1 / "result.json").read_text().splitlines()]
    assert {r["trial_id"] for r in lines} != {first_id} and lines[-1]["trial_id"] != first_id
    last = lines[-1]
    assert last["phase"] == "done" and last["test_acc"] == pytest.approx(records(exp)[1]["test_acc"])
    for frame in (tune.ExperimentAnalysis(str(exp / "tune")).dataframe(), result_frame(exp / "tune")):
        assert list(frame["seed"]) == [1]
        assert frame["test_acc"].iloc[0] == pytest.approx(records(exp)[1]["test_acc"])


def test_callbacks_stay_out_of_the_configuration_hash(tmp_path):
    from harness.experiment import RunRequest, build_spec

    def spec(callbacks):
        return build_spec(RunRequest(method="gdas", space="nb201", dataset="digits", budget="smoke", seeds=[0],
                                     overrides=[], out=tmp_path, name="h", cpus_per_trial=None, gpus_per_trial=None,
                                     max_concurrent=None, max_failures=None, address=None, data_dir=None,
                                     resume=False, callbacks=callbacks))

    plain, logged = spec(None), spec(["mlflow", "wandb"])
    assert plain.config_hash == logged.config_hash
    assert plain.callbacks == () and logged.callbacks == ("mlflow", "wandb")


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
@pytest.mark.parametrize("command", [["run", *SMOKE], ["study", "run", "studies/none.toml"]])
def test_missing_wandb_is_one_line_and_exit_2(command, tmp_path, capsys):
    assert main([*command, "--out", str(tmp_path), "--name", "w", "--callback", "wandb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--callback wandb" in err[0] and "nas-harness[wandb]" in err[0]
    assert not any(tmp_path.iterdir())


def test_mlflow_uri_needs_the_mlflow_callback(tmp_path, capsys):
    assert main(["run", *SMOKE, "--out", str(tmp_path), "--name", "u", "--mlflow-uri", "file:/tmp/x"]) == 2
    assert "--callback mlflow" in capsys.readouterr().err
