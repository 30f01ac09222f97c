"""The lock of the tested environment: ``constraints.txt``, every package ``pip install -e ".[test]"`` installs, pinned.

The README's install and ``.ci/run`` install through it (``python -m pip install -c constraints.txt -e ".[test]"``),
so a fresh install gets the torch, NumPy, Ray, ... builds the suite and ``tools/baselines/`` were run with. The file
is ``pip freeze`` of an environment made as the README says, less what the project does not need (the project itself,
developer tools such as ruff or radon installed beside it): the packages reached from ``nas-harness[test]``'s
requirements through the installed packages' own metadata.

    python tools/lock.py refresh            # a fresh venv, pip install -e ".[test]" unconstrained (the newest
                                            # releases pyproject.toml allows), frozen into constraints.txt
    /path/to/venv/bin/python tools/lock.py freeze   # freeze that environment into constraints.txt instead
    python tools/lock.py check              # the running Python's packages against constraints.txt (.ci/run)

After a refresh: run the suite and ``python tools/pair_records.py --compare tools/baselines/smoke-digits-s0``; a
new torch or NumPy may change figures in their last digits, and then the baselines are rewritten with ``--out``.
A lock is made on one platform (Python, OS, machine); elsewhere its pins of packages that are not needed there
(nvidia-*) are ignored by pip, and a package needed only there is installed unpinned.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata as metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare venv: pip's own copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
PROJECT, EXTRAS = "nas-harness", ("test",)
INSTALL = 'python -m pip install -c constraints.txt -e ".[test]"'
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


class LockError(Exception):
    """One line for the user (exit status 2)."""


def needed(project: str = PROJECT, extras: tuple[str, ...] = EXTRAS,
           dists: dict[str, metadata.Distribution] | None = None) -> dict[str, str]:
    """The installed packages ``project[extras]`` needs on this Python, directly or through others: canonical name →
    installed version (the project itself left out). Walked through each package's own metadata (its
    ``Requires-Dist``, markers evaluated here, extras followed); ``LockError`` names a needed package not installed."""
    if dists is None:
        dists = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    wanted: dict[str, set[str]] = {}
    todo = [(project, set(extras), None)]
    while todo:
        name, extra, by = todo.pop()
        key = canonicalize_name(name)
        if key in wanted and extra <= wanted[key]:
            continue
        wanted[key] = wanted.get(key, set()) | extra
        dist = dists.get(key)
        if dist is None:
            raise LockError(f"{name} is not installed in {sys.prefix}" + (f" ({by} needs it)" if by else "")
                            + f"; install the project first: {INSTALL}")
        environments = [{"extra": e} for e in ("", *sorted(wanted[key]))]
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate(env) for env in environments):
                todo.append((req.name, set(req.extras), name))
    project_key = canonicalize_name(project)
    return {key: dists[key].version for key in wanted if key != project_key}


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """The pins of a lock file: canonical name → version. Comments and blank lines skipped; any other line that is not
    ``name==version`` is one ``LockError`` naming it."""
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise LockError(f"cannot read the lock {path}: {err.strerror or err}") from None
    pins = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if match is None:
            raise LockError(f"{path}:{number}: '{line[:80]}' is not a 'name==version' pin")
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def differences(installed: dict[str, str], pins: dict[str, str]) -> list[str]:
    """One line per needed package whose installed version is not the lock's, or that the lock lacks (sorted)."""
    lines = []
    for name, version in sorted(installed.items()):
        if name not in pins:
            lines.append(f"{name} {version} is needed but not in the lock")
        elif pins[name] != version:
            lines.append(f"{name} {version} is installed, the lock has {pins[name]}")
    return lines


def frozen(python: str = sys.executable) -> list[str]:
    """``pip freeze --all --exclude-editable`` of ``python``'s environment (``--all``: setuptools too, which torch
    needs), one line each."""
    out = subprocess.run([python, "-m", "pip", "freeze", "--all", "--exclude-editable"], capture_output=True, text=True)
    if out.returncode != 0:
        raise LockError(f"pip freeze failed: {(out.stderr.strip().splitlines() or ['?'])[-1]}")
    return out.stdout.splitlines()


