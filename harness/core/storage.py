"""Where results live: a local folder, or any file system pyarrow reaches by URI (``s3://``, ``gs://``,
``hdfs://``, ``abfs://`` ...).

``location(text)`` gives a ``pathlib.Path`` for a local path (or a ``file://`` URI) and a ``Remote`` for any other
URI. ``Remote`` has the part of ``pathlib``'s interface the harness uses (``/``, ``name``, ``parent``, ``exists``,
``is_file``, ``read_text``, ``rglob`` ...), so the code that lays out experiments, records, leaderboards and
reports is the same for both.

Places. What must be done differently on a local folder and on an object store is an operation of ``place(at)``: a
``LocalPlace`` or a ``StorePlace``, the two implementations of ``Place``, and ``place`` is the only code that asks which
kind a location is. A ``Place`` owns group writes that are all or none (``write_group``), the write probe
(``check_writable``), a read bounded by a size (``read_limited``), the listing of one folder (``glob``), making an
experiment's folder as a new one (``claim``) and the local file whose lock stands for holding it (``lock_file``), Ray
Tune's storage (``tune_storage``), the local folder that tools writing only locally may use (``local``), whether a run
must watch the store (``needs_watch``, ``ping``) and writing a whole folder made locally (``fill``, the report's). Why
one interface rather than a branch at each use: a difference (how a lock works on a store, what Tune needs to reach it)
is decided and explained once, beside its twin, and a third kind of place would be one more class, not a hunt through
the driver. The locations themselves stay ``Path`` and ``Remote``: what is the same for both keeps its ``pathlib`` form.

Atomic writes on an object store. A store has no rename, but an object appears only when its upload completes
(one PUT, or the completion of a multipart upload), so a reader sees the old object or the new one, never a part.
``Remote.put`` therefore serialises everything into memory first and hands the store the complete bytes in one
write: an exception while serialising sends nothing.

Configuration. The file system is made by ``pyarrow.fs.FileSystem.from_uri`` in every process that touches it (the
driver and each trial worker), so what it needs must reach them all: credentials and endpoints from the usual
environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ``GOOGLE_APPLICATION_CREDENTIALS``, instance roles), or
options in the URI's query (``s3://bucket/prefix?endpoint_override=host:9000&scheme=http``), which the experiment's
spec keeps.

Credentials never go in a location: the spec, Ray Tune's own files and every printed path and resume hint would carry
them. ``location`` refuses a URI with user-info (``user@``, ``key:secret@``: pyarrow reads an S3 access key and secret,
an Azure account key, an HDFS user from it) or a query option that names a credential (``credential_keys``), and its
refusal shows the URI with those parts masked (``redact``).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from harness.core.errors import UserError, one_line, os_error_line

# A query option is a credential when a word of its name is one of these: pyarrow's own (S3's access_key, secret_key,
# session_token in older releases; GCS's access_token, credentials_expiration; Azure's client_secret and a SAS token,
# whose query carries ``sig``; HDFS's kerb_ticket), and any other file system's (fsspec's, Hadoop's fs.s3a.secret.key,
# a presigned URL's X-Amz-Signature / X-Amz-Security-Token). Not ``credential_kind`` (Azure's choice of a method).
SECRET_WORDS = frozenset({"key", "secret", "token", "password", "passwd", "pwd", "sig", "signature", "ticket",
                          "credentials", "sas", "apikey", "accesskey", "secretkey", "sessiontoken", "sastoken"})
MASK = "***"


def is_uri(text: str) -> bool:
    """``scheme://...`` with a scheme of two letters or more (``C:\\x`` is a Windows drive, not a URI)."""
    scheme, sep, _ = text.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()


def _user_info_end(text: str) -> int:
    """The index of the ``@`` that ends a URI's user-info, -1 if it has none. A secret may hold ``/`` (an AWS secret
    key does), which ends the authority early for a parser (``s3://KEY:abc/def@bucket``): an authority whose "port" is
    not a number, followed by an ``@``, has user-info too."""
    start = len(text.partition("://")[0]) + 3
    base = re.split(r"[?#]", text, maxsplit=1)[0]
    authority = re.split(r"/", base[start:], maxsplit=1)[0]
    if "@" in authority:
        return start + authority.rfind("@")
    port = authority.rpartition(":")[2] if ":" in authority else ""
    return base.find("@", start) if port and not port.isdigit() else -1


def credential_keys(query: str) -> list[str]:
    """The options of ``query`` that carry a credential (``SECRET_WORDS``), in order."""
    found = []
    for key, _ in parse_qsl(query, keep_blank_values=True):
        words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).lower()
        if {key.lower(), *re.split(r"[^a-z0-9]+", words)} & SECRET_WORDS and key not in found:
            found.append(key)
    return found


