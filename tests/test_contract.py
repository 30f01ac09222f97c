"""The contract every registered (method, space) pair keeps, run in-process at a tiny size (conftest's ``TINY``).

A new method or space is tested here by registering it: the pairs are those ``python -m harness list`` shows.
Per pair: one search epoch; a checkpoint round trip (through the checkpoint file's own serialisation, loaded
without running code) into a method built from another initialisation, which continues exactly as the
uninterrupted run; the importance scores' shapes; ``discretised`` changing only its edge; derive → string →
parse → string; and one whole trial through ``execute_trial`` with its record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import TINY_TRIAL, registered_pairs, tiny_overrides

from harness import checkpoints
from harness.core.config import resolve
from harness.core.correlation import sample_edges
from harness.core.data import SearchData
from harness.core.errors import UserError
from harness.core.records import read_record
from harness.core.registry import get_method, get_space
from harness.core.train import rng_state, seed_everything, set_rng_state
from harness.experiment import RunRequest, build_spec
from harness.trial import execute_trial
from methods.base import SearchMethod
from spaces.base import EdgeId

CPU = torch.device("cpu")
SEED = 0
PAIRS = registered_pairs()
IDS = [f"{method}-{space}" for method, space in PAIRS]


def build(pair: tuple[str, str], cfg: dict[str, Any], data: SearchData, torch_seed: int):
    """The pair's method as a trial builds it, with the supernet initialised from ``torch_seed``."""
    method, space = pair
    torch.manual_seed(torch_seed)
    return get_method(method)(get_space(space)(cfg), cfg, data.info, CPU, SEED)


@dataclass
class Searched:
    """Two epochs of one pair, and the second epoch again from a checkpoint taken after the first."""

    cfg: dict[str, Any]
    data: SearchData
    method: Any  # after both epochs, uninterrupted
    first: dict[str, Any]  # epoch 0's metrics
    second: dict[str, Any]  # epoch 1's metrics, uninterrupted
    resumed: Any  # built from another seed, loaded from the checkpoint, then epoch 1
    resumed_second: dict[str, Any]
    restored: Any  # built from another seed and loaded from the checkpoint: the state after epoch 0


_SEARCHED: dict[tuple[str, str], Searched] = {}


@pytest.fixture
def searched(request, digits_dataset) -> Searched:
    pair = request.node.callspec.params["pair"]
    if pair not in _SEARCHED:  # once per pair for the whole module: the tests below read it, none changes it
        cfg = resolve(get_method(pair[0]), get_space(pair[1]), "smoke", tiny_overrides(*pair)).values
        seed_everything(SEED)
        data = SearchData(digits_dataset, cfg, SEED, CPU)
        method = build(pair, cfg, data, SEED)
        assert method.num_epochs() >= 2, "TINY must leave two search epochs"
        first = method.train_epoch(0, data)
        blob, saved_rng = checkpoints.dumps(method.state_dict()), rng_state()  # what the trial's checkpoint holds
        second = method.train_epoch(1, data)
        resumed = build(pair, cfg, data, SEED + 123)  # another initialisation: everything must come from the state
        resumed.load_state_dict(checkpoints.loads(blob))
        set_rng_state(saved_rng)
        resumed_second = resumed.train_epoch(1, data)
        restored = build(pair, cfg, data, SEED + 321)
        restored.load_state_dict(checkpoints.loads(blob))
        _SEARCHED[pair] = Searched(cfg, data, method, first, second, resumed, resumed_second, restored)
    return _SEARCHED[pair]


def tensors(out: Any) -> list[torch.Tensor]:
    """The tensors of an edge's output: a tensor, a sequence, a dataclass, or an object with ``__slots__`` (such
    as the hetero space's Contribution), taken apart recursively."""
    if isinstance(out, torch.Tensor):
        return [out]
    if is_dataclass(out):
        out = [getattr(out, f.name) for f in fields(out)]
    elif hasattr(out, "__slots__"):
        out = [getattr(out, name) for name in out.__slots__]
    if isinstance(out, (list, tuple)):
        return [t for item in out if item is not None for t in tensors(item)]
    raise TypeError(f"an edge returned {type(out).__name__}")


