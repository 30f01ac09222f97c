"""Shared fixtures: Ray's environment, one Ray instance per test session, one torch thread per test."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from harness.cli import RAY_ENV

for _key, _value in RAY_ENV.items():  # before anything imports ray
    os.environ.setdefault(_key, _value)
# Object-store tests (test_storage.py) talk to a local S3 server only: fake credentials, no instance metadata
# lookup, and never a real account; set before Ray starts so that its workers have them too. Distinctive values
# (the server takes any), with the / and + of a real secret key: a test scans the results and Ray's files for them.
S3_CREDENTIALS = ("AKIAHARNESSTEST7QX2", "hArNeSs+TeSt/SeCrEt9vWk")
for _key, _value in (("AWS_ACCESS_KEY_ID", S3_CREDENTIALS[0]), ("AWS_SECRET_ACCESS_KEY", S3_CREDENTIALS[1]),
                     ("AWS_EC2_METADATA_DISABLED", "true"), ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ[_key] = _value
# Teachers trained by the tests go to a throw-away cache, never the user's; set before Ray starts so that
# its workers inherit it.
_TEST_CACHE = None
if "HARNESS_CACHE_DIR" not in os.environ:
    _TEST_CACHE = os.environ["HARNESS_CACHE_DIR"] = tempfile.mkdtemp(prefix="harness-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _throw_away_cache():
    yield
    if _TEST_CACHE is not None:
        shutil.rmtree(_TEST_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _no_terminal_size(monkeypatch):
    """The views lay themselves out for ``COLUMNS`` where it is set, and pytest-xdist's workers have COLUMNS=80
    and LINES=24 (a single process has neither): a test that wants a width sets it."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)


@pytest.fixture(autouse=True)
def _one_thread():
    """Two shared cores: a second torch thread makes tiny ops slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray started once for the whole session (under pytest-xdist: once per worker process, each its own);
    the CLI reuses it, subprocesses join it."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API server on 127.0.0.1 (moto's, ``tests/s3_server.py``) for the whole session: ``host:port``."""
    from s3_server import s3_server

    with s3_server() as endpoint:
        yield endpoint


def s3_uri(endpoint: str, bucket: str, prefix: str) -> str:
    """A new bucket on the test server and the URI of ``prefix`` in it, the endpoint in the URI's query (the trial
    workers rebuild the file system from it; the credentials are the fake ones set above)."""
    from s3_server import create_bucket

    create_bucket(endpoint, bucket)
    return f"s3://{bucket}/{prefix}?endpoint_override={endpoint}&scheme=http"


# --- tiny in-process runs of any registered (method, space) pair -------------------------------------------
# Applied to a pair where its smoke configuration has the key (the keys a pair lacks are not its own): digits
# at 8×8 on tiny networks, so that a search epoch of any pair takes about a second on one thread.
TINY = {"image_size": "8", "train_limit": "40", "search_batch_size": "20", "search_layers": "3",
        "search_channels": "2", "search_epochs": "2", "rs_candidates": "2", "rs_epochs": "1", "corr_edges": "1",
        "corr_batches": "1",
        "teacher_depth": "11", "teacher_alpha": "4", "teacher_epochs": "1",
        # the proxyless chain at 8 channels in every stage and a last width of 64 (the smoke widths reach 80, and
        # 1280 for the last): its 23 blocks run at digits' whole 8×8 under strides=auto, and at the smoke widths a
        # tiny trial of three evaluation epochs took twice as long and left GDAS's chain at chance (9.7 %)
        "widths": "8,8,8,8,8,8,8,8,64",
        # ADWPNAS: one epoch of each phase (phase 1, HyperNetwork training, cross search)
        "intensive_epochs": "1", "intensive_n": "0", "hyper_epochs": "1", "cross_start": "1", "cross_end": "2",
        # NAS-Bench-201: a tenth of smoke's architecture-level sample (ADWPNAS measures every cell of it)
        "arch_corr_samples": "100"}
# A whole trial that must end above chance: more images (one search step per half all the same), no cutout
# (at 8×8 pixels a 16-pixel cutout blanks the image) and three evaluation epochs.
TINY_TRIAL = {**TINY, "train_limit": "256", "search_batch_size": "128", "search_epochs": "1", "eval_epochs": "3",
              "eval_batch_size": "16", "eval_lr": "0.1", "eval_layers": "3", "eval_channels": "8", "cutout": "0",
              "drop_path": "0", "auxiliary_weight": "0"}


def registered_pairs() -> list[tuple[str, str]]:
    """Every (method, space) pair that ``python -m harness list`` shows."""
    from harness.core.registry import valid_pairs

    return valid_pairs()


