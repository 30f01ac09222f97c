"""Configuration key declarations (``harness.core.config.Key``): every key of every pair is declared with help and
valid values, ``resolve`` refuses values outside them in one line and accepts values just inside, and the
declared ranges are the limits of the code the keys feed (torch's optimisers, the networks, drop-path,
cutout, the Gumbel sampling, the teacher)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from helpers import final_network, one_line
from torch import nn

from harness.core.benchmarks.nb201 import DEFAULT_TABLE
from harness.core.config import BUDGETS, SHARED_KEYS, Key, declarations, resolve
from harness.core.data import Batches, DataInfo, scaled_cutout
from harness.core.errors import UserError
from harness.core.registry import all_methods, all_spaces, get_method, get_space, valid_pairs
from harness.core.train import sgd
from methods.agnas import AttentionEdge, AttentionTally
from methods.base import ArchState
from methods.gdas import gumbel_sample
from methods.nos.teacher import PyramidNet, build_teacher
from spaces.base import EdgeId
from spaces.ops import drop_path

# every registered (method, space) pair, DARTS on the DARTS space first: a key is tested on the first pair
# that has it
PAIRS = sorted(valid_pairs(),
               key=lambda pair: (pair != ("darts", "darts"), pair))
KEYS: dict[str, tuple[str, str]] = {}
for _pair in PAIRS:
    for _name in declarations(get_method(_pair[0]), get_space(_pair[1])):
        KEYS.setdefault(_name, _pair)


def declared(name: str) -> Key:
    method, space = KEYS[name]
    return declarations(get_method(method), get_space(space))[name]


def resolve_key(name: str, overrides: dict[str, str], budget: str = "smoke") -> dict[str, Any]:
    method, space = KEYS[name]
    return resolve(get_method(method), get_space(space), budget, overrides).values


def refused(name: str, overrides: dict[str, str], budget: str = "smoke") -> str:
    """The one-line message with which ``resolve`` refuses ``overrides`` on the pair of ``name``."""
    with pytest.raises(UserError) as info:
        resolve_key(name, overrides, budget)
    return one_line(info)


# --- every key is declared, with help, and its resolved value passes its own check -------------------------------

@pytest.mark.parametrize("method, space", PAIRS)
@pytest.mark.parametrize("budget", list(BUDGETS))
def test_every_resolved_key_is_declared_with_help_and_passes_its_check(method, space, budget):
    keys = declarations(get_method(method), get_space(space))
    values = resolve(get_method(method), get_space(space), budget).values
    assert set(values) == set(keys)
    for name, value in values.items():
        assert keys[name].help.strip(), name
        assert keys[name].describe().strip(), name
        assert keys[name].validate(name, value) == value, name


def test_every_budget_value_is_of_a_declared_key():
    declared_anywhere = set(KEYS)
    presets = [*BUDGETS.values(),
               *(p for cls in [*all_methods().values(), *all_spaces().values()] for p in cls.budgets.values())]
    for preset in presets:
        assert set(preset) <= declared_anywhere, sorted(set(preset) - declared_anywhere)


# --- values just inside are accepted, just outside refused (every declared key) ----------------------------------

# A value of a key that passes its own declaration can still break a rule between keys: the other keys these
# inside values need.
COMPANIONS = {"tau_max": {"tau_min": "1e-30"}, "eval_batch_size": {"auxiliary_weight": "0"},
              "stage_cells": {"search_layers": "8"}, "intensive_epochs": {"intensive_n": "0"},
              "cross_start": {"hyper_epochs": "1"}, "cross_end": {"hyper_epochs": "1", "cross_start": "1"}}
# Keys with a check function: (accepted values, refused values); {file} and {dir} are made per test.
CHECKED = {
    "teacher": (["", "{file}"], ["{file}.missing", "{dir}"]),
    "nb201_table": (["default", str(DEFAULT_TABLE)], ["{file}.missing", "{dir}"]),
    "teacher_depth": (["11", "20", "110"], ["2", "10", "12", "109", "-7"]),
    "stage_cells": (["first", "last", "0,3,6", "1, 4, 7"], ["x", "2,3", "0,3,-1", "0,\u00b2,3", "", "first,last"]),
    "widths": (["32,16,24,40,80,96,192,320,1280", "1,1,1,1,1,1,1,1,1", " 8, 8,8,8,8,8,8,8,8"],
               ["x", "", "32,16,24", "0,16,24,40,80,96,192,320,1280", "32,16,24,40,80,96,192,320,1280,8",
                "32,16,24,40,80,96,192,320,1.5"]),
    "strides": (["auto", "2,2,2,2,1,2,1", "1,1,1,1,1,1,1", "1, 1, 1, 2, 1, 2, 1"],
                ["x", "", "Auto", "auto,1", "2,2,2", "2,2,2,2,1,2,3", "0,2,2,2,1,2,1", "2,2,2,2,1,2,1,1"]),
}


def _float(value: float) -> str:
    return repr(float(value))


def edge_values(key: Key) -> tuple[list[str], list[str]]:
    """(--set texts just inside the declared values, texts just outside them) of a key without a check."""
    if key.kind is bool:
        return ["true", "false"], ["maybe", "2"]
    if key.choices:
        inside = [str(c) for c in key.choices]
        if key.kind is int:
            return inside, [str(min(key.choices) - 1), str(max(key.choices) + 1), "1.5"]
        return inside, [key.choices[0] + "_", key.choices[0].upper(), ""]
    inside, outside = [], ["x"] + (["1.5"] if key.kind is int else ["nan", "inf"])
    for bound, is_open, away in ((key.low, key.low_open, -math.inf), (key.high, key.high_open, math.inf)):
        if math.isinf(bound):
            continue
        if key.kind is int:
            step = 1 if away > 0 else -1
            inside.append(str(int(bound) - step if is_open else int(bound)))
            outside.append(str(int(bound) if is_open else int(bound) + step))
        else:
            inward = math.nextafter(bound, -away)
            inside.append(_float(inward if is_open else bound))
            outside.append(_float(bound if is_open else math.nextafter(bound, away)))
    return inside, outside


def cases(name: str, tmp_path) -> tuple[list[str], list[str]]:
    if name in CHECKED:
        (tmp_path / "teacher.pt").write_bytes(b"x")
        (tmp_path / "folder").mkdir()
        fill = {"file": str(tmp_path / "teacher.pt"), "dir": str(tmp_path / "folder")}
        return tuple([text.format(**fill) for text in texts] for texts in CHECKED[name])
    return edge_values(declared(name))


def test_every_declared_key_limits_its_values():
    """Every key but a bool has a bound, choices or a check: some value of its type is refused."""
    for name in KEYS:
        key = declared(name)
        assert (key.check is not None) == (name in CHECKED), name
        if key.check is None and key.kind is not bool:
            inside, outside = edge_values(key)
            typed = []
            for text in outside:
                try:
                    typed.append(key.parse(name, text))
                except UserError:
                    pass
            assert inside and typed, name


@pytest.mark.parametrize("name", sorted(KEYS))
def test_values_just_inside_are_accepted(name, tmp_path):
    key = declared(name)
    for text in cases(name, tmp_path)[0]:
        values = resolve_key(name, {**COMPANIONS.get(name, {}), name: text})
        assert values[name] == key.validate(name, key.parse(name, text)), (name, text)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_values_just_outside_are_refused_in_one_line_naming_the_key(name, tmp_path):
    key = declared(name)
    for text in cases(name, tmp_path)[1]:
        message = refused(name, {**COMPANIONS.get(name, {}), name: text})
        assert message.startswith(f"{name}=") and key.describe() in message, (text, message)


WRONG_TYPE = {bool: [1, "true"], int: [1.5, True, "1"], float: ["0.5", True, None], str: [1, None, True]}


@pytest.mark.parametrize("name", sorted(KEYS))
def test_values_of_the_wrong_type_are_refused_even_from_a_budget(name, monkeypatch):
    key = declared(name)
    for value in WRONG_TYPE[key.kind]:
        monkeypatch.setitem(BUDGETS, "paper", {name: value})  # no class has its own paper preset to win over it
        message = refused(name, {}, budget="paper")
        assert message.startswith(f"{name}=") and f"is not a {key.kind.__name__}" in message, (value, message)


# --- the Key itself ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key, text", [
    (Key(0.2, "h", "[0, 1)"), "float in [0, 1)"),
    (Key(0.1, "h", "(0, inf)"), "float > 0"),
    (Key(4, "h", "[1, inf)"), "int >= 1"),
    (Key(7, "h", "[0, 15625]"), "int in [0, 15625]"),
    (Key(1e-3, "h", "[1e-30, inf)"), "float >= 1e-30"),
    (Key("a", "h", choices=("a", "b")), "one of a, b"),
    (Key(True, "h"), "true or false"),
    (Key("", "h", check=str.strip, valid="any words"), "any words"),
])
def test_describe(key, text):
    assert key.describe() == text


def test_validate_message_and_normalisation():
    with pytest.raises(UserError) as info:
        Key(0.2, "h", "[0, 1)").validate("drop_path", 1.5)
    assert one_line(info) == "drop_path=1.5 is out of range: float in [0, 1)"
    assert Key(" x ", "h", check=str.strip, valid="text").validate("k", " y ") == "y"
    with pytest.raises(UserError) as info:
        Key("a", "h", choices=("a", "b")).validate("mode", "a\nb")
    assert one_line(info) == "mode='a\\nb' is not valid: one of a, b"


@pytest.mark.parametrize("kwargs", [
    {"default": 1, "help": "h", "interval": "[0, 1"}, {"default": "a", "help": "h", "interval": "[0, 1]"},
    {"default": 1, "help": "h", "interval": "[0, 1]", "choices": (0, 1)}, {"default": 1, "help": ""},
    {"default": [1], "help": "h"}, {"default": 1, "help": "h", "check": abs},
    {"default": 1.5, "help": "h", "kind": int},
    {"default": "a", "help": "h", "choices": (1, 2)},
])
def test_malformed_declarations_fail_at_import(kwargs):
    with pytest.raises(TypeError):
        Key(**kwargs)


# --- the declared ranges are the code's limits ---------------------------------------------------------------

def inside_edges(name: str) -> list[float]:
    return [float(text) for text in edge_values(declared(name))[0]]


def accepted(name: str, value: Any, **companions: str) -> bool:
    try:
        resolve_key(name, {**companions, name: str(value)})
    except UserError:
        return False
    return True


PARAM = [nn.Parameter(torch.ones(3))]
# One line per optimiser argument: the key, how the harness passes it to torch, the values torch refuses.
OPTIMISER_CASES = [
    ("arch_beta1", lambda v: torch.optim.Adam(PARAM, betas=(v, 0.999)), [math.nextafter(0, -1), 1.0, 1.5]),
    ("arch_beta2", lambda v: torch.optim.Adam(PARAM, betas=(0.5, v)), [math.nextafter(0, -1), 1.0]),
    ("arch_lr", lambda v: torch.optim.Adam(PARAM, lr=v), [-1e-9]),
    ("arch_weight_decay", lambda v: torch.optim.Adam(PARAM, weight_decay=v), [-1e-9]),
    ("w_momentum", lambda v: torch.optim.SGD(PARAM, lr=0.1, momentum=v), [-1e-9]),
    ("eval_momentum", lambda v: torch.optim.SGD(PARAM, lr=0.1, momentum=v), [-1e-9]),
    ("w_weight_decay", lambda v: torch.optim.SGD(PARAM, lr=0.1, weight_decay=v), [-1e-9]),
    ("eval_weight_decay", lambda v: torch.optim.SGD(PARAM, lr=0.1, weight_decay=v), [-1e-9]),
    ("teacher_weight_decay", lambda v: torch.optim.SGD(PARAM, lr=0.1, weight_decay=v), [-1e-9]),
    ("w_lr", lambda v: torch.optim.SGD(PARAM, lr=v), [-1e-9]),
    ("eval_lr", lambda v: torch.optim.SGD(PARAM, lr=v), [-1e-9]),
]


@pytest.mark.parametrize("name, build, torch_refuses", OPTIMISER_CASES, ids=[c[0] for c in OPTIMISER_CASES])
def test_optimisers_take_every_accepted_edge_and_refuse_what_resolve_refuses(name, build, torch_refuses):
    for value in inside_edges(name):
        build(value)  # torch takes the largest and smallest accepted values
    for value in torch_refuses:
        with pytest.raises(ValueError):
            build(value)
        assert not accepted(name, value), value


@pytest.mark.parametrize("prefix", ["w", "eval"])
def test_nesterov_without_momentum_is_refused_like_torch_refuses_it(prefix):
    cfg = resolve_key(f"{prefix}_nesterov", {f"{prefix}_nesterov": "true"})
    sgd(PARAM, cfg, prefix)  # momentum 0.9: fine
    zero = {**cfg, f"{prefix}_momentum": 0.0}
    with pytest.raises(ValueError, match="Nesterov"):
        sgd(PARAM, zero, prefix)
    message = refused(f"{prefix}_nesterov", {f"{prefix}_nesterov": "true", f"{prefix}_momentum": "0"})
    assert f"{prefix}_nesterov" in message and f"{prefix}_momentum" in message
    assert accepted(f"{prefix}_momentum", 0, **{f"{prefix}_nesterov": "false"})


@pytest.mark.parametrize("momentum, settles", [(0.0, True), (0.9, True), (0.99, True), (1.0, False), (1.5, False)])
def test_sgd_momentum_below_one_settles_and_at_one_it_never_does(momentum, settles):
    """torch takes any momentum >= 0; on ½w² heavy-ball SGD converges below 1, oscillates undamped at 1 and
    diverges above: the declared range stops at 1."""
    w = nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.1, momentum=momentum)
    last = []
    for _ in range(3000):
        opt.zero_grad()
        (0.5 * w * w).sum().backward()
        opt.step()
        last = [*last[-99:], abs(w.item())]
    assert (max(last) < 1e-3) is settles
    assert accepted("w_momentum", momentum) is settles and accepted("eval_momentum", momentum) is settles


@pytest.mark.parametrize("clip, descends", [(5.0, True), (1e-3, True), (0.0, False), (-1.0, False)])
def test_grad_clip_zero_or_negative_stops_or_reverses_the_descent(clip, descends):
    """The supernet methods clip every step: clip_grad_norm_ to 0 zeroes the gradient, a negative norm flips it."""
    w = nn.Parameter(torch.tensor([3.0, -4.0]))
    (w * w).sum().backward()
    before = w.grad.clone()
    nn.utils.clip_grad_norm_([w], clip)
    assert (torch.dot(before, w.grad).item() > 0) is descends
    assert accepted("grad_clip", clip) is descends


@pytest.mark.parametrize("prob", [0.0, 0.5, math.nextafter(1.0, 0.0), 1.0, 1.5])
def test_drop_path_takes_what_is_accepted(prob):
    x = torch.ones(4, 2, 3, 3)
    works = True
    try:
        out = drop_path(x, prob, torch.Generator().manual_seed(0))
        assert torch.isfinite(out).all()
    except ValueError:
        works = False
    assert works is accepted("drop_path", prob)


@pytest.mark.parametrize("tau, samples", [(10.0, True), (1e-30, True), (1e-39, False)])
def test_tau_takes_what_is_accepted(tau, samples):
    alpha = torch.randn(6, 5, generator=torch.Generator().manual_seed(0))
    try:
        hard, _ = gumbel_sample(alpha, tau, torch.Generator().manual_seed(1))
        works = bool(torch.isfinite(hard).all())
    except RuntimeError:
        works = False
    assert works is samples
    assert accepted("tau_min", tau, tau_max="100") is samples and accepted("tau_max", tau, tau_min=str(tau)) is samples


@pytest.mark.parametrize("cutout, size, blanks_everything", [
    (16, 32, False), (32, 32, False), (32, 8, False),  # the default and the largest accepted value
    (64, 32, True), (62, 8, True), (100, 32, True),  # refused: every image is erased whole
])
def test_cutout_beyond_the_declared_range_erases_every_image(cutout, size, blanks_everything):
    n = 64
    images = torch.full((n, 1, size, size), 255, dtype=torch.uint8)
    batches = Batches(images, torch.zeros(n, dtype=torch.long), torch.zeros(1), torch.ones(1), n, shuffle=False,
                      augment=True, cutout=scaled_cutout(cutout, size), seed=0)
    x, _ = next(iter(batches))
    blank = (x.flatten(1) == 0).all(dim=1).float().mean().item()
    assert (blank == 1.0) is blanks_everything and (blank < 0.5 or blanks_everything)
    assert accepted("cutout", cutout) is not blanks_everything


@pytest.mark.parametrize("depth", [11, 20, 29, 2, 10, 12, 19])
def test_teacher_depth_takes_what_pyramidnet_builds(depth):
    try:
        PyramidNet(depth, 4, 10, 3)
        builds = True
    except ValueError:
        builds = False
    assert builds is accepted("teacher_depth", depth)


def test_a_missing_teacher_is_refused_and_an_existing_one_made_absolute(tmp_path, monkeypatch):
    assert "does not exist" in refused("teacher", {"teacher": str(tmp_path / "nope.pt")})
    (tmp_path / "mine.pt").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert resolve_key("teacher", {"teacher": "mine.pt"})["teacher"] == str(tmp_path / "mine.pt")


@pytest.mark.parametrize("ratio, builds", [(1, True), (10**6, True), (0, False)])
def test_attention_reduction_takes_what_the_attention_edge_builds(ratio, builds):
    edge, candidates = EdgeId("normal", 0, 0, 4, (0, 1)), nn.ModuleList([nn.Identity(), nn.Identity()])
    try:
        module = AttentionEdge(edge, candidates, ratio, ArchState(), AttentionTally())
        assert module(torch.randn(2, 4, 3, 3)).shape == (2, 4, 3, 3)
    except ZeroDivisionError:
        assert not builds
    else:
        assert builds
    assert accepted("attention_reduction", ratio) is builds


# --- network sizes: the smallest accepted image, layers and channels build and train ------------------------

SIZES = {"search_channels": "2", "eval_channels": "2"}


def networks(space: str, size: int, layers: int | None = None, channels: int | None = None):
    """(DARTS's supernet, a final network, the smoke teacher) of ``space`` for ``size``×``size`` images."""
    overrides = dict(SIZES)
    if layers is not None:
        overrides = {"search_layers": str(layers), "eval_layers": str(layers), "search_channels": str(channels),
                     "eval_channels": str(channels)}
    cfg = resolve(get_method("darts"), get_space(space), "smoke", overrides).values
    info = DataInfo(3, 10, size)
    torch.manual_seed(0)
    method = get_method("darts")(get_space(space)(cfg), cfg, info, torch.device("cpu"), 0)
    space_ = get_space(space)(cfg)
    final = final_network(space_, space_.sample(np.random.default_rng(0)), info, cfg["eval_layers"],
                                 cfg["eval_channels"], auxiliary=False)
    teacher = build_teacher({**cfg, "teacher_depth": 11, "teacher_alpha": 4}, info)
    return {"supernet": method.supernet, "final": final, "teacher": teacher}


def train_step(net: nn.Module, x: torch.Tensor) -> None:
    net.train()
    out = net(x)
    (out[0] if isinstance(out, tuple) else out).sum().backward()


@pytest.mark.parametrize("space", ["darts", "hetero", "nb201"])
def test_the_smallest_accepted_image_trains_on_one_image_and_the_next_smaller_does_not(space):
    smallest = int(SHARED_KEYS["image_size"].low)
    assert accepted("image_size", smallest) and not accepted("image_size", smallest - 1)
    for net in networks(space, smallest).values():
        train_step(net, torch.randn(1, 3, smallest, smallest))  # a last batch of one image
    for net in networks(space, smallest - 1).values():
        with pytest.raises(ValueError, match="more than 1 value per channel"):
            train_step(net, torch.randn(1, 3, smallest - 1, smallest - 1))


@pytest.mark.parametrize("space", ["darts", "hetero", "nb201"])
def test_one_layer_of_one_channel_builds_and_trains(space):
    low = {name: int(declared(name).low) for name in ("search_layers", "search_channels", "eval_layers",
                                                       "eval_channels")}
    assert set(low.values()) == {1}
    for net in networks(space, 8, layers=1, channels=1).values():
        train_step(net, torch.randn(2, 3, 8, 8))
    for name in low:
        assert not accepted(name, 0)


def test_the_auxiliary_head_needs_two_images_so_eval_batch_size_one_needs_no_head():
    space = get_space("darts")({})
    net = final_network(space, space.sample(np.random.default_rng(0)), DataInfo(3, 10, 8), 3, 2, auxiliary=True)
    net.train()
    assert net(torch.randn(2, 3, 8, 8))[1] is not None
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        net(torch.randn(1, 3, 8, 8))
    assert "auxiliary" in refused("eval_batch_size", {"eval_batch_size": "1"})
    assert accepted("eval_batch_size", 1, auxiliary_weight="0")
