"""Small assertions shared by the test modules (pytest puts this folder on sys.path)."""

from __future__ import annotations


def one_line(exc_info) -> str:
    """The message of a raised error, asserted to be one non-empty line."""
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, repr(msg)
    return msg


def final_network(space, genotype, info, layers: int, channels: int, auxiliary: bool = False):
    """The space's final network for ``genotype`` at an explicit size: its ``eval`` network with ``eval_layers``
    = ``layers`` and ``eval_channels`` = ``channels`` (the cell spaces' size keys)."""
    sized = type(space)({**space.cfg, "eval_layers": layers, "eval_channels": channels})
    return sized.build_network(genotype, info, "eval", auxiliary)


def hand_count(genotype: tuple[str, ...], layers: int = 5, channels: int = 16) -> int:
    """Parameters of the NAS-Bench-201 CIFAR-10 network: 73,306 for the skeleton (stem 464, residual blocks
    14,464 and 57,600, last BN 128, classifier 650); each conv edge adds its conv and BN in each of the
    3 × ``layers`` cells."""
    total = 73_306
    for width in (channels, 2 * channels, 4 * channels):
        conv_1x1 = width * width + 2 * width  # conv (no bias) + BN weight and bias
        conv_3x3 = 9 * width * width + 2 * width
        total += layers * (genotype.count("nor_conv_1x1") * conv_1x1 + genotype.count("nor_conv_3x3") * conv_3x3)
    return total


def count_op_calls(edges) -> tuple[dict[tuple[int, int, int], int], list]:
    """Forward-hook counters on every candidate op of ``edges`` (edge modules with ``.edge`` and ``.ops``):
    ({(cell, edge index, op): calls}, the hook handles to remove)."""
    calls: dict[tuple[int, int, int], int] = {}
    handles = []
    for edge in edges:
        for k, op in enumerate(edge.ops):
            def hook(module, inputs, output, key=(edge.edge.cell, edge.edge.index, k)):
                calls[key] = calls.get(key, 0) + 1
            handles.append(op.register_forward_hook(hook))
    return calls, handles


def result_frame(tune_dir, **storage):
    """Ray Tune's ``ResultGrid`` of the experiment's newest run in ``tune_dir`` (``Tuner.restore(...).get_results()``,
    which runs nothing; ``storage``: ``storage_filesystem`` for an object store), as a dataframe."""
    from ray import tune

    from harness.trial import run_trial

    return tune.Tuner.restore(str(tune_dir), trainable=run_trial, **storage).get_results().get_dataframe()


def a_spec(folder, **fields):
    """An ``ExperimentSpec`` of the experiment folder ``folder`` with the given fields, the others plain values (for
    tests of what reads a spec: a summary, a trial that finds its record)."""
    from harness.spec import ExperimentSpec

    defaults = {"method": "m", "space": "s", "dataset": "digits", "budget": "smoke", "seeds": (0,), "config": {},
                "config_hash": "h", "overrides": {}, "cpus_per_trial": 1, "gpus_per_trial": 0, "max_concurrent": None,
                "max_failures": 0, "address": None, "data_dir": None}
    return ExperimentSpec(folder=folder, **{**defaults, **fields})
