"""What the harness needs from a source of known results: the interface of a benchmark.

A benchmark is queried, not enumerated: a table of every architecture (NAS-Bench-201) and a surrogate model
that predicts a figure from a genotype (NAS-Bench-301 for the DARTS space) both implement it. A space with a
benchmark (``SearchSpace.benchmark()``) hands one of these to its users, who know it only through this
interface:

- the architecture-level and one-shot ranking correlations draw a fixed sample of architectures
  (``sample(n, seed)``, the seed is the correlation's), keep those with a figure in the column that stands for
  the search dataset (``target_column``, ``query``) and correlate the method's scores with those figures;
- the trial looks the derived architecture up (``figures``, ``locate``, ``describe``) and, where the space
  evaluates by look-up, takes its test accuracy from ``target_column`` and sizes the benchmark's own
  network with ``network_info``;
- the views name where a figure comes from (``figure_label``: "NAS-Bench-201 CIFAR-10 test, 200 epochs");
- the leaderboard's reference rows and the plots' anytime line show the best figure of a column
  (``optimum``), where the benchmark knows it (a surrogate does not: ``None``), for a benchmark loaded again
  from a record's ``describe()`` output (``SearchSpace.load_benchmark``);
- random search selects by a validation figure (``valid_column``, ``query``), never by a test figure.

Genotypes are the space's. A finite table's own API (indices, whole columns, its best row) is the table's,
for its own tools (``python -m harness nb201``), not part of this interface.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.core.data import DataInfo


def sample_indices(count: int, total: int, seed: int) -> np.ndarray:
    """``count`` distinct indices of ``0..total − 1`` drawn by ``numpy.random.default_rng(seed)``, sorted;
    all of them when ``count ≥ total``, none when ``count ≤ 0``: how a finite table implements ``sample``."""
    if count >= total:
        return np.arange(total)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(total, size=max(0, count), replace=False))


class Benchmark(abc.ABC):
    """Known (or predicted) figures of a space's architectures: accuracies in percent, costs."""

    @abc.abstractmethod
    def sample(self, n: int, seed: int) -> list[Any]:
        """The genotypes of ``n`` distinct architectures (all of them when the benchmark has fewer; none for
        ``n ≤ 0``), the same for the same ``n`` and ``seed``, in a fixed order."""

    @abc.abstractmethod
    def query(self, genotypes: Sequence[Any], column: str) -> np.ndarray:
        """One figure of ``column`` per genotype (float64, in order), NaN where the benchmark has none (an
        unknown column: all NaN)."""

    def optimum(self) -> dict[str, float] | None:
        """The best figure of every accuracy column over all architectures; None where the benchmark does not
        know it (a surrogate cannot enumerate the space). The default: None."""
        return None

    @abc.abstractmethod
    def figures(self, genotype: Any) -> dict[str, float]:
        """The accuracy figures of one architecture, by column name (only those the benchmark has)."""

    @abc.abstractmethod
    def locate(self, genotype: Any) -> dict[str, Any]:
        """Where one architecture is in the benchmark, for the record: at least ``{"arch": its canonical
        string}`` (a table adds its ``"index"``)."""

    @abc.abstractmethod
    def target_column(self, dataset: str) -> tuple[str, str]:
        """The test-figure column that stands for a search on ``dataset``, and a sentence saying why."""

    @abc.abstractmethod
    def valid_column(self, dataset: str) -> str:
        """The validation-figure column a selection on ``dataset`` may use (never a test figure)."""

    def figure_label(self, column: str) -> str:
        """What ``column``'s figures are, in a few words for tables and reports: the benchmark, the dataset and split,
        and how the networks behind them were trained (NAS-Bench-201: "NAS-Bench-201 CIFAR-10 test, 200 epochs").
        The default: the benchmark's class name and the column."""
        return f"{type(self).__name__} {column}"

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance for a trial record (enough for the space's ``load_benchmark`` to load it again)."""

    @abc.abstractmethod
    def network_info(self, column: str) -> DataInfo:
        """Input and classes of the benchmark's network that a column's figures describe."""