def same(a: Any, b: Any) -> bool:
    ta, tb = tensors(a), tensors(b)
    return len(ta) == len(tb) and all(torch.equal(x, y) for x, y in zip(ta, tb))


def importance_params() -> list[Any]:
    """Pairs whose method has importance scores; the others are skipped with the reason in their id."""
    params = []
    for pair, name in zip(PAIRS, IDS):
        if get_method(pair[0]).importance is SearchMethod.importance:
            params.append(pytest.param(pair, id=f"{name}-no-importance",
                                       marks=pytest.mark.skip(reason=f"{pair[0]} has no operation importance")))
        else:
            params.append(pytest.param(pair, id=name))
    return params


# --- search -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_one_search_epoch_reports_a_validation_accuracy(pair, searched):
    for metrics in (searched.first, searched.second):
        assert math.isfinite(metrics["val_acc"]) and 0.0 <= metrics["val_acc"] <= 100.0


@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_checkpoint_round_trip_continues_as_the_uninterrupted_run(pair, searched):
    original, resumed = searched.method, searched.resumed
    assert searched.resumed_second == searched.second  # every metric of the epoch, the genotype among them
    space = original.space
    assert space.to_str(resumed.derive()) == space.to_str(original.derive())
    if original.supernet is not None:
        a, b = original.supernet.state_dict(), resumed.supernet.state_dict()
        assert list(a) == list(b)
        for key in a:
            assert torch.equal(a[key], b[key]), key
    assert sorted(original.arch.params) == sorted(resumed.arch.params)
    for group, param in original.arch.params.items():
        assert torch.equal(param, resumed.arch.params[group]), group
    scores, again = original.importance(), resumed.importance()
    assert (scores is None) == (again is None)
    for group in scores or {}:
        assert np.array_equal(scores[group], again[group]), group


# --- importance and discretisation --------------------------------------------------------------------------

@pytest.mark.parametrize("pair", importance_params())
def test_importance_has_the_space_shape_and_is_finite(pair, searched):
    scores = searched.method.importance()
    shape = searched.method.space.arch_shape()
    assert sorted(scores) == sorted(shape)
    for group, matrix in scores.items():
        assert np.shape(matrix) == tuple(shape[group]), group
        assert np.isfinite(matrix).all(), group


@pytest.mark.parametrize("pair", importance_params())
def test_discretised_changes_only_its_edge(pair, searched):
    """On the state after one epoch, before a method that prunes (EoiNAS) has left one op per edge."""
    method = searched.restored
    edges = [m for m in method.supernet.modules() if isinstance(getattr(m, "edge", None), EdgeId)]
    assert edges, "the method's edge modules keep their EdgeId as .edge"
    inputs: dict[int, Any] = {}
    handles = [e.register_forward_pre_hook(lambda mod, args: inputs.setdefault(id(mod), args)) for e in edges]
    x = next(iter(searched.data.val_batches()))[0]
    method.supernet.eval()
    try:
        with torch.no_grad():
            method.supernet(x)
    finally:
        for handle in handles:
            handle.remove()
    assert all(id(e) in inputs for e in edges)
    (group, index), = sample_edges(method.space.arch_shape(), 1)
    ops = method.correlation_ops(group, index)
    assert len(ops) > 1, ops
    target = [e for e in edges if (e.edge.group, e.edge.index) == (group, index)]
    assert target
    with torch.no_grad():
        plain = {id(e): e(*inputs[id(e)]) for e in edges}
        changed = False  # a method that samples one op computes the forced op unchanged when it is the sampled one
        for op in ops:
            with method.discretised(group, index, op):
                for e in edges:
                    out = e(*inputs[id(e)])
                    if e in target:
                        changed = changed or not same(out, plain[id(e)])
                    else:
                        assert same(out, plain[id(e)]), (e.edge, op)
            assert not method.arch.forced  # the context restores the search state
        assert changed, "discretising the edge did not change its output"
        for e in edges:
            assert same(e(*inputs[id(e)]), plain[id(e)]), e.edge


