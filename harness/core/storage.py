"""Where results live: a local folder, or any file system pyarrow reaches by URI (``s3://``, ``gs://``,
``hdfs://``, ``abfs://`` ...).

``location(text)`` gives a ``pathlib.Path`` for a local path (or a ``file://`` URI) and a ``Remote`` for any other
URI. ``Remote`` has the part of ``pathlib``'s interface the harness uses (``/``, ``name``, ``parent``, ``exists``,
``is_file``, ``read_text``, ``rglob`` ...), so the code that lays out experiments, records, leaderboards and
reports is the same for both.

Places: what must be done differently on a local folder and on an object store is an operation of
``harness.core.places.place(at)``.

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

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from harness.core.errors import UserError, one_line

# A query option is a credential when a word of its name is one of these: pyarrow's own (S3's access_key, secret_key,
# session_token in older releases; GCS's access_token, credentials_expiration; Azure's client_secret and a SAS token,
# whose query carries ``sig``; HDFS's kerb_ticket), and any other file system's (fsspec's, Hadoop's fs.s3a.secret.key,
# a presigned URL's X-Amz-Signature / X-Amz-Security-Token). Not ``credential_kind`` (Azure's choice of a method).
SECRET_WORDS = frozenset({"key", "secret", "token", "password", "passwd", "pwd", "sig", "signature", "ticket",
                          "credentials", "sas", "apikey", "accesskey", "secretkey", "sessiontoken", "sastoken"})
MASK = "***"


def default_cache_dir() -> Path:
    """``$HARNESS_CACHE_DIR``, else ``~/.cache/nas-harness``: the root of every cache of the harness."""
    base = os.environ.get("HARNESS_CACHE_DIR")
    return Path(base) if base else Path.home() / ".cache" / "nas-harness"


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
