"""End-to-end: NOS on the heterogeneous space through the real CLI with Ray (smoke budget, digits) — two
seeds sharing one teacher trained once — and the teacher's record in the other NOS settings the papers ran:
``--set ags=false`` and NOS on the DARTS space (DARTS on the heterogeneous space: test_contract.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import estimate_not_measured, trial_records

from harness.cli import main
from harness.core.registry import get_space
from spaces.hetero import HeteroGenotype

pytestmark = pytest.mark.slow  # whole trials through the CLI


def smoke(method: str, space: str) -> list[str]:
    return ["run", "--method", method, "--space", space, "--budget", "smoke", "--dataset", "digits"]


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))]


@pytest.fixture(scope="module")
def nos_two_seeds(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("nos")
    # 720 training images (half of digits' train set): the same assertions hold (measured: test 75.8 and 71.3 %,
    # teacher 92.8 %) in three quarters of the time; one search epoch and no operation-level correlation (measured
    # in-process: test 76.3 %; NOS's correlation on the heterogeneous space is test_other_pairs_run's, in-process)
    with estimate_not_measured():
        assert main([*smoke("nos", "hetero"), "--seeds", "2", "--set", "train_limit=720", "--set", "corr_edges=0",
                     "--set", "search_epochs=1", "--out", str(out), "--name", "nos"]) == 0
    return out / "nos"


def test_two_seeds_share_one_teacher(nos_two_seeds):
    recs = records(nos_two_seeds)
    assert [r["seed"] for r in recs] == [0, 1]
    space = get_space("hetero")(recs[0]["config"])
    for rec in recs:
        genotype = space.parse(rec["genotype"])
        assert isinstance(genotype, HeteroGenotype) and space.to_str(genotype) == rec["genotype"]
        assert rec["test_acc"] > 40.0  # 10 classes: chance is 10 %
        assert rec["teacher"]["test_acc"] > 50.0 and rec["teacher_test_acc"] == rec["teacher"]["test_acc"]
    # one teacher, trained by one trial (or earlier in this test session), loaded by the other
    assert recs[0]["teacher"]["key"] == recs[1]["teacher"]["key"]
    assert recs[0]["teacher"]["test_acc"] == recs[1]["teacher"]["test_acc"]
    assert [r["teacher"]["source"] for r in recs].count("trained") <= 1
    # the teacher's cost, stated the same way for both seeds, beside the search's (harness.trial, methods.nos)
    assert recs[0]["teacher_seconds"] == recs[1]["teacher_seconds"] == recs[0]["teacher"]["train_seconds"] > 0
    assert [r["teacher_cached"] for r in recs] == [r["teacher"]["source"] == "cache" for r in recs]
    for rec in recs:
        assert rec["teacher_device_hours"] == rec["teacher_seconds"] / 3600
        search = sum(h["seconds"] for h in rec["history"] if h["phase"] == "search")
        assert rec["search_seconds"] == pytest.approx(search) and rec["teacher_obtain_seconds"] > 0
    cache = Path(os.environ["HARNESS_CACHE_DIR"]) / "teachers"
    assert (cache / recs[0]["teacher"]["key"] / "teacher.json").is_file()
    assert recs[0]["genotype"] != recs[1]["genotype"]


# the other pairs at a reduced smoke budget (one epoch each on 512 images) to keep the suite short; in-process as
# ``run`` specifies them (conftest.trial_records): the run through Ray is the two-seed test's above
QUICK = ["search_epochs=1", "eval_epochs=1", "corr_edges=1", "train_limit=512"]


@pytest.mark.parametrize("method,space,extra", [
    ("nos", "hetero", ["ags=false"]),
    ("nos", "darts", []),
])  # DARTS on the heterogeneous space: test_contract.py (record, genotype round trip, test accuracy, op_corr_edges)
def test_other_pairs_run(tmp_path, method, space, extra):
    (rec,) = trial_records(method, space, tmp_path, "x", 1, *QUICK, *extra)
    assert get_space(space)(rec["config"]).to_str(get_space(space)(rec["config"]).parse(rec["genotype"])) == \
        rec["genotype"]
    assert 0.0 <= rec["test_acc"] <= 100.0 and rec["op_corr_edges"] == 1
    if space == "hetero":  # every one of the heterogeneous space's 11 candidate operations is discretised and scored
        assert len(rec["op_correlation"][0]["ops"]) == len(rec["op_correlation"][0]["accs"]) == 11
    if method == "nos" and "ags=false" not in extra:
        assert rec["teacher"]["source"] in ("trained", "cache")
    elif method == "nos":
        assert rec["teacher"] is None


def test_list_shows_the_pairs(capsys):
    from harness.core.registry import SPACES

    assert main(["list"]) == 0
    spaces = list(SPACES)
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in capsys.readouterr().out.splitlines()
             if line.startswith("│")]
    rows = {c[0]: c[1:] for c in cells if len(c) == len(spaces) + 2}  # the matrix: method, spaces, needs
    for method, supported in {"nos": {"hetero", "darts"}, "darts": {"darts", "hetero", "nb201", "proxyless"}}.items():
        assert {s for s, mark in zip(spaces, rows[method]) if mark == "✓"} == supported
