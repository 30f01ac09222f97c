"""A careless user, a hostile file, an unlucky cluster: every mistake is one line and exit status 2 before
anything is written; a resume reruns every seed without a valid record and refuses changed options; one
driver per experiment; no code runs from a results folder or a dataset file.

The refusals run through the real CLI entry point (``harness.cli.main``) in-process; the signal, the
two-driver and the moved-folder cases need real driver processes and Ray.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import torch
from helpers import one_line

from harness import checkpoints
from harness.cli import main
from harness.core.errors import UserError
from harness.core.records import atomic_write, write_record
from harness.experiment import RunRequest, build_spec, estimate_seconds, summarise
from harness.trial import execute_trial, pick_device

SMOKE = ["--method", "darts", "--space", "darts", "--budget", "smoke", "--dataset", "digits", "--cpus-per-trial", "1"]
# short trials on 400 of the digits at 8×8 pixels, one correlation edge: the driver's logic is the same
TINY = ["--set", "search_epochs=1", "--set", "eval_epochs=1", "--set", "train_limit=400", "--set", "image_size=8",
        "--set", "corr_edges=1"]


def _sys_is_read_only() -> bool:
    try:
        os.rmdir(os.path.join("/sys", os.path.basename(__import__("tempfile").mkdtemp(dir="/sys"))))
    except OSError:
        return True
    return False


READ_ONLY = "/sys" if os.path.isdir("/sys") and _sys_is_read_only() else None


def _png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` × ``height`` pixels (and holds none)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def _bomb_folder(root: Path) -> Path:
    from PIL import Image

    for split in ("train", "test"):
        for name in ("cat", "dog"):
            for k in range(2):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (6, 6), (9, 9, 9)).save(root / split / name / f"{k}.png")
    _png_header(root / "train" / "cat" / "huge.png", 20000, 20000)
    return root


# (argv, a fragment of the one line); {tmp} is the test's folder, {file} a file in it. Adding a case is a line.
REFUSALS = {
    "out is a file": (["run", *SMOKE, "--out", "{file}"], "is a file"),
    "out under a file": (["run", *SMOKE, "--out", "{file}/sub"], "is a file"),
    "name too long": (["run", *SMOKE, "--name", "x" * 300], "at most 100"),
    "name empty": (["run", *SMOKE, "--name", ""], "--name is empty"),
    "name with a slash": (["run", *SMOKE, "--name", "a/b"], "plain folder name"),
    "name hidden": (["run", *SMOKE, "--name", ".x"], "plain folder name"),
    "adam beta1 >= 1": (["run", *SMOKE, "--set", "arch_beta1=1.5"], "arch_beta1"),
    "nesterov without momentum": (["run", *SMOKE, "--set", "eval_nesterov=true", "--set", "eval_momentum=0"],
                                  "eval_momentum"),
    "train_limit 1": (["run", *SMOKE, "--set", "train_limit=1"], "train_limit=1"),
    "image_size 0": (["run", *SMOKE, "--set", "image_size=0"], "image_size"),
    "drop_path 1.5": (["run", *SMOKE, "--set", "drop_path=1.5"], "drop_path"),
    "missing teacher": (["run", "--method", "nos", "--space", "hetero", "--budget", "smoke", "--dataset", "digits",
                         "--set", "teacher={tmp}/no-teacher.pt"], "no-teacher.pt"),
    "huge seed": (["run", *SMOKE, "--seed-list", "99999999999999999999"], "out of range"),
    "negative seed": (["run", *SMOKE, "--seed-list", "-1"], "out of range"),
    "more cpus than the machine": (["run", *SMOKE[:-1], "1000"], "CPU cores"),
    "gpus nan": (["run", *SMOKE, "--gpus-per-trial", "nan"], "--gpus-per-trial"),
    "gpus negative": (["run", *SMOKE, "--gpus-per-trial", "-1"], "--gpus-per-trial"),
    "gpus fractional above one": (["run", *SMOKE, "--gpus-per-trial", "1.5"], "whole number"),
    "max failures negative": (["run", *SMOKE, "--max-failures", "-1"], "--max-failures"),
    "max concurrent zero": (["run", *SMOKE, "--max-concurrent", "0"], "--max-concurrent"),
    "unreachable cluster": (["run", *SMOKE, "--address", "127.0.0.1:1"], "cannot reach"),
    "malformed address": (["run", *SMOKE, "--address", "nowhere"], "host:port"),
    "decompression bomb": (["run", "--method", "darts", "--space", "darts", "--budget", "smoke",
                            "--dataset", "folder:{tmp}/bomb", "--set", "image_size=8"], "huge.png"),
    "nb201 import into a file's folder": (["nb201", "import", "{tmp}/table.csv", "--out", "{file}/t.npz"],
                                         "is a file"),
    "nb201 import onto a folder": (["nb201", "import", "{tmp}/table.csv", "--out", "{tmp}"], "is a folder"),
    "leaderboard cannot be written": (["leaderboard", "{tmp}/board"], "cannot write"),
}
if READ_ONLY:
    REFUSALS["out read-only"] = (["run", *SMOKE, "--out", f"{READ_ONLY}/harness-out"], "cannot be created or written")
    REFUSALS["nb201 import read-only"] = (["nb201", "import", "{tmp}/table.csv", "--out", f"{READ_ONLY}/t.npz"],
                                          "cannot be created or written")


def _tree(root: Path) -> list[str]:
    """Every path under ``root`` but the throw-away cache."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.relative_to(root).parts[0] != "cache")


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusal_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    argv, fragment = REFUSALS[case]
    (tmp_path / "file").write_text("a file, not a folder")
    (tmp_path / "table.csv").write_text("index,arch\n")
    _bomb_folder(tmp_path / "bomb")
    board = tmp_path / "board"
    write_record(board / "e" / "trials" / "darts-darts-digits-s0.json",
                 {"method": "darts", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": 0,
                  "test_acc": 50.0})
    (board / "leaderboard.csv").mkdir()  # in the way of the file: the write fails as in a read-only folder
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{file}", str(tmp_path / "file")) for a in argv]
    out = tmp_path / "out"
    if argv[0] == "run" and "--out" not in argv:
        argv += ["--out", str(out)]
    before = _tree(tmp_path)
    start = time.monotonic()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and fragment in err, err
    assert _tree(tmp_path) == before
    assert time.monotonic() - start < 60  # refused at once, not after a time estimate or Ray's retries


