"""Resolved trial configuration: declared keys, paper defaults, scaled by a budget preset, then explicit overrides.

**Declarations.** Every configuration key is declared exactly once, as a ``Key``: its default, its help text
and its valid values (the type follows the default: bool, int, float or str; plus a numeric interval, a
tuple of choices, or a named check function). Where each kind of key is declared:

- ``SHARED_KEYS`` (here): the keys of every (method, space) pair — the shared search and evaluation
  conventions of METHODS.md (origin ``paper``) and our protocol choices the papers do not fix (origin
  ``harness``: correlation sample sizes, ``train_limit``, image size, memory layout, ...);
- ``SearchMethod.keys`` (``methods/base.py``): ``search_epochs``, which every searching method has but with
  a value per class: declared there with ``default=None`` and a ``kind``; a class gives the value in its
  ``defaults``, and a class that gives none does not have the key (random search has no ``search_epochs``);
- a space's size keys, ``SearchSpace.size_keys`` (the cell spaces share ``spaces.base.CELL_SIZE_KEYS``:
  ``search_layers``, ``search_channels``, ``eval_layers``, ``eval_channels``), valued the same way; only the
  space reads them (it builds its networks), and the space's ``budgets`` give their preset values;
- a space's or method's own keys: its ``keys`` class attribute, extending its parent's
  (``keys = {**Darts.keys, "tau_max": Key(...)}``); a method's keys that exist on one space only:
  ``space_keys = {"darts": {...}}``; a space's keys of the per-cell derivation, ``cell_keys``, which a pair
  has only when its method scores every cell (``SearchMethod.scores_per_cell``: AGNAS); the teacher keys of
  NOS: ``methods.nos.teacher.TEACHER_CONFIG``;
- ``SEARCH_RECIPE_KEYS`` (here): keys of the search recipe that some methods' reference code sets apart from the
  shared convention (learning-rate schedule, which weights decay, clipping, label smoothing, the batch the
  learning rates belong to), declared once and included in the ``keys`` of the methods that honour them;
- ``defaults`` on a method or space holds *values* only: the class's value of a key declared elsewhere
  (NOS's ``search_epochs``, NAS-Bench-201's ``w_weight_decay``), and a method's ``space_defaults`` its values
  on one space (AGNAS's macro search on ``proxyless``); ``ignored_keys`` drops keys a method does
  not use (random search: the operation-level correlation; GDAS: DARTS's ``order``); ``budgets`` holds
  the class's own values of a budget preset;
- the evaluation protocol is locked per space: a method's ``defaults``, ``space_defaults`` and ``budgets``
  may not give a value of an evaluation key (``EVALUATION_KEYS``: the ``eval_`` keys, ``cutout``,
  ``auxiliary_weight``, ``drop_path``, the final network's size); only a space and the budget presets do.

``declarations(method_cls, space_cls)`` is every key a pair has, with the pair's default. A key is declared
once, so its meaning and its valid values are the same for every pair; only its default differs.

**Resolution.** Layers, in order (a later layer wins); ``sources`` says which layer a value came from:

1. ``paper`` / ``harness`` — the declared default (its ``origin``), or the space's and then the method's
   ``defaults`` (``paper``: the papers' settings of that space or method);
2. ``budget:<name>`` — the budget preset (only for keys the pair has): the generic preset, then the
   space's and the method's own values of it;
3. ``override`` — the user's ``--set key=value``, parsed to the key's type.

Every resolved value (default, budget value or override alike) is then checked against its declaration
(``Key.validate``: one line naming the key, the value and the valid values); rules between keys are
``validate_shared``'s for the shared keys (Nesterov needs momentum), then the space's and the method's
``validate_config`` for their own (``tau_min <= tau_max``, ...; a method asks the space what it needs of its
networks, it never reads the space's keys).

The hash of the resolved configuration (with method, space, dataset and budget, without the seed) names
the setting: seeds of one setting share it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.core.errors import UserError, unknown_name

KINDS = (bool, int, float, str)
_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s]+)\s*([\])])\s*$")


def _number(value: float) -> str:
    """A bound as people read it: 1 not 1.0, ∞ not inf."""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _show(value: Any) -> str:
    """A value in a message: strings quoted (a newline stays on the line), booleans as --set takes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def existing_file_or(none: str) -> Callable[[str], str]:
    """A ``Key.check`` for a path key: ``none`` (no file given) or an existing file, made absolute so that a
    trial finds it whatever its working directory and the setting names one file."""
    def check(text: str) -> str:
        if text == none:
            return text
        path = Path(text).expanduser().resolve()
        if not path.exists():
            raise ValueError("does not exist")
        if not path.is_file():
            raise ValueError("is not a file")
        return str(path)
    return check


