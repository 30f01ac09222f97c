"""What the harness needs from a table of known results: the interface of a benchmark.

A space with a benchmark (``SearchSpace.benchmark()``) hands one of these to its users, who know it only
through this interface:

- the trial looks the derived architecture up (``figures``, ``locate``, ``describe``) and, where the space
  evaluates by look-up, takes its test accuracy from ``target_column`` and sizes the benchmark's own
  network with ``network_info``;
- the architecture-level ranking correlation samples architecture indices (``__len__``), keeps those with
  a figure in the target column (``column``, ``target_column``) and has the method score their genotypes
  (``genotypes``);
- the leaderboard's reference rows show every accuracy column's best (``optimum``) and the best of the
  column that stands for the dataset (``target_column``), for a table rebuilt from a record's
  ``describe()`` output (``SearchSpace.load_benchmark``);
- random search selects by a validation figure (``valid_column``, ``figures``), never by a test figure.

Architectures are numbered 0..len − 1 in the benchmark's own order; genotypes are the space's.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from harness.core.data import DataInfo


class Benchmark(abc.ABC):
    """A table of known figures (accuracies in percent, costs) of every architecture of a space."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of architectures (indices 0..len − 1)."""

    @abc.abstractmethod
    def genotypes(self, indices: np.ndarray) -> list[Any]:
        """The space's genotypes of the architectures ``indices``, in that order."""

    @abc.abstractmethod
    def column(self, name: str) -> np.ndarray:
        """One figure per architecture (indexed like ``genotypes``), NaN where the table has none."""

    @abc.abstractmethod
    def figures(self, genotype: Any) -> dict[str, float]:
        """The accuracy figures of one architecture, by column name (only those the table has)."""

    @abc.abstractmethod
    def locate(self, genotype: Any) -> dict[str, Any]:
        """Where one architecture is in the table: ``{"index": its index, "arch": its canonical string}``."""

    @abc.abstractmethod
    def target_column(self, dataset: str) -> tuple[str, str]:
        """The test-figure column that stands for a search on ``dataset``, and a sentence saying why."""

    @abc.abstractmethod
    def valid_column(self, dataset: str) -> str:
        """The validation-figure column a selection on ``dataset`` may use (never a test figure)."""

    @abc.abstractmethod
    def optimum(self) -> dict[str, float]:
        """The best figure of every accuracy column, each over all architectures."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Provenance for a trial record (enough for the space's ``load_benchmark`` to load it again)."""

    @abc.abstractmethod
    def network_info(self, column: str) -> DataInfo:
        """Input and classes of the benchmark's network that a column's figures describe."""
