"""NOS and what serves it alone: the method (``method``: attention-guided DARTS search, registered on import)
and its teacher (``teacher``: the PyramidNet, its training, its content-addressed cache and the
attention-transfer loss). The teacher lives beside its only user rather than in the harness; its cache
folder, file names and contents are those it had as ``harness.teacher``."""

from methods.nos.method import Nos

__all__ = ["Nos"]
