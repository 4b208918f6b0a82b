"""Untrained physics-informed network (PINN) reconstruction of SIM data.

An untrained U-Net maps a fixed input to the object on the fine grid; the weights are
fitted so that the SIM forward model of that object (object × pattern of every frame,
blurred by the OTF, sampled on the camera grid) explains the raw frames.

Two modes:

* ``"faithful"`` — the published recipe (Burns & Liu, Opt. Express 31:8714, 2023): U-Net
  32-64-128-256, the raw frames (offset subtracted, divided by their global maximum)
  upsampled (bicubic) as input and target, the simulated frames on the fine grid min–max
  normalised over all frames, loss 1 − SSIM, Adam 1e-3 decayed ×0.9 every 50 steps,
  1000 steps, last weights.
* ``"noise-aware"`` (default) — Poisson–Gaussian negative log-likelihood at camera
  resolution in counts (variance gain·μ + var0 from a photon-transfer fit or the user),
  per-frame intensity factors and a shared background, weak smoothed TV. The object is
  softplus(u + net(x)): a pixel map u started at the (clipped, rescaled) Wiener result plus a
  slim U-Net 8-16-32-64 (zero-initialised output, runs at camera resolution on the
  pixel-unshuffled Wiener and widefield images and pixel-shuffles to the fine grid, bf16 on
  CPUs with native bf16). The object grid carries an 8-px margin so borders are not periodic.
  With pattern parameters, the fit also refines what real frames differ in (phases, modulation,
  k, per-frame gains, a smooth envelope and haze, the OTF attenuation), notches the object at
  ±b·k where the modulated bands cannot tell it from intensity changes, and applies a
  power-law spectral prior (:mod:`.pinn_refine`).
  Early stopping on the plateau of the reduced χ², an exponential moving average of the
  output, apodization to the SIM passband (as the Wiener's), and an uncertainty map from
  short continuations on parametric-bootstrap resamples of the data (spread smoothed over
  2 px, scaled by ``SIGMA_CALIBRATION`` fitted on simulations).

torch is imported inside the functions only.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..errors import SimInputError
from ..io import validate_plane
from ..otf import RadialOTF, ideal_otf, otf_from_psf
from ..parameters import Optics, PatternParameters
from ..steps import run_to_end

MODES = ("noise-aware", "faithful")
DEFAULT_ITERATIONS = {"faithful": 1000, "noise-aware": 150}
SIGMA_CALIBRATION = 1.28  # σ = this × bootstrap spread; fitted on 128² simulations (bench_pinn.py --calibrate)


@dataclass(frozen=True)
class PinnSettings:
    """Settings of a PINN fit.

    iterations: maximum number of steps (None: 1000 faithful, 150 noise-aware; the
        noise-aware mode usually stops earlier).
    tv_weight: weight of the total-variation term (noise-aware mode).
    uncertainty_samples: number of bootstrap continuations for the σ map (0 = none).
    camera_gain / camera_offset / read_noise: camera values in counts (None = estimated
        from the data; the offset is only needed together with the read noise).
    preview_every: steps between previews in the progress reports (0 = none).
    learning_rate: Adam rate of the network (None: 1e-3 faithful, 3e-3 noise-aware);
        pixel_rate: Adam rate of the pixel map of the noise-aware object.
    threads: torch CPU threads (None: every core this process may use); results are
        reproducible for a fixed seed and thread count.
    bf16: bf16 autocast of the network (None: on in noise-aware mode where the CPU has native
        bf16, off in faithful mode, which keeps float32 as published).
    apodize: filter the noise-aware result by the ideal OTF profile of the SIM passband
        (kc + top pattern frequency), like the Wiener's apodization; the object beyond it is
        not determined by the data.

    Real-data refinements of the noise-aware mode with pattern parameters (see
    :mod:`napari_sim_ml.engine.pinn_refine`):
    refine: fit per-frame phases (±0.5 rad), per-angle modulation (0.05–1), per-frame gain
        (±0.4 in log) and offset together with the object; fit_k: also k (± half a Fourier
        pixel of the field); envelope: a smooth per-frame illumination envelope and a smooth
        unmodulated background (out-of-focus light); fit_otf: fit the attenuation a of
        ideal(ρ)·a^ρ (None: when neither a measured OTF nor a PSF is given).
    imprint_notch: σ of the notches at ±b·k (Fourier pixels of the field; 0 = off) that keep
        the pattern out of the object.
    spectral_prior: weight of the Gaussian prior with the object's power law fitted on the
        widefield data (0 = off): holds the fit back where the data carry only noise.
    periodic_output: return the periodic part of the periodic-plus-smooth decomposition of
        the result (no border cross in its spectrum; the smooth part holds only the jumps
        between opposite borders). margin_px: free object margin around the field (camera px).
    nuisance_rate: Adam rate of the envelope, background map, pattern and OTF parameters.
    inflate: divide the data term by the current reduced χ² when it exceeds 1, i.e. inflate
        the noise model to what the residual shows (correlated or under-estimated noise, or a
        model that cannot explain the frames), so the priors are not outweighed by a
        misfit; 1 when the noise model is right. Off by default: early in a fit the χ² is
        above 1 on any data, and damping the data term then stops the fit too soon.
    start_wiener: Wiener parameter w of the warm start.
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
    spectral_prior: float = 1.0
    periodic_output: bool = True
    margin_px: int = 8
    nuisance_rate: float = 0.01
    inflate: bool = False
    start_wiener: float = 0.05

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
        return self.iterations or DEFAULT_ITERATIONS[self.mode]

    @property
    def lr(self) -> float:
        """Adam learning rate of the network (1e-3 as published; 3e-3 noise-aware)."""
        return self.learning_rate or (1e-3 if self.mode == "faithful" else 3e-3)


