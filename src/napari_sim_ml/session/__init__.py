"""The dock's state and computations without Qt or napari (scriptable from a notebook).

:class:`SimSession` is the evented model the dock's widgets bind to; ``tasks`` and
``learned`` hold the computations its workers run.
"""

from .model import DROPS, SimSession
from .tasks import Failure, Job

__all__ = ["DROPS", "Failure", "Job", "SimSession"]