def redact(text: str) -> str:
    """``text`` (a URI) with its user-info and the values of its credential options masked: what may be printed of a
    URI that was refused."""
    if not is_uri(text):
        return text
    scheme = text.partition("://")[0]
    at = _user_info_end(text)
    if at >= 0:
        text = f"{scheme}://{MASK}{text[at:]}"
    base, sep, query = text.partition("?")
    secret = set(credential_keys(query))
    if secret:
        query = "&".join(f"{k}={MASK}" if k in secret else (f"{k}={v}" if v else k)
                         for k, v in parse_qsl(query, keep_blank_values=True))
    return base + sep + query


def check_no_credentials(text: str, what: str = "") -> None:
    """Refuse a URI that holds a credential (user-info or a credential option), naming it with those parts masked:
    the spec, Ray Tune's files and every printed path and hint would carry it."""
    if not is_uri(text):
        return
    found = (["user-info (user@ or key:secret@)"] if _user_info_end(text) >= 0 else []) + \
        [f"'{k}'" for k in credential_keys(text.partition("?")[2])]
    if found:
        raise UserError(f"{what + ' ' if what else ''}'{redact(text)}' has credentials in it ({', '.join(found)}): "
                        "give them through the environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, "
                        "GOOGLE_APPLICATION_CREDENTIALS, ...), a profile or an instance role, never in a location "
                        "that is stored and printed")


def location(value: str | os.PathLike[str] | Remote) -> Path | Remote:
    """The place ``value`` names: a ``Path`` for a local path or ``file://`` URI, a ``Remote`` for any other URI
    (one that holds a credential is refused: ``check_no_credentials``). Nothing is contacted here (argument
    parsing may call it)."""
    if isinstance(value, (Path, Remote)):
        return value
    text = os.fspath(value)
    if not is_uri(text):
        return Path(text)
    check_no_credentials(text)
    try:
        parts = urlsplit(text)
    except ValueError as err:  # e.g. an unclosed [ of an IPv6 address
        raise UserError(f"'{text}' is not a valid URI ({err})") from None
    if parts.scheme == "file":
        return Path(parts.path)
    return Remote(f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}", parts.query)


def uri(at: Path | Remote) -> str:
    """The text that names ``at`` again in another process: an absolute path, or the URI with its query."""
    return at.uri if isinstance(at, Remote) else str(at.absolute())


_FILESYSTEMS: dict[str, tuple[Any, str]] = {}


def _filesystem(root_uri: str) -> tuple[Any, str]:
    """pyarrow's file system for ``root_uri`` (with query) and the file system's path of that URI, made once per
    process. A URI pyarrow cannot use is one line."""
    if root_uri not in _FILESYSTEMS:
        import pyarrow.fs as pafs

        try:
            _FILESYSTEMS[root_uri] = pafs.FileSystem.from_uri(root_uri)
        except (OSError, ValueError, TypeError) as err:
            raise UserError(f"cannot open '{redact(root_uri)}' ({one_line(err, 200)}); use a local "
                            "folder or a URI pyarrow supports (s3://bucket/prefix, gs://bucket/prefix, hdfs://host/path)"
                            ) from None
    return _FILESYSTEMS[root_uri]


class StoreError(UserError):
    """A call to the store failed (unreachable, refused, denied): one line naming the place. Its own type so that the
    driver can tell a lost store from a trial's other faults."""


