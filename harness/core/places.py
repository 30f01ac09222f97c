"""What must be done differently on a local folder and on an object store is an operation of ``place(at)``: a
``LocalPlace`` or a ``StorePlace``, the two implementations of ``Place``, and ``place`` is the only code that asks which
kind a location is. A ``Place`` owns group writes that are all or none (``write_group``), the write probe
(``check_writable``), a read bounded by a size (``read_limited``), the listing of one folder (``glob``), making an
experiment's folder as a new one (``claim``) and the local file whose lock stands for holding it (``lock_file``), Ray
Tune's storage (``tune_storage``), the local folder that tools writing only locally may use (``local``), whether a run
must watch the store (``needs_watch``, ``ping``) and writing a whole folder made locally (``fill``, the report's). Why
one interface rather than a branch at each use: a difference (how a lock works on a store, what Tune needs to reach it)
is decided and explained once, beside its twin, and a third kind of place would be one more class, not a hunt through
the driver. The locations themselves stay ``Path`` and ``Remote``: what is the same for both keeps its ``pathlib`` form.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import io
import os
import re
import socket
import stat
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from harness.core.errors import UserError, one_line, os_error_line
from harness.core.storage import Remote, default_cache_dir, location, upload_tree

LOCK_FILE = ".driver.lock"  # an experiment's (or study's) lock, in its folder
_HOST = re.sub(r"[^A-Za-z0-9_]+", "_", socket.gethostname()) or "host"

Writer = Callable[[IO[Any]], None]  # fills an open file (text or binary) with a file's content
R = TypeVar("R")


def place(at: str | os.PathLike[str] | Remote) -> Place:
    """The operations of the location ``at`` (as ``location`` reads it): a ``LocalPlace`` for a local path, a
    ``StorePlace`` for a URI of an object store. The only code that asks which kind a location is."""
    at = location(at)
    return StorePlace(at) if isinstance(at, Remote) else LocalPlace(at)


def write_group(files: dict[Any, tuple[Writer, bool]]) -> None:
    """Write the targets of ``files`` as a group, all or none (``Place.write_group`` of their kind); each
    ``write(f)`` gets a text file, or a binary one when its flag says so. A group must lie on one kind of place:
    local targets beside an object store's are one line, before anything is written."""
    group = [(place(target), how) for target, how in files.items()]
    if not group:
        return
    if len({type(p) for p, _ in group}) > 1:
        local = next(p.at for p, _ in group if p.local is not None)
        raise UserError(f"cannot write {local} together with files on an object store")
    type(group[0][0]).write_group(group)


def _too_large(what: str, path: Any, limit: int) -> str:
    return f"{what} {path} is larger than {limit / 2**20:g} MiB, the limit of what is read; it was not read"


class Place(ABC):
    """A file or folder ``at`` (a ``Path`` or a ``Remote``) with the operations whose way differs between a local
    folder and an object store. Code that works on both asks ``place(at)`` for the operation; it never asks which kind
    ``at`` is. What is the same for both (names, ``exists``, ``read_bytes``, ``rglob`` ...) stays on ``at`` itself.

    ``local``: ``at`` as a local path, None on an object store (for tools that write only to a local folder: MLflow's
    file store, W&B's files). ``needs_watch``: whether a run that stores here must watch the store (``ping``) and stop
    once it is lost (a local disk does not go away mid-run).
    """

    needs_watch = False

    def __init__(self, at: Any):
        self.at = at

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.at)!r})"

    @property
    def local(self) -> Path | None:
        return None

    @classmethod
    @abstractmethod
    def write_group(cls, group: list[tuple[Place, tuple[Writer, bool]]]) -> None:
        """Write every place of ``group`` (all of this kind) with its writer: readers see every old file or, once it
        returns, every new one; a writer that fails leaves every old file as it was."""

    @abstractmethod
    def check_writable(self, what: str) -> None:
        """This folder exists or can be made, and this process can write in it; else one line naming ``what`` (an
        option). Checked before any long work whose result would then be lost."""

    @abstractmethod
    def read_limited(self, limit: int, what: str) -> bytes:
        """The bytes of this file, at most ``limit`` of them: anything else is one line naming ``what``.
        ``FileNotFoundError`` is left to the caller."""

    @abstractmethod
    def glob(self, pattern: str) -> list[Any]:
        """What lies directly in this folder (no deeper) with a name that matches ``pattern``, unsorted."""

    @abstractmethod
    def claim(self) -> None:
        """Make this folder as a new one: ``FileExistsError`` if something is there already, ``OSError`` if it
        cannot be made."""

    @abstractmethod
    def lock_file(self) -> Path:
        """The local file whose ``flock`` stands for holding this folder (``fcntl`` works on local files only)."""

    @abstractmethod
    def tune_storage(self) -> dict[str, Any]:
        """Ray Tune's ``storage_path`` for this folder, and its ``storage_filesystem`` where Tune needs one."""

    @abstractmethod
    def fill(self, make: Callable[[Path], R], what: str) -> tuple[R, Callable[[Path], Any]]:
        """Have ``make(folder)`` write this folder's files into a local ``folder``, and return what ``make`` returned
        with the function that maps a path below that folder to where it now lies. An ``OSError`` is one line naming
        ``what``."""

    @abstractmethod
    def ping(self) -> None:
        """Look at the place once: ``OSError`` when it does not answer (what a watch of a store asks)."""