@dataclass(frozen=True)
class Key:
    """One configuration key: its default, what it means, and its valid values.

    ``kind`` is the type of the default (bool, int or float or str; give it only when ``default`` is None:
    a key whose value each class gives in its ``defaults``). At most one of:

    - ``interval``: numeric bounds in interval notation, ``"[0, 1)"``, ``"(0, inf)"``, ``"[1, inf)"`` (a float key
      also accepts an int; neither accepts nan or ±inf);
    - ``choices``: the valid values (strings or ints);
    - ``check``: a function that returns the value (possibly normalised, e.g. a path made absolute) or raises
      ``ValueError`` whose text says what is wrong ("does not exist"); ``valid`` describes the valid values.

    ``origin`` is where the declared default comes from: ``paper`` or ``harness`` (our protocol choice).
    """

    default: Any
    help: str
    interval: str = ""
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], Any] | None = None
    valid: str = ""
    kind: type | None = None
    origin: str = "paper"
    low: float = field(init=False, repr=False, compare=False, default=-math.inf)
    high: float = field(init=False, repr=False, compare=False, default=math.inf)
    low_open: bool = field(init=False, repr=False, compare=False, default=True)
    high_open: bool = field(init=False, repr=False, compare=False, default=True)

    def __post_init__(self) -> None:
        kind = self.kind or type(self.default)
        if kind not in KINDS or (self.default is not None and not self._is_kind(self.default, kind)):
            raise TypeError(f"Key: kind {kind.__name__} with default {self.default!r}")
        object.__setattr__(self, "kind", kind)
        if sum(map(bool, (self.interval, self.choices, self.check))) > 1:
            raise TypeError("Key: give at most one of interval, choices and check")
        if self.check is not None and not self.valid:
            raise TypeError("Key: a check needs 'valid', the valid values in words")
        if not self.help or self.origin not in ("paper", "harness"):
            raise TypeError(f"Key: help must be given and origin 'paper' or 'harness', got {self.origin!r}")
        if any(not self._is_kind(c, kind) for c in self.choices):
            raise TypeError(f"Key: choices {self.choices!r} are not all {kind.__name__}")
        if self.interval:
            match = _INTERVAL.match(self.interval)
            if match is None or kind not in (int, float):
                raise TypeError(f"Key: interval {self.interval!r} is not '[a, b)'-style notation of an int/float key")
            opening, low, high, closing = match.groups()
            object.__setattr__(self, "low", float(low))
            object.__setattr__(self, "high", float(high))
            object.__setattr__(self, "low_open", opening == "(")
            object.__setattr__(self, "high_open", closing == ")")

    @staticmethod
    def _is_kind(value: Any, kind: type) -> bool:
        if kind is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, kind)

    def describe(self) -> str:
        """The valid values for people: ``float in [0, 1)``, ``int >= 1``, ``one of lookup, train``, ..."""
        kind = self.kind.__name__
        if self.check is not None:
            return self.valid
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind is bool:
            return "true or false"
        if not self.interval:
            return "any text" if self.kind is str else kind
        low, high = _number(self.low), _number(self.high)
        if math.isinf(self.high) and not math.isinf(self.low):
            return f"{kind} {'>' if self.low_open else '>='} {low}"
        if math.isinf(self.low) and not math.isinf(self.high):
            return f"{kind} {'<' if self.high_open else '<='} {high}"
        return f"{kind} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"

    def validate(self, name: str, value: Any) -> Any:
        """``value`` if it is valid for this key (normalised by ``check`` where the key has one); otherwise a
        one-line ``UserError`` naming the key, the value and the valid values."""
        def refuse(problem: str) -> UserError:
            return UserError(f"{name}={_show(value)} {problem}: {self.describe()}")

        if not self._is_kind(value, self.kind):
            raise refuse(f"is not a {self.kind.__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise refuse("is not a finite number")
        if self.interval:
            above = value > self.low if self.low_open else value >= self.low
            below = value < self.high if self.high_open else value <= self.high
            if not (above and below):
                raise refuse("is out of range")
        if self.choices and value not in self.choices:
            raise refuse("is not valid")
        if self.check is not None:
            try:
                return self.check(value)
            except ValueError as exc:
                raise refuse(str(exc).strip().splitlines()[0] if str(exc).strip() else "is not valid") from None
        return value

    def parse(self, name: str, text: str) -> Any:
        """The value of ``--set name=text`` in the key's type (one-line ``UserError`` if it is not one); the
        value is then validated with the others."""
        try:
            if self.kind is bool:
                low = text.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if self.kind is int:
                return int(text)
            if self.kind is float:
                value = float(text)
                if not math.isfinite(value):  # nan would pass every range check and poison the trial
                    raise ValueError
                return value
        except ValueError:
            raise UserError(f"{name}={text!r} is not a {self.kind.__name__}: {self.describe()}") from None
        return text


MEMORY_FORMATS = ("channels_last", "contiguous")

# The keys of every pair. Ranges are what the code accepts (the reasons, where they are not obvious):
# - learning rates > 0 (0 trains nothing); final learning rates >= 0 (a negative one, set directly on the
#   optimiser, would ascend the loss); weight decays >= 0 (torch refuses negative ones);
# - SGD momentum in [0, 1): torch refuses a negative one and takes any other, but the heavy-ball velocity
#   v <- m·v + g never forgets a gradient at m = 1 and grows geometrically above (the weights diverge);
#   Nesterov needs momentum > 0 (torch refuses it without): a rule between keys, in validate_shared;
# - grad_clip > 0: the supernet methods clip every step, and clip_grad_norm_ to 0 zeroes every gradient (a
#   negative norm flips them); eval_grad_clip >= 0, where 0 turns the clip off;
# - epochs, batch sizes >= 1 (0 epochs leaves nothing searched or an untrained network to test);
# - cutout in [0, 32]: a square side in pixels of a 32×32 image, no longer than the image (from 64 on, 62 at
#   8×8, the square covers every image whole wherever it falls);
# - drop_path in [0, 1): the probability of dropping a path (1 keeps nothing: spaces.ops.drop_path refuses it);
# - image_size >= 5: the networks halve the image twice (rounding up), and from 5 the last stage is still 2×2,
#   so BatchNorm can train on a batch of one image (a last partial batch holds one image whenever a half's
#   size is one more than a multiple of the batch size); at 4 and below it is 1×1 and BatchNorm refuses a
#   one-image batch in every space (measured: every method's supernet and every space's final network);
# - corr_edges, corr_batches, train_limit >= 0: 0 = none for corr_edges, all batches for corr_batches, all
#   images for train_limit (too small a limit is refused with the data: harness.core.data.check_split);
# - latency_runs >= 1 (a median needs a timed pass), latency_warmup >= 0.
SHARED_KEYS: dict[str, Key] = {
    # the shared conventions of all cell spaces (METHODS.md, "Shared conventions"): the same for every method,
    # so that no method gets a private advantage
    "search_batch_size": Key(64, "batch size of both search halves", "[1, inf)"),
    "w_lr": Key(0.025, "search: weight SGD learning rate (cosine-annealed to w_lr_min)", "(0, inf)"),
    "w_lr_min": Key(0.001, "search: final weight learning rate", "[0, inf)"),
    "w_momentum": Key(0.9, "search: weight SGD momentum", "[0, 1)"),
    "w_weight_decay": Key(3e-4, "search: weight decay of the weights", "[0, inf)"),
    "w_nesterov": Key(False, "search: Nesterov momentum for the weights (NAS-Bench-201 protocol; needs "
                             "w_momentum > 0)"),
    "grad_clip": Key(5.0, "search: gradient-norm clip of the weights", "(0, inf)"),
    "eval_epochs": Key(600, "evaluation: epochs of training the derived network from scratch", "[1, inf)"),
    "eval_batch_size": Key(96, "evaluation: batch size (at least 2 with the auxiliary head)", "[1, inf)"),
    "eval_lr": Key(0.025, "evaluation: SGD learning rate (cosine to eval_lr_min)", "(0, inf)"),
    "eval_lr_min": Key(0.0, "evaluation: final learning rate", "[0, inf)"),
    "eval_momentum": Key(0.9, "evaluation: SGD momentum", "[0, 1)"),
    "eval_weight_decay": Key(3e-4, "evaluation: weight decay", "[0, inf)"),
    "eval_nesterov": Key(False, "evaluation: Nesterov momentum (needs eval_momentum > 0)"),
    "eval_grad_clip": Key(5.0, "evaluation: gradient-norm clip (0 = off)", "[0, inf)"),
    "cutout": Key(16, "evaluation: cutout length in pixels at 32x32 (scaled to the image size; 0 = off)", "[0, 32]"),
    "auxiliary_weight": Key(0.4, "evaluation: weight of the auxiliary head's loss (0 = no head)", "[0, inf)"),
    "drop_path": Key(0.2, "evaluation: final drop-path probability (ramped linearly over epochs)", "[0, 1)"),
    # our protocol choices (not fixed by any paper)
    "train_limit": Key(0, "use only the first N training images (0 = all), same fixed order for every method "
                          "(class-stratified where the stored order is not random)", "[0, inf)", origin="harness"),
    "corr_edges": Key(8, "operation-level correlation: number of sampled edges (fixed sample for every method; "
                         "0 = none, more than the space has = all)", "[0, inf)", origin="harness"),
    "corr_batches": Key(20, "operation-level correlation: batches of the fixed architecture-half subset "
                            "(0 = the whole half)", "[0, inf)", origin="harness"),
    "image_size": Key(32, "folder: datasets only: images are resized to this size (at least 5: the last stage "
                          "of every network stays 2x2)", "[5, inf)", origin="harness"),
    "memory_format": Key("channels_last", "memory layout of every network and input batch", choices=MEMORY_FORMATS,
                         origin="harness"),
    "cudnn_benchmark": Key(True, "CUDA only: let cuDNN autotune convolution algorithms (faster; the record then "
                                 "says results are not bitwise reproducible); false = deterministic kernels",
                           origin="harness"),
    "latency_runs": Key(10, "latency of the final network (batch 1 and batch eval_batch_size): timed forward passes, "
                            "the record keeps their median", "[1, inf)", origin="harness"),
    "latency_warmup": Key(2, "latency of the final network: untimed forward passes before the timed ones",
                          "[0, inf)", origin="harness"),
}

# The search recipe of a method's reference code where it is not the shared convention above: keys declared once
# here and included in the ``keys`` of the methods that honour them (``{**SearchMethod.keys,
# **SEARCH_RECIPE_KEYS}``), so that no other pair has a key it would ignore. Their defaults are the shared
# convention (what every other method does); a method gives its code's values in ``space_defaults`` for the
# space its code searches (ProxylessNAS-G and AGNAS's macro search on ``proxyless``). Read through
# ``harness.core.train``: ``LR_SCHEDULES``, ``lr_scale``, ``decay_groups``, ``clip_gradients`` and ``weight_loss``.
SEARCH_RECIPE_KEYS: dict[str, Key] = {
    "w_lr_schedule": Key("cosine", "search: the weight learning rate per epoch from w_lr to w_lr_min: 'cosine' "
                                   "(the shared convention) or 'linear' (AGNAS's macro code)",
                         choices=("cosine", "linear")),
    "w_decay_params": Key("all", "search: the weights the weight decay applies to: 'all' (the shared convention) or "
                                 "'conv_classifier', the 4-D convolution kernels and the classifier's weight and "
                                 "bias only (AGNAS's macro code)", choices=("all", "conv_classifier")),
    "grad_clip_mode": Key("norm", "search: how grad_clip clips the weights' gradients: their joint 'norm' (the shared "
                                  "convention), each entry's 'value' (AGNAS's macro code) or 'off' (ProxylessNAS's "
                                  "code)", choices=("norm", "value", "off")),
    "w_label_smoothing": Key(0.0, "search: label smoothing of the weight step's cross-entropy (0 = plain "
                                  "cross-entropy, the shared convention; 0.1 in ProxylessNAS's and AGNAS's macro "
                                  "code)", "[0, 1)"),
    "w_lr_batch": Key(0, "search: the batch size the weight learning rates are given for: where the search batch "
                         "differs (a budget's), they scale by search_batch_size / w_lr_batch, the linear scaling "
                         "rule (0 = used as given, the shared convention; the code's 256 and 512 on proxyless)",
                      "[0, inf)"),
}

# The evaluation protocol: the keys of the final network's training and size. They are locked per space — the
# harness's shared defaults, the space's ``defaults`` and the budget presets (generic and the space's) set them,
# the same for every method on that space — so a method class may not give a value of one in its ``defaults``,
# ``space_defaults`` or ``budgets`` (``declarations`` raises ``TypeError``). A per-method evaluation setting a
# paper reports (NOS: eval_lr 0.25, drop_path 0.3) is an explicit ``--set`` variant, recorded in the record's
# ``overrides`` and named by them in the leaderboard's ``variant`` column. The set: every shared key of the
# final network's training (the ``eval_`` keys, ``cutout``, ``auxiliary_weight``, ``drop_path``) and the cell
# spaces' final-network size keys (``eval_layers``, ``eval_channels``: ``spaces.base.CELL_SIZE_KEYS``); any
# other key whose name starts with ``eval_`` (a space's own, e.g. proxyless's ``eval_width_mult``) counts too
# (``is_evaluation_key``).
EVALUATION_KEYS: frozenset[str] = frozenset(
    {name for name in SHARED_KEYS if name.startswith("eval_")}
    | {"cutout", "auxiliary_weight", "drop_path", "eval_layers", "eval_channels"})


def is_evaluation_key(name: str) -> bool:
    """Whether ``name`` belongs to the locked evaluation protocol (``EVALUATION_KEYS``, or named ``eval_*``)."""
    return name in EVALUATION_KEYS or name.startswith("eval_")


# What names and seeds may be, for an experiment (``--name``, ``--seeds``) and a study file alike.
# The method every other is compared with, seed by seed, in leaderboards and reports (report --baseline changes it)
BASELINE_METHOD = "darts"
MAX_SEED = 2**32 - 1  # NumPy's seed range; torch and Python accept more
MAX_NAME = 100
# Counts, the same wherever they are given: a run or a study is one Ray Tune experiment whose driver holds every
# trial's job in memory (200,000 seeds took 6 GB and minutes before the first trial), so each count is bounded.
MAX_SEEDS = 1_000  # seeds of one experiment, or of each cell of a study (--seeds, --seed-list, a study's seeds)
MAX_CELLS = 200  # cells of one study (datasets × spaces × methods and variants)
MAX_TRIALS = 10_000  # trials of one study (its cells × its seeds)


def check_count(what: str, count: int, limit: int, fix: str) -> None:
    """Refuse ``count`` of ``what`` above ``limit`` (``MAX_SEEDS``, ``MAX_CELLS``, ``MAX_TRIALS``): one line that
    names the limit and what to do (``fix``)."""
    if count > limit:
        raise UserError(f"{what}: {count:,} is more than the limit of {limit:,}; {fix}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]*")  # a plain folder name

# Budget presets. smoke: seconds on 2 CPU cores (tests, quickstart); small: minutes on a CPU, a real signal
# on small data; paper: the papers' settings (for GPUs) — the empty preset. The network sizes of a preset
# are the space's (its ``budgets``), the values of a method's own keys the method's (its ``budgets``: random
# search's candidates and epochs); these presets set only the keys every pair shares (``SHARED_KEYS`` and
# ``search_epochs``). smoke and small set one search batch size for every method (a CPU's memory holds no
# 512-image batch of a supernet that runs every candidate); paper takes each method's own.
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": {
        "search_epochs": 2, "search_batch_size": 128, "eval_epochs": 4, "eval_batch_size": 64,
        "corr_edges": 2, "corr_batches": 1, "latency_runs": 3, "latency_warmup": 1,
    },
    "small": {
        "search_epochs": 10, "search_batch_size": 64, "eval_epochs": 30, "eval_batch_size": 64,
        "corr_edges": 4, "corr_batches": 4, "train_limit": 10000,
    },
    # real 32×32 data on a CPU: small's epochs, batch and method settings on a 5,000-image training subset
    # (2,500 per search half, class-balanced), with nb201's supernet one cell per stage (its ``budgets``):
    # one search of any method on nb201 and real CIFAR-10 in at most about 5 minutes on 2 threads (measured for
    # every one: reproductions/nb201-cifar10-cpu/README.md)
    "cpu": {"train_limit": 5000},
    "paper": {},
}
# A preset built on another: the base's values at each level (generic, space, method), then its own.
BUDGET_BASE = {"cpu": "small"}