class Remote:
    """A file or folder on a pyarrow file system, named by URI; immutable, compared by URI.

    ``str()`` is the URI without its query (what is printed); ``uri`` adds the query (what another process needs).
    Every I/O error is one line (``StoreError``) naming the URI.
    """

    __slots__ = ("_base", "_query", "_rel", "_kind")

    def __init__(self, base: str, query: str = "", rel: str = "", kind: str | None = None):
        self._base, self._query, self._rel, self._kind = base, query, rel.strip("/"), kind

    # --- names ---------------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return f"{self._base}/{self._rel}" if self._rel else self._base

    def __repr__(self) -> str:
        return f"Remote({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Remote) and self.uri == other.uri

    def __hash__(self) -> int:
        return hash(self.uri)

    def __lt__(self, other: Remote) -> bool:
        return str(self) < str(other)

    @property
    def uri(self) -> str:
        return str(self) + (f"?{self._query}" if self._query else "")

    def __truediv__(self, name: str | os.PathLike[str]) -> Remote:
        return Remote(self._base, self._query, f"{self._rel}/{os.fspath(name)}".strip("/"))

    @property
    def name(self) -> str:
        return str(self).rstrip("/").rsplit("/", 1)[-1]

    @property
    def stem(self) -> str:
        name = self.name
        return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name

    @property
    def parent(self) -> Remote:
        if self._rel:
            return Remote(self._base, self._query, self._rel.rpartition("/")[0])
        scheme, rest = self._base.split("://", 1)
        return Remote(f"{scheme}://{rest.rsplit('/', 1)[0]}", self._query) if "/" in rest else self

    def absolute(self) -> Remote:
        return self

    def relative_parts(self, root: Remote) -> tuple[str, ...]:
        """The names below ``root`` that lead to this place (``ValueError`` if it is not below)."""
        mine, theirs = str(self), str(root).rstrip("/") + "/"
        if not mine.startswith(theirs):
            raise ValueError(f"{mine} is not below {root}")
        return tuple(mine[len(theirs):].split("/"))

    # --- the file system -----------------------------------------------------------------------------------------
    @property
    def filesystem(self) -> Any:
        return _filesystem(self._base + (f"?{self._query}" if self._query else ""))[0]

    @property
    def fs_path(self) -> str:
        """This place's path inside ``filesystem`` (what pyarrow's calls and Ray's ``storage_path`` take)."""
        root = _filesystem(self._base + (f"?{self._query}" if self._query else ""))[1].rstrip("/")
        return f"{root}/{self._rel}" if self._rel else root

    def _call(self, action: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except FileNotFoundError:
            raise
        except OSError as err:
            raise StoreError(f"cannot {action} {self}: {one_line(err, 300)}") from None

    def _type(self) -> str:
        """``file``, ``dir`` or ``none``. A folder of an object store exists when it holds a file: an empty one is only
        a marker object (pyarrow leaves one where the last file of a folder was deleted, e.g. a write probe)."""
        if self._kind is None:
            import pyarrow.fs as pafs

            info = self._call("look at", self.filesystem.get_file_info, self.fs_path)
            if info.type == pafs.FileType.File:
                return "file"
            if info.type == pafs.FileType.Directory and next(self.files(), None) is not None:
                return "dir"
            return "none"
        return self._kind

    def exists(self) -> bool:
        return self._type() != "none"

    def is_file(self) -> bool:
        return self._type() == "file"

    def is_dir(self) -> bool:
        return self._type() == "dir"

    def read_bytes(self) -> bytes:
        def read() -> bytes:
            with self.filesystem.open_input_stream(self.fs_path) as stream:
                return stream.read()

        return self._call("read", read)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def put(self, data: bytes) -> None:
        """Store ``data`` as this object in one upload: readers see the old object or the new one (see the module's
        docstring)."""
        def write() -> None:
            stream = self.filesystem.open_output_stream(self.fs_path)
            stream.write(data)
            stream.close()

        self._call("write", write)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.put(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self._call("delete", self.filesystem.delete_file, self.fs_path)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def files(self) -> Iterator[Remote]:
        """Every file anywhere below this folder (none if it does not exist), in sorted order."""
        import pyarrow.fs as pafs

        root = self.fs_path
        infos = self._call("list", self.filesystem.get_file_info, pafs.FileSelector(root, recursive=True,
                                                                                  allow_not_found=True))
        rels = sorted(info.path[len(root):].strip("/") for info in infos if info.type == pafs.FileType.File)
        return iter([Remote(self._base, self._query, f"{self._rel}/{rel}".strip("/"), "file") for rel in rels])

    def rglob(self, pattern: str) -> Iterator[Remote]:
        """The files below this folder whose names match ``pattern`` (``pathlib``'s ``rglob`` for file patterns)."""
        return (f for f in self.files() if fnmatch.fnmatchcase(f.name, pattern))


def relative_parts(path: Path | Remote, root: Path | Remote) -> tuple[str, ...]:
    """The names below ``root`` that lead to ``path``."""
    if isinstance(path, Remote) and isinstance(root, Remote):
        return path.relative_parts(root)
    return Path(path).relative_to(root).parts


def upload_tree(local: Path, target: Remote) -> list[Remote]:
    """Put every file below the local folder ``local`` at the same place below ``target`` (each an atomic put), then
    delete what ``target`` held that ``local`` does not (a regenerated folder keeps nothing of an earlier one).
    Returns the objects written."""
    written = []
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        obj = target / path.relative_to(local).as_posix()
        obj.put(path.read_bytes())
        written.append(obj)
    keep = {str(p) for p in written}
    for stale in target.files():
        if str(stale) not in keep:
            stale.unlink(missing_ok=True)
    return written


# --- places: what differs between a local folder and an object store ------------------------------------------------
LOCK_FILE = ".driver.lock"  # an experiment's (or study's) lock, in its folder
_HOST = re.sub(r"[^A-Za-z0-9_]+", "_", socket.gethostname()) or "host"

Writer = Callable[[IO[Any]], None]  # fills an open file (text or binary) with a file's content
R = TypeVar("R")


def place(at: str | os.PathLike[str] | Remote) -> Place:
    """The operations of the location ``at`` (as ``location`` reads it): a ``LocalPlace`` for a local path, a
    ``StorePlace`` for a URI of an object store. The only code that asks which kind a location is."""
    at = location(at)
    return StorePlace(at) if isinstance(at, Remote) else LocalPlace(at)


def is_remote(at: Any) -> bool:
    """Whether ``at`` is a ``Remote``. Only for ``harness.experiment`` until its calls move to ``place``: ask the place
    for what differs (``Place``), never which kind it is."""
    return isinstance(at, Remote)


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
        from harness.core.data import default_cache_dir  # the harness's cache root; data itself writes through here

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
