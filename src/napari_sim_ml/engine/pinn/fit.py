"""Untrained physics-informed network (PINN) reconstruction of SIM data: the entry points.

An untrained U-Net maps a fixed input to the object on the fine grid; the weights are
fitted so that the SIM forward model of that object (object × pattern of every frame,
blurred by the OTF, sampled on the camera grid) explains the raw frames.

Two modes:

* ``"faithful"`` — the published recipe (Burns & Liu, Opt. Express 31:8714, 2023): U-Net
  32-64-128-256, the raw frames (offset subtracted, divided by their global maximum)
  upsampled (bicubic) as input and target, the simulated frames on the fine grid min–max
  normalised over all frames, loss 1 − SSIM, Adam 1e-3 decayed ×0.9 every 50 steps,
  1000 steps, last weights (:mod:`.faithful`).
* ``"noise-aware"`` (default) — Poisson–Gaussian negative log-likelihood at camera
  resolution in counts (variance gain·μ + var0 from a photon-transfer fit or the user),
  per-frame intensity factors and a shared background, weak smoothed TV. The object is
  softplus(u + net(x)): a pixel map u started at the (clipped, rescaled) Wiener result plus a
  slim U-Net 8-16-32-64 (zero-initialised output, runs at camera resolution on the
  pixel-unshuffled Wiener and widefield images and pixel-shuffles to the fine grid, bf16 on
  CPUs with native bf16). The object grid carries an 8-px margin so borders are not periodic.
  With pattern parameters, the fit also refines what real frames differ in (phases, modulation,
  k, per-frame gains, a smooth envelope and haze — started at the haze the bands show,
  :mod:`.haze` — the OTF attenuation), notches the object at
  ±b·k where the modulated bands cannot tell it from intensity changes, and applies a
  power-law spectral prior (:mod:`.refine`).
  Early stopping on the plateau of the reduced χ², an exponential moving average of the
  output, apodization to the SIM passband (as the Wiener's), and an uncertainty map from
  short continuations on parametric-bootstrap resamples of the data (:mod:`.uncertainty`)
  (:mod:`.noise_aware`).

torch is imported inside the functions only.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from typing import Any

import numpy as np

from ..errors import SimInputError
from ..io import validate_plane
from ..otf import RadialOTF, ideal_otf, otf_from_psf
from ..parameters import Optics, PatternParameters
from ..steps import run_to_end
from ..torch_runtime import torch_runtime
from .types import FitContext, PinnProgress, PinnResult, PinnSettings


def check_memory(device: Any, n_frames: int, fine: tuple[int, int], net_px: int, cfg: dict, in_ch: int) -> None:
    """Raise SimInputError when the fit would not fit into memory (estimated before allocating)."""
    import torch

    from . import noise

    acts = sum(w * (e + d + 1) / 4**i for i, (w, e, d) in
               enumerate(zip(cfg["widths"], cfg["enc"], (*cfg["dec"], 0), strict=False)))
    need = 4 * (3 * net_px * (acts + in_ch) + 14 * n_frames * fine[0] * fine[1]) + 200e6
    if device.type == "cuda":
        free = torch.cuda.mem_get_info(device)[0]
    else:
        free = noise.available_memory_bytes()
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


def _checked_plane(plane: np.ndarray, params: PatternParameters | None, patterns: np.ndarray | None) -> np.ndarray:
    if params is None and patterns is None:
        raise SimInputError("the PINN needs the illumination: give pattern parameters "
                            "(estimated or known) or pattern images")
    validate_plane(plane)
    plane = np.asarray(plane)
    if plane.ndim != 4:
        raise SimInputError("the PINN needs a raw stack of angles × phases × rows × columns")
    if not np.all(np.isfinite(plane)):
        raise SimInputError("the raw frames contain NaN or infinite values")
    if params is not None and patterns is None and plane.shape[:2] != (params.n_angles, params.n_phases):
        raise SimInputError(f"the stack has {plane.shape[0]} angles × {plane.shape[1]} phases but the "
                            f"parameters describe {params.n_angles} × {params.n_phases}")
    return plane


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

    Parameters
    ----------
    plane : ndarray
        (A, P, Y, X) raw counts.
    optics : Optics
        Microscope optics (camera pixel in µm).
    params : PatternParameters or None
        Pattern parameters (estimated or known), or None when ``patterns`` gives the
        illumination of every frame as images on an s× finer grid ((A, P, sY, sX) or (A·P, sY, sX)).
    settings : PinnSettings, optional
    otf : RadialOTF, optional
        Default: the ideal OTF of ``optics``.
    background : float
        Camera offset subtracted first (counts).
    patterns, psf : ndarray, optional
        Illumination images; a PSF image on the fine grid (the paper's demo sets), used
        exactly instead of the radial ``otf``.

    Closing the generator stops the fit and frees the network and its memory.
    """
    settings = settings or PinnSettings()
    plane = _checked_plane(plane, params, patterns)
    n_frames, field = plane.shape[0] * plane.shape[1], plane.shape[-2:]
    pats, factor = (None, 2) if patterns is None else _given_patterns(patterns, n_frames, field)
    if min(field) < 16:
        raise SimInputError("the PINN needs frames of at least 16 × 16 px")
    if psf is not None:
        psf = np.asarray(psf, dtype=np.float64)
        if psf.ndim != 2 or min(psf.shape) < 3 or not np.all(np.isfinite(psf)) or psf.sum() <= 0:
            raise SimInputError("the PSF must be a finite 2-D image with a positive sum")
        otf = otf or otf_from_psf(psf, optics.pixel_size_um / factor)
    otf = otf or ideal_otf(optics)
    t0 = time.perf_counter()
    with torch_runtime(settings.device, settings.threads) as device:
        from .net import FAITHFUL_NET, SLIM_NET

        cfg = FAITHFUL_NET if settings.mode == "faithful" else SLIM_NET
        fine = (factor * (field[0] + 2 * settings.margin_px), factor * (field[1] + 2 * settings.margin_px))
        net_px = fine[0] * fine[1] if settings.mode == "faithful" else fine[0] * fine[1] // factor**2
        check_memory(device, n_frames, fine, net_px, cfg, n_frames if settings.mode == "faithful" else 2 * factor**2)
        ctx = FitContext(plane=plane.astype(np.float64), optics=optics, params=params, settings=settings,
                         otf=otf, background=float(background), patterns=pats, psf=psf, factor=factor,
                         device=device)
        try:
            if settings.mode == "faithful":
                from .faithful import faithful as fit
            else:
                from .noise_aware import noise_aware as fit
            result = yield from fit(ctx)
        finally:
            ctx.release()
            del ctx
    return dataclasses.replace(result, seconds=time.perf_counter() - t0)


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
    """Run :func:`pinn_steps` to completion and return its result (same parameters)."""
    return run_to_end(pinn_steps(plane, optics, params, settings, otf, background, patterns, psf))


__all__ = ["pinn_steps", "fit_pinn", "check_memory"]
