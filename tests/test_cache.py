"""The keyed, locked cache (``harness.core.cache``): one build per key among concurrent askers, keys independent
of each other, a failed build leaves nothing behind, and an unwritable folder is one line."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from helpers import one_line

from harness.core.cache import get_or_build, key_lock
from harness.core.errors import UserError


def file_entry(folder: Path, key: str):
    """``read`` and ``build`` of an entry stored as the text file ``<key>.txt``; ``built`` counts the builds."""
    path, built = folder / f"{key}.txt", []

    def read():
        return path.read_text() if path.is_file() else None

    def build():
        built.append(threading.get_ident())
        time.sleep(0.05)  # long enough for every other asker to find nothing and wait for the lock
        path.write_text(f"entry {key}")
        return f"entry {key}"

    return read, build, built


def test_concurrent_askers_of_one_key_build_it_once_and_all_get_it(tmp_path):
    read, build, built = file_entry(tmp_path, "k")
    results, start = [], threading.Barrier(8)

    def ask():
        start.wait()
        results.append(get_or_build(tmp_path, "k", read, build, "test cache"))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and results == ["entry k"] * 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.lock", "k.txt"]
    assert get_or_build(tmp_path, "k", read, build, "test cache") == "entry k" and len(built) == 1  # a hit


def test_distinct_keys_build_independently(tmp_path):
    """Key a's build waits until key b's has run: with one lock for every key, b would wait for a forever (the
    wait gives up after 10 s and a's build fails)."""
    b_built = threading.Event()

    def build_a():
        assert b_built.wait(10), "key b waited for key a's lock"
        return "a"

    def build_b():
        b_built.set()
        return "b"

    results = {}
    ask_a = threading.Thread(target=lambda: results.update(a=get_or_build(tmp_path, "a", lambda: None, build_a, "c")))
    ask_a.start()
    time.sleep(0.05)  # a holds its lock
    results["b"] = get_or_build(tmp_path, "b", lambda: None, build_b, "c")
    ask_a.join()
    assert results == {"a": "a", "b": "b"}


def test_a_build_that_raises_leaves_nothing_and_releases_the_lock(tmp_path):
    read, build, built = file_entry(tmp_path, "k")

    def failing():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        get_or_build(tmp_path, "k", read, failing, "test cache")
    assert read() is None
    assert get_or_build(tmp_path, "k", read, build, "test cache") == "entry k" and len(built) == 1  # built again


def test_an_entry_that_is_there_is_read_without_the_lock(tmp_path):
    (tmp_path / "k.txt").write_text("entry k")
    read, build, built = file_entry(tmp_path, "k")
    assert get_or_build(tmp_path, "k", read, build, "test cache") == "entry k"
    assert not built and not (tmp_path / "k.lock").exists()


def test_the_lock_excludes_another_holder_until_released(tmp_path):
    order = []

    def second():
        with key_lock(tmp_path, "k", "c"):
            order.append("second")

    with key_lock(tmp_path, "k", "c"):
        other = threading.Thread(target=second)
        other.start()
        time.sleep(0.1)
        order.append("first done")
    other.join()
    assert order == ["first done", "second"]


def test_an_unwritable_folder_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError) as exc_info:
        get_or_build(blocker / "sub", "k", lambda: None, lambda: "x", "teacher cache", "choose another folder")
    msg = one_line(exc_info)
    assert msg.startswith(f"cannot write the teacher cache '{blocker / 'sub'}'")
    assert msg.endswith("; choose another folder")