def lock_text(freeze_lines: list[str], keep: dict[str, str], source: str, today: dt.date | None = None) -> str:
    """The lock file: a header that says what it is, how to install with it and how to refresh it, then the lines of
    ``freeze_lines`` whose package is in ``keep`` (sorted by name as pip freeze sorts them). A kept package that is not
    pinned to a version there (installed from a folder or a URL: no index has it) is one ``LockError``."""
    lines, found = [], set()
    for line in freeze_lines:
        name = re.split(r"[=@<>!~ ;]", line.strip(), maxsplit=1)[0]
        if not name or name.startswith("#") or canonicalize_name(name) not in keep:
            continue
        if _PIN.match(line.strip()) is None:
            raise LockError(f"'{line.strip()[:100]}' is not installed from the package index; install a released "
                            "version before locking")
        lines.append(line.strip())
        found.add(canonicalize_name(name))
    if set(keep) - found:
        raise LockError(f"pip freeze does not list {', '.join(sorted(set(keep) - found))}")
    today = today or dt.datetime.now(dt.timezone.utc).date()
    header = [
        "# The tested environment of nas-harness: every package `pip install -e \".[test]\"` installs, pinned to the",
        "# version the test suite and tools/baselines/ ran with. Install with it (README, .ci/run):",
        f"#   {INSTALL}",
        "# Refresh (the newest releases pyproject.toml allows; then run the suite and",
        "# `python tools/pair_records.py --compare tools/baselines/smoke-digits-s0`):",
        "#   python tools/lock.py refresh",
        f"# Written by tools/lock.py on {today.isoformat()}: `pip freeze --all` of {source}",
        f"# (Python {platform.python_version()}, {platform.system()} {platform.machine()}), less the project and "
        "what it does not need.",
        "# Elsewhere pip ignores the pins of packages not needed there (nvidia-*); one needed only there is unpinned.",
    ]
    return "\n".join(header + sorted(lines, key=str.lower)) + "\n"


def write_lock(path: Path, source: str) -> None:
    text = lock_text(frozen(), needed(), source)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    print(f"wrote {path} ({sum(1 for line in text.splitlines() if not line.startswith('#'))} packages)")


def refresh(path: Path) -> None:
    """A fresh venv in a temporary folder, the project installed there as the README installs it but without the lock
    (``pip install -e ".[test]"``: the newest releases pyproject.toml allows), then frozen into ``path`` by this script
    run in that venv; the venv is removed."""
    folder = Path(tempfile.mkdtemp(prefix="nas-lock-"))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        python = str(folder / "bin" / "python")
        print(f"installing into a fresh venv ({folder}); this downloads about 6 GB")
        subprocess.run([python, "-m", "pip", "install", "-e", ".[test]"], cwd=ROOT, check=True)
        subprocess.run([python, str(Path(__file__).resolve()), "freeze", "--out", str(path),
                        "--source", 'a fresh venv after `pip install -e ".[test]"`'], check=True)
    except subprocess.CalledProcessError as err:
        raise LockError(f"'{' '.join(err.cmd[-4:])}' failed (exit status {err.returncode}); the lock is unchanged"
                        ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fresh = sub.add_parser("refresh", help="lock the newest allowed releases, installed into a fresh venv")
    freeze = sub.add_parser("freeze", help="lock the packages of the running Python's environment")
    freeze.add_argument("--source", help="what the header says was frozen (default: this Python's prefix)")
    check = sub.add_parser("check", help="compare the running Python's needed packages with the lock")
    for command in (fresh, freeze, check):
        command.add_argument("--out" if command is not check else "--lock", dest="path", type=Path, default=LOCK,
                             help=f"the lock file (default {LOCK.name} at the repository root)")
    args = parser.parse_args(argv)
    try:
        if args.command == "refresh":
            refresh(args.path)
        elif args.command == "freeze":
            write_lock(args.path, args.source or sys.prefix)
        else:
            problems = differences(needed(), read_lock(args.path))
            for line in problems:
                print(line)
            if problems:
                print(f"the environment of {sys.executable} is not the lock's: install with {INSTALL}, or, after "
                      "changing pyproject.toml, refresh it: python tools/lock.py refresh")
                return 1
            print(f"{len(read_lock(args.path))} pins; every package the project needs is at the lock's version")
    except LockError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