@dataclass(frozen=True)
class PinnProgress:
    """One step: loss, and every ``preview_every`` steps a copy of the current image."""

    step: int
    total: int
    loss: float
    preview: np.ndarray | None = None


@dataclass(frozen=True)
class PinnResult:
    """image/sigma on the fine grid (sY, sX); residual (Y, X): RMS over frames of (y − μ)/√var;
    params: the fitted pattern parameters (noise-aware mode with ``refine``), else None.
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


# ----------------------------------------------------------------------------------------------
def _select_device(name: str):
    import torch

    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SimInputError("CUDA was requested for the PINN but no CUDA GPU is available; use the CPU")
        return torch.device("cuda")
    return torch.device("cpu")


def _cpu_threads(requested: int | None) -> int:
    """Torch CPU threads: the requested number, else every core this process may use. Fixed,
    not measured, so that a fit is reproducible for a fixed seed (the thread count changes the
    order of floating-point sums).
    """
    if requested:
        return int(requested)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _check_memory(device, n_frames: int, fine: tuple[int, int], net_px: int, cfg: dict, in_ch: int) -> None:
    """Raise SimInputError when the fit would not fit into memory (estimated before allocating)."""
    import torch

    from .noise import available_memory_bytes

    acts = sum(w * (e + d + 1) / 4**i for i, (w, e, d) in
               enumerate(zip(cfg["widths"], cfg["enc"], (*cfg["dec"], 0), strict=False)))
    need = 4 * (3 * net_px * (acts + in_ch) + 14 * n_frames * fine[0] * fine[1]) + 200e6
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = available_memory_bytes()
    if need > 0.8 * free:
        raise SimInputError(
            f"this stack needs about {need / 2**30:.1f} GiB for the PINN but only {free / 2**30:.1f} GiB "
            "are free; crop the field of view (e.g. to 256 × 256 px) or use fewer frames"
        )


def _given_patterns(patterns: np.ndarray, n_frames: int, field: tuple[int, int]) -> tuple[np.ndarray, int]:
    pats = np.asarray(patterns, dtype=np.float32)
    if pats.ndim == 4:
        pats = pats.reshape(-1, *pats.shape[-2:])
    if pats.ndim != 3 or pats.shape[0] != n_frames:
        raise SimInputError(f"the patterns must hold one image per raw frame ({n_frames}), "
                            f"got an array of shape {np.shape(patterns)}")
    factor = pats.shape[1] // field[0]
    if factor < 1 or pats.shape[1:] != (factor * field[0], factor * field[1]):
        raise SimInputError(f"pattern images must be an integer multiple of the raw frame size "
                            f"{field[0]} × {field[1]}, got {pats.shape[1]} × {pats.shape[2]}")
    if not np.all(np.isfinite(pats)) or pats.max() <= 0:
        raise SimInputError("the pattern images must be finite and not all zero")
    return pats / pats.max(), factor


def pinn_steps(
    plane: np.ndarray,
    optics: Optics,
    params: PatternParameters | None,
    settings: PinnSettings | None = None,
    otf: RadialOTF | None = None,
    background: float = 0.0,
    patterns: np.ndarray | None = None,
    psf: np.ndarray | None = None,
) -> Generator[PinnProgress, None, PinnResult]:
    """Fit the PINN step by step: yields PinnProgress, returns PinnResult (StopIteration.value).

    plane: (A, P, Y, X) raw counts; params: pattern parameters (estimated or known), or None
    when ``patterns`` gives the illumination of every frame as images on an s× finer grid
    ((A, P, sY, sX) or (A·P, sY, sX)); background: camera offset subtracted first (counts).
    psf: optional PSF image on the fine grid (the paper's demo sets), used exactly instead of
    the radial ``otf``.
    Closing the generator stops the fit and frees the network and its memory.
    """
    settings = settings or PinnSettings()
    if params is None and patterns is None:
        raise SimInputError("the PINN needs the illumination: give pattern parameters "
                            "(estimated or known) or pattern images")
    validate_plane(plane)
    plane = np.asarray(plane)
    if plane.ndim != 4:
        raise SimInputError("the PINN needs a raw stack of angles × phases × rows × columns")
    n_frames, field = plane.shape[0] * plane.shape[1], plane.shape[-2:]
    if not np.all(np.isfinite(plane)):
        raise SimInputError("the raw frames contain NaN or infinite values")
    if params is not None and patterns is None and plane.shape[:2] != (params.n_angles, params.n_phases):
        raise SimInputError(f"the stack has {plane.shape[0]} angles × {plane.shape[1]} phases but the "
                            f"parameters describe {params.n_angles} × {params.n_phases}")
    pats, factor = (None, 2) if patterns is None else _given_patterns(patterns, n_frames, field)
    if min(field) < 16:
        raise SimInputError("the PINN needs frames of at least 16 × 16 px")

    import torch

    from . import model as pm
    from .net import FAITHFUL_NET, SLIM_NET

    device = _select_device(settings.device)
    cfg = FAITHFUL_NET if settings.mode == "faithful" else SLIM_NET
    fine = (factor * (field[0] + 2 * settings.margin_px), factor * (field[1] + 2 * settings.margin_px))
    net_px = fine[0] * fine[1] if settings.mode == "faithful" else fine[0] * fine[1] // factor**2
    _check_memory(device, n_frames, fine, net_px, cfg, n_frames if settings.mode == "faithful" else 2 * factor**2)
    if psf is not None:
        psf = np.asarray(psf, dtype=np.float64)
        if psf.ndim != 2 or min(psf.shape) < 3 or not np.all(np.isfinite(psf)) or psf.sum() <= 0:
            raise SimInputError("the PSF must be a finite 2-D image with a positive sum")
        otf = otf or otf_from_psf(psf, optics.pixel_size_um / factor)
    otf = otf or ideal_otf(optics)
    old_threads = torch.get_num_threads()  # set only here, restored in the finally below
    if device.type == "cpu":
        torch.set_num_threads(_cpu_threads(settings.threads))
    ctx = None
    t0 = time.perf_counter()
    try:
        ctx = pm.Context(plane=plane.astype(np.float64), optics=optics, params=params, settings=settings,
                         otf=otf, background=float(background), patterns=pats, psf=psf, factor=factor,
                         device=device)
        fit = pm.faithful if settings.mode == "faithful" else pm.noise_aware
        out = yield from fit(ctx)
    finally:
        if ctx is not None:
            ctx.release()
        del ctx
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        torch.set_num_threads(old_threads)
    image, sigma, residual, losses, steps, early, noise = out
    fitted = noise.pop("params", None) if noise else None
    return PinnResult(image=image, sigma=sigma, residual=residual, losses=losses, iterations=steps,
                      seconds=time.perf_counter() - t0, device=str(device), stopped_early=early, noise=noise,
                      params=fitted)


def fit_pinn(
    plane: np.ndarray,
    optics: Optics,
    params: PatternParameters | None,
    settings: PinnSettings | None = None,
    otf: RadialOTF | None = None,
    background: float = 0.0,
    patterns: np.ndarray | None = None,
    psf: np.ndarray | None = None,
) -> PinnResult:
    """Run :func:`pinn_steps` to completion and return its result."""
    return run_to_end(pinn_steps(plane, optics, params, settings, otf, background, patterns, psf))


__all__ = ["PinnSettings", "PinnProgress", "PinnResult", "pinn_steps", "fit_pinn", "MODES",
           "SIGMA_CALIBRATION"]
