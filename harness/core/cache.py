"""One keyed, locked cache on disk: an entry per key, built once however many trials ask for it at once.

The harness keeps three such caches — decoded datasets and CIFAR downloads (``harness.core.data``), NOS's
teachers (``methods.nos.teacher``) and ProxylessNAS's latency tables (``methods.proxyless``) — and each needs the
same thing: whoever builds (or rewrites) the entry of a key holds the exclusive ``flock`` of
``<folder>/<key>.lock`` (``key_lock``), and a reader that found nothing checks again once it holds the lock,
so that concurrent trials build the entry once and the others load what it built (``get_or_build``).

Why a file lock and not a thread lock: the askers are mostly processes (Ray trials on one node, or nodes that
share the folder where the file system supports ``flock``), and a ``flock`` serialises the threads of one
process too, since every ``key_lock`` opens the lock file anew (a lock belongs to the open file, not the
process). The lock is released when its file is closed, also when the holder dies, so a crashed builder never
blocks the next one. What an entry is and how it is read and written stays with each cache: only the
locking and the double check are shared.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from harness.core.errors import UserError

T = TypeVar("T")
WRITABLE_CACHE = "set HARNESS_CACHE_DIR to a writable folder"


@contextmanager
def key_lock(folder: Path, key: str, what: str, fix: str = WRITABLE_CACHE) -> Iterator[None]:
    """Hold the exclusive ``flock`` of ``<folder>/<key>.lock`` (waiting for it; ``folder`` is made if missing). A
    folder that cannot be written is one line naming ``what`` it is (``"dataset cache"``, ``"data folder"``) and
    ``fix``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / f"{key}.lock", "a")
    except OSError as exc:
        raise UserError(f"cannot write the {what} '{folder}' ({exc.__class__.__name__}); {fix}") from None
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


def get_or_build(folder: Path, key: str, read: Callable[[], T | None], build: Callable[[], T], what: str,
                 fix: str = WRITABLE_CACHE) -> T:
    """The entry of ``key``: ``read()`` when it finds one (not None), else ``build()`` under ``key_lock``, after
    a second ``read()`` once the lock is held (another asker may have built it meanwhile).

    ``build`` makes the entry, stores it where ``read`` finds it and returns it; it should store last and
    atomically, so that a build that raises (or a builder that dies) leaves nothing ``read`` takes for an entry,
    and the next asker builds it again. An entry that is there is read without the lock.
    """
    found = read()
    if found is not None:
        return found
    with key_lock(folder, key, what, fix):
        found = read()
        return found if found is not None else build()
