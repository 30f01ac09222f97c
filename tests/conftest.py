"""Shared fixtures: Ray's environment, one Ray instance per test session, one torch thread per test."""

from __future__ import annotations

import os

from harness.cli import RAY_ENV

for _key, _value in RAY_ENV.items():  # before anything imports ray
    os.environ.setdefault(_key, _value)

import pytest  # noqa: E402
import torch  # noqa: E402


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
