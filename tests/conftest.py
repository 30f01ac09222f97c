"""Shared fixtures: Ray's environment, one Ray instance per test session, one torch thread per test."""

from __future__ import annotations

import os
import shutil
import tempfile

from harness.cli import RAY_ENV

for _key, _value in RAY_ENV.items():  # before anything imports ray
    os.environ.setdefault(_key, _value)
# Teachers trained by the tests go to a throw-away cache, never the user's; set before Ray starts so that
# its workers inherit it.
_TEST_CACHE = None
if "HARNESS_CACHE_DIR" not in os.environ:
    _TEST_CACHE = os.environ["HARNESS_CACHE_DIR"] = tempfile.mkdtemp(prefix="harness-test-cache-")

import pytest  # noqa: E402
import torch  # noqa: E402

import methods  # noqa: E402, F401  (the method modules register themselves)
import spaces  # noqa: E402, F401  (the space modules register themselves)


@pytest.fixture(scope="session", autouse=True)
def _throw_away_cache():
    yield
    if _TEST_CACHE is not None:
        shutil.rmtree(_TEST_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def _one_thread():
    """Two shared cores: a second torch thread makes tiny ops slower, not faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray started once for the whole session; the CLI reuses it, subprocesses join it."""
    import ray

    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
