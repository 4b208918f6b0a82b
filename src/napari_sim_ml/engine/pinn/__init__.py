"""Untrained physics-informed network (PINN) reconstruction of SIM data (see :mod:`.fit`)."""

from .fit import MODES, SIGMA_CALIBRATION, PinnProgress, PinnResult, PinnSettings, fit_pinn, pinn_steps

__all__ = ["PinnSettings", "PinnProgress", "PinnResult", "pinn_steps", "fit_pinn", "MODES", "SIGMA_CALIBRATION"]
