"""The PINN's settings, progress reports, result and fit inputs (numpy only; no torch).

Every other module of the package imports from here; nothing here imports them, so the
package has no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import SimInputError
from ..otf import RadialOTF
from ..parameters import Optics, PatternParameters

MODES = ("noise-aware", "faithful")
DEFAULT_ITERATIONS = {"faithful": 1000, "noise-aware": 150}
NOISE_CHECK_RATIO = 1.5  # in-band noise over the model's above which the model is scaled (simulations: 0.84–0.98)
SIGMA_CALIBRATION = 1.28  # σ = this × bootstrap spread; fitted on 128² simulations (bench_pinn.py --calibrate)


@dataclass(frozen=True)
class PinnSettings:
    """Settings of a PINN fit.

    Attributes
    ----------
    mode : str
        ``"noise-aware"`` (ours) or ``"faithful"`` (the published recipe).
    iterations : int or None
        Maximum number of steps (None: 1000 faithful, 150 noise-aware; the noise-aware mode
        usually stops earlier).
    tv_weight : float
        Weight of the total-variation term (noise-aware mode).
    uncertainty_samples, uncertainty_steps : int
        Bootstrap continuations for the σ map (0 = none) and the steps of each.
    camera_gain, camera_offset, read_noise : float or None
        Camera values in counts (None = estimated from the data; the offset is only needed
        together with the read noise).
    preview_every : int
        Steps between previews in the progress reports (0 = none).
    learning_rate : float or None
        Adam rate of the network (None: 1e-3 faithful, 3e-3 noise-aware); ``pixel_rate``: Adam
        rate of the pixel map of the noise-aware object.
    threads : int or None
        Torch CPU threads (None: every core this process may use, 1 on a loaded machine; see
        ``engine.torch_runtime.cpu_threads``); results are reproducible for a fixed seed and thread count.
    bf16 : bool or None
        bf16 autocast of the network (None: on in noise-aware mode where the CPU has native
        bf16, off in faithful mode, which keeps float32 as published).
    apodize : bool
        Filter the noise-aware result by the ideal OTF profile of the SIM passband (kc + top
        pattern frequency), like the Wiener's apodization; the object beyond it is not
        determined by the data.
    refine, fit_k, envelope, fit_otf
        Real-data refinements of the noise-aware mode with pattern parameters (see
        :mod:`napari_sim_ml.engine.pinn.refine`): per-frame phases (±0.5 rad), per-angle
        modulation (0.05–1), per-frame gain (±0.4 in log) and offset; ``fit_k``: also k (± half
        a Fourier pixel of the field); ``envelope``: a smooth per-frame illumination envelope
        and a smooth unmodulated background (out-of-focus light); ``fit_otf``: fit the
        attenuation a of ideal(ρ)·a^ρ (None: when neither a measured OTF nor a PSF is given).
    imprint_notch : float
        σ of the notches at ±b·k (Fourier pixels of the field; 0 = off) that keep the pattern
        out of the object.
    notch_trigger_db : float or None
        The notch costs object detail at ±b·k, so it comes in only on evidence: when the
        pattern imprint (:func:`napari_sim_ml.engine.metrics.pattern_imprint`) of the running
        result rises this many dB above the warm start's within the first 40 steps, the fit
        restarts with the notch (once). None: the notch is on from the start.
    spectral_prior : float
        Weight of the Gaussian prior with the object's power law fitted on the widefield data
        (0 = off): holds the fit back where the data carry only noise.
    periodic_output : bool
        Return the periodic part of the periodic-plus-smooth decomposition of the result (no
        border cross in its spectrum). ``margin_px``: free object margin around the field
        (camera px).
    nuisance_rate : float
        Adam rate of the envelope, background map, pattern and OTF parameters.
    inflate : bool
        Divide the data term by the current reduced χ² when it exceeds 1 (inflate the noise
        model to what the residual shows). Off by default: early in a fit the χ² is above 1 on
        any data, and damping the data term then stops the fit too soon.
    start_wiener : float or None
        Wiener parameter w of the warm start (None: chosen from the data's noise by
        :func:`napari_sim_ml.engine.filters.auto_wiener`).
    check_noise : bool
        Measure the noise inside the OTF support (differences of the band-free widefield
        images of the angles, :func:`napari_sim_ml.engine.pinn.noise.inband_noise_ratio`) and,
        when it exceeds the photon-transfer model by more than ``NOISE_CHECK_RATIO``, scale
        the model's variance up to it (correlated noise of interpolated or binned data,
        which the fit beyond the OTF support does not see). Needs pattern parameters and at
        least two angles; ignored with user-given camera values.
    noise_scaled_steps : bool
        When the noise check scales the model's variance by r, also divide the pixel map's
        rate by √r and multiply the Wiener start's w by √r (both are per-pixel step sizes in
        intensity units, set for data whose noise the model knows; the gentle settings that
        keep correlated low-light noise out of the object); √r is capped at 3. No effect when the
        check does not fire.
    haze_start : bool
        On by default. Start the haze map at the unmodulated background measured from the
        bands (:mod:`.haze`) and take it out of the Wiener start, when every usable band sees
        ≥ 10 % of the frames' mean (the fit alone moves haze out of the object slowly). The measure scales the
        modulated bands against band 0 on rings just above the haze, so an OTF or modulation
        mismatch is not read as haze; where that scale changes too fast with frequency to
        separate the two (the real 3-beam and OMX sets) no haze is measured and the fit starts
        as without it.
    """

    mode: str = "noise-aware"
    iterations: int | None = None
    tv_weight: float = 0.5
    uncertainty_samples: int = 0
    uncertainty_steps: int = 15
    seed: int = 0
    device: str = "auto"
    camera_gain: float | None = None
    camera_offset: float | None = None
    read_noise: float | None = None
    preview_every: int = 10
    learning_rate: float | None = None
    pixel_rate: float = 0.1
    early_stopping: bool = True
    apodize: bool = True
    threads: int | None = None
    bf16: bool | None = None
    refine: bool = True
    fit_k: bool = True
    envelope: bool = True
    fit_otf: bool | None = None
    imprint_notch: float = 1.5
    notch_trigger_db: float | None = 2.0
    spectral_prior: float = 1.0
    periodic_output: bool = True
    margin_px: int = 8
    nuisance_rate: float = 0.01
    inflate: bool = False
    start_wiener: float | None = 0.05
    check_noise: bool = True
    noise_scaled_steps: bool = True
    haze_start: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SimInputError(f"unknown PINN mode '{self.mode}'; choose one of {', '.join(MODES)}")
        if self.iterations is not None and not (1 <= self.iterations <= 100_000):
            raise SimInputError("PINN iterations must be between 1 and 100000")
        if not (0.0 <= self.tv_weight <= 100.0):
            raise SimInputError("the TV weight must be between 0 and 100")
        if not (0 <= self.uncertainty_samples <= 64) or self.uncertainty_samples == 1:
            raise SimInputError("uncertainty samples must be 0 (none) or between 2 and 64")
        if self.device not in ("auto", "cpu", "cuda"):
            raise SimInputError("the PINN device must be 'auto', 'cpu' or 'cuda'")
        if self.camera_gain is not None and not self.camera_gain > 0:
            raise SimInputError("the camera gain must be positive")
        if self.read_noise is not None and not self.read_noise >= 0:
            raise SimInputError("the read noise cannot be negative")
        if self.learning_rate is not None and not (1e-6 <= self.learning_rate <= 1.0):
            raise SimInputError("the learning rate must be between 1e-6 and 1")
        if self.notch_trigger_db is not None and not (0.0 <= self.notch_trigger_db <= 60.0):
            raise SimInputError("the notch trigger must be between 0 and 60 dB (or None: always on)")
        if not (0.0 <= self.imprint_notch <= 20.0):
            raise SimInputError("the imprint notch must be between 0 (off) and 20 Fourier pixels")
        if not (0.0 <= self.spectral_prior <= 100.0):
            raise SimInputError("the spectral prior weight must be between 0 (off) and 100")
        if not (0 <= self.margin_px <= 64):
            raise SimInputError("the PINN margin must be between 0 and 64 px")
        if not (0.0 < self.nuisance_rate <= 1.0):
            raise SimInputError("the nuisance learning rate must be in (0, 1]")

    @property
    def max_steps(self) -> int:
        """Maximum number of fit steps (``iterations`` or the mode's default)."""
        return self.iterations or DEFAULT_ITERATIONS[self.mode]

    @property
    def lr(self) -> float:
        """Adam learning rate of the network (1e-3 as published; 3e-3 noise-aware)."""
        return self.learning_rate or (1e-3 if self.mode == "faithful" else 3e-3)


@dataclass(frozen=True)
class PinnProgress:
    """One step: loss, and every ``preview_every`` steps a copy of the current image (sY, sX)."""

    step: int
    total: int
    loss: float
    preview: np.ndarray | None = None


@dataclass(frozen=True)
class PinnResult:
    """The outcome of a fit.

    Attributes
    ----------
    image, sigma : ndarray
        (sY, sX) float32 on the fine grid (counts scale of the data); ``sigma`` is None
        without uncertainty samples.
    residual : ndarray
        (Y, X): RMS over frames of the noise-normalised residual (y − μ)/√var.
    losses : list of float
        Loss of every step, the bootstrap continuations included.
    iterations : int
        Fit steps (without the continuations); ``stopped_early``: the plateau was reached.
    seconds : float
        Wall time of the whole fit; ``device``: where it ran.
    noise : dict or None
        Noise model and fitted nuisances (noise-aware mode).
    params : PatternParameters or None
        The fitted pattern parameters (noise-aware mode with ``refine``).
    """

    image: np.ndarray
    sigma: np.ndarray | None
    residual: np.ndarray
    losses: list[float]
    iterations: int
    seconds: float
    device: str
    stopped_early: bool
    noise: dict | None = None
    params: PatternParameters | None = None


@dataclass
class FitContext:
    """Inputs of one fit, checked by :func:`napari_sim_ml.engine.pinn.fit.pinn_steps`.

    plane: (A, P, Y, X) float64 raw counts; patterns: (F, sY, sX) illumination images or None;
    psf: PSF image on the fine grid or None; factor: fine-grid sampling factor; device: a
    ``torch.device``; store: tensors the fit may park here (cleared by :meth:`release`).
    """

    plane: np.ndarray
    optics: Optics
    params: PatternParameters | None
    settings: PinnSettings
    otf: RadialOTF
    background: float
    patterns: np.ndarray | None
    psf: np.ndarray | None
    factor: int
    device: Any
    store: dict = field(default_factory=dict)

    def release(self) -> None:
        """Drop the large arrays held for the fit."""
        self.store.clear()
        self.patterns = None


def progress(step: int, total: int, loss: float, every: int, image: Any) -> PinnProgress:
    """Make a progress report; ``image`` (a callable giving the current image) is called every ``every`` steps."""
    preview = None
    if every and step % every == 0 and image is not None:
        preview = image().astype(np.float32, copy=True)
    return PinnProgress(step=step, total=total, loss=float(loss), preview=preview)


def nan_error(step: int) -> SimInputError:
    """Make the error for a loss that became NaN."""
    return SimInputError(f"the PINN fit failed: the loss became NaN at step {step}; check the background "
                         "(camera offset), the pattern parameters and the optics, or lower the learning rate")


__all__ = ["MODES", "DEFAULT_ITERATIONS", "SIGMA_CALIBRATION", "NOISE_CHECK_RATIO", "PinnSettings", "PinnProgress",
           "PinnResult",
           "FitContext", "progress", "nan_error"]
