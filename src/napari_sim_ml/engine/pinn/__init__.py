"""Untrained physics-informed network (PINN) reconstruction of SIM data.

The package (torch is imported lazily, inside the fits):

* :mod:`.types` — settings, progress, result, fit inputs (numpy only);
* :mod:`.fit` — :func:`pinn_steps` / :func:`fit_pinn`, input checks (device and threads:
  :mod:`..torch_runtime`);
* :mod:`.noise_aware`, :mod:`.faithful` — the two fits;
* :mod:`.net` (U-Net, Adam), :mod:`.physics` (forward model, SSIM, TV), :mod:`.noise`
  (photon-transfer noise model, numpy only), :mod:`.refine` (real-data refinements),
  :mod:`.uncertainty` (bootstrap σ map).
"""

from ..torch_runtime import torch_runtime
from .fit import fit_pinn, pinn_steps
from .types import DEFAULT_ITERATIONS, MODES, SIGMA_CALIBRATION, PinnProgress, PinnResult, PinnSettings

__all__ = ["PinnSettings", "PinnProgress", "PinnResult", "pinn_steps", "fit_pinn", "torch_runtime", "MODES",
           "DEFAULT_ITERATIONS", "SIGMA_CALIBRATION"]
