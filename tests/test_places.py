"""``harness.core.places.place``: the operations that differ between a local folder and an object store, on both kinds
(a local temporary folder; a real S3 API server on 127.0.0.1, moto's) and in-process: group writes, the write probe,
bounded reads, one folder's listing, claiming a new folder, the lock file, Ray Tune's storage, the local folder for
local-only tools, the store's watch and a folder filled locally."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import s3_uri

from harness.core.errors import UserError
from harness.core.places import LOCK_FILE, LocalPlace, StorePlace, place, write_group
from harness.core.storage import Remote, location


def text(content: str):
    return (lambda f: f.write(content), False)


def broken(f):
    f.write("half")
    raise RuntimeError("disk on fire")


# --- the factory (nothing is contacted) -----------------------------------------------------------------------------
def test_place_tells_the_kinds_apart_and_keeps_the_location():
    local, store = place("results/exp"), place("s3://bucket/pre/exp?endpoint_override=127.0.0.1:1&scheme=http")
    assert isinstance(local, LocalPlace) and local.at == Path("results/exp") and local.local == Path("results/exp")
    assert isinstance(store, StorePlace) and str(store.at) == "s3://bucket/pre/exp" and store.local is None
    assert place("file:///tmp/x").at == Path("/tmp/x") and isinstance(place(Path("a")), LocalPlace)
    assert (local.needs_watch, store.needs_watch) == (False, True)
    with pytest.raises(UserError, match="credentials"):
        place("s3://KEY:SECRET@bucket/x")


def test_a_group_of_local_and_store_files_is_refused_before_anything_is_written(tmp_path):
    local = tmp_path / "a.txt"
    with pytest.raises(UserError, match=f"cannot write {local} together with files on an object store"):
        write_group({"s3://bucket/b.txt?endpoint_override=127.0.0.1:1&scheme=http": text("b"), local: text("a")})
    assert not local.exists()
    write_group({})  # an empty group writes nothing


# --- a local folder -------------------------------------------------------------------------------------------------
def test_a_local_group_is_all_or_none_and_leaves_no_temporary_file(tmp_path):
    a, b = tmp_path / "new" / "a.csv", tmp_path / "b.bin"
    write_group({a: text("old a"), str(b): (lambda f: f.write(b"\x00\xff"), True)})
    assert a.read_text() == "old a" and b.read_bytes() == b"\x00\xff" and oct(a.stat().st_mode & 0o777) == "0o644"
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_group({a: text("new a"), b: (broken, False)})
    assert a.read_text() == "old a" and b.read_bytes() == b"\x00\xff"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.csv", "b.bin", "new"]


def test_a_local_group_through_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError) as err:
        write_group({tmp_path / "file" / "a.txt": text("a")})
    assert str(err.value).startswith(f"cannot write {tmp_path / 'file' / 'a.txt'}: ")


def test_the_local_write_probe(tmp_path):
    place(tmp_path / "not" / "yet").check_writable("--out")
    assert list(tmp_path.iterdir()) == []  # the probe made nothing it left
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=f"^--out '{tmp_path / 'file'}' is a file, not a folder$"):
        place(tmp_path / "file").check_writable("--out")
    with pytest.raises(UserError, match=f"cannot be created: '{tmp_path / 'file'}' is a file, not a folder$"):
        place(tmp_path / "file" / "below").check_writable("--out")


def test_a_local_read_is_bounded(tmp_path):
    (tmp_path / "r.json").write_bytes(b"0123456789")
    assert place(tmp_path / "r.json").read_limited(10, "record") == b"0123456789"
    with pytest.raises(UserError, match=r"^record .*r\.json is larger than 8\.58307e-06 MiB, the limit"):
        place(tmp_path / "r.json").read_limited(9, "record")
    with pytest.raises(UserError, match="is not a regular file"):
        place(tmp_path).read_limited(10, "record")
    with pytest.raises(FileNotFoundError):
        place(tmp_path / "missing.json").read_limited(10, "record")


def test_a_local_glob_looks_only_in_the_folder(tmp_path):
    for name in ("a.json", "b.txt", "deep/c.json"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert place(tmp_path).glob("*.json") == [tmp_path / "a.json"]
    assert place(tmp_path / "none").glob("*.json") == []


def test_a_local_folder_is_claimed_once_and_locked_in_itself(tmp_path):
    exp = place(tmp_path / "out" / "exp")
    exp.claim()
    assert (tmp_path / "out" / "exp").is_dir()
    with pytest.raises(FileExistsError):
        exp.claim()
    assert exp.lock_file() == tmp_path / "out" / "exp" / ".driver.lock" and LOCK_FILE == ".driver.lock"
    assert exp.tune_storage() == {"storage_path": str(tmp_path / "out" / "exp")}
    exp.ping()  # nothing to look at


def test_a_local_folder_is_filled_in_place(tmp_path):
    def make(folder: Path) -> Path:
        (folder / "r.html").write_text("<p>")
        return folder / "r.html"

    (tmp_path / "report").mkdir()
    made, moved = place(tmp_path / "report").fill(make, "the report")
    assert made == tmp_path / "report" / "r.html" and moved(made) == made and made.read_text() == "<p>"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match=f"^cannot write the report in {tmp_path / 'file'}: "):
        place(tmp_path / "file").fill(make, "the report")


# --- an object store ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(s3_endpoint):
    return location(s3_uri(s3_endpoint, "places", "root"))


def test_a_store_group_is_all_or_none(store):
    a, b = store / "g" / "a.csv", store / "g" / "b.bin"
    write_group({a: text("old a"), b: (lambda f: f.write(b"\x00\xff"), True)})
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_group({a: text("new a"), b: (broken, False)})
    assert a.read_text() == "old a" and b.read_bytes() == b"\x00\xff"


def test_a_store_read_is_bounded_and_its_glob_looks_only_in_the_folder(store):
    folder = store / "read"
    for name in ("a.json", "b.txt", "deep/c.json"):
        (folder / name).put(b"0123456789")
    assert place(folder / "a.json").read_limited(10, "record") == b"0123456789"
    with pytest.raises(UserError, match=r"^record s3://places/root/read/a\.json is larger than 8\.58307e-06 MiB"):
        place(folder / "a.json").read_limited(9, "record")
    with pytest.raises(FileNotFoundError):
        place(folder / "missing.json").read_limited(10, "record")
    assert place(folder).glob("*.json") == [folder / "a.json"]
    assert place(store / "none").glob("*.json") == []


def test_a_store_folder_is_claimed_while_empty_and_locked_in_the_cache(store, tmp_path, monkeypatch):
    exp = place(store / "exp")
    exp.claim()  # nothing there: new (and nothing is written by claiming)
    exp.claim()
    assert not exp.at.exists()
    (store / "exp" / "experiment.json").put(b"{}")
    with pytest.raises(FileExistsError):
        exp.claim()
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    digest = hashlib.sha256(exp.at.uri.encode()).hexdigest()[:20]
    assert exp.lock_file() == tmp_path / "locks" / f"{digest}.lock"
    assert place(store / "other").lock_file() != exp.lock_file()


def test_a_store_gives_tune_its_own_file_system_and_answers_a_ping(store):
    storage = place(store / "exp").tune_storage()
    assert storage["storage_path"] == "places/root/exp"
    fs = storage["storage_filesystem"]
    assert fs is (store / "exp").filesystem and type(fs).__name__ == "S3FileSystem"
    place(store / "exp").ping()


def test_a_store_folder_is_filled_from_a_local_one(store):
    (store / "report" / "stale.png").put(b"old")
    seen = []

    def make(folder: Path) -> list[Path]:
        seen.append(folder)
        (folder / "plots").mkdir()
        (folder / "plots" / "a.png").write_bytes(b"A")
        (folder / "r.html").write_text("<p>")
        return [folder / "r.html", folder / "plots" / "a.png"]

    made, moved = place(store / "report").fill(make, "the report")
    assert not os.path.exists(seen[0])  # the local folder is gone
    assert [moved(p) for p in made] == [store / "report" / "r.html", store / "report" / "plots" / "a.png"]
    assert all(isinstance(moved(p), Remote) for p in made)
    assert [p.name for p in (store / "report").files()] == ["a.png", "r.html"]  # stale.png is deleted
    assert (store / "report" / "r.html").read_text() == "<p>"


def test_the_store_write_probe_leaves_nothing(store, s3_endpoint):
    place(store / "probe").check_writable("--out")
    assert list((store / "probe").files()) == []
    with pytest.raises(UserError, match="^--out 's3://no-such-bucket/x' cannot be written"):
        place(f"s3://no-such-bucket/x?endpoint_override={s3_endpoint}&scheme=http").check_writable("--out")
