"""Configuration resolution: layering with sources, overrides and their parsing, validation, the setting
hash; with the registered DARTS and random-search methods and with tiny stand-in classes."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from helpers import one_line as _one_line

from harness.core.config import (
    BUDGET_HELP,
    BUDGETS,
    SHARED_KEYS,
    Key,
    config_hash,
    declarations,
    parse_overrides,
    resolve,
)
from harness.core.errors import UserError
from harness.core.registry import get_method, get_space
from methods.base import SearchMethod
from spaces.base import CELL_SIZE_KEYS, SearchSpace, cell_budgets


class TinySpace(SearchSpace):
    name = "tiny"
    size_keys = CELL_SIZE_KEYS
    defaults: ClassVar[dict[str, Any]] = {"search_layers": 3, "eval_channels": 5}
    budgets: ClassVar[dict[str, dict[str, Any]]] = cell_budgets(small={"search_layers": 2})


class TinyMethod(SearchMethod):
    """Has a bool, a string, a float, its own value of a harness key and one ignored shared key."""

    name = "tiny"
    keys: ClassVar[dict[str, Key]] = {**SearchMethod.keys, "use_bn": Key(True, "batch norm"),
                                      "mode": Key("fast", "speed"), "temperature": Key(1.5, "softness", "(0, inf)")}
    defaults: ClassVar[dict[str, Any]] = {"search_epochs": 7, "train_limit": 123}
    ignored_keys = frozenset({"drop_path", "corr_edges"})


DARTS = get_method("darts")
RANDOM = get_method("random")
SPACE = get_space("darts")


# --- layering --------------------------------------------------------------------------------------------

def test_darts_paper_budget_is_the_paper_layer():
    cfg = resolve(DARTS, SPACE, "paper")
    for key, declared in {**SHARED_KEYS, **DARTS.keys}.items():
        if declared.default is not None:  # a per-class key (search_epochs) takes the class's value, below
            assert (cfg.values[key], cfg.sources[key]) == (declared.default, declared.origin)
    assert {cfg.sources[key] for key in SHARED_KEYS} == {"paper", "harness"}
    for key, value in {**SPACE.defaults, **DARTS.defaults}.items():
        assert cfg.values[key] == value and cfg.sources[key] == "paper"
    assert cfg.values["order"] == 1 and cfg.values["eval_layers"] == 20 and cfg.values["search_epochs"] == 50
    assert set(cfg.values) == set(cfg.sources)
    assert cfg.overrides == {}
    # Random-search keys belong to another method.
    assert "rs_candidates" not in cfg.values and "rs_epochs" not in cfg.values


def test_layers_paper_harness_budget_override():
    cfg = resolve(DARTS, SPACE, "small", {"w_lr": "0.05", "search_epochs": "3", "corr_edges": "6"})
    assert (cfg.values["w_momentum"], cfg.sources["w_momentum"]) == (0.9, "paper")
    assert (cfg.values["order"], cfg.sources["order"]) == (1, "paper")
    assert (cfg.values["corr_batches"], cfg.sources["corr_batches"]) == (4, "budget:small")
    assert (cfg.values["image_size"], cfg.sources["image_size"]) == (32, "harness")
    # harness < budget
    assert (cfg.values["train_limit"], cfg.sources["train_limit"]) == (10000, "budget:small")
    # paper < budget
    assert (cfg.values["search_layers"], cfg.sources["search_layers"]) == (5, "budget:small")
    # budget < override, and override on a paper key
    assert (cfg.values["search_epochs"], cfg.sources["search_epochs"]) == (3, "override")
    assert (cfg.values["corr_edges"], cfg.sources["corr_edges"]) == (6, "override")
    assert (cfg.values["w_lr"], cfg.sources["w_lr"]) == (0.05, "override")
    assert cfg.overrides == {"w_lr": 0.05, "search_epochs": 3, "corr_edges": 6}
    assert type(cfg.values["search_epochs"]) is int and type(cfg.values["w_lr"]) is float
    # Budget keys of other methods are not added.
    assert "rs_candidates" not in cfg.values


def test_layers_with_stand_in_classes():
    cfg = resolve(TinyMethod, TinySpace, "smoke")
    # a class's value of a harness key is its paper value
    assert (cfg.values["train_limit"], cfg.sources["train_limit"]) == (123, "paper")
    assert (cfg.values["image_size"], cfg.sources["image_size"]) == (32, "harness")
    # space paper default < budget
    assert (cfg.values["search_layers"], cfg.sources["search_layers"]) == (4, "budget:smoke")
    # keys in no layer of this pair are not brought in by the budget; a per-class key (a size key of the
    # space) that the class gives no value is absent
    assert "search_channels" not in cfg.values and "rs_candidates" not in cfg.values
    assert (cfg.values["eval_channels"], cfg.sources["eval_channels"]) == (8, "budget:smoke")
    assert (cfg.values["mode"], cfg.sources["mode"]) == ("fast", "paper")
    # override < nothing
    cfg = resolve(TinyMethod, TinySpace, "small", {"train_limit": "50", "mode": "slow"})
    # the space's own budget values win over the generic preset (small: 5 cells) for this space
    assert (cfg.values["search_layers"], cfg.sources["search_layers"]) == (2, "budget:small")
    assert (cfg.values["train_limit"], cfg.sources["train_limit"]) == (50, "override")
    assert (cfg.values["mode"], cfg.sources["mode"]) == ("slow", "override")


def test_resolve_does_not_mutate_the_layers():
    before = (dict(SHARED_KEYS), {k: dict(v) for k, v in BUDGETS.items()}, dict(DARTS.keys), dict(DARTS.defaults),
              dict(SPACE.keys), dict(SPACE.defaults))
    resolve(DARTS, SPACE, "smoke", {"w_lr": "0.5", "order": "2"})
    after = (dict(SHARED_KEYS), {k: dict(v) for k, v in BUDGETS.items()}, dict(DARTS.keys), dict(DARTS.defaults),
             dict(SPACE.keys), dict(SPACE.defaults))
    assert before == after


def test_random_search_brings_its_own_budget_values():
    """The random-search keys' presets sit on the method (merged into the budget, over the generic preset) and
    resolve as they did from the generic table: the same values, the same budget source."""
    expected = {"smoke": (3, 1, "budget:smoke"), "small": (8, 3, "budget:small"), "paper": (30, 10, "paper")}
    for budget, (candidates, epochs, source) in expected.items():
        cfg = resolve(RANDOM, SPACE, budget)
        assert (cfg.values["rs_candidates"], cfg.values["rs_epochs"]) == (candidates, epochs), budget
        assert cfg.sources["rs_candidates"] == cfg.sources["rs_epochs"] == source, budget
    assert not any("rs_candidates" in preset for preset in BUDGETS.values())


# --- ignored keys ----------------------------------------------------------------------------------------

def test_ignored_keys_are_absent():
    assert RANDOM.ignored_keys  # the registered random search ignores the correlation keys
    for budget in BUDGETS:
        cfg = resolve(RANDOM, SPACE, budget)
        for key in RANDOM.ignored_keys:
            assert key not in cfg.values and key not in cfg.sources
        assert "rs_candidates" in cfg.values and "order" not in cfg.values
    cfg = resolve(TinyMethod, TinySpace, "smoke")
    assert "drop_path" not in cfg.values and "corr_edges" not in cfg.values  # budget smoke sets corr_edges
    for key in RANDOM.ignored_keys:
        with pytest.raises(UserError) as exc_info:
            resolve(RANDOM, SPACE, "smoke", {key: "3"})
        assert key in _one_line(exc_info)


# --- errors ----------------------------------------------------------------------------------------------

def test_unknown_budget():
    with pytest.raises(UserError) as exc_info:
        resolve(DARTS, SPACE, "huge")
    msg = _one_line(exc_info)
    assert "huge" in msg and all(b in msg for b in BUDGETS)


def test_unknown_key():
    with pytest.raises(UserError) as exc_info:
        resolve(DARTS, SPACE, "smoke", {"ordr": "2"})
    msg = _one_line(exc_info)
    assert "ordr" in msg and "darts" in msg
    with pytest.raises(UserError):
        resolve(DARTS, SPACE, "smoke", {"rs_candidates": "2"})  # a key of another method


@pytest.mark.parametrize("key, text", [("order", "abc"), ("order", "2.0"), ("order", ""), ("w_lr", "fast"),
                                       ("search_epochs", "1e3"), ("w_lr", "nan"), ("w_lr", "inf")])
def test_bad_type(key, text):
    with pytest.raises(UserError) as exc_info:
        resolve(DARTS, SPACE, "smoke", {key: text})
    msg = _one_line(exc_info)
    assert key in msg


@pytest.mark.parametrize("text, value", [("true", True), ("false", False), ("1", True), ("0", False),
                                         ("True", True), ("FALSE", False), ("yes", True), ("off", False),
                                         (" on ", True)])
def test_bool_parsing(text, value):
    cfg = resolve(TinyMethod, TinySpace, "paper", {"use_bn": text})
    assert cfg.values["use_bn"] is value and cfg.sources["use_bn"] == "override"


@pytest.mark.parametrize("text", ["2", "maybe", "tru", "-1"])
def test_bool_parsing_refuses_other_words(text):
    with pytest.raises(UserError) as exc_info:
        resolve(TinyMethod, TinySpace, "paper", {"use_bn": text})
    assert "use_bn" in _one_line(exc_info)


def test_numeric_coercion():
    cfg = resolve(TinyMethod, TinySpace, "paper", {"temperature": "2", "search_epochs": " 4 "})
    assert cfg.values["temperature"] == 2.0 and type(cfg.values["temperature"]) is float
    assert cfg.values["search_epochs"] == 4 and type(cfg.values["search_epochs"]) is int


@pytest.mark.parametrize("key, text", [("w_lr", "-0.1"), ("search_epochs", "-1"), ("cutout", "-16"),
                                       ("train_limit", "-5"), ("arch_lr", "-1e-3")])
def test_negative_values_refused(key, text):
    with pytest.raises(UserError) as exc_info:
        resolve(DARTS, SPACE, "smoke", {key: text})
    assert key in _one_line(exc_info)


@pytest.mark.parametrize("key", ["search_epochs", "search_batch_size", "eval_batch_size", "eval_layers"])
def test_zero_sizes_refused(key):
    with pytest.raises(UserError) as exc_info:
        resolve(DARTS, SPACE, "smoke", {key: "0"})
    assert key in _one_line(exc_info)


def test_darts_order():
    assert resolve(DARTS, SPACE, "smoke", {"order": "2"}).values["order"] == 2
    for bad in ("3", "0"):
        with pytest.raises(UserError) as exc_info:
            resolve(DARTS, SPACE, "smoke", {"order": bad})
        assert "order" in _one_line(exc_info)


def test_zero_allowed_where_it_means_off():
    cfg = resolve(DARTS, SPACE, "smoke", {"cutout": "0", "train_limit": "0", "drop_path": "0",
                                          "auxiliary_weight": "0", "eval_lr_min": "0"})
    assert cfg.values["cutout"] == 0 and cfg.values["drop_path"] == 0.0


# --- parse_overrides -------------------------------------------------------------------------------------

def test_parse_overrides():
    assert parse_overrides([]) == {}
    assert parse_overrides(["order=2", " w_lr = 0.1 ", "name=a=b"]) == {"order": "2", "w_lr": "0.1", "name": "a=b"}
    assert parse_overrides(["order=1", "order=2"]) == {"order": "2"}  # the last one wins


@pytest.mark.parametrize("item", ["order", "=2", "order=", "order=  ", " =2", ""])
def test_parse_overrides_malformed(item):
    with pytest.raises(UserError) as exc_info:
        parse_overrides(["w_lr=0.1", item])
    assert "key=value" in _one_line(exc_info)


# --- config_hash -----------------------------------------------------------------------------------------

def test_config_hash_stable_across_dict_order():
    values = resolve(DARTS, SPACE, "smoke").values
    reordered = dict(reversed(list(values.items())))
    assert list(reordered) != list(values)
    h = config_hash("darts", "darts", "digits", "smoke", values)
    assert h == config_hash("darts", "darts", "digits", "smoke", reordered)
    assert len(h) == 12 and int(h, 16) >= 0
    assert h == config_hash("darts", "darts", "digits", "smoke", resolve(DARTS, SPACE, "smoke").values)


def test_config_hash_changes_with_every_value():
    values = resolve(DARTS, SPACE, "smoke").values
    base = config_hash("darts", "darts", "digits", "smoke", values)
    seen = {base}
    for key, value in values.items():
        changed = dict(values)
        if isinstance(value, bool):
            changed[key] = not value
        elif isinstance(value, str):
            changed[key] = value + "_"
        else:
            changed[key] = value + 1
        h = config_hash("darts", "darts", "digits", "smoke", changed)
        assert h not in seen, key
        seen.add(h)
    for args in (("random", "darts", "digits", "smoke"), ("darts", "nb201", "digits", "smoke"),
                 ("darts", "darts", "cifar10", "smoke"), ("darts", "darts", "digits", "small")):
        h = config_hash(*args, values)
        assert h not in seen, args
        seen.add(h)
    extra = dict(values, new_key=1)
    assert config_hash("darts", "darts", "digits", "smoke", extra) not in seen


# --- help and budgets ------------------------------------------------------------------------------------

def test_every_budget_key_is_declared_and_every_budget_has_a_description():
    # the generic presets set only what every pair shares; a method's or space's own keys are on its class
    declared = set(SHARED_KEYS) | set(SearchMethod.keys)
    for budget in BUDGETS.values():
        assert set(budget) <= declared, sorted(set(budget) - declared)
    assert set(BUDGETS) == set(BUDGET_HELP)
    assert BUDGETS["paper"] == {}


def test_declarations_are_the_resolved_keys_with_the_pairs_defaults():
    keys = declarations(DARTS, SPACE)
    assert set(keys) == set(resolve(DARTS, SPACE, "smoke").values)
    assert keys["search_epochs"].default == 50 and keys["search_layers"].default == 8 and keys["order"].default == 1
    assert keys["image_size"].origin == "harness" and keys["w_lr"].origin == "paper"
    nb201 = declarations(DARTS, get_space("nb201"))
    assert nb201["w_weight_decay"].default == 5e-4 and nb201["w_weight_decay"].help == keys["w_weight_decay"].help
    random = declarations(RANDOM, SPACE)
    assert "search_epochs" not in random and "corr_edges" not in random and "rs_candidates" in random
    assert "order" not in declarations(get_method("gdas"), SPACE)  # GDAS ignores DARTS's order


def test_a_key_declared_twice_or_a_value_of_an_undeclared_key_is_a_programming_error():
    class Twice(TinyMethod):
        keys: ClassVar[dict[str, Key]] = {**TinyMethod.keys, "w_lr": Key(0.1, "again", "(0, inf)")}

    class Undeclared(TinyMethod):
        defaults: ClassVar[dict[str, Any]] = {"temprature": 2.0}

    for cls in (Twice, Undeclared):
        with pytest.raises(TypeError):
            resolve(cls, TinySpace, "smoke")


# --- memory_format / cudnn_benchmark -----------------------------------------------------------------

def test_memory_format_defaults_to_channels_last_and_validates():
    values = resolve(DARTS, SPACE, "smoke").values
    assert values["memory_format"] == "channels_last" and values["cudnn_benchmark"] is True
    assert resolve(DARTS, SPACE, "smoke", {"memory_format": "contiguous"}).values["memory_format"] == "contiguous"
    with pytest.raises(UserError) as exc_info:
        resolve(DARTS, SPACE, "smoke", {"memory_format": "nhwc"})
    message = _one_line(exc_info)
    assert "channels_last" in message and "contiguous" in message
