"""Results on object storage: ``harness.core.storage`` (names of remote places, reads, atomic puts, listings, one-line
errors) and whole runs with ``--out s3://...`` against a real S3 API server on 127.0.0.1 (moto's, started by the
tests): records, checkpoints, leaderboards, reports and Ray Tune's own storage on the store; ``leaderboard``,
``show``, ``report`` and ``--resume`` read from it; the records equal those of a run on a local disk."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import S3_CREDENTIALS, s3_uri, trial_records
from helpers import result_frame

from harness.checkpoints import load_checkpoint, save_checkpoint
from harness.cli import main
from harness.core.errors import UserError
from harness.core.records import atomic_write_many, check_writable_folder, load_records, write_record
from harness.core.storage import Remote, location, redact, relative_parts, upload_tree, uri

SMOKE = ["--method", "gdas", "--space", "nb201", "--budget", "smoke", "--dataset", "digits"]
SETS = ["arch_corr_samples=50"]
KEPT = ("genotype", "test_acc", "search_val_acc", "op_kendall_tau", "arch_kendall_tau", "oneshot_kendall_tau")


# --- names (nothing is contacted) -----------------------------------------------------------------------------------
def test_location_tells_local_paths_from_uris():
    assert location("results") == Path("results")
    assert location("file:///tmp/x") == Path("/tmp/x")
    assert location(Path("a/b")) == Path("a/b")
    remote = location("s3://bucket/pre/fix/?endpoint_override=127.0.0.1:9000&scheme=http")
    assert isinstance(remote, Remote) and str(remote) == "s3://bucket/pre/fix"
    assert remote.uri == "s3://bucket/pre/fix?endpoint_override=127.0.0.1:9000&scheme=http"
    assert location(remote) is remote
    assert uri(Path("rel")) == str(Path("rel").absolute()) and uri(remote) == remote.uri


# Locations that hold a credential (user-info, or a query option pyarrow's file systems take as one) and the parts of
# them that must never be printed or stored.
LEAKS = {
    "s3 key and secret": ("s3://AKIALEAK:SECRETLEAK@b/p?endpoint_override=127.0.0.1:1&scheme=http",
                          ("AKIALEAK", "SECRETLEAK")),
    "s3 user only": ("s3://AKIALEAK@b/p?endpoint_override=127.0.0.1:1&scheme=http", ("AKIALEAK",)),
    "s3 secret with a slash": ("s3://AKIALEAK:SLASH/LEAK@b/p", ("AKIALEAK", "SLASH")),
    "s3 query": ("s3://b/p?access_key=AKIALEAK&secret_key=SECRETLEAK&session_token=TOKENLEAK",
                 ("AKIALEAK", "SECRETLEAK", "TOKENLEAK")),
    "gcs token": ("gs://b/p?access_token=TOKENLEAK&credentials_expiration=2030-01-01T00:00:00Z", ("TOKENLEAK",)),
    "azure account key": ("abfs://c:KEYLEAK@acct.dfs.core.windows.net/p", ("KEYLEAK",)),
    "azure sas": ("abfs://acct.blob.core.windows.net/c/p?sv=2022-11-02&sp=rw&sig=SIGLEAK", ("SIGLEAK",)),
    "azure client secret": ("abfs://acct.blob.core.windows.net/c/p?tenant_id=t&client_id=c&client_secret=SECRETLEAK",
                            ("SECRETLEAK",)),
    "hdfs": ("hdfs://USERLEAK:PASSLEAK@namenode:8020/p?kerb_ticket=/tmp/TICKETLEAK", ("USERLEAK", "PASSLEAK",
                                                                                     "TICKETLEAK")),
}


@pytest.mark.parametrize("case", sorted(LEAKS))
def test_a_location_with_credentials_is_refused_without_printing_them(case, tmp_path, capsys, monkeypatch):
    text, secrets = LEAKS[case]
    base, sep, query = text.partition("?")
    monkeypatch.chdir(tmp_path)
    for argv in (["leaderboard", text], ["report", text], ["show", f"{base}/r.json{sep}{query}"],
                 ["run", *SMOKE, "--out", text, "--name", "x"], ["run", "--resume", "--out", text, "--name", "x"]):
        assert main(argv) == 2, argv
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert len(lines) == 5 and all(line.startswith("harness: error: ") and "credentials" in line for line in lines), err
    assert not [s for s in secrets if s in out + err], out + err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_credentials_in_a_location_are_masked_and_a_plain_one_is_kept():
    assert redact("s3://AK:SE/CRET@b/p?endpoint_override=h:1") == "s3://***@b/p?endpoint_override=h:1"
    assert redact("abfs://a.blob.core.windows.net/c?sv=1&sig=S") == "abfs://a.blob.core.windows.net/c?sv=1&sig=***"
    for plain in ("s3://bucket/runs@v2/x?endpoint_override=127.0.0.1:9000&scheme=http",
                  "abfs://acct.blob.core.windows.net/c/p?credential_kind=default", "file:///data@v2/x"):
        assert redact(plain) == plain and location(plain)  # an @ in a path, Azure's choice of a credential method
    assert str(location("s3://bucket/runs@v2/x")) == "s3://bucket/runs@v2/x"


def test_an_mlflow_uri_with_credentials_is_refused_without_printing_them(tmp_path, capsys):
    assert main(["run", *SMOKE, "--out", str(tmp_path / "out"), "--callback", "mlflow",
                 "--mlflow-uri", "http://me:PASSLEAK@127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--mlflow-uri 'http://***@127.0.0.1:1' has credentials" in err, err
    assert "PASSLEAK" not in err and not (tmp_path / "out").exists()


def test_remote_names_follow_pathlib():
    root = location("gs://bucket/nas?x=1")
    record = root / "exp" / "trials" / "gdas-nb201-digits-s0.json"
    assert str(record) == "gs://bucket/nas/exp/trials/gdas-nb201-digits-s0.json"
    assert record.uri.endswith("s0.json?x=1")
    assert (record.name, record.stem) == ("gdas-nb201-digits-s0.json", "gdas-nb201-digits-s0")
    assert record.parent.parent == root / "exp" and record.parent.name == "trials"
    assert root.parent == location("gs://bucket?x=1") and root.parent.parent == root.parent
    assert relative_parts(record, root) == ("exp", "trials", "gdas-nb201-digits-s0.json")
    assert relative_parts(Path("a/b/c.json"), Path("a")) == ("b", "c.json")
    with pytest.raises(ValueError):
        relative_parts(root, record)
    assert sorted([root / "b", root / "a"]) == [root / "a", root / "b"]
    assert len({root / "a", location("gs://bucket/nas/a?x=1")}) == 1


# --- the store ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(s3_endpoint):
    return location(s3_uri(s3_endpoint, "storage-unit", "root"))


def test_put_read_list_and_delete(store):
    folder = store / "put"
    assert not folder.exists() and list(folder.files()) == []
    (folder / "a" / "x.json").put(b'{"a": 1}')
    (folder / "b.txt").write_text("héllo")
    assert folder.is_dir() and (folder / "a").is_dir() and (folder / "b.txt").is_file()
    assert (folder / "b.txt").read_text() == "héllo"
    assert [str(p) for p in folder.files()] == [str(folder / "a" / "x.json"), str(folder / "b.txt")]
    assert [p.name for p in folder.rglob("*.json")] == ["x.json"]
    (folder / "a" / "x.json").unlink()
    assert not (folder / "a").exists()  # an emptied folder is gone (its marker object does not count)
    with pytest.raises(FileNotFoundError):
        (folder / "a" / "x.json").read_bytes()
    (folder / "a" / "x.json").unlink(missing_ok=True)


def test_a_large_object_goes_up_in_parts_and_comes_back_whole(store):
    data = bytes(range(256)) * (12 * 4096)  # 12 MiB: above pyarrow's part size, a multipart upload
    (store / "big.bin").put(data)
    assert (store / "big.bin").read_bytes() == data


def test_a_write_that_fails_leaves_the_old_objects(store):
    a, b = store / "group" / "a.csv", store / "group" / "b.md"
    atomic_write_many({a: (lambda f: f.write("old a"), False), b: (lambda f: f.write("old b"), False)})

    def broken(f):
        f.write("half of the new b")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write_many({a: (lambda f: f.write("new a"), False), b: (broken, False)})
    assert a.read_text() == "old a" and b.read_text() == "old b"  # not even a, written before b failed


def test_records_and_checkpoints_on_the_store(store, capsys):
    root = store / "records"
    write_record(root / "exp" / "trials" / "m-s-d-s0.json", {"method": "m", "space": "s", "dataset": "d",
                                                              "budget": "smoke", "seed": 0, "acc": float("nan")})
    (root / "exp" / "trials" / "broken.json").put(b"{not json")
    loaded = load_records(root)
    assert [r["seed"] for r in loaded] == [0] and loaded[0]["acc"] is None
    assert loaded[0]["_path"] == str(root / "exp" / "trials" / "m-s-d-s0.json")
    assert "broken.json" in capsys.readouterr().err
    state = {"epoch": 3, "weights": [1.5, 2.5]}
    save_checkpoint(root / "exp" / "checkpoints" / "t.pt", state)
    assert load_checkpoint(root / "exp" / "checkpoints" / "t.pt") == state
    (root / "exp" / "checkpoints" / "bad.pt").put(b"garbage")
    with pytest.raises(UserError, match="corrupt"):
        load_checkpoint(root / "exp" / "checkpoints" / "bad.pt")


def test_an_unwritable_store_is_one_line(store, s3_endpoint):
    check_writable_folder(store / "probe", "--out")
    assert not (store / "probe").exists()  # the probe is gone
    missing = location(f"s3://no-such-bucket/x?endpoint_override={s3_endpoint}&scheme=http")
    with pytest.raises(UserError, match="--out 's3://no-such-bucket/x' cannot be written") as err:
        check_writable_folder(missing, "--out")
    assert "\n" not in str(err.value)


def test_upload_tree_replaces_a_folder(store, tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"A")
    (tmp_path / "report.html").write_text("<p>1</p>")
    (store / "tree" / "plots" / "old.png").put(b"old")
    written = upload_tree(tmp_path, store / "tree")
    assert sorted(p.name for p in written) == ["a.png", "report.html"]
    assert sorted(str(p) for p in (store / "tree").files()) == [str(store / "tree" / "plots" / "a.png"),
                                                                str(store / "tree" / "report.html")]


# --- whole runs with --out s3://... -----------------------------------------------------------------------------------
@contextlib.contextmanager
def all_output(sink: Path) -> Iterator[io.StringIO]:
    """What the code inside prints: Python's ``sys.stdout``/``sys.stderr`` (yielded) and, into ``sink``, whatever
    reaches the process's file descriptors 1 and 2 (Ray's log handlers, native libraries)."""
    text = io.StringIO()
    saved = [os.dup(1), os.dup(2)]
    with open(sink, "wb") as fd_sink:
        try:
            os.dup2(fd_sink.fileno(), 1)
            os.dup2(fd_sink.fileno(), 2)
            with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
                yield text
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@pytest.fixture(scope="module")
def s3_run(ray_session, s3_endpoint, tmp_path_factory):
    """Two seeds through the CLI with --out on the S3 server (module-scoped: the checks below read it), and
    everything the run printed."""
    out = s3_uri(s3_endpoint, "results", "nas")
    sink = tmp_path_factory.mktemp("s3-run-output") / "fds.txt"
    with all_output(sink) as text:
        assert main(["run", *SMOKE, "--set", *SETS, "--seeds", "2", "--out", out, "--name", "s3"]) == 0
    printed = text.getvalue() + sink.read_text(errors="replace")
    return out, location(out) / "s3", printed


@pytest.fixture(scope="module")
def local_records(tmp_path_factory):
    out = tmp_path_factory.mktemp("s3-reference")
    return {r["seed"]: r for r in trial_records("gdas", "nb201", out, "ref", 2, *SETS)}


def s3_records(exp: Remote) -> dict[int, dict]:
    return {r["seed"]: r for r in (json.loads(p.read_text()) for p in (exp / "trials").rglob("*.json"))}


def test_a_run_on_s3_writes_everything_there_and_equals_a_local_run(s3_run, local_records):
    out, exp, _ = s3_run
    names = {str(p)[len(str(exp)) + 1:] for p in exp.files()}
    assert {"experiment.json", "leaderboard.csv", "leaderboard.md", "trials/gdas-nb201-digits-s0.json",
            "trials/gdas-nb201-digits-s1.json"} <= names
    assert not any(n.startswith("checkpoints/") for n in names)  # spent once the records are written
    for seed in (0, 1):  # Ray Tune's own results, in its storage on the store
        trial = f"tune/gdas-nb201-digits-s{seed}/"
        assert {trial + f for f in ("result.json", "progress.csv", "params.json")} <= names
        assert any(n.startswith(trial + "events.out.tfevents.") for n in names)
    spec = json.loads((exp / "experiment.json").read_text())
    assert spec["out"] == out and spec["records_dir"] == (exp / "trials").uri
    got = s3_records(exp)
    assert sorted(got) == [0, 1]
    for seed, record in got.items():
        assert all(record[k] == local_records[seed][k] for k in KEPT), seed
        assert record["test_acc"] > 20  # ten classes: well above chance
    board = (exp / "leaderboard.csv").read_text()
    assert board.startswith("method,") and "gdas" in board


def test_no_credential_is_printed_or_stored_by_a_run_on_s3(s3_run):
    """The run's credentials come from the environment (conftest's, before Ray started): no file under its results
    (the harness's and Ray Tune's: spec, records, leaderboards, params.json, result.json, experiment state,
    tuner.pkl, event files), no file of the Ray session (its logs: Ray Tune used to copy AWS_* into every trial's
    runtime_env, which Ray's agent logs at INFO) and no printed line holds them."""
    import ray

    out, exp, printed = s3_run
    needles = {form.encode() for secret in S3_CREDENTIALS for form in (secret, quote(secret, safe=""))}
    files = {str(p): p.read_bytes() for p in location(out).files()}
    assert any("/tune/" in name for name in files) and any(name.endswith("tuner.pkl") for name in files)
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    files.update({str(p): p.read_bytes() for p in session.rglob("*") if p.is_file() and not p.is_socket()})
    assert any(name.endswith("runtime_env_agent.log") for name in files)
    leaks = sorted(name for name, data in files.items() if any(n in data for n in needles))
    assert not leaks, leaks
    assert printed.count("\n") > 5 and not [n for n in needles if n.decode() in printed], printed


def test_ray_tune_reads_its_experiment_from_s3(s3_run):
    from ray import tune

    _, exp, _ = s3_run
    tune_dir = exp / "tune"
    analysis = tune.ExperimentAnalysis(tune_dir.fs_path, storage_filesystem=tune_dir.filesystem).dataframe()
    by_seed = s3_records(exp)
    for frame in (analysis, result_frame(tune_dir.fs_path, storage_filesystem=tune_dir.filesystem)):
        assert sorted(frame["seed"]) == [0, 1] and set(frame["phase"]) == {"done"}
        for _, row in frame.iterrows():
            assert row["test_acc"] == pytest.approx(by_seed[int(row["seed"])]["test_acc"])


def test_leaderboard_show_and_report_read_from_s3(s3_run, capsys):
    out, exp, _ = s3_run
    capsys.readouterr()
    assert main(["leaderboard", out]) == 0
    text = capsys.readouterr().out
    assert "gdas" in text and "(2 records)" in text
    assert (location(out) / "leaderboard.csv").read_text().count("\n") == 2  # header and one row
    record = exp / "trials" / "gdas-nb201-digits-s1.json"
    assert main(["show", record.uri]) == 0
    assert f"{s3_records(exp)[1]['test_acc']:.2f}" in capsys.readouterr().out
    assert main(["report", out]) == 0
    page = (location(out) / "report" / "report.html").read_text()
    assert "gdas" in page and "data:image/png;base64," in page
    assert any(p.name.endswith(".png") for p in (location(out) / "report" / "plots").files())


def test_a_resume_on_s3_runs_only_the_missing_seed(s3_run, local_records):
    from ray import tune

    out, exp, _ = s3_run
    record = exp / "trials" / "gdas-nb201-digits-s1.json"
    kept = (exp / "trials" / "gdas-nb201-digits-s0.json").read_bytes()
    record.unlink()
    assert main(["run", "--resume", "--name", "s3", "--out", out]) == 0
    assert (exp / "trials" / "gdas-nb201-digits-s0.json").read_bytes() == kept  # untouched
    again = s3_records(exp)[1]
    assert all(again[k] == local_records[1][k] for k in KEPT)
    tune_dir = exp / "tune"
    for frame in (tune.ExperimentAnalysis(tune_dir.fs_path, storage_filesystem=tune_dir.filesystem).dataframe(),
                  result_frame(tune_dir.fs_path, storage_filesystem=tune_dir.filesystem)):
        assert list(frame["seed"]) == [1]  # the resume's own Ray Tune experiment


def test_mistakes_on_s3_are_one_line_and_write_nothing(s3_run, s3_endpoint, capsys):
    out, _, _ = s3_run
    capsys.readouterr()
    assert main(["run", *SMOKE, "--out", out, "--name", "s3"]) == 2  # exists
    assert main(["run", *SMOKE, "--out", out, "--name", "ml", "--callback", "mlflow"]) == 2  # no --mlflow-uri
    missing = f"s3://no-such-bucket/x?endpoint_override={s3_endpoint}&scheme=http"
    assert main(["run", *SMOKE, "--out", missing, "--name", "n"]) == 2
    assert main(["leaderboard", f"s3://results/nowhere?endpoint_override={s3_endpoint}&scheme=http"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 4 and all(line.startswith("harness: error: ") for line in err)
    assert "already exists" in err[0] and "--mlflow-uri" in err[1] and "cannot be written" in err[2]
    assert not (location(out) / "ml").exists() and not (location(out) / "n").exists()


def test_a_study_on_s3_resumes_from_s3(ray_session, s3_endpoint, capsys):
    out = s3_uri(s3_endpoint, "studies", "nas")
    args = ["run", "--method", "gdas,random", "--space", "nb201", "--budget", "smoke", "--dataset", "digits",
            "--set", *SETS, "--seeds", "1", "--out", out, "--name", "st"]
    assert main(args) == 0
    study = location(out) / "st"
    assert f"report: python -m harness report '{study.uri}'" in capsys.readouterr().out  # the endpoint kept
    records = [p for p in study.files() if p.parent.name == "trials"]
    assert sorted(p.name for p in records) == ["gdas-nb201-digits-s0.json", "random-nb201-digits-s0.json"]
    assert (study / "study.toml").is_file() and (study / "leaderboard.csv").is_file()
    records[1].unlink()
    assert main(["run", "--resume", "--name", "st", "--out", out]) == 0
    assert sorted(p.name for p in study.files() if p.parent.name == "trials") == [p.name for p in records]


def test_the_store_watch_ends_the_experiment_at_the_last_failed_look_in_a_row(monkeypatch):
    """A failed look is forgiven by one that answers; STORE_PROBES failed looks in a row raise StoreLost (an OSError,
    which makes Ray Tune stop at once instead of writing its state to the dead store), and so does every later look."""
    from harness import runner

    monkeypatch.setattr(runner, "STORE_PROBE_S", 0.0)
    monkeypatch.setattr(runner, "STORE_PROBES", 2)
    answers = iter([None, OSError("gone"), None, OSError("gone"), OSError("gone for good")])

    class Place:
        def ping(self) -> None:
            answer = next(answers)
            if answer is not None:
                raise answer

    watch = runner.StoreWatch(Place())
    assert [watch.stop_all() for _ in range(4)] == [False] * 4 and watch.lost is None
    for _ in range(2):  # the second failure in a row, then no further look: the verdict stands
        with pytest.raises(runner.StoreLost, match="gone for good"):
            watch.stop_all()
    assert isinstance(runner.StoreLost("x"), OSError) and watch("trial", {}) is False


def test_a_store_lost_mid_run_ends_like_an_interruption(ray_session, tmp_path, capfd, monkeypatch):
    """The object store dies mid-search (its server killed once the trial's first checkpoint is there): the driver
    stops at once and ends as an interruption does, without a traceback: exit 130 and the line 'interrupted: ...;
    resume with: ...'; nothing is written anywhere else instead."""
    import threading
    import time

    from s3_server import s3_server_process

    from harness import runner

    # the driver looks at the store every 0.2 s and gives up at the first failed look (each is retried for 6 s)
    monkeypatch.setattr(runner, "STORE_PROBE_S", 0.2)
    monkeypatch.setattr(runner, "STORE_PROBES", 1)
    monkeypatch.chdir(tmp_path)
    for handler in logging.getLogger("ray").handlers:  # Ray's console lines to this test's stderr (Ray's handler
        if type(handler).__module__.startswith("ray."):  # keeps the stream it met first: an earlier test's, closed)
            monkeypatch.setattr(handler, "stream", sys.stderr)
    with s3_server_process() as (endpoint, server):
        out = s3_uri(endpoint, "lost", "nas")
        checkpoints = location(out) / "lost" / "checkpoints"

        def kill_after_first_checkpoint() -> None:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not any(checkpoints.files()):
                time.sleep(0.2)
            server.kill()

        killer = threading.Thread(target=kill_after_first_checkpoint, daemon=True)
        killer.start()
        capfd.readouterr()
        code = main(["run", *SMOKE, "--set", "search_epochs=30", "--set", *SETS, "--out", out, "--name", "lost"])
        killer.join(timeout=5)
        assert server.poll() is not None  # the store died mid-run
    printed, err = capfd.readouterr()
    assert code == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: ") and last.endswith(f"resume with: python -m harness run --resume --name "
                                                              f"lost --out '{out}'"), err
    assert "Traceback" not in printed + err, printed + err
    assert list(tmp_path.iterdir()) == []
