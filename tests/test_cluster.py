"""A real multi-node Ray cluster on this machine: a head node and a worker node (``ray start``, each with one CPU,
on 127.0.0.1), started and stopped by these tests, which stop only the processes they started (by process
group). Through the CLI with ``--address``: the driver of a two-seed experiment killed with SIGKILL mid-search is
resumed on the cluster, its trials spread over both nodes, ship the harness's code to the workers and give the
records of an in-process run, every seed with exactly one record; the node running a trial is killed mid-search
and the trial finishes on the other node from its checkpoint with the same record (results on an S3 server, the
storage both nodes share)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import s3_uri, trial_records

from harness.core.storage import Remote, location

RUN = ["--method", "gdas", "--space", "nb201", "--budget", "smoke", "--dataset", "digits", "--seeds", "2",
       "--cpus-per-trial", "1", "--gpus-per-trial", "0", "--max-failures", "3"]
# long enough a search (0.2-0.4 s an epoch, 4-8 s in all) to kill something in the middle of it; a small correlation
# sample
SETS = ["search_epochs=20", "arch_corr_samples=50", "oneshot_samples=10"]
KEPT = ("genotype", "test_acc", "search_val_acc", "op_kendall_tau", "arch_kendall_tau", "oneshot_kendall_tau")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", RAY_CHDIR_TO_TRIAL_DIR="0")
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """``ray start ... --block`` in a process group of its own: killing the group stops exactly that node."""
    return subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", "start", *args, "--block",
                             "--disable-usage-stats"], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def alive_nodes(address: str, env: dict[str, str]) -> int:
    code = ("import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR'); "
            "print(sum(n['Alive'] for n in ray.nodes()))")
    done = subprocess.run([sys.executable, "-c", code, address], env=env, capture_output=True, text=True,
                          timeout=120)
    return int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else 0


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cluster")
    env = ray_env()
    port = free_port()
    address = f"127.0.0.1:{port}"
    # Ray's session folder holds Unix sockets, whose paths may not pass 107 bytes: a short folder of its own, not one
    # under pytest's temporary folders (deeper still under pytest-xdist's popen-gwN)
    ray_tmp = tempfile.mkdtemp(prefix="ray-")
    head = start(["--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0",
                  "--include-dashboard=false", f"--temp-dir={ray_tmp}"], env, tmp / "head.log")
    nodes = [head]
    try:
        deadline = time.time() + 120
        while alive_nodes(address, env) < 1:
            assert time.time() < deadline, (tmp / "head.log").read_text()[-2000:]
            time.sleep(2)
        nodes.append(start([f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                            "--num-gpus=0"], env, tmp / "worker.log"))
        while alive_nodes(address, env) < 2:
            assert time.time() < deadline, (tmp / "worker.log").read_text()[-2000:]
            time.sleep(2)
        yield {"address": address, "env": env, "tmp": tmp, "ray_tmp": Path(ray_tmp), "worker": nodes[1]}
    finally:
        for proc in reversed(nodes):
            stop(proc)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def harness(args: list[str], env: dict[str, str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def run_on_cluster(cluster: dict, name: str, out: str | None = None) -> tuple[subprocess.Popen, Path | Remote]:
    """``python -m harness run`` of the two seeds on the cluster, as experiment ``name`` in ``out`` (default: a
    local folder); its folder."""
    out = out or str(cluster["tmp"] / name)
    proc = harness(["run", *RUN, *[a for s in SETS for a in ("--set", s)], "--address", cluster["address"],
                    "--out", out, "--name", name], cluster["env"])
    return proc, location(out) / name


def wait_for_checkpoints(folder: Path | Remote, count: int, proc: subprocess.Popen) -> None:
    checkpoints = folder / "checkpoints"
    wait_for(lambda: len(list(checkpoints.rglob("*.pt"))) >= count, 300, proc)


def records(folder: Path | Remote) -> dict[int, dict]:
    return {json.loads(p.read_text())["seed"]: json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same two seeds in this process, without Ray."""
    out = tmp_path_factory.mktemp("reference")
    return {r["seed"]: r for r in trial_records("gdas", "nb201", out, "ref", 2, *SETS)}


def same(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in KEPT)


def wait_for(predicate, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.2)


def test_a_driver_killed_with_sigkill_is_resumed_over_both_nodes_with_the_code_shipped_and_the_local_records(
        cluster, reference):
    """One run for two facts (each cluster run costs the suite half a minute): the driver, killed once both trials
    run (one on each node, each node has one CPU), is resumed on the cluster; the resumed trials spread over both
    nodes, get the harness's code shipped and end with the records of an in-process run."""
    proc, folder = run_on_cluster(cluster, "killed")
    wait_for_checkpoints(folder, 2, proc)
    proc.kill()  # SIGKILL: no handler runs, no resume hint, the lock is released by the kernel
    proc.communicate(timeout=60)
    trials = folder / "trials"
    assert not list(trials.glob("*.json"))  # both seeds are left to the resumed driver, which runs them at once
    resumed = harness(["run", "--resume", "--name", "killed", "--out", str(folder.parent), "--address",
                       cluster["address"]], cluster["env"])
    text, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, text[-3000:]
    assert sorted(p.name for p in trials.glob("*.json")) == ["gdas-nb201-digits-s0.json", "gdas-nb201-digits-s1.json"]
    got = records(trials)
    assert all(r["resumed_at"] for r in got.values())  # continued from their checkpoints, not from scratch
    assert len({r["runner"]["node"] for r in got.values()}) == 2  # one trial on each node
    assert all(r["runner"]["code_shipped"] for r in got.values())
    # Ray unpacked the shipped packages for the workers (here an editable install of the harness still wins the
    # import; on a cluster without it the shipped copy is the one imported)
    unpacked = list(cluster["ray_tmp"].glob("session_*/runtime_resources/py_modules_files/*/harness/trial.py"))
    assert unpacked, "the harness was not shipped"
    for seed, record in got.items():
        assert same(record, reference[seed]), seed


def test_a_trial_on_a_killed_node_finishes_on_the_other_from_its_checkpoint(cluster, reference, s3_endpoint):
    """Last: it kills the worker node. The results live on the S3 server, the storage the surviving node shares with
    the lost one: the retried trial reads its checkpoint from there."""
    proc, folder = run_on_cluster(cluster, "lost", s3_uri(s3_endpoint, "cluster", "nas"))
    # both trials run, one on each node, and have a checkpoint: kill the worker node in the middle of its search
    wait_for_checkpoints(folder, 2, proc)
    os.killpg(cluster["worker"].pid, signal.SIGKILL)
    text, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, text[-3000:]
    got = records(folder / "trials")
    assert sorted(got) == [0, 1]
    assert len({r["runner"]["node"] for r in got.values()}) == 1  # the survivor also ran the retried trial
    retried = [r for r in got.values() if r["resumed_at"]]
    assert len(retried) == 1 and retried[0]["resumed_at"][0]["phase"] == "search"
    assert retried[0]["resumed_at"][0]["epoch"] >= 1  # from its checkpoint, not from the start
    for seed, record in got.items():
        assert same(record, reference[seed]), seed
