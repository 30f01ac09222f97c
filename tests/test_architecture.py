"""The layers of the code (``tools/architecture.py``): every import runs downward, core → spaces → methods →
driver, no import circle, and nothing imports the plug-in packages to fill the registry. The rules are checked on
this checkout and, so that they cannot pass vacuously, on small crafted trees."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("architecture", ROOT / "tools" / "architecture.py")
architecture = importlib.util.module_from_spec(_spec)
sys.modules["architecture"] = architecture  # dataclasses look their module up
_spec.loader.exec_module(architecture)


def test_every_import_runs_downward():
    found = architecture.imports(ROOT)
    assert len(found) > 100  # the graph was read (a parse that finds nothing would pass every rule below)
    assert architecture.upward(found) == []


def test_no_import_circles():
    assert architecture.circles(architecture.imports(ROOT)) == []


def test_nothing_imports_the_plugin_packages_to_fill_the_registry():
    assert architecture.plugin_imports(architecture.imports(ROOT)) == []


def test_only_the_storage_modules_ask_whether_a_location_is_remote(tmp_path):
    assert architecture.kind_questions(ROOT) == {}
    root = _tree(tmp_path, {"harness/__init__.py": "", "harness/core/places.py": "isinstance(at, Remote)\n",
                            "harness/report.py": "if is_remote(x) or isinstance(y, (Path, Remote)):\n    pass\n"})
    assert architecture.kind_questions(root) == {"harness/report.py": 2}


@pytest.mark.parametrize("module, expected", [
    ("harness", "core"), ("harness.core", "core"), ("harness.core.benchmarks.nb201", "core"),
    ("spaces.darts", "spaces"), ("methods", "methods"), ("methods.nos.teacher", "methods"),
    ("harness.cli", "driver"), ("harness.corey", "driver"),
])
def test_layer_of_a_module(module, expected):
    assert architecture.layer(module) == expected


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_rules_catch_a_crafted_upward_import_and_circle(tmp_path):
    root = _tree(tmp_path, {
        "harness/__init__.py": "",
        "harness/core/__init__.py": "",
        "harness/core/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from methods.base import M\n",
        "harness/core/b.py": "from . import c\n",
        "harness/core/c.py": "import harness.core.b\n",
        "harness/cli.py": "import methods\nfrom harness.core.a import x\n",
        "methods/__init__.py": "from . import base\n",
        "methods/base.py": "from harness.core.a import y\nfrom harness.cli import main\n",
        "spaces/__init__.py": "",
    })
    found = architecture.imports(root)
    pairs = {(i.source, i.target) for i in found}
    assert ("harness.core.b", "harness.core.c") in pairs  # a relative import resolved
    assert ("methods", "methods.base") in pairs  # from a package's __init__
    assert {(i.source, i.target) for i in architecture.upward(found)} == {
        ("harness.core.a", "methods.base"), ("methods.base", "harness.cli")}
    assert architecture.circles(found) == [["harness.cli", "harness.core.a", "methods", "methods.base"],
                                           ["harness.core.b", "harness.core.c"]]
    assert [(i.source, i.target) for i in architecture.plugin_imports(found)] == [("harness.cli", "methods")]
    assert [i.line for i in found if i.source == "harness.core.a"] == [3]
