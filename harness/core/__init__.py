"""The harness's kernel: what search spaces and methods build on.

Configuration and budgets (``config``), data (``data``), training loops (``train``), the plug-in registry
(``registry``), result locations and what differs between a local folder and an object store (``storage``,
``places``), records (``records``, ``metric_table``), metrics and statistics (``metrics``, ``stats``), ranking
correlations (``correlation``), benchmarks (``benchmarks``) and the keyed, locked cache on disk that the data,
teacher and latency caches share (``cache``).
Nothing here imports ``spaces``, ``methods`` or the driver (``harness.cli``, ``harness.experiment``, ...):
``tests/test_architecture.py`` checks that every import runs downward.
"""