def test_summary_and_leaderboard_show_a_missing_metric_as_a_dash(tmp_path, capsys):
    spec = build_spec(RunRequest(method="darts", space="darts", dataset="digits", budget="smoke", seeds=[0, 1],
                                 overrides=[], out=tmp_path, name="nulls", cpus_per_trial=1, gpus_per_trial=0,
                                 max_concurrent=None, max_failures=None, address=None, data_dir=None,
                                 resume=False))
    for seed, acc in ((0, None), (1, 61.5)):
        write_record(spec.record_path(seed), {
            "method": "darts", "space": "darts", "dataset": "digits", "budget": "smoke", "seed": seed,
            "config_hash": spec.config_hash, "test_acc": acc, "search_val_acc": None, "params_m": 0.1,
            "op_kendall_tau": None, "search_seconds": 1.0, "eval_seconds": None})
    assert summarise([spec], spec.folder, capsys_console(), [], False) == 0
    out = capsys.readouterr().out
    assert "—" in out and "61.50" in out
    board = (tmp_path / "nulls" / "leaderboard.csv").read_text().splitlines()
    assert len(board) == 2 and ",61.5," in board[1]  # the mean of the seeds that have a figure
    assert main(["leaderboard", str(tmp_path)]) == 0


def capsys_console():
    from rich.console import Console

    return Console(width=200)


# --- resume: options, checkpoints ---------------------------------------------------------------------------
@pytest.fixture
def made(tmp_path):
    """An experiment as ``run`` leaves it before its trials: experiment.json of seeds 0 and 1."""
    spec = build_spec(RunRequest(method="darts", space="darts", dataset="digits", budget="smoke", seeds=[0, 1],
                                 overrides=["search_epochs=1"], out=tmp_path, name="made", cpus_per_trial=1,
                                 gpus_per_trial=0, max_concurrent=None, max_failures=None, address=None,
                                 data_dir=None, resume=False))
    spec.write()
    return spec