def tiny_overrides(method: str, space: str, tiny: dict[str, str] | None = None) -> dict[str, str]:
    """``tiny`` (default ``TINY``) restricted to the keys of the pair's smoke configuration."""
    from harness.core.config import resolve
    from harness.core.registry import get_method, get_space

    own = resolve(get_method(method), get_space(space), "smoke", {}).values
    return {key: value for key, value in (TINY if tiny is None else tiny).items() if key in own}


@pytest.fixture(scope="session")
def digits_dataset():
    """scikit-learn's digits as ``harness.core.data.load_dataset`` gives them (loaded once per session)."""
    from harness.core.data import load_dataset

    return load_dataset("digits")


def trial_records(method: str, space: str, out, name: str, seeds: int = 1, *sets: str, dataset: str = "digits",
                  budget: str = "smoke") -> list[dict]:
    """The records of ``python -m harness run --method METHOD --space SPACE --budget BUDGET --dataset DATASET
    --seeds SEEDS --set ... --out OUT --name NAME``, computed in-process without Ray: the same specification
    (``build_spec``), each seed's ``execute_trial`` (one thread per trial, the CLI's default on a CPU), the
    records read back from ``OUT/NAME/trials``. For tests of what a record holds; a run through Ray and the CLI
    is tested in test_cli.py, test_hardening.py and test_nos_cli.py."""
    import json
    from pathlib import Path

    from harness.experiment import RunRequest, build_spec
    from harness.trial import execute_trial

    spec = build_spec(RunRequest(method=method, space=space, dataset=dataset, budget=budget,
                                 seeds=list(range(seeds)), overrides=list(sets), out=Path(out), name=name,
                                 cpus_per_trial=None, gpus_per_trial=None, max_concurrent=None, max_failures=None,
                                 address=None, data_dir=None, resume=False))
    for seed in spec.seeds:
        execute_trial(spec, seed, report=lambda metrics: None)
    return [json.loads(p.read_text()) for p in sorted((Path(out) / name / "trials").glob("*.json"))]


# --- the inner loop: python -m pytest -m "not slow" ----------------------------------------------------------
# A test is slow when it starts Ray, a cluster or the S3 server (whatever fixture brings them), or is marked so (a
# whole trial or a driver process of its own). CI runs every test; "not slow" is the quick loop for one's own work.
SLOW_FIXTURES = {"ray_session", "s3_endpoint", "cluster"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: starts Ray, a cluster, the S3 server, a driver process or a whole "
                                       "trial (deselect with -m 'not slow')")


# --- the order of the files on the two workers ----------------------------------------------------------------
# pytest-xdist hands each worker one test file at a time (--dist loadfile); by default it hands out the files with
# the most tests first, which leaves the few but long tests (the cluster's three, about 140 s) to the end, on one
# worker while the other waits (measured: 522 s against 467 s of tests on the two workers). With
# --no-loadscope-reorder (pyproject.toml) the files go in the order below: the most expensive first (the longest
# processing time first rule), where a file's cost is estimated from what its tests start. These are rough weights
# for the order, not timings anything asserts.
COST_OF_FIXTURE = {"cluster": 40.0, "ray_session": 6.0, "s3_endpoint": 6.0}
COST_OF_SLOW, COST_OF_OTHER = 4.0, 0.05


def _estimated_cost(item) -> float:
    fixtures = set(getattr(item, "fixturenames", ())) & COST_OF_FIXTURE.keys()
    if fixtures:
        return max(COST_OF_FIXTURE[f] for f in fixtures)
    return COST_OF_SLOW if item.get_closest_marker("slow") else COST_OF_OTHER


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    cost: dict[str, float] = {}
    for item in items:
        cost[item.nodeid.split("::")[0]] = cost.get(item.nodeid.split("::")[0], 0.0) + _estimated_cost(item)
    items.sort(key=lambda item: -cost[item.nodeid.split("::")[0]])  # stable: a file's tests keep their order


@contextlib.contextmanager
def estimate_not_measured():
    """A run's time estimate without its measurement (a dry run of every search epoch, the correlations, the final
    network's steps and its latency: 5-10 s of a smoke run): for the costliest end-to-end fixtures, whose records and
    leaderboards are what they test. The estimate is tested in test_estimate.py and test_everyday.py, and measured
    for real by every run of a driver process (test_hardening.py, test_cluster.py)."""
    from harness import experiment
    from harness.estimate import TrialCost

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(experiment, "estimate_seconds", lambda spec, dataset, load_seconds: TrialCost(where="a test"))
        yield
