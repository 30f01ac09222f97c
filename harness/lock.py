"""One driver per experiment: the lock an experiment's (or study's) driver holds while it runs.

The lock is an ``flock`` on ``<experiment>/.driver.lock``, released by the kernel however the driver ends; on an
object store (no locks there) a file of this machine's cache named by the experiment's URI (``lock_file``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from harness.core.errors import UserError, os_error_line
from harness.core.places import place
from harness.core.storage import Remote
from harness.spec import ExperimentSpec


def lock_file(exp_dir: Path | Remote) -> Path:
    """The experiment's lock file: ``<experiment>/.driver.lock``; for an experiment on an object store (which has no
    locks) a file of this machine's cache named by the experiment's URI (``Place.lock_file``)."""
    return place(exp_dir).lock_file()


def running_note(exp_dir: Path | Remote) -> str:
    """``"; it is being run by …"`` when a driver holds the experiment's lock, else ``""``."""
    holder = lock_holder(exp_dir)
    return f"; it is being run now by {holder}" if holder else ""


def lock_holder(exp_dir: Path | Remote) -> str | None:
    """Who runs the experiment (or study) now — ``process <pid> on <host> (started <time>)`` — when a driver holds its
    lock; None when none does (or its lock file cannot be opened)."""
    path = lock_file(exp_dir)
    if not path.is_file():
        return None
    try:
        with open(path, "a+") as fh:
            holder = _lock_or_holder(fh)
            if holder is None:
                fcntl.flock(fh, fcntl.LOCK_UN)
            return holder
    except OSError:
        return None


def _lock_or_holder(fh: Any) -> str | None:
    """Take the lock of the open lock file ``fh`` without waiting: None when taken, else who holds it."""
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        return _holder(fh.read())
    return None


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"process {info['pid']} on {info['host']} (started {info['started']})"
    except (json.JSONDecodeError, KeyError, TypeError):
        return "another driver"


@contextmanager
def driver_lock(exp_dir: Path | Remote, create: bool) -> Iterator[None]:
    """Hold the experiment for this driver's lifetime.

    ``create`` claims a new experiment folder atomically (``mkdir`` fails if it exists). The lock is an
    ``flock`` on ``<experiment>/.driver.lock``, which the kernel releases when the driver ends however it
    ends, so a crashed driver never leaves the experiment locked; the file names the holder for the
    refusal of a second driver. (``flock`` is per host on most network file systems: two drivers of one
    experiment on different hosts are not caught.) An object store has neither an atomic ``mkdir`` nor locks: a new
    experiment there is refused if anything lies at its URI, and the lock is a file of this machine's cache named by
    the URI (``lock_file``), so two drivers on one machine are caught, two on different machines are not.
    """
    if create:
        try:
            place(exp_dir).claim()
        except FileExistsError:
            raise UserError(f"experiment '{exp_dir.name}' was just created by another driver in "
                            f"'{exp_dir.parent}'; choose another --name" + running_note(exp_dir)) from None
        except OSError as err:
            raise UserError(os_error_line("create", exp_dir, err)) from None
    path = lock_file(exp_dir)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")
    except OSError as err:
        raise UserError(os_error_line("write", path, err)) from None
    with fh:
        holder = _lock_or_holder(fh)
        if holder is not None:
            raise UserError(f"experiment '{exp_dir.name}' is being run now by {holder}; wait for it to end or stop "
                            "it before resuming")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": dt.datetime.now().isoformat(timespec="seconds")}))
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def cell_locks(specs: list[ExperimentSpec], create: bool) -> Iterator[None]:
    """Every cell's ``driver_lock``: a cell is an experiment, and ``run --resume`` of one must not run beside its
    study's driver (nor a study's driver beside it)."""
    with ExitStack() as stack:
        for spec in specs:
            stack.enter_context(driver_lock(spec.folder, create=create))
        yield
