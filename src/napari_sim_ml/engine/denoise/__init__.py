"""Trained raw-frame denoiser ("two-step" SIM, step 1).

Training data, network, training, tiled application, checkpoints and the data-consistency check.

Importing this package does not import torch: :mod:`.data`, :mod:`.checkpoint` (metadata side)
and :mod:`.check` are numpy-only; :mod:`.model`, :mod:`.train` and :mod:`.apply` import torch
inside their functions or are imported only when a denoiser is trained or applied.
"""

from .check import ConsistencyReport, consistency_check, normalised_residual
from .checkpoint import DenoiserMeta, check_compatible
from .data import STRUCTURES, TrainingSet, simulated_set, thinned_set

__all__ = ["ConsistencyReport", "consistency_check", "normalised_residual", "DenoiserMeta", "check_compatible",
           "STRUCTURES", "TrainingSet", "simulated_set", "thinned_set"]