class LocalPlace(Place):
    """A local file or folder: group writes through temporary files and renames, locks in the folder itself."""

    at: Path

    @property
    def local(self) -> Path:
        return self.at

    @classmethod
    def write_group(cls, group: list[tuple[Place, tuple[Writer, bool]]]) -> None:
        """Each ``write(f)`` fills a temporary file first, and only when all are complete are they renamed over
        their targets, back to back. Each temporary file lives in its target's folder (``os.replace`` is only atomic
        within a file system) and is removed if anything fails; one left by a killed writer is removed by the next
        write of the same file. An OS error (a read-only folder, a full disk, a path through a file) becomes a
        one-line ``UserError``."""
        temps: list[tuple[Path, str]] = []
        current = group[0][0].at
        try:
            for target, (write, binary) in group:
                current = path = target.at
                path.parent.mkdir(parents=True, exist_ok=True)
                _sweep_stale_temps(path)
                fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=_temp_prefix(path), suffix=".tmp")
                temps.append((path, tmp_name))
                with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as f:
                    write(f)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; results are meant to be shared
            for path, tmp_name in temps:
                current = path
                os.replace(tmp_name, path)
        except BaseException as exc:
            for _, tmp_name in temps:
                try:
                    os.unlink(tmp_name)
                except OSError:
                    pass
            if isinstance(exc, OSError):
                raise UserError(os_error_line("write", current, exc)) from None
            raise
        for folder in {path.parent for path, _ in temps}:
            _fsync_folder(folder)

    def check_writable(self, what: str) -> None:
        """The only reliable test (permissions, read-only mounts, quotas): make and remove a folder in the nearest
        folder that exists."""
        folder = self.at
        if folder.exists() and not folder.is_dir():
            raise UserError(f"{what} '{folder}' is a file, not a folder")
        ancestor = folder.absolute()
        while not ancestor.exists():
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UserError(f"{what} '{folder}' cannot be created: '{ancestor}' is a file, not a folder")
        try:
            os.rmdir(tempfile.mkdtemp(dir=ancestor, prefix=".harness-probe-"))
        except OSError as err:
            raise UserError(f"{what} '{folder}' cannot be created or written "
                            f"({os_error_line('write in', ancestor, err)})") from None

    def read_limited(self, limit: int, what: str) -> bytes:
        """Only a regular file: a device (``/dev/zero``), a FIFO (opened without waiting for a writer) or a folder is
        one line, and a file larger than ``limit`` is refused by its size, never read past it."""
        path = self.at
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise
        except OSError as err:
            raise UserError(os_error_line(f"read {what}", path, err)) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise UserError(f"{what} {path} is not a regular file; give the path of a file")
            if info.st_size > limit:
                raise UserError(_too_large(what, path, limit))
            chunks, size = [], 0
            while size <= limit:
                chunk = os.read(fd, min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        except OSError as err:
            raise UserError(os_error_line(f"read {what}", path, err)) from None
        finally:
            os.close(fd)
        if len(data) > limit:  # it grew while read
            raise UserError(_too_large(what, path, limit))
        return data

    def glob(self, pattern: str) -> list[Path]:
        return list(self.at.glob(pattern))

    def claim(self) -> None:
        """``mkdir``, which the file system does atomically: of two drivers, one makes the folder."""
        self.at.mkdir(parents=True)

    def lock_file(self) -> Path:
        return self.at / LOCK_FILE

    def tune_storage(self) -> dict[str, Any]:
        return {"storage_path": str(self.at)}

    def fill(self, make: Callable[[Path], R], what: str) -> tuple[R, Callable[[Path], Any]]:
        """``make`` writes into this folder itself."""
        try:
            return make(self.at), lambda path: path
        except OSError as err:  # a full disk, a read-only folder: one line
            raise UserError(os_error_line(f"write {what} in", self.at, err)) from None

    def ping(self) -> None:
        """A local disk does not go away mid-run: nothing to look at."""


class StorePlace(Place):
    """A file or folder on an object store: group writes complete in memory before the first put, no folders to
    make, and a lock file of this machine's cache."""

    at: Remote
    needs_watch = True

    @classmethod
    def write_group(cls, group: list[tuple[Place, tuple[Writer, bool]]]) -> None:
        """Every ``write(f)`` fills memory first and the objects are then put back to back, each in one upload (the
        module's docstring): a writer that fails sends nothing."""
        contents = []
        for target, (write, binary) in group:
            buffer: IO[Any] = io.BytesIO() if binary else io.StringIO()
            write(buffer)
            data = buffer.getvalue()
            contents.append((target.at, data if binary else data.encode("utf-8")))
        for at, data in contents:
            at.put(data)

    def check_writable(self, what: str) -> None:
        """Write and delete a probe: a missing bucket, no credentials or no right to write show only then."""
        probe = self.at / f".harness-probe-{_HOST}-{os.getpid()}"
        try:
            probe.put(b"")
            probe.unlink(missing_ok=True)
        except (UserError, OSError) as err:
            raise UserError(f"{what} '{self.at}' cannot be written ({one_line(err)})") from None

    def read_limited(self, limit: int, what: str) -> bytes:
        """A stream read of at most ``limit + 1`` bytes (an object is always a regular file)."""
        path = self.at
        try:
            with path.filesystem.open_input_stream(path.fs_path) as stream:
                data = stream.read(limit + 1)
        except FileNotFoundError:
            raise
        except OSError as err:
            raise UserError(f"cannot read {what} {path}: {one_line(err)}") from None
        if len(data) > limit:
            raise UserError(_too_large(what, path, limit))
        return data

    def glob(self, pattern: str) -> list[Remote]:
        """The files (a store has no empty folders) directly in this folder."""
        return [f for f in self.at.files() if f.parent == self.at and fnmatch.fnmatchcase(f.name, pattern)]

    def claim(self) -> None:
        """A store has no atomic ``mkdir``: a folder is new when nothing lies at its URI (two drivers that look at
        once are not told apart)."""
        if self.at.exists():
            raise FileExistsError(errno.EEXIST, "it exists", str(self.at))

    def lock_file(self) -> Path:
        """A store has no locks: a file of this machine's cache named by the folder's URI, so that two drivers on one
        machine are caught, two on different machines are not."""
        return default_cache_dir() / "locks" / f"{hashlib.sha256(self.at.uri.encode()).hexdigest()[:20]}.lock"

    def tune_storage(self) -> dict[str, Any]:
        """The harness's own file system, so that Tune reaches the store with the same options."""
        return {"storage_path": self.at.fs_path, "storage_filesystem": self.at.filesystem}

    def fill(self, make: Callable[[Path], R], what: str) -> tuple[R, Callable[[Path], Any]]:
        """``make`` writes into a local temporary folder, which is then uploaded here file by file (``upload_tree``:
        what this folder held before and ``make`` did not write is deleted)."""
        try:
            with tempfile.TemporaryDirectory(prefix="harness-upload-") as tmp:
                made = make(Path(tmp))
                upload_tree(Path(tmp), self.at)
        except OSError as err:
            raise UserError(os_error_line(f"write {what} for", self.at, err)) from None
        return made, lambda path: self.at / path.relative_to(tmp).as_posix()

    def ping(self) -> None:
        self.at.filesystem.get_file_info(self.at.fs_path)


def _temp_prefix(path: Path) -> str:
    """Temporary files are hidden, name their target, this host and this process, and end in ``.tmp``
    (so loaders never mistake one for a record, and a later writer can tell whose it is)."""
    return f".{path.name}.{_HOST}-{os.getpid()}."


def _sweep_stale_temps(path: Path) -> None:
    """Remove the temporary files of ``path`` left by a writer on this host that was killed mid-write
    (SIGKILL, power loss: no ``finally`` ran); a live writer's files, and other hosts', are left alone."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{_HOST}-(\d+)\.[^.]+\.tmp$")
    try:
        names = os.listdir(path.parent)
    except OSError:
        return
    for name in names:
        match = pattern.match(name)
        if not match or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        try:
            os.unlink(path.parent / name)
        except OSError:
            pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable; not possible on every platform."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