# --- genotype -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_derived_genotype_string_round_trip(pair, searched):
    space = searched.method.space
    genotype = searched.method.derive()
    text = space.to_str(genotype)
    parsed = space.parse(text)
    assert parsed == genotype
    assert space.to_str(parsed) == text


# --- a whole trial ------------------------------------------------------------------------------------------

def trial_overrides(method: str, space: str) -> dict[str, str]:
    """``TINY_TRIAL`` for the pair, with one search epoch where the method allows it (EoiNAS needs a warm-up
    epoch before its search epochs), else two, else the smoke budget's."""
    overrides = tiny_overrides(method, space, TINY_TRIAL)
    for epochs in ("1", "2"):
        if "search_epochs" not in overrides:
            break
        try:
            resolve(get_method(method), get_space(space), "smoke", {**overrides, "search_epochs": epochs})
            return {**overrides, "search_epochs": epochs}
        except UserError:
            continue
    return {key: value for key, value in overrides.items() if key != "search_epochs"}


@pytest.mark.slow
@pytest.mark.parametrize("pair", PAIRS, ids=IDS)
def test_execute_trial_writes_its_record(pair, tmp_path: Path):
    method, space = pair
    overrides = trial_overrides(method, space)
    spec = build_spec(RunRequest(method=method, space=space, dataset="digits", budget="smoke", seeds=[SEED],
                                 overrides=[f"{k}={v}" for k, v in overrides.items()], out=tmp_path, name="contract",
                                 cpus_per_trial=1, gpus_per_trial=0, max_concurrent=None, max_failures=0,
                                 address=None, data_dir=None, resume=False))
    reports: list[dict[str, Any]] = []
    checkpointed: list[bool] = []  # each epoch's report comes after its checkpoint is written

    def report(metrics: dict[str, Any]) -> None:
        reports.append(metrics)
        if metrics["phase"] != "done":
            checkpointed.append(spec.checkpoint_path(SEED).is_file())

    returned = execute_trial(spec, SEED, report=report)
    path = spec.record_path(SEED)
    assert path.is_file()
    record = read_record(path)
    assert record["genotype"] == returned["genotype"]
    built = get_space(space)(spec.config)
    assert built.to_str(built.parse(record["genotype"])) == record["genotype"]
    assert (record["method"], record["space"], record["seed"]) == (method, space, SEED)
    assert reports[-1]["phase"] == "done"
    if get_method(method).importance is SearchMethod.importance:  # nothing to correlate
        assert record["op_corr_edges"] == 0 and record["op_kendall_tau"] is None
    else:
        assert record["op_corr_edges"] == int(record["config"]["corr_edges"])
    if built.benchmark() is None:  # no architecture-level or one-shot correlation, and the record says why
        assert record["arch_kendall_tau"] is None and record["arch_spearman_rho"] is None
        assert record["arch_correlation"] == {"samples": 0,
                                              "undefined": f"the {space} space has no table of known results"}
        assert record["oneshot_kendall_tau"] is None and record["oneshot_correlation"] == record["arch_correlation"]
    else:
        if get_method(method).importance is SearchMethod.importance:
            assert record["arch_correlation"]["undefined"] == f"{method} has no architecture scores"
        else:
            assert record["arch_correlation"]["samples"] > 0
        if record["oneshot_kendall_tau"] is None:  # no supernet, or one pruned to a single op per edge
            assert record["oneshot_correlation"]["undefined"]
        else:
            assert record["oneshot_correlation"]["samples"] == int(record["config"]["oneshot_samples"])
    if built.evaluates_by_lookup():
        assert record["benchmark"] and record["test_acc"] in record["benchmark"].values()
    else:
        chance = 100.0 / 10  # digits: 10 classes
        assert chance < record["test_acc"] <= 100.0
    # the final network's latency on the trial's device (the look-up network's where the space looks up)
    assert record["latency_ms"] > 0 and record["latency_batch_ms"] > 0
    assert record["latency_batch"] == record["config"]["eval_batch_size"] and record["device"].startswith("cpu")
    assert checkpointed and all(checkpointed)
    assert not spec.checkpoint_path(SEED).exists()  # the record is the result; the state is spent