@pytest.mark.parametrize("extra, fragment", [
    (["--method", "gdas"], "--method gdas"),
    (["--budget", "small"], "--budget small"),
    (["--dataset", "cifar10"], "--dataset cifar10"),
    (["--set", "search_epochs=2"], "search_epochs"),
    (["--set", "order=2"], "order"),
    (["--cpus-per-trial", "2"], "--cpus-per-trial 2"),
    (["--seeds", "1"], "leave out seeds 1"),
    (["--seed-list", "0,5"], "leave out seeds 1"),
])
def test_resume_with_changed_options_is_refused(made, tmp_path, capsys, extra, fragment):
    before = _tree(tmp_path)
    assert main(["run", "--resume", "--name", "made", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert _tree(tmp_path) == before


def test_resume_accepts_the_same_options_and_adds_seeds(made, tmp_path):
    from harness.experiment import resume_spec

    req = RunRequest(method="darts", space="darts", dataset="digits", budget="smoke", seeds=[0, 1, 2],
                     overrides=["search_epochs=1"], out=tmp_path, name="made", cpus_per_trial=1, gpus_per_trial=None,
                     max_concurrent=1, max_failures=0, address=None, data_dir=None, resume=True)
    console = capsys_console()
    with console.capture() as captured:
        spec = resume_spec(req, console)
    assert spec.seeds == (0, 1, 2) and spec.config_hash == made.config_hash
    assert (spec.max_concurrent, spec.max_failures) == (1, 0)
    text = captured.get()
    assert "adding seeds 2" in text and "--max-concurrent 1" in text


class _Planted:
    """Pickles into a call of ``os.system``: loading it must never run it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("cuda_build, fix", [(None, "install a CUDA build of torch on the GPU nodes"),
                                              ("12.4", "NVIDIA driver (nvidia-smi)")])
def test_trial_given_a_gpu_that_torch_cannot_see_is_one_line(made, tmp_path, monkeypatch, cuda_build, fix):
    """A worker whose torch sees no CUDA device (a CPU-only build, or no driver) must not run a GPU trial on its
    CPU: one line naming the node, the build and the fix; nothing runs, nothing is written."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this machine, or a GPU node gone wrong
    monkeypatch.setattr(torch.version, "cuda", cuda_build)
    with pytest.raises(UserError) as exc_info:
        execute_trial(dataclasses.replace(made, gpus_per_trial=1), 0, report=lambda metrics: None)
    msg = one_line(exc_info)
    assert "given 1 GPU(s)" in msg and f"'{socket.gethostname()}'" in msg and torch.__version__ in msg, msg
    assert fix in msg and "--gpus-per-trial 0" in msg, msg
    assert ("CPU-only build" in msg) == (cuda_build is None), msg
    assert sorted(p.name for p in (tmp_path / "made").iterdir()) == ["experiment.json"]


def test_cpu_trial_and_the_drivers_estimate_without_cuda_use_the_cpu(made, digits_dataset, monkeypatch):
    """--gpus-per-trial 0 runs on the CPU; the driver's time estimate of a GPU trial (a cluster's GPU-less head
    node) measures on the CPU instead of failing."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device(0) == torch.device("cpu") and pick_device(1, strict=False) == torch.device("cpu")
    cost = estimate_seconds(dataclasses.replace(made, gpus_per_trial=1), digits_dataset)
    assert cost.search > 0 and cost.evaluation > 0 and cost.where.startswith("this machine, CPU")


def test_planted_checkpoint_is_refused_and_never_run(made, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = made.checkpoint_path(1)
    path.parent.mkdir(parents=True)
    torch.save({"epoch": 3, "payload": _Planted(marker)}, path)
    assert main(["run", "--resume", "--name", "made", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "cannot be loaded safely" in err, err
    assert not marker.exists()
    with pytest.raises(UserError):  # the trial itself loads it the same way
        execute_trial(made, 1, report=lambda metrics: None)
    assert not marker.exists()
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match="corrupt"):
        checkpoints.load_checkpoint(path)


def test_checkpoint_round_trip_keeps_numpy_and_rng_states():
    import numpy as np

    from harness.core.train import rng_state

    state = {"rng": rng_state(), "counts": np.arange(6, dtype=np.int64).reshape(2, 3), "nan": np.array([np.nan]),
             "flag": np.bool_(True), "pairs": {("normal", 3): [1, 2]}, "tensor": torch.ones(2)}
    back = checkpoints.loads(checkpoints.dumps(state))
    assert np.array_equal(back["counts"], state["counts"]) and back["counts"].dtype == np.int64
    assert np.isnan(back["nan"]).all() and back["flag"] is True and back["pairs"] == {("normal", 3): [1, 2]}
    assert back["rng"]["numpy"][0] == "MT19937" and np.array_equal(back["rng"]["numpy"][1], state["rng"]["numpy"][1])
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"]) and back["rng"]["python"] == state["rng"]["python"]
    with pytest.raises(TypeError):
        checkpoints.dumps({"bad": object()})


def test_planted_cifar_batch_is_refused_and_never_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        (folder / name).write_bytes(pickle.dumps(_Planted(marker)))
    out = tmp_path / "out"
    assert main(["run", *SMOKE[:6], "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data_batch_1" in err, err
    assert not marker.exists() and not out.exists()


def test_killed_write_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "leaderboard.csv"
    code = ("import os; from harness.core.records import atomic_write\n"
            f"atomic_write({str(target)!r}, lambda f: (f.write('partial'), f.flush(), os.kill(os.getpid(), 9)))")
    subprocess.run([sys.executable, "-c", code], check=False)
    assert not target.exists() and len(list(tmp_path.glob(".leaderboard.csv.*.tmp"))) == 1  # what SIGKILL leaves
    atomic_write(target, lambda f: f.write("complete"))
    assert target.read_text() == "complete" and sorted(p.name for p in tmp_path.iterdir()) == ["leaderboard.csv"]


# --- real drivers: a signal, a moved folder, deleted records, two drivers at once --------------------------
def _driver(argv: list[str], address: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "run", *argv, "--address", address],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not condition() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert condition(), proc.communicate()[1] if proc.poll() is not None else f"{what} did not happen in time"


def _same_result(a: dict, b: dict) -> None:
    for key in ("genotype", "test_acc", "search_val_acc", "op_kendall_tau", "config_hash"):
        assert a[key] == b[key], key
    assert [h.get("train_loss") for h in a["history"]] == [h.get("train_loss") for h in b["history"]]


def _record(folder: Path, seed: int) -> Path:
    return folder / "trials" / f"darts-darts-digits-s{seed}.json"


def _checkpoint(folder: Path, seed: int) -> Path:
    return folder / "checkpoints" / f"darts-darts-digits-s{seed}.pt"


def test_sigterm_then_resume_in_a_moved_folder_reruns_every_seed_without_a_valid_record(ray_session, tmp_path):
    out = tmp_path / "first"
    proc = _driver([*SMOKE, "--seeds", "2", "--max-concurrent", "1", *TINY, "--out", str(out), "--name", "mv"],
                   ray_session)
    spec = out / "mv"
    _wait_for(lambda: _record(spec, 0).exists() and _checkpoint(spec, 1).exists(), proc,
              "seed 0's record and seed 1's first checkpoint")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resume with: python -m harness run --resume --name mv" in err
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    first = json.loads(_record(spec, 0).read_text())
    assert not _record(spec, 1).exists()

    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.move(str(out / "mv"), str(moved / "mv"))
    assert main(["run", "--resume", "--name", "mv", "--out", str(moved)]) == 0
    assert not (out / "mv").exists()  # nothing ran in the old place
    here = moved / "mv"
    assert json.loads(_record(here, 0).read_text()) == first  # the finished seed was not run again
    second = json.loads(_record(here, 1).read_text())
    assert not (moved / "mv" / "checkpoints").exists() or not list((moved / "mv" / "checkpoints").iterdir())
    assert json.loads((moved / "mv" / "experiment.json").read_text())["out"] == str(moved)

    # a corrupt record is no record: its seed runs again, from scratch, to the same result; the valid one stays (a
    # deleted record, the other way to have none, is resumed in test_storage.py and test_study.py)
    _record(here, 1).write_text("{ not json")
    assert main(["run", "--resume", "--name", "mv", "--out", str(moved)]) == 0
    assert json.loads(_record(here, 0).read_text()) == first
    _same_result(json.loads(_record(here, 1).read_text()), second)


def test_one_driver_per_experiment(ray_session, tmp_path, capsys):
    argv = [*SMOKE, *TINY, "--out", str(tmp_path), "--name", "both"]
    a = _driver([*argv, "--seed-list", "0"], ray_session)
    b = _driver([*argv, "--seed-list", "1"], ray_session)
    lock, made = tmp_path / "both" / ".driver.lock", tmp_path / "both" / "experiment.json"
    _wait_for(lambda: made.exists() and lock.exists() and lock.read_text().strip() != "", a if a.poll() is None else b,
              "a driver's lock and experiment.json")
    assert main(["run", "--resume", "--name", "both", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is being run now by process" in err, err
    results = [(p, *p.communicate(timeout=300)) for p in (a, b)]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [e for _, _, e in results]
    refused = next(e for p, _, e in results if p.returncode == 2)
    assert refused.count("harness: error:") == 1 and "both" in refused and "Traceback" not in refused
    spec = json.loads((tmp_path / "both" / "experiment.json").read_text())
    records = sorted((tmp_path / "both" / "trials").glob("*.json"))
    assert [json.loads(p.read_text())["seed"] for p in records] == spec["seeds"]
    assert all(json.loads(p.read_text())["config_hash"] == spec["config_hash"] for p in records)


@pytest.mark.slow
def test_a_port_that_answers_but_is_not_ray_is_refused_within_the_time_limit(monkeypatch):
    """The join runs in a child process killed at the time limit (``run`` does this before ``ray.init``; in
    this test session Ray is already up in-process, so the join is called directly)."""
    import socketserver
    import threading

    from harness import cluster

    class Silent(socketserver.BaseRequestHandler):
        def handle(self):  # accept and say nothing, as a wrong service would
            time.sleep(30)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 5)
    address = f"127.0.0.1:{server.server_address[1]}"
    try:
        start = time.monotonic()
        cluster.probe(address)  # the port answers
        with pytest.raises(UserError) as exc_info:
            cluster.join_within_time_limit(address)
        elapsed = time.monotonic() - start
    finally:
        server.shutdown()
    assert "within 5 s" in one_line(exc_info) and elapsed < 20


# --- counts: one documented limit per count (harness.core.config), the same through every entry point ------------
def _study_file(path: Path, seeds: str, variants: int = 0) -> Path:
    """A smoke study of random search on nb201 (``variants`` named copies of it as more cells)."""
    names = ["random"] + [f"r{k}" for k in range(variants)]
    path.write_text(f'budget = "smoke"\nseeds = {seeds}\ndatasets = ["digits"]\nspaces = ["nb201"]\n'
                    f"methods = [{', '.join(repr(n).replace(chr(39), chr(34)) for n in names)}]\n"
                    + ("[variants]\n" + "".join(f'r{k} = {{method = "random"}}\n' for k in range(variants))
                       if variants else ""))
    return path


def _over_the_limit_cases(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    from harness.core.config import MAX_CELLS, MAX_SEEDS, MAX_TRIALS

    many = ",".join(map(str, range(MAX_SEEDS + 1)))
    quick = ["--method", "random", "--space", "nb201", "--budget", "smoke", "--dataset", "digits"]
    per_cell = MAX_TRIALS // MAX_SEEDS + 1  # cells that, at MAX_SEEDS seeds each, pass MAX_TRIALS
    return {
        "--seeds": (["run", *quick, "--seeds", str(MAX_SEEDS + 1)], "--seeds"),
        "--seeds huge": (["run", *quick, "--seeds", "100000000000"], "--seeds"),
        "--seed-list": (["run", *quick, "--seed-list", many], "--seed-list"),
        "--method a,b with --seed-list": (["run", *quick[:1], "random,darts", *quick[2:], "--seed-list", many],
                                          "--seed-list"),
        "a study's seeds": (["study", "run", str(_study_file(tmp_path / "n.toml", str(MAX_SEEDS + 1)))], "seeds"),
        "a study's seed list": (["study", "run", str(_study_file(tmp_path / "l.toml", f"[{many}]"))], "seeds"),
        "a study's cells": (["study", "run", str(_study_file(tmp_path / "c.toml", "1", MAX_CELLS))], "cells"),
        "a study's trials": (["study", "run", str(_study_file(tmp_path / "t.toml", str(MAX_SEEDS), per_cell))],
                             "trials"),
    }


@pytest.mark.parametrize("case", ["--seeds", "--seeds huge", "--seed-list", "--method a,b with --seed-list",
                                  "a study's seeds", "a study's seed list", "a study's cells", "a study's trials"])
def test_every_count_has_one_limit_whatever_the_entry_point(case, tmp_path, capsys, monkeypatch):
    """Above ``MAX_SEEDS`` seeds, ``MAX_CELLS`` cells or ``MAX_TRIALS`` trials: one line naming the limit, exit 2,
    nothing written, before anything is measured (today's code went on to run them: measured here as a failure)."""
    from harness import experiment
    from harness.core import config

    def accepted(*args, **kwargs):
        raise AssertionError("the request was accepted")

    monkeypatch.setattr(experiment, "estimate_seconds", accepted)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    argv, fragment = _over_the_limit_cases(tmp_path)[case]
    out = tmp_path / "out"
    start = time.monotonic()
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    limit = {"cells": config.MAX_CELLS, "trials": config.MAX_TRIALS}.get(fragment, config.MAX_SEEDS)
    assert fragment in err and f"{limit:,}" in err, err
    assert not out.exists() and time.monotonic() - start < 10


def test_the_limits_are_documented():
    from harness.core.config import MAX_CELLS, MAX_SEEDS, MAX_TRIALS

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for limit, what in ((MAX_SEEDS, "seeds"), (MAX_CELLS, "cells"), (MAX_TRIALS, "trials")):
        assert f"{limit:,} {what}" in readme, what


def test_a_resume_cannot_pass_the_seed_limit(made, tmp_path, capsys, monkeypatch):
    from harness.core.config import MAX_SEEDS

    seeds = ",".join(map(str, range(MAX_SEEDS + 1)))
    from harness import experiment

    def accepted(*args, **kwargs):
        raise AssertionError("the resume was accepted")

    monkeypatch.setattr(experiment, "run_jobs", accepted)
    assert main(["run", "--resume", "--name", "made", "--out", str(tmp_path), "--seed-list", seeds]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{MAX_SEEDS:,}" in err, err


# --- SIGTERM from the driver's first line -------------------------------------------------------------------
def _driver_with(prelude: str, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m harness ARGV`` in a fresh interpreter after ``prelude`` (which plants the signal at a chosen
    point, so the test does not depend on timing)."""
    code = f"import os, runpy, signal, sys\n{prelude}\nsys.argv = ['harness', *{argv!r}]\n" \
           "runpy.run_module('harness', run_name='__main__', alter_sys=True)\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)


def test_sigterm_before_the_arguments_are_parsed_is_a_clean_interruption():
    """The signal arrives while ``python -m harness`` imports the CLI (before ``main``): today's code dies of it."""
    prelude = ("class Stop:\n"
               "    def find_spec(self, name, path=None, target=None):\n"
               "        if name == 'harness.cli':\n"
               "            os.kill(os.getpid(), signal.SIGTERM)\n"
               "sys.meta_path.insert(0, Stop())")
    done = _driver_with(prelude, ["list"])
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert done.stderr == "harness: interrupted\n", done.stderr


@pytest.mark.slow
def test_sigterm_while_ray_starts_ends_with_the_resume_hint(tmp_path):
    """The signal arrives inside ``ray.init`` (when it connects the driver, after Ray's own SIGTERM handler would
    be in place): the driver ends as an interruption, exit 130 and the resume hint, not Ray's ``sys.exit(15)`` or
    its crash dump."""
    prelude = ("import ray._private.worker as worker\n"
               "connect = worker.connect\n"
               "def stopped(*args, **kwargs):\n"
               "    os.kill(os.getpid(), signal.SIGTERM)\n"
               "    return connect(*args, **kwargs)\n"
               "worker.connect = stopped")
    argv = ["run", "--method", "random", "--space", "nb201", "--budget", "smoke", "--dataset", "digits",
            "--out", str(tmp_path), "--name", "early", "--set", "rs_candidates=2", "--set", "train_limit=200"]
    done = _driver_with(prelude, argv, timeout=120)  # about 9 s: imports 3, the plan 1, Ray's start and stop 5
    assert done.returncode == 130, (done.returncode, done.stderr[-3000:])
    assert "resume with: python -m harness run --resume --name early" in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "Fatal" not in done.stderr, done.stderr[-3000:]
    assert json.loads((tmp_path / "early" / "experiment.json").read_text())["seeds"] == [0]
    assert not (tmp_path / "early" / "trials").exists() or not list((tmp_path / "early" / "trials").iterdir())


# --- a diverged search: one line, no record, no retry -------------------------------------------------------
AGNAS_DIVERGES = ["--method", "agnas", "--space", "nb201", "--budget", "smoke", "--dataset", "digits",
                  "--set", "w_lr=1e6"]  # NaN weights within the first epoch (AGNAS's scores were the first to tell)


def _tiny_sets(method: str, space: str) -> list[str]:
    """conftest's tiny trial as --set options, on enough images for every class in each half of the split."""
    from conftest import TINY, tiny_overrides

    sized = tiny_overrides(method, space, {**TINY, "train_limit": "200"})
    return [arg for key, value in sized.items() for arg in ("--set", f"{key}={value}")]


def test_a_diverged_search_is_one_line_and_leaves_no_record(tmp_path):
    """In-process on the trial: a NaN loss ends it with ``Diverged`` naming the epoch, the loss and the fix, before
    anything downstream trips over the NaN (today: "scores['cell'] contains NaN" from the derivation)."""
    from harness.core.train import Diverged

    sets = [s for s in _tiny_sets("agnas", "nb201") if s != "--set"] + ["w_lr=1e6"]
    spec = build_spec(RunRequest(method="agnas", space="nb201", dataset="digits", budget="smoke", seeds=[0],
                                 overrides=sets, out=tmp_path, name="div", cpus_per_trial=1, gpus_per_trial=0,
                                 max_concurrent=None, max_failures=None, address=None, data_dir=None, resume=False))
    reports = []
    with pytest.raises(Diverged) as exc_info:
        execute_trial(spec, 0, reports.append)
    msg = one_line(exc_info)
    assert msg.startswith("diverged at search epoch 1 of 2 (loss nan)") and "lower the learning rate" in msg, msg
    assert "w_lr=1e+06" in msg, msg
    assert not spec.record_path(0).exists() and not spec.checkpoint_path(0).exists()


def test_the_shared_training_loop_stops_at_the_first_non_finite_loss():
    """The final training (and a random search's candidates, NOS's teacher) go through ``train_epoch``: the step
    whose loss is NaN or infinite ends it; the time estimate's steps do not check."""
    from harness.core.train import Diverged, time_train_steps, train_epoch

    net = torch.nn.Linear(3, 2)
    torch.nn.init.constant_(net.weight, float("inf"))
    batches = [(torch.ones(4, 3), torch.zeros(4, dtype=torch.long))] * 3
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    with pytest.raises(Diverged) as exc_info:
        train_epoch(net, opt, batches, grad_clip=0.0)
    assert one_line(exc_info).startswith("diverged (loss nan)")

    class Limited(list):
        limit_batches = 0

    assert time_train_steps(net, opt, Limited(batches), grad_clip=0.0) >= 0  # timing only: no refusal


def test_a_diverged_trial_is_not_retried_and_the_summary_says_so(ray_session, tmp_path, capsys):
    """A real Ray run: the trial ends at once (never retried: Ray Tune's ``max_failures`` is for crashes), the driver
    prints the one line and fails with the status of failed trials (1); no record, no checkpoint, no traceback."""
    argv = [*AGNAS_DIVERGES, *_tiny_sets("agnas", "nb201"), "--max-failures", "2", "--out", str(tmp_path),
            "--name", "div"]
    assert main(["run", *argv]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2, err
    assert lines[0].startswith("trial error: seed 0: diverged at search epoch 1 of 2 (loss nan)"), err
    assert "lower the learning rate" in lines[0] and lines[1].startswith("failed: 0 of 1 trials"), err
    assert "Traceback" not in err
    assert not (tmp_path / "div" / "trials").exists() or not list((tmp_path / "div" / "trials").iterdir())
    assert not list((tmp_path / "div").rglob("*.pt"))
    assert not list((tmp_path / "div" / "tune").rglob("error.txt"))  # Ray Tune saw no failure to retry
