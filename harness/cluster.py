"""Where trials run: a Ray cluster joined with ``--address`` (checked, with the harness's code shipped to its workers),
or a local Ray on this machine; either way a trial must fit on one node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from harness.core.errors import UserError
from harness.interrupts import sigterm_deferred
from harness.spec import ExperimentSpec


def check_resources(spec: ExperimentSpec) -> None:
    """A trial must fit: on the cluster of ``--address`` (joined here), else on this machine."""
    if spec.address:
        connect_cluster(spec)
    else:
        check_machine(spec.cpus_per_trial, spec.gpus_per_trial)


def check_machine(cpus: int, gpus: float) -> None:
    """A trial must fit on this machine (local Ray has its cores and GPUs and waits forever otherwise)."""
    ncpu, cuda = os.cpu_count() or 1, torch.cuda.device_count()
    if cpus > ncpu:
        raise UserError(f"--cpus-per-trial {cpus} but this machine has {ncpu} CPU cores; use at most {ncpu}")
    if gpus > 0 and not cuda:
        raise UserError(f"--gpus-per-trial {gpus:g} but this machine has no CUDA GPU; use --gpus-per-trial 0 "
                        "(or --address of a cluster with GPUs)")
    if gpus > cuda:
        raise UserError(f"--gpus-per-trial {gpus:g} but this machine has {cuda} GPUs; use at most {cuda}")


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for ``auto``/``local`` (Ray finds, or
    fails at once to find, a cluster started on this machine); one line for anything else."""
    if address in ("auto", "local"):
        return None
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit() or not host or not 0 < int(port) < 65536:
        raise UserError(f"--address '{address}': expected host:port (e.g. 10.0.0.1:6379), ray://host:port "
                        "or auto")
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float = 10.0) -> None:
    """Refuse an address where nothing answers within ``timeout`` seconds: Ray itself keeps retrying for
    many minutes."""
    target = host_port(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as err:
        raise UserError(f"cannot reach the Ray cluster at '{address}' within {timeout:g} s "
                        f"({err.strerror or err.__class__.__name__}); start it with 'ray up' / "
                        "'ray start --head' or check --address") from None


CONNECT_TIMEOUT_S = 60


def join_within_time_limit(address: str) -> None:
    """Join the cluster once from a child process that is killed after ``CONNECT_TIMEOUT_S``: something
    that answers on the port but is not a healthy Ray head makes ``ray.init`` retry for many minutes, and a
    retry loop inside Ray cannot be interrupted from the driver itself."""
    code = ("import sys, ray; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
            "ray.shutdown()")
    try:
        done = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True,
                              timeout=CONNECT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UserError(f"cannot join the Ray cluster at '{address}' within {CONNECT_TIMEOUT_S} s (something answers "
                        "there, but not a working Ray head); check --address and 'ray status' on the head") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1].strip()[:200] if lines else f"exit status {done.returncode}"
        raise UserError(f"cannot join the Ray cluster at '{address}' ({reason}); check --address") from None


SHIPPED_PACKAGES = ("harness", "methods", "spaces")


def shipped_code() -> dict[str, Any]:
    """Ray's ``runtime_env`` that ships the harness to a cluster's trial workers: its own packages
    (``SHIPPED_PACKAGES``, with the bundled benchmark table; not the results folder, datasets or caches, which
    lie outside them), uploaded once per driver and put first on every worker's import path, so a cluster
    needs only Ray and the dependencies installed (``--no-ship-code`` when its image has the harness)."""
    import importlib

    folders = [str(Path(importlib.import_module(name).__file__).parent) for name in SHIPPED_PACKAGES]
    return {"py_modules": folders, "excludes": ["__pycache__", "*.pyc"]}


def connect_cluster(spec: ExperimentSpec) -> None:
    """Join the Ray cluster at ``spec.address`` (one line if it cannot be reached), shipping the harness's
    code to its workers unless the spec says not to (``shipped_code``), and check that a trial fits on one of
    its nodes."""
    import ray

    probe(spec.address)
    if not ray.is_initialized():
        join_within_time_limit(spec.address)
        try:
            with sigterm_deferred():
                ray.init(address=spec.address, logging_level="ERROR", log_to_driver=False,
                         runtime_env=shipped_code() if spec.ship_code else None)
        except Exception as exc:  # ConnectionError and Ray's own errors
            raise UserError(f"cannot reach the Ray cluster at '{spec.address}' ({exc.__class__.__name__}); "
                            "start it with 'ray up' / 'ray start --head' or check --address") from None
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for kind, key in (("CPU", "cpus_per_trial"), ("GPU", "gpus_per_trial")):
        largest = max((n.get(kind, 0) for n in nodes), default=0)
        asked = getattr(spec, key)
        if asked > largest:
            raise UserError(f"each trial asks for {asked:g} {kind} but the largest node of the Ray cluster at "
                            f"'{spec.address}' has {largest:g}; lower --{key.replace('_', '-')}")


def start_local_ray() -> None:
    import ray

    if not ray.is_initialized():
        with sigterm_deferred():  # a SIGTERM meanwhile is a KeyboardInterrupt once Ray has started
            ray.init(address="local", num_cpus=os.cpu_count() or 1, num_gpus=torch.cuda.device_count(),
                     include_dashboard=False, logging_level="ERROR", log_to_driver=False)