BUDGET_HELP = {
    "smoke": "seconds on 2 CPU cores: tests and the quickstart (tiny networks, 2 search epochs)",
    "small": "minutes on a CPU: a real signal on small data",
    "cpu": "real 32×32 data (CIFAR-10) on a CPU: small on 5,000 training images; an nb201 search ≤ 5 min on "
           "2 threads",
    "paper": "the papers' settings (GPU; days per seed for the evaluation protocol)",
}


def budget_preset(budget: str, space_cls: Any, method_cls: Any) -> dict[str, Any]:
    """The values of budget ``budget`` for a (method, space) pair: the generic preset, then the space's values,
    then the method's (each more specific level wins); a preset with a base (``BUDGET_BASE``) takes the base's
    values at each level before its own, so ``cpu`` keeps the method settings of ``small`` it does not change."""
    chain = [b for b in (BUDGET_BASE.get(budget), budget) if b]
    preset: dict[str, Any] = {}
    for level in (BUDGETS, space_cls.budgets, method_cls.budgets):
        for name in chain:
            preset.update(level.get(name, {}))
    return preset


@dataclass
class ResolvedConfig:
    values: dict[str, Any]
    sources: dict[str, str]
    overrides: dict[str, Any] = field(default_factory=dict)


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` → ``{k: v}`` (raw strings); malformed items raise UserError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise UserError(f"malformed --set '{item}': expected key=value, e.g. --set order=2")
        out[key] = value.strip()
    return out


def declarations(method_cls: Any, space_cls: Any) -> dict[str, Key]:
    """Every key of the (method, space) pair after ``ignored_keys``, each with the pair's default: the
    declared one, or the space's and then the method's value in ``defaults`` (and the method's
    ``space_defaults`` for this space; then of origin ``paper``).

    A key declared in two places, a ``defaults`` value of a key declared nowhere, or a method's value of an
    evaluation key (``EVALUATION_KEYS``, in its ``defaults``, ``space_defaults`` or ``budgets``) is a
    programming error (``TypeError``); a key with neither a declared default nor a value of the pair's
    classes that the pair does not drop is simply absent (random search has no ``search_epochs``).
    """
    declared: dict[str, Key] = {}
    per_cell = space_cls.cell_keys if method_cls.scores_per_cell else {}
    for layer in (SHARED_KEYS, space_cls.size_keys, space_cls.keys, per_cell, method_cls.keys,
                  method_cls.space_keys.get(space_cls.name, {})):
        for name, key in layer.items():
            if name in declared:
                raise TypeError(f"configuration key '{name}' is declared twice ({method_cls.__name__}, "
                                f"{space_cls.__name__})")
            declared[name] = key
    _refuse_method_evaluation_values(method_cls)
    values = {**space_cls.defaults, **method_cls.defaults, **method_cls.space_defaults.get(space_cls.name, {})}
    undeclared = sorted(set(values) - set(declared))
    if undeclared:
        raise TypeError(f"defaults of {method_cls.__name__}/{space_cls.__name__} give undeclared keys {undeclared}")
    out: dict[str, Key] = {}
    for name, key in declared.items():
        if name in method_cls.ignored_keys:
            continue
        if name in values:
            out[name] = replace(key, default=values[name], origin="paper")
        elif key.default is not None:
            out[name] = key
    return out


def _refuse_method_evaluation_values(method_cls: Any) -> None:
    """``TypeError`` (a programming error) when a method class gives a value of an evaluation key
    (``is_evaluation_key``) in its ``defaults``, ``space_defaults`` or ``budgets``: the evaluation protocol is
    the space's, the same for every method."""
    given = {"defaults": method_cls.defaults,
             **{f"space_defaults[{space!r}]": values for space, values in method_cls.space_defaults.items()},
             **{f"budgets[{budget!r}]": values for budget, values in method_cls.budgets.items()}}
    for where, values in given.items():
        locked = sorted(name for name in values if is_evaluation_key(name))
        if locked:
            raise TypeError(f"{method_cls.__name__}.{where} gives evaluation keys {locked}: the evaluation "
                            "protocol is locked per space (harness.core.config.EVALUATION_KEYS); a paper's own "
                            "evaluation settings are a --set variant")


def validate_shared(cfg: dict[str, Any]) -> None:
    """Rules between shared keys (one line, ``UserError``): torch.optim.SGD refuses Nesterov without momentum,
    for the search weights (``w_``) and the final network (``eval_``) alike."""
    for prefix in ("w", "eval"):
        if cfg.get(f"{prefix}_nesterov") and cfg.get(f"{prefix}_momentum", 0.0) <= 0:
            raise UserError(f"{prefix}_nesterov=true needs {prefix}_momentum > 0, got {prefix}_momentum="
                            f"{cfg.get(f'{prefix}_momentum', 0.0)}: set {prefix}_nesterov=false or a momentum")


def resolve(method_cls: Any, space_cls: Any, budget: str, overrides: dict[str, str] | None = None
            ) -> ResolvedConfig:
    """Resolve the configuration of a (method, space) pair under a budget with ``--set`` overrides."""
    if budget not in BUDGETS:
        raise UserError(unknown_name("budget", budget, BUDGETS))
    keys = declarations(method_cls, space_cls)
    values = {name: key.default for name, key in keys.items()}
    sources = {name: key.origin for name, key in keys.items()}
    for name, value in budget_preset(budget, space_cls, method_cls).items():
        if name in values:
            values[name], sources[name] = value, f"budget:{budget}"
    typed: dict[str, Any] = {}
    for name, text in (overrides or {}).items():
        if name not in keys:
            raise UserError(unknown_name("configuration key", name, keys, where=f" for {method_cls.name}/"
                                         f"{space_cls.name}", see=f"see 'python -m harness config --method "
                                         f"{method_cls.name} --space {space_cls.name}' for the valid keys"))
        typed[name] = keys[name].parse(name, text)
        values[name], sources[name] = typed[name], "override"
    for name, key in keys.items():
        values[name] = key.validate(name, values[name])
    validate_shared(values)
    space_cls.validate_config(values)
    method_cls.validate_config(values, space_cls)
    return ResolvedConfig(values=values, sources=sources, overrides=typed)


def config_hash(method: str, space: str, dataset: str, budget: str, values: dict[str, Any]) -> str:
    """Short, stable hash of a setting (everything but the seed)."""
    blob = json.dumps({"method": method, "space": space, "dataset": dataset, "budget": budget,
                       "config": values}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]
