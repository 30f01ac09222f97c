"""The evaluation protocol is locked per space: no method class gives a value of an evaluation key
(``harness.core.config.EVALUATION_KEYS``) in its ``defaults``, ``space_defaults`` or ``budgets``; a paper's own
evaluation settings are an explicit, recorded ``--set`` variant (NOS's in ``studies/hetero.toml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.config import EVALUATION_KEYS, SHARED_KEYS, declarations, is_evaluation_key, parse_overrides, resolve
from harness.core.registry import all_methods, all_spaces, get_method, get_space, spaces_of
from harness.leaderboard import variant_of
from harness.study import load_study
from methods.nos import Nos
from spaces.base import CELL_SIZE_KEYS

ROOT = Path(__file__).resolve().parents[1]


def test_the_evaluation_keys():
    assert EVALUATION_KEYS == {"eval_epochs", "eval_batch_size", "eval_lr", "eval_lr_min", "eval_momentum",
                               "eval_weight_decay", "eval_nesterov", "eval_grad_clip", "cutout",
                               "auxiliary_weight", "drop_path", "eval_layers", "eval_channels"}
    assert {k for k in SHARED_KEYS if k.startswith("eval_")} <= EVALUATION_KEYS
    assert {k for k in CELL_SIZE_KEYS if k.startswith("eval_")} <= EVALUATION_KEYS
    assert is_evaluation_key("eval_width_mult")  # a space's own final-network key (proxyless)
    assert not any(is_evaluation_key(k) for k in ("search_epochs", "w_lr", "search_layers", "image_size",
                                                    "train_limit", "teacher_epochs"))


@pytest.mark.parametrize("method", sorted(all_methods()))
def test_every_registered_method_leaves_the_evaluation_protocol_to_the_space(method):
    cls = all_methods()[method]
    for space in spaces_of(method):
        declarations(cls, all_spaces()[space])  # raises TypeError otherwise
    given = [cls.defaults, *cls.space_defaults.values(), *cls.budgets.values()]
    assert not [k for values in given for k in values if is_evaluation_key(k)]


class PaperEvalLr(Nos):
    defaults = {**Nos.defaults, "eval_lr": 0.25}


class PaperDropPathOnHetero(Nos):
    space_defaults = {"hetero": {"drop_path": 0.3}}


class SmallerFinalNetwork(Nos):
    budgets = {**Nos.budgets, "smoke": {**Nos.budgets["smoke"], "eval_layers": 2}}


class ShorterEvaluation(Nos):
    budgets = {"small": {"eval_epochs": 10}}


@pytest.mark.parametrize("cls,key", [(PaperEvalLr, "eval_lr"), (PaperDropPathOnHetero, "drop_path"),
                                     (SmallerFinalNetwork, "eval_layers"), (ShorterEvaluation, "eval_epochs")])
def test_a_method_that_sets_an_evaluation_key_is_refused(cls, key):
    with pytest.raises(TypeError, match=f"{cls.__name__}.*evaluation keys.*'{key}'"):
        declarations(cls, get_space("hetero"))
    with pytest.raises(TypeError, match=key):
        resolve(cls, get_space("hetero"), "smoke")


def test_a_method_may_still_set_its_search_keys():
    class LongerSearch(Nos):
        defaults = {**Nos.defaults, "search_epochs": 50, "w_lr_min": 0.0}
        budgets = {"smoke": {"search_epochs": 1, "teacher_epochs": 1}}

    cfg = resolve(LongerSearch, get_space("hetero"), "smoke").values
    assert cfg["search_epochs"] == 1 and cfg["teacher_epochs"] == 1


def test_spaces_and_budgets_still_set_the_evaluation_protocol():
    nb201 = resolve(get_method("darts"), get_space("nb201"), "paper").values
    assert nb201["eval_lr"] == 0.1 and nb201["cutout"] == 0  # the space's protocol (NAS-Bench-201's)
    smoke = resolve(get_method("nos"), get_space("hetero"), "smoke")
    assert smoke.sources["eval_epochs"] == "budget:smoke" and smoke.values["eval_layers"] == 3
    # the same protocol for every method on a space
    for method in ("darts", "nos", "random"):
        cfg = resolve(get_method(method), get_space("hetero"), "small").values
        assert {k: v for k, v in cfg.items() if is_evaluation_key(k)} == {
            k: v for k, v in resolve(get_method("darts"), get_space("hetero"), "small").values.items()
            if is_evaluation_key(k)}


def test_nos_paper_evaluation_is_a_recorded_variant():
    study = load_study(ROOT / "studies" / "hetero.toml")
    text = (ROOT / "studies" / "hetero.toml").read_text()
    assert 'nos-paper-eval = {method = "nos", set = ["eval_lr=0.25", "drop_path=0.3"]}' in text
    assert study.budget == "small"
    resolved = resolve(get_method("nos"), get_space("hetero"), study.budget,
                       parse_overrides(["eval_lr=0.25", "drop_path=0.3"]))
    assert resolved.values["eval_lr"] == 0.25 and resolved.values["drop_path"] == 0.3
    assert resolved.sources["eval_lr"] == resolved.sources["drop_path"] == "override"
    # the leaderboard names the row by its overrides
    assert variant_of({"overrides": resolved.overrides}) == "drop_path=0.3,eval_lr=0.25"
    plain = resolve(get_method("nos"), get_space("hetero"), study.budget).values
    assert plain["eval_lr"] == SHARED_KEYS["eval_lr"].default and plain["drop_path"] == 0.2


@pytest.mark.parametrize("path", sorted((ROOT / "studies").glob("*.toml")), ids=lambda p: p.name)
def test_every_bundled_study_file_resolves(path):
    """Every cell of every study file in ``studies/`` resolves its configuration (pairs, variants, keys)."""
    study = load_study(path)
    for cell in study.cells:
        resolve(get_method(cell.method), get_space(cell.space), study.budget, parse_overrides(cell.overrides))


def test_proxylessnas_cost_aware_searches_are_named_variants_beside_its_accuracy_only_row():
    """ProxylessNAS-G's plain row searches for accuracy alone, as its code's default and every other method; the
    cost-aware searches are named variants, and the leaderboard names their rows by the cost."""
    study = load_study(ROOT / "studies" / "proxyless.toml")
    cells = {cell.name: cell for cell in study.cells}
    assert cells["proxyless"].overrides == []
    assert resolve(get_method("proxyless"), get_space("proxyless"), study.budget).values["cost"] == "none"
    for name, cost in (("proxyless-macs", "macs"), ("proxyless-latency", "latency")):
        assert cells[name].method == "proxyless" and cells[name].overrides == [f"cost={cost}"]
        resolved = resolve(get_method("proxyless"), get_space("proxyless"), study.budget,
                           parse_overrides(cells[name].overrides))
        assert resolved.values["cost"] == cost and variant_of({"overrides": resolved.overrides}) == f"cost={cost}"
