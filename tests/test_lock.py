"""``tools/lock.py``: the lock (``constraints.txt``) holds exactly what ``nas-harness[test]`` needs, walked through
the installed packages' metadata (markers and extras followed), and ``check`` names every needed package that is not at
the lock's version."""

from __future__ import annotations

import datetime as dt
import importlib.util
import platform
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("lock", ROOT / "tools" / "lock.py")
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)


class Dist:
    """What ``needed`` reads of an installed distribution."""

    def __init__(self, name: str, version: str, *requires: str):
        self.metadata = {"Name": name}
        self.version = version
        self.requires = list(requires) or None


DISTS = {d.metadata["Name"].lower().replace("_", "-"): d for d in [
    Dist("nas-harness", "0.1.0", "torch>=2.6", "tomli>=1.1; python_version < '3.0'", "pytest; extra == 'test'",
         "wandb; extra == 'wandb'", "moto[s3]>=5; extra == 'test'"),
    Dist("torch", "2.14.1", "filelock", "nvidia-cudnn-cu13==9.24.0.43; platform_system == 'NoSuchSystem'"),
    Dist("filelock", "4.3.2"),
    Dist("pytest", "9.2.0", "pluggy<2,>=1.5", "pygments; extra == 'dev'"),
    Dist("pluggy", "1.7.0"),
    Dist("moto", "5.2.6", "boto3", "py-partiql-parser==0.6.3; extra == 's3'", "docker; extra == 'server'"),
    Dist("boto3", "1.44.18"),
    Dist("py_partiql_parser", "0.6.3"),
    Dist("ruff", "0.17.6"),  # a developer's tool beside the project: never locked
    Dist("pygments", "2.21.0"),
]}


def test_needed_follows_requirements_markers_and_extras():
    assert lock.needed("nas-harness", ("test",), DISTS) == {
        "torch": "2.14.1", "filelock": "4.3.2", "pytest": "9.2.0", "pluggy": "1.7.0", "moto": "5.2.6",
        "boto3": "1.44.18", "py-partiql-parser": "0.6.3"}
    assert set(lock.needed("nas-harness", (), DISTS)) == {"torch", "filelock"}


def test_a_needed_package_not_installed_is_named():
    dists = {k: v for k, v in DISTS.items() if k != "pluggy"}
    with pytest.raises(lock.LockError, match="^pluggy is not installed in .* \\(pytest needs it\\); install the "
                                             "project first: python -m pip install -c constraints.txt"):
        lock.needed("nas-harness", ("test",), dists)


def test_read_lock_and_differences(tmp_path):
    path = tmp_path / "constraints.txt"
    path.write_text("# header\n\nFlask==3.1.3\nnumpy==2.4.6\npy_partiql_parser==0.6.3\n")
    pins = lock.read_lock(path)
    assert pins == {"flask": "3.1.3", "numpy": "2.4.6", "py-partiql-parser": "0.6.3"}
    assert lock.differences({"flask": "3.1.3", "numpy": "2.4.5", "torch": "2.14.1"}, pins) == [
        "numpy 2.4.5 is installed, the lock has 2.4.6", "torch 2.14.1 is needed but not in the lock"]
    assert lock.differences({"numpy": "2.4.6"}, pins) == []  # a pin not needed here (nvidia-* elsewhere) is fine
    path.write_text("numpy==2.4.6\nnumpy>=2\n")
    with pytest.raises(lock.LockError, match="constraints.txt:2: 'numpy>=2' is not a 'name==version' pin"):
        lock.read_lock(path)
    with pytest.raises(lock.LockError, match="cannot read the lock"):
        lock.read_lock(tmp_path / "none.txt")


def test_lock_text_keeps_what_is_needed_under_its_header():
    freeze = ["Flask==3.1.3", "ruff==0.17.6", "numpy==2.4.6", "setuptools==84.2.1", "pip==23.2.1"]
    text = lock.lock_text(freeze, {"flask": "3.1.3", "numpy": "2.4.6", "setuptools": "84.2.1"}, "a venv",
                          dt.date(2026, 12, 7))
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert "#   python -m pip install -c constraints.txt -e \".[test]\"" in header
    assert "#   python tools/lock.py refresh" in header
    assert "# Written by tools/lock.py on 2026-12-07: `pip freeze --all` of a venv" in header
    assert f"# (Python {platform.python_version()}, {platform.system()} {platform.machine()}), less the project " \
           "and what it does not need." in header
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "Flask==3.1.3", "numpy==2.4.6", "setuptools==84.2.1"]
    with pytest.raises(lock.LockError, match="'numpy @ file:///tmp/numpy.whl' is not installed from the package index"):
        lock.lock_text(["numpy @ file:///tmp/numpy.whl"], {"numpy": "2.4.6"}, "a venv")
    with pytest.raises(lock.LockError, match="pip freeze does not list setuptools"):
        lock.lock_text(["numpy==2.4.6"], {"numpy": "2.4.6", "setuptools": "84.2.1"}, "a venv")


def test_the_committed_lock_pins_the_tested_builds():
    pins = lock.read_lock()
    assert {"torch", "torchvision", "numpy", "ray", "pytest", "pytest-xdist", "moto", "setuptools"} <= set(pins)
    assert not {"nas-harness", "ruff", "radon", "pip"} & set(pins)
    text = lock.LOCK.read_text()
    assert lock.INSTALL in text and "python tools/lock.py refresh" in text
    assert lock.INSTALL in (ROOT / ".ci" / "run").read_text()
    assert 'pip install -c constraints.txt -e ".[test]"' in (ROOT / "README.md").read_text()


def test_check_exit_status(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(lock, "needed", lambda: {"numpy": "2.4.5"})
    path = tmp_path / "constraints.txt"
    path.write_text("numpy==2.4.6\n")
    assert lock.main(["check", "--lock", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "numpy 2.4.5 is installed, the lock has 2.4.6" and "python tools/lock.py refresh" in out[1]
    path.write_text("numpy==2.4.5\n")
    assert lock.main(["check", "--lock", str(path)]) == 0
    path.write_text("numpy\n")
    assert lock.main(["check", "--lock", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {path}:1: 'numpy' is not a 'name==version' pin"
